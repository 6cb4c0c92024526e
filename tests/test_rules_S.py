"""S: the six strategies order eligible accounts and never change eligibility."""

from __future__ import annotations

from collections import Counter

import pytest
from _util import T0, acc, fast, pool, relax
from hypothesis import given
from hypothesis import strategies as st

from router.accounts import Account, Mode, Plan
from router.strategies import Strategy, least_loaded_key, less_loaded, weight_units


def _picks(strategy: str, n: int, *accounts_spec: tuple[str, dict[str, object]],
           body: object = None, **policy: object) -> list[str | None]:
    p = pool(*(acc(i, **kw) for i, kw in accounts_spec), strategy=strategy,  # type: ignore[arg-type]
             **policy)
    return [p.submit(f"t{k}", body or relax(), T0).account_id for k in range(n)]


def test_S_least_loaded_lowest_load_ratio_ties_to_lowest_id() -> None:
    p = pool(acc("c", max_in_flight=10), acc("a", max_in_flight=2), acc("b", max_in_flight=4))
    got = [p.submit(f"t{k}", relax(), T0).account_id for k in range(6)]
    # loads: a 0/2, b 0/4, c 0/10 -> a; then b (0) ; then c (0); then c 1/10 < b 1/4 < a 1/2
    assert got == ["a", "b", "c", "c", "c", "b"]


def test_S_least_loaded_is_the_default_strategy() -> None:
    p = pool(acc("b"), acc("a"))
    assert p.policy.strategy is Strategy.LEAST_LOADED
    assert p.submit("t1", relax(), T0).account_id == "a"


def test_S_round_robin_cycles_in_id_order_and_skips_unavailable() -> None:
    got = _picks("round_robin", 7, ("b", {}), ("a", {}), ("c", {"max_in_flight": 1}))
    assert got == ["a", "b", "c", "a", "b", "a", "b"]


def test_S_round_robin_pointer_is_not_moved_by_pinned_tasks() -> None:
    p = pool(acc("a", bot_id=1), acc("b", bot_id=2), acc("c", bot_id=3), strategy="round_robin")
    assert p.submit("t1", relax(), T0).account_id == "a"
    assert p.submit("t2", relax(bot_id=3), T0).account_id == "c"
    assert p.submit("t3", relax(), T0).account_id == "b"


def test_S_weighted_follows_weights_and_never_picks_weight_zero() -> None:
    got = _picks("weighted", 400, ("a", {"weight": 1, "max_in_flight": 1000}),
                 ("b", {"weight": 3, "max_in_flight": 1000}),
                 ("z", {"weight": 0, "max_in_flight": 1000}), seed=7)
    counts = Counter(got)
    assert counts["z"] == 0
    assert counts["a"] + counts["b"] == 400
    assert 2 * counts["a"] < counts["b"]  # about 100 vs 300 with this seed


def test_S_weighted_all_zero_weights_is_uniform_not_an_error() -> None:
    got = _picks("weighted", 60, ("a", {"weight": 0, "max_in_flight": 100}),
                 ("b", {"weight": 0, "max_in_flight": 100}), seed=1)
    assert set(got) == {"a", "b"}


def test_S_p2c_picks_the_less_loaded_of_two() -> None:
    # Two accounts: p2c always samples both, so the less loaded one wins each time.
    p = pool(acc("a", max_in_flight=10), acc("b", max_in_flight=10), strategy="p2c", seed=3)
    got = [p.submit(f"t{k}", relax(), T0).account_id for k in range(8)]
    # both sampled every time; equal loads tie to the lowest id
    assert got == ["a", "b"] * 4


@given(st.tuples(st.integers(0, 4), st.integers(0, 3), st.sampled_from(["a", "b", "aa"])),
       st.tuples(st.integers(0, 4), st.integers(0, 3), st.sampled_from(["a", "b", "aa"])))
def test_S_p2c_less_loaded_is_min_by_load_then_id(x: tuple[int, int, str],
                                                  y: tuple[int, int, str]) -> None:
    """S p2c (D1): of the two drawn, the lower (load, id) wins, the first on a tie:
    ``less_loaded`` answers as ``min(a, b, key=least_loaded_key)``, full accounts
    (load 1) and no room at all (load inf) included."""
    a = Account(x[2], Plan.PRO, in_flight=x[0], max_in_flight=x[1])
    b = Account(y[2], Plan.PRO, in_flight=y[0], max_in_flight=y[1])
    assert less_loaded(a, b) is min(a, b, key=least_loaded_key)


@given(st.one_of(st.floats(0, 1e30), st.sampled_from([0.0, 1.0, 0.5, 1e-7, 1.5e-6, 1e24])))
def test_S_weight_units_are_the_nearest_millionths(weight: float) -> None:
    """S weighted: a weight counts as its nearest whole millionths (ties to even,
    as ``round``); 1e24 and above count as one huge weight."""
    acc_ = Account("a", Plan.PRO, weight=weight)
    expected = 10**30 if weight >= 1e24 else round(weight * 1_000_000)
    assert weight_units(acc_) == expected


def test_S_fill_first_fills_the_oldest_account_first() -> None:
    got = _picks("fill_first", 5, ("z", {"max_in_flight": 2}), ("a", {"max_in_flight": 2}),
                 ("m", {"max_in_flight": 2}))
    assert got == ["z", "z", "a", "a", "m"]  # file order, not id order


def test_S_expiring_first_spends_fast_time_that_expires_soonest() -> None:
    p = pool(acc("late", fast_s=3600, renews_at="2026-12-20T10:00:00Z"),
             acc("soon", fast_s=3600, renews_at="2026-11-25T10:00:00Z"),
             acc("big", fast_s=36000, renews_at="2026-12-20T10:00:00Z"),
             strategy="expiring_first")
    # scores: late 3600/26d, soon 3600/1d, big 36000/26d -> soon first
    d = p.submit("t1", fast(), T0)
    assert (d.account_id, d.effective_mode) == ("soon", Mode.FAST)


def test_S_expiring_first_places_relax_work_by_least_loaded() -> None:
    p = pool(acc("a", max_in_flight=1, renews_at="2026-11-25T10:00:00Z"),
             acc("b", max_in_flight=4), strategy="expiring_first")
    assert [p.submit(f"t{k}", relax(), T0).account_id for k in range(3)] == ["a", "b", "b"]


@pytest.mark.parametrize("strategy", [s.value for s in Strategy])
def test_S_strategies_never_change_eligibility(strategy: str) -> None:
    p = pool(acc("r", "mega", setting="relax", max_in_flight=100),
             acc("x", status="banned", max_in_flight=100),
             acc("b", "basic", max_in_flight=100), acc("f", fast_s=600, max_in_flight=100),
             strategy=strategy, seed=5)
    for k in range(20):
        d = p.submit(f"f{k}", fast(), T0)
        if d.effective_mode is Mode.FAST:
            assert d.account_id in {"b", "f"}
        else:
            assert d.fallback and d.account_id == "r"
        d = p.submit(f"r{k}", relax(), T0)
        assert d.account_id in {"r", "f"}


@pytest.mark.parametrize("strategy", [s.value for s in Strategy])
def test_S_every_strategy_is_deterministic_for_a_seed(strategy: str) -> None:
    spec = [(f"a{i}", {"weight": i % 3 + 1, "max_in_flight": 3}) for i in range(6)]
    first = _picks(strategy, 15, *spec, body=fast(), seed=42)  # type: ignore[arg-type]
    again = _picks(strategy, 15, *spec, body=fast(), seed=42)  # type: ignore[arg-type]
    assert first == again
    assert all(a is not None for a in first)
