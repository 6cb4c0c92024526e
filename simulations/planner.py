"""``byoa plan``: the cheapest fleet that meets the targets for a workload.

1. Profile the workload (``simulations.bounds``): fast GPU hours demanded, the
   busiest hour's fast arrivals, relax demand.
2. Enumerate fleets (accounts per plan, bought fast hours) and prune those that a
   bound shows cannot meet the targets (fast hours vs allowances, Erlang C on
   concurrent fast slots, relax capacity).
3. Walk the survivors from the cheapest, confirming each by simulation with
   several seeds (``simulations.run.run_point`` through the sweep
   executor) under each policy asked for, until two fleets pass: the
   recommendation and the runner-up.
A fleet passes under a policy when *every* seed meets every target; of the
policies under which it passes, the one with the fewest downgrades (then the
least waste) is recommended with it.

With ``max_jobs_per_account_day`` (``byoa plan --max-jobs-per-account-day N``)
every candidate account carries ``max_jobs_per_day = N`` (H2): the router keeps
each account under the cap in the simulations, so a fleet passes only with enough
accounts. A fleet whose accounts together cannot take the workload's mean daily
tasks under the cap is pruned before simulation (``daily cap (H2)``).
"""

from __future__ import annotations

import itertools
import logging
import math
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.accounts import EXTRA_FAST_HOUR_PRICE_USD, PLAN_PRICE_USD, Plan
from simulations.bounds import BoundReport, WorkloadProfile, check_fleet
from simulations.facts import default_start
from simulations.run import run_point
from simulations.spec import PLANS, FleetGroup, FleetSpec, PolicySpec, ScenarioSpec, WorkloadSpec
from simulations.sweep import derive_seed, run_dask, run_local

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Targets:
    """What the fleet must achieve, on every simulated seed."""

    p95_fast_wait_s: float = 300.0
    max_downgraded: float = 0.02  # share of fast/turbo requests run as relax
    allow_rejections: bool = False


@dataclass(slots=True)
class PlanOptions:
    workload: WorkloadSpec
    profile: WorkloadProfile
    days: float
    start: float = field(default_factory=default_start)  # a trace starts with its first task
    targets: Targets = field(default_factory=Targets)
    prices: dict[Plan, float] = field(default_factory=lambda: dict(PLAN_PRICE_USD))
    extra_hour_price: float = EXTRA_FAST_HOUR_PRICE_USD
    extra_hours: tuple[float, ...] = (0.0,)
    plans: tuple[Plan, ...] = PLANS
    max_accounts: int = 30
    max_jobs_per_account_day: int | None = None  # H2 on every candidate account
    policies: tuple[PolicySpec, ...] = (PolicySpec("documented"),)
    seeds: int = 3
    root_seed: int = 0
    max_simulated: int = 12
    bound_slack: float = 2.0
    workers: int = 1
    dask_address: str | None = None
    progress: bool = False


@dataclass(slots=True)
class Candidate:
    fleet: FleetSpec
    policy: PolicySpec
    cost: float
    bounds: BoundReport
    runs: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.runs) and not self.failures

    def evidence(self) -> dict[str, dict[str, float]]:
        """Each target metric across seeds: mean, min, max, stdev and the values."""
        out: dict[str, dict[str, float]] = {}
        for name in METRICS:
            values = [metric(r, name) for r in self.runs]
            out[name] = {"mean": statistics.fmean(values), "min": min(values),
                         "max": max(values),
                         "stdev": statistics.stdev(values) if len(values) > 1 else 0.0}
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet.label(),
            "accounts": {p.value: self.fleet.count(p) for p in PLANS if self.fleet.count(p)},
            "extra_fast_hours": self.fleet.extra_fast_hours,
            "policy": self.policy.name,
            "restore_fast_on_renewal": self.policy.policy.restore_fast_on_renewal,
            "monthly_cost_usd": self.cost,
            "bounds": {
                "fast_allowance_hours_per_month": self.bounds.fast_allowance_per_month,
                "min_downgraded_share": self.bounds.min_downgraded_share,
                "fast_slots": self.bounds.fast_slots,
                "relax_slots": self.bounds.relax_slots,
                "peak_fast_load": self.bounds.peak_load,
                "erlang_c_p95_fast_wait_s": _finite(self.bounds.erlang_p95_wait_s),
            },
            "evidence": self.evidence() if self.runs else {},
            "seeds": len(self.runs),
            "passed": self.passed,
            "failures": self.failures,
        }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


METRICS = ("p95_fast_wait_s", "downgraded_share", "rejected", "wasted_fast_hours",
           "cost_per_1000_images")


def metric(summary: dict[str, Any], name: str) -> float:
    """A planning metric from one run's summary (``summary.json`` keys)."""
    if name == "p95_fast_wait_s":
        waits = summary.get("wait_seconds", {})
        return float(max((waits.get(m, {}) or {}).get("p95", 0.0) or 0.0
                         for m in ("fast", "turbo")))
    if name == "downgraded_share":
        asked = summary.get("tasks_fast_requested", 0) or 0
        return float(summary.get("tasks_downgraded", 0)) / asked if asked else 0.0
    if name == "rejected":
        rej = summary.get("tasks_rejected", {})
        return float(sum(rej.values()) if isinstance(rej, dict) else rej or 0)
    value = summary.get(name, 0.0)
    return float(value) if value is not None else math.nan


