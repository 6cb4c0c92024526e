"""``Rerouter``: a task that Midjourney refused for lack of fast time moves (H4).

When the upstream reports ``fast_exhausted`` for a task running as fast or turbo
on one of our accounts, the store's H4 fail does the rules (router.ledger): no
charge (L1), the account's fast time becomes 0, the L3 flip and its
``mj_bot_no_fasthour``, and a new decision for the same task id. This module
only applies that decision to the task: it keeps its id, its record's
``meta.reroutes`` lists the move (the old account and the new decision, with the
contract's ``reroute`` fields), a ``task_rerouted`` notification and the task's
own webhook say so, and then the task

* starts again on its new account (accepted),
* waits in the line (``pool_saturated``, R5): it is not failed,
* or fails with the router's error (any other rejection, E1).

A store without H4 (``HealthStore``) fails the task as an ordinary upstream
failure, naming the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from router.accounts import MS_PER_HOUR, Mode
from router.decision import Decision, Outcome
from router.errors import NotInFlight, PoolSaturated
from router.io.replay import decision_fields
from router.proxy.envelope import task_error
from router.proxy.metrics import Counters
from router.proxy.notices import Notice, Notifier
from router.proxy.storecalls import StoreCalls
from router.proxy.tasks import Task
from router.proxy.upstream import UpstreamResult
from router.stores.base import AccountStore, HealthStore
from router.timeutil import format_time

log = logging.getLogger(__name__)


def reroute_entry(old: Decision, out: Outcome, new: Decision, at: float) -> dict[str, Any]:
    """One move, as the task's ``meta.reroutes`` shows it: the account that ran out
    (its fast time and setting after the correction and the flip) and the new
    decision with the fields of the contract's ``reroute`` (docs/formats.md)."""
    fields = decision_fields(new)
    return {
        "at": format_time(at),
        "reason": "fast_exhausted",
        "account_id": old.account_id,
        "effective_mode": old.effective_mode.value if old.effective_mode else None,
        "fast_hours_remaining": out.fast_ms / MS_PER_HOUR,
        "setting": out.setting.value,
        "reroute": {
            "account_id": fields["account_id"],
            "requested_mode": fields["requested_mode"],
            "mode_source": fields["mode_source"],
            "effective_mode": fields["effective_mode"],
            "fallback": fields["fallback"],
            "error": new.error.as_dict() if new.error else None,
            "explanation": fields["explanation"],
            "rejections": fields["rejections"],
        },
    }


class Rerouter:
    """Applies H4 to a task the upstream refused with ``fast_exhausted``."""

    def __init__(self, store: AccountStore, notifier: Notifier, counters: Counters, *,
                 routed: Callable[[Task], None], queue: Callable[[Task, float], None],
                 rejected: Callable[[Task, Decision], None],
                 finished: Callable[[Task], None], calls: StoreCalls | None = None) -> None:
        self.store = store
        self.calls = calls or StoreCalls(remote=False)  # store calls off the event loop
        self.notifier = notifier
        self.counters = counters
        self.routed = routed  # start the task on its new account
        self.queue = queue  # put the task in the waiting line (R5)
        self.rejected = rejected  # the router's error ends the task (E1)
        self.finished = finished

    def applies(self, task: Task, res: UpstreamResult) -> bool:
        """A ``fast_exhausted`` refusal of a fast or turbo task on one of our accounts."""
        d = task.decision
        return (res.reason == "fast_exhausted" and d is not None and d.account_id is not None
                and d.effective_mode is not None and d.effective_mode is not Mode.RELAX)

    async def take(self, task: Task, res: UpstreamResult, now: float) -> bool:
        """The runner's hook: handle the result when H4 applies (True), else False."""
        if not self.applies(task, res):
            return False
        await self.handle(task, res, now)
        return True

    async def handle(self, task: Task, res: UpstreamResult, now: float) -> None:
        old = task.decision
        assert old is not None and old.account_id is not None
        if not isinstance(self.store, HealthStore):
            try:  # room back, nothing charged (L1)
                await self.calls.durable(self.store.fail, task.task_id, now)
            except NotInFlight as exc:
                log.warning("task %s: %s", task.task_id, exc.message)
            self._fail(task, res, now, "not re-routed: this store does not implement H4")
            return
        try:
            out, new, notices = await self.calls.durable(self._fail_exhausted,
                                                         task.task_id, now)
        except NotInFlight as exc:
            self.counters.count("finish_not_in_flight")
            self._fail(task, res, now, f"not re-routed: {exc.message}")
            return
        self.notifier.send(notices)  # mj_bot_no_fasthour (L3), backups (B1)
        if new is None:  # the store ran it as relax: an ordinary fail (H4)
            self._fail(task, res, now, None)
            return
        self.counters.count("rerouted")
        task.reroutes.append(reroute_entry(old, out, new, now))
        task.status, task.started_at, task.ended_at = "pending", None, None
        task.output, task.error = {}, None
        task.decision = new if new.error is None else None
        task.queued = new.error is not None and new.error.code == PoolSaturated.code
        self.notifier.task_rerouted(task, old.account_id, new, now)
        if new.error is None:
            self.routed(task)
        elif task.queued:
            self.counters.count("queued")
            self.queue(task, now)
        else:
            self.rejected(task, new)

    def _fail_exhausted(self, task_id: str, now: float
                        ) -> tuple[Outcome, Decision | None, list[Notice]]:
        """In a store call: H4's fail and re-route, and the notifications."""
        assert isinstance(self.store, HealthStore)
        out, new = self.store.fail_fast_exhausted(task_id, now)
        return out, new, self.notifier.collect()

    def _fail(self, task: Task, res: UpstreamResult, now: float, note: str | None) -> None:
        task.status, task.ended_at = "failed", now
        task.error = task_error("upstream_failed", res.error or "no fast time left")
        task.note = note
        self.counters.count("failed")
        self.finished(task)
