"""``byoa simulate`` (listed in pyproject.toml's ``byoa.commands`` entry points).

    byoa simulate SCENARIO.toml [--out DIR]
    byoa simulate --accounts accounts.json --trace trace.jsonl.gz --days 7 [--out DIR]

Prints a summary table for people, and where the tables, ``summary.json`` and
the plots were written. A progress bar (stderr) appears on runs longer than a
couple of seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.command import Command
from router.errors import InputError
from router.io.files import output_dir

if TYPE_CHECKING:  # imported by the command when it runs: ``byoa --help`` needs none of it
    from simulations.run import Progress, Run
    from simulations.scenario import SimulationModel
    from simulations.spec import RunSpec


def _progress_factory(enabled: bool) -> Callable[[str], Progress] | None:
    if not enabled:
        return None
    from tqdm import tqdm

    def factory(name: str) -> Progress:
        bar = tqdm(total=1000, desc=f"simulating {name}", unit="‰", file=sys.stderr,
                   delay=2.0, leave=False, bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                   "{elapsed}<{remaining}")
        state = {"n": 0}

        def update(frac: float) -> None:
            n = int(frac * 1000)
            if n > state["n"]:
                bar.update(n - state["n"])
                state["n"] = n
            if n >= 1000:
                bar.close()

        return update

    return factory


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def summary_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """The lines of the people's summary table for one run."""
    w = s["wait_seconds"]
    causes = s["wasted_fast_hours_by_cause"]
    rows = [
        ("accounts", _fmt(s["accounts"])),
        ("horizon (days)", _fmt(s["horizon"]["days"])),
        ("tasks total", _fmt(s["tasks_total"])),
        ("  fast/turbo requested", _fmt(s["tasks_fast_requested"])),
        ("  downgraded to relax", _fmt(s["tasks_downgraded"])),
        ("  completed", _fmt(s["tasks_completed"])),
        ("  failed", _fmt(s["tasks_failed"])),
        ("  rejected", ", ".join(f"{k} {v:,}" for k, v in sorted(s["tasks_rejected"].items()))
         or "0"),
        ("  unfinished at end", _fmt(s["tasks_unfinished"])),
        ("  queued (pool_saturated)", _fmt(s["tasks_queued_once"])),
        ("fast hours used", _fmt(s["fast_hours_used"])),
        ("wasted fast hours", _fmt(s["wasted_fast_hours"])),
        ("  relax-set by the user", _fmt(causes["relax_set_by_user"])),
        ("  flipped, never restored", _fmt(causes["flipped_not_restored"])),
        ("  no demand", _fmt(causes["no_demand"])),
        ("renewals in horizon", _fmt(s["renewals_in_horizon"])),
        ("flips (L3)", _fmt(s["flips"])),
    ]
    for mode in ("fast", "turbo", "relax"):
        m = w[mode]
        if m["n"]:
            rows.append((f"wait {mode} p50/p95/p99 (s)",
                         f"{m['p50']:,.0f} / {m['p95']:,.0f} / {m['p99']:,.0f}"))
    rows.append(("images", _fmt(s["images"])))
    rows.append(("fleet cost (USD, prorated)", _fmt(s["fleet_cost_usd"])))
    rows.append(("cost per 1000 images (USD)", _fmt(s["cost_per_1000_images"])))
    return rows


def summary_table(runs: list[Run]) -> str:
    """A plain-text table: one column per run (variant)."""
    cols = [summary_rows(r.summary) for r in runs]
    labels = [label for label, _ in cols[0]]
    heads = [r.name for r in runs]
    lw = max(len(x) for x in labels)
    widths = [max(len(h), *(len(v) for _, v in c)) for h, c in zip(heads, cols, strict=True)]
    lines = ["".ljust(lw) + "  " + "  ".join(h.rjust(w) for h, w in
                                             zip(heads, widths, strict=True))]
    for i, label in enumerate(labels):
        vals = "  ".join(c[i][1].rjust(w) for c, w in zip(cols, widths, strict=True))
        lines.append(f"{label.ljust(lw)}  {vals}")
    return "\n".join(lines)


def _simulation(base: SimulationModel, args: argparse.Namespace) -> SimulationModel:
    """``base`` with ``--days`` and ``--seed`` when given, checked as the scenario's
    ``[simulation]`` table is (a bad value is ``--days: ...``, exit 2)."""
    from pydantic import ValidationError

    from router.io.boundary import describe_error

    changes = {k: v for k, v in (("days", args.days), ("seed", args.seed)) if v is not None}
    if not changes:
        return base
    try:
        return type(base).model_validate({**base.model_dump(), **changes})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(describe_error(err, "unknown field"),
                         field=f"--{err['loc'][0]}") from None


def _trace_spec(args: argparse.Namespace) -> RunSpec:
    """``--accounts F --trace T --days D``: the accounts file's accounts and policy,
    as ``byoa replay`` reads them, on the trace from its first task on."""
    if not args.accounts or not args.trace or args.days is None:
        missing = [n for n, v in (("--accounts", args.accounts), ("--trace", args.trace),
                                  ("--days", args.days)) if not v]
        raise InputError("give a SCENARIO file, or --accounts, --trace and --days together",
                         field=missing[0] if missing else None)
    from router.io.loading import load_accounts
    from simulations.run import load_workload
    from simulations.scenario import ExecutionModel, SimulationModel
    from simulations.spec import RunSpec

    simulation = _simulation(SimulationModel(), args)
    accounts, policy = load_accounts(args.accounts)
    execution = ExecutionModel()
    trace = Path(args.trace)  # as given: messages name the file as the user wrote it
    workload, start = load_workload(trace, None, simulation, execution)
    return RunSpec(trace.name, accounts, policy, workload, start, simulation, execution)


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulations.run import run, scenario_specs, write_outputs
    from simulations.scenario import load_scenario

    t0 = time.perf_counter()
    if args.scenario:
        if args.accounts or args.trace:
            raise InputError("give either a SCENARIO file or --accounts/--trace/--days",
                             field="--accounts")
        source = args.scenario
        sc = load_scenario(source)
        sc.simulation = _simulation(sc.simulation, args)
        name, description = sc.name, sc.description
        specs = scenario_specs(sc, source=source, base=Path(source).resolve().parent)
    else:
        specs = [_trace_spec(args)]
        name, description = specs[0].name, ""
    out = output_dir(args.out or Path("out") / "simulate" / name,
                     (args.scenario, args.accounts, args.trace))
    factory = _progress_factory(not args.no_progress)
    runs = [run(spec, factory(spec.variant or name) if factory else None) for spec in specs]
    print(f"byoa simulate: {name}" + (f" — {description}" if description else ""))
    print(summary_table(runs))
    print()
    for result in runs:
        target = out / result.name if len(runs) > 1 else out
        files = write_outputs(result, target, plots=not args.no_plots)
        plots = [f for f in files if f.suffix == ".png"]
        print(f"[{result.name}] tables and summary.json in {target}/")
        for p in plots:
            print(f"[{result.name}] plot: {p}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", nargs="?", help="scenario file (TOML)")
    parser.add_argument("--accounts", help="accounts file (with --trace and --days)")
    parser.add_argument("--trace", help="trace: event script (.jsonl[.gz]), .csv[.gz], .parquet")
    parser.add_argument("--days", type=float, help="horizon in days (overrides the scenario)")
    parser.add_argument("--seed", type=int, help="random seed (overrides the scenario)")
    parser.add_argument("--out", help="output folder (default out/simulate/NAME)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_simulate)


COMMAND = Command("the SimPy harness on a scenario or a trace", setup, order=30)
