"""Analytic bounds that prune fleets before any simulation.

Two necessary conditions, cheap to check for thousands of fleets:

* **Fast hours.** A month's fast demand ``D`` (GPU hours of fast work, turbo
  counted twice, L1) against the fleet's monthly fast allowance ``A`` (fast- and
  turbo-set accounts, plus bought hours). Once the allowance is spent, fast
  requests fall back to relax (R3), so at least ``1 - A/D`` of the fast demand
  is downgraded.
* **Concurrent slots.** Fast jobs arriving at the busiest hour's rate ``lambda``
  with mean run time ``S`` on ``c`` fast slots (the plan table's concurrent fast
  jobs) form an M/M/c queue: with offered load ``a = lambda S >= c`` it is
  unstable; otherwise Erlang C gives ``P(wait) = C(c, a)`` and the p95 wait
  ``S / (c - a) * ln(C / 0.05)``. Real traffic is burstier than Poisson, so the
  planner prunes only fleets whose Erlang-C p95 exceeds the target by a slack
  factor, and confirms the rest by simulation.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.accounts import (
    MS_PER_HOUR,
    PLAN_ALLOWANCE_MS,
    PLAN_FAST_SLOTS,
    PLAN_HAS_RELAX,
    PLAN_RELAX_SLOTS,
    Setting,
)
from router.errors import InvalidRequest
from router.io.events import read_events
from router.requests import parse_request
from simulations.facts import BILLING_MONTH_DAYS, GPU_SECONDS, TURBO_SPEEDUP
from simulations.spec import FleetSpec


@dataclass(slots=True)
class WorkloadProfile:
    """What the bounds need to know about a workload."""

    days: float
    tasks: int = 0
    fast_tasks: int = 0  # requested fast or turbo (children inherit, M5)
    relax_tasks: int = 0
    fast_gpu_hours: float = 0.0  # charge: turbo counts twice (L1)
    relax_gpu_hours: float = 0.0
    fast_run_seconds: float = 0.0  # sum of fast run times (turbo 4x faster)
    peak_fast_per_hour: float = 0.0
    by_type: dict[str, int] = field(default_factory=dict)

    @property
    def fast_hours_per_month(self) -> float:
        return self.fast_gpu_hours / self.days * BILLING_MONTH_DAYS

    @property
    def mean_fast_run_seconds(self) -> float:
        return self.fast_run_seconds / self.fast_tasks if self.fast_tasks else 60.0

    @property
    def relax_per_hour(self) -> float:
        return self.relax_tasks / (self.days * 24.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days, "tasks": self.tasks, "fast_tasks": self.fast_tasks,
            "relax_tasks": self.relax_tasks, "fast_gpu_hours": self.fast_gpu_hours,
            "fast_hours_per_month": self.fast_hours_per_month,
            "relax_gpu_hours": self.relax_gpu_hours,
            "peak_fast_per_hour": self.peak_fast_per_hour,
            "mean_fast_run_seconds": self.mean_fast_run_seconds, "by_type": self.by_type,
        }


def profile_tasks(tasks: Iterable[tuple[float, str, str]], days: float | None = None,
                  gpu_seconds: Mapping[str, float] = GPU_SECONDS) -> WorkloadProfile:
    """Profile ``(time, task_type, requested mode)`` triples."""
    hours: Counter[int] = Counter()
    by_type: Counter[str] = Counter()
    first = last = None
    p = WorkloadProfile(days=1.0)
    for at, task_type, mode in tasks:
        first = at if first is None else min(first, at)
        last = at if last is None else max(last, at)
        p.tasks += 1
        by_type[task_type] += 1
        gpu = gpu_seconds.get(task_type, 60.0)
        if mode == "relax":
            p.relax_tasks += 1
            p.relax_gpu_hours += gpu / 3600.0
        else:
            turbo = mode == "turbo"
            p.fast_tasks += 1
            p.fast_gpu_hours += gpu * (2 if turbo else 1) / 3600.0
            p.fast_run_seconds += gpu / TURBO_SPEEDUP if turbo else gpu
            hours[int(at // 3600)] += 1
    span = ((last or 0.0) - (first or 0.0)) / 86_400.0
    p.days = days if days is not None else max(1.0, math.ceil(span))
    p.peak_fast_per_hour = float(max(hours.values(), default=0))
    p.by_type = dict(sorted(by_type.items()))
    return p


def profile_trace(path: str | Path, gpu_seconds: Mapping[str, float] = GPU_SECONDS
                  ) -> WorkloadProfile:
    """Profile an event script: submits, requested modes (M1-M3, children M5)."""
    modes: dict[str, str] = {}
    triples: list[tuple[float, str, str]] = []
    for ev in read_events(path):
        if ev.op != "submit":
            continue
        try:
            req = parse_request(ev.raw["request"])
        except InvalidRequest:
            continue
        if req.is_child:
            mode = modes.get(req.origin_task_id or "")
            if mode is None:
                continue
        else:
            assert req.resolved is not None
            mode = req.resolved.mode.value
        if req.public:
            continue
        modes[ev.task_id] = mode
        triples.append((ev.at, req.task_type, mode))
    return profile_tasks(triples, gpu_seconds=gpu_seconds)


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in M/M/c with offered load ``a`` (1.0 if unstable)."""
    if c <= 0 or a >= c:
        return 1.0
    if a <= 0:
        return 0.0
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1.0 - b))


