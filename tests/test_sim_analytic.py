"""Analytic cases the simulator must reproduce exactly (L1, L3, L4, R6, R8).

Every charge, flip and renewal comes from the router's ledger; these tests check
that the harness feeds it the right work and reports what it did.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sim_helpers import DAY, fast_rows, run_toml, write_csv

from router.timeutil import parse_time
from simulations.metrics import periods_table, tasks_table

START = parse_time("2026-01-01T00:00:00Z")


def test_R6_L4_relax_set_standard_account_wastes_its_whole_15_hours_each_period() -> None:
    """R6: a relax-set account never runs fast, so at each renewal (L4) all 15 h expire."""
    runs = run_toml("""
        [simulation]
        start = "2026-01-01T00:00:00Z"
        days = 75
        seed = 1
        [[fleet.groups]]
        plan = "standard"
        setting = "relax"
        renewal = "2026-01-11T00:00:00Z"
        [workload.generator]
        rate_per_hour = 3
        modes = { fast = 0.7, turbo = 0.1, relax = 0.2 }
    """)
    s = runs[0].summary
    # Renewals at Jan 11, Feb 11, Mar 11 fall inside the 75 days (until Mar 17).
    assert s["renewals_in_horizon"] == 3
    assert s["wasted_fast_hours"] == 3 * 15.0
    assert s["wasted_fast_hours_by_cause"] == {
        "relax_set_by_user": 45.0, "flipped_not_restored": 0.0, "no_demand": 0.0}
    assert s["fast_hours_used"] == 0.0
    assert s["tasks_fast_requested"] > 0
    assert s["tasks_downgraded"] == s["tasks_fast_requested"]  # R3/R6: all fell back


def _flip_trace(tmp: Path) -> Path:
    """Week one: 1,000 fast jobs of 60 s (16.7 h > 15 h) empty the account.
    Second period (after the Jan 11 renewal): 300 fast jobs of 60 s = exactly 5 h."""
    rows = fast_rows(START + 3600, 1000, "w1-")
    rows += fast_rows(START + 12 * DAY, 300, "p1-")
    return write_csv(tmp / "flip.csv", rows)


FLIP_SCENARIO = """
    [simulation]
    start = "2026-01-01T00:00:00Z"
    days = 75
    [policy]
    restore_fast_on_renewal = {restore}
    [[fleet.groups]]
    plan = "standard"
    id_prefix = "acc"
    renewal = "2026-01-11T00:00:00Z"
    [workload]
    trace = "flip.csv"
"""


@pytest.mark.parametrize("restore", [False, True])
def test_L3_L4_account_emptied_in_week_one(tmp_path: Path, restore: bool) -> None:
    """L3 flips the account in week one. Documented L4 (no restore): every later period
    expires the full 15 h ("flipped, never restored"). With restore_fast_on_renewal the
    second period wastes only 15 h - 5 h of fast demand = 10 h, the third (no demand) 15 h."""
    _flip_trace(tmp_path)
    runs = run_toml(FLIP_SCENARIO.format(restore=str(restore).lower()), tmp_path)
    res = runs[0].result
    periods = periods_table(res)
    closed = periods[periods["closed_in_horizon"]].sort_values("period")
    assert list(closed["period"]) == [0, 1, 2]
    p0, p1, p2 = (closed.iloc[k] for k in range(3))
    assert p0["expired_hours"] == 0.0 and p0["flipped_at"] is not None  # emptied, flipped
    assert p0["used_hours"] == 15.0
    assert p0["flipped_at"] < periods["start"].iloc[0] + pd.Timedelta(days=7)
    s = runs[0].summary
    if not restore:
        assert (p1["expired_hours"], p2["expired_hours"]) == (15.0, 15.0)
        assert s["wasted_fast_hours_by_cause"]["flipped_not_restored"] == 30.0
        assert s["wasted_fast_hours"] == 30.0
        tasks = tasks_table(res)
        p1_tasks = tasks[tasks["task_id"].str.startswith("p1-")]
        assert (p1_tasks["effective_mode"] == "relax").all() and p1_tasks["fallback"].all()
    else:
        assert p1["used_hours"] == 5.0
        assert (p1["expired_hours"], p2["expired_hours"]) == (10.0, 15.0)
        assert s["wasted_fast_hours_by_cause"] == {
            "relax_set_by_user": 0.0, "flipped_not_restored": 0.0, "no_demand": 25.0}


def test_L1_R8_turbo_charges_double_and_runs_four_times_faster(tmp_path: Path) -> None:
    """L1/R8: a turbo job is charged 2x its GPU seconds; the execution model runs it 4x faster."""
    rows = fast_rows(START + 60, 20, "tb-", mode="turbo", gpu=40.0, spacing=30.0)
    rows += fast_rows(START + 7200, 10, "fa-", mode="fast", gpu=40.0, spacing=30.0)
    write_csv(tmp_path / "turbo.csv", rows)
    runs = run_toml("""
        [simulation]
        start = "2026-01-01T00:00:00Z"
        days = 1
        [[fleet.groups]]
        plan = "pro"
        setting = "turbo"
        [workload]
        trace = "turbo.csv"
    """, tmp_path)
    tasks = tasks_table(runs[0].result)
    turbo = tasks[tasks["task_id"].str.startswith("tb-")]
    fast = tasks[tasks["task_id"].str.startswith("fa-")]
    assert (turbo["effective_mode"] == "turbo").all()
    assert (turbo["charged_seconds"] == 80.0).all()
    assert (turbo["run_s"] == 10.0).all()
    assert (fast["effective_mode"] == "fast").all()
    assert (fast["charged_seconds"] == 40.0).all()
    assert runs[0].summary["fast_hours_used"] == (20 * 80 + 10 * 40) / 3600
