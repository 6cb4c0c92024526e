"""Webhooks as GoAPI documents them.

* Task webhook: ``POST {timestamp, data}`` to the task's
  ``config.webhook_config.endpoint`` with the configured secret in the
  ``x-webhook-secret`` header, when a task completes or fails; a non-200 answer
  (or no answer) is retried with exponential backoff.
* Account notification webhook: ``POST {type, time, message, detail}``
  (``mj_bot_no_fasthour``, ``no_active_mj_bot``, ``mj_bot_banned``, ...).

Secrets are sent in the header only and never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from router.requests import http_url
from router.timeutil import format_time

log = logging.getLogger(__name__)


class WebhookSender:
    """Fire-and-forget deliveries with retries; ``sent``/``failed`` are counted."""

    def __init__(self, *, attempts: int = 5, backoff: float = 0.5, timeout: float = 5.0) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self.sent = 0
        self.failed = 0
        self.retries = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, url: str, secret: str, payload: dict[str, Any]) -> None:
        """Schedule a delivery (http/https URLs only)."""
        if not http_url(url):  # M0 refuses such endpoints; --notify-url is checked too
            log.warning("webhook endpoint is not an http(s) URL; not sent")
            return
        task = asyncio.get_running_loop().create_task(self._deliver(url, secret, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, secret: str, payload: dict[str, Any]) -> None:
        headers = {"x-webhook-secret": secret, "content-type": "application/json"}
        for attempt in range(self.attempts):
            status: int | None = None
            try:
                resp = await self.client.post(url, json=payload, headers=headers)
                status = resp.status_code
            except httpx.HTTPError as exc:
                log.info("webhook to %s failed: %s", url, type(exc).__name__)
            if status == 200:
                self.sent += 1
                return
            if attempt + 1 < self.attempts:
                self.retries += 1
                await asyncio.sleep(self.backoff * 2 ** attempt)
        self.failed += 1
        log.warning("webhook to %s gave up after %d attempts", url, self.attempts)

    async def idle(self) -> None:
        """Wait until every scheduled delivery finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.client.aclose()


def task_payload(data: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": int(time.time()), "data": data}


def notification_payload(kind: str, at: float, message: str,
                         detail: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "time": format_time(at), "message": message, "detail": detail}