def judge(summary: dict[str, Any], t: Targets, seed: int) -> list[str]:
    """Which targets one run misses, for people."""
    out = []
    p95 = metric(summary, "p95_fast_wait_s")
    if p95 > t.p95_fast_wait_s:
        out.append(f"seed {seed}: p95 fast wait {p95:.0f} s > {t.p95_fast_wait_s:g} s")
    down = metric(summary, "downgraded_share")
    if down > t.max_downgraded:
        out.append(f"seed {seed}: {down:.2%} of fast requests downgraded > "
                   f"{t.max_downgraded:.2%}")
    rej = metric(summary, "rejected")
    if rej > 0 and not t.allow_rejections:
        out.append(f"seed {seed}: {rej:.0f} tasks rejected")
    return out


def enumerate_fleets(opts: PlanOptions) -> list[FleetSpec]:
    """Every mix of the allowed plans with 1..max_accounts accounts, times bought hours."""
    fleets: list[FleetSpec] = []
    plans = opts.plans
    for counts in itertools.product(range(opts.max_accounts + 1), repeat=len(plans)):
        total = sum(counts)
        if total == 0 or total > opts.max_accounts:
            continue
        groups = tuple(FleetGroup(p, n) for p, n in zip(plans, counts, strict=True) if n)
        for extra in opts.extra_hours:
            f = FleetSpec("", groups, "spread", extra, "prorated",
                          opts.max_jobs_per_account_day)
            fleets.append(FleetSpec(f.label(), groups, "spread", extra, "prorated",
                                    opts.max_jobs_per_account_day))
    return fleets


def candidates(opts: PlanOptions) -> tuple[list[Candidate], Counter[str]]:
    """Fleets (x policies) that pass the bounds, cheapest first; and why others failed."""
    kept: list[Candidate] = []
    pruned: Counter[str] = Counter()
    t = opts.targets
    cap = opts.max_jobs_per_account_day
    per_day = opts.profile.tasks / opts.profile.days if opts.profile.days > 0 else 0.0
    for fleet in enumerate_fleets(opts):
        if cap is not None and fleet.size * cap < per_day:
            # H2: every task routed counts towards its account's cap, so fewer than
            # tasks/day / cap accounts fall behind by the same amount every day.
            pruned["daily cap (H2)"] += 1
            continue
        rep = check_fleet(fleet, opts.profile, max_downgraded=t.max_downgraded,
                          p95_fast_wait_s=t.p95_fast_wait_s, slack=opts.bound_slack)
        if not rep.ok:
            pruned[rep.verdict.split(":")[0]] += 1
            continue
        cost = fleet.monthly_cost(opts.prices, opts.extra_hour_price)
        for policy in opts.policies:
            kept.append(Candidate(fleet, policy, cost, rep))
    order = {p.name: i for i, p in enumerate(opts.policies)}
    kept.sort(key=lambda c: (round(c.cost, 6), -c.bounds.fast_slots, c.fleet.size,
                             -c.bounds.fast_allowance_per_month, c.fleet.label(),
                             order[c.policy.name]))
    return kept, pruned


def _specs(cands: Sequence[Candidate], opts: PlanOptions, first: int) -> list[ScenarioSpec]:
    specs = []
    for i, c in enumerate(cands):
        for r in range(opts.seeds):
            specs.append(ScenarioSpec(first + i, c.fleet, c.policy, opts.workload, opts.days, r,
                                      opts.root_seed, derive_seed(opts.root_seed, r),
                                      opts.start))
    return specs


@dataclass(slots=True)
class PlanResult:
    options: PlanOptions
    recommendation: Candidate | None
    runner_up: Candidate | None
    simulated: list[Candidate]
    considered: int
    pruned: Counter[str]

    def as_dict(self) -> dict[str, Any]:
        o = self.options
        return {
            "workload": {"name": o.workload.name, "trace": o.workload.trace,
                         "profile": o.profile.as_dict(), "days_simulated": o.days},
            "targets": {"p95_fast_wait_s": o.targets.p95_fast_wait_s,
                        "max_downgraded_share": o.targets.max_downgraded,
                        "allow_rejections": o.targets.allow_rejections,
                        **({"max_jobs_per_account_day": o.max_jobs_per_account_day}
                           if o.max_jobs_per_account_day is not None else {})},
            "prices_usd": {p.value: o.prices[p] for p in PLANS},
            "extra_fast_hour_price_usd": o.extra_hour_price,
            "seeds": o.seeds, "root_seed": o.root_seed,
            "fleets_considered": self.considered,
            "pruned_by_bounds": dict(self.pruned),
            "recommendation": self.recommendation.as_dict() if self.recommendation else None,
            "runner_up": self.runner_up.as_dict() if self.runner_up else None,
            "simulated": [c.as_dict() for c in self.simulated],
        }


