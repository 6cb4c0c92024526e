"""Analytic bounds of the planner: Erlang C and the fast-hours bound."""

from __future__ import annotations

import math

import pytest

from router.accounts import Plan, Setting
from simulations.bounds import (
    check_fleet,
    erlang_c,
    erlang_c_wait_quantile,
    fast_allowance_hours,
    profile_tasks,
)
from simulations.spec import FleetGroup, FleetSpec


def test_erlang_c_matches_known_values() -> None:
    # M/M/1: P(wait) = rho. M/M/2 with a = 1: C = 1/3 (textbook value).
    assert erlang_c(1, 0.5) == pytest.approx(0.5)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(3, 3.0) == 1.0  # unstable
    assert erlang_c(5, 0.0) == 0.0


def test_erlang_c_p95_wait_mm1_closed_form() -> None:
    """M/M/1, rho = 0.8, S = 60 s: P(W > t) = rho exp(-(1-rho) t / S)."""
    t = erlang_c_wait_quantile(1, 0.8, 60.0)
    assert 0.8 * math.exp(-(1 - 0.8) * t / 60.0) == pytest.approx(0.05)
    assert erlang_c_wait_quantile(2, 2.5, 60.0) == math.inf
    assert erlang_c_wait_quantile(10, 0.1, 60.0) == 0.0


def _fleet(*groups: FleetGroup, extra: float = 0.0) -> FleetSpec:
    return FleetSpec("f", tuple(groups), "spread", extra)


def test_fast_allowance_counts_fast_set_accounts_and_bought_hours_not_relax_set_R6() -> None:
    f = _fleet(FleetGroup(Plan.STANDARD, 2), FleetGroup(Plan.PRO, 1, Setting.RELAX), extra=5)
    assert fast_allowance_hours(f) == pytest.approx(2 * 15 + 5)
    assert f.monthly_cost() == pytest.approx(2 * 30 + 60 + 5 * 4)


def test_fast_hours_bound_prunes_a_fleet_that_must_downgrade_R3() -> None:
    # 30 days x 100 fast imagines/day x 60 s = 50 h/month of fast demand.
    tasks = [(d * 86_400.0 + i * 600.0, "imagine", "fast") for d in range(30) for i in range(100)]
    wl = profile_tasks(tasks)
    assert wl.fast_hours_per_month == pytest.approx(50.0)
    small = check_fleet(_fleet(FleetGroup(Plan.STANDARD, 3)), wl, max_downgraded=0.05,
                        p95_fast_wait_s=300)
    assert not small.ok and "fast hours" in small.verdict
    assert small.min_downgraded_share == pytest.approx(1 - 45 / 50)
    enough = check_fleet(_fleet(FleetGroup(Plan.MEGA, 1)), wl, max_downgraded=0.05,
                         p95_fast_wait_s=300)
    assert enough.ok, enough.verdict


def test_slot_bound_prunes_a_fleet_without_enough_concurrent_fast_slots() -> None:
    # 300 fast jobs in one hour of 60 s each: 5 Erlangs of load, a Standard has 3 slots.
    tasks = [(i * 12.0, "imagine", "fast") for i in range(300)]
    wl = profile_tasks(tasks, days=30)
    rep = check_fleet(_fleet(FleetGroup(Plan.STANDARD, 1)), wl, max_downgraded=1.0,
                      p95_fast_wait_s=300)
    assert not rep.ok and "fast slots" in rep.verdict
    assert check_fleet(_fleet(FleetGroup(Plan.PRO, 1)), wl, max_downgraded=1.0,
                       p95_fast_wait_s=300).ok


def test_relax_work_on_an_all_basic_fleet_is_rejected_R4() -> None:
    wl = profile_tasks([(0.0, "imagine", "relax"), (60.0, "imagine", "fast")], days=30)
    rep = check_fleet(_fleet(FleetGroup(Plan.BASIC, 2)), wl, max_downgraded=1.0,
                      p95_fast_wait_s=300)
    assert not rep.ok and "R4" in rep.verdict
