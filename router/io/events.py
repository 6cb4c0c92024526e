"""The event script (docs/formats.md): read and check JSON Lines events.

An event line that cannot be read (not JSON, unknown ``op``, a missing,
mistyped or unknown field, time going backwards, a duplicate ``task_id``)
raises ``InputError`` naming the file, line and field: the run stops (exit 2).
Problems *inside* a request body are the router's business (M0/M1 error lines).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.accounts import Setting, Status
from router.errors import InputError
from router.io.files import open_stdin_text, open_text, source_name
from router.io.limits import parse_bounded_time, seconds_problem
from router.timeutil import format_time

_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # op: (required fields, optional fields) besides "op" and "at"
    "submit": (frozenset({"task_id", "request"}), frozenset({"estimated_gpu_seconds"})),
    "complete": (frozenset({"task_id", "gpu_seconds"}), frozenset()),
    "fail": (frozenset({"task_id"}), frozenset({"reason"})),  # H4
    "cancel": (frozenset({"task_id"}), frozenset()),
    "set_status": (frozenset({"account_id", "status"}), frozenset({"until"})),  # H1
    "set_setting": (frozenset({"account_id", "setting"}), frozenset()),
    "tick": (frozenset(), frozenset()),
}


#: H1: the statuses a set_status may end at ``until``.
_TIMED_STATUSES: tuple[str, ...] = (
    Status.DISABLED.value, Status.BANNED.value, Status.CAPTCHA_REQUIRED.value)


@dataclass(slots=True)
class Event:
    """One checked event line."""

    line: int
    op: str
    at: float
    raw: dict[str, Any]

    @property
    def task_id(self) -> str:
        return str(self.raw["task_id"])

    @property
    def account_id(self) -> str:
        return str(self.raw["account_id"])


def check_event(obj: object, line: int, source: str, last_at: float | None) -> Event:
    """Check one decoded event line against the contract."""
    def err(msg: str, field: str | None = None) -> InputError:
        return InputError(msg, source=source, line=line, field=field)

    if not isinstance(obj, dict):
        raise err(f"expected a JSON object per line, got {type(obj).__name__}")
    op = obj.get("op")
    if not isinstance(op, str) or op not in _FIELDS:
        if "op" not in obj:
            raise err("required field is missing", "op")
        raise err(f"unknown op {op!r}; expected one of {', '.join(_FIELDS)}", "op")
    required, optional = _FIELDS[op]
    if "at" not in obj:
        raise err("required field is missing", "at")
    for name in sorted(required):
        if name not in obj:
            raise err(f"required field is missing (a {op} event needs it)", name)
    unknown = sorted(set(obj) - required - optional - {"op", "at"})
    if unknown:
        allowed = ", ".join(["op", "at", *sorted(required | optional)])
        raise err(f"unknown field for a {op} event; expected only {allowed}", unknown[0])
    try:
        at = parse_bounded_time(obj["at"])
    except ValueError as exc:
        raise err(str(exc), "at") from None
    if last_at is not None and at < last_at:
        raise err(f"time went backwards: {obj['at']} is earlier than the line before "
                  f"({format_time(last_at)}); events must be in time order (L6)", "at")
    for name in ("task_id", "account_id"):
        if name in obj and (not isinstance(obj[name], str) or not obj[name]):
            raise err(f"expected a non-empty string, got {obj[name]!r}", name)
    if op == "submit":
        if not isinstance(obj["request"], dict):
            raise err(f"expected a GoAPI request object, got {type(obj['request']).__name__}",
                      "request")
        est = obj.get("estimated_gpu_seconds")
        problem = None if est is None else seconds_problem(est)
        if problem:
            raise err(problem, "estimated_gpu_seconds")
    if op == "complete":
        problem = seconds_problem(obj["gpu_seconds"])
        if problem:
            raise err(problem, "gpu_seconds")
    if op == "set_status" and obj["status"] not in [s.value for s in Status]:
        raise err(f"expected one of {', '.join(s.value for s in Status)}, got {obj['status']!r}",
                  "status")
    if op == "set_status" and "until" in obj:
        if obj["status"] not in _TIMED_STATUSES:
            raise err(f"expected no until with status {obj['status']!r}; until is allowed "
                      f"only with {', '.join(_TIMED_STATUSES)} (H1)", "until")
        try:
            until = parse_bounded_time(obj["until"])
        except ValueError as exc:
            raise err(f"{exc} (H1)", "until") from None
        if until <= at:
            raise err(f"expected a time later than at ({format_time(at)}), "
                      f"got {obj['until']!r} (H1)", "until")
    if op == "fail" and "reason" in obj and obj["reason"] != "fast_exhausted":
        raise err(f"expected fast_exhausted or no reason, got {obj['reason']!r} (H4)", "reason")
    if op == "set_setting" and obj["setting"] not in [s.value for s in Setting]:
        raise err(f"expected one of {', '.join(s.value for s in Setting)}, "
                  f"got {obj['setting']!r}", "setting")
    return Event(line, op, at, obj)


def read_events(path: str | Path) -> Iterator[Event]:
    """Yield checked events, stopping with ``InputError`` at the first bad line.

    Duplicate submit ``task_id``s are the caller's check (it knows the run).
    ``-`` reads standard input (named ``<stdin>`` in messages).
    """
    source = source_name(path)
    last_at: float | None = None
    with open_stdin_text() if str(path) == "-" else open_text(path) as fh:
        try:
            for lineno, text in enumerate(fh, start=1):
                if not text.strip():
                    continue  # blank lines carry no event (event numbers stay line numbers)
                try:
                    obj = json.loads(text.rstrip("\r\n"))
                except json.JSONDecodeError as exc:
                    raise InputError(f"not valid JSON: {exc.msg} (column {exc.colno})",
                                     source=source, line=lineno) from None
                ev = check_event(obj, lineno, source, last_at)
                last_at = ev.at
                yield ev
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the file: {exc}", source=source) from None
