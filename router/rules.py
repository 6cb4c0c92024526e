"""Eligibility predicates (R1, B1, R2, R4, R6, T1, H2, H3). Each returns the ``Reason``
that excludes an account, or ``None`` when the account passes.

The order inside each chain is the order of the rules: status (R1), backup
dormancy (B1), then the path's own checks. The first failing check is the one
reported (X1).
"""

from __future__ import annotations

from dataclasses import dataclass

from router.accounts import PLAN_HAS_RELAX, Account, Setting, Status


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an account was excluded: the rule ID and a short label for people."""

    rule: str
    label: str

    def __reduce__(self) -> tuple[type[Reason], tuple[str, str]]:
        # Compiled (mypyc), a frozen class refuses the field assignments that copy
        # and pickle make by default: they rebuild it from its fields (issue 13).
        return (Reason, (self.rule, self.label))


STATUS_REASONS: dict[Status, Reason] = {
    s: Reason("R1", s.value) for s in Status if s is not Status.ACTIVE
}
DORMANT_BACKUP = Reason("B1", "dormant backup")
RELAX_SETTING = Reason("R6", "setting=relax")
NO_FAST_TIME = Reason("R2", "no fast time")
NO_RELAX_PLAN = Reason("R4", "basic, no relax")
INACTIVE_WINDOW = Reason("T1", "inactive window")
NO_ROOM = Reason("R1", "full")
DAILY_CAP = Reason("H2", "daily cap")
MIN_GAP = Reason("H3", "gap")


def can_take_work(acc: Account, backups_active: bool) -> Reason | None:
    """R1 status check and B1 dormancy: the checks every path shares."""
    if acc.status is not Status.ACTIVE:
        return STATUS_REASONS[acc.status]
    if acc.backup and not backups_active:
        return DORMANT_BACKUP
    return None


def fast_reason(acc: Account, backups_active: bool) -> Reason | None:
    """R2 (with R6): is ``acc`` fast-eligible for a fast or turbo task?"""
    r = can_take_work(acc, backups_active)
    if r is not None:
        return r
    if acc.setting is Setting.RELAX:
        return RELAX_SETTING
    if acc.fast_ms - acc.reserved_ms <= 0:
        return NO_FAST_TIME
    return None


def relax_reason(acc: Account, backups_active: bool) -> Reason | None:
    """R4: is ``acc`` relax-eligible (any plan but Basic)?"""
    r = can_take_work(acc, backups_active)
    if r is not None:
        return r
    if not PLAN_HAS_RELAX[acc.plan]:
        return NO_RELAX_PLAN
    return None


def availability_reason(acc: Account, now: float) -> Reason | None:
    """R1 "available now": outside the inactive window (T1), with room, under
    its daily cap (H2) and past its minimum gap (H3), checked in that order."""
    if acc.inactive_window is not None and acc.inactive_window.contains(now):
        return INACTIVE_WINDOW
    if acc.in_flight >= acc.max_in_flight:
        return NO_ROOM
    if acc.max_jobs_per_day is not None or acc.min_gap_s > 0:
        return pacing_reason(acc, now)
    return None


def pacing_reason(acc: Account, now: float) -> Reason | None:
    """H2 then H3: is a root task kept off ``acc`` at ``now`` by its pacing?"""
    cap = acc.max_jobs_per_day
    if cap is not None and acc.jobs_on_day(now) >= cap:
        return DAILY_CAP
    last = acc.last_routed_at
    if acc.min_gap_s > 0 and last is not None and now < last + acc.min_gap_s:
        return MIN_GAP
    return None


def is_available(acc: Account, now: float) -> bool:
    return availability_reason(acc, now) is None


def eligible_paths(acc: Account, backups_active: bool) -> tuple[bool, bool]:
    """``(fast_reason(...) is None, relax_reason(...) is None)`` in one pass.

    The same checks as the two predicates above (R1, B1, R6, R2, R4), for the
    candidate index's hot path; a property test holds it to the predicates.
    """
    if acc.status is not Status.ACTIVE or (acc.backup and not backups_active):
        return False, False
    return (acc.setting is not Setting.RELAX and acc.fast_ms - acc.reserved_ms > 0,
            PLAN_HAS_RELAX[acc.plan])


def unavailable_until(acc: Account, now: float) -> float | None:
    """None when ``acc`` is available now (exactly ``is_available``), else a time
    before which it surely stays unavailable: one second before its inactive
    window ends (T1; the second absorbs float rounding), or ``now`` when it has
    no room (that can change with any event), or the end of its daily cap
    (next 00:00 UTC, H2) or of its gap (H3): pacing is only lifted by time."""
    window = acc.inactive_window
    if window is not None and window.contains(now):
        return now + (window.end_s - now % 86_400) % 86_400 - 1.0
    if acc.in_flight >= acc.max_in_flight:
        return now
    if (acc.max_jobs_per_day is not None or acc.min_gap_s > 0) and pacing_reason(
            acc, now) is not None:
        until = acc.paced_until()  # H2/H3: only a later time (a new day) lifts it
        return until if until is not None and until > now else now
    return None
