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


_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_YEAR_10000 = 253_402_300_800.0  # 10000-01-01T00:00:00Z: datetime ends just before


def _days_in_month(year: int, month: int) -> int:
    """``calendar.monthrange(year, month)[1]`` (proleptic Gregorian)."""
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month - 1]


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """Days since 1970-01-01 to (year, month, day), proleptic Gregorian
    (H. Hinnant's ``civil_from_days``: eras of 400 years, years from March)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if month <= 2 else 0), month, day


def _days_from_civil(year: int, month: int, day: int) -> int:
    """The inverse of ``_civil_from_days``."""
    y = year - (1 if month <= 2 else 0)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def add_months(anchor: float, months: int) -> float:
    """L4: the same day and time ``months`` calendar months after ``anchor``,
    clamped to the month's last day (Jan 31 -> Feb 28 -> Mar 31).

    A whole second in datetime's range (every renewal instant the tools make)
    is done in integer arithmetic, exactly as the ``datetime`` path below would
    (issue 13: that path costs some 20,000 instructions, ``calendar.monthrange``
    being interpreted even in a compiled core); anything else takes that path."""
    if 0.0 <= anchor < _YEAR_10000:
        whole = int(anchor)
        if whole == anchor:
            days, second = divmod(whole, 86_400)
            year0, month0, day0 = _civil_from_days(days)
            total = month0 - 1 + months
            year = year0 + total // 12
            month = total % 12 + 1
            if 1 <= year <= 9999:
                day = min(day0, _days_in_month(year, month))
                return float(_days_from_civil(year, month, day) * 86_400 + second)
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
