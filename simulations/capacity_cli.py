"""``byoa sweep`` and ``byoa plan`` (listed in pyproject.toml's ``byoa.commands``)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.accounts import EXTRA_FAST_HOUR_PRICE_USD, PLAN_PRICE_USD, Plan
from router.command import Command
from router.errors import InputError
from router.io.files import atomic_output, output_dir
from router.ledger import Policy
from router.strategies import Strategy

if TYPE_CHECKING:  # imported by the commands when they run: ``byoa --help`` needs none of it
    from simulations.bounds import WorkloadProfile
    from simulations.spec import PolicySpec, WorkloadSpec

#: ``--policies`` names for ``byoa plan`` and the router policy of each
#: (``PLAN_POLICIES``: the same as ``PolicySpec`` objects).
_PLAN_POLICIES: dict[str, Policy] = {
    "documented": Policy(),
    "restore": Policy(restore_fast_on_renewal=True),
    "expiring_first": Policy(Strategy.EXPIRING_FIRST),
    "restore_expiring": Policy(Strategy.EXPIRING_FIRST, restore_fast_on_renewal=True),
    "upgrade": Policy(upgrade_relax_when_expiring=True),
}


def plan_policies() -> dict[str, PolicySpec]:
    """``--policies`` names for ``byoa plan``, each with its ``PolicySpec``."""
    from simulations.spec import PolicySpec

    return {name: PolicySpec(name, policy) for name, policy in _PLAN_POLICIES.items()}


def __getattr__(name: str) -> Any:
    if name == "PLAN_POLICIES":  # built on first use (simulations.spec imports the harness)
        return plan_policies()
    raise AttributeError(f"module 'simulations.capacity_cli' has no attribute {name!r}")


#: Fleets ``byoa plan`` may enumerate (every mix of the plans up to --max-accounts, times
#: each --extra-hours value; all of them are built before the bounds prune them).
MAX_CANDIDATE_FLEETS = 1_000_000


def _workers(value: int | None, flag: str = "--workers") -> int:
    if value is None:
        from simulations.sweep import default_workers

        return default_workers()
    if value < 1:
        raise InputError(f"expected a number of worker processes >= 1, got {value}", field=flag)
    return value


# ---------------------------------------------------------------------- sweep
def cmd_sweep(args: argparse.Namespace) -> int:
    from simulations.sweep import pacing_table, pacing_text, run_sweep, write_table
    from simulations.sweepfile import load_sweep

    grid = load_sweep(args.sweep_file)
    workers = _workers(args.workers)
    where = f"Dask cluster {args.dask}" if args.dask else f"{workers} local worker(s)"
    out = output_dir(args.out, (args.sweep_file,))
    print(f"sweep {args.sweep_file}: {grid.size} scenarios on {where}", file=sys.stderr)
    df = run_sweep(grid, workers=workers, dask_address=args.dask,
                   progress=not args.no_progress, workdir=out / "workloads")
    pq, csv = write_table(df, out)
    cols = [c for c in ("wasted_fast_hours", "tasks_downgraded", "wait_seconds.fast.p95",
                        "wait_seconds.relax.p95", "cost_per_1000_images") if c in df.columns]
    if cols:
        summary = df.groupby(["workload", "fleet", "policy"], sort=False)[cols].mean()
        print(summary.to_string(float_format=lambda x: f"{x:.2f}"))
    if any(f.paced for f in grid.fleets):  # H2/H3: what pacing costs, and its plot
        from simulations.plots import pacing_costs

        costs = pacing_table(df)
        print("\nwhat pacing costs (H2 daily cap, H3 gap; means over replicates):")
        print(pacing_text(costs))
        print(f"plot: {pacing_costs(costs, out / 'plots' / 'pacing_costs.png')}")
    print(f"\n{len(df)} rows -> {pq} and {csv}")
    return 0


def _add_run_options(p: argparse.ArgumentParser, out: str, dask_help: str) -> None:
    """Where simulations run and where results go (shared by sweep and plan)."""
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: one per CPU)")
    p.add_argument("--dask", metavar="ADDRESS", default=None, help=dask_help)
    p.add_argument("--out", default=out, help=f"output folder (default {out})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _setup_sweep(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep_file", metavar="SWEEP_FILE",
                   help="TOML grid: [[fleet]] x [[policy]] x [[workload]] x seeds")
    _add_run_options(p, "out/sweep",
                     "run on an existing Dask distributed scheduler, e.g. tcp://host:8786")
    p.set_defaults(func=cmd_sweep)


# ----------------------------------------------------------------------- plan
def _prices(items: list[str]) -> dict[Plan, float]:
    prices = dict(PLAN_PRICE_USD)
    for item in items:
        name, sep, value = item.partition("=")
        try:
            plan_ = Plan(name.strip().lower())
            usd = float(value)
        except ValueError:
            raise InputError(f"expected PLAN=USD with PLAN one of basic, standard, pro, mega "
                             f"and a price, got {item!r}", field="--price") from None
        if not sep or usd < 0:
            raise InputError(f"expected PLAN=USD with a price >= 0, got {item!r}",
                             field="--price")
        if not math.isfinite(usd):
            raise InputError(f"expected PLAN=USD with a finite price, got {item!r}",
                             field="--price")
        prices[plan_] = usd
    return prices


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(f"expected comma-separated hours >= 0, got {text!r}",
                         field=flag) from None
    if not values or any(not 0 <= v < math.inf for v in values):
        raise InputError(f"expected comma-separated hours >= 0, got {text!r}", field=flag)
    return values


def _names(text: str, allowed: dict[str, Any], flag: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise InputError(f"expected a comma-separated list of {', '.join(allowed)}, "
                         f"got {text!r}", field=flag)
    return names


def _cap(text: str | None) -> int | None:
    """``--max-jobs-per-account-day``: H2's ``max_jobs_per_day``, an integer >= 1."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"expected an integer >= 1 (jobs per account per UTC day, H2), "
                         f"got {text!r}", field="--max-jobs-per-account-day")
    return value


