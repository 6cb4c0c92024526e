"""``Notifier``: webhooks to the user, for tasks and for account notifications.

Task webhooks go to the task's ``config.webhook_config``; account notifications
(``mj_bot_no_fasthour``, ``no_active_mj_bot``, ``mj_bot_banned``, ...) go to the
configured notification URL, each counted as ``notify_<type>``.
"""

from __future__ import annotations

import logging
from typing import Any

from router.accounts import Status
from router.decision import Notification
from router.proxy.metrics import Counters
from router.proxy.tasks import Task, task_data
from router.proxy.webhooks import WebhookSender, notification_payload, task_payload
from router.stores.base import AccountStore

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

    def drain(self) -> None:
        """Send what the store produced since the last drain."""
        self.send(self.collect())

    def collect(self) -> list[Notice]:
        """What the store produced since the last drain, described (store calls:
        on the store thread, ``router.proxy.storecalls``)."""
        notes, _renewals = self.store.drain()
        return [(note.type, note.at, *self._describe(note)) for note in notes]

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
