"""Run descriptions -> ``RunSpec`` -> one simulation each -> summaries and files.

``run(spec)`` is the one seam between the descriptions of a run and the SimPy
harness: a scenario file (``scenario_specs``, one spec per variant on a shared
workload), an accounts file and a trace (``byoa simulate --accounts F --trace T``,
in ``simulations.cli``), and each point of a sweep or plan (``run_point``) all
end there. A trace is read once; its first task is the run's start unless the
description names one.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.errors import InputError
from simulations.facts import DEFAULT_FAILURE_RATE, default_start
from simulations.fleet import scenario_accounts, spec_accounts
from simulations.harness import SimResult, simulate
from simulations.metrics import summary
from simulations.scenario import (
    ExecutionModel,
    GeneratorModel,
    ScenarioModel,
    SimulationModel,
    workload_size_problem,
)
from simulations.spec import RunSpec, ScenarioSpec
from simulations.traces import read_trace
from simulations.workload import Workload, generate

log = logging.getLogger(__name__)

Progress = Callable[[float], None]


@dataclass(slots=True)
class Run:
    """One finished run (a variant of a scenario, or a grid point)."""

    name: str
    result: SimResult
    summary: dict[str, Any]


def run(spec: RunSpec, progress: Progress | None = None) -> Run:
    """Simulate ``spec`` (its accounts copied, so the spec can run again)."""
    accounts = copy.deepcopy(spec.accounts)
    res = simulate(accounts, spec.policy, spec.workload, spec.execution,
                   spec.options(progress), seed=spec.simulation.seed)
    return Run(spec.variant or "main", res,
               summary(res, name=spec.name, variant=spec.variant))


def load_workload(trace: Path | None, generator: GeneratorModel | None,
                  simulation: SimulationModel, execution: ExecutionModel,
                  source: str = "") -> tuple[Workload, float]:
    """The workload, every random draw fixed by the seed (CRN), and the run's start:
    ``simulation.start``, else a trace's first task, else ``facts.DEFAULT_START``.

    Generated workloads fail ``DEFAULT_FAILURE_RATE`` of their tasks unless the
    execution model says otherwise; traces only on request.
    """
    seed, rate = simulation.seed, execution.failure_rate
    if trace is not None:
        wl = read_trace(trace, execution, seed, 0.0 if rate is None else rate)
        start = simulation.start
        if start is None:
            start = float(wl.arrival[0]) if wl.n else default_start()
        return wl, start
    start = default_start() if simulation.start is None else simulation.start
    generator = generator or GeneratorModel()
    problem = workload_size_problem(generator.rate_per_hour, simulation.days)
    if problem:
        raise InputError(problem, source=source, field="workload.generator.rate_per_hour")
    return (generate(generator, execution, start, simulation.days, seed,
                     DEFAULT_FAILURE_RATE if rate is None else rate), start)


def scenario_specs(sc: ScenarioModel, *, source: str = "<scenario>",
                   base: Path | None = None) -> list[RunSpec]:
    """One ``RunSpec`` per variant (or the scenario alone), all on one workload."""
    trace = None
    if sc.workload.trace is not None:
        trace = Path(sc.workload.trace)
        if base is not None and not trace.is_absolute():
            trace = base / trace
    wl, start = load_workload(trace, sc.workload.generator, sc.simulation, sc.execution,
                              source)
    return [RunSpec(sc.name, scenario_accounts(sc, source, base, start), policy, wl, start,
                    sc.simulation, sc.execution, variant)
            for variant, policy in sc.policies(source=source)]


def run_scenario(sc: ScenarioModel, *, source: str = "<scenario>", base: Path | None = None,
                 progress_factory: Callable[[str], Progress] | None = None) -> list[Run]:
    """Every variant (or the scenario alone) on the same workload."""
    runs: list[Run] = []
    for spec in scenario_specs(sc, source=source, base=base):
        prog = progress_factory(spec.variant or sc.name) if progress_factory else None
        runs.append(run(spec, prog))
        log.info("variant %s done", spec.variant or "main")
    return runs


def point_spec(point: ScenarioSpec) -> RunSpec:
    """The ``RunSpec`` of one sweep or plan point: its fleet from the start on, its
    policy with the replicate's seed, its workload (a trace starts with its first task)."""
    wl = point.workload
    trace = Path(wl.trace) if wl.trace is not None else None
    simulation = SimulationModel(start=None if trace is not None else point.start,
                                 days=point.days, seed=point.seed)
    execution = ExecutionModel()
    workload, start = load_workload(trace, wl.generator, simulation, execution)
    policy = dataclasses.replace(point.policy.policy, seed=point.seed)
    return RunSpec(f"scenario-{point.index}", spec_accounts(point.fleet, start), policy,
                   workload, start, simulation, execution)


def run_point(point: ScenarioSpec) -> dict[str, Any]:
    """Simulate one sweep or plan point and return its summary metrics (pure in
    ``point``, D1): the keys of ``summary.json`` (``wasted_fast_hours``,
    ``tasks_downgraded``, ``wait_seconds`` by mode, ``cost_per_1000_images``, ...).
    Sweeps and the planner call nothing else."""
    return run(point_spec(point)).summary


def write_outputs(result: Run, out: Path, *, plots: bool = True, csv: bool = True
                  ) -> list[Path]:
    """Tables (Parquet and CSV), ``summary.json`` and the plots; returns the files."""
    from simulations.metrics import fast_time_table, periods_table, tasks_table

    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    tables = {"tasks": tasks_table(result.result), "periods": periods_table(result.result),
              "fast_time": fast_time_table(result.result)}
    for name, df in tables.items():
        pq = out / f"{name}.parquet"
        df.to_parquet(pq, index=False)
        files.append(pq)
        if csv:
            c = out / f"{name}.csv"
            df.to_csv(c, index=False)
            files.append(c)
    sj = out / "summary.json"
    sj.write_text(json.dumps(result.summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    files.append(sj)
    if plots:
        from simulations.plots import write_plots
        files.extend(write_plots(tables, out / "plots"))
    return files

