"""Index building blocks for the strategies (S).

``LoadBuckets``: accounts in ``(load, id)`` order for ``least_loaded``;
``Fenwick``: exact prefix sums for ``weighted`` and ``p2c``; ``ExpiringIndex``:
the best ``expiring_first`` score without scoring every account.

``LoadBuckets``:

A load (``in_flight / max_in_flight``) takes few distinct values, so accounts are
grouped in one bucket per value; the non-empty bucket values are kept sorted,
and each bucket holds its accounts as a set of *positions* (each id's rank in
id order): a hierarchy of 32-bit words (``_Bits``) that keeps its lowest
position, the lowest id, and finds it again in one step per level (3 levels at
10k accounts, 4 at 100k) when that one leaves.
Moving an account to another load (every reserve and every completion) clears
one bit and sets another, with no string comparison and no stale entries
(issue 13: heaps of string ids cost a unicode comparison per step, log n steps).

Iteration order is exactly ``sorted((load, id))``: buckets by ascending load
value (equal floats share a bucket), ids ascending inside a bucket.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from heapq import heappop, heappush
from math import floor

from sortedcontainers import SortedList


class _Bits:
    """A set of positions ``0..n-1``: level 0 holds one bit per position in
    32-bit words, each higher level one bit per non-zero word of the level
    below, up to a single word. Adding and discarding touch one word per level
    at most; the lowest position is kept (``low``, -1: empty) and found again
    only when it is the one discarded."""

    __slots__ = ("levels", "low")

    def __init__(self, n: int) -> None:
        levels: list[list[int]] = []
        size = n
        while True:
            words = (size + 31) >> 5
            if words < 1:
                words = 1
            levels.append([0] * words)
            if words == 1:
                break
            size = words
        self.levels = levels
        self.low = -1

    def add(self, pos: int) -> None:
        low = self.low
        if low < 0 or pos < low:
            self.low = pos
        for words in self.levels:
            i = pos >> 5
            w = words[i]
            words[i] = w | (1 << (pos & 31))
            if w:
                return  # the word was already non-zero: the levels above know it
            pos = i

    def discard(self, pos: int) -> None:
        levels = self.levels
        words = levels[0]
        i = pos >> 5
        first = words[i] & ~(1 << (pos & 31))  # what is left of its word
        words[i] = first
        if not first:  # the word is empty: clear its bit above, and so on
            up = i
            for k in range(1, len(levels)):
                words = levels[k]
                i = up >> 5
                w = words[i] & ~(1 << (up & 31))
                words[i] = w
                if w:
                    break  # the word still holds a position: the levels above stay
                up = i
        if pos == self.low:  # nothing below it: the next lowest is in its word if any
            self.low = ((pos >> 5 << 5) | ((first & -first).bit_length() - 1) if first
                        else self._lowest())

    def _lowest(self) -> int:
        """The lowest position in the set, or -1 when it is empty."""
        levels = self.levels
        k = len(levels) - 1
        w = levels[k][0]
        if not w:
            return -1
        pos = 0
        while True:
            pos = (pos << 5) | ((w & -w).bit_length() - 1)
            if k == 0:
                return pos
            k -= 1
            w = levels[k][pos]


class _Bucket:
    """The positions filed under one load value: how many (``count``), those a
    ``first`` may meet (``bits``: every one but the parked ones), and the ones
    parked as ``(until, position)`` (a heap; None: none parked)."""

    __slots__ = ("bits", "count", "load", "parked")

    def __init__(self, load: float, bits: _Bits) -> None:
        self.load = load
        self.count = 0
        self.bits = bits
        self.parked: list[tuple[float, int]] | None = None


class LoadBuckets:
    """A set of account ids, each filed under one load value.

    Ids are known by their position in id order (``ids``: those expected; an
    id seen for the first time renumbers every position, O(n), done once per
    new id; ``set_at`` files by position, for a caller that keeps positions).
    Each position maps to its bucket and a bucket holds its load, so a move
    looks up one id and at most one load, and a pick walks the buckets without
    looking anything up (issue 13: float keys cost a hash and a boxing each)."""

    __slots__ = ("_back", "_buckets", "_by_load", "_ids", "_now", "_pos", "_size", "_spare",
                 "_where", "last_load", "loads")

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._ids: list[str] = sorted(set(ids))  # position -> id
        self._pos: dict[str, int] = {i: k for k, i in enumerate(self._ids)}
        self._where: list[_Bucket | None] = [None] * len(self._ids)  # position -> bucket
        #: position -> the bucket it was in before its current one (``set_at``)
        self._back: list[_Bucket | None] = [None] * len(self._ids)
        self._by_load: dict[float, _Bucket] = {}  # load -> its bucket (non-empty ones)
        self.loads: list[float] = []  # the non-empty load values, ascending
        self._buckets: list[_Bucket] = []  # their buckets, in the same order
        self._spare: list[_Bits] = []  # the (empty) sets of dropped buckets, for new ones
        self._size = 0
        self._now = float("-inf")
        #: the load of the id the last ``first`` returned
        self.last_load = 0.0

    def __len__(self) -> int:
        return self._size

    def set(self, acc_id: str, load: float | None) -> None:
        """File ``acc_id`` under ``load``, or remove it (``None``)."""
        pos = self._pos.get(acc_id, -1)
        if pos < 0:
            if load is None:
                return
            self.renumber([*self._ids, acc_id])
            pos = self._pos[acc_id]
        if load is None:
            self.remove_at(pos)
        else:
            self.set_at(pos, load)

    def set_at(self, pos: int, load: float) -> None:
        """``set`` of the id at position ``pos`` (its rank in id order) to a load."""
        where = self._where
        old = where[pos]
        if old is not None:
            if old.load == load:
                return
            self._leave(old, pos)
        else:
            self._size += 1
        # Coming back to the load it left last (a completion after a reservation),
        # it finds that bucket without a lookup by a float key (issue 13). A bucket
        # with no position left was dropped: it is never filed into again.
        back = self._back
        bucket = back[pos]
        if bucket is None or bucket.load != load or not bucket.count:
            bucket = self._bucket(load)
        back[pos] = old
        bucket.count += 1
        bucket.bits.add(pos)
        where[pos] = bucket

    def remove_at(self, pos: int) -> None:
        """``set`` of the id at position ``pos`` to None: no longer filed."""
        old = self._where[pos]
        if old is not None:
            self._leave(old, pos)
            self._where[pos] = None
            self._size -= 1

    def _leave(self, bucket: _Bucket, pos: int) -> None:
        """Take ``pos`` out of ``bucket``, and drop the bucket when it empties."""
        bucket.bits.discard(pos)
        bucket.count -= 1
        if not bucket.count:  # the bucket is dropped, with its parked positions
            del self._by_load[bucket.load]
            i = bisect_left(self.loads, bucket.load)
            del self.loads[i], self._buckets[i]
            self._spare.append(bucket.bits)  # every bit cleared: ready for another load

    def _bucket(self, load: float) -> _Bucket:
        """The bucket of ``load``, made (and put in order) if there is none."""
        bucket = self._by_load.get(load)
        if bucket is None:
            spare = self._spare
            bucket = self._by_load[load] = _Bucket(
                load, spare.pop() if spare else _Bits(len(self._ids)))
            i = bisect_left(self.loads, load)
            self.loads.insert(i, load)
            self._buckets.insert(i, bucket)
        return bucket

    def renumber(self, ids: list[str]) -> None:
        """Number ``ids`` (every id numbered so far among them) in id order: every
        position changes, every bucket's set is rebuilt (parked ids are met again)."""
        old_ids, old_where = self._ids, self._where
        ids = self._ids = sorted(set(ids))
        pos = self._pos = {i: k for k, i in enumerate(ids)}
        n = len(ids)
        self._spare = []
        for bucket in self._buckets:
            bucket.bits = _Bits(n)
            bucket.parked = None
        where: list[_Bucket | None] = [None] * n
        for k, bucket_or_none in enumerate(old_where):
            if bucket_or_none is not None:
                at = pos[old_ids[k]]
                where[at] = bucket_or_none
                bucket_or_none.bits.add(at)
        self._where = where
        self._back = [None] * n

    def unpark(self, acc_id: str) -> None:
        """Let ``acc_id`` be met again at the next ``first``, wherever it was parked
        (what blocked it changed)."""
        pos = self._pos.get(acc_id, -1)
        if pos >= 0:
            bucket = self._where[pos]
            if bucket is not None:
                bucket.bits.add(pos)

    def first(self, below: float, now: float,
              blocked_until: Callable[[str], float | None] | None) -> str | None:
        """The first id in ``(load, id)`` order with load < ``below`` that is not
        blocked at ``now``, or None (``last_load``: its load).

        ``blocked_until(id)`` is None for an id that can be taken, else a time
        before which it surely stays blocked (e.g. its inactive window's end,
        T1). Blocked ids are parked until then instead of being met again at
        every pick; an earlier ``now`` than the last call unparks everything.
        ``blocked_until=None``: nothing but the load blocks an id.
        """
        pos = self.first_at(below, now, blocked_until)
        return None if pos < 0 else self._ids[pos]

    def first_at(self, below: float, now: float,
                 blocked_until: Callable[[str], float | None] | None) -> int:
        """``first``, as the id's position (-1: none): positions are in id order,
        so a caller that numbers ids alike compares them without the strings."""
        if now < self._now:
            self._unpark_all()
        self._now = now
        ids, where = self._ids, self._where
        for bucket in self._buckets:
            load = bucket.load
            if load >= below:
                return -1
            bits = bucket.bits
            parked = bucket.parked
            while parked and parked[0][0] <= now:
                pos = heappop(parked)[1]
                if where[pos] is bucket:
                    bits.add(pos)
            while True:
                pos = bits.low
                if pos < 0:
                    break  # every id of this load is parked
                if blocked_until is None:
                    self.last_load = load
                    return pos
                until = blocked_until(ids[pos])
                if until is None:
                    self.last_load = load
                    return pos
                bits.discard(pos)
                if parked is None:
                    parked = bucket.parked = []
                heappush(parked, (until, pos))
        return -1

    def _unpark_all(self) -> None:
        where = self._where
        for bucket in self._buckets:
            parked = bucket.parked
            if parked:
                bits = bucket.bits
                for _until, pos in parked:
                    if where[pos] is bucket:
                        bits.add(pos)
            bucket.parked = None


