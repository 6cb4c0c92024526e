"""Sweep throughput: 64 small scenarios on 1 and 2 local workers and on Dask.

Baseline: the same sweep with ``--workers 1`` (in this process), in the same run.
Reports the median of several repeats and the speed-up ratios; checks that every
way of running gives the identical table. A benchmark, not a test: no assertion
on time.

    .venv/bin/python benchmarks/bench_sweep.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from simulations.run import run_point
from simulations.spec import ScenarioSpec
from simulations.sweep import run_sweep
from simulations.sweepfile import SweepGrid, parse_sweep

#: 4 fleets x 4 policies x 1 workload x 4 seeds = 64 scenarios, about 0.15 s each.
GRID = """\
days = 3
seeds = 4
root_seed = 64

[[fleet]]
name = "2 standard"
standard = 2

[[fleet]]
name = "1 pro"
pro = 1

[[fleet]]
name = "1 pro + 1 standard"
pro = 1
standard = 1

[[fleet]]
name = "3 standard + 1 relax-set"
standard = 3
relax_set = { standard = 1 }

[[policy]]
name = "documented"

[[policy]]
name = "expiring_first"
strategy = "expiring_first"

[[policy]]
name = "restore"
restore_fast_on_renewal = true

[[policy]]
name = "upgrade"
upgrade_relax_when_expiring = true

[[workload]]
name = "generated"
[workload.generator]
rate_per_hour = 12
"""


def run_measured(spec: ScenarioSpec) -> dict[str, Any]:
    """``run_point`` plus the CPU time its process spent on it."""
    c0 = time.process_time()
    summary = run_point(spec)
    summary["bench_cpu_seconds"] = time.process_time() - c0
    return summary


def _timed(fn: Callable[[], pd.DataFrame]) -> tuple[float, float, pd.DataFrame]:
    t0 = time.perf_counter()
    df = fn()
    cpu = float(df["bench_cpu_seconds"].sum())
    return time.perf_counter() - t0, cpu, df.drop(columns="bench_cpu_seconds")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    grid: SweepGrid = parse_sweep(GRID, source="bench")
    load = os.getloadavg()[0]
    print(f"{grid.size} scenarios, {os.cpu_count()} CPUs, load average {load:.2f} before "
          f"the run, median of {args.repeats} interleaved runs")
    ref = run_sweep(grid, workers=1)  # warm-up and the reference table
    run = run_measured

    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as c2:
        addr = c2.scheduler_address
        ways: dict[str, Callable[[], pd.DataFrame]] = {
            "local, 1 worker (baseline)": lambda: run_sweep(grid, workers=1, run=run),
            "local, 2 workers": lambda: run_sweep(grid, workers=2, run=run),
            "Dask LocalCluster, 2 workers": lambda: run_sweep(grid, dask_address=addr, run=run),
        }
        n_workers = {"local, 1 worker (baseline)": 1, "local, 2 workers": 2,
                     "Dask LocalCluster, 2 workers": 2}
        times: dict[str, list[float]] = {k: [] for k in ways}
        cpus: dict[str, list[float]] = {k: [] for k in ways}
        for _ in range(args.repeats):  # interleaved, so outside load hits every way alike
            for name, fn in ways.items():
                t, cpu, df = _timed(fn)
                pd.testing.assert_frame_equal(df, ref)
                times[name].append(t)
                cpus[name].append(cpu)
    base = times["local, 1 worker (baseline)"]
    print(f"{'how':<30} {'median s':>9} {'speed-up':>9} {'CPU s':>7} {'CPU got':>8}")
    for name, ts in times.items():
        ratio = statistics.median(b / t for b, t in zip(base, ts, strict=True))
        cpu = statistics.median(cpus[name])
        got = statistics.median(c / (t * n_workers[name])
                                for c, t in zip(cpus[name], ts, strict=True))
        print(f"{name:<30} {statistics.median(ts):9.2f} {ratio:8.2f}x {cpu:7.2f} {got:8.0%}")
    print("speed-up: median of per-run ratios to the baseline; CPU s: CPU time the "
          "simulations used (summed over workers); CPU got: that / (wall x workers), "
          "below 100 % when other jobs share the CPUs")
    print(f"load average after the run {os.getloadavg()[0]:.2f}; "
          "tables identical across all runs: yes")


if __name__ == "__main__":
    main()
