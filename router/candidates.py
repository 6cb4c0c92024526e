"""Candidate sets: which accounts are fast- and relax-eligible, kept ordered.

Two implementations answer the same questions:

* ``IndexedCandidates`` keeps each eligible set ordered for the strategy and
  updates one account in O(log n) after every change, so no pick scans the
  pool: ``LoadBuckets`` for least_loaded (and expiring_first's relax path),
  ``Fenwick`` trees over the *available* accounts for weighted, p2c and
  round_robin (in id order: round_robin's next available id after the last
  pick is a prefix count and a search) and fill_first (in the accounts file's
  order: the first available one is the first in the tree), an ``ExpiringIndex``
  for expiring_first's fast path. Inactive windows (T1) are followed by a
  clock of window transitions, so "available now" is known without a scan.
  Daily caps (H2) and gaps (H3) are followed the same way: an account they
  block is parked until the next 00:00 UTC or the end of its gap (only time
  lifts them), never met again at every pick.
  Explanations (X1) come from counts and per-account rules kept up to date
  once the first explanation is asked for.
* ``ScanCandidates`` recomputes everything by a linear scan: the deliberately
  naive reference the tests and benchmarks compare against.

Both call the same predicates (``router.rules``) and pick functions
(``router.strategies``); a property test checks that they never disagree.
"""

from __future__ import annotations

import heapq
import json
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Literal, Protocol

from router.accounts import Account, InactiveWindow
from router.buckets import ExpiringIndex, Fenwick, LoadBuckets
from router.decision import Rejections
from router.rules import (
    Reason,
    availability_reason,
    eligible_paths,
    fast_reason,
    is_available,
    pacing_reason,
    relax_reason,
    unavailable_until,
)
from router.strategies import (
    Strategy,
    StrategyState,
    fill_first_key,
    less_loaded,
    pick,
    two_distinct,
    weight_units,
    weighted_target,
)

Path = Literal["fast", "relax"]
PATHS: tuple[Path, Path] = ("fast", "relax")
_DAY = 86_400.0


class Candidates(Protocol):
    """What the engine needs to know about eligibility and to pick an account."""

    def update(self, acc: Account, backups_active: bool) -> None:
        """Re-file ``acc`` after its load, reservation or fast time changed."""

    def touch(self, acc: Account, backups_active: bool) -> None:
        """Re-file ``acc`` after any change, its inactive window (T1) and pacing
        (H2/H3) included (e.g. a store's mirror re-read the account)."""

    def eligible_count(self, path: Path) -> int: ...

    def pick(self, path: Path, now: float, state: StrategyState) -> Account | None: ...

    def explain(self, path: Path, now: float,
                chosen: str | None) -> tuple[str, dict[str, str]]: ...

    def summary(self, path: Path, now: float) -> str: ...

    def pacing_counts(self, path: Path, now: float) -> tuple[int, int]: ...


def _summary(path: Path, n: int, eligible: int, counts: Iterable[tuple[Reason, int]]) -> str:
    """X1's summary line: "k/n path-eligible: counts by reason" (reasons in the
    order their first account comes in id order)."""
    parts = ", ".join(f"{c} {r.label} ({r.rule})" for r, c in counts)
    head = f"{eligible}/{n} {path}-eligible"
    return f"{head}: {parts}" if parts else head


def next_window_change(window_start: int, window_end: int, inside: bool, now: float) -> float:
    """T1: the first instant after ``now`` at which ``contains`` changes, exact:
    ``now % 86400`` is exact for floats, and so are midnight plus whole seconds."""
    s = now % _DAY
    midnight = now - s
    b = window_end if inside else window_start
    return midnight + b if b > s else midnight + _DAY + b


class _AvailableTree:
    """The available eligible accounts of one path, as positions (id order;
    fill_first: the accounts file's order): a count tree (p2c's uniform draws,
    round_robin's ranks, fill_first's first) and a weight-unit tree (weighted)."""

    __slots__ = ("counts", "weights")

    def __init__(self, n: int, weighted: bool) -> None:
        self.counts = Fenwick([0] * n)
        self.weights = Fenwick([0] * n) if weighted else None

    def rebuild(self, units: list[int]) -> None:
        """Every position's weight units (-1: not available), in position order."""
        self.counts = Fenwick([1 if u >= 0 else 0 for u in units])
        if self.weights is not None:
            self.weights = Fenwick([max(u, 0) for u in units])


