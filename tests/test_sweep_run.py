"""Sweeps through the real simulator: re-runnable rows, workers, policies, the command."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from router.cli import main
from simulations.run import run_point
from simulations.sweep import expand, flatten, run_sweep, scenario_from_row
from simulations.sweepfile import SweepGrid, parse_sweep

TINY = """\
days = 1
seeds = 2
root_seed = 42

[[fleet]]
name = "std"
standard = 1

[[fleet]]
name = "pro+relax"
pro = 1
relax_set = { standard = 1 }

[[policy]]
name = "documented"

[[policy]]
name = "restore"
restore_fast_on_renewal = true

[[workload]]
name = "gen"
[workload.generator]
rate_per_hour = 6
"""


@pytest.fixture(scope="module")
def grid() -> SweepGrid:
    return parse_sweep(TINY, source="tiny.toml")


@pytest.fixture(scope="module")
def local_table(grid: SweepGrid) -> pd.DataFrame:
    return run_sweep(grid, workers=2)


def test_sweep_table_has_every_scenario_parameters_and_metrics(
        grid: SweepGrid, local_table: pd.DataFrame) -> None:
    df = local_table
    assert len(df) == grid.size == 8
    assert list(df["scenario"]) == list(range(8))
    for col in ("fleet", "policy", "workload", "replicate", "seed", "n_standard",
                "restore_fast_on_renewal", "wasted_fast_hours", "tasks_downgraded",
                "wait_seconds.fast.p95", "cost_per_1000_images", "tasks_total"):
        assert col in df.columns, col
    assert (df["tasks_total"] > 0).all()


def test_sweep_same_replicate_same_workload_common_random_numbers(
        local_table: pd.DataFrame) -> None:
    """Every fleet and policy of one replicate sees the same arrivals (CRN)."""
    for _r, group in local_table.groupby("replicate"):
        assert group["tasks_total"].nunique() == 1
    assert local_table.groupby("replicate")["tasks_total"].first().nunique() == 2


def test_sweep_any_row_rerun_alone_gives_the_same_numbers_D1(
        grid: SweepGrid, local_table: pd.DataFrame) -> None:
    for idx in (0, 5):
        row = local_table.iloc[idx]
        spec = scenario_from_row(grid, row)
        assert spec == expand(grid)[idx]
        again = dict(flatten(run_point(spec)))
        for key in ("wasted_fast_hours", "tasks_total", "tasks_downgraded",
                    "wait_seconds.fast.p95", "wait_seconds.relax.p95", "fast_hours_used"):
            assert again[key] == pytest.approx(row[key], nan_ok=True, rel=0, abs=0), key


def test_sweep_two_workers_give_the_table_of_one_worker(
        grid: SweepGrid, local_table: pd.DataFrame) -> None:
    one = run_sweep(grid, workers=1)
    pd.testing.assert_frame_equal(one, local_table)


def test_sweep_command_writes_parquet_and_csv(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "tiny.toml"
    f.write_text(TINY.replace("seeds = 2", "seeds = 1"))
    out = tmp_path / "out"
    assert main(["sweep", str(f), "--workers", "2", "--out", str(out), "--no-progress"]) == 0
    pq = pd.read_parquet(out / "sweep.parquet")
    csv = pd.read_csv(out / "sweep.csv")
    assert len(pq) == len(csv) == 4
    assert list(pq["wasted_fast_hours"]) == pytest.approx(list(csv["wasted_fast_hours"]))
    printed = capsys.readouterr().out
    assert "4 rows ->" in printed and "wasted_fast_hours" in printed


def test_sweep_command_bad_file_exits_2_with_file_line_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(TINY.replace("restore_fast_on_renewal = true", 'restore_fast_on_renewal = "yes"'))
    assert main(["sweep", str(f), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"byoa sweep: {f}:" in err and "policy[1].restore_fast_on_renewal" in err


def test_sweep_command_bad_workers_exits_2(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "tiny.toml"
    f.write_text(TINY)
    assert main(["sweep", str(f), "--workers", "0"]) == 2
    assert "--workers: expected a number of worker processes >= 1" in capsys.readouterr().err


POLICIES = """\
days = 20
seeds = 1
root_seed = 3

[[fleet]]
name = "one fast-set standard"
standard = 1

[[policy]]
name = "documented"

[[policy]]
name = "upgrade"
upgrade_relax_when_expiring = true

[[workload]]
name = "relax only"
[workload.generator]
rate_per_hour = 4
modes = { relax = 1.0 }
followups = []
"""


def test_sweep_upgrade_relax_when_expiring_recovers_fast_hours_no_demand_would_waste() -> None:
    """One fast-set Standard, only relax requests, renewal on day 15 of 20: under the
    documented rules its 15 h expire unused (cause no_demand); the opt-in upgrade runs
    relax requests as fast in the 48 h before the renewal and wastes less."""
    df = run_sweep(parse_sweep(POLICIES), workers=2)
    doc = df[df["policy"] == "documented"].iloc[0]
    up = df[df["policy"] == "upgrade"].iloc[0]
    assert doc["wasted_fast_hours"] == pytest.approx(15.0)
    assert doc["wasted_fast_hours_by_cause.no_demand"] == pytest.approx(15.0)
    assert doc["fast_hours_used"] == 0.0
    assert up["fast_hours_used"] > 0.0
    assert up["wasted_fast_hours"] < doc["wasted_fast_hours"]
    # L4 conservation: the closed period's allowance = used + expired.
    assert up["wasted_fast_hours"] == pytest.approx(15.0 - up["fast_hours_used"], abs=1e-6)
