"""The scenario file (TOML): fleet, policy, workload, horizon and execution model.

Every parameter has a documented default; the Midjourney numbers come from
``docs/facts.md`` (plan table, ~1 GPU-minute per job,
turbo ~2x the charge for ~4x the speed, relax waits of 0-10 minutes growing with
relax use). Validation happens here, at the boundary, with pydantic; a mistake is
reported as ``file:line: field: what was expected`` (``router.errors.InputError``).

A minimal scenario::

    [simulation]
    days = 7

    [[fleet.groups]]
    plan = "standard"
    count = 3

    [workload.generator]
    rate_per_hour = 30
"""

from __future__ import annotations

import math
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from router.accounts import (
    CHILD_TYPES,
    PLAN_FAST_SLOTS,
    PLAN_RELAX_SLOTS,
    ROOT_TYPES,
    Plan,
    Setting,
    Status,
)
from router.io.boundary import parse_toml_model
from router.io.files import read_text
from router.io.limits import MAX_HOURS, MAX_SECONDS, MAX_WEIGHT, check_time
from router.io.loading import AccountModel, PolicyModel, WindowModel, apply_policy, policy_model
from router.io.locate import toml_lines
from router.ledger import Policy
from router.timeutil import parse_time
from simulations.facts import DEFAULT_DAILY_PROFILE, GPU_SECONDS, TURBO_SPEEDUP

_UNKNOWN = "unknown field (see simulations/scenario.py for the scenario format)"

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)

#: The horizon's bounds in days: at least 0.001 (86.4 s), at most 3660 (ten years;
#: the generator allocates per hour of the horizon).
MIN_DAYS = 0.001
MAX_DAYS = 3660.0
#: Root arrivals per hour a generator may ask for, and how many root tasks a
#: generated workload may expect in all (``rate_per_hour`` x 24 x days): the
#: workload is drawn in memory before the run.
MAX_RATE_PER_HOUR = 100_000.0
#: Accounts in one fleet group (or of one plan and setting in a sweep fleet): the
#: router is measured at 10,000 accounts (benchmarks/).
MAX_GROUP_ACCOUNTS = 100_000
MAX_ROOT_TASKS = 20_000_000


def days_problem(days: float) -> str | None:
    """What is wrong with a horizon of ``days`` > 0 (None: nothing): finite, within
    ``MIN_DAYS`` .. ``MAX_DAYS``."""
    if not math.isfinite(days):
        return f"expected a finite number of days, got {days!r}"
    if days < MIN_DAYS:
        return f"expected at least {MIN_DAYS:g} days (86.4 s), got {days!r}"
    if days > MAX_DAYS:
        return f"expected at most {MAX_DAYS:g} days (ten years), got {days!r}"
    return None


def checked_days(days: float) -> float:
    """``days`` if ``days_problem`` finds nothing, else its ValueError (the
    ``days`` validator of the scenario's and the sweep file's models)."""
    problem = days_problem(days)
    if problem:
        raise ValueError(problem)
    return days


def workload_size_problem(rate_per_hour: float, days: float) -> str | None:
    """What is wrong with a generator's size over ``days`` (None: nothing)."""
    expected = rate_per_hour * 24 * days
    if expected > MAX_ROOT_TASKS:
        return (f"rate_per_hour x 24 x days = {expected:,.0f} root tasks expected; at most "
                f"{MAX_ROOT_TASKS:,} (the workload is drawn in memory before the run)")
    return None

#: Concurrent fast and relax jobs per plan (the plan table, ``router.accounts``).
DEFAULT_CONCURRENCY: dict[str, dict[str, int]] = {
    p.value: {"fast": PLAN_FAST_SLOTS[p], "relax": PLAN_RELAX_SLOTS[p]} for p in Plan
}


