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

import pandas as pd

from simulations.sweep import run_sweep
from simulations.sweepfile import SweepGrid, parse_sweep

#: 4 fleets x 4 policies x 1 workload x 4 seeds = 64 scenarios, about 0.3 s each.
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


def _median_time(fn: Callable[[], pd.DataFrame], repeats: int) -> tuple[float, pd.DataFrame]:
    times, df = [], pd.DataFrame()
    for _ in range(repeats):
        t0 = time.perf_counter()
        df = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    grid: SweepGrid = parse_sweep(GRID, source="bench")
    print(f"{grid.size} scenarios, {os.cpu_count()} CPUs, median of {args.repeats} runs")
    t1, ref = _median_time(lambda: run_sweep(grid, workers=1), args.repeats)
    t2, two = _median_time(lambda: run_sweep(grid, workers=2), args.repeats)
    pd.testing.assert_frame_equal(two, ref)
    rows = [("local, 1 worker (baseline)", t1), ("local, 2 workers", t2)]

    from distributed import LocalCluster

    for n in (1, 2):
        s0 = time.perf_counter()
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:
            startup = time.perf_counter() - s0
            addr = cluster.scheduler_address
            td, dk = _median_time(lambda a=addr: run_sweep(grid, dask_address=a), args.repeats)
        pd.testing.assert_frame_equal(dk, ref)
        rows.append((f"Dask LocalCluster, {n} worker(s) (startup {startup:.1f} s not counted)",
                     td))
    print(f"{'how':<62} {'median s':>9} {'speed-up':>9}")
    for name, t in rows:
        print(f"{name:<62} {t:9.2f} {t1 / t:8.2f}x")
    print("tables identical across all runs: yes")


if __name__ == "__main__":
    main()
