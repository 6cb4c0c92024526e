"""A Hypothesis RuleBasedStateMachine driving a Pool through submits,
completions, failures, cancellations, status/setting changes and clock
advances across several renewals, checked at every step against ``Model``:
a deliberately simple re-statement of the rules written here, not in router/
(fast time L1-L2, flips L3, calendar-month renewals L4, backups B1, in-flight
counts and reservations R9, and which outcome a root task must get, R1-R7).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from router.accounts import Account
from router.decision import Decision
from router.errors import NotInFlight
from router.pool import Pool
from router.testing import START, pools

ALLOWANCE = {"basic": 11_880_000, "standard": 54_000_000, "pro": 108_000_000,
             "mega": 216_000_000}
ESTIMATE = {"imagine": 60_000, "describe": 10_000, "upscale": 60_000, "seed": 0}


def nth_renewal(anchor: float, k: int) -> float:
    """The k-th monthly renewal after ``anchor``: same day and time, clamped to
    the month's last day (Jan 31 -> Feb 28 -> Mar 31)."""
    dt = datetime.fromtimestamp(anchor, UTC)
    years, month0 = divmod(dt.month - 1 + k, 12)
    year, month = dt.year + years, month0 + 1
    first_of_next = date(year + (month == 12), month % 12 + 1, 1)
    last_day = (first_of_next - timedelta(days=1)).day
    return dt.replace(year=year, month=month, day=min(dt.day, last_day)).timestamp()


