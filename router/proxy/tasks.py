"""A task as the proxy keeps it, and its GoAPI shapes: ``task_data`` (the
envelope's ``data``) and ``account_view`` (secrets by name only)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeGuard

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
    #: the JSON of the fields that come from the body (``task_record``), set once
    parts: tuple[str, str, dict[str, Any], dict[str, Any], Mapping[str, Any]] | None = field(
        default=None, repr=False, compare=False)
    #: the decision's fields of ``meta`` and their JSON (``task_record``), re-encoded
    #: only when they change
    decided: tuple[tuple[Any, ...], str] | None = field(default=None, repr=False,
                                                        compare=False)

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


def new_task_id() -> str:
    """A random task id, ``str(uuid.uuid4())`` in form and randomness (122 random
    bits, version 4, RFC 4122 variant) without building a ``UUID`` object."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # variant 10xx
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """A JSON object (``dict`` first: the ABC check costs more, bodies are dicts)."""
    return isinstance(value, dict | Mapping)  # tried in this order


#: Timestamps as text: a task's times are formatted on every record write and
#: answer (four or more times in its life). The date and time to the second come
#: from ``format_time`` once per second; the microseconds are rounded as
#: ``datetime.fromtimestamp`` rounds them (half to even, carried into the second).
_second = lru_cache(maxsize=4_096)(format_time)


def _stamp(ts: float) -> str:
    """``format_time(ts)``, byte for byte."""
    frac, whole = math.modf(ts)
    us = round(frac * 1e6)
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    elif us < 0:
        whole, us = whole - 1, us + 1_000_000
    text = _second(whole)
    return f"{text[:-1]}.{us:06d}Z" if us else text


_NO_OUTPUT: dict[str, Any] = {
    "image_url": "", "image_urls": None, "temporary_image_urls": None,
    "discord_image_url": "", "actions": [], "progress": 0, "intermediate_image_urls": None}
_NO_OUTPUT_JSON = json.dumps(_NO_OUTPUT)
_NO_ERROR_JSON = json.dumps(empty_error())


def _body_parts(t: Task) -> tuple[str, str, dict[str, Any], dict[str, Any], Mapping[str, Any]]:
    """The fields that come from the body alone (it never changes): ``model``,
    ``task_type``, ``config`` and ``input``; cached on the task with their JSON."""
    if t.parts is not None:
        return t.parts
    body: Mapping[str, Any] = t.body if _mapping(t.body) else {}
    raw_cfg = body.get("config")
    cfg: Mapping[str, Any] = raw_cfg if _mapping(raw_cfg) else {}
    service_mode = cfg.get("service_mode")
    wh = cfg.get("webhook_config")
    endpoint = wh.get("endpoint") if _mapping(wh) else ""
    tt = body.get("task_type")
    inp = body.get("input")
    head = {"task_id": t.task_id, "model": body.get("model", ""),
            "task_type": tt if isinstance(tt, str) else ""}
    config = {"service_mode": service_mode if isinstance(service_mode, str) else "",
              "webhook_config": {"endpoint": endpoint if isinstance(endpoint, str) else "",
                                 "secret": ""}}
    inp = inp if _mapping(inp) else {}
    t.parts = (json.dumps(head)[:-1], json.dumps({"config": config, "input": inp})[1:-1],
               head, config, inp)
    return t.parts


def _meta_head(t: Task) -> dict[str, Any]:
    """The fields of ``meta`` before the decision's: the task's times and ``queued``."""
    return {
        "created_at": _stamp(t.created_at),
        "started_at": _stamp(t.started_at) if t.started_at else None,
        "ended_at": _stamp(t.ended_at) if t.ended_at else None,
        "queued": t.queued,
    }


def _meta(t: Task) -> dict[str, Any]:
    meta = _meta_head(t)
    decided = _decided(t.decision)
    if decided is not None:
        meta.update(zip(_DECIDED, decided, strict=True))
    meta.update(_meta_tail(t))
    return meta


#: The decision's fields of ``meta``, in order.
_DECIDED = ("pool", "account_id", "requested_mode", "mode_source", "effective_mode",
            "fallback", "explanation")


def _decided(d: Decision | None) -> tuple[Any, ...] | None:
    """The values of ``_DECIDED`` for a routed decision (None: not routed)."""
    if d is None or d.error is not None:
        return None
    rm, em = d.requested_mode, d.effective_mode
    return (d.pool, d.account_id, rm.value if rm else None, d.mode_source,
            em.value if em else None, d.fallback, d.explanation)


def _meta_tail(t: Task) -> dict[str, Any]:
    """The fields of ``meta`` after the decision's, only where they apply."""
    tail: dict[str, Any] = {}
    if t.gpu_seconds is not None:
        tail["usage"] = {"gpu_seconds": t.gpu_seconds, "charged_seconds": t.charged_seconds}
    if t.note:
        tail["note"] = t.note
    if t.reroutes:  # H4: only where it applies
        tail["reroutes"] = t.reroutes
    return tail


def _meta_json(t: Task) -> str:
    """``json.dumps(_meta(t))``, byte for byte; the decision's part (its explanation
    the longest text of a record) is encoded once per decision, not per write."""
    head = json.dumps(_meta_head(t))[:-1]
    decided = _decided(t.decision)
    if decided is not None:
        cached = t.decided
        if cached is None or cached[0] != decided:
            cached = t.decided = (decided, json.dumps(dict(zip(_DECIDED, decided,
                                                               strict=True)))[1:-1])
        head = f"{head}, {cached[1]}"
    tail = _meta_tail(t)
    return f"{head}, {json.dumps(tail)[1:]}" if tail else f"{head}}}"


def _output(t: Task) -> dict[str, Any]:
    output = dict(_NO_OUTPUT)
    output["actions"] = []
    if t.output:
        output.update(t.output)
    return output


def task_data(t: Task) -> dict[str, Any]:
    """``data`` of GoAPI's envelope for one task (webhook secret never echoed)."""
    _head, _mid, head, config, inp = _body_parts(t)
    return {
        "task_id": head["task_id"],
        "model": head["model"],
        "task_type": head["task_type"],
        "status": t.status,
        "config": {"service_mode": config["service_mode"],
                   "webhook_config": dict(config["webhook_config"])},
        "input": inp,
        "output": _output(t),
        "meta": _meta(t),
        "detail": None,
        "logs": [],
        "error": t.error or empty_error(),
    }


def task_record(t: Task) -> str:
    """``json.dumps(task_data(t))``, byte for byte: the task's record. The parts
    that come from the body are encoded once per task, not on every write."""
    head, mid, _fields, _config, _inp = _body_parts(t)
    output = json.dumps(_output(t)) if t.output else _NO_OUTPUT_JSON
    error = json.dumps(t.error) if t.error else _NO_ERROR_JSON
    return (f'{head}, "status": {json.dumps(t.status)}, {mid}, "output": {output}, '
            f'"meta": {_meta_json(t)}, "detail": null, "logs": [], "error": {error}}}')


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