def _workload(args: argparse.Namespace, days: float,
              out: Path) -> tuple[WorkloadSpec, WorkloadProfile]:
    from simulations.bounds import profile_trace
    from simulations.spec import WorkloadSpec
    from simulations.tiling import is_event_script, tile_trace, to_event_script

    if args.trace:
        p = Path(args.trace)
        if not p.is_file():
            raise InputError("no such file", source=str(p), field="--trace")
        if not is_event_script(p):  # CSV / Parquet: the same trace as an event script
            out.mkdir(parents=True, exist_ok=True)
            p = to_event_script(p, out / "workload.jsonl.gz")
            print(f"{args.trace}: converted to {p} (recorded GPU seconds are not carried "
                  "over; the simulation draws them from its cost table)", file=sys.stderr)
        prof = profile_trace(p)
        if days > prof.days:  # a week's trace covers a billing month by repetition
            out.mkdir(parents=True, exist_ok=True)
            tiled = tile_trace(p, days, out / f"workload-{days:g}d.jsonl.gz")
            prof = profile_trace(tiled)
            p = tiled
        return WorkloadSpec(Path(args.trace).name, trace=str(p.resolve())), prof
    from simulations.generator_profile import generator_model, profile_generator

    p = Path(args.generator)
    from router.io.boundary import refuse_toml_bom

    try:
        text = p.read_text(encoding="utf-8")
        refuse_toml_bom(text, str(p))
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise InputError("no such file", source=str(p), field="--generator") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", source=str(p)) from None
    gen = generator_model(data, source=str(p))
    from simulations.scenario import workload_size_problem

    problem = workload_size_problem(gen.rate_per_hour, days)
    if problem:
        raise InputError(problem, source=str(p), field="rate_per_hour")
    return WorkloadSpec(p.stem, generator=gen), profile_generator(gen, days)