def epoch_seconds(v: Any) -> Any:
    """A TOML date-time (naive: UTC) or ISO-8601 text as epoch seconds (a number is
    taken as epoch seconds already)."""
    if isinstance(v, datetime):
        return (v if v.tzinfo is not None else v.replace(tzinfo=UTC)).timestamp()
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return parse_time(v)


class SimulationModel(BaseModel):
    """``[simulation]``: horizon, seed and run options."""

    model_config = _STRICT
    start: float | None = None  # first instant; default facts.DEFAULT_START, a trace's first task
    days: float = Field(default=30.0, gt=0)  # root arrivals happen in [start, start+days)
    seed: int = Field(default=0, ge=0)  # the workload's and execution model's randomness
    drain: bool = True  # after the horizon, finish queued and running work (no new roots)
    #: fast-time-left series step (>= 1: a smaller step is millions of samples, or a hang)
    sample_minutes: float = Field(default=60.0, ge=1)
    retry_seconds: float = Field(default=60.0, ge=1)  # central-queue re-route tick (windows)

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, v: Any) -> Any:
        return None if v is None else check_time(epoch_seconds(v), v)

    @field_validator("days")
    @classmethod
    def _days(cls, v: float) -> float:
        return checked_days(v)


class GroupModel(BaseModel):
    """``[[fleet.groups]]``: ``count`` identical accounts (contract fields as defaults).

    ``renewal = "spread"`` (default) spreads the renewal instants evenly over the
    30 days after the start; a date-time gives them all the same renewal.
    """

    model_config = _STRICT
    plan: Plan
    count: int = Field(default=1, ge=1, le=MAX_GROUP_ACCOUNTS)
    id_prefix: str | None = None  # default: the plan name
    setting: Setting = Setting.FAST
    status: Status = Status.ACTIVE
    fast_hours_remaining: float | None = Field(default=None, ge=0, le=MAX_HOURS)  # allowance
    renewal: float | Literal["spread"] = "spread"  # epoch seconds once validated
    weight: float = Field(default=1.0, ge=0, le=MAX_WEIGHT)
    backup: bool = False
    max_in_flight: int | None = Field(default=None, ge=0)
    inactive_window: WindowModel | None = None
    max_jobs_per_day: int | None = Field(default=None, gt=0)  # H2
    min_gap_seconds: float = Field(default=0.0, ge=0, le=MAX_SECONDS)  # H3

    @field_validator("renewal", mode="before")
    @classmethod
    def _renewal(cls, v: Any) -> Any:
        if v == "spread":
            return v
        try:
            at = epoch_seconds(v)
        except ValueError:
            raise ValueError(f"expected 'spread' or an ISO-8601 UTC time, got {v!r}") from None
        return check_time(at, v)


class FleetModel(BaseModel):
    """``[fleet]``: explicit accounts (contract format), an accounts file, groups."""

    model_config = _STRICT
    accounts_file: str | None = None
    accounts: list[AccountModel] = Field(default_factory=list)
    groups: list[GroupModel] = Field(default_factory=list)


class BurstModel(BaseModel):
    """A burst: arrivals at ``multiplier`` x the base rate for ``minutes``."""

    model_config = _STRICT
    at_hours: float = Field(ge=0)  # hours after the start
    minutes: float = Field(gt=0)
    multiplier: float = Field(gt=0)


ChildType = Literal["upscale", "variation", "reroll", "inpaint", "outpaint", "pan", "seed"]
assert typing.get_args(ChildType) == CHILD_TYPES  # the router's child task types


class FollowupModel(BaseModel):
    """A follow-up rule: after a completed ``after`` task, ``mean`` (Poisson) tasks
    of ``type`` arrive, each ``think_seconds`` (exponential mean) after it ends."""

    model_config = _STRICT
    type: ChildType
    mean: float = Field(ge=0)
    think_seconds: float = Field(default=60.0, ge=0)
    after: list[str] = Field(default_factory=lambda: ["imagine", "variation", "reroll", "pan"])


