"""The largest times and amounts the input formats accept (docs/formats.md).

A finite number can still be too large to work with: ``1e308`` hours does not fit in
whole milliseconds (L0), and a time in the year 9999 leaves no room for the monthly
renewals after it (L4). These bounds are far beyond any real account or trace and
keep every figure the router computes from them finite and representable.
"""

from __future__ import annotations

from router.timeutil import parse_time

#: Times must be before 9000-01-01T00:00:00Z (renewals after them stay in datetime's range)
#: and from 1970-01-01T00:00:00Z on (epoch seconds >= 0; earlier years print badly).
MAX_TIME = 221_845_392_000.0
MAX_TIME_TEXT = "9000-01-01T00:00:00Z"
MIN_TIME = 0.0
MIN_TIME_TEXT = "1970-01-01T00:00:00Z"
#: Hours of fast time (an account's ``fast_hours_remaining``): about 114 years.
MAX_HOURS = 1_000_000
#: Seconds of GPU time or of a gap (``gpu_seconds``, ``estimated_gpu_seconds``, ...):
#: about 31 years.
MAX_SECONDS = 1_000_000_000
#: An account's ``weight`` (S): a sum of many such weights stays finite.
MAX_WEIGHT = 1_000_000


def check_time(at: float, text: object) -> float:
    """``at`` (epoch seconds, parsed from ``text``) if it is from :data:`MIN_TIME` and
    before :data:`MAX_TIME`, else ``ValueError`` saying the bound."""
    if not at < MAX_TIME:
        raise ValueError(f"expected a time before {MAX_TIME_TEXT}, got {text!r}")
    if not at >= MIN_TIME:
        raise ValueError(f"expected a time from {MIN_TIME_TEXT} on, got {text!r}")
    return at


def parse_bounded_time(text: object) -> float:
    """``parse_time`` for input files: also refuses times from :data:`MAX_TIME` on."""
    return check_time(parse_time(text), text)


def seconds_problem(value: object) -> str | None:
    """What is wrong with a number of seconds from a file, or None when it is fine
    (a finite number, ``0 <= value <= MAX_SECONDS``)."""
    if (not isinstance(value, int | float) or isinstance(value, bool)
            or not 0 <= value < float("inf")):
        return f"expected a finite number of seconds >= 0, got {value!r}"
    if value > MAX_SECONDS:
        return f"expected seconds <= {MAX_SECONDS:,}, got {value!r}"
    return None
