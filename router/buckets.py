"""Index building blocks for the strategies (S).

``LoadBuckets``: accounts in ``(load, id)`` order for ``least_loaded``;
``Fenwick``: exact prefix sums for ``weighted`` and ``p2c``; ``ExpiringIndex``:
the best ``expiring_first`` score without scoring every account.

``LoadBuckets``:

A load (``in_flight / max_in_flight``) takes few distinct values, so accounts are
grouped in one bucket per value; the non-empty bucket values are kept sorted,
and each bucket is a heap of ids with lazy deletion. Moving an account to
another load (every reserve and every completion) is a set update and a
``heappush`` instead of a remove and an insert in one big sorted list.

Iteration order is exactly ``sorted((load, id))``: buckets by ascending load
value (equal floats share a bucket), ids ascending inside a bucket.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from heapq import heappop, heappush

from sortedcontainers import SortedList


class _Bucket:
    """The ids filed under one load value: the live ones (``members``), a heap of
    ids that may hold stale or duplicate entries, and the ids parked as
    ``(until, id)`` (a heap; None: none parked)."""

    __slots__ = ("heap", "load", "members", "parked")

    def __init__(self, load: float, acc_id: str) -> None:
        self.load = load
        self.members: set[str] = {acc_id}
        self.heap: list[str] = [acc_id]
        self.parked: list[tuple[float, str]] | None = None


class LoadBuckets:
    """A set of account ids, each filed under one load value.

    Each id maps to its bucket object and a bucket holds its load, so a move
    looks up one id and at most one load, and a pick walks the buckets without
    looking anything up (issue 13: float keys cost a hash and a boxing each)."""

    __slots__ = ("_buckets", "_by_load", "_now", "_where", "loads")

    def __init__(self) -> None:
        self._where: dict[str, _Bucket] = {}  # id -> the bucket of its load
        self._by_load: dict[float, _Bucket] = {}  # load -> its bucket (non-empty ones)
        self.loads: list[float] = []  # the non-empty load values, ascending
        self._buckets: list[_Bucket] = []  # their buckets, in the same order
        self._now = float("-inf")

    def __len__(self) -> int:
        return len(self._where)

    def load_of(self, acc_id: str) -> float:
        """The load ``acc_id`` is filed under (it must be filed)."""
        return self._where[acc_id].load

    def set(self, acc_id: str, load: float | None) -> None:
        """File ``acc_id`` under ``load``, or remove it (``None``)."""
        where = self._where
        old = where.get(acc_id)
        if old is not None:
            if load is not None and old.load == load:
                return
            was = old.members
            was.remove(acc_id)
            if not was:  # the bucket is dropped, with its heap and parked ids
                del self._by_load[old.load]
                pos = bisect_left(self.loads, old.load)
                del self.loads[pos], self._buckets[pos]
            if load is None:
                del where[acc_id]
                return
        elif load is None:
            return
        bucket = self._by_load.get(load)
        if bucket is None:
            bucket = self._by_load[load] = _Bucket(load, acc_id)
            where[acc_id] = bucket
            pos = bisect_left(self.loads, load)
            self.loads.insert(pos, load)
            self._buckets.insert(pos, bucket)
            return
        where[acc_id] = bucket
        members = bucket.members
        members.add(acc_id)
        heap = bucket.heap
        heappush(heap, acc_id)
        if len(heap) > 2 * len(members) + 32:  # too many stale entries: compact
            heap[:] = sorted(members)  # a sorted list is a heap; every member rechecked
            bucket.parked = None

    def unpark(self, acc_id: str) -> None:
        """Let ``acc_id`` be met again at the next ``first``, wherever it was parked
        (what blocked it changed)."""
        bucket = self._where.get(acc_id)
        if bucket is not None:
            load = bucket.load
            self.set(acc_id, None)
            self.set(acc_id, load)

    def first(self, below: float, now: float,
              blocked_until: Callable[[str], float | None] | None) -> str | None:
        """The first id in ``(load, id)`` order with load < ``below`` that is not
        blocked at ``now``, or None.

        ``blocked_until(id)`` is None for an id that can be taken, else a time
        before which it surely stays blocked (e.g. its inactive window's end,
        T1). Blocked ids are parked until then instead of being met again at
        every pick; an earlier ``now`` than the last call unparks everything.
        ``blocked_until=None``: nothing but the load blocks an id. Stale heap
        entries met on the way are dropped.
        """
        if now < self._now:
            self._unpark_all()
        self._now = now
        for bucket in self._buckets:
            if bucket.load >= below:
                return None
            members = bucket.members
            heap = bucket.heap
            parked = bucket.parked
            while parked and parked[0][0] <= now:
                acc_id = heappop(parked)[1]
                if acc_id in members:
                    heappush(heap, acc_id)
            last: str | None = None
            while heap:
                acc_id = heap[0]  # peek: the common case takes it and leaves it there
                if acc_id not in members or acc_id == last:
                    heappop(heap)
                    continue  # stale, or a duplicate of one just parked
                if blocked_until is None:
                    return acc_id
                until = blocked_until(acc_id)
                if until is None:
                    return acc_id
                heappop(heap)
                if parked is None:
                    parked = bucket.parked = []
                heappush(parked, (until, acc_id))
                last = acc_id
        return None

    def _unpark_all(self) -> None:
        for bucket in self._buckets:
            parked = bucket.parked
            if parked:
                heap, members = bucket.heap, bucket.members
                for _until, acc_id in parked:
                    if acc_id in members:
                        heappush(heap, acc_id)
            bucket.parked = None


class Fenwick:
    """Prefix sums of non-negative integers over positions ``0..n-1`` (S).

    ``add`` and ``search`` are O(log n). Integers keep every sum exact, so a
    search lands on exactly the position a left-to-right running total would.
    """

    __slots__ = ("_n", "_top", "_tree", "total")

    def __init__(self, values: list[int]) -> None:
        n = len(values)
        tree = [0, *values]
        for i in range(1, n + 1):
            j = i + (i & -i)
            if j <= n:
                tree[j] += tree[i]
        self._n = n
        self._tree = tree
        self._top = 1 << (n.bit_length() - 1) if n else 0
        self.total = sum(values)

    def add(self, pos: int, delta: int) -> None:
        """Add ``delta`` to the value at ``pos``."""
        self.total += delta
        tree, n = self._tree, self._n
        i = pos + 1
        while i <= n:
            tree[i] += delta
            i += i & -i

    def search(self, target: int) -> int:
        """The first position whose running total (through it) exceeds
        ``target``; ``0 <= target < total``."""
        tree, n = self._tree, self._n
        pos = 0
        step = self._top
        while step:
            nxt = pos + step
            if nxt <= n and tree[nxt] <= target:
                pos = nxt
                target -= tree[nxt]
            step >>= 1
        return pos


class ExpiringIndex:
    """Accounts for ``expiring_first`` (S): the highest unreserved fast time per
    second to renewal, ties to the lowest id, without scoring every account.

    The score ``u / max(renew - now, 1)`` moves with time, so no order by score
    lasts. Accounts are grouped instead by the magnitude of their unreserved
    fast time ``u`` (class ``c`` holds ``2**(c-1) <= u < 2**c``), each class in
    ``(renewal, id)`` order. Inside a class, ``2**c / max(renew - now, 1)``
    bounds every later account's score (renewals only grow along the class), so
    a walk stops as soon as that bound is below the best score found. Only the
    class changes when ``u`` moves inside its power of two: most reservations
    and completions cost no re-filing at all. Accounts with no renewal instant
    or no unreserved fast time score 0 and are kept apart, by id.
    """

    __slots__ = ("_classes", "_first", "_order", "_where", "_zero")

    def __init__(self) -> None:
        self._classes: dict[int, SortedList[tuple[float, str]]] = {}
        self._order: list[int] = []  # the non-empty classes, highest first
        self._first: dict[int, float] = {}  # class -> its earliest renewal
        self._where: dict[str, tuple[int, float]] = {}  # id -> (class, renewal); class 0: zero
        self._zero: SortedList[str] = SortedList()

    def __len__(self) -> int:
        return len(self._where)

    def set(self, acc_id: str, unreserved: int | None, renew: float | None) -> None:
        """File ``acc_id`` by its unreserved fast time and renewal instant, or
        remove it (``unreserved is None``)."""
        if unreserved is None:
            new = None
        elif unreserved <= 0 or renew is None:
            new = (0, 0.0)
        else:
            new = (unreserved.bit_length(), renew)
        where = self._where
        old = where.get(acc_id)
        if old == new:
            return
        if old is not None:
            cls, at = old
            if cls == 0:
                self._zero.remove(acc_id)
            else:
                sl = self._classes[cls]
                sl.remove((at, acc_id))
                if not sl:
                    del self._classes[cls], self._first[cls]
                    self._order.remove(cls)
                else:
                    self._first[cls] = sl[0][0]
            del where[acc_id]
        if new is None:
            return
        where[acc_id] = new
        cls, at = new
        if cls == 0:
            self._zero.add(acc_id)
            return
        if cls not in self._classes:
            self._classes[cls] = SortedList()
            self._first[cls] = at
            self._order.append(cls)
            self._order.sort(reverse=True)
        elif at < self._first[cls]:
            self._first[cls] = at
        self._classes[cls].add((at, acc_id))

    def best(self, now: float, score: Callable[[str], float]) -> str | None:
        """The id with the highest ``score(id)`` at ``now``, ties to the lowest
        id; ``score`` must be ``strategies.expiring_first_score`` of that account."""
        best_id: str | None = None
        best = -1.0
        classes, first = self._classes, self._first
        for cls in self._order:
            cap = float(1 << cls)  # every u in the class is below it
            if cap < best:
                break  # left >= 1 s: no score in this class or a lower one reaches best
            left = first[cls] - now
            if left < 1.0:
                left = 1.0
            if cap / left < best:
                continue  # not even the class's first renewal can reach best
            for at, acc_id in classes[cls]:
                left = at - now
                if left < 1.0:
                    left = 1.0
                if cap / left < best:
                    break  # this bound only falls further along the class
                s = score(acc_id)
                if s > best or (s == best and best_id is not None and acc_id < best_id):
                    best, best_id = s, acc_id
        if best_id is None and self._zero:
            return self._zero[0]
        return best_id