def _default_followups() -> list[FollowupModel]:
    # About the June 2022 trace's mix: 1.1 upscales and 0.77 variations per imagine.
    return [
        FollowupModel(type="upscale", mean=0.8, think_seconds=90.0),
        FollowupModel(type="variation", mean=0.4, think_seconds=120.0),
    ]


class GeneratorModel(BaseModel):
    """``[workload.generator]``: Poisson arrivals with a daily profile and bursts."""

    model_config = _STRICT
    rate_per_hour: float = Field(default=60.0, ge=0, le=MAX_RATE_PER_HOUR)  # root arrivals/h
    daily_profile: list[float] = Field(default_factory=lambda: list(DEFAULT_DAILY_PROFILE))
    bursts: list[BurstModel] = Field(default_factory=list)
    random_bursts_per_day: float = Field(default=0.0, ge=0)
    burst_minutes: float = Field(default=30.0, gt=0)
    burst_multiplier: float = Field(default=5.0, gt=0)
    task_mix: dict[str, float] = Field(
        default_factory=lambda: {"imagine": 0.94, "describe": 0.03, "blend": 0.03})
    # Mode shares (June 2022 trace: 59 % fast, 41 % relax imagines).
    modes: dict[str, float] = Field(
        default_factory=lambda: {"fast": 0.55, "turbo": 0.05, "relax": 0.40})
    prompt_flag_share: float = Field(default=0.5, ge=0, le=1)  # ask by --flag, not process_mode
    followups: list[FollowupModel] = Field(default_factory=_default_followups)
    max_depth: int = Field(default=3, ge=0)  # follow-ups of follow-ups, at most this deep

    @field_validator("daily_profile")
    @classmethod
    def _profile(cls, v: list[float]) -> list[float]:
        if len(v) != 24 or any(x < 0 for x in v) or sum(v) <= 0:
            raise ValueError("expected 24 hourly weights >= 0, not all 0")
        return v

    @field_validator("task_mix")
    @classmethod
    def _mix(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k in v if k not in ROOT_TYPES]
        if bad:
            raise ValueError(
                f"{bad[0]!r} is not a root task type; expected {', '.join(ROOT_TYPES)}")
        if any(x < 0 for x in v.values()) or sum(v.values()) <= 0:
            raise ValueError("expected weights >= 0, not all 0")
        return v

    @field_validator("modes")
    @classmethod
    def _modes(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k in v if k not in ("fast", "turbo", "relax")]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a mode; expected fast, turbo, relax")
        if any(x < 0 for x in v.values()) or sum(v.values()) <= 0:
            raise ValueError("expected shares >= 0, not all 0")
        return v


class WorkloadModel(BaseModel):
    """``[workload]``: a generator, or a trace file (event script, CSV, Parquet)."""

    model_config = _STRICT
    trace: str | None = None  # path, relative to the scenario file
    generator: GeneratorModel | None = None

    @model_validator(mode="after")
    def _one(self) -> WorkloadModel:
        if self.trace is not None and self.generator is not None:
            raise ValueError("give either trace or [workload.generator], not both")
        return self


