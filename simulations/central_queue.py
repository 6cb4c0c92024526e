"""The central queue of late binding (R5): tasks answered ``pool_saturated`` wait here.

One FIFO lane per account for pinned children (they can only run there, R7), one
for fast/turbo roots and one for relax roots. A retry routes the lanes' heads
again, the oldest first among the lanes that can still run; one ``pool_saturated``
answer blocks its lane until the next retry. The queue also keeps the numbers its
summary needs: entries, the time integral of its length, each task's time in it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class CentralQueue:
    """Waiting tasks (by index) and the queue's own accounting.

    ``entered[i]`` (when task ``i`` last entered, NaN: never) and ``waited[i]``
    (its total time in the queue) are the run's per-task columns, shared.
    """

    __slots__ = ("area", "entered", "entries", "fast", "last", "length", "pinned", "relax",
                 "waited")

    def __init__(self, start: float, entered: list[float], waited: list[float]) -> None:
        self.fast: deque[int] = deque()
        self.relax: deque[int] = deque()
        self.pinned: dict[int, deque[int]] = {}
        self.length = 0
        self.entries = 0
        self.area = 0.0  # integral of the length over time
        self.last = start
        self.entered = entered
        self.waited = waited

    def __len__(self) -> int:
        return self.length

    def _change(self, delta: int, now: float) -> None:
        self.area += self.length * (now - self.last)
        self.last = now
        self.length += delta

    def close(self, now: float) -> None:
        """Bring the length integral up to ``now`` (the end of the run)."""
        self._change(0, now)

    def push(self, task: int, now: float, *, pinned_to: int | None, relax: bool) -> None:
        """Task ``task`` waits: in its pinned account's lane, else by requested mode."""
        self._change(+1, now)
        self.entries += 1
        self.entered[task] = now
        if pinned_to is not None:
            self.pinned.setdefault(pinned_to, deque()).append(task)
        elif relax:
            self.relax.append(task)
        else:
            self.fast.append(task)

    def _left(self, task: int, now: float) -> None:
        self._change(-1, now)
        self.waited[task] += now - self.entered[task]

    def remove(self, task: int, now: float) -> bool:
        """Take a waiting task out (a cancel); True if it was waiting."""
        for lane in (self.fast, self.relax, *self.pinned.values()):
            if task in lane:
                lane.remove(task)
                self._left(task, now)
                return True
        return False

    def retry(self, route: Callable[[int], bool], now: float, account: int | None) -> None:
        """Route waiting tasks again, oldest first among the lanes that can run.

        ``route(task)`` is True when the task left the queue's concern (accepted or
        rejected). ``account``: only that account's pinned lane (a slot freed there);
        ``None``: every pinned lane.
        """
        if self.length == 0:
            return
        lanes: list[deque[int]] = [self.fast, self.relax]
        if account is None:
            lanes.extend(self.pinned.values())
        else:
            lane = self.pinned.get(account)
            if lane:
                lanes.append(lane)
        lanes = [q for q in lanes if q]
        entered = self.entered
        while lanes:
            best = min(lanes, key=lambda q: (entered[q[0]], q[0]))
            task = best[0]
            if route(task):
                best.popleft()
                self._left(task, now)
                if not best:
                    lanes.remove(best)
            else:
                lanes.remove(best)
