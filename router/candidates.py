"""Candidate sets: which accounts are fast- and relax-eligible, kept ordered.

Two implementations answer the same question:

* ``IndexedCandidates`` keeps each eligible set ordered for the strategy
  (``LoadBuckets`` for least_loaded, a ``SortedList`` otherwise) and updates one
  account in O(log n) after every change, so a least_loaded, fill_first or
  round_robin pick touches only the first few accounts.
* ``ScanCandidates`` recomputes everything by a linear scan: the deliberately
  naive reference the tests and benchmarks compare against.

Both call the same predicates (``router.rules``) and pick functions
(``router.strategies``); a property test checks that they never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, Protocol

from sortedcontainers import SortedList

from router.accounts import Account
from router.buckets import LoadBuckets
from router.rules import (
    eligible_paths,
    fast_reason,
    is_available,
    relax_reason,
    unavailable_until,
)
from router.strategies import (
    Strategy,
    StrategyState,
    fill_first_key,
    pick,
)

Path = Literal["fast", "relax"]


class Candidates(Protocol):
    """What the engine needs to know about eligibility and to pick an account."""

    def update(self, acc: Account, backups_active: bool) -> None: ...

    def eligible_count(self, path: Path) -> int: ...

    def pick(self, path: Path, now: float, state: StrategyState) -> Account | None: ...


def _key_fn(strategy: Strategy) -> Callable[[Account], Any]:
    """Sort key of the SortedList strategies (least_loaded uses ``LoadBuckets``)."""
    if strategy is Strategy.FILL_FIRST:
        return fill_first_key
    return lambda acc: (acc.id,)


class IndexedCandidates:
    """Eligible sets kept sorted for the strategy, updated incrementally."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self._key = _key_fn(strategy)
        self._least_loaded = strategy is Strategy.LEAST_LOADED
        self._buckets: dict[Path, LoadBuckets] = {"fast": LoadBuckets(), "relax": LoadBuckets()}
        self._fast_b, self._relax_b = self._buckets["fast"], self._buckets["relax"]
        self._fast: SortedList[Any] = SortedList()
        self._relax: SortedList[Any] = SortedList()
        self._fast_keys: dict[str, Any] = {}
        self._relax_keys: dict[str, Any] = {}
        self._sets: dict[Path, SortedList[Any]] = {"fast": self._fast, "relax": self._relax}
        self._accounts: dict[str, Account] = {}

    def update(self, acc: Account, backups_active: bool) -> None:
        """Re-file ``acc`` after any change to its state (O(log n))."""
        acc_id = acc.id
        self._accounts[acc_id] = acc
        fast_ok, relax_ok = eligible_paths(acc, backups_active)
        if self._least_loaded:
            load = acc.load
            self._fast_b.set(acc_id, load if fast_ok else None)
            self._relax_b.set(acc_id, load if relax_ok else None)
            return
        key = self._key(acc)
        self._refile(self._fast, self._fast_keys, acc_id, key, fast_ok)
        self._refile(self._relax, self._relax_keys, acc_id, key, relax_ok)

    @staticmethod
    def _refile(sl: SortedList[Any], keys: dict[str, Any], acc_id: str, key: Any,
                ok: bool) -> None:
        old = keys.get(acc_id)
        if old == key and ok:
            return
        if old is not None:
            sl.remove(old)
            del keys[acc_id]
        if ok:
            sl.add(key)
            keys[acc_id] = key

    def eligible_count(self, path: Path) -> int:
        if self._least_loaded:
            return len(self._buckets[path])
        return len(self._sets[path])

    def _ordered(self, path: Path) -> Iterator[Account]:
        accounts = self._accounts
        for key in self._sets[path]:
            yield accounts[key[-1]]

    def pick(self, path: Path, now: float, state: StrategyState) -> Account | None:
        strategy = self.strategy
        if strategy is Strategy.LEAST_LOADED:
            accounts = self._accounts

            def blocked_until(acc_id: str) -> float | None:
                return unavailable_until(accounts[acc_id], now)

            # load >= 1: that account and every later one is full
            acc_id = self._buckets[path].first(1.0, now, blocked_until)
            return None if acc_id is None else accounts[acc_id]
        if strategy is Strategy.FILL_FIRST:
            for acc in self._ordered(path):
                if is_available(acc, now):
                    return acc
            return None
        if strategy is Strategy.ROUND_ROBIN:
            return self._pick_round_robin(path, now, state)
        cands = [a for a in self._ordered(path) if is_available(a, now)]
        return pick(strategy, cands, state, now, path == "fast")

    def _pick_round_robin(self, path: Path, now: float, state: StrategyState) -> Account | None:
        sl = self._sets[path]
        start = 0 if state.last_id is None else sl.bisect_right((state.last_id,))
        n = len(sl)
        for i in range(n):
            acc = self._accounts[sl[(start + i) % n][0]]
            if is_available(acc, now):
                return acc
        return None


class ScanCandidates:
    """The naive reference: a linear scan over every account for every pick."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self._accounts: dict[str, Account] = {}
        self._backups_active = False

    def update(self, acc: Account, backups_active: bool) -> None:
        self._accounts[acc.id] = acc
        self._backups_active = backups_active

    def _eligible(self, path: Path) -> Iterable[Account]:
        check = fast_reason if path == "fast" else relax_reason
        for acc_id in sorted(self._accounts):
            acc = self._accounts[acc_id]
            if check(acc, self._backups_active) is None:
                yield acc

    def eligible_count(self, path: Path) -> int:
        return sum(1 for _ in self._eligible(path))

    def pick(self, path: Path, now: float, state: StrategyState) -> Account | None:
        cands = [a for a in self._eligible(path) if is_available(a, now)]
        return pick(self.strategy, cands, state, now, path == "fast")