def erlang_c_wait_quantile(c: int, a: float, service_s: float, q: float = 0.95) -> float:
    """The ``q`` quantile of the M/M/c wait in seconds (inf if unstable)."""
    if c <= 0 or a >= c:
        return math.inf
    pw = erlang_c(c, a)
    tail = 1.0 - q
    if pw <= tail:
        return 0.0
    return service_s / (c - a) * math.log(pw / tail)


@dataclass(slots=True, frozen=True)
class BoundReport:
    """The bounds of one fleet against one workload."""

    fast_allowance_per_month: float
    min_downgraded_share: float
    fast_slots: int
    relax_slots: int
    peak_load: float
    erlang_p95_wait_s: float
    relax_load: float
    verdict: str  # "ok" or why the fleet cannot meet the targets

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


def fast_allowance_hours(fleet: FleetSpec) -> float:
    """Monthly fast hours of fast/turbo-set accounts plus bought hours (R6: relax-set
    accounts never spend theirs)."""
    return sum(PLAN_ALLOWANCE_MS[g.plan] / MS_PER_HOUR * g.count
               for g in fleet.groups if g.setting is not Setting.RELAX) + fleet.extra_fast_hours


def check_fleet(fleet: FleetSpec, wl: WorkloadProfile, *, max_downgraded: float,
                p95_fast_wait_s: float, slack: float = 2.0) -> BoundReport:
    """Prune ``fleet`` if a bound shows it cannot meet the targets."""
    allowance = fast_allowance_hours(fleet)
    demand = wl.fast_hours_per_month
    min_down = max(0.0, 1.0 - allowance / demand) if demand > 0 else 0.0
    fast_slots = sum(PLAN_FAST_SLOTS[g.plan] * g.count for g in fleet.groups
                     if g.setting is not Setting.RELAX)
    relax_slots = sum(PLAN_RELAX_SLOTS[g.plan] * g.count for g in fleet.groups)
    s = wl.mean_fast_run_seconds
    a = wl.peak_fast_per_hour / 3600.0 * s
    p95 = erlang_c_wait_quantile(fast_slots, a, s) if wl.fast_tasks else 0.0
    relax_run = sum(GPU_SECONDS.get(t, 60.0) * n for t, n in wl.by_type.items()) / max(wl.tasks, 1)
    relax_load = (wl.relax_per_hour + wl.fast_tasks * min_down / (wl.days * 24.0)) \
        / 3600.0 * relax_run
    has_relax = any(PLAN_HAS_RELAX[g.plan] for g in fleet.groups)
    if wl.relax_tasks and not has_relax:
        verdict = "no account can run relax (all Basic): relax requests are rejected (R4)"
    elif min_down > max_downgraded:
        verdict = (f"fast hours: {allowance:.1f} h/month for {demand:.1f} h/month demanded, "
                   f"at least {min_down:.1%} of fast work downgraded")
    elif wl.fast_tasks and a >= fast_slots:
        verdict = (f"fast slots: peak load {a:.1f} jobs in service needs more than "
                   f"{fast_slots} slots")
    elif p95 > p95_fast_wait_s * slack:
        verdict = (f"Erlang C: p95 fast wait at the peak hour {p95:.0f} s > "
                   f"{slack:g} x target {p95_fast_wait_s:g} s")
    elif relax_load >= relax_slots and (wl.relax_tasks or min_down > 0):
        verdict = (f"relax slots: mean relax load {relax_load:.1f} needs more than "
                   f"{relax_slots} slots")
    else:
        verdict = "ok"
    return BoundReport(allowance, min_down, fast_slots, relax_slots, a, p95, relax_load, verdict)
