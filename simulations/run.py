"""Scenario -> workload -> one simulation per variant -> tables, summary, plots."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.accounts import Account
from router.ledger import Policy
from router.timeutil import DAY, parse_time
from simulations.fleet import build_accounts, build_policy
from simulations.harness import RunOptions, SimResult, simulate
from simulations.scenario import ScenarioModel, VariantModel
from simulations.traces import read_trace
from simulations.workload import Workload, generate

log = logging.getLogger(__name__)

#: Default failure rate of generated workloads (not in the facts; an assumption).
DEFAULT_FAILURE_RATE = 0.02


@dataclass(slots=True)
class Run:
    """One finished variant."""

    name: str
    result: SimResult
    summary: dict[str, Any]


def failure_rate(sc: ScenarioModel) -> float:
    """Generated workloads fail 2 % by default; traces only on request."""
    if sc.execution.failure_rate is not None:
        return sc.execution.failure_rate
    return 0.0 if sc.workload.trace is not None else DEFAULT_FAILURE_RATE


DEFAULT_START = "2026-01-01T00:00:00Z"


def build_workload(sc: ScenarioModel, base: Path | None) -> Workload:
    """The scenario's workload, every random draw fixed by the seed (CRN)."""
    seed = sc.simulation.seed
    if sc.workload.trace is not None:
        p = Path(sc.workload.trace)
        if base is not None and not p.is_absolute():
            p = base / p
        return read_trace(p, sc.execution, seed, failure_rate(sc))
    gen = sc.workload.generator
    if gen is None:
        from simulations.scenario import GeneratorModel
        gen = GeneratorModel()
    return generate(gen, sc.execution, parse_time(sc.simulation.start or DEFAULT_START),
                    sc.simulation.days, seed, failure_rate(sc))


def options(sc: ScenarioModel, start: float,
            progress: Callable[[float], None] | None = None) -> RunOptions:
    ex = sc.execution
    return RunOptions(
        start=start, horizon_end=start + sc.simulation.days * DAY, drain=sc.simulation.drain,
        sample_s=sc.simulation.sample_minutes * 60.0, retry_s=sc.simulation.retry_seconds,
        ban_rate=ex.ban_per_1000_jobs / 1000.0, ban_s=ex.ban_hours * 3600.0,
        captcha_rate=ex.captcha_per_1000_jobs / 1000.0, captcha_s=ex.captcha_minutes * 60.0,
        progress=progress,
    )


def run_one(sc: ScenarioModel, accounts: list[Account], policy: Policy, wl: Workload,
            start: float, variant: str = "",
            progress: Callable[[float], None] | None = None) -> Run:
    from simulations.metrics import summary

    res = simulate(accounts, policy, wl, sc.execution, options(sc, start, progress),
                   seed=sc.simulation.seed)
    return Run(variant or "main", res, summary(res, name=sc.name, variant=variant))


def run_scenario(sc: ScenarioModel, *, source: str = "<scenario>", base: Path | None = None,
                 progress_factory: Callable[[str], Callable[[float], None]] | None = None,
                 ) -> list[Run]:
    """Every variant (or the scenario alone) on the same workload."""
    wl = build_workload(sc, base)
    if sc.simulation.start is not None:
        start = parse_time(sc.simulation.start)
    elif sc.workload.trace is not None and wl.n:
        start = float(wl.arrival[0])  # a trace starts with its first task by default
    else:
        start = parse_time(DEFAULT_START)
    variants: list[VariantModel | None] = list(sc.variants) or [None]
    runs: list[Run] = []
    for v in variants:
        accounts = build_accounts(sc, source, base, start)
        policy = build_policy(sc.policy, v)
        name = v.name if v is not None else ""
        prog = progress_factory(name or sc.name) if progress_factory else None
        runs.append(run_one(sc, accounts, policy, wl, start, name, prog))
        log.info("variant %s done", name or "main")
    return runs


def write_outputs(run: Run, out: Path, *, plots: bool = True, csv: bool = True) -> list[Path]:
    """Tables (Parquet and CSV), ``summary.json`` and the plots; returns the files."""
    from simulations.metrics import fast_time_table, periods_table, tasks_table

    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    tables = {"tasks": tasks_table(run.result), "periods": periods_table(run.result),
              "fast_time": fast_time_table(run.result)}
    for name, df in tables.items():
        pq = out / f"{name}.parquet"
        df.to_parquet(pq, index=False)
        files.append(pq)
        if csv:
            c = out / f"{name}.csv"
            df.to_csv(c, index=False)
            files.append(c)
    sj = out / "summary.json"
    sj.write_text(json.dumps(run.summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    files.append(sj)
    if plots:
        from simulations.plots import write_plots
        files.extend(write_plots(tables, out / "plots"))
    return files
