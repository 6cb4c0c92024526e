"""``--dask``: the same sweep on a real Dask distributed cluster gives the same table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from distributed import LocalCluster

from router.cli import main
from simulations.sweep import run_sweep
from simulations.sweepfile import parse_sweep

GRID = """\
days = 1
seeds = 2
root_seed = 9

[[fleet]]
name = "std"
standard = 2

[[fleet]]
name = "pro"
pro = 1

[[policy]]
name = "documented"

[[policy]]
name = "expiring_first"
strategy = "expiring_first"

[[workload]]
name = "gen"
[workload.generator]
rate_per_hour = 6
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as c:
        yield c


def test_sweep_on_a_dask_local_cluster_of_two_workers_matches_the_local_run(
        cluster: LocalCluster) -> None:
    grid = parse_sweep(GRID)
    local = run_sweep(grid, workers=2)
    dask = run_sweep(grid, dask_address=cluster.scheduler_address)
    assert len(dask) == grid.size == 8
    pd.testing.assert_frame_equal(dask, local)


def test_sweep_command_with_dask_writes_the_same_table(cluster: LocalCluster,
                                                       tmp_path: Path) -> None:
    f = tmp_path / "grid.toml"
    f.write_text(GRID.replace("seeds = 2", "seeds = 1"))
    assert main(["sweep", str(f), "--workers", "1", "--out", str(tmp_path / "a"),
                 "--no-progress"]) == 0
    assert main(["sweep", str(f), "--dask", cluster.scheduler_address,
                 "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / "sweep.parquet"),
                                  pd.read_parquet(tmp_path / "b" / "sweep.parquet"))


def test_plan_on_a_dask_cluster_gives_the_local_plan(cluster: LocalCluster,
                                                     tmp_path: Path) -> None:
    from small_trace import write_small_trace

    trace = write_small_trace(tmp_path / "small.jsonl")
    common = ["plan", "--trace", str(trace), "--days", "2", "--seeds", "2",
              "--max-accounts", "4", "--policies", "documented", "--no-progress"]
    assert main([*common, "--workers", "2", "--out", str(tmp_path / "local")]) == 0
    assert main([*common, "--dask", cluster.scheduler_address,
                 "--out", str(tmp_path / "dask")]) == 0
    local = json.loads((tmp_path / "local" / "plan.json").read_text())
    dask = json.loads((tmp_path / "dask" / "plan.json").read_text())
    assert dask["recommendation"] == local["recommendation"]
    assert dask["simulated"] == local["simulated"]


def test_sweep_with_an_unreachable_scheduler_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No scheduler at the address: a message naming --dask, not an OSError traceback."""
    import dask

    f = tmp_path / "grid.toml"
    f.write_text(GRID)
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = main(["sweep", str(f), "--dask", "tcp://127.0.0.1:1",
                     "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "byoa sweep: --dask tcp://127.0.0.1:1: cannot reach the scheduler (Timed out trying "
        "to connect to tcp://127.0.0.1:1 after 1 s)")