_CHUNK = 64  # ids per piece of the kept ``rejections`` map (X1)


class _Explainer:
    """X1 kept up to date: per path, each account's first excluding rule
    (eligibility, then T1, room, H2 and H3, as ``availability_reason``), the
    ``rejections`` map kept in id order in pieces of ``_CHUNK`` ids (a change of
    membership rebuilds one piece, not the map), how many accounts each rule
    excludes (H2/H3 counts of the saturation tail), and the counts by
    eligibility reason with the lowest id holding each reason (the summary's order)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.chunk_of: dict[str, int] = {}
        self.reason: dict[Path, dict[str, Reason | None]] = {p: {} for p in PATHS}
        self.rule: dict[Path, dict[str, str | None]] = {p: {} for p in PATHS}
        self.tally: dict[Path, Counter[str]] = {p: Counter() for p in PATHS}
        self.holders: dict[Path, dict[Reason, set[str]]] = {p: {} for p in PATHS}
        self.heads: dict[Path, dict[Reason, list[str]]] = {p: {} for p in PATHS}
        self.rejected: dict[Path, dict[str, str] | None] = {p: None for p in PATHS}
        #: accounts that joined ``rejected`` since it was last put in id order
        self.joined: dict[Path, dict[str, str]] = {p: {} for p in PATHS}
        #: some left it since (a map with holes is copied entry by entry: rebuilt)
        self.thinned: dict[Path, bool] = {p: False for p in PATHS}
        #: each piece's JSON text (``json.dumps`` without the braces; None: not encoded)
        self.texts: dict[Path, list[str | None]] = {p: [] for p in PATHS}

    def build(self, accounts: dict[str, Account], backups_active: bool,
              in_window: set[str], pace: Callable[[Account], Reason | None]) -> None:
        self.ids = sorted(accounts)
        self.chunk_of = {i: k // _CHUNK for k, i in enumerate(self.ids)}
        n_chunks = -(-len(self.ids) // _CHUNK)
        for p in PATHS:
            self.reason[p], self.rule[p], self.tally[p] = {}, {}, Counter()
            self.holders[p], self.heads[p] = {}, {}
            self.rejected[p] = None
            self.joined[p] = {}
            self.texts[p] = [None] * n_chunks
        for acc_id in self.ids:
            acc = accounts[acc_id]
            self.update(acc, backups_active, acc_id in in_window, pace(acc))

    def update(self, acc: Account, backups_active: bool, in_window: bool,
               paced: Reason | None) -> None:
        """Re-file ``acc``; ``paced``: the H2/H3 reason that keeps it off now, if any."""
        acc_id = acc.id
        full = acc.in_flight >= acc.max_in_flight
        for p in PATHS:
            r = fast_reason(acc, backups_active) if p == "fast" else relax_reason(
                acc, backups_active)
            reasons = self.reason[p]
            old = reasons.get(acc_id)
            if old != r or acc_id not in reasons:
                reasons[acc_id] = r
                holders = self.holders[p]
                if old is not None:
                    holders[old].discard(acc_id)
                if r is not None:
                    members = holders.get(r)
                    if members is None:
                        members = holders[r] = set()
                        self.heads[p][r] = []
                    members.add(acc_id)
                    heap = self.heads[p][r]
                    heapq.heappush(heap, acc_id)
                    if len(heap) > 2 * len(members) + 32:
                        heap[:] = sorted(members)
            rule = (r.rule if r is not None else "T1" if in_window else "R1" if full
                    else paced.rule if paced is not None else None)
            rules = self.rule[p]
            old_rule = rules.get(acc_id, None)
            if old_rule != rule or acc_id not in rules:
                rules[acc_id] = rule
                tally = self.tally[p]
                if old_rule is not None:
                    tally[old_rule] -= 1
                if rule is not None:
                    tally[rule] += 1
                self.texts[p][self.chunk_of[acc_id]] = None
                rejected = self.rejected[p]
                if rejected is not None:
                    joined = self.joined[p]
                    if old_rule is None:
                        if rule is not None:  # joins: merged in id order when next asked
                            joined[acc_id] = rule
                    elif acc_id in joined:
                        if rule is None:
                            del joined[acc_id]
                        else:
                            joined[acc_id] = rule
                    elif rule is None:
                        del rejected[acc_id]  # leaves: the others keep their order
                        self.thinned[p] = True
                    else:
                        rejected[acc_id] = rule  # same place in id order

    def counts(self, p: Path) -> list[tuple[Reason, int]]:
        out: list[tuple[str, Reason, int]] = []
        for r, members in self.holders[p].items():
            if not members:
                continue
            heap = self.heads[p][r]
            while heap[0] not in members:
                heapq.heappop(heap)
            out.append((heap[0], r, len(members)))
        out.sort(key=lambda t: t[0])
        return [(r, c) for _head, r, c in out]

    def summary(self, p: Path) -> str:
        counts = self.counts(p)
        n = len(self.ids)
        return _summary(p, n, n - sum(c for _r, c in counts), counts)

    def rejections(self, p: Path, chosen: str | None) -> Rejections:
        """The map for every account but ``chosen`` (a copy of the kept map: O(n)
        at C speed), with its JSON text assembled from the pieces' texts (only
        the pieces that changed are encoded again)."""
        rules = self.rule[p]
        rejected = self.rejected[p]
        if rejected is None:
            rejected = self.rejected[p] = {i: r for i, r in rules.items() if r is not None}
            self.joined[p] = {}
        elif self.joined[p] or self.thinned[p]:
            rejected = self.rejected[p] = _merge(rejected, self.joined[p])
            self.joined[p] = {}
        self.thinned[p] = False
        out = Rejections()
        out.update(rejected)
        texts, ids = self.texts[p], self.ids
        skip = self.chunk_of.get(chosen, -1) if chosen is not None else -1
        parts: list[str] = []
        for k, text in enumerate(texts):
            if text is None or k == skip:
                piece = {i: r for i in ids[k * _CHUNK:(k + 1) * _CHUNK]
                         if (r := rules[i]) is not None and i != chosen}
                text = json.dumps(piece)[1:-1] if piece else ""
                if k != skip:
                    texts[k] = text
            if text:
                parts.append(text)
        if chosen is not None:
            out.pop(chosen, None)
        out.text = "{" + ", ".join(parts) + "}"
        return out


class _Filed:
    """least_loaded: an account as last filed, its class (1 fast only, 2 relax
    only, 3 both, 0 no path) and its position in the class indexes (id order)."""

    __slots__ = ("acc", "cls", "pos")

    def __init__(self, acc: Account, pos: int) -> None:
        self.acc = acc
        self.cls = 0
        self.pos = pos


class _Seen:
    """Every strategy but least_loaded: an account as last filed, its eligible
    paths (R1, B1, R6, R2, R4) and, for the tree strategies, its weight units in
    each path's tree (-1: not available there) and its tree position (valid
    when the trees are not stale; fill_first's trees are in the accounts file's
    order, the others' in id order). One lookup per update finds them all
    (issue 13: one dict per field cost a lookup, and at 100k accounts a cache
    miss, each)."""

    __slots__ = ("acc", "fast_ok", "fast_units", "pos", "relax_ok", "relax_units")

    def __init__(self, acc: Account) -> None:
        self.acc = acc
        self.fast_ok = False
        self.relax_ok = False
        self.fast_units = -1
        self.relax_units = -1
        self.pos = -1


class IndexedCandidates:
    """Eligible sets kept ordered for the strategy, updated incrementally.

    ``ids``: every account id the pool will hold (positions of the weighted and
    p2c trees); an id that arrives later rebuilds the trees at the next pick.
    """

    def __init__(self, strategy: Strategy, ids: Iterable[str] = ()) -> None:
        self.strategy = strategy
        self._least_loaded = strategy is Strategy.LEAST_LOADED
        self._tree = strategy in (Strategy.WEIGHTED, Strategy.P2C, Strategy.ROUND_ROBIN,
                                  Strategy.FILL_FIRST)
        self._expiring = strategy is Strategy.EXPIRING_FIRST
        # least_loaded: each eligible account filed once, by which paths it may
        # take (1 fast only, 2 relax only, 3 both), so that a reservation or a
        # completion moves it in one index, not two; a pick merges two of them
        known = sorted(set(ids))  # id order: the positions of every LoadBuckets and tree
        # (a tuple indexed by class: no hash; index 0, no path, holds nothing)
        self._by_class: tuple[LoadBuckets, ...] = (
            LoadBuckets(), LoadBuckets(known), LoadBuckets(known), LoadBuckets(known))
        # id -> its account, class and position (one lookup per update, issue 13);
        # the three class indexes number the ids alike (``_renumber``)
        self._filed: dict[str, _Filed] = {}
        self._at: list[Account | None] = [None] * len(known)  # position -> account filed
        # the two classes that may take each path (fast: both, fast only; relax:
        # both, relax only), read by a comparison of the path, not a dict
        self._fast_classes = (self._by_class[3], self._by_class[1])
        self._relax_classes = (self._by_class[3], self._by_class[2])
        self._relax_b = LoadBuckets(known)  # expiring_first's relax path
        self._accounts: dict[str, Account] = {}
        self._backups_active = False
        # positions: of the least_loaded indexes (id order, ``_renumber``) or of the
        # trees (``_rebuild_trees``: id order, fill_first's file order); a strategy
        # uses one of the two
        self._ids: list[str] = known
        self._pos: dict[str, int] = {i: k for k, i in enumerate(known)}
        # the tree strategies (weighted, p2c, round_robin, fill_first): the trees
        # are built at the first pick, from the accounts seen
        self._stale = True
        weighted = self._weighted = strategy is Strategy.WEIGHTED
        self._trees: dict[Path, _AvailableTree] = {
            p: _AvailableTree(len(self._ids), weighted) for p in PATHS}
        self._expiring_fast = ExpiringIndex()
        self._seen: dict[str, _Seen] = {}  # all but least_loaded
        self._by_pos: list[_Seen] = []  # the tree strategies: tree position -> account
        self._n_fast = self._n_relax = 0
        # T1: which windowed accounts are inside their window, as of _win_now
        self._windowed: dict[str, Account] = {}
        # T1/H2/H3 as each account was last filed (window, cap, gap): a change is noticed
        self._shapes: dict[str, tuple[InactiveWindow | None, int | None, float]] = {}
        self._in_window: set[str] = set()
        self._win_heap: list[tuple[float, str]] = []  # (next change, id), one per account
        self._win_now = float("-inf")
        self._explainer: _Explainer | None = None
        # X1: when each paced account's H2/H3 reason may next change (explainer only)
        self._ex_heap: list[tuple[float, str]] = []
        self._ex_next: dict[str, float] = {}
        # H2/H3: paced accounts, and (blocked until, id) for the strategies that
        # file only available accounts (weighted, p2c, expiring_first)
        self._paced: dict[str, Account] = {}
        self._pace_heap: list[tuple[float, str]] = []
        self._clock = float("-inf")  # the latest ``now`` a pick or explanation saw
        accounts = self._accounts

        def blocked_until(acc_id: str) -> float | None:  # LoadBuckets' question, at the clock
            return unavailable_until(accounts[acc_id], self._clock)

        self._blocked_until = blocked_until

    # ---------------------------------------------------------------- updates
    def update(self, acc: Account, backups_active: bool) -> None:
        """Re-file ``acc`` after any change to its state (O(log n))."""
        acc_id = acc.id
        self._backups_active = backups_active
        if self._least_loaded:
            filed = self._filed.get(acc_id)
            if filed is None or filed.acc is not acc:
                filed = self._file(acc, filed)
            fast_ok, relax_ok = eligible_paths(acc, backups_active)
            cls = fast_ok + 2 * relax_ok
            old = filed.cls
            if cls != old:
                if old:
                    self._by_class[old].remove_at(filed.pos)
                filed.cls = cls
            if cls:
                self._by_class[cls].set_at(filed.pos, acc.load)
        else:
            seen = self._seen.get(acc_id)
            if seen is None or seen.acc is not acc:
                if seen is None:
                    seen = self._seen[acc_id] = _Seen(acc)
                else:
                    if seen.acc.order != acc.order:
                        self._stale = True  # fill_first's tree positions follow the order
                    seen.acc = acc
                self._accounts[acc_id] = acc
                self._first_sight(acc)
            fast_ok, relax_ok = eligible_paths(acc, backups_active)
            if fast_ok != seen.fast_ok or relax_ok != seen.relax_ok:
                # the eligible counts (parked accounts are eligible all the same)
                self._n_fast += fast_ok - seen.fast_ok
                self._n_relax += relax_ok - seen.relax_ok
                seen.fast_ok, seen.relax_ok = fast_ok, relax_ok
            room = acc.in_flight < acc.max_in_flight and acc_id not in self._in_window
            if room and acc_id in self._paced:
                until = acc.paced_until()
                if until is not None and until > self._clock:  # H2/H3: parked till then
                    room = False
                    heapq.heappush(self._pace_heap, (until, acc_id))
            if self._tree:  # weight units (weighted), or 0: counted only
                units = (weight_units(acc) if self._weighted else 0) if room else -1
                fast_units = units if fast_ok else -1
                if fast_units != seen.fast_units:
                    self._set_available(self._trees["fast"], seen.pos, seen.fast_units,
                                        fast_units)
                    seen.fast_units = fast_units
                relax_units = units if relax_ok else -1
                if relax_units != seen.relax_units:
                    self._set_available(self._trees["relax"], seen.pos, seen.relax_units,
                                        relax_units)
                    seen.relax_units = relax_units
            else:
                self._expiring_fast.set(acc_id, acc.fast_ms - acc.reserved_ms
                                        if fast_ok and room else None, acc.next_renewal_at)
                self._relax_b.set(acc_id, acc.load if relax_ok else None)
        if self._explainer is not None:
            self._explainer.update(acc, backups_active, acc_id in self._in_window,
                                   self._repace(acc) if acc_id in self._paced else None)

    def touch(self, acc: Account, backups_active: bool) -> None:
        """``update`` after any change: a window (T1) or pacing (H2/H3) set, changed
        or removed on an account already filed is taken into account too, and
        what was parked by the old one is let go."""
        acc_id = acc.id
        if self._accounts.get(acc_id) is acc and self._register(acc):
            for buckets in (*self._by_class[1:], self._relax_b):
                buckets.unpark(acc_id)
        self.update(acc, backups_active)

    def _file(self, acc: Account, filed: _Filed | None) -> _Filed:
        """least_loaded: ``acc`` seen for the first time (or a new object for its id)."""
        acc_id = acc.id
        if filed is None:
            pos = self._pos.get(acc_id, -1)
            if pos < 0:
                pos = self._renumber(acc_id)
            filed = self._filed[acc_id] = _Filed(acc, pos)
        else:
            filed.acc = acc
        self._at[filed.pos] = acc
        self._accounts[acc_id] = acc
        self._first_sight(acc)
        return filed

    def _renumber(self, acc_id: str) -> int:
        """A new id for the least_loaded indexes: every position renumbered alike
        (O(n), once per id not given at construction); ``acc_id``'s position."""
        known = self._ids = sorted([*self._ids, acc_id])
        pos = self._pos = {i: k for k, i in enumerate(known)}
        for buckets in self._by_class[1:]:
            buckets.renumber(known)
        at: list[Account | None] = [None] * len(known)
        for filed in self._filed.values():
            filed.pos = pos[filed.acc.id]
            at[filed.pos] = filed.acc
        self._at = at
        return pos[acc_id]

    def _first_sight(self, acc: Account) -> None:
        if acc.id not in self._pos:
            self._stale = True
        self._register(acc)
        if self._explainer is not None:
            self._explainer = None  # a new account: rebuilt on the next explanation

    def _register(self, acc: Account) -> bool:
        """File ``acc`` among the windowed (T1) and paced (H2/H3) accounts, or take
        it out of them, as its fields say now; True when its window, cap or gap
        differ from those it was last filed with (or it is new)."""
        acc_id, w = acc.id, acc.inactive_window
        shape = (w, acc.max_jobs_per_day, acc.min_gap_s)
        old = self._shapes.get(acc_id)
        self._shapes[acc_id] = shape
        if w is not None and w.start_s != w.end_s:
            if old is None or old[0] != w:  # new, or its window changed
                heapq.heappush(self._win_heap, (float("-inf"), acc_id))  # placed at the next pick
            self._windowed[acc_id] = acc
        elif acc_id in self._windowed:  # its window was removed: stale heap entries skip it
            del self._windowed[acc_id]
            self._in_window.discard(acc_id)
        if acc.paced:
            self._paced[acc_id] = acc
        else:
            self._paced.pop(acc_id, None)
        return old != shape

    def _set_available(self, tree: _AvailableTree, pos: int, old: int, units: int) -> None:
        """The tree strategies: the account at tree position ``pos`` goes from
        ``old`` weight units in ``tree`` to ``units`` (-1: not available there)."""
        if self._stale:
            return  # the trees are rebuilt before the next pick
        if old < 0:
            tree.counts.add(pos, 1)
        elif units < 0:
            tree.counts.add(pos, -1)
        if tree.weights is not None:
            tree.weights.add(pos, max(units, 0) - max(old, 0))

    def _advance_windows(self, now: float) -> None:
        """T1: bring every windowed account's in-window flag to ``now`` and re-file
        the accounts whose flag changed (each has one pending change instant)."""
        heap = self._win_heap
        if now < self._win_now:  # time went back: re-place every windowed account
            heap[:] = [(float("-inf"), i) for i in sorted(self._windowed)]
        self._win_now = now
        changed: list[Account] = []
        while heap and heap[0][0] <= now:
            acc_id = heap[0][1]
            acc_or_none = self._windowed.get(acc_id)
            w = None if acc_or_none is None else acc_or_none.inactive_window
            if acc_or_none is None or w is None:
                heapq.heappop(heap)  # no longer windowed (its window was removed)
                continue
            acc = acc_or_none
            inside = w.contains(now)
            heapq.heapreplace(heap, (next_window_change(w.start_s, w.end_s, inside, now),
                                     acc_id))
            if inside != (acc_id in self._in_window):
                if inside:
                    self._in_window.add(acc_id)
                else:
                    self._in_window.discard(acc_id)
                changed.append(acc)
        for acc in changed:
            self.update(acc, self._backups_active)

    def _advance_pacing(self, now: float) -> None:
        """H2/H3: re-file the accounts whose cap or gap ended at or before ``now``
        (stale entries re-file an account harmlessly)."""
        heap = self._pace_heap
        due: list[Account] = []
        while heap and heap[0][0] <= now:
            acc = self._paced.get(heapq.heappop(heap)[1])
            if acc is not None:  # else: no longer paced
                due.append(acc)
        for acc in due:
            self.update(acc, self._backups_active)

    def _tick(self, now: float) -> None:
        """Bring the time-driven state (T1 windows, H2/H3 pacing) to ``now``."""
        if self._win_heap and (self._win_heap[0][0] <= now or now < self._win_now):
            self._advance_windows(now)
        if now < self._clock and self._paced:  # time went back: re-file the paced
            self._clock = now
            self._pace_heap.clear()
            for acc in self._paced.values():
                self.update(acc, self._backups_active)
        self._clock = now
        if self._pace_heap and self._pace_heap[0][0] <= now:
            self._advance_pacing(now)

    def _rebuild_trees(self) -> None:
        """The trees' positions: id order, or (file order, id) for fill_first."""
        if self.strategy is Strategy.FILL_FIRST:
            accounts = self._accounts
            self._ids = sorted(accounts, key=lambda i: fill_first_key(accounts[i]))
        else:
            self._ids = sorted(self._accounts)
        self._pos = {i: k for k, i in enumerate(self._ids)}
        by_pos = self._by_pos = [self._seen[i] for i in self._ids]
        for k, seen in enumerate(by_pos):
            seen.pos = k
        self._trees["fast"].rebuild([seen.fast_units for seen in by_pos])
        self._trees["relax"].rebuild([seen.relax_units for seen in by_pos])
        self._stale = False

    # ------------------------------------------------------------------ reads
    def eligible_count(self, path: Path) -> int:
        if self._least_loaded:
            both, alone = self._fast_classes if path == "fast" else self._relax_classes
            return len(both) + len(alone)
        # the others file no account that H2/H3 keep off (weighted, p2c and
        # expiring_first: only available ones): counted apart
        return self._n_fast if path == "fast" else self._n_relax

    def pick(self, path: Path, now: float, state: StrategyState) -> Account | None:
        if self._win_heap or self._paced:
            self._tick(now)
        else:
            self._clock = now  # nothing driven by time (T1, H2, H3) to bring up to date
        if self._least_loaded:
            # load >= 1: that account and every later one is full; the first
            # in (load, id) order of the two classes that may take ``path``.
            # With no inactive window (T1) and no pacing (H2/H3) in the pool,
            # a load below 1 (room) is all ``is_available`` asks.
            both, alone = self._fast_classes if path == "fast" else self._relax_classes
            # The classes number the ids alike, in id order: positions compare as
            # the ids do, and name the account without a lookup by id.
            blocked = self._blocked_until if self._windowed or self._paced else None
            pos = both.first_at(1.0, now, blocked)
            other = alone.first_at(1.0, now, blocked) if alone else -1
            if other >= 0:
                if pos < 0:
                    pos = other
                else:  # (load, id) order, compared field by field (no tuples built)
                    mine, theirs = alone.last_load, both.last_load
                    if mine < theirs or (mine == theirs and other < pos):
                        pos = other
            return None if pos < 0 else self._at[pos]
        if self._expiring and path == "relax":
            acc_id = self._relax_b.first(1.0, now, self._blocked_until)
            return None if acc_id is None else self._accounts[acc_id]
        strategy = self.strategy
        if self._expiring:  # S expiring_first's fast path
            acc_id = self._expiring_fast.best(now)
            return None if acc_id is None else self._accounts[acc_id]
        if self._stale:
            self._rebuild_trees()
        tree = self._trees[path]
        n = tree.counts.total
        if n == 0:
            return None
        by_pos = self._by_pos  # the account at a position, without a lookup by id
        if strategy is Strategy.FILL_FIRST:  # S fill_first: the first available one
            return by_pos[tree.counts.search(0)].acc
        if strategy is Strategy.ROUND_ROBIN:  # S round_robin, as strategies.pick_round_robin
            # the first available account whose id follows the last pick, wrapping:
            # the one ranked after every available id up to the last pick's
            rank = 0
            last = state.last_id
            if last is not None:
                rank = tree.counts.prefix(bisect_right(self._ids, last))
                if rank >= n:
                    rank = 0
            return by_pos[tree.counts.search(rank)].acc
        if strategy is Strategy.WEIGHTED:  # S weighted, as strategies.pick_weighted
            weights = tree.weights
            assert weights is not None
            if weights.total <= 0:
                return by_pos[tree.counts.search(state.rng.randrange(n))].acc
            return by_pos[weights.search(weighted_target(state, weights.total))].acc
        # S p2c, as strategies.pick_p2c
        if n == 1:
            return by_pos[tree.counts.search(0)].acc
        i, j = two_distinct(state, n)
        a = by_pos[tree.counts.search(i)].acc
        b = by_pos[tree.counts.search(j)].acc
        return less_loaded(a, b)

    # ----------------------------------------------------------- explanations
    def _repace(self, acc: Account) -> Reason | None:
        """H2/H3 for the explainer after a change to ``acc``: the clock may be
        older than the change (an update knows no time), so the account is
        queued to be asked again at the next explanation's time; until then, its
        reason as of the clock."""
        clock, acc_id = self._clock, acc.id
        if self._ex_next.get(acc_id) != float("-inf"):
            self._ex_next[acc_id] = float("-inf")
            heapq.heappush(self._ex_heap, (float("-inf"), acc_id))
        return None if clock == float("-inf") else pacing_reason(acc, clock)

    def _pace(self, acc: Account) -> Reason | None:
        """H2/H3 for the explainer at the clock (the explanation's time); the next
        instant at which time alone may change it is queued (asked again then)."""
        clock, acc_id = self._clock, acc.id
        nxt = clock if clock == float("-inf") else _pace_change(acc, clock)
        if nxt is not None and self._ex_next.get(acc_id) != nxt:
            self._ex_next[acc_id] = nxt
            heapq.heappush(self._ex_heap, (nxt, acc_id))
        return None if clock == float("-inf") else pacing_reason(acc, clock)

    def _explaining(self, now: float) -> _Explainer:
        self._tick(now)
        ex = self._explainer
        if ex is None:
            ex = self._explainer = _Explainer()
            self._ex_heap.clear()
            self._ex_next.clear()
            paced = self._paced

            def pace(acc: Account) -> Reason | None:
                return self._pace(acc) if acc.id in paced else None

            ex.build(self._accounts, self._backups_active, self._in_window, pace)
        heap, pending = self._ex_heap, self._ex_next
        while heap and heap[0][0] <= now:  # H2/H3 lifted by time: re-filed now
            at, acc_id = heapq.heappop(heap)
            if pending.get(acc_id) != at:
                continue  # superseded by a later re-filing
            del pending[acc_id]
            acc = self._accounts[acc_id]
            ex.update(acc, self._backups_active, acc_id in self._in_window, self._pace(acc))
        return ex

    def explain(self, path: Path, now: float,
                chosen: str | None) -> tuple[str, dict[str, str]]:
        """X1: the summary line and, for every account but ``chosen``, the first
        rule that excluded it; from state kept up to date, not a scan (the map
        is assembled from pieces kept in id order: O(n) at C speed)."""
        ex = self._explaining(now)
        return ex.summary(path), ex.rejections(path, chosen)

    def summary(self, path: Path, now: float) -> str:
        """X1's summary line alone, from counts kept up to date."""
        return self._explaining(now).summary(path)

    def pacing_counts(self, path: Path, now: float) -> tuple[int, int]:
        """X1: how many ``path``-eligible accounts, in no window and with room,
        the daily cap (H2) and the gap (H3) keep off at ``now`` (counts kept up
        to date)."""
        tally = self._explaining(now).tally[path]
        return tally["H2"], tally["H3"]


