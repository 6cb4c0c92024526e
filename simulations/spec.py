"""The in-memory descriptions of simulation runs.

``RunSpec`` is one run, in the harness's own terms: ``router.Account`` objects, a
``router.Policy``, a ``Workload`` read once, and the validated ``[simulation]`` and
``[execution]`` tables (times as epoch seconds). A scenario file, ``byoa simulate
--accounts F --trace T``, and each point of a sweep or a plan all become a
``RunSpec``, and ``simulations.run.run`` runs it.

A ``ScenarioSpec`` is one point of a sweep or plan grid, as small picklable data sent
to worker processes: a fleet (accounts per plan and setting), a named ``Policy``, a
workload (a trace file or generator parameters), a horizon in days and the seed.
``simulations.run.run_point`` turns one into its ``RunSpec`` and summary metrics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from router.accounts import EXTRA_FAST_HOUR_PRICE_USD, PLAN_PRICE_USD, Account, Plan, Setting
from router.ledger import Policy
from router.timeutil import DAY
from simulations.facts import default_start
from simulations.harness import RunOptions
from simulations.scenario import ExecutionModel, GeneratorModel, SimulationModel
from simulations.workload import Workload

PLANS: tuple[Plan, ...] = (Plan.BASIC, Plan.STANDARD, Plan.PRO, Plan.MEGA)


@dataclass(frozen=True, slots=True)
class FleetGroup:
    """``count`` accounts of one plan and one setting."""

    plan: Plan
    count: int
    setting: Setting = Setting.FAST


@dataclass(frozen=True, slots=True)
class FleetSpec:
    """A fleet: groups of accounts; renewals ``spread`` over the month or all ``same``.

    ``extra_fast_hours``: fast hours bought on top of the plans' allowances
    (docs/facts.md, about $4/hour); the simulation gives them to the
    account that renews last (they are assumed to expire at its renewal, the
    conservative reading of an unconfirmed fact).
    """

    name: str
    groups: tuple[FleetGroup, ...]
    renewal: str = "spread"
    extra_fast_hours: float = 0.0
    initial_fast: str = "full"
    max_jobs_per_day: int | None = None  # H2 on every account (None: no cap)
    min_gap_seconds: float = 0.0  # H3 on every account

    @property
    def paced(self) -> bool:
        """Whether the accounts carry a daily cap (H2) or a gap (H3)."""
        return self.max_jobs_per_day is not None or self.min_gap_seconds > 0

    def pacing_label(self) -> str:
        """``cap 200/day, gap 30 s`` (empty for an unpaced fleet)."""
        parts = []
        if self.max_jobs_per_day is not None:
            parts.append(f"cap {self.max_jobs_per_day}/day")
        if self.min_gap_seconds > 0:
            parts.append(f"gap {self.min_gap_seconds:g} s")
        return ", ".join(parts)

    def count(self, plan: Plan, setting: Setting | None = None) -> int:
        return sum(g.count for g in self.groups
                   if g.plan is plan and (setting is None or g.setting is setting))

    @property
    def size(self) -> int:
        return sum(g.count for g in self.groups)

    def monthly_cost(self, prices: dict[Plan, float] | None = None,
                     extra_hour_price: float = EXTRA_FAST_HOUR_PRICE_USD) -> float:
        """Plan prices (docs/facts.md defaults) plus bought fast hours."""
        table = PLAN_PRICE_USD if prices is None else prices
        return (sum(table[g.plan] * g.count for g in self.groups)
                + self.extra_fast_hours * extra_hour_price)

    def label(self) -> str:
        parts = []
        for plan in PLANS:
            for setting in Setting:
                n = self.count(plan, setting)
                if n:
                    tail = "" if setting is Setting.FAST else f" ({setting.value}-set)"
                    parts.append(f"{n} {plan.value}{tail}")
        if self.extra_fast_hours:
            parts.append(f"+{self.extra_fast_hours:g} h extra")
        label = " + ".join(parts) or "no accounts"
        return f"{label} ({self.pacing_label()})" if self.paced else label


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A named router ``Policy`` (its ``seed`` is replaced by each replicate's)."""

    name: str = "documented"
    policy: Policy = field(default_factory=Policy)

    def columns(self) -> dict[str, Any]:
        """The policy's name and its single-valued options, as table columns."""
        out: dict[str, Any] = {"policy": self.name}
        for f in dataclasses.fields(Policy):
            value = getattr(self.policy, f.name)
            if f.name == "seed" or isinstance(value, dict):
                continue  # the replicate's seed has its own column; tables are flat
            out[f.name] = getattr(value, "value", value)
        return out


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """A trace file (event script, CSV or Parquet) or generator parameters."""

    name: str
    trace: str | None = None
    generator: GeneratorModel | None = None
    repeat: bool = False  # repeat a shorter trace to cover the horizon (simulations.tiling)


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """Everything one simulation run needs; re-running it gives the same numbers (D1)."""

    index: int
    fleet: FleetSpec
    policy: PolicySpec
    workload: WorkloadSpec
    days: float
    replicate: int
    root_seed: int
    seed: int
    start: float = field(default_factory=default_start)  # a trace starts with its first task

    def row(self) -> dict[str, Any]:
        """The scenario's parameters as flat table columns."""
        out: dict[str, Any] = {
            "scenario": self.index,
            "fleet": self.fleet.name,
            "fleet_label": self.fleet.label(),
            "accounts": self.fleet.size,
        }
        for plan in PLANS:
            out[f"n_{plan.value}"] = self.fleet.count(plan, Setting.FAST) + self.fleet.count(
                plan, Setting.TURBO)
            out[f"n_{plan.value}_relax_set"] = self.fleet.count(plan, Setting.RELAX)
        out["extra_fast_hours"] = self.fleet.extra_fast_hours
        out["renewal"] = self.fleet.renewal
        out["monthly_cost_usd"] = self.fleet.monthly_cost()
        if self.fleet.paced:  # H2/H3 columns only for paced fleets (other tables unchanged)
            out["max_jobs_per_day"] = self.fleet.max_jobs_per_day
            out["min_gap_seconds"] = self.fleet.min_gap_seconds
        out.update(self.policy.columns())
        out["workload"] = self.workload.name
        out["days"] = self.days
        out["replicate"] = self.replicate
        out["root_seed"] = self.root_seed
        out["seed"] = self.seed
        return out


@dataclass(slots=True)
class RunSpec:
    """Everything one simulation run needs; running it twice gives the same numbers (D1).

    ``accounts`` are copied for each run (the ledger changes them as it goes).
    """

    name: str
    accounts: list[Account]
    policy: Policy
    workload: Workload
    start: float  # epoch seconds: the [simulation] start, a trace's first task, or the default
    simulation: SimulationModel = field(default_factory=SimulationModel)
    execution: ExecutionModel = field(default_factory=ExecutionModel)
    variant: str = ""

    def options(self, progress: Any = None) -> RunOptions:
        """The harness's run options: horizon, sampling, re-route tick, incidents."""
        sim, ex = self.simulation, self.execution
        return RunOptions(
            start=self.start, horizon_end=self.start + sim.days * DAY, drain=sim.drain,
            sample_s=sim.sample_minutes * 60.0, retry_s=sim.retry_seconds,
            ban_rate=ex.ban_per_1000_jobs / 1000.0, ban_s=ex.ban_hours * 3600.0,
            captcha_rate=ex.captcha_per_1000_jobs / 1000.0, captcha_s=ex.captcha_minutes * 60.0,
            progress=progress,
        )
