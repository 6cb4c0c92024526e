"""S: strategies order eligible accounts; they never change eligibility.

Every strategy is deterministic for a given seed (D1). The pick functions here
take the *available* eligible accounts in id order: they are the reference. The
indexed candidate sets in ``router.candidates`` reach the same answer, account
for account and draw for draw, without a full scan (every strategy is indexed).

``weighted`` draws in whole weight units (millionths of a weight, exact
integers) so that a prefix-sum tree and this linear scan compute exactly the
same thing: float sums in a different order could round differently.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from router.accounts import Account, round_even


class Strategy(StrEnum):
    LEAST_LOADED = "least_loaded"
    ROUND_ROBIN = "round_robin"
    WEIGHTED = "weighted"
    P2C = "p2c"
    FILL_FIRST = "fill_first"
    EXPIRING_FIRST = "expiring_first"


@dataclass(slots=True)
class StrategyState:
    """Mutable state some strategies carry between decisions."""

    rng: random.Random
    last_id: str | None = None  # round_robin pointer
    extra: dict[str, object] = field(default_factory=dict)


def least_loaded_key(acc: Account) -> tuple[float, str]:
    """Lowest ``in_flight / max_in_flight``, ties to the lowest id."""
    return (acc.load, acc.id)


def less_loaded(a: Account, b: Account) -> Account:
    """``min(a, b, key=least_loaded_key)``: ``b`` only when its ``(load, id)`` is
    lower, compared field by field (no tuples, no key calls: issue 13)."""
    la, lb = a.load, b.load
    return b if lb < la or (lb == la and b.id < a.id) else a


def fill_first_key(acc: Account) -> tuple[int, str]:
    """Oldest account first (its position in the accounts file)."""
    return (acc.order, acc.id)


def expiring_first_score(acc: Account, now: float) -> float:
    """Unreserved fast time per second left until the next renewal."""
    if acc.next_renewal_at is None:
        return 0.0
    left = max(acc.next_renewal_at - now, 1.0)
    return max(acc.unreserved_ms, 0) / left


def pick_least_loaded(cands: Sequence[Account]) -> Account | None:
    return min(cands, key=least_loaded_key, default=None)


def pick_fill_first(cands: Sequence[Account]) -> Account | None:
    return min(cands, key=fill_first_key, default=None)


def pick_round_robin(cands: Sequence[Account], state: StrategyState) -> Account | None:
    """The first available account whose id follows the last pick, wrapping."""
    if not cands:
        return None
    if state.last_id is not None:
        for acc in cands:
            if acc.id > state.last_id:
                return acc
    return cands[0]


#: ``weighted`` counts weights in millionths (S): exact integers, so the indexed
#: prefix-sum tree and the linear reference agree to the last unit.
WEIGHT_UNITS_PER_WEIGHT: Final = 1_000_000
_MAX_WEIGHT_UNITS: Final = 10**30  # an infinite weight (the file allows any weight >= 0)


def weight_units(acc: Account) -> int:
    """S weighted: the account's weight in whole millionths (nearest)."""
    w = acc.weight
    if not w > 0:
        return 0
    if w >= 1e24:
        return _MAX_WEIGHT_UNITS
    return round_even(w * WEIGHT_UNITS_PER_WEIGHT)  # round(), natively


def weighted_target(state: StrategyState, total_units: int) -> int:
    """One draw in ``[0, total_units)``: ``rng.random()`` is ``k / 2**53`` exactly,
    so ``k * total >> 53`` is that fraction of the total, in exact integers."""
    k = int(state.rng.random() * 9_007_199_254_740_992)  # 2**53: exact
    return (k * total_units) >> 53


def pick_weighted(cands: Sequence[Account], state: StrategyState) -> Account | None:
    """Random choice with probability proportional to weight (all-zero: uniform).

    The draw is ``weighted_target`` over the total of ``weight_units``; the first
    account (id order) whose running total exceeds it wins.
    """
    if not cands:
        return None
    total = sum(weight_units(a) for a in cands)
    if total <= 0:
        return cands[state.rng.randrange(len(cands))]
    target = weighted_target(state, total)
    acc_sum = 0
    for acc in cands:
        acc_sum += weight_units(acc)
        if target < acc_sum:
            return acc
    raise AssertionError("weighted_target is below the total")  # pragma: no cover


def two_distinct(state: StrategyState, n: int) -> tuple[int, int]:
    """Two distinct positions in ``range(n)`` (n >= 2): exactly
    ``rng.sample(range(n), 2)``, draw for draw, without building the sample's
    bookkeeping (for n > 21 ``sample`` draws ``randbelow(n)`` until it has two
    distinct values; a test holds the two to the same answers)."""
    rng = state.rng
    if n <= 21:
        i, j = rng.sample(range(n), 2)
        return i, j
    bits = n.bit_length()
    getrandbits = rng.getrandbits
    i = getrandbits(bits)
    while i >= n:
        i = getrandbits(bits)
    j = getrandbits(bits)
    while j >= n or j == i:
        j = getrandbits(bits)
    return i, j


def pick_p2c(cands: Sequence[Account], state: StrategyState) -> Account | None:
    """Power of two choices: two distinct random accounts, the less loaded wins."""
    if not cands:
        return None
    if len(cands) == 1:
        return cands[0]
    i, j = two_distinct(state, len(cands))
    return less_loaded(cands[i], cands[j])


def pick_expiring_first(cands: Sequence[Account], now: float) -> Account | None:
    """Highest unreserved fast time per second until renewal; ties to lowest id."""
    best: Account | None = None
    best_score = -1.0
    for acc in cands:  # id order: strict '>' keeps the lowest id on ties
        score = expiring_first_score(acc, now)
        if score > best_score:
            best, best_score = acc, score
    return best


def pick(strategy: Strategy, cands: Sequence[Account], state: StrategyState,
         now: float, fast_path: bool) -> Account | None:
    """Apply ``strategy`` to the available eligible accounts (in id order).

    ``expiring_first`` orders only the fast path; relax work is placed by
    least_loaded under it, since relax spends no fast time.
    """
    if strategy is Strategy.LEAST_LOADED:
        return pick_least_loaded(cands)
    if strategy is Strategy.FILL_FIRST:
        return pick_fill_first(cands)
    if strategy is Strategy.ROUND_ROBIN:
        return pick_round_robin(cands, state)
    if strategy is Strategy.WEIGHTED:
        return pick_weighted(cands, state)
    if strategy is Strategy.P2C:
        return pick_p2c(cands, state)
    if fast_path:
        return pick_expiring_first(cands, now)
    return pick_least_loaded(cands)