def plan(opts: PlanOptions, *, run: Callable[[ScenarioSpec], dict[str, Any]] = run_point
         ) -> PlanResult:
    """Find the recommendation and the runner-up (see the module docstring)."""
    cands, pruned = candidates(opts)
    considered = len(enumerate_fleets(opts))
    log.info("plan: %d fleets, %d candidates after bounds", considered, len(cands))
    groups: list[list[Candidate]] = []  # candidates of one fleet, in policy order
    for c in cands:
        if groups and groups[-1][0].fleet == c.fleet:
            groups[-1].append(c)
        else:
            groups.append([c])
    passed: list[Candidate] = []
    simulated: list[Candidate] = []
    g = 0
    while g < len(groups) and len(simulated) < opts.max_simulated and len(passed) < 2:
        chunk: list[list[Candidate]] = []
        runs = 0
        while g < len(groups) and runs < 2 * opts.workers:
            if len(simulated) + sum(map(len, chunk)) + len(groups[g]) > opts.max_simulated \
                    and chunk:
                break
            chunk.append(groups[g])
            runs += len(groups[g]) * opts.seeds
            g += 1
        flat = [c for group in chunk for c in group]
        specs = _specs(flat, opts, len(simulated))
        if opts.dask_address:
            results = run_dask(specs, opts.dask_address, run=run, progress=opts.progress)
        else:
            results = run_local(specs, opts.workers, run=run, progress=opts.progress)
        for k, c in enumerate(flat):
            c.runs = results[k * opts.seeds:(k + 1) * opts.seeds]
            for r, summary in enumerate(c.runs):
                c.failures.extend(judge(summary, opts.targets, r))
            simulated.append(c)
        for group in chunk:
            ok = [c for c in group if c.passed]
            if ok and len(passed) < 2:
                passed.append(min(ok, key=_quality))
    rec = passed[0] if passed else None
    runner = passed[1] if len(passed) > 1 else None
    return PlanResult(opts, rec, runner, simulated, considered, pruned)


def _quality(c: Candidate) -> tuple[float, float]:
    """Among passing policies of one fleet: fewest downgrades, then least waste."""
    ev = c.evidence()
    return (ev["downgraded_share"]["mean"], ev["wasted_fast_hours"]["mean"])


def _fmt_evidence(c: Candidate) -> list[str]:
    ev = c.evidence()
    rows = ["| metric | mean | min | max | stdev |", "|---|---|---|---|---|"]
    for name, s in ev.items():
        rows.append(f"| {name} | {s['mean']:.4g} | {s['min']:.4g} | {s['max']:.4g} | "
                    f"{s['stdev']:.3g} |")
    return rows


def markdown(res: PlanResult) -> str:
    """The plan for people (printed, and written as plan.md)."""
    o = res.options
    t = o.targets
    p = o.profile
    lines = [
        f"# Fleet plan for {o.workload.name}",
        "",
        f"Workload: {p.tasks} tasks over {p.days:g} days, {p.fast_tasks} fast/turbo "
        f"({p.fast_hours_per_month:.1f} fast GPU hours per 30 days), busiest hour "
        f"{p.peak_fast_per_hour:.0f} fast jobs.",
        f"Targets (every one of {o.seeds} seeds): p95 fast wait <= {t.p95_fast_wait_s:g} s, "
        f"<= {t.max_downgraded:.1%} of fast requests downgraded, "
        + ("rejections allowed." if t.allow_rejections else "no rejections.")
        + (f" Every account at most {o.max_jobs_per_account_day} jobs per UTC day (H2)."
           if o.max_jobs_per_account_day is not None else ""),
        f"Search: {res.considered} fleets; {sum(res.pruned.values())} pruned by bounds "
        f"({', '.join(f'{n} {k}' for k, n in res.pruned.most_common()) or 'none'}); "
        f"{len(res.simulated)} simulated from the cheapest.",
        "",
    ]
    for title, c in (("Recommendation", res.recommendation), ("Runner-up", res.runner_up)):
        if c is None:
            lines += [f"## {title}", "", "none found within the search limits "
                      "(raise --max-accounts or --max-simulated, or relax the targets)", ""]
            continue
        lines += [f"## {title}: {c.fleet.label()}, policy {c.policy.name}",
                  "", f"Monthly cost: ${c.cost:,.2f}", "",
                  f"Bounds: {c.bounds.fast_allowance_per_month:.1f} fast h/month, "
                  f"{c.bounds.fast_slots} fast slots (Erlang-C p95 at the peak "
                  f"{c.bounds.erlang_p95_wait_s:.0f} s).", ""]
        lines += [*_fmt_evidence(c), ""]
    failed = [c for c in res.simulated if not c.passed]
    if failed:
        lines += ["## Candidates that failed in simulation", ""]
        for c in failed:
            lines.append(f"- {c.fleet.label()} (${c.cost:,.2f}, {c.policy.name}): "
                         f"{c.failures[0]}" + (f" (+{len(c.failures) - 1} more)"
                                               if len(c.failures) > 1 else ""))
        lines.append("")
    return "\n".join(lines)
