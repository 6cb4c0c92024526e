"""The candidate index's building blocks against plain re-statements (S, R2, R4)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.accounts import Account
from router.buckets import LoadBuckets
from router.rules import eligible_paths, fast_reason, relax_reason
from router.testing import accounts

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
    buckets, model, now = LoadBuckets(), dict[str, float](), 0

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
