"""``byoa simulate`` end to end on the default scenario (what ``make demo`` runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.cli import main

SCENARIOS = Path(__file__).resolve().parent.parent / "simulations" / "scenarios"


def test_simulate_default_scenario_writes_tables_summary_and_plots(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["simulate", str(SCENARIOS / "default.toml"), "--out", str(out),
                 "--no-progress", "--days", "20"]) == 0
    printed = capsys.readouterr().out
    assert "wasted fast hours" in printed and "cost per 1000 images" in printed
    for name in ("tasks", "periods", "fast_time"):
        assert (out / f"{name}.parquet").stat().st_size > 0
        assert (out / f"{name}.csv").stat().st_size > 0
    for png in ("fast_time_burn_down", "waste_by_period_and_cause", "wait_distribution_by_mode"):
        path = out / "plots" / f"{png}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(path) in printed
    s = json.loads((out / "summary.json").read_text())
    for key in ("wasted_fast_hours", "wasted_fast_hours_by_cause", "tasks_total",
                "tasks_fast_requested", "tasks_downgraded", "tasks_rejected",
                "wait_seconds", "cost_per_1000_images"):
        assert key in s
    for mode in ("fast", "relax"):
        w = s["wait_seconds"][mode]
        assert w["p50"] <= w["p95"] <= w["p99"]
    # Two relax-set Standard accounts (R6): 15 h each expire at each of their renewals.
    assert s["wasted_fast_hours_by_cause"]["relax_set_by_user"] % 15.0 == 0.0
    assert s["wasted_fast_hours_by_cause"]["relax_set_by_user"] > 0


def test_simulate_variants_get_one_folder_each(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp"
    assert main(["simulate", str(SCENARIOS / "policy_comparison.toml"), "--out", str(out),
                 "--no-progress", "--no-plots", "--days", "40"]) == 0
    a = json.loads((out / "documented" / "summary.json").read_text())
    b = json.loads((out / "restore_fast" / "summary.json").read_text())
    assert a["tasks_total"] == b["tasks_total"]  # common random numbers
    assert a["wasted_fast_hours_by_cause"]["flipped_not_restored"] > 0
    assert b["wasted_fast_hours_by_cause"]["flipped_not_restored"] == 0.0
    assert "documented" in capsys.readouterr().out
