"""The candidate index's building blocks against plain re-statements (S, R2, R4)."""

from __future__ import annotations

from hypothesis import given
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


@given(st.lists(st.tuples(IDS, st.one_of(st.none(), LOADS)), max_size=300),
       st.sets(IDS), st.sampled_from([0.5, 1.0, float("inf")]))
def test_load_buckets_give_sorted_load_id_order(ops: list[tuple[str, float | None]],
                                                refused: set[str], below: float) -> None:
    """S least_loaded: LoadBuckets.first is the first (load, id) in sorted order
    with load < below that is accepted, after any sequence of moves."""
    buckets, model = LoadBuckets(), dict[str, float]()
    for acc_id, load in ops:
        buckets.set(acc_id, load)
        if load is None:
            model.pop(acc_id, None)
        else:
            model[acc_id] = load
        assert len(buckets) == len(model)
        first_ok = next(((ld, i) for ld, i in sorted((ld, i) for i, ld in model.items())
                         if i not in refused), None)
        expected = first_ok[1] if first_ok is not None and first_ok[0] < below else None
        assert buckets.first(below, lambda i: i not in refused) == expected
