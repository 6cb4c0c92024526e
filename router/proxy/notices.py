"""``Notifier``: webhooks to the user, for tasks and for account notifications.

Task webhooks go to the task's ``config.webhook_config``; account notifications
(``mj_bot_no_fasthour``, ``no_active_mj_bot``, ``mj_bot_banned``,
``account_recovered`` (H1), ``task_rerouted`` (H4), ...) go to the configured
notification URL, each counted as ``notify_<type>``. A task moved by H4 also
gets its own webhook then, showing it ``pending`` with ``meta.reroutes``.
"""

from __future__ import annotations

import logging
from typing import Any

from router.accounts import Status
from router.decision import Decision, Notification
from router.proxy.metrics import Counters
from router.proxy.tasks import Task, task_data
from router.proxy.webhooks import WebhookSender, notification_payload, task_payload
from router.stores.base import AccountStore, HealthStore
from router.timeutil import format_time

log = logging.getLogger(__name__)

#: A notification ready to send: type, time, message, detail.
Notice = tuple[str, float, str, dict[str, Any]]

#: GoAPI notification types for account statuses set through the API (L5).
STATUS_NOTICES: dict[Status, str] = {
    Status.BANNED: "mj_bot_banned",
    Status.CAPTCHA_REQUIRED: "mj_bot_captcha_required",
    Status.SUBSCRIPTION_EXPIRED: "mj_bot_subscription_expired",
}

MESSAGES = {
    "mj_bot_no_fasthour": "account {account} ran out of fast time and was switched to relax "
                          "(L3)",
    "no_active_mj_bot": "no account in the pool is active (E1)",
    "backups_activated": "backup accounts were activated (B1)",
    "account_recovered": "account {account} is active again: its timed status ended (H1)",
}


class Notifier:
    """Sends task webhooks and the store's account notifications."""

    def __init__(self, store: AccountStore, counters: Counters, *, url: str | None,
                 secret: str, attempts: int, backoff: float) -> None:
        self.store = store
        self.counters = counters
        self.url = url
        self.secret = secret
        self.attempts = attempts
        self.backoff = backoff
        self.webhooks: WebhookSender | None = None

    def start(self) -> None:
        self.webhooks = WebhookSender(attempts=self.attempts, backoff=self.backoff)

    async def close(self) -> None:
        if self.webhooks is not None:
            await self.webhooks.close()

    def task_finished(self, task: Task) -> None:
        endpoint, secret = task.webhook()
        if endpoint and self.webhooks is not None:
            self.webhooks.send(endpoint, secret, task_payload(task_data(task)))

    def status_set(self, account_id: str, status: Status, bot_id: int | None,
                   at: float) -> None:
        """L5: a status set through the API that GoAPI announces."""
        kind = STATUS_NOTICES.get(status)
        if kind:
            self.notify(kind, at, f"account {account_id} is now {status.value}",
                        {"account_id": account_id, "bot_id": bot_id})

    def task_rerouted(self, task: Task, from_account: str, new: Decision, at: float) -> None:
        """H4: the task left ``from_account`` (no fast time upstream); where it went."""
        where = (f"account {new.account_id} as {new.effective_mode.value}"
                 if new.error is None and new.effective_mode is not None
                 else "the waiting line (R5)" if new.error is not None
                 and new.error.code == "pool_saturated"
                 else f"nowhere ({new.error.code if new.error else 'unknown'})")
        self.notify("task_rerouted", at,
                    f"task {task.task_id} was re-routed from account {from_account}, which "
                    f"has no fast time left upstream, to {where} (H4)",
                    {"task_id": task.task_id, "from_account_id": from_account,
                     "account_id": new.account_id,
                     "effective_mode": new.effective_mode.value if new.effective_mode else None,
                     "error_code": new.error.code if new.error else None})
        self.task_finished(task)  # the task's own webhook: pending, meta.reroutes

    def collect(self) -> list[Notice]:
        """What the store produced since the last drain, described (store calls:
        in a store call, ``router.proxy.storecalls``)."""
        notes, _renewals = self.store.drain()
        recovered: dict[str, dict[str, Any]] = {}
        if isinstance(self.store, HealthStore):  # H1: what each recovery ended
            for r in self.store.drain_recoveries():
                recovered[r.account_id] = {"status_was": r.status_was.value,
                                           "recovered_at": format_time(r.at)}
        out: list[Notice] = []
        for note in notes:
            message, detail = self._describe(note)
            if note.type == "account_recovered" and note.account_id in recovered:
                detail.update(recovered[note.account_id])
            out.append((note.type, note.at, message, detail))
        return out

    def send(self, notices: list[Notice]) -> None:
        """Send collected notices (on the event loop)."""
        for kind, at, message, detail in notices:
            self.notify(kind, at, message, detail)

    def notify(self, kind: str, at: float, message: str, detail: dict[str, Any]) -> None:
        self.counters.count(f"notify_{kind}")
        log.info("notification %s: %s", kind, message)
        if self.url and self.webhooks is not None:
            self.webhooks.send(self.url, self.secret,
                               notification_payload(kind, at, message, detail))

    def _describe(self, note: Notification) -> tuple[str, dict[str, Any]]:
        detail: dict[str, Any] = {}
        if note.account_id is not None:
            detail["account_id"] = note.account_id
            for a in self.store.accounts():
                if a.id == note.account_id:
                    detail.update({"bot_id": a.bot_id, "subscription_plan": a.plan.value})
        template = MESSAGES.get(note.type)
        message = template.format(account=note.account_id) if template else note.type
        return message, detail
