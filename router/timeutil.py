"""Time at the edges: ISO-8601 UTC strings in and out, float epoch seconds inside."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

DAY = 86_400.0


def parse_time(text: object) -> float:
    """Parse an ISO-8601 time (``Z`` or an offset; fractions allowed) to epoch seconds.

    A time without a zone is taken as UTC. Raises ``ValueError`` with a clear text,
    for anything else too (``text`` may come straight from a JSON value; typed
    ``object``, a compiled core checks nothing before this does).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(
            f"expected an ISO-8601 UTC time such as 2026-12-01T08:00:00Z, got {text!r}"
        )
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"expected an ISO-8601 UTC time such as 2026-12-01T08:00:00Z, got {text!r}"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def format_time(ts: float) -> str:
    """Epoch seconds to ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def add_months(anchor: float, months: int) -> float:
    """L4: the same day and time ``months`` calendar months after ``anchor``,
    clamped to the month's last day (Jan 31 -> Feb 28 -> Mar 31)."""
    dt = datetime.fromtimestamp(anchor, tz=UTC)
    total = dt.month - 1 + months
    year = dt.year + total // 12
    month = total % 12 + 1
    day = min(dt.day, calendar.monthrange(year, month)[1])
    return dt.replace(year=year, month=month, day=day).timestamp()


def parse_clock(text: object) -> int:
    """``HH:MM`` (UTC) to seconds after midnight; raises ``ValueError``."""
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f"expected a UTC clock time HH:MM such as 02:00, got {text!r}")
    h, m = int(parts[0]), int(parts[1])
    if h > 23 or m > 59:
        raise ValueError(f"expected a UTC clock time HH:MM such as 02:00, got {text!r}")
    return h * 3600 + m * 60
