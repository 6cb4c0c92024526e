"""One scenario of a sweep or a plan, as plain picklable data.

A ``ScenarioSpec`` names a fleet (accounts per plan and setting), a policy
(the router's documented options plus the opt-in ``upgrade_relax_when_expiring``),
a workload (a trace file or generator parameters), a horizon in days and the
seed. ``simulations.runner.run_scenario`` turns one into summary metrics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from router.accounts import PLAN_PRICE_USD, Plan, Setting
from router.strategies import Strategy

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

    def count(self, plan: Plan, setting: Setting | None = None) -> int:
        return sum(g.count for g in self.groups
                   if g.plan is plan and (setting is None or g.setting is setting))

    @property
    def size(self) -> int:
        return sum(g.count for g in self.groups)

    def monthly_cost(self, prices: dict[Plan, float] | None = None,
                     extra_hour_price: float = 4.0) -> float:
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
        return " + ".join(parts) or "no accounts"


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """The router policy of a scenario (``router.ledger.Policy`` fields)."""

    name: str = "documented"
    strategy: Strategy = Strategy.LEAST_LOADED
    restore_fast_on_renewal: bool = False
    fallback_on_saturation: bool = False
    upgrade_relax_when_expiring: bool = False
    upgrade_relax_horizon_hours: float = 48.0


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """A trace file (event script, CSV or Parquet) or generator parameters."""

    name: str
    trace: str | None = None
    generator: tuple[tuple[str, Any], ...] = ()
    repeat: bool = False  # repeat a shorter trace to cover the horizon (simulations.tiling)

    @property
    def generator_params(self) -> dict[str, Any]:
        return dict(self.generator)


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
    start: str = "2026-11-02T00:00:00Z"

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
        pol = asdict(self.policy)
        out["policy"] = pol.pop("name")
        out["strategy"] = self.policy.strategy.value
        pol.pop("strategy")
        out.update(pol)
        out["workload"] = self.workload.name
        out["days"] = self.days
        out["replicate"] = self.replicate
        out["root_seed"] = self.root_seed
        out["seed"] = self.seed
        return out
