"""A task as the proxy keeps it, and its GoAPI shapes: ``task_data`` (the
envelope's ``data``) and ``account_view`` (secrets by name only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from router.accounts import MS_PER_HOUR, MS_PER_SECOND, Account
from router.decision import Decision
from router.proxy.envelope import empty_error
from router.timeutil import format_time


@dataclass(slots=True)
class Task:
    task_id: str
    body: Any
    created_at: float
    status: str = "pending"
    queued: bool = False
    decision: Decision | None = None
    error: dict[str, Any] | None = None
    output: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    ended_at: float | None = None
    gpu_seconds: float | None = None
    charged_seconds: float | None = None
    note: str | None = None
    #: H4: each move of the task after its account ran out of fast time upstream
    reroutes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def task_type(self) -> str:
        tt = self.body.get("task_type") if isinstance(self.body, Mapping) else None
        return tt if isinstance(tt, str) else ""

    def webhook(self) -> tuple[str, str]:
        cfg = self.body.get("config") if isinstance(self.body, Mapping) else None
        wh = cfg.get("webhook_config") if isinstance(cfg, Mapping) else None
        if not isinstance(wh, Mapping):
            return "", ""
        endpoint, secret = wh.get("endpoint"), wh.get("secret")
        return (endpoint if isinstance(endpoint, str) else "",
                secret if isinstance(secret, str) else "")


def _empty_output() -> dict[str, Any]:
    return {"image_url": "", "image_urls": None, "temporary_image_urls": None,
            "discord_image_url": "", "actions": [], "progress": 0,
            "intermediate_image_urls": None}


def task_data(t: Task) -> dict[str, Any]:
    """``data`` of GoAPI's envelope for one task (webhook secret never echoed)."""
    body = t.body if isinstance(t.body, Mapping) else {}
    cfg = body.get("config") if isinstance(body.get("config"), Mapping) else {}
    assert isinstance(cfg, Mapping)
    service_mode = cfg.get("service_mode")
    d = t.decision
    meta: dict[str, Any] = {
        "created_at": format_time(t.created_at),
        "started_at": format_time(t.started_at) if t.started_at else None,
        "ended_at": format_time(t.ended_at) if t.ended_at else None,
        "queued": t.queued,
    }
    if d is not None and d.error is None:
        meta.update({
            "pool": d.pool, "account_id": d.account_id,
            "requested_mode": d.requested_mode.value if d.requested_mode else None,
            "mode_source": d.mode_source,
            "effective_mode": d.effective_mode.value if d.effective_mode else None,
            "fallback": d.fallback, "explanation": d.explanation,
        })
    if t.gpu_seconds is not None:
        meta["usage"] = {"gpu_seconds": t.gpu_seconds, "charged_seconds": t.charged_seconds}
    if t.note:
        meta["note"] = t.note
    if t.reroutes:  # H4: only where it applies
        meta["reroutes"] = t.reroutes
    output = _empty_output()
    output.update(t.output)
    endpoint, _secret = t.webhook()
    return {
        "task_id": t.task_id,
        "model": body.get("model", ""),
        "task_type": t.task_type,
        "status": t.status,
        "config": {"service_mode": service_mode if isinstance(service_mode, str) else "",
                   "webhook_config": {"endpoint": endpoint, "secret": ""}},
        "input": body.get("input") if isinstance(body.get("input"), Mapping) else {},
        "output": output,
        "meta": meta,
        "detail": None,
        "logs": [],
        "error": t.error or empty_error(),
    }


def account_view(acc: Account, secrets: list[str]) -> dict[str, Any]:
    """An account for people and programs; secrets by name only (write-only)."""
    return {
        "id": acc.id, "plan": acc.plan.value, "status": acc.status.value,
        "setting": acc.setting.value, "backup": acc.backup, "bot_id": acc.bot_id,
        "weight": acc.weight, "in_flight": acc.in_flight, "max_in_flight": acc.max_in_flight,
        "fast_hours_remaining": acc.fast_ms / MS_PER_HOUR,
        "fast_seconds_remaining": acc.fast_ms / MS_PER_SECOND,
        "unreserved_fast_seconds": acc.unreserved_ms / MS_PER_SECOND,
        "flipped_to_relax": acc.flipped_from is not None,
        "next_renewal_at": format_time(acc.next_renewal_at) if acc.next_renewal_at else None,
        "secrets": secrets,
    }


def health_view(acc: Account, recovers_at: float | None, now: float) -> dict[str, Any]:
    """H1–H3 fields of an account's view, from the store's state: when a timed status
    ends, the daily cap and the tasks routed today (UTC), the minimum gap."""
    return {
        "recovers_at": format_time(recovers_at) if recovers_at is not None else None,
        "max_jobs_per_day": acc.max_jobs_per_day,
        "jobs_today": acc.jobs_on_day(now),
        "min_gap_seconds": acc.min_gap_s,
    }
