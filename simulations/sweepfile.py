"""The sweep file (TOML): a grid of fleets x policies x workloads x seeds.

```toml
days = 14            # simulated horizon of every scenario
seeds = 3            # replicates per grid point, spawned from root_seed
root_seed = 2026

[[fleet]]
name = "4 standard"
standard = 4                    # fast-set accounts per plan: basic/standard/pro/mega
relax_set = { standard = 1 }    # optional: accounts whose own setting is relax
renewal = "spread"              # or "same"
extra_fast_hours = 0
initial_fast = "full"           # or "prorated": start with the part left at an even pace
max_jobs_per_day = 200          # optional: H2 daily cap on every account
min_gap_seconds = 30            # optional: H3 gap on every account

[[policy]]
name = "restore"
strategy = "least_loaded"       # any S strategy; any other router.Policy option too
restore_fast_on_renewal = true  # L4 option
upgrade_relax_when_expiring = false
# seed: not here; the router's seed is each replicate's (seeds, root_seed)

[[workload]]
name = "real week"
trace = "../data/mj2022-week1.events.jsonl.gz"   # relative to this file
repeat = true        # repeat the trace to cover `days` (a week into a billing month)
# or a generator table, passed to the simulator's workload generator:
# [workload.generator]
# rate_per_hour = 20            # any key of a scenario's [workload.generator]
```

Every problem is reported with the file, line, field and what was expected
(``InputError``); all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from router.accounts import Plan, Setting
from router.errors import InputError
from router.io.boundary import parse_toml_model
from router.io.files import read_text
from router.io.limits import MAX_HOURS, MAX_SECONDS, check_time
from router.io.loading import apply_policy, policy_model
from router.io.locate import nearest_line, toml_lines
from router.ledger import Policy
from simulations.facts import DEFAULT_START
from simulations.scenario import (
    MAX_GROUP_ACCOUNTS,
    GeneratorModel,
    checked_days,
    epoch_seconds,
    workload_size_problem,
)
from simulations.spec import FleetGroup, FleetSpec, PolicySpec, WorkloadSpec

_UNKNOWN = "unknown field (see the sweep file format in simulations/sweepfile.py)"

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class PlanCounts(BaseModel):
    model_config = _STRICT
    basic: int = Field(default=0, ge=0, le=MAX_GROUP_ACCOUNTS)
    standard: int = Field(default=0, ge=0, le=MAX_GROUP_ACCOUNTS)
    pro: int = Field(default=0, ge=0, le=MAX_GROUP_ACCOUNTS)
    mega: int = Field(default=0, ge=0, le=MAX_GROUP_ACCOUNTS)


class SweepFleetModel(PlanCounts):
    name: str = Field(min_length=1)
    relax_set: PlanCounts = PlanCounts()
    turbo_set: PlanCounts = PlanCounts()
    renewal: Literal["spread", "same"] = "spread"
    extra_fast_hours: float = Field(default=0.0, ge=0, le=MAX_HOURS, strict=False)
    initial_fast: Literal["full", "prorated"] = "full"
    max_jobs_per_day: int | None = Field(default=None, gt=0)  # H2 on every account
    min_gap_seconds: float = Field(default=0.0, ge=0, le=MAX_SECONDS, strict=False)  # H3

    @model_validator(mode="after")
    def _not_empty(self) -> SweepFleetModel:
        total = sum(getattr(c, p.value) for c in (self, self.relax_set, self.turbo_set)
                    for p in Plan)
        if total == 0:
            raise ValueError("a fleet needs at least one account "
                             "(e.g. standard = 2, or relax_set = { pro = 1 })")
        return self


if TYPE_CHECKING:
    class SweepPolicyModel(BaseModel):
        name: str
else:
    #: ``[[policy]]``: a name and any ``router.Policy`` option but ``seed`` (the router's
    #: seed is each replicate's, so that every policy sees the same random numbers).
    SweepPolicyModel = policy_model("SweepPolicyModel", exclude=frozenset({"seed"}),
                                    name=(str, Field(min_length=1)))


class SweepWorkloadModel(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1)
    trace: str | None = None
    repeat: bool = False
    generator: GeneratorModel | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SweepWorkloadModel:
        if (self.trace is None) == (self.generator is None):
            raise ValueError("give exactly one of 'trace' (a file) or a [workload.generator] "
                             "table")
        return self


class SweepModel(BaseModel):
    model_config = _STRICT
    days: float = Field(default=7.0, gt=0, strict=False)
    seeds: int = Field(default=1, ge=1, le=1000)
    root_seed: int = Field(default=0, ge=0)
    start: float = Field(default=DEFAULT_START, validate_default=True)  # epoch seconds
    fleet: list[SweepFleetModel] = Field(min_length=1)
    policy: list[SweepPolicyModel] = Field(
        default_factory=lambda: [SweepPolicyModel(name="documented")])
    workload: list[SweepWorkloadModel] = Field(min_length=1)

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, v: Any) -> Any:
        return check_time(epoch_seconds(v), v)

    @field_validator("days")
    @classmethod
    def _days(cls, v: float) -> float:
        return checked_days(v)


@dataclass(frozen=True, slots=True)
class SweepGrid:
    """A checked sweep file: the axes of the grid."""

    source: str
    days: float
    seeds: int
    root_seed: int
    start: float
    fleets: tuple[FleetSpec, ...]
    policies: tuple[PolicySpec, ...]
    workloads: tuple[WorkloadSpec, ...]

    @property
    def size(self) -> int:
        return len(self.fleets) * len(self.policies) * len(self.workloads) * self.seeds


def _fleet(m: SweepFleetModel) -> FleetSpec:
    groups: list[FleetGroup] = []
    for setting, counts in ((Setting.FAST, m), (Setting.TURBO, m.turbo_set),
                            (Setting.RELAX, m.relax_set)):
        for plan in Plan:
            n = getattr(counts, plan.value)
            if n:
                groups.append(FleetGroup(plan, n, setting))
    return FleetSpec(m.name, tuple(groups), m.renewal, m.extra_fast_hours, m.initial_fast,
                     m.max_jobs_per_day, m.min_gap_seconds)


def parse_sweep(text: str, *, source: str = "<sweep>", base: Path | None = None) -> SweepGrid:
    """Validate a sweep document; relative trace paths are resolved against ``base``."""
    model = parse_toml_model(text, SweepModel, source, _UNKNOWN)
    lines = toml_lines(text)
    problems = []
    axes: tuple[tuple[str, list[str]], ...] = (
        ("fleet", [f.name for f in model.fleet]),
        ("policy", [str(p.name) for p in model.policy]),
        ("workload", [w.name for w in model.workload]))
    for axis, names in axes:
        seen: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in seen:
                line = nearest_line(lines, (axis, i, "name"))
                problems.append(f"{source}:{line}: {axis}[{i}].name: duplicate name "
                                f"{name!r} (also {axis}[{seen[name]}]); names must be unique")
            seen.setdefault(name, i)
    workloads = []
    for i, w in enumerate(model.workload):
        trace = None
        if w.trace is not None:
            p = Path(w.trace)
            if not p.is_absolute() and base is not None:
                p = base / p
            if not p.is_file():
                line = nearest_line(lines, ("workload", i, "trace"))
                problems.append(f"{source}:{line}: workload[{i}].trace: no such file {str(p)!r}")
            trace = str(p.resolve())
        size = None if w.generator is None else workload_size_problem(
            w.generator.rate_per_hour, model.days)
        if size:
            line = nearest_line(lines, ("workload", i, "generator", "rate_per_hour"))
            where = f"{source}:{line}" if line else source
            problems.append(f"{where}: workload[{i}].generator.rate_per_hour: {size}")
        workloads.append(WorkloadSpec(w.name, trace, w.generator, w.repeat))
    if problems:
        raise InputError("\n".join(problems))
    policies = tuple(
        PolicySpec(str(p.name),
                   apply_policy(Policy(), p, lines=lines, source=source, at=("policy", i)))
        for i, p in enumerate(model.policy))
    return SweepGrid(source, model.days, model.seeds, model.root_seed, model.start,
                     tuple(_fleet(f) for f in model.fleet), policies, tuple(workloads))


def load_sweep(path: str | Path) -> SweepGrid:
    p = Path(path)
    return parse_sweep(read_text(p), source=str(p), base=p.parent)
