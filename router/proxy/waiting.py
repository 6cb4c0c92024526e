"""``LineEstimate``: a waiting task's place in the line (R5) and when it may start.

How the start is estimated: a waiting task starts when a slot frees on an
eligible account, and a slot frees each time a task routed to one of our
accounts finishes (completed, failed or cancelled). This process keeps the times
of the last finishes it saw (at most ``keep``, within ``window`` seconds); their
rate *r* (finishes per second) gives, for the task at place *p* (1 = next),

    estimated start = now + p / r

It is an estimate from the recent past, and honest about it:

* ``None`` (``null`` in JSON) when fewer than ``min_finishes`` tasks finished in
  the window: no rate, no guess;
* it assumes the line moves one task per freed slot; when the tasks ahead wait
  for something else (a daily cap, H2, lifts at 00:00 UTC; a gap, H3; an
  account back from a timed status, H1) it is early;
* with several processes on one line each counts only its own finishes, so the
  rate is lower than the pool's and the estimate later than the truth.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from router.proxy.tasks import Task
from router.timeutil import format_time


class LineEstimate:
    """Recent finishes of this process, and a waiting task's place and start."""

    def __init__(self, position: Callable[[str], int | None], *, window: float = 300.0,
                 keep: int = 512, min_finishes: int = 3) -> None:
        self.position = position  # the line's place of a task (``TaskQueue.position``)
        self.window = window
        self.min_finishes = min_finishes
        self._finishes: deque[float] = deque(maxlen=keep)

    def finished(self, task: Task) -> None:
        """Note a finish that freed a slot on one of our accounts."""
        d = task.decision
        if d is not None and d.account_id is not None and task.ended_at is not None:
            self._finishes.append(task.ended_at)

    def rate(self, now: float) -> float | None:
        """Finishes per second over the window, or None when too few to tell."""
        recent = [t for t in self._finishes if now - self.window <= t <= now]
        if len(recent) < self.min_finishes:
            return None
        span = max(now - min(recent), 1e-3)
        return len(recent) / span

    def placement(self, task_id: str, now: float) -> dict[str, Any]:
        """``meta.queue_position`` and ``meta.estimated_start_at`` of a waiting task
        (both None when it is no longer in the line)."""
        place = self.position(task_id)
        rate = self.rate(now)
        start = None if place is None or rate is None else now + place / rate
        return {"queue_position": place,
                "estimated_start_at": format_time(round(start)) if start is not None else None}