def _merge(ordered: dict[str, str], joined: dict[str, str]) -> dict[str, str]:
    """``ordered`` (in id order) with ``joined`` (ids not in it) put in their
    places: a new map in id order, copied in runs at C speed (X1)."""
    keys, values = list(ordered), list(ordered.values())
    out: dict[str, str] = {}
    prev = 0
    for acc_id in sorted(joined):
        pos = bisect_left(keys, acc_id, prev)
        if pos > prev:
            out.update(zip(keys[prev:pos], values[prev:pos], strict=True))
        out[acc_id] = joined[acc_id]
        prev = pos
    out.update(zip(keys[prev:], values[prev:], strict=True))
    return out


def _pace_change(acc: Account, now: float) -> float | None:
    """The first instant after ``now`` at which time alone may lift ``acc``'s daily
    cap (H2: the next 00:00 UTC of a day whose count reached the cap) or its gap
    (H3: the last routed time plus the gap), or None."""
    out: float | None = None
    cap = acc.max_jobs_per_day
    if cap is not None and acc.jobs_day >= 0 and acc.jobs_today >= cap:
        t = (acc.jobs_day + 1) * _DAY
        if t > now:
            out = t
    last = acc.last_routed_at
    if acc.min_gap_s > 0 and last is not None:
        t = last + acc.min_gap_s
        if t > now and (out is None or t < out):
            out = t
    return out


