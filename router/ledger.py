"""L and B rules: the account ledger.

The ledger owns fast time, reservations (R9), charges (L1, L2), flips (L3),
renewals (L4), status and setting changes (L5), the order of events in time (L6),
backup activation (B1) and the eligible-account index the engine reads. It has
no clock of its own and does no I/O: callers pass ``now`` (epoch seconds).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from router.accounts import (
    DEFAULT_ESTIMATE_SECONDS,
    PLAN_ALLOWANCE_MS,
    Account,
    Mode,
    PeriodRecord,
    Setting,
    Status,
    seconds_to_ms,
)
from router.candidates import IndexedCandidates, ScanCandidates
from router.decision import Decision, Notification, Outcome, Recovery, Renewal
from router.errors import NotInFlight, UnknownAccount
from router.requests import ParsedRequest
from router.strategies import Strategy, StrategyState
from router.timeutil import DAY, add_months

DEFAULT_RENEWAL_DELAY = 30 * DAY  # contract: renews_at defaults to first event + 30 days


@dataclass(slots=True)
class Policy:
    """Documented policy options ([decision] points of the rule book)."""

    strategy: Strategy = Strategy.LEAST_LOADED
    seed: int = 0
    fallback_on_saturation: bool = False  # R5
    restore_fast_on_renewal: bool = False  # L4
    estimates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_ESTIMATE_SECONDS))
    #: Opt-in, departs from M3/R4 (see ``router.engine._upgrade_expiring``): a
    #: relax-requested root task runs as fast on an account whose fast time would
    #: otherwise expire unused before its renewal. Off by default.
    upgrade_relax_when_expiring: bool = False
    #: How close to its renewal (hours) an account must be for that upgrade.
    upgrade_relax_horizon_hours: float = 48.0

    def estimate_ms(self, task_type: str) -> int:
        """R9: the fast-mode estimate for ``task_type`` in milliseconds."""
        seconds = self.estimates.get(task_type)  # no default: compiled, it would be boxed
        return seconds_to_ms(60.0 if seconds is None else seconds)


@dataclass(slots=True, init=False)
class InFlight:
    """A routed task holding a slot (and, for fast/turbo, a reservation).

    ``request`` and ``estimate_ms``: what H4 routes again when upstream reports
    the account's fast time gone (None: the caller keeps no request, e.g. a
    store's mirror). Kept here, not in a map of the pool's, so that a decision
    costs no second map entry (issue 13).

    The ``__init__`` is written out, not generated (issue 13): compiled by mypyc,
    a generated dataclass ``__init__`` stays interpreted Python."""

    task_id: str
    account_id: str
    mode: Mode
    reserved_ms: int
    at: float
    request: ParsedRequest | None
    estimate_ms: int | None

    def __init__(self, task_id: str, account_id: str, mode: Mode, reserved_ms: int,
                 at: float, request: ParsedRequest | None = None,
                 estimate_ms: int | None = None) -> None:
        self.task_id = task_id
        self.account_id = account_id
        self.mode = mode
        self.reserved_ms = reserved_ms
        self.at = at
        self.request = request
        self.estimate_ms = estimate_ms


@dataclass(slots=True, init=False)
class Parent:
    """M5/R7/P1: what a child needs to know about an earlier, accepted task;
    never changed once made.

    The tasks of one account with one requested mode share one (``_Parents``):
    a plain class with its ``__init__`` written out, which mypyc compiles to
    native code (a named tuple or a generated dataclass ``__init__`` would stay
    interpreted Python, issue 13)."""

    public: bool
    account_id: str | None
    requested_mode: Mode

    def __init__(self, public: bool, account_id: str | None, requested_mode: Mode) -> None:
        self.public = public
        self.account_id = account_id
        self.requested_mode = requested_mode


class _Parents:
    """The three ``Parent`` records of one account's tasks, one per requested
    mode: a parent never changes once made, so every accepted task of an account
    shares one (issue 13: no object per task, kept for as long as the pool)."""

    __slots__ = ("fast", "relax", "turbo")

    def __init__(self, account_id: str | None) -> None:
        public = account_id is None
        self.relax = Parent(public, account_id, Mode.RELAX)
        self.fast = Parent(public, account_id, Mode.FAST)
        self.turbo = Parent(public, account_id, Mode.TURBO)

    def of(self, mode: Mode) -> Parent:
        return self.fast if mode is Mode.FAST else self.relax if mode is Mode.RELAX \
            else self.turbo


_PUBLIC: Final = _Parents(None)  # P1: the parents of tasks in the public pool


class TimeWentBackwards(ValueError):
    """L6: events must not go back in time."""


class Ledger:
    """Mutable pool state. ``indexed=False`` gives the naive linear-scan reference."""

    def __init__(self, accounts: Iterable[Account], policy: Policy | None = None,
                 *, indexed: bool = True) -> None:
        self.policy = policy or Policy()
        self.accounts: dict[str, Account] = {}
        self.by_bot: dict[int, Account] = {}
        for order, acc in enumerate(accounts):
            acc.order = order
            self.accounts[acc.id] = acc
            if acc.bot_id is not None:
                self.by_bot[acc.bot_id] = acc
        self.ids_sorted: list[str] = sorted(self.accounts)
        # both implement ``Candidates``; the union (not the protocol) lets a compiled
        # core call their methods directly instead of by name (issue 13)
        self.candidates: IndexedCandidates | ScanCandidates = (
            IndexedCandidates(self.policy.strategy, self.ids_sorted) if indexed
            else ScanCandidates(self.policy.strategy)
        )
        self.state = StrategyState(random.Random(self.policy.seed))
        self.tasks: dict[str, InFlight] = {}
        self.parents: dict[str, Parent] = {}
        self._parents_of: dict[str, _Parents] = {}  # account id -> its tasks' parents
        self.clock: float | None = None
        self.backups_active = False
        self._has_backups = any(a.backup for a in self.accounts.values())
        #: H2/H3 in use by some account: saturation messages then name them (X1)
        self.paced = any(a.paced for a in self.accounts.values())
        self._active: set[str] = set()
        self._nb_active: set[str] = set()
        self._nb_fast: set[str] = set()
        self._had_active = True
        self._pool_dirty = True  # B1's sets moved since evaluate_pool last looked
        self._renewals: list[tuple[float, str]] = []
        # H1: pending recoveries, one per account (a later set_status replaces it)
        self._recoveries: list[tuple[float, str]] = []
        #: the earliest renewal or recovery due (L6/H1): ``advance`` to an earlier
        #: time has nothing to apply; refreshed whenever either heap changes
        self._due = float("inf")
        self.pending_recovery: dict[str, float] = {}
        self.recoveries: list[Recovery] = []
        self.notifications: list[Notification] = []
        self.renewals: list[Renewal] = []
        self.started = False

    # ------------------------------------------------------------------ state
    def touch(self, acc: Account) -> None:
        """Re-file ``acc`` in every index after any change to it."""
        self._pool_dirty = True
        active = acc.status is Status.ACTIVE
        if active:
            self._active.add(acc.id)
        else:
            self._active.discard(acc.id)
        if active and not acc.backup:
            self._nb_active.add(acc.id)
        else:
            self._nb_active.discard(acc.id)
        self._track_fast(acc)
        self.candidates.touch(acc, self.backups_active)

    def _track_fast(self, acc: Account) -> None:
        """B1's "some active non-backup account has fast time" set, for ``acc``."""
        acc_id = acc.id
        has = acc_id in self._nb_fast
        if (acc_id in self._nb_active and acc.fast_ms > 0) != has:
            self._pool_dirty = True
            if has:
                self._nb_fast.discard(acc_id)
            else:
                self._nb_fast.add(acc_id)

    @property
    def active_count(self) -> int:
        return len(self._active)

    def account(self, account_id: str) -> Account:
        try:
            return self.accounts[account_id]
        except KeyError:
            raise UnknownAccount(f"no account {account_id!r} in the pool", "L5") from None

    def drain_recoveries(self) -> list[Recovery]:
        """Hand over (and forget) the H1 recoveries since the last call."""
        out, self.recoveries = self.recoveries, []
        return out

    def drain(self) -> tuple[list[Notification], list[Renewal]]:
        """Hand over (and forget) the notifications and renewals since last drain."""
        notes, ren = self.notifications, self.renewals
        self.notifications, self.renewals = [], []
        return notes, ren

    # ------------------------------------------------------------------- time
    def start(self, now: float) -> None:
        """Fix defaults that depend on the first event's time; evaluate B1 (L6)."""
        self.started = True
        self.clock = now
        for acc in self.accounts.values():
            if acc.renews_at is None:
                acc.renews_at = now + DEFAULT_RENEWAL_DELAY
            acc.next_renewal_at = add_months(acc.renews_at, acc.renewals_done)
            acc.period = PeriodRecord(acc.id, 0, now, allowance_ms=acc.fast_ms)
            heapq.heappush(self._renewals, (acc.next_renewal_at, acc.id))
            self.touch(acc)
        self._refresh_due()
        self.evaluate_pool(now)

    def _refresh_due(self) -> None:
        heap, rec = self._renewals, self._recoveries
        self._due = min(heap[0][0] if heap else float("inf"), rec[0][0] if rec else float("inf"))

    def advance(self, now: float) -> None:
        """L6: before an event at ``now``: due renewals in time order, then B1."""
        clock = self.clock  # None until ``start``
        if clock is not None and clock <= now < self._due:  # the usual case: nothing due
            self.clock = now
            if self._pool_dirty:
                self.evaluate_pool(now)
            return
        if not self.started:
            self.start(now)
        elif self.clock is not None and now < self.clock:
            raise TimeWentBackwards(
                f"time went backwards: {now} is before the previous event at {self.clock} (L6)"
            )
        self.clock = now
        heap, rec = self._renewals, self._recoveries
        while True:  # L6/H1: renewals and recoveries in time order, a renewal first on ties
            due_renewal = bool(heap) and heap[0][0] <= now
            due_recovery = bool(rec) and rec[0][0] <= now
            if due_recovery and (not due_renewal or rec[0][0] < heap[0][0]):
                at, acc_id = heapq.heappop(rec)
                self._recover(acc_id, at)
            elif due_renewal:
                at, acc_id = heapq.heappop(heap)
                acc = self.accounts[acc_id]
                self._renew(acc, at)
                heapq.heappush(heap, (acc.next_renewal_at or at, acc_id))
            else:
                break
        self._refresh_due()
        self.evaluate_pool(now)

    def _recover(self, acc_id: str, at: float) -> None:
        """H1: a timed status ends at ``at`` (unless a later set_status replaced it)."""
        if self.pending_recovery.get(acc_id) != at:
            return  # replaced or cancelled by a later set_status (H1)
        del self.pending_recovery[acc_id]
        acc = self.accounts[acc_id]
        was = acc.status
        acc.status = Status.ACTIVE
        self.recoveries.append(Recovery(acc_id, at, was))
        self.notifications.append(Notification("account_recovered", at, acc_id))
        self.touch(acc)

    def _renew(self, acc: Account, at: float) -> None:
        """L4: expire the leftover fast time, reset to the plan's allowance."""
        acc.renewals_done += 1
        assert acc.renews_at is not None
        acc.next_renewal_at = add_months(acc.renews_at, acc.renewals_done)
        if acc.status is Status.SUBSCRIPTION_EXPIRED:
            return  # L4: its renewal instants pass with no effect
        expired = acc.fast_ms
        period = acc.period
        if period is not None:
            period.end = at
            period.expired_ms = expired
            period.setting_at_end = acc.setting
            period.flipped_at_end = acc.flipped_from is not None
            acc.history.append(period)
        allowance = PLAN_ALLOWANCE_MS[acc.plan]
        acc.period = PeriodRecord(
            acc.id, (period.period + 1) if period else 0, at, allowance_ms=allowance
        )
        acc.fast_ms = allowance
        if self.policy.restore_fast_on_renewal and acc.flipped_from is not None:
            acc.setting = acc.flipped_from
            acc.flipped_from = None
        self.renewals.append(Renewal(acc.id, at, expired))
        self.touch(acc)

    def evaluate_pool(self, now: float) -> None:
        """B1 (backups wake once, for good) and the ``no_active_mj_bot`` notice.

        Both depend only on the sets ``touch`` and ``_track_fast`` keep, so a call
        when none of them moved since the last one returns at once."""
        if not self._pool_dirty:
            return
        self._pool_dirty = False
        if (self._has_backups and not self.backups_active
                and (not self._nb_active or not self._nb_fast)):
            self.backups_active = True
            self.notifications.append(Notification("backups_activated", now))
            for acc in self.accounts.values():
                if acc.backup:
                    self.touch(acc)
        if self._active:
            self._had_active = True
        elif self._had_active:
            self._had_active = False
            self.notifications.append(Notification("no_active_mj_bot", now))

    # ------------------------------------------------------------ reservations
    def reserve(self, decision: Decision, now: float, request: ParsedRequest | None = None,
                estimate_ms: int | None = None) -> None:
        """Record an accepted decision: the slot, the reservation (R9), the parent;
        ``request`` and ``estimate_ms`` stay with the task for H4."""
        mode = decision.effective_mode
        assert mode is not None and decision.requested_mode is not None
        if decision.pool == "public" or decision.account_id is None:
            self.parents[decision.task_id] = _PUBLIC.of(decision.requested_mode)
            return
        acc = self.accounts[decision.account_id]
        acc.in_flight += 1
        acc.reserved_ms += decision.reserved_ms
        self.tasks[decision.task_id] = InFlight(
            decision.task_id, acc.id, mode, decision.reserved_ms, now, request, estimate_ms
        )
        shared = self._parents_of.get(acc.id)
        if shared is None:
            shared = self._parents_of[acc.id] = _Parents(acc.id)
        self.parents[decision.task_id] = shared.of(decision.requested_mode)
        if not decision.pinned:
            self.state.last_id = acc.id
        if acc.paced:  # H2 count (UTC day) and H3 last-routed time, pinned tasks too
            day = int(now // 86_400)
            if acc.jobs_day != day:
                acc.jobs_day, acc.jobs_today = day, 0
            acc.jobs_today += 1
            acc.last_routed_at = now
        # only the load and the reservation changed: no pool-level set moves (B1)
        self.candidates.update(acc, self.backups_active)

    def _release(self, task_id: str, verb: str) -> tuple[InFlight, Account]:
        tasks = self.tasks
        task = tasks.get(task_id)  # get + del: ``pop(key, None)`` is a call by name compiled
        if task is not None:
            del tasks[task_id]
        else:
            parent = self.parents.get(task_id)
            if parent is None:
                why = "never submitted, or rejected"
            elif parent.public:
                why = "it went to the public pool (P1)"
            else:
                why = "already finished"
            raise NotInFlight(f"cannot {verb} task {task_id}: not in flight ({why})", "L1")
        acc = self.accounts[task.account_id]
        acc.in_flight -= 1
        acc.reserved_ms -= task.reserved_ms
        return task, acc

    def complete(self, task_id: str, gpu_ms: int, now: float) -> Outcome:
        """L1 charge (turbo x2, relax 0), L2 clamp with overdraft, L3 flip."""
        task, acc = self._release(task_id, "complete")
        charge = 0
        if task.mode is Mode.FAST:
            charge = gpu_ms
        elif task.mode is Mode.TURBO:
            charge = 2 * gpu_ms
        applied = min(charge, acc.fast_ms)
        overdraft = charge - applied
        acc.fast_ms -= applied
        period = acc.period
        if period is not None:
            period.used_ms += applied
            period.overdraft_ms += overdraft
        flipped = charge > 0 and acc.fast_ms == 0 and self._flip(acc, now)
        # status and backup flag are unchanged: only the B1 "has fast time" set moves
        self._track_fast(acc)
        self.candidates.update(acc, self.backups_active)
        return Outcome(task_id, acc.id, charge, overdraft, acc.fast_ms, acc.setting,
                       acc.status, flipped)

    def _flip(self, acc: Account, now: float) -> bool:
        """L3: an account set to fast or turbo whose fast time is gone is set to
        relax, with ``mj_bot_no_fasthour``; ``True`` if it flipped."""
        if acc.setting not in (Setting.FAST, Setting.TURBO):
            return False
        acc.flipped_from = acc.setting
        acc.setting = Setting.RELAX
        if acc.period is not None and acc.period.flipped_at is None:
            acc.period.flipped_at = now
        self.notifications.append(Notification("mj_bot_no_fasthour", now, acc.id))
        return True

    def fail(self, task_id: str, now: float, *, verb: str = "fail") -> Outcome:
        """L1: failed and cancelled tasks are not charged; the slot comes back."""
        _task, acc = self._release(task_id, verb)
        self.candidates.update(acc, self.backups_active)  # load and reservation only
        return Outcome(task_id, acc.id, 0, 0, acc.fast_ms, acc.setting, acc.status)

    def fail_fast_exhausted(self, task_id: str, now: float) -> tuple[Outcome, InFlight]:
        """H4: upstream reports no fast time left for a task running as fast or
        turbo. Not charged (L1); the account's fast time becomes 0 as a
        correction (neither used nor expired in L4's records); L3 then flips an
        account set to fast or turbo as if a charge had emptied it. A relax task
        is failed as usual. The caller re-routes the task (H4)."""
        task = self.tasks.get(task_id)
        if task is None or task.mode is Mode.RELAX:
            out = self.fail(task_id, now)
            assert task is not None
            return out, task
        task, acc = self._release(task_id, "fail")
        period = acc.period
        if period is not None:
            period.corrected_ms += acc.fast_ms
        acc.fast_ms = 0
        flipped = self._flip(acc, now)
        self._track_fast(acc)
        self.candidates.update(acc, self.backups_active)
        return Outcome(task_id, acc.id, 0, 0, acc.fast_ms, acc.setting, acc.status,
                       flipped), task

    def cancel(self, task_id: str, now: float) -> Outcome:
        return self.fail(task_id, now, verb="cancel")

    # --------------------------------------------------------- user changes
    def set_status(self, account_id: str, status: Status, now: float,
                   until: float | None = None) -> Account:
        """L5: takes effect for new routing at once; in-flight tasks finish.

        H1: ``until`` schedules a return to ``active`` at that time; any
        set_status replaces the account's pending recovery (or cancels it)."""
        acc = self.account(account_id)
        if until is not None:
            if status not in (Status.DISABLED, Status.BANNED, Status.CAPTCHA_REQUIRED):
                raise ValueError(f"until is allowed only with disabled, banned or "
                                 f"captcha_required, not {status.value} (H1)")
            if until <= now:
                raise ValueError("until must be later than the event's time (H1)")
            self.pending_recovery[account_id] = until
            heapq.heappush(self._recoveries, (until, account_id))
            self._refresh_due()
        else:
            self.pending_recovery.pop(account_id, None)
        acc.status = status
        self.touch(acc)
        return acc

    def set_setting(self, account_id: str, setting: Setting, now: float) -> Account:
        """L5/L3: the user's own setting; clears the "flipped by L3" mark."""
        acc = self.account(account_id)
        acc.setting = setting
        acc.flipped_from = None
        self.touch(acc)
        return acc
