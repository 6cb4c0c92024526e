"""The simulator's own numbers, each stated once (docs/facts.md where it says so).

The plan table (allowances, slots, prices, room) and the task types are the
router's, in ``router.accounts``; what only a simulation needs is here: how long
jobs run, where a run starts unless told, how renewals spread over a month.
"""

from __future__ import annotations

from router.timeutil import DAY, parse_time

#: A run starts here unless its scenario or sweep names a start (a trace: its first task).
DEFAULT_START = "2026-11-02T00:00:00Z"

#: One billing month, in days: renewals spread over it, costs prorate by it.
BILLING_MONTH_DAYS = 30.0

#: Mean fast-mode GPU seconds per task type. Facts: "an average job uses about
#: 1 GPU-minute; upscales ... cost more, variations ... less".
GPU_SECONDS: dict[str, float] = {
    "imagine": 60.0, "blend": 60.0, "reroll": 60.0, "variation": 45.0, "upscale": 75.0,
    "inpaint": 45.0, "outpaint": 60.0, "pan": 60.0, "describe": 10.0, "seed": 1.0,
}

#: Turbo runs this many times faster than fast (and is charged twice, L1).
TURBO_SPEEDUP = 4.0

#: Share of generated tasks that fail (not in the facts; an assumption). Traces: none.
DEFAULT_FAILURE_RATE = 0.02

#: A working-day shape (UTC hours), mean 1: quiet nights, busy afternoons.
DEFAULT_DAILY_PROFILE: tuple[float, ...] = (
    0.4, 0.3, 0.25, 0.25, 0.3, 0.4, 0.6, 0.9, 1.2, 1.4, 1.5, 1.5,
    1.5, 1.5, 1.5, 1.4, 1.4, 1.3, 1.2, 1.1, 1.0, 0.9, 0.7, 0.55,
)


def default_start() -> float:
    """``DEFAULT_START`` in epoch seconds."""
    return parse_time(DEFAULT_START)


def spread_renewals(start: float, n: int) -> list[float]:
    """``n`` renewal instants spread evenly over the billing month after ``start``
    (the middle of each of ``n`` equal parts)."""
    month = BILLING_MONTH_DAYS * DAY
    return [start + month * (k + 0.5) / n for k in range(n)]
