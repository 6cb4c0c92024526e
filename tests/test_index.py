"""The candidate index's building blocks against plain re-statements (S, R2, R4)."""

from __future__ import annotations

import math
import random
from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.accounts import Account, InactiveWindow, Plan
from router.buckets import (
    _FAR_AT,
    _FAR_SLOT,
    SLOT_S,
    ExpiringIndex,
    Fenwick,
    LoadBuckets,
    _Bits,
    renewal_slot,
)
from router.candidates import PATHS, IndexedCandidates, ScanCandidates, next_window_change
from router.ledger import Policy
from router.pool import Pool
from router.rules import eligible_paths, fast_reason, relax_reason
from router.strategies import Strategy, StrategyState, two_distinct
from router.testing import START, accounts

LOADS = st.sampled_from([0.0, 1 / 13, 2 / 26, 1 / 22, 0.5, 12 / 13, 1.0, float("inf")])
IDS = st.sampled_from(["a", "b", "c", "aa", "b1", "z", "-"])


@given(accounts(), st.booleans())
def test_eligible_paths_is_exactly_the_R2_and_R4_predicates(acc: Account, backups: bool) -> None:
    """R1/B1/R6/R2/R4: the index's one-pass check equals fast_reason and relax_reason."""
    assert eligible_paths(acc, backups) == (fast_reason(acc, backups) is None,
                                            relax_reason(acc, backups) is None)


BLOCKS = st.dictionaries(IDS, st.tuples(st.integers(0, 12), st.integers(0, 30)), min_size=2)
STEPS = st.lists(st.tuples(IDS, st.one_of(st.none(), LOADS), st.sampled_from([0, 0, 1, 1, 2, -3])),
                 max_size=200)


@settings(max_examples=15 * settings.default.max_examples)  # cheap, and subtle: run it a lot
@given(STEPS, BLOCKS, st.sampled_from([0.5, 1.0, float("inf")]))
def test_load_buckets_give_sorted_load_id_order(steps: list[tuple[str, float | None, int]],
                                                blocks: dict[str, tuple[int, int]],
                                                below: float) -> None:
    """S least_loaded, T1: LoadBuckets.first is the first (load, id) in sorted
    order with load < below that is not blocked at ``now``, after any moves, with
    ids parked while blocked and time mostly (not always) moving forward."""
    _check_load_buckets(LoadBuckets(), steps, blocks, below)


MANY_IDS = st.integers(0, 2_500).map(lambda i: f"acc-{i:04d}")


@given(st.lists(MANY_IDS, max_size=300), st.lists(st.tuples(MANY_IDS, st.one_of(
    st.none(), LOADS), st.sampled_from([0, 1, 2, -3])), max_size=200),
       st.dictionaries(MANY_IDS, st.tuples(st.integers(0, 12), st.integers(0, 30))),
       st.sampled_from([1.0, float("inf")]))
def test_load_buckets_order_with_many_ids(known: list[str],
                                          steps: list[tuple[str, float | None, int]],
                                          blocks: dict[str, tuple[int, int]],
                                          below: float) -> None:
    """S least_loaded: the same, over ids numbered in advance (``known``) or not,
    enough of them for a bucket's set of positions to take several levels."""
    _check_load_buckets(LoadBuckets(known), steps, blocks, below)


def _check_load_buckets(buckets: LoadBuckets, steps: list[tuple[str, float | None, int]],
                        blocks: dict[str, tuple[int, int]], below: float) -> None:
    model, now = dict[str, float](), 0

    def blocked_until(acc_id: str) -> float | None:
        start, end = blocks.get(acc_id, (0, 0))
        return end - 0.5 if start <= now < end else None

    for acc_id, load, dt in steps:
        buckets.set(acc_id, load)
        if load is None:
            model.pop(acc_id, None)
        else:
            model[acc_id] = load
        assert len(buckets) == len(model)
        now += dt
        first_free = next(((ld, i) for ld, i in sorted((ld, i) for i, ld in model.items())
                           if blocked_until(i) is None), None)
        expected = first_free[1] if first_free is not None and first_free[0] < below else None
        assert buckets.first(below, now, blocked_until) == expected
        if expected is not None:
            assert buckets.last_load == model[expected]


