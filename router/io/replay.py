"""``byoa replay``: an event script through the router and ledger (docs/formats.md).

One output line per input event, in order, with exactly the fields the
contract lists for its op. Event-level mistakes are error lines; unreadable
input raises ``InputError`` (exit code 2) after the lines before it were written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from router.accounts import MS_PER_HOUR, MS_PER_SECOND
from router.decision import Decision, Notification, Rejections, Renewal
from router.errors import InputError, NotInFlight, RouterError, make_error
from router.io.events import Event
from router.pool import Pool
from router.timeutil import format_time


def _head(ev: Event, error: dict[str, Any] | None, notes: list[Notification],
          renewals: list[Renewal]) -> dict[str, Any]:
    return {
        "event": ev.line,
        "op": ev.op,
        "error": error,
        "notifications": [n.as_dict() for n in notes],
        "renewals": [
            {"account_id": r.account_id, "at": format_time(r.at),
             "expired_hours": r.expired_ms / MS_PER_HOUR}
            for r in renewals
        ],
    }


def decision_fields(d: Decision) -> dict[str, Any]:
    """The contract's submit fields for a decision."""
    explanation = d.explanation
    if d.notes:
        extra = "; ".join(d.notes)
        explanation = f"{explanation}; {extra}" if explanation else extra
    return {
        "task_id": d.task_id,
        "pool": d.pool,
        "account_id": d.account_id,
        "requested_mode": d.requested_mode.value if d.requested_mode else None,
        "mode_source": d.mode_source,
        "effective_mode": d.effective_mode.value if d.effective_mode else None,
        "fallback": d.fallback,
        "explanation": explanation if d.error is None or d.error.code != "invalid_request"
        else None,
        "rejections": d.rejections,
    }


def replay_events(pool: Pool, events: Iterable[Event], *,
                  source: str = "<events>") -> Iterator[dict[str, Any]]:
    """Apply each event and yield its output record (D1: deterministic)."""
    seen_tasks: set[str] = set()
    for ev in events:
        yield _apply(pool, ev, seen_tasks, source)


def _apply(pool: Pool, ev: Event, seen_tasks: set[str], source: str) -> dict[str, Any]:
    raw = ev.raw
    pool.advance(ev.at)
    pre_notes, pre_renewals = pool.drain()
    recoveries = pool.drain_recoveries()  # H1: only ``advance`` makes them
    reroute: Decision | None = None
    body: dict[str, Any]
    error: dict[str, Any] | None = None
    if ev.op == "submit":
        task_id = ev.task_id
        if task_id in seen_tasks:
            raise InputError(f"duplicate task_id {task_id!r} (already submitted earlier)",
                             source=source, field="task_id", line=ev.line)
        seen_tasks.add(task_id)
        d = pool.submit(task_id, raw["request"], ev.at,
                        estimated_gpu_seconds=raw.get("estimated_gpu_seconds"))
        body = decision_fields(d)
        error = d.error.as_dict() if d.error else None
    elif ev.op in ("complete", "fail", "cancel"):
        task_id = ev.task_id
        try:
            if ev.op == "complete":
                out = pool.complete(task_id, raw["gpu_seconds"], ev.at)
            elif ev.op == "fail" and raw.get("reason") == "fast_exhausted":
                out, reroute = pool.fail_fast_exhausted(task_id, ev.at)  # H4
            elif ev.op == "fail":
                out = pool.fail(task_id, ev.at)
            else:
                out = pool.cancel(task_id, ev.at)
        except NotInFlight:
            why = pool.not_in_flight_reason(task_id)
            err = make_error("not_in_flight", "L1",
                             f"task {task_id} is not in flight ({why}); nothing to {ev.op}")
            body, error = {"task_id": task_id}, err.as_dict()
        else:
            body = {
                "task_id": task_id,
                "account_id": out.account_id,
                "charged_seconds": out.charged_ms / MS_PER_SECOND,
                "fast_hours_remaining": out.fast_ms / MS_PER_HOUR,
                "setting": out.setting.value,
            }
    elif ev.op in ("set_status", "set_setting"):
        account_id = ev.account_id
        try:
            if ev.op == "set_status":
                acc = pool.set_status(account_id, raw["status"], ev.at, raw.get("until"))
            else:
                acc = pool.set_setting(account_id, raw["setting"], ev.at)
        except RouterError:
            err = make_error("unknown_account", "L5",
                             f"no account {account_id!r} in the pool; {ev.op} ignored (L5)")
            body, error = {"account_id": account_id}, err.as_dict()
        else:
            body = {
                "account_id": acc.id,
                "status": acc.status.value,
                "setting": acc.setting.value,
                "fast_hours_remaining": acc.fast_ms / MS_PER_HOUR,
            }
    else:  # tick
        body = {}
    notes, renewals = pool.drain()
    record = _head(ev, error, pre_notes + notes, pre_renewals + renewals)
    if recoveries:  # H1: only where it applies (old scripts keep their bytes)
        record["recoveries"] = [
            {"account_id": r.account_id, "at": format_time(r.at), "status_was": r.status_was.value}
            for r in recoveries
        ]
    record.update(body)
    if reroute is not None:  # H4: the new decision for the same task id
        fields = decision_fields(reroute)
        record["reroute"] = {
            "account_id": fields["account_id"],
            "requested_mode": fields["requested_mode"],
            "mode_source": fields["mode_source"],
            "effective_mode": fields["effective_mode"],
            "fallback": fields["fallback"],
            "error": reroute.error.as_dict() if reroute.error else None,
            "explanation": fields["explanation"],
            "rejections": fields["rejections"],
        }
    return record


def encode_record(rec: dict[str, Any]) -> str:
    """``json.dumps(rec)``, byte for byte. A submit record ends with its X1
    ``rejections`` map; when that map carries its JSON text (kept encoded in
    pieces by the candidate index), the text is spliced in instead of encoding
    every rejected account again."""
    rej = rec.get("rejections")
    if type(rej) is Rejections and rej.text is not None and next(reversed(rec)) == "rejections":
        head = json.dumps({k: v for k, v in rec.items() if k != "rejections"})
        return f"{head[:-1]}, \"rejections\": {rej.text}}}"
    return json.dumps(rec)


def write_records(records: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """Write JSON Lines; return how many lines were written."""
    n = 0
    for rec in records:
        out.write(encode_record(rec) + "\n")
        n += 1
    return n
