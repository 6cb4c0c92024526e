"""``Pool``: the small public facade over the ledger and the engine.

    pool = load_pool("accounts.json")
    d = pool.submit("t1", body, at="2026-11-24T10:00:00Z")
    pool.complete("t1", gpu_seconds=58.2, at="2026-11-24T10:01:00Z")
    pool.account(d.account_id).fast_hours_remaining
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from router.accounts import Account, Mode, Setting, Status, seconds_to_ms
from router.decision import Decision, Notification, Outcome, Recovery, Renewal
from router.engine import route
from router.errors import InvalidRequest, NotInFlight
from router.ledger import Ledger, Policy
from router.requests import ParsedRequest, parse_request
from router.timeutil import parse_time


def _ts(at: float | str) -> float:
    if type(at) is float:
        return at
    return parse_time(at) if isinstance(at, str) else float(at)


class Pool:
    """A pool of accounts with its ledger: route, reserve, complete, renew.

    ``at`` arguments take epoch seconds or ISO-8601 strings. Every call first
    applies the renewals and backup activation due at that time (L6).
    """

    def __init__(self, accounts: Iterable[Account], policy: Policy | None = None,
                 *, indexed: bool = True, explain: bool = True) -> None:
        self.ledger = Ledger(accounts, policy, indexed=indexed)
        self.explain = explain
        #: task ids submitted and rejected (accepted ones are the ledger's parents):
        #: a rejection is rarer than an acceptance, so a decision records nothing
        #: more than its parent (issue 13)
        self._rejected: set[str] = set()

    @property
    def submitted(self) -> set[str]:
        """Every task id submitted so far, accepted or rejected."""
        return self._rejected | self.ledger.parents.keys()

    @property
    def policy(self) -> Policy:
        return self.ledger.policy

    def account(self, account_id: str) -> Account:
        return self.ledger.account(account_id)

    @property
    def accounts(self) -> Mapping[str, Account]:
        return self.ledger.accounts

    def advance(self, at: float | str) -> None:
        """L6: apply renewals and B1 due at or before ``at``."""
        self.ledger.advance(_ts(at))

    def route(self, body: Any, task_id: str, at: float | str, *,
              estimated_gpu_seconds: float | None = None) -> Decision:
        """Decide without reserving (no state changes but the clock, L6)."""
        now = _ts(at)
        self.ledger.advance(now)
        return self._decide(body, task_id, now, estimated_gpu_seconds)

    def _decide(self, body: Any, task_id: str, now: float,
                estimated_gpu_seconds: float | None) -> Decision:
        try:
            req = parse_request(body)
        except InvalidRequest as exc:
            return Decision(task_id, error=exc.as_error())
        est = None if estimated_gpu_seconds is None else seconds_to_ms(estimated_gpu_seconds)
        return route(self.ledger, req, task_id, now, est, explain=self.explain)

    def submit(self, task_id: str, body: Any, at: float | str, *,
               estimated_gpu_seconds: float | None = None) -> Decision:
        """Route ``body`` and, if accepted, reserve its slot and fast time."""
        now = at if type(at) is float else _ts(at)
        ledger = self.ledger
        ledger.advance(now)
        try:
            req = parse_request(body)
        except InvalidRequest as exc:
            d = Decision(task_id, error=exc.as_error())
        else:
            est = None if estimated_gpu_seconds is None else seconds_to_ms(estimated_gpu_seconds)
            d = route(ledger, req, task_id, now, est, explain=self.explain)
            if d.error is None:
                ledger.reserve(d, now, req, est)  # the request stays with the task (H4)
                ledger.evaluate_pool(now)
                return d
        self._rejected.add(task_id)
        ledger.evaluate_pool(now)
        return d

    def submit_parsed(self, task_id: str, req: ParsedRequest, at: float | str,
                      estimate_ms: int | None = None) -> Decision:
        """``submit`` for a request already parsed by ``parse_request`` (so a caller
        that sends the same body many times resolves it once), with an R9 estimate
        override in milliseconds. Same decision, same state changes as ``submit`` of
        the body."""
        now = at if type(at) is float else _ts(at)
        ledger = self.ledger
        ledger.advance(now)
        d = route(ledger, req, task_id, now, estimate_ms, explain=self.explain)
        if d.error is None:
            ledger.reserve(d, now, req, estimate_ms)
        else:
            self._rejected.add(task_id)
        ledger.evaluate_pool(now)
        return d

    def complete(self, task_id: str, gpu_seconds: float, at: float | str) -> Outcome:
        """L1-L3: charge a finished task (raises ``NotInFlight``)."""
        now = at if type(at) is float else _ts(at)
        ledger = self.ledger
        ledger.advance(now)
        try:
            return ledger.complete(task_id, seconds_to_ms(gpu_seconds), now)
        finally:
            ledger.evaluate_pool(now)

    def fail(self, task_id: str, at: float | str) -> Outcome:
        now = _ts(at)
        self.ledger.advance(now)
        try:
            return self.ledger.fail(task_id, now)
        finally:
            self.ledger.evaluate_pool(now)

    def fail_fast_exhausted(self, task_id: str, at: float | str
                            ) -> tuple[Outcome, Decision | None]:
        """H4: a ``fail`` with ``reason: fast_exhausted``.

        For a task running as fast or turbo: no charge (L1), the account's fast
        time is zeroed as a correction, L3 flips it, and the task is routed
        again at once, at the same time, as a new decision for the same task id
        (reserved when accepted). Returns the fail's outcome and that decision;
        for a task running as relax the fail is an ordinary one and the
        decision is None. Raises ``NotInFlight`` like ``fail``."""
        now = _ts(at)
        ledger = self.ledger
        ledger.advance(now)
        try:
            out, task = ledger.fail_fast_exhausted(task_id, now)
            req, est = task.request, task.estimate_ms
            if task.mode is Mode.RELAX or req is None:
                return out, None
            ledger.evaluate_pool(now)  # L3 may have woken the backups (B1)
            d = route(ledger, req, task_id, now, est, explain=self.explain)
            if d.error is None:
                ledger.reserve(d, now, req, est)
            return out, d
        finally:
            ledger.evaluate_pool(now)

    def cancel(self, task_id: str, at: float | str) -> Outcome:
        now = _ts(at)
        self.ledger.advance(now)
        try:
            return self.ledger.cancel(task_id, now)
        finally:
            self.ledger.evaluate_pool(now)

    def set_status(self, account_id: str, status: Status | str, at: float | str,
                   until: float | str | None = None) -> Account:
        """L5; H1: with ``until``, the account becomes active again at that time."""
        now = _ts(at)
        self.ledger.advance(now)
        acc = self.ledger.set_status(account_id, Status(status), now,
                                     None if until is None else _ts(until))
        self.ledger.evaluate_pool(now)
        return acc

    def set_setting(self, account_id: str, setting: Setting | str, at: float | str) -> Account:
        now = _ts(at)
        self.ledger.advance(now)
        acc = self.ledger.set_setting(account_id, Setting(setting), now)
        self.ledger.evaluate_pool(now)
        return acc

    def drain(self) -> tuple[list[Notification], list[Renewal]]:
        """Notifications and renewals since the last drain, in order."""
        return self.ledger.drain()

    def drain_recoveries(self) -> list[Recovery]:
        """H1: the recoveries since the last call, in time order."""
        return self.ledger.drain_recoveries()

    def not_in_flight_reason(self, task_id: str) -> str:
        """Why ``task_id`` cannot be finished (for event error lines)."""
        parent = self.ledger.parents.get(task_id)
        if parent is None:
            return "it was rejected" if task_id in self._rejected else "never submitted"
        if parent.public:
            return "it went to the public pool (P1)"
        return "already finished"


__all__ = ["NotInFlight", "Pool"]