@pytest.mark.parametrize("n", [1, 31, 32, 33, 1_000, 40_000])
def test_position_sets_keep_their_lowest_member(n: int) -> None:
    """S least_loaded (D1: ties to the lowest id): a bucket's set of positions,
    a hierarchy of words, holds exactly what was added and not discarded since,
    and its kept lowest position is the least member (-1: empty). Seeded random
    moves, most of them around a few spots (several members share a word, at
    any place in the set), some anywhere."""
    rng = random.Random(n)
    bits, model = _Bits(n), set[int]()
    spots = [rng.randrange(n) for _ in range(4)]
    for _ in range(4_000):
        pos = (rng.choice(spots) + rng.randrange(70)) % n if rng.random() < 0.9 \
            else rng.randrange(n)
        if rng.random() < 0.55:
            bits.add(pos)
            model.add(pos)
        else:
            bits.discard(pos)
            model.discard(pos)
        assert bits.low == (min(model) if model else -1)
        assert bits._lowest() == bits.low
    assert sorted(model) == [p for p in range(n) if bits.levels[0][p >> 5] >> (p & 31) & 1]


@given(st.lists(st.tuples(accounts(), st.integers(0, 4)), min_size=1, max_size=15))
def test_least_loaded_index_numbers_the_ids_it_was_not_told_of(
        filings: list[tuple[Account, int]]) -> None:
    """S least_loaded, D1: an index told no ids at construction numbers each new
    id as it comes (every position renumbered alike in its class indexes), re-files
    a new object for a known id, and picks what the linear scan picks after each."""
    index = IndexedCandidates(Strategy.LEAST_LOADED)
    scan = ScanCandidates(Strategy.LEAST_LOADED)
    state = StrategyState(random.Random(0))
    for acc, in_flight in filings:
        acc.in_flight = in_flight
        index.update(acc, False)
        scan.update(acc, False)
        for path in PATHS:
            mine, theirs = index.pick(path, START, state), scan.pick(path, START, state)
            assert (None if mine is None else mine.id) == (None if theirs is None else theirs.id)


# ------------------------------------------------- weighted, p2c, expiring_first
@given(st.lists(st.integers(0, 50), min_size=1, max_size=40),
       st.lists(st.tuples(st.integers(0, 39), st.integers(0, 50)), max_size=40), st.data())
def test_fenwick_search_is_the_first_running_total_above_the_target(
        values: list[int], moves: list[tuple[int, int]], data: st.DataObject) -> None:
    """S weighted/p2c/round_robin: after any changes, Fenwick.search(t) is the
    first position whose running total exceeds t, exactly as a left-to-right
    scan finds it, and Fenwick.prefix(k) is the sum of the first k values."""
    tree = Fenwick(list(values))
    for pos, value in moves:
        pos %= len(values)
        tree.add(pos, value - values[pos])
        values[pos] = value
    assert tree.total == sum(values)
    assert [tree.prefix(k) for k in range(len(values) + 1)] == [0, *accumulate(values)]
    if tree.total:
        target = data.draw(st.integers(0, tree.total - 1))
        running = list(accumulate(values))
        assert tree.search(target) == next(i for i, s in enumerate(running) if s > target)


@given(st.integers(2, 200), st.integers(0, 2**32))
def test_two_distinct_is_random_sample_draw_for_draw(n: int, seed: int) -> None:
    """S p2c: the two picks are exactly ``rng.sample(range(n), 2)``, and the
    generator is left in the same state."""
    ours, theirs = random.Random(seed), random.Random(seed)
    assert two_distinct(StrategyState(ours), n) == tuple(theirs.sample(range(n), 2))
    assert ours.random() == theirs.random()


#: renewal instants: a few seconds apart (equal scores, the 1-second floor), on and
#: around the index's slot boundaries, and anywhere in a month
RENEWALS = st.one_of(st.integers(0, 40).map(float),
                     st.tuples(st.integers(0, 30), st.sampled_from([-1.0, -1e-9, 0.0, 1e-9, 0.5]))
                     .map(lambda k: max(k[0] * SLOT_S + k[1], 0.0)),
                     st.floats(0.0, 31 * 86_400.0))
FILINGS = st.lists(st.tuples(IDS, st.one_of(st.none(), st.integers(-5, 5_000),
                                            st.integers(1, 2**26)),
                             st.one_of(st.none(), RENEWALS)),
                   max_size=60)


@settings(max_examples=5 * settings.default.max_examples)
@given(FILINGS, st.one_of(st.sampled_from([0.0, 3.5, 10.0, 39.5, 45.0, SLOT_S - 0.5, 3 * SLOT_S]),
                          st.floats(0.0, 32 * 86_400.0)))
