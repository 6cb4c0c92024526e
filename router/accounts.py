"""Plans, settings, statuses, modes and the mutable ``Account`` record.

Hot-path objects are plain ``@dataclass(slots=True)``; validation of files and
requests happens at the boundary (``router.io.loading``, ``router.requests``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

MS_PER_HOUR: Final = 3_600_000
MS_PER_SECOND: Final = 1_000


class Plan(StrEnum):
    BASIC = "basic"
    STANDARD = "standard"
    PRO = "pro"
    MEGA = "mega"


class Setting(StrEnum):
    FAST = "fast"
    TURBO = "turbo"
    RELAX = "relax"


class Status(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    BANNED = "banned"
    CAPTCHA_REQUIRED = "captcha_required"
    SUBSCRIPTION_EXPIRED = "subscription_expired"


class Mode(StrEnum):
    RELAX = "relax"
    FAST = "fast"
    TURBO = "turbo"


def hours_to_ms(hours: float) -> int:
    """L0: hours at the boundary become whole milliseconds (nearest)."""
    return round(hours * MS_PER_HOUR)


def seconds_to_ms(seconds: float) -> int:
    """L0: seconds at the boundary become whole milliseconds (nearest)."""
    return round_even(seconds * MS_PER_SECOND)


def round_even(x: float) -> int:
    """Exactly ``round(x)`` (ties to even; inf and NaN raise as it does), in
    operations a compiled core runs natively, where ``round`` is a call to the
    builtin (issue 13). ``x - low`` is exact: ``x`` is not whole, so it is below
    2**52 and its fraction is representable."""
    whole = int(x)  # toward zero
    if whole == x:
        return whole
    low = whole if x > 0 else whole - 1  # floor
    frac = x - low
    if frac > 0.5:
        return low + 1
    if frac < 0.5:
        return low
    return low + (low & 1)  # a tie: the even neighbour


#: Monthly fast-time allowance per plan (docs/formats.md), in milliseconds.
PLAN_ALLOWANCE_MS: dict[Plan, int] = {
    Plan.BASIC: hours_to_ms(3.3),
    Plan.STANDARD: hours_to_ms(15),
    Plan.PRO: hours_to_ms(30),
    Plan.MEGA: hours_to_ms(60),
}

#: Concurrent fast (and turbo) jobs per plan (docs/facts.md, plan table).
PLAN_FAST_SLOTS: dict[Plan, int] = {
    Plan.BASIC: 3,
    Plan.STANDARD: 3,
    Plan.PRO: 12,
    Plan.MEGA: 12,
}

#: Concurrent relax jobs per plan (docs/facts.md, plan table): Basic has no relax.
PLAN_RELAX_SLOTS: dict[Plan, int] = {
    Plan.BASIC: 0,
    Plan.STANDARD: 3,
    Plan.PRO: 3,
    Plan.MEGA: 3,
}

#: R4: every plan but Basic includes relax (the plans with relax slots).
PLAN_HAS_RELAX: Final[dict[Plan, bool]] = {plan: n > 0 for plan, n in PLAN_RELAX_SLOTS.items()}

#: Default room limit per plan (docs/formats.md).
PLAN_MAX_IN_FLIGHT: dict[Plan, int] = {
    Plan.BASIC: 13,
    Plan.STANDARD: 13,
    Plan.PRO: 22,
    Plan.MEGA: 22,
}

#: Monthly price per plan in USD (docs/facts.md); used by planning tools.
PLAN_PRICE_USD: dict[Plan, float] = {
    Plan.BASIC: 10.0,
    Plan.STANDARD: 30.0,
    Plan.PRO: 60.0,
    Plan.MEGA: 120.0,
}

#: USD per fast hour bought on top of a plan's allowance (docs/facts.md).
EXTRA_FAST_HOUR_PRICE_USD = 4.0

#: R9 default fast-mode GPU estimates per task type, in seconds (docs/formats.md).
DEFAULT_ESTIMATE_SECONDS: dict[str, float] = {
    "imagine": 60.0,
    "blend": 60.0,
    "reroll": 60.0,
    "variation": 60.0,
    "inpaint": 60.0,
    "outpaint": 60.0,
    "pan": 60.0,
    "upscale": 60.0,
    "describe": 10.0,
    "seed": 0.0,
}

#: Task types that start a tree (docs/rules.md "Words"), in a fixed order.
ROOT_TYPES: tuple[str, ...] = ("imagine", "describe", "blend")
#: Task types that act on an earlier task's result (R7), in a fixed order.
CHILD_TYPES: tuple[str, ...] = (
    "upscale", "variation", "reroll", "inpaint", "outpaint", "pan", "seed",
)
#: Every task type: roots, then children (the simulator's type codes follow it).
TASK_TYPES: tuple[str, ...] = ROOT_TYPES + CHILD_TYPES
ROOT_TASK_TYPES: Final = frozenset(ROOT_TYPES)
CHILD_TASK_TYPES: Final = frozenset(CHILD_TYPES)


@dataclass(slots=True, frozen=True)
class InactiveWindow:
    """T1: a daily ``[start, end)`` window in UTC seconds of the day; may wrap."""

    start_s: int
    end_s: int

    def __reduce__(self) -> tuple[type[InactiveWindow], tuple[int, int]]:
        # Compiled (mypyc), a frozen class refuses the field assignments that copy
        # and pickle make by default: they rebuild it from its fields (issue 13).
        return (InactiveWindow, (self.start_s, self.end_s))

    def contains(self, now: float) -> bool:
        """True when ``now`` (epoch seconds) falls inside the window (T1)."""
        s = now % 86_400
        if self.start_s == self.end_s:
            return False
        if self.start_s < self.end_s:
            return self.start_s <= s < self.end_s
        return s >= self.start_s or s < self.end_s

    def as_text(self) -> tuple[str, str]:
        return (_hhmm(self.start_s), _hhmm(self.end_s))


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


@dataclass(slots=True)
class PeriodRecord:
    """One billing period of one account (L4 conservation:
    ``allowance = used + expired + remaining``; overdraft is extra, L2)."""

    account_id: str
    period: int
    start: float | None
    end: float | None = None
    allowance_ms: int = 0
    used_ms: int = 0
    expired_ms: int = 0
    overdraft_ms: int = 0
    flipped_at: float | None = None
    setting_at_end: Setting | None = None
    flipped_at_end: bool = False
    corrected_ms: int = 0  # H4: fast time zeroed on an upstream report, neither used nor expired


@dataclass(slots=True)
class Account:
    """One connected Midjourney subscription and its live ledger state."""

    id: str
    plan: Plan
    setting: Setting = Setting.FAST
    status: Status = Status.ACTIVE
    fast_ms: int = -1  # -1: the plan's monthly allowance
    renews_at: float | None = None
    weight: float = 1.0
    backup: bool = False
    max_in_flight: int = -1  # -1: the plan's default room
    bot_id: int | None = None
    inactive_window: InactiveWindow | None = None
    max_jobs_per_day: int | None = None  # H2: None = no cap
    min_gap_s: float = 0.0  # H3: seconds between two routed tasks
    order: int = 0
    # --- ledger state -------------------------------------------------------
    in_flight: int = 0
    reserved_ms: int = 0
    flipped_from: Setting | None = None
    renewals_done: int = 0
    next_renewal_at: float | None = None
    period: PeriodRecord | None = None
    history: list[PeriodRecord] = field(default_factory=list)
    # --- pacing state (H2, H3) ----------------------------------------------
    jobs_day: int = -1  # H2: the UTC day number (epoch seconds // 86400) counted
    jobs_today: int = 0  # H2: tasks routed to the account on ``jobs_day``
    last_routed_at: float | None = None  # H3: when the last task was routed here

    def __post_init__(self) -> None:
        self.plan = Plan(self.plan)
        self.setting = Setting(self.setting)
        self.status = Status(self.status)
        if self.fast_ms < 0:
            self.fast_ms = PLAN_ALLOWANCE_MS[self.plan]
        if self.max_in_flight < 0:
            self.max_in_flight = PLAN_MAX_IN_FLIGHT[self.plan]

    @property
    def paced(self) -> bool:
        """True when the account uses a daily cap (H2) or a minimum gap (H3)."""
        return self.max_jobs_per_day is not None or self.min_gap_s > 0

    def paced_until(self) -> float | None:
        """H2/H3: the instant before which a root task cannot take the account,
        or None when pacing never blocks it. Blocked at ``now`` iff ``now <``
        the returned value (time only moves forward, L6): the end of the gap
        after the last routed task (H3), or the next 00:00 UTC once today's
        count has reached the cap (H2), whichever is later."""
        until: float | None = None
        cap = self.max_jobs_per_day
        if cap is not None and self.jobs_today >= cap and self.jobs_day >= 0:
            until = (self.jobs_day + 1) * 86_400.0
        if self.min_gap_s > 0 and self.last_routed_at is not None:
            gap_end = self.last_routed_at + self.min_gap_s
            if until is None or gap_end > until:
                until = gap_end
        return until

    def jobs_on_day(self, now: float) -> int:
        """H2: tasks routed to the account during the UTC day of ``now``."""
        return self.jobs_today if self.jobs_day == int(now // 86_400) else 0

    @property
    def unreserved_ms(self) -> int:
        """Fast time minus the estimates of in-flight fast/turbo tasks."""
        return self.fast_ms - self.reserved_ms

    @property
    def has_room(self) -> bool:
        return self.in_flight < self.max_in_flight

    @property
    def load(self) -> float:
        """``in_flight / max_in_flight`` (S, least_loaded); no room at all is inf."""
        if self.max_in_flight <= 0:
            return float("inf")
        return self.in_flight / self.max_in_flight

    @property
    def fast_hours_remaining(self) -> float:
        return self.fast_ms / MS_PER_HOUR
