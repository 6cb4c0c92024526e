"""``LoadBuckets``: accounts in ``(load, id)`` order for ``least_loaded`` (S).

A load (``in_flight / max_in_flight``) takes few distinct values, so accounts are
grouped in one bucket per value; the non-empty bucket values are kept sorted,
and each bucket is a heap of ids with lazy deletion. Moving an account to
another load (every reserve and every completion) is a set update and a
``heappush`` instead of a remove and an insert in one big sorted list.

Iteration order is exactly ``sorted((load, id))``: buckets by ascending load
value (equal floats share a bucket), ids ascending inside a bucket.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable
from heapq import heappop, heappush


class LoadBuckets:
    """A set of account ids, each filed under one load value."""

    __slots__ = ("_heaps", "_members", "_now", "_parked", "_where", "loads")

    def __init__(self) -> None:
        self._where: dict[str, float] = {}  # id -> its load
        self._members: dict[float, set[str]] = {}  # load -> live ids
        self._heaps: dict[float, list[str]] = {}  # load -> ids; may hold stale/duplicate ids
        self.loads: list[float] = []  # the non-empty load values, ascending
        self._parked: dict[float, list[tuple[float, str]]] = {}  # load -> (until, id) heap
        self._now = float("-inf")

    def __len__(self) -> int:
        return len(self._where)

    def set(self, acc_id: str, load: float | None) -> None:
        """File ``acc_id`` under ``load``, or remove it (``None``)."""
        where = self._where
        old = where.get(acc_id)
        if old == load:
            return
        if old is not None:
            was = self._members[old]
            was.discard(acc_id)
            if not was:
                del self._members[old], self._heaps[old]
                self._parked.pop(old, None)
                self.loads.pop(bisect_left(self.loads, old))
            del where[acc_id]
        if load is None:
            return
        where[acc_id] = load
        members = self._members.get(load)
        if members is None:
            self._members[load] = {acc_id}
            self._heaps[load] = [acc_id]
            insort(self.loads, load)
            return
        members.add(acc_id)
        heap = self._heaps[load]
        heappush(heap, acc_id)
        if len(heap) > 2 * len(members) + 32:  # too many stale entries: compact
            heap[:] = sorted(members)  # a sorted list is a heap; every member rechecked
            self._parked.pop(load, None)

    def first(self, below: float, now: float,
              blocked_until: Callable[[str], float | None]) -> str | None:
        """The first id in ``(load, id)`` order with load < ``below`` that is not
        blocked at ``now``, or None.

        ``blocked_until(id)`` is None for an id that can be taken, else a time
        before which it surely stays blocked (e.g. its inactive window's end,
        T1). Blocked ids are parked until then instead of being met again at
        every pick; an earlier ``now`` than the last call unparks everything.
        Stale heap entries met on the way are dropped.
        """
        if now < self._now:
            self._unpark_all()
        self._now = now
        for load in self.loads:
            if load >= below:
                return None
            members = self._members[load]
            heap = self._heaps[load]
            parked = self._parked.get(load)
            while parked and parked[0][0] <= now:
                acc_id = heappop(parked)[1]
                if acc_id in members:
                    heappush(heap, acc_id)
            last: str | None = None
            while heap:
                acc_id = heappop(heap)
                if acc_id not in members or acc_id == last:
                    continue  # stale, or a duplicate of one just parked
                until = blocked_until(acc_id)
                if until is None:
                    heappush(heap, acc_id)
                    return acc_id
                if parked is None:
                    parked = self._parked[load] = []
                heappush(parked, (until, acc_id))
                last = acc_id
        return None

    def _unpark_all(self) -> None:
        for load, parked in self._parked.items():
            heap, members = self._heaps[load], self._members[load]
            for _until, acc_id in parked:
                if acc_id in members:
                    heappush(heap, acc_id)
        self._parked.clear()