def test_expiring_index_best_is_the_highest_score_lowest_id(
        filings: list[tuple[str, int | None, float | None]], now: float) -> None:
    """S expiring_first: ExpiringIndex.best is the id with the highest
    ``u / max(renew - now, 1)`` (0 without a renewal or fast time), ties to the
    lowest id, as ``pick_expiring_first`` scans it, whatever the slots (hours) the
    renewals fall in and the time of the question."""
    index, model = ExpiringIndex(), dict[str, tuple[int, float | None]]()
    for acc_id, u, renew in filings:
        index.set(acc_id, u, renew)
        if u is None:
            model.pop(acc_id, None)
        else:
            model[acc_id] = (u, renew)
    assert len(index) == len(model)

    def score(acc_id: str) -> float:
        u, renew = model[acc_id]
        return 0.0 if renew is None else max(u, 0) / max(renew - now, 1.0)

    expected = min(model, key=lambda i: (-score(i), i)) if model else None
    assert index.best(now) == expected


@given(st.integers(0, 95), st.integers(0, 95), st.integers(0, 4 * 86_400 * 4),
       st.sampled_from([0.0, 0.25, 0.5]))
def test_next_window_change_is_the_next_instant_the_window_flips(
        q_start: int, q_end: int, quarter_s: int, frac: float) -> None:
    """T1: the window's in/out state holds until next_window_change, and flips there."""
    window = InactiveWindow(q_start * 900, q_end * 900)
    now = START + quarter_s / 4 + frac
    if window.start_s == window.end_s:
        return
    inside = window.contains(now)
    at = next_window_change(window.start_s, window.end_s, inside, now)
    assert now < at <= now + 86_400
    assert window.contains(at) != inside
    assert window.contains(math.nextafter(at, -math.inf)) == inside
    assert window.contains((now + at) / 2) == inside


WINDOW_EDITS = st.lists(st.tuples(st.sampled_from(["a1", "a2", "a3"]),
                                  st.one_of(st.none(), st.tuples(st.integers(0, 23),
                                                                 st.integers(1, 12))),
                                  st.booleans()),
                        min_size=1, max_size=12)


@settings(max_examples=3 * settings.default.max_examples)
@given(st.sampled_from(list(Strategy)), WINDOW_EDITS)
def test_a_window_or_pacing_changed_on_a_filed_account_is_honoured_T1_H3(
        strategy: Strategy, edits: list[tuple[str, tuple[int, int] | None, bool]]) -> None:
    """T1/H3: a window set, moved or removed, or a gap set or removed, on an account
    the index already holds (the same object, re-filed by ``Ledger.touch``, as a
    store's mirror does after re-reading it) routes exactly as the linear scan
    does, which reads every account afresh at each decision."""
    lines = []
    for indexed in (True, False):
        accs = [Account(i, Plan.STANDARD, max_in_flight=2) for i in ("a1", "a2", "a3")]
        pool = Pool(accs, Policy(strategy, seed=3), indexed=indexed, explain=False)
        now, out = START, []
        for k, (acc_id, window, gap) in enumerate(edits):
            acc = pool.ledger.accounts[acc_id]
            acc.inactive_window = (None if window is None else
                                   InactiveWindow(window[0] * 3600,
                                                  (window[0] + window[1]) % 24 * 3600))
            acc.min_gap_s = 600.0 if gap else 0.0
            pool.ledger.touch(acc)
            for j in range(3):
                now += 1_200.0
                d = pool.submit(f"t{k}-{j}", {"model": "midjourney", "task_type": "imagine",
                                              "input": {"prompt": "x --fast"}}, now)
                out.append((d.account_id, d.error.code if d.error else None))
                if d.account_id is not None and j == 2:
                    pool.complete(d.task_id, 30.0, now)
        lines.append(out)
    assert lines[0] == lines[1]


@given(st.one_of(st.floats(-1e12, 1e16), st.sampled_from([math.inf, -0.0, 1e15, 1e15 - 0.5])))
def test_a_renewal_slot_starts_at_or_before_the_renewal_S(at: float) -> None:
    """S expiring_first: the index bounds a slot's scores by its start, so every
    renewal instant lies at or after the start of its slot, exactly (a start
    later than a renewal would let the walk stop before the best account)."""
    slot = renewal_slot(at)
    assert float(slot * SLOT_S) <= at
    if at < _FAR_AT:
        assert at < float((slot + 1) * SLOT_S)  # the slot of the hour it falls in
    else:
        assert slot == _FAR_SLOT