class ExecutionModel(BaseModel):
    """``[execution]``: the per-account Midjourney execution model."""

    model_config = _STRICT
    concurrency: dict[str, dict[str, int]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_CONCURRENCY.items()})
    gpu_seconds: dict[str, float] = Field(default_factory=lambda: dict(GPU_SECONDS))
    gpu_spread: float = Field(default=0.3, ge=0)  # lognormal sigma, mean kept
    turbo_speedup: float = Field(default=TURBO_SPEEDUP, gt=0)  # turbo: faster, charged 2x (L1)
    relax_run_factor: float = Field(default=1.0, gt=0)  # relax run time = GPU time x this
    relax_wait_base_seconds: float = Field(default=60.0, ge=0)  # max wait at period start
    relax_wait_max_seconds: float = Field(default=600.0, ge=0)  # facts: 0-10 minutes
    relax_wait_full_at_hours: float = Field(default=50.0, gt=0)  # relax GPU-hours to reach max
    failure_rate: float | None = Field(default=None, ge=0, le=1)  # None: 0.02, traces 0
    ban_per_1000_jobs: float = Field(default=0.0, ge=0)
    ban_hours: float = Field(default=24.0, gt=0)
    captcha_per_1000_jobs: float = Field(default=0.0, ge=0)
    captcha_minutes: float = Field(default=30.0, gt=0)

    @field_validator("concurrency")
    @classmethod
    def _conc(cls, v: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        out = {k: dict(c) for k, c in DEFAULT_CONCURRENCY.items()}
        for plan, slots in v.items():
            if plan not in out:
                raise ValueError(f"{plan!r} is not a plan; expected basic, standard, pro, mega")
            for kind, n in slots.items():
                if kind not in ("fast", "relax") or n < 0:
                    raise ValueError(f"{plan}.{kind}: expected fast/relax slot counts >= 0")
                out[plan][kind] = n
        return out

    @field_validator("gpu_seconds")
    @classmethod
    def _gpu(cls, v: dict[str, float]) -> dict[str, float]:
        out = dict(GPU_SECONDS)
        for k, x in v.items():
            if k not in out:
                raise ValueError(f"{k!r} is not a task type; expected {', '.join(out)}")
            if x < 0:
                raise ValueError(f"{k}: expected seconds >= 0, got {x}")
            out[k] = x
        return out


if TYPE_CHECKING:
    class VariantModel(BaseModel):
        name: str
else:
    #: ``[[variants]]``: run the scenario again with other policy options (same seed,
    #: so every variant sees the same workload: common random numbers). Any
    #: ``router.Policy`` option; the ones left out keep the scenario's ``[policy]``.
    VariantModel = policy_model("VariantModel", optional=True,
                                name=(str, Field(min_length=1)))


class ScenarioModel(BaseModel):
    model_config = _STRICT
    name: str = "scenario"
    description: str = ""
    simulation: SimulationModel = Field(default_factory=SimulationModel)
    policy: PolicyModel = Field(default_factory=PolicyModel)  # router.Policy's options
    fleet: FleetModel
    workload: WorkloadModel = Field(default_factory=WorkloadModel)
    execution: ExecutionModel = Field(default_factory=ExecutionModel)
    variants: list[VariantModel] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fleet_nonempty(self) -> ScenarioModel:
        f = self.fleet
        if not f.accounts and not f.groups and f.accounts_file is None:
            raise ValueError("the fleet is empty: give [[fleet.groups]], [[fleet.accounts]] "
                             "or fleet.accounts_file")
        return self


    def policies(self, *, lines: dict[Any, int] | None = None,
                 source: str = "") -> list[tuple[str, Policy]]:
        """``(variant name, router Policy)`` per variant: ``[policy]``, then each
        variant's options over it; one ``("", policy)`` without variants."""
        base = apply_policy(Policy(), self.policy, lines=lines, source=source)
        if not self.variants:
            return [("", base)]
        return [(str(v.name), apply_policy(base, v, lines=lines, source=source,
                                                       at=("variants", i)))
                for i, v in enumerate(self.variants)]


def parse_scenario(text: str, *, source: str = "<scenario>") -> ScenarioModel:
    """Validate a scenario document; all problems at once, each ``file:line: field: ...``."""
    sc = parse_toml_model(text, ScenarioModel, source, _UNKNOWN, "(scenario)")
    sc.policies(lines=toml_lines(text), source=source)  # R9 estimates, with their lines
    return sc


def load_scenario(path: str | Path) -> ScenarioModel:
    """Read and validate a scenario file (TOML)."""
    p = Path(path)
    return parse_scenario(read_text(p), source=str(p))