@dataclass
class MAcc:
    """The model's view of one account."""

    id: str
    plan: str
    setting: str
    status: str
    fast: int
    anchor: float | None
    backup: bool
    room: int
    bot_id: int | None
    window: tuple[int, int] | None
    renewals: int = 0
    in_flight: int = 0
    reserved: int = 0
    flipped_from: str | None = None
    used: int = 0
    allowance: int = 0
    cap: int | None = None  # H2
    gap: float = 0.0  # H3
    day_counts: dict[int, int] = field(default_factory=dict)  # H2: UTC day -> routed
    last_routed: float | None = None  # H3
    corrected: int = 0  # H4

    def paced_free(self, now: float) -> bool:
        """H2 and H3 for a root task at ``now``."""
        if self.cap is not None and self.day_counts.get(int(now // 86_400), 0) >= self.cap:
            return False
        return not (self.gap > 0 and self.last_routed is not None
                    and now < self.last_routed + self.gap)

    def in_window(self, now: float) -> bool:
        if self.window is None or self.window[0] == self.window[1]:
            return False
        s, (a, b) = now % 86_400, self.window
        return a <= s < b if a < b else (s >= a or s < b)


@dataclass
class Model:
    accounts: dict[str, MAcc]
    restore: bool
    fallback_on_saturation: bool
    backups_active: bool = False
    tasks: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # id->(acc,mode,res)
    parents: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # id->(acc,mode)
    renewals: list[tuple[str, float, int]] = field(default_factory=list)
    pending: dict[str, float] = field(default_factory=dict)  # H1: account -> until
    recoveries: list[tuple[str, float, str]] = field(default_factory=list)
    info: dict[str, tuple[str, bool, str]] = field(default_factory=dict)  # requested, pinned, type

    # --- time
    def start(self, now: float) -> None:
        for a in self.accounts.values():
            if a.anchor is None:
                a.anchor = now + 30 * 86_400
            a.allowance = a.fast
        self.evaluate_backups()  # L6: B1 is evaluated when the pool is loaded ...
        self.advance(now)  # ... then the renewals due at the first event's time

    def advance(self, now: float) -> None:
        due = []
        for a in self.accounts.values():
            assert a.anchor is not None
            k = a.renewals
            while nth_renewal(a.anchor, k) <= now:
                due.append((nth_renewal(a.anchor, k), "", a.id))
                k += 1
        for acc_id, until in self.pending.items():
            if until <= now:
                due.append((until, "~recovery", acc_id))  # "~" sorts after ids: renewal first
        for item in sorted(due):
            at, acc_id = item[0], item[-1]
            if item[1] == "~recovery":  # H1: a recovery
                a = self.accounts[acc_id]
                del self.pending[acc_id]
                self.recoveries.append((acc_id, at, a.status))
                a.status = "active"
                continue
            a = self.accounts[acc_id]
            a.renewals += 1
            if a.status == "subscription_expired":
                continue
            assert a.allowance == a.used + a.fast + a.corrected  # L4 (H4: corrections apart)
            self.renewals.append((a.id, at, a.fast))
            a.fast, a.allowance, a.used = ALLOWANCE[a.plan], ALLOWANCE[a.plan], 0
            a.corrected = 0
            if self.restore and a.flipped_from is not None:
                a.setting, a.flipped_from = a.flipped_from, None
        self.evaluate_backups()

    def evaluate_backups(self) -> None:
        if self.backups_active or not any(a.backup for a in self.accounts.values()):
            return
        main = [a for a in self.accounts.values() if a.status == "active" and not a.backup]
        if not main or not any(a.fast > 0 for a in main):
            self.backups_active = True

    # --- routing facts
    def can_take(self, a: MAcc) -> bool:
        return a.status == "active" and (not a.backup or self.backups_active)

    def fast_ok(self, a: MAcc) -> bool:
        return self.can_take(a) and a.setting != "relax" and a.fast - a.reserved > 0

    def relax_ok(self, a: MAcc) -> bool:
        return self.can_take(a) and a.plan != "basic"

    @staticmethod
    def free(a: MAcc, now: float) -> bool:
        return not a.in_window(now) and a.in_flight < a.room and a.paced_free(now)

    def expected_root(self, mode: str, now: float) -> tuple[set[str], str | None, bool]:
        """(accounts the task may go to, error code, fallback) for an unpinned root."""
        if not any(a.status == "active" for a in self.accounts.values()):
            return set(), "no_active_account", False
        accs = self.accounts.values()
        if mode != "relax":
            fast = [a for a in accs if self.fast_ok(a)]
            free = {a.id for a in fast if self.free(a, now)}
            if free:
                return free, None, False
            if fast:
                relax_free = {a.id for a in accs if self.relax_ok(a) and self.free(a, now)}
                if self.fallback_on_saturation and relax_free:
                    return relax_free, None, True
                return set(), "pool_saturated", False
        relax = [a for a in accs if self.relax_ok(a)]
        free = {a.id for a in relax if self.free(a, now)}
        if free:
            return free, None, mode != "relax"
        return set(), ("pool_saturated" if relax else "no_relax_capacity"), False

    def expected_pinned(self, a: MAcc, mode: str) -> tuple[str | None, str | None]:
        """(effective mode, error code) for a task pinned to ``a`` (R7)."""
        if a.status != "active":
            return None, "pinned_account_unavailable"
        if mode != "relax" and a.setting != "relax" and a.fast - a.reserved > 0:
            eff = mode
        elif a.plan != "basic":
            eff = "relax"
        else:
            return None, "pinned_account_cannot_run"
        return (eff, None) if a.in_flight < a.room else (None, "pool_saturated")

    # --- ledger
    def reserve(self, task_id: str, acc_id: str, mode: str, requested: str, est: int,
                now: float, pinned: bool, task_type: str) -> None:
        a = self.accounts[acc_id]
        day = int(now // 86_400)
        a.day_counts[day] = a.day_counts.get(day, 0) + 1  # H2: pinned tasks count too
        a.last_routed = now  # H3
        self.info[task_id] = (requested, pinned, task_type)
        res = 0 if mode == "relax" else est * (2 if mode == "turbo" else 1)
        a.in_flight += 1
        a.reserved += res
        self.tasks[task_id] = (acc_id, mode, res)
        self.parents[task_id] = (acc_id, requested)

    def finish(self, task_id: str, gpu_ms: int | None) -> tuple[MAcc, int, bool]:
        acc_id, mode, res = self.tasks.pop(task_id)
        a = self.accounts[acc_id]
        a.in_flight -= 1
        a.reserved -= res
        if gpu_ms is None:
            return a, 0, False
        charge = {"relax": 0, "fast": gpu_ms, "turbo": 2 * gpu_ms}[mode]
        taken = min(charge, a.fast)
        a.fast -= taken
        a.used += taken
        flipped = charge > 0 and a.fast == 0 and a.setting in ("fast", "turbo")
        if flipped:
            a.flipped_from, a.setting = a.setting, "relax"
        self.evaluate_backups()
        return a, charge, flipped

    def exhaust(self, task_id: str) -> tuple[MAcc, bool, bool]:
        """H4: (account, flipped, re-routed?) of a fast_exhausted fail."""
        acc_id, mode, res = self.tasks[task_id]
        if mode == "relax":
            a, _c, _f = self.finish(task_id, None)
            return a, False, False
        self.tasks.pop(task_id)
        a = self.accounts[acc_id]
        a.in_flight -= 1
        a.reserved -= res
        a.corrected += a.fast
        a.fast = 0
        flipped = a.setting in ("fast", "turbo")
        if flipped:
            a.flipped_from, a.setting = a.setting, "relax"
        self.evaluate_backups()
        return a, flipped, True


def _model_of(acc: Account) -> MAcc:
    w = acc.inactive_window
    return MAcc(acc.id, acc.plan.value, acc.setting.value, acc.status.value, acc.fast_ms,
                acc.renews_at, acc.backup, acc.max_in_flight, acc.bot_id,
                (w.start_s, w.end_s) if w else None, cap=acc.max_jobs_per_day,
                gap=acc.min_gap_s)


class LedgerMachine(RuleBasedStateMachine):
    pool: Pool
    model: Model
    now: float
    n: int
    parent_of: dict[str, str]  # child task id -> its parent's (R7)

    @initialize(p=pools(max_size=5))
    def setup(self, p: Any) -> None:
        accounts, policy = p
        self.model = Model({a.id: _model_of(a) for a in accounts},
                           policy.restore_fast_on_renewal, policy.fallback_on_saturation)
        self.pool = Pool(accounts, policy, explain=False)
        self.now, self.n = START, 0
        self.parent_of = {}
        self.pool.advance(self.now)
        self.model.start(self.now)
        self._check_drain()

    def _check_drain(self) -> None:
        _notes, renewals = self.pool.drain()
        got = [(r.account_id, r.at, r.expired_ms) for r in renewals]
        assert got == self.model.renewals
        self.model.renewals = []
        recovered = [(r.account_id, r.at, r.status_was.value)
                     for r in self.pool.drain_recoveries()]
        assert recovered == self.model.recoveries  # H1: exactly at until, unless replaced
        self.model.recoveries = []

    # ------------------------------------------------------------- rules
    @rule(mode=st.sampled_from(["fast", "relax", "turbo"]),
          task_type=st.sampled_from(["imagine", "imagine", "describe"]),
          pin=st.integers(0, 4))
    def submit_root(self, mode: str, task_type: str, pin: int) -> None:
        bots = sorted(a.bot_id for a in self.model.accounts.values() if a.bot_id)
        bot = bots[pin % len(bots)] if bots and pin == 0 else None
        inp: dict[str, Any] = {"prompt": f"x --{mode}"}
        if bot is not None:
            inp["bot_id"] = bot
        self.n += 1
        task_id = f"t{self.n}"
        d = self.pool.submit(task_id, {"model": "midjourney", "task_type": task_type,
                                       "input": inp}, self.now)
        self.model.advance(self.now)
        if bot is not None:
            target = next(a for a in self.model.accounts.values() if a.bot_id == bot)
            self._check_pinned(d, target, mode, task_type)
        else:
            allowed, code, fallback = self.model.expected_root(mode, self.now)
            assert (d.error.code if d.error else None) == code, (d.error, code)
            if code is None:
                assert d.account_id in allowed and d.fallback == fallback
                eff = "relax" if fallback else mode
                assert d.effective_mode is not None and d.effective_mode.value == eff
                self.model.reserve(task_id, d.account_id, eff, mode, ESTIMATE[task_type],
                                   self.now, False, task_type)
        self.model.evaluate_backups()

    @precondition(lambda self: bool(self.model.parents))
    @rule(data=st.data(), task_type=st.sampled_from(["upscale", "seed"]))
    def submit_child(self, data: st.DataObject, task_type: str) -> None:
        parent = data.draw(st.sampled_from(sorted(self.model.parents)))
        acc_id, requested = self.model.parents[parent]
        self.n += 1
        task_id = f"t{self.n}"
        d = self.pool.submit(task_id, {"model": "midjourney", "task_type": task_type,
                                       "input": {"origin_task_id": parent}}, self.now)
        assert d.mode_source == "parent"
        assert acc_id is not None
        self._check_pinned(d, self.model.accounts[acc_id], requested, task_type)
        self.parent_of[task_id] = parent

    def _check_pinned(self, d: Decision, a: MAcc, mode: str, task_type: str) -> None:
        eff, code = self.model.expected_pinned(a, mode)
        assert (d.error.code if d.error else None) == code, (d.error, code)
        if code is None:
            assert d.account_id == a.id and d.effective_mode is not None
            assert d.effective_mode.value == eff
            assert d.fallback == (eff == "relax" and mode != "relax")
            assert eff is not None
            self.model.reserve(d.task_id, a.id, eff, mode, ESTIMATE[task_type], self.now, True,
                               task_type)

    @precondition(lambda self: bool(self.model.tasks))
    @rule(data=st.data(), gpu_ms=st.one_of(st.integers(0, 90_000), st.integers(0, 5_000_000)))
    def complete(self, data: st.DataObject, gpu_ms: int) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.model.tasks)))
        out = self.pool.complete(task_id, gpu_ms / 1000, self.now)
        a, charge, flipped = self.model.finish(task_id, gpu_ms)
        assert (out.account_id, out.charged_ms, out.fast_ms, out.flipped) == (
            a.id, charge, a.fast, flipped)
        assert out.setting.value == a.setting

    @precondition(lambda self: bool(self.model.tasks))
    @rule(data=st.data(), cancel=st.booleans())
    def fail_or_cancel(self, data: st.DataObject, cancel: bool) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.model.tasks)))
        out = (self.pool.cancel if cancel else self.pool.fail)(task_id, self.now)
        a, _charge, _ = self.model.finish(task_id, None)
        assert (out.account_id, out.charged_ms, out.fast_ms) == (a.id, 0, a.fast)

    @precondition(lambda self: bool(self.model.tasks))
    @rule(data=st.data())
    def fail_fast_exhausted(self, data: st.DataObject) -> None:
        """H4: no charge, fast time 0 (a correction), L3 flip, and a new decision
        for the same task id (or an error), as the model says."""
        task_id = data.draw(st.sampled_from(sorted(self.model.tasks)))
        out, again = self.pool.fail_fast_exhausted(task_id, self.now)
        a, flipped, reroutes = self.model.exhaust(task_id)
        assert (out.account_id, out.charged_ms, out.fast_ms, out.flipped) == (
            a.id, 0, a.fast, flipped)
        assert (again is not None) == reroutes
        if again is None:
            return
        assert again.task_id == task_id
        requested, pinned, task_type = self.model.info[task_id]
        if pinned:  # R7: a child goes where its parent's record says, which an H4
            # move of the parent may have changed since the child was routed
            parent = self.parent_of.get(task_id)
            target = a if parent is None else self.model.accounts[self.model.parents[parent][0]]
            self._check_pinned(again, target, requested, task_type)
            return
        allowed, code, fallback = self.model.expected_root(requested, self.now)
        assert (again.error.code if again.error else None) == code, (again.error, code)
        if code is None:
            assert again.account_id in allowed and again.fallback == fallback
            eff = "relax" if fallback else requested
            assert again.effective_mode is not None and again.effective_mode.value == eff
            self.model.reserve(task_id, again.account_id, eff, requested, ESTIMATE[task_type],
                               self.now, False, task_type)

    @rule(data=st.data(), status=st.sampled_from(["disabled", "banned", "captcha_required"]),
          seconds=st.integers(1, 3 * 86_400))
    def set_status_until(self, data: st.DataObject, status: str, seconds: int) -> None:
        """H1: a timed status; replaces any pending recovery of the account."""
        acc_id = data.draw(st.sampled_from(sorted(self.model.accounts)))
        self.pool.set_status(acc_id, status, self.now, until=self.now + seconds)
        self.model.accounts[acc_id].status = status
        self.model.pending[acc_id] = self.now + seconds
        self.model.evaluate_backups()

    @rule(task=st.sampled_from(["t0", "ghost"]))
    def finish_unknown(self, task: str) -> None:
        try:
            self.pool.complete(task, 1.0, self.now)
        except NotInFlight as exc:
            assert exc.code == "not_in_flight"
        else:
            raise AssertionError("finishing an unknown task must raise NotInFlight")

    @rule(data=st.data(), status=st.sampled_from(["active", "active", "disabled", "banned",
                                                  "captcha_required", "subscription_expired"]))
    def set_status(self, data: st.DataObject, status: str) -> None:
        acc_id = data.draw(st.sampled_from(sorted(self.model.accounts)))
        self.pool.set_status(acc_id, status, self.now)
        self.model.accounts[acc_id].status = status
        self.model.pending.pop(acc_id, None)  # H1: no until cancels a pending recovery
        self.model.evaluate_backups()

    @rule(data=st.data(), setting=st.sampled_from(["fast", "turbo", "relax"]))
    def set_setting(self, data: st.DataObject, setting: str) -> None:
        acc_id = data.draw(st.sampled_from(sorted(self.model.accounts)))
        self.pool.set_setting(acc_id, setting, self.now)
        a = self.model.accounts[acc_id]
        a.setting, a.flipped_from = setting, None
        self.model.evaluate_backups()

    @rule(seconds=st.one_of(st.integers(0, 3600), st.integers(3600, 3 * 86_400),
                            st.integers(20 * 86_400, 62 * 86_400)))
    def advance(self, seconds: int) -> None:
        self.now += seconds
        self.pool.advance(self.now)
        self.model.advance(self.now)

    # -------------------------------------------------------- invariants
    @invariant()
    def same_state_as_the_model(self) -> None:
        if not hasattr(self, "model"):
            return
        self._check_drain()
        assert self.pool.ledger.backups_active == self.model.backups_active
        for m in self.model.accounts.values():
            a = self.pool.account(m.id)
            assert (a.fast_ms, a.setting.value, a.status.value, a.in_flight, a.reserved_ms) == (
                m.fast, m.setting, m.status, m.in_flight, m.reserved), m.id
            assert (a.flipped_from.value if a.flipped_from else None) == m.flipped_from
            assert a.fast_ms >= 0
            assert a.period is not None and a.period.used_ms == m.used
            assert a.period.allowance_ms == m.allowance == m.used + m.fast + m.corrected  # L4
            assert a.period.corrected_ms == m.corrected  # H4
            if m.cap is not None or m.gap > 0:  # the ledger counts only where H2/H3 apply
                assert a.jobs_on_day(self.now) == m.day_counts.get(int(self.now // 86_400), 0)
                assert a.last_routed_at == m.last_routed  # H3


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(max_examples=2 * settings.default.max_examples,
                                      stateful_step_count=60)
