"""``byoa sweep``: run a grid of scenarios and gather one tidy table.

Seeds: replicate ``r`` of every grid point gets the seed spawned as child ``r``
of ``numpy.random.SeedSequence(root_seed)``. Fleets, policies and workloads
that share a replicate therefore see the same random workload (common random
numbers), and any row can be re-run alone from its ``root_seed`` and
``replicate`` columns (``scenario_from_row``) with the same numbers (D1).

Execution: local worker processes (``concurrent.futures``) by default, or an
existing Dask distributed cluster (``dask_address``). Each scenario is a pure
function of its spec, so the table does not depend on where it ran.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.context
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from router.errors import InputError
from simulations.run import run_point
from simulations.spec import ScenarioSpec
from simulations.sweepfile import SweepGrid
from simulations.tiling import tile_trace

log = logging.getLogger(__name__)

RunFn = Callable[[ScenarioSpec], dict[str, Any]]


def derive_seed(root_seed: int, replicate: int) -> int:
    """The seed of replicate ``replicate``: child of ``SeedSequence(root_seed)``."""
    child = np.random.SeedSequence(root_seed, spawn_key=(replicate,))
    return int(child.generate_state(1, dtype=np.uint32)[0])


def expand(grid: SweepGrid) -> list[ScenarioSpec]:
    """Every fleet x policy x workload x replicate, in a stable order."""
    specs: list[ScenarioSpec] = []
    for workload in grid.workloads:
        for fleet in grid.fleets:
            for policy in grid.policies:
                for r in range(grid.seeds):
                    specs.append(ScenarioSpec(
                        len(specs), fleet, policy, workload, grid.days, r, grid.root_seed,
                        derive_seed(grid.root_seed, r), grid.start))
    return specs


def _progress(total: int, show: bool, desc: str) -> tqdm[Any]:
    return tqdm(total=total, desc=desc, unit="run", disable=not show, leave=False)


#: Worker processes run single-threaded math libraries: a simulation is one thread, and
#: idle OpenBLAS/OpenMP threads spinning in every worker cost more than they give (on
#: 2 CPUs they ate the whole speed-up of a second worker). Dask's nanny does the same.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: Imported once by the fork server, so that each worker starts warm.
PRELOAD = ["simulations.run", "simulations.metrics"]


@contextlib.contextmanager
def _worker_env() -> Iterator[None]:
    """Set ``WORKER_ENV`` (unless the user set them) while workers are started."""
    saved = {k: os.environ.get(k) for k in WORKER_ENV}
    for k, v in WORKER_ENV.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


def _mp_context() -> multiprocessing.context.BaseContext:
    """A fork server (started single-threaded, modules preloaded), else spawn.

    Not plain fork: a child forked from a process whose OpenBLAS already runs
    several threads keeps them busy and runs each simulation about half as fast.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def run_local(specs: Sequence[ScenarioSpec], workers: int = 1, *, run: RunFn = run_point,
              progress: bool = False) -> list[dict[str, Any]]:
    """Run ``specs`` on ``workers`` local processes (1: in this process)."""
    results: list[dict[str, Any] | None] = [None] * len(specs)
    with _progress(len(specs), progress, "sweep") as bar:
        if workers <= 1:
            for i, spec in enumerate(specs):
                results[i] = run(spec)
                bar.update()
        else:
            with _worker_env(), ProcessPoolExecutor(max_workers=workers,
                                                    mp_context=_mp_context()) as pool:
                futures = {pool.submit(run, spec): i for i, spec in enumerate(specs)}
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    bar.update()
    return [r for r in results if r is not None]


def run_dask(specs: Sequence[ScenarioSpec], address: str, *, run: RunFn = run_point,
             progress: bool = False) -> list[dict[str, Any]]:
    """Run ``specs`` on the Dask distributed scheduler at ``address``.

    The workers must be able to import this package and read the trace files
    the specs name (same paths).
    """
    import importlib

    distributed: Any = importlib.import_module("distributed")  # untyped library
    results: list[dict[str, Any] | None] = [None] * len(specs)
    try:
        client = distributed.Client(address)
    except (OSError, TimeoutError, ValueError) as exc:  # unreachable, or not an address
        raise InputError(f"cannot reach the scheduler ({exc})",
                         field=f"--dask {address}") from None
    with client, _progress(len(specs), progress, "sweep (dask)") as bar:
        futures = client.map(run, list(specs), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in distributed.as_completed(futures):
            results[index[fut.key]] = fut.result()
            bar.update()
    return [r for r in results if r is not None]


#: Summary keys that repeat the scenario's own parameters (the row has them).
SUMMARY_SKIP = frozenset({"scenario", "variant", "policy", "plans", "accounts"})


def flatten(summary: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested summary metrics to ``a.b.c`` columns (lists are skipped)."""
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten(value, f"{name}.")
        elif isinstance(value, (int, float, str, bool)) or value is None:
            yield name, value


def table(specs: Sequence[ScenarioSpec], results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per scenario: its parameters, then its summary metrics."""
    rows = []
    for spec, summary in zip(specs, results, strict=True):
        row = spec.row()
        for name, value in flatten(summary):
            if name.split(".")[0] not in SUMMARY_SKIP and name not in row:
                row[name] = value
        rows.append(row)
    df = pd.DataFrame(rows)
    counts = [c for c in df.columns if c.startswith("tasks_rejected.")]
    if counts:
        df[counts] = df[counts].fillna(0).astype("int64")
    return df


def materialize(grid: SweepGrid, workdir: Path) -> SweepGrid:
    """Write the repeated traces (``repeat = true``) once, into ``workdir``."""
    workloads = []
    for w in grid.workloads:
        if w.repeat and w.trace is not None:
            name = f"{Path(w.trace).name.split('.')[0]}-{grid.days:g}d.jsonl.gz"
            tiled = workdir / name
            if not tiled.exists():
                workdir.mkdir(parents=True, exist_ok=True)
                tile_trace(w.trace, grid.days, tiled)
            w = replace(w, trace=str(tiled.resolve()), repeat=False)
        workloads.append(w)
    return replace(grid, workloads=tuple(workloads))


def run_sweep(grid: SweepGrid, *, workers: int = 1, dask_address: str | None = None,
              progress: bool = False, run: RunFn = run_point,
              workdir: Path | None = None) -> pd.DataFrame:
    """Expand ``grid``, run every scenario, return the tidy table.

    ``workdir`` receives repeated traces (default: a temporary folder).
    """
    if any(w.repeat for w in grid.workloads):
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="byoa-sweep-"))
        grid = materialize(grid, workdir)
    specs = expand(grid)
    log.info("sweep %s: %d scenarios", grid.source, len(specs))
    if dask_address:
        results = run_dask(specs, dask_address, run=run, progress=progress)
    else:
        results = run_local(specs, workers, run=run, progress=progress)
    return table(specs, results)