class ScanCandidates:
    """The naive reference: a linear scan over every account for every pick."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self._accounts: dict[str, Account] = {}
        self._backups_active = False

    def update(self, acc: Account, backups_active: bool) -> None:
        self._accounts[acc.id] = acc
        self._backups_active = backups_active

    def touch(self, acc: Account, backups_active: bool) -> None:
        self.update(acc, backups_active)

    def _eligible(self, path: Path) -> Iterable[Account]:
        check = fast_reason if path == "fast" else relax_reason
        for acc_id in sorted(self._accounts):
            acc = self._accounts[acc_id]
            if check(acc, self._backups_active) is None:
                yield acc

    def eligible_count(self, path: Path) -> int:
        return sum(1 for _ in self._eligible(path))

    def pick(self, path: Path, now: float, state: StrategyState) -> Account | None:
        cands = [a for a in self._eligible(path) if is_available(a, now)]
        return pick(self.strategy, cands, state, now, path == "fast")

    def explain(self, path: Path, now: float,
                chosen: str | None) -> tuple[str, dict[str, str]]:
        """X1 in one pass over the accounts: the summary ("k/n path-eligible:
        counts by reason") and, for every account but ``chosen``, the first rule
        that excluded it (eligibility, then availability)."""
        check = fast_reason if path == "fast" else relax_reason
        backups_active, accounts = self._backups_active, self._accounts
        rejections: dict[str, str] = {}
        counts: Counter[Reason] = Counter()
        eligible = 0
        for acc_id in sorted(accounts):
            acc = accounts[acc_id]
            r = check(acc, backups_active)
            if r is None:
                eligible += 1
                if acc_id != chosen:
                    r = availability_reason(acc, now)
            else:
                counts[r] += 1
            if r is not None and acc_id != chosen:
                rejections[acc_id] = r.rule
        return _summary(path, len(accounts), eligible, counts.items()), rejections

    def summary(self, path: Path, now: float) -> str:
        return self.explain(path, now, None)[0]

    def pacing_counts(self, path: Path, now: float) -> tuple[int, int]:
        """X1: the H2 and H3 exclusions of ``path`` at ``now``, by a scan."""
        rules = list(self.explain(path, now, None)[1].values())
        return rules.count("H2"), rules.count("H3")