def cmd_plan(args: argparse.Namespace) -> int:
    from simulations.planner import PlanOptions, Targets, markdown, plan
    from simulations.spec import PLANS

    prices = _prices(args.price or [])
    if not 0 <= args.extra_hour_price < math.inf:
        raise InputError(f"expected USD >= 0, got {args.extra_hour_price}",
                         field="--extra-hour-price")
    if not 0 <= args.max_downgraded <= 100:
        raise InputError(f"expected a percentage between 0 and 100, got {args.max_downgraded}",
                         field="--max-downgraded")
    if not 0 < args.p95_fast_wait < math.inf:
        raise InputError(f"expected seconds > 0, got {args.p95_fast_wait}",
                         field="--p95-fast-wait")
    cap = _cap(args.max_jobs_per_account_day)
    for flag, value in (("--seeds", args.seeds), ("--max-accounts", args.max_accounts),
                        ("--max-simulated", args.max_simulated)):
        if value < 1:
            raise InputError(f"expected an integer >= 1, got {value}", field=flag)
    if args.root_seed < 0:
        raise InputError(f"expected an integer >= 0, got {args.root_seed}", field="--root-seed")
    if args.days <= 0:
        raise InputError(f"expected days > 0, got {args.days}", field="--days")
    from simulations.scenario import days_problem

    problem = days_problem(args.days)
    if problem:
        raise InputError(problem, field="--days")
    plans = tuple(Plan(n) for n in _names(args.plans, {p.value: p for p in PLANS}, "--plans"))
    specs = plan_policies()
    policies = tuple(specs[n] for n in _names(args.policies, specs, "--policies"))
    extra_hours = _floats(args.extra_hours, "--extra-hours")
    fleets = (math.comb(args.max_accounts + len(plans), len(plans)) - 1) * len(extra_hours)
    if fleets > MAX_CANDIDATE_FLEETS:
        raise InputError(f"{args.max_accounts} accounts of {len(plans)} plans with "
                         f"{len(extra_hours)} --extra-hours value(s) are {fleets:,} fleets to "
                         f"weigh; at most {MAX_CANDIDATE_FLEETS:,} (lower --max-accounts or "
                         "give fewer --plans)", field="--max-accounts")
    out = output_dir(args.out, (args.trace,))
    workload, profile = _workload(args, args.days, out)
    opts = PlanOptions(
        workload=workload, profile=profile, days=args.days,
        targets=Targets(args.p95_fast_wait, args.max_downgraded / 100.0, args.allow_rejections),
        prices=prices, extra_hour_price=args.extra_hour_price,
        extra_hours=extra_hours, plans=plans,
        max_accounts=args.max_accounts,
        max_jobs_per_account_day=cap, policies=policies,
        seeds=args.seeds,
        root_seed=args.root_seed, max_simulated=args.max_simulated,
        workers=_workers(args.workers), dask_address=args.dask,
        progress=not args.no_progress)
    result = plan(opts)
    text = markdown(result)
    with atomic_output(out / "plan.md") as fh:
        fh.write(text + "\n")
    with atomic_output(out / "plan.json") as fh:
        fh.write(json.dumps(result.as_dict(), indent=2) + "\n")
    print(text)
    print(f"written: {out / 'plan.json'} and {out / 'plan.md'}")
    return 0 if result.recommendation is not None else 1


def _setup_plan(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--trace", help="workload trace: event script (JSON Lines), CSV or "
                     "Parquet (the simulator's columns); .gz ok")
    src.add_argument("--generator", help="workload generator parameters (TOML, the keys of a "
                     "scenario's [workload.generator])")
    p.add_argument("--days", type=float, default=30.0,
                   help="simulated days (default 30, one billing month; a shorter trace is "
                   "repeated to cover them)")
    prices = " ".join(f"{plan.value}={usd:g}" for plan, usd in PLAN_PRICE_USD.items())
    p.add_argument("--price", action="append", metavar="PLAN=USD",
                   help=f"monthly plan price, repeatable (default {prices}, docs/facts.md)")
    p.add_argument("--extra-hour-price", type=float, default=EXTRA_FAST_HOUR_PRICE_USD,
                   help=f"USD per bought fast hour (default {EXTRA_FAST_HOUR_PRICE_USD:g})")
    p.add_argument("--extra-hours", default="0",
                   help="bought fast hours per month to consider, comma-separated (default 0)")
    p.add_argument("--p95-fast-wait", type=float, default=300.0,
                   help="target: p95 wait of fast jobs, seconds (default 300)")
    p.add_argument("--max-downgraded", type=float, default=2.0,
                   help="target: at most this %% of fast requests run as relax (default 2)")
    p.add_argument("--allow-rejections", action="store_true",
                   help="do not require zero rejected tasks")
    p.add_argument("--plans", default="basic,standard,pro,mega",
                   help="plans to mix (default all four)")
    p.add_argument("--max-accounts", type=int, default=30,
                   help="largest fleet considered (default 30)")
    p.add_argument("--max-jobs-per-account-day", default=None, metavar="N",
                   help="every account at most N jobs per UTC day (H2 max_jobs_per_day on "
                   "each candidate account; default: no cap)")
    p.add_argument("--policies", default="documented,restore,restore_expiring",
                   help=f"router policies to try, of {', '.join(_PLAN_POLICIES)} "
                   "(default documented,restore,restore_expiring)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per candidate (default 3)")
    p.add_argument("--root-seed", type=int, default=0, help="root of the seed sequence")
    p.add_argument("--max-simulated", type=int, default=12,
                   help="candidates simulated at most (default 12)")
    _add_run_options(p, "out/plan", "simulate on an existing Dask distributed scheduler")
    p.set_defaults(func=cmd_plan)


SWEEP = Command("run a grid of simulations (fleets x policies x workloads x seeds)",
                _setup_sweep, order=40)
PLAN = Command("recommend the cheapest fleet that meets targets for a workload", _setup_plan,
               order=50)
