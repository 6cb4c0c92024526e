"""``Reserver``: route on the mirror, reserve in Redis atomically.

Each task is routed on the mirror by ``router.engine.route`` as if the ones
before it in the batch were already reserved (exactly what one process would
decide); then all reservations go to Redis in one pipeline, and each
reservation script (``scripts.RESERVE``) re-checks its account (status, room,
backup dormancy B1 and the inactive window T1 at the moment it runs, for
fast/turbo the setting and unreserved fast time, R1/R2, and for a root task the
account's daily cap H2 and minimum gap H3 on the shared counters, which it
updates in the same step). A task that lost a
race refreshes that account from the script's answer and is routed again in
the next round, at the time of that round (the routing time plus the time
spent since), which is the router trying the next account in its order.

The request body is kept on the reservation, so that a process that adopts
the task after its owner died can route it again (``redis_leases``), and so is
the estimate, for ``reroute`` (H4: the same task id routed again after its
account reported no fast time).

A task routed to the public pool (P1) reserves nothing on an account, but it
takes a lease in the same pipeline (``scripts.HOLD``, under the pseudo-account
``PUBLIC``), so that it too is adopted when its process dies (``redis_leases``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from router.accounts import Mode, seconds_to_ms
from router.decision import Decision
from router.engine import route
from router.errors import InvalidRequest, PoolSaturated
from router.ledger import InFlight, Parent
from router.requests import ParsedRequest, parse_request
from router.stores import scripts
from router.stores.base import PUBLIC
from router.stores.codec import compact_json
from router.stores.redis_keys import Keys, pairs
from router.stores.redis_mirror import Mirror
from router.stores.redis_pipe import ScriptPipe
from router.stores.redis_pool import PoolEvents

#: A task still to reserve: (index in the batch, task id, request, estimate in ms,
#: body as JSON).
Pending = tuple[int, str, ParsedRequest, int | None, str]


@dataclass(slots=True)
class _Batch:
    """One ``submit_many``: a decision per item, and the parent records written."""

    out: list[Decision | None]
    wrote: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Round:
    """What one round sent: (index, task id, decision) per reservation script."""

    sent: list[tuple[int, str, Decision]] = field(default_factory=list)
    later: list[Pending] = field(default_factory=list)  # waits for the next round


class Reserver:
    """``submit_many`` for the Redis store."""

    def __init__(self, client: redis.Redis, keys: Keys, mirror: Mirror, pool: PoolEvents,
                 mine: dict[str, InFlight], public: dict[str, InFlight], *, owner: str,
                 lease_seconds: float, done_ttl: int, explain: bool,
                 clock: Callable[[], float]) -> None:
        self.r = client
        self.keys = keys
        self.mirror = mirror
        self.pool = pool
        self.mine = mine  # tasks this process reserved (shared with the finisher)
        self.public = public  # public-pool tasks this process leased (P1, shared with leases)
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.done_ttl = done_ttl
        self.explain = explain
        self.clock = clock
        self._reserve = client.register_script(scripts.RESERVE)
        self._hold = client.register_script(scripts.HOLD)
        self.lost_races = 0
        self._day_floor = 0.0  # the earliest routing time of the current rounds (H2)

    def submit_many(self, items: list[tuple[str, Any, float | None]],
                    now: float) -> list[Decision]:
        """Route several submits in order and reserve them, one round trip per round.

        A child whose parent is in the same round ends the round: it and the
        tasks after it go in the next one, so a single process decides exactly
        as submits one by one.
        """
        self.mirror.maybe_refresh()
        self.pool.advance(now)
        batch = _Batch([None] * len(items))
        self._rounds(self._parse(items, batch), now, batch)
        rejected = [d.task_id for d in batch.out if d is not None and d.error is not None
                    and d.task_id in batch.wrote]
        if rejected:
            self.r.delete(*[self.keys.parent(t) for t in rejected])
        self.pool.evaluate(now)
        return [d for d in batch.out if d is not None]

    def reroute(self, task_id: str, body: str, estimate_ms: int | None,
                now: float) -> Decision:
        """H4: route ``task_id`` again at ``now`` as a new decision (its earlier
        reservation was released by the fail). When the new decision is an
        error, the task keeps its earlier parent record, as in the ledger (M5)."""
        req = parse_request(json.loads(body))
        if req.is_child and req.origin_task_id:
            self._load_parent(req.origin_task_id)
        old = self.r.get(self.keys.parent(task_id))
        batch = _Batch([None])
        self._rounds([(0, task_id, req, estimate_ms, body)], now, batch, reroute=True)
        d = batch.out[0]
        assert d is not None
        if d.error is not None and old is not None:
            acc_id, _, mode = str(old).partition("|")
            self.mirror.ledger.parents[task_id] = Parent(acc_id == "", acc_id or None,
                                                         Mode(mode))
            if task_id in batch.wrote:
                self.r.set(self.keys.parent(task_id), old, ex=self.done_ttl)
        self.pool.evaluate(now)
        return d

    def _rounds(self, todo: list[Pending], now: float, batch: _Batch, *,
                reroute: bool = False) -> None:
        """Rounds until every task has a decision; lost races route again."""
        c0 = self.clock()
        self._day_floor = now
        for k in range(2 * len(self.mirror.ids) + 4):
            if not todo:
                break
            at = now if k == 0 else now + max(0.0, self.clock() - c0)
            # H2: another process already counts a later UTC day ('clock'): this
            # process's routing time catches up with it (time only moves on, L6)
            at = max(at, self._day_floor)
            todo = self._round(todo, at, batch, c0 + (at - now), reroute)
        for i, task_id, _req, _est, _body in todo:
            batch.out[i] = Decision(task_id, error=PoolSaturated(
                "every choice was taken by another process while reserving (R5); retry "
                "when an account frees", "R5").as_error())

    def _parse(self, items: list[tuple[str, Any, float | None]], batch: _Batch) -> list[Pending]:
        todo: list[Pending] = []
        for i, (task_id, body, est_s) in enumerate(items):
            try:
                req = parse_request(body)
            except InvalidRequest as exc:
                batch.out[i] = Decision(task_id, error=exc.as_error())
                continue
            if req.is_child and req.origin_task_id:
                self._load_parent(req.origin_task_id)
            todo.append((i, task_id, req, None if est_s is None else seconds_to_ms(est_s),
                         compact_json(body)))
        return todo

    def _load_parent(self, origin: str) -> None:
        """A parent routed by another process (M5/R7), into the mirror."""
        ledger = self.mirror.ledger
        if origin in ledger.parents:
            return
        raw = self.r.get(self.keys.parent(origin))
        if raw is None:
            return
        acc_id, _, mode = str(raw).partition("|")
        if acc_id and acc_id not in ledger.accounts:
            return
        ledger.parents[origin] = Parent(acc_id == "", acc_id or None, Mode(mode))

    def _round(self, todo: list[Pending], now: float, batch: _Batch,
               c0: float, reroute: bool) -> list[Pending]:
        """Route and send one round at ``now`` (the clock read ``c0`` at ``now``);
        what is left for the next one, in order."""
        pipe = ScriptPipe(self.r)
        sent = self._send(todo, now, batch, pipe, c0, reroute)
        try:
            results = pipe.execute()
        except BaseException:  # the optimistic reservations may not be in Redis
            for _i, _t, d in sent.sent:
                if d.account_id is not None:
                    self.mirror.forget(d.account_id)
            raise
        answers = [r for r in results if isinstance(r, list)]  # the scripts' answers
        retry = self._settle(todo, sent.sent, answers, batch, now)
        return sorted(retry + sent.later)

    def _send(self, todo: list[Pending], now: float, batch: _Batch,
              pipe: ScriptPipe, c0: float, reroute: bool) -> _Round:
        """Route each task on the mirror and queue its writes on ``pipe``."""
        keys, ledger = self.keys, self.mirror.ledger
        rnd = _Round()
        in_round: set[str] = set()
        for k, (i, task_id, req, est, body) in enumerate(todo):
            if req.is_child and req.origin_task_id in in_round:
                rnd.later = todo[k:]  # keep the order: the rest waits for the next round
                break
            d = route(ledger, req, task_id, now, est, explain=self.explain)
            if d.error is not None:
                batch.out[i] = d
                continue
            assert d.requested_mode is not None and d.effective_mode is not None
            if d.account_id is None:  # P1: remembered as a parent, and leased
                pipe.execute_command("SET", keys.parent(task_id), f"|{d.requested_mode.value}",
                                     "EX", self.done_ttl)  # ``pipe.set(..., ex=)``, less checking
                pipe.run(self._hold, [keys.acc(PUBLIC), keys.leases(PUBLIC),
                                      keys.task(PUBLIC, task_id)],
                         [task_id, d.effective_mode.value,
                          repr(self.clock() + self.lease_seconds), self.owner, repr(now),
                          body, repr(now)])
                ledger.reserve(d, now)
                batch.wrote.add(task_id)
                rnd.sent.append((i, task_id, d))
                continue
            acc_id = d.account_id
            pipe.execute_command("SET", keys.parent(task_id),
                                 f"{acc_id}|{d.requested_mode.value}", "EX", self.done_ttl)
            t = self.clock()
            checked_at = now + max(0.0, t - c0)  # T1 is re-checked when the script runs
            pipe.run(self._reserve, [keys.acc(acc_id), keys.leases(acc_id),
                                     keys.task(acc_id, task_id)],
                     [task_id, d.effective_mode.value, d.reserved_ms,
                      repr(t + self.lease_seconds), self.owner, repr(now),
                      "1" if d.pinned else "0", body, repr(now),
                      repr(checked_at), "" if est is None else str(est),
                      "1" if reroute else "0", str(int(now // 86_400))])
            ledger.reserve(d, now)  # optimistic: the next task sees this one
            batch.wrote.add(task_id)
            in_round.add(task_id)
            rnd.sent.append((i, task_id, d))
        return rnd

    def _settle(self, todo: list[Pending], sent: list[tuple[int, str, Decision]],
                answers: list[Any], batch: _Batch, now: float) -> list[Pending]:
        """Apply the scripts' answers to the mirror; the tasks that lost a race."""
        ledger = self.mirror.ledger
        retry: list[Pending] = []
        touched: set[str] = set()
        by_index = {item[0]: item for item in todo}
        for (i, task_id, d), res in zip(sent, answers, strict=True):
            if d.account_id is None:  # P1: only its lease was taken (never a lost race)
                assert d.effective_mode is not None
                if int(res[0]) == 1:
                    self.public[task_id] = InFlight(task_id, PUBLIC, d.effective_mode, 0, now)
                    batch.out[i] = d
                else:
                    ledger.parents.pop(task_id, None)
                    batch.out[i] = _duplicate(task_id)
                continue
            acc = ledger.accounts[d.account_id or ""]
            touched.add(acc.id)
            task = ledger.tasks.pop(task_id)
            if int(res[0]) == 1:  # the state right after this script
                acc.in_flight, acc.reserved_ms = int(res[1]), int(res[2])
                acc.jobs_day, acc.jobs_today = int(res[3]), int(res[4])  # H2
                acc.last_routed_at = float(res[5]) if res[5] != "" else None  # H3
                self.mine[task_id] = task
                batch.out[i] = d
                self.mirror.wrote(acc.id, int(res[6]))
                continue
            ledger.parents.pop(task_id, None)
            if str(res[1]) == "duplicate":
                acc.in_flight -= 1
                acc.reserved_ms -= d.reserved_ms
                if acc.paced:  # undo the optimistic H2/H3 counts: read them back
                    self.mirror.refresh_account(acc.id)
                else:  # the undo is exact only if no later answer set these fields
                    self.mirror.forget(acc.id)
                batch.out[i] = _duplicate(task_id)
                continue
            self.lost_races += 1
            fresh = pairs(res[2:])
            if str(res[1]) == "clock":
                self._day_floor = max(self._day_floor, int(fresh["jobs_day"]) * 86_400.0)
            self.mirror.write(acc.id, fresh)
            retry.append(by_index[i])
        for acc_id in touched:
            ledger.touch(ledger.accounts[acc_id])
        return retry


def _duplicate(task_id: str) -> Decision:
    """M0: a task id that is already in flight or finished."""
    return Decision(task_id, error=InvalidRequest(
        f"task id {task_id!r} was already submitted", "M0").as_error())