def write_table(df: pd.DataFrame, out: Path, stem: str = "sweep") -> tuple[Path, Path]:
    """Write ``stem.parquet`` and ``stem.csv`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    pq, csv = out / f"{stem}.parquet", out / f"{stem}.csv"
    df.to_parquet(pq, index=False)
    df.to_csv(csv, index=False)
    return pq, csv


#: The columns of ``pacing_table``, in print order.
PACING_COLUMNS = ("accounts", "max_jobs_per_day", "min_gap_seconds", "wait_p50_s", "wait_p95_s",
                  "fast_wait_p95_s", "p95_vs_unpaced", "queued_share", "downgraded_share")


def pacing_table(df: pd.DataFrame) -> pd.DataFrame:
    """What pacing (H2 caps, H3 gaps) costs, per workload, fleet and policy (means over
    replicates): waits from ready to start of all tasks (p50, p95) and of fast ones
    (p95), the p95 against the grid's first unpaced fleet on the same workload and
    policy, the share of tasks that waited in the central queue (``pool_saturated``,
    R5) and the share of fast/turbo requests run as relax."""
    d = df.copy()
    for col in ("max_jobs_per_day", "min_gap_seconds", "wait_seconds.fast.p95"):
        if col not in d.columns:
            d[col] = np.nan
    d["wait_p50_s"] = d["wait_seconds.all.p50"]
    d["wait_p95_s"] = d["wait_seconds.all.p95"]
    d["fast_wait_p95_s"] = d["wait_seconds.fast.p95"]
    d["queued_share"] = d["tasks_queued_once"] / d["tasks_total"].where(d["tasks_total"] > 0)
    asked = d["tasks_fast_requested"].where(d["tasks_fast_requested"] > 0)
    d["downgraded_share"] = (d["tasks_downgraded"] / asked).fillna(0.0)
    keys = ["workload", "fleet", "policy"]
    cols = [c for c in PACING_COLUMNS if c != "p95_vs_unpaced"]
    t = d.groupby(keys, sort=False)[cols].mean()
    paced = t["max_jobs_per_day"].notna() | (t["min_gap_seconds"].fillna(0) > 0)
    ratio = pd.Series(np.nan, index=t.index)
    for _, group in t.groupby(level=["workload", "policy"], sort=False):
        base = group[~paced.loc[group.index]]
        if not base.empty:
            ratio.loc[group.index] = group["wait_p95_s"] / base["wait_p95_s"].iloc[0]
    t.insert(PACING_COLUMNS.index("p95_vs_unpaced"), "p95_vs_unpaced", ratio)
    return t


def pacing_text(t: pd.DataFrame) -> str:
    """``pacing_table`` for people: one line per row; the workload and policy are
    named only when the grid has more than one."""
    idx = t.index.to_frame(index=False)
    show = ["fleet"] + [k for k in ("policy", "workload") if idx[k].nunique() > 1]
    head = [*show, "accounts", "cap/day", "gap s", "wait p50 s", "wait p95 s",
            "fast p95 s", "p95 vs unpaced", "queued", "downgraded"]

    def num(x: float, fmt: str) -> str:
        return "-" if pd.isna(x) else format(x, fmt)

    rows = []
    for (_, r), (_, key) in zip(t.reset_index(drop=True).iterrows(), idx.iterrows(),
                                strict=True):
        rows.append([*(str(key[k]) for k in show), num(r["accounts"], ".0f"),
                     num(r["max_jobs_per_day"], ".0f"), num(r["min_gap_seconds"], "g"),
                     num(r["wait_p50_s"], ",.0f"), num(r["wait_p95_s"], ",.0f"),
                     num(r["fast_wait_p95_s"], ",.0f"), num(r["p95_vs_unpaced"], ".2f"),
                     num(100.0 * r["queued_share"], ".1f") + " %",
                     num(100.0 * r["downgraded_share"], ".1f") + " %"])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    n = len(show)

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < n else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(head), *(line(row) for row in rows)])


def scenario_from_row(grid: SweepGrid, row: dict[str, Any] | pd.Series) -> ScenarioSpec:
    """Rebuild the spec of one table row from the grid and the row's names and seed."""
    fleet = next(f for f in grid.fleets if f.name == row["fleet"])
    policy = next(p for p in grid.policies if p.name == row["policy"])
    workload = next(w for w in grid.workloads if w.name == row["workload"])
    r = int(row["replicate"])
    return ScenarioSpec(int(row["scenario"]), fleet, policy, workload, float(row["days"]), r,
                        int(row["root_seed"]), derive_seed(int(row["root_seed"]), r), grid.start)


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)
