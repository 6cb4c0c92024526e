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

    __slots__ = ("_heaps", "_members", "_where", "loads")

    def __init__(self) -> None:
        self._where: dict[str, float] = {}  # id -> its load
        self._members: dict[float, set[str]] = {}  # load -> live ids
        self._heaps: dict[float, list[str]] = {}  # load -> ids; may hold stale/duplicate ids
        self.loads: list[float] = []  # the non-empty load values, ascending

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
            heap[:] = sorted(members)  # a sorted list is a heap

    def first(self, below: float, accept: Callable[[str], bool]) -> str | None:
        """The first id in ``(load, id)`` order with load < ``below`` that
        ``accept`` takes, or None. Stale heap entries met on the way are dropped."""
        for load in self.loads:
            if load >= below:
                return None
            members = self._members[load]
            heap = self._heaps[load]
            skipped: list[str] = []
            found: str | None = None
            while heap:
                acc_id = heap[0]
                if acc_id not in members or (skipped and skipped[-1] == acc_id):
                    heappop(heap)  # stale, or a duplicate of one just skipped
                    continue
                if accept(acc_id):
                    found = acc_id
                    break
                skipped.append(heappop(heap))
            for acc_id in skipped:
                heappush(heap, acc_id)
            if found is not None:
                return found
        return None