class Fenwick:
    """Prefix sums of non-negative integers over positions ``0..n-1`` (S).

    ``add``, ``prefix`` and ``search`` are O(log n). Integers keep every sum exact, so a
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

    def prefix(self, end: int) -> int:
        """The sum of the values at positions ``0..end-1`` (``0 <= end <= n``)."""
        tree = self._tree
        total = 0
        i = end
        while i > 0:
            total += tree[i]
            i &= i - 1
        return total

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


#: ``ExpiringIndex``: the width of a renewal slot, in seconds
SLOT_S = 3_600
#: a renewal instant this late (or not finite) is filed in the last slot
_FAR_AT = 1e15
_FAR_SLOT = int(_FAR_AT) // SLOT_S


def renewal_slot(at: float) -> int:
    """The slot of renewal instant ``at``: ``slot * SLOT_S <= at`` exactly
    (``math.floor`` is exact, the rest is integer arithmetic)."""
    if at < _FAR_AT:  # False for nan as for inf: both go far
        return floor(at) // SLOT_S
    return _FAR_SLOT


class _Filed:
    """One account of an ``ExpiringIndex``: its unreserved fast time, class,
    renewal instant and the start of its slot (as filed)."""

    __slots__ = ("at", "cls", "start", "u")

    def __init__(self, u: int, cls: int, at: float, start: float) -> None:
        self.u = u
        self.cls = cls
        self.at = at
        self.start = start


class _Class:
    """The accounts of one class of an ``ExpiringIndex``: the starts of its
    non-empty slots, ascending, and each slot's accounts (``id -> _Filed``), in
    the same order."""

    __slots__ = ("cap", "cells", "cls", "starts")

    def __init__(self, cls: int) -> None:
        self.cls = cls
        self.cap = float(1 << cls)  # every u of the class is below it
        self.starts: list[float] = []
        self.cells: list[dict[str, _Filed]] = []


class ExpiringIndex:
    """Accounts for ``expiring_first`` (S): the highest unreserved fast time per
    second to renewal, ties to the lowest id, without scoring every account.

    The score ``u / max(renew - now, 1)`` moves with time, so no order by score
    lasts. Accounts are grouped instead by the magnitude of their unreserved
    fast time ``u`` (class ``c`` holds ``2**(c-1) <= u < 2**c``), and inside a
    class by the hour their renewal falls in (a *slot*, ``SLOT_S`` seconds from
    the epoch's hours). A class keeps the starts of its non-empty slots in order
    (a plain list) and each slot's accounts in a dict. Every account of a slot
    renews at or after the slot's start, so ``2**c / max(start - now, 1)``
    bounds every score in that slot and in the later ones of the class: a walk
    stops as soon as that bound is below the best score found. The index keeps
    each account's ``u`` and scores it itself, by the formula of
    ``strategies.expiring_first_score``. Only the class changes when ``u``
    moves inside its power of two, so most reservations and completions store
    one number; an account filed or withdrawn costs a few dict operations, and
    a list insertion only when its slot was empty (issue 13: the sorted lists of
    ``(renewal, id)`` this replaces cost a Python-level insertion or removal at
    every change, and a Python-level iterator at every pick). Accounts with no
    renewal instant or no unreserved fast time score 0 and are kept apart, by id.
    """

    __slots__ = ("_apart", "_classes", "_filed", "_order", "_zero")

    def __init__(self) -> None:
        self._filed: dict[str, _Filed] = {}  # id -> its filing (a class above 0)
        self._classes: dict[int, _Class] = {}  # the non-empty classes
        self._order: list[_Class] = []  # the same, highest class first
        self._apart: set[str] = set()  # kept apart: score 0
        self._zero: SortedList[str] = SortedList()  # the same, in id order

    def __len__(self) -> int:
        return len(self._filed) + len(self._zero)

    def set(self, acc_id: str, unreserved: int | None, renew: float | None) -> None:
        """File ``acc_id`` by its unreserved fast time and renewal instant, or
        remove it (``unreserved is None``)."""
        filed = self._filed.get(acc_id)
        if unreserved is not None and unreserved > 0 and renew is not None:
            cls = unreserved.bit_length()
            if filed is not None:
                if filed.cls == cls and filed.at == renew:
                    filed.u = unreserved  # the same class and slot: nothing moves
                    return
                self._unfile(acc_id, filed)
            elif acc_id in self._apart:
                self._apart.discard(acc_id)
                self._zero.remove(acc_id)
            self._file(acc_id, _Filed(unreserved, cls, renew,
                                      float(renewal_slot(renew) * SLOT_S)))
            return
        if filed is not None:
            self._unfile(acc_id, filed)
        if unreserved is None:
            if acc_id in self._apart:
                self._apart.discard(acc_id)
                self._zero.remove(acc_id)
        elif acc_id not in self._apart:
            self._apart.add(acc_id)
            self._zero.add(acc_id)

    def _file(self, acc_id: str, filed: _Filed) -> None:
        self._filed[acc_id] = filed
        group = self._classes.get(filed.cls)
        if group is None:
            group = self._classes[filed.cls] = _Class(filed.cls)
            self._order.append(group)
            self._order.sort(key=_class_number, reverse=True)
        starts = group.starts
        i = bisect_left(starts, filed.start)
        if i < len(starts) and starts[i] == filed.start:
            group.cells[i][acc_id] = filed
        else:
            starts.insert(i, filed.start)
            group.cells.insert(i, {acc_id: filed})

    def _unfile(self, acc_id: str, filed: _Filed) -> None:
        del self._filed[acc_id]
        group = self._classes[filed.cls]
        i = bisect_left(group.starts, filed.start)
        cell = group.cells[i]
        del cell[acc_id]
        if cell:
            return
        del group.starts[i], group.cells[i]
        if not group.starts:
            del self._classes[filed.cls]
            self._order.remove(group)

    def best(self, now: float) -> str | None:
        """The id with the highest ``u / max(renew - now, 1)`` at ``now``, ties to
        the lowest id (``strategies.expiring_first_score``, as
        ``pick_expiring_first`` scans it); the lowest id of the accounts kept
        apart (score 0) when no account scores above 0; None when empty."""
        best_id: str | None = None
        best = -1.0
        for group in self._order:
            cap = group.cap
            if cap < best:
                break  # left >= 1 s: no score in this class or a lower one reaches best
            starts, cells = group.starts, group.cells
            for i in range(len(starts)):
                left = starts[i] - now
                if left < 1.0:
                    left = 1.0
                if cap / left < best:
                    break  # this bound only falls along the class's later slots
                for acc_id, filed in cells[i].items():
                    left = filed.at - now
                    if left < 1.0:
                        left = 1.0
                    s = filed.u / left
                    if s > best or (s == best and best_id is not None and acc_id < best_id):
                        best, best_id = s, acc_id
        if best_id is None and self._zero:
            return self._zero[0]
        return best_id


def _class_number(group: _Class) -> int:
    return group.cls
