"""``RedisStore``: account state shared by several proxy processes.

Each process keeps a *mirror*: an ordinary ``router.ledger.Ledger`` filled from
Redis. Routing runs ``router.engine.route`` on the mirror, exactly as in one
process; the mirror may be a few milliseconds stale, so the reservation is one
atomic Lua step (``scripts.RESERVE``) that re-checks the chosen account (status,
room, and for fast/turbo setting and unreserved fast time, R1/R2) and records
it. A lost race refreshes that account in the mirror from the script's answer
and routes again, which is the router trying the next account in its order.

Completions, failures, cancellations, renewals (L4) and user changes (L5) run
the ledger's own code on the freshly read account and write the result with a
compare-and-set on the account's ``lver``; a conflict re-reads and retries, so
a flip (L3) or a renewal happens once however many processes see the moment.
Backup activation (B1) and ``no_active_mj_bot`` are claimed with ``SET NX``.

Reservations are leases: the owning process extends them (``maintain``); any
process releases the expired ones of a dead owner (room and fast time come
back, nothing is charged, L1).

Keys (``P`` is the prefix): ``P:accounts`` (ids in file order), ``P:policy``,
``P:backups_active``, ``P:no_active``, ``P:p:<task>`` (parent record, M5/R7),
``P:rec:<task>`` (the proxy's task record), and per account, all with the hash
tag ``{acc:<id>}``: ``P:{acc:<id>}`` (hash), ``...:leases`` (zset),
``...:t:<task>`` (task hash), ``...:hist`` (period history), ``...:secret``.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import redis

from router.accounts import Account, Mode, PeriodRecord, Setting, Status, seconds_to_ms
from router.decision import Decision, Notification, Outcome, Renewal
from router.engine import route
from router.errors import InputError, InvalidRequest, NotInFlight, UnknownAccount, make_error
from router.ledger import InFlight, Ledger, Parent, Policy
from router.requests import ParsedRequest, parse_request
from router.stores import scripts
from router.stores.codec import (
    account_from_hash,
    account_to_hash,
    apply_hash,
    ledger_fields,
    period_from_json,
    period_to_json,
    policy_from_json,
    policy_to_json,
)

log = logging.getLogger(__name__)

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DAY_S = 86_400


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


def _flatten(fields: dict[str, str]) -> list[str]:
    out: list[str] = []
    for k, v in fields.items():
        out += [k, v]
    return out


class Keys:
    """Key names under one prefix; per-account keys share the ``{acc:<id>}`` tag."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.accounts = f"{prefix}:accounts"
        self.policy = f"{prefix}:policy"
        self.backups = f"{prefix}:backups_active"
        self.no_active = f"{prefix}:no_active"

    def acc(self, acc_id: str) -> str:
        return f"{self.prefix}:{{acc:{acc_id}}}"

    def leases(self, acc_id: str) -> str:
        return f"{self.acc(acc_id)}:leases"

    def task(self, acc_id: str, task_id: str) -> str:
        return f"{self.acc(acc_id)}:t:{task_id}"

    def hist(self, acc_id: str) -> str:
        return f"{self.acc(acc_id)}:hist"

    def secret(self, acc_id: str) -> str:
        return f"{self.acc(acc_id)}:secret"

    def parent(self, task_id: str) -> str:
        return f"{self.prefix}:p:{task_id}"

    def record(self, task_id: str) -> str:
        return f"{self.prefix}:rec:{task_id}"


def connect(url: str) -> redis.Redis:
    """A client with string responses (what the store expects)."""
    return redis.Redis.from_url(url, decode_responses=True)


def load_into_redis(client: redis.Redis, accounts: Iterable[Account], policy: Policy,
                    now: float, *, prefix: str = "byoa", replace: bool = False) -> int:
    """``byoa accounts load``: write the accounts file's accounts once.

    The ledger's own ``start`` fixes what depends on the start time (default
    ``renews_at``, the first billing period) and evaluates B1 (L6). Refuses to
    overwrite a loaded pool unless ``replace`` (which deletes every key under
    the prefix first).
    """
    accs = list(accounts)
    for acc in accs:
        if "{" in acc.id or "}" in acc.id:
            raise InputError(f"account id {acc.id!r} contains '{{' or '}}', which Redis "
                             "uses for hash tags; rename the account", field="accounts[].id")
    keys = Keys(prefix)
    if client.exists(keys.accounts) and not replace:
        raise InputError(f"accounts are already loaded under the prefix {prefix!r}; "
                         "use `byoa accounts set` to change them, or --replace to start over")
    ledger = Ledger(accs, policy)
    ledger.start(now)
    if replace:
        batch: list[str] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(str(key))
            if len(batch) >= 500:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
    pipe = client.pipeline(transaction=False)
    for acc in accs:
        pipe.hset(keys.acc(acc.id), mapping=dict(account_to_hash(acc)))  # type: ignore[arg-type]
    pipe.set(keys.policy, policy_to_json(policy))
    if ledger.backups_active:
        pipe.set(keys.backups, "1")
    if accs:
        pipe.rpush(keys.accounts, *[a.id for a in accs])
    pipe.execute()
    return len(accs)


class RedisStore:
    """Shared state in Redis; rules in Python on a local mirror ledger."""

    def __init__(self, client: redis.Redis, *, prefix: str = "byoa", owner: str | None = None,
                 lease_seconds: float = 30.0, refresh_interval: float = 0.05,
                 done_ttl: int = DAY_S, explain: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.r = client
        self.keys = Keys(prefix)
        self.owner = owner or uuid.uuid4().hex[:12]
        self.lease_seconds = lease_seconds
        self.refresh_interval = refresh_interval
        self.done_ttl = done_ttl
        self.explain = explain
        self.clock = clock
        self._reserve = client.register_script(scripts.RESERVE)
        self._finish = client.register_script(scripts.FINISH)
        self._apply = client.register_script(scripts.APPLY)
        self._expire = client.register_script(scripts.EXPIRE)
        self._mine: dict[str, InFlight] = {}  # tasks this process reserved
        self._lver: dict[str, str] = {}  # the ledger version each mirror account was read at
        self._saw_no_active = False
        self.lost_races = 0
        self._load_mirror()

    @classmethod
    def from_url(cls, url: str = DEFAULT_URL, **kwargs: Any) -> RedisStore:
        return cls(connect(url), **kwargs)

    # ------------------------------------------------------------------ mirror
    def _load_mirror(self) -> None:
        ids = [str(i) for i in self.r.lrange(self.keys.accounts, 0, -1)]
        raw_policy = self.r.get(self.keys.policy)
        if not ids or raw_policy is None:
            raise InputError(f"no accounts in Redis under the prefix {self.keys.prefix!r}; "
                             "load them first with `byoa accounts load accounts.json`")
        pipe = self.r.pipeline(transaction=False)
        for acc_id in ids:
            pipe.hgetall(self.keys.acc(acc_id))
        pipe.get(self.keys.backups)
        res = pipe.execute()
        accounts = [account_from_hash(h) for h in res[:-1]]
        self._lver = {str(h["id"]): str(h["lver"]) for h in res[:-1]}
        self._ids = ids
        self.ledger = Ledger(accounts, policy_from_json(str(raw_policy)))
        self.ledger.started = True
        self.ledger.backups_active = bool(res[-1])
        for acc in accounts:
            self.ledger.touch(acc)
        self._refreshed_at = self.clock()
        self._update_next_due()

    def _update_next_due(self) -> None:
        dues = [a.next_renewal_at for a in self.ledger.accounts.values()
                if a.next_renewal_at is not None]
        self._next_due = min(dues) if dues else float("inf")

    def refresh(self) -> None:
        """Re-read every account into the mirror (one pipelined round trip)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.lrange(self.keys.accounts, 0, -1)
        pipe.get(self.keys.backups)
        for acc_id in self._ids:
            pipe.hgetall(self.keys.acc(acc_id))
        res = pipe.execute()
        if [str(i) for i in res[0]] != self._ids:
            self._load_mirror()
            return
        ledger = self.ledger
        if res[1] and not ledger.backups_active:
            ledger.backups_active = True
        for acc_id, h in zip(self._ids, res[2:], strict=True):
            self._to_mirror(acc_id, h)
        self._refreshed_at = self.clock()
        self._update_next_due()

    def _to_mirror(self, acc_id: str, h: dict[str, str]) -> None:
        """Overwrite the mirror's account with a hash read from Redis."""
        acc = self.ledger.accounts[acc_id]
        apply_hash(acc, h)
        self._lver[acc_id] = h["lver"]
        self.ledger.touch(acc)

    def _refresh_account(self, acc_id: str) -> dict[str, str]:
        h = {str(k): str(v) for k, v in self.r.hgetall(self.keys.acc(acc_id)).items()}
        self._to_mirror(acc_id, h)
        return h

    def _maybe_refresh(self) -> None:
        if self.clock() - self._refreshed_at >= self.refresh_interval:
            self.refresh()

    @property
    def policy(self) -> Policy:
        return self.ledger.policy

    # ------------------------------------------------------------------- pool
    def _evaluate_pool(self, now: float) -> None:
        """B1 and ``no_active_mj_bot`` by the ledger's rule, claimed once with SET NX."""
        ledger = self.ledger
        n = len(ledger.notifications)
        ledger.evaluate_pool(now)
        fresh = ledger.notifications[n:]
        del ledger.notifications[n:]
        for note in fresh:
            key = self.keys.backups if note.type == "backups_activated" else self.keys.no_active
            if self.r.set(key, "1", nx=True):
                ledger.notifications.append(note)
            if note.type == "no_active_mj_bot":
                self._saw_no_active = True
        if self._saw_no_active and ledger.active_count > 0:
            self._saw_no_active = False
            self.r.delete(self.keys.no_active)

    def advance(self, now: float) -> None:
        """L6/L4: due renewals, each applied once across processes (CAS), then B1."""
        if now >= self._next_due:
            while True:
                due = [(a.next_renewal_at, a.id) for a in self.ledger.accounts.values()
                       if a.next_renewal_at is not None and a.next_renewal_at <= now]
                if not due:
                    break
                self._renew_one(min(due)[1], now)
            self._update_next_due()
        self._evaluate_pool(now)

    def _renew_one(self, acc_id: str, now: float) -> None:
        ledger = self.ledger
        while True:
            h = self._refresh_account(acc_id)
            acc = ledger.accounts[acc_id]
            if acc.next_renewal_at is None or acc.next_renewal_at > now:
                return  # another process renewed it
            hist_before, ren_before = len(acc.history), len(ledger.renewals)
            ledger._renew(acc, acc.next_renewal_at)  # the L4 rule itself
            entries = [period_to_json(p) for p in acc.history[hist_before:]]
            ok = self._apply(keys=[self.keys.acc(acc_id), self.keys.hist(acc_id)],
                             args=[h["lver"], len(entries), *entries,
                                   *_flatten(ledger_fields(acc))])
            del acc.history[hist_before:]
            if int(ok) == 1:
                return
            del ledger.renewals[ren_before:]
            log.debug("renewal of %s raced with another process; re-reading", acc_id)

    # ---------------------------------------------------------------- submit
    def _load_parent(self, origin: str) -> None:
        if origin in self.ledger.parents:
            return
        raw = self.r.get(self.keys.parent(origin))
        if raw is None:
            return
        acc_id, _, mode = str(raw).partition("|")
        if acc_id and acc_id not in self.ledger.accounts:
            return
        self.ledger.parents[origin] = Parent(acc_id == "", acc_id or None, Mode(mode))

    def submit(self, task_id: str, body: Any, now: float, *,
               estimated_gpu_seconds: float | None = None) -> Decision:
        """Route on the mirror, reserve atomically; a lost race routes again."""
        return self.submit_many([(task_id, body, estimated_gpu_seconds)], now)[0]

    def submit_many(self, items: list[tuple[str, Any, float | None]],
                    now: float) -> list[Decision]:
        """Route several submits in order and reserve them in one round trip.

        Each task is routed on the mirror as if the ones before it in the batch
        were already reserved (exactly what one process would decide), then all
        reservations go to Redis in one pipeline; each script re-checks its
        account. Tasks that lost a race are routed again, in a next round, from
        the state the scripts returned. A child whose parent is in the same
        round ends the round: it and the tasks after it go in the next one, so a
        single process decides exactly as submits one by one.
        """
        self._maybe_refresh()
        self.advance(now)
        ledger, keys = self.ledger, self.keys
        out: list[Decision | None] = [None] * len(items)
        todo: list[tuple[int, str, ParsedRequest, int | None]] = []
        for i, (task_id, body, est_s) in enumerate(items):
            try:
                req = parse_request(body)
            except InvalidRequest as exc:
                out[i] = Decision(task_id, error=exc.as_error())
                continue
            if req.is_child and req.origin_task_id:
                self._load_parent(req.origin_task_id)
            todo.append((i, task_id, req, None if est_s is None else seconds_to_ms(est_s)))
        wrote: set[str] = set()
        for _round in range(2 * len(self._ids) + 4):
            if not todo:
                break
            pipe = self.r.pipeline(transaction=False)
            sent: list[tuple[int, str, Decision]] = []
            later: list[tuple[int, str, ParsedRequest, int | None]] = []
            in_round: set[str] = set()
            for k, item in enumerate(todo):
                i, task_id, req, est = item
                if req.is_child and req.origin_task_id in in_round:
                    later = todo[k:]  # keep the order: the rest waits for the next round
                    break
                d = route(ledger, req, task_id, now, est, explain=self.explain)
                if d.error is not None:
                    out[i] = d
                    continue
                assert d.requested_mode is not None and d.effective_mode is not None
                if d.account_id is None:  # P1: remembered as a parent only
                    pipe.set(keys.parent(task_id), f"|{d.requested_mode.value}",
                             ex=self.done_ttl)
                    ledger.reserve(d, now)
                    out[i] = d
                    continue
                acc_id = d.account_id
                pipe.set(keys.parent(task_id), f"{acc_id}|{d.requested_mode.value}",
                         ex=self.done_ttl)
                self._reserve(keys=[keys.acc(acc_id), keys.leases(acc_id),
                                    keys.task(acc_id, task_id)],
                              args=[task_id, d.effective_mode.value, d.reserved_ms,
                                    repr(self.clock() + self.lease_seconds), self.owner,
                                    repr(now)], client=pipe)
                ledger.reserve(d, now)  # optimistic: the next task sees this one
                wrote.add(task_id)
                in_round.add(task_id)
                sent.append((i, task_id, d))
            results = pipe.execute() if len(pipe) else []
            scripts = [r for r in results if isinstance(r, list)]
            retry: list[tuple[int, str, ParsedRequest, int | None]] = []
            touched: set[str] = set()
            by_index = {item[0]: item for item in todo}
            todo_rest = later
            for (i, task_id, d), res in zip(sent, scripts, strict=True):
                acc = ledger.accounts[d.account_id or ""]
                touched.add(acc.id)
                task = ledger.tasks.pop(task_id)
                if int(res[0]) == 1:  # the state right after this script
                    acc.in_flight, acc.reserved_ms = int(res[1]), int(res[2])
                    self._mine[task_id] = task
                    out[i] = d
                    continue
                ledger.parents.pop(task_id, None)
                if str(res[1]) == "duplicate":
                    acc.in_flight -= 1
                    acc.reserved_ms -= d.reserved_ms
                    out[i] = Decision(task_id, error=make_error(
                        "invalid_request", "M0", f"task id {task_id!r} was already submitted"))
                    continue
                self.lost_races += 1
                self._to_mirror(acc.id, _pairs(res[2:]))
                retry.append(by_index[i])
            for acc_id in touched:
                ledger.touch(ledger.accounts[acc_id])
            todo = sorted(retry + todo_rest)
        for i, task_id, _req, _est in todo:
            out[i] = Decision(task_id, error=make_error(
                "pool_saturated", "R5", "every choice was taken by another process while "
                "reserving (R5); retry when an account frees"))
        rejected = [d.task_id for d in out if d is not None and d.error is not None
                    and d.task_id in wrote]
        if rejected:
            self.r.delete(*[keys.parent(t) for t in rejected])
        self._evaluate_pool(now)
        return [d for d in out if d is not None]

    def routed(self, task_id: str) -> bool:
        return task_id in self.ledger.parents or bool(self.r.exists(self.keys.parent(task_id)))

    # ---------------------------------------------------------------- finish
    def _locate(self, task_id: str, verb: str) -> str:
        raw = self.r.get(self.keys.parent(task_id))
        if raw is None:
            raise NotInFlight(f"cannot {verb} task {task_id}: not in flight "
                              "(never submitted, or rejected)", "L1")
        acc_id = str(raw).partition("|")[0]
        if not acc_id:
            raise NotInFlight(f"cannot {verb} task {task_id}: not in flight "
                              "(it went to the public pool (P1))", "L1")
        if acc_id not in self.ledger.accounts:
            self.refresh()
        return acc_id

    def _finish_task(self, task_id: str, now: float, verb: str, gpu_ms: int) -> Outcome:
        """Run the ledger's own complete/fail on the account, write it with a CAS.

        A task this process reserved is finished optimistically from the mirror
        (one round trip); a conflict returns the fresh account and we recompute.
        A task reserved elsewhere is read first (its account and task hash).
        """
        self.advance(now)
        keys, ledger = self.keys, self.ledger
        final = {"complete": "completed", "fail": "failed", "cancel": "cancelled"}[verb]
        mine = self._mine.get(task_id)
        if mine is None:
            acc_id = self._locate(task_id, verb)
            pipe = self.r.pipeline(transaction=False)
            pipe.hgetall(keys.acc(acc_id))
            pipe.hgetall(keys.task(acc_id, task_id))
            h, t = pipe.execute()
            if t.get("state") != "flight":
                why = {"expired": "its lease expired"}.get(t.get("state", ""), "already finished")
                raise NotInFlight(f"cannot {verb} task {task_id}: not in flight ({why})", "L1")
            self._to_mirror(acc_id, h)
            task = InFlight(task_id, acc_id, Mode(t["mode"]), int(t["reserved_ms"]),
                            float(t["at"]))
        else:
            task = mine
            acc_id = task.account_id
        tkey = keys.task(acc_id, task_id)
        acc = ledger.accounts[acc_id]
        while True:
            in_flight, reserved = acc.in_flight, acc.reserved_ms
            ledger.tasks[task_id] = task
            before = ledger_fields(acc)
            n = len(ledger.notifications)
            if verb == "complete":
                out = ledger.complete(task_id, gpu_ms, now)
            else:
                out = ledger.fail(task_id, now, verb=verb)
            after = ledger_fields(acc)
            changed = {k: v for k, v in after.items() if before[k] != v}
            res = self._finish(keys=[keys.acc(acc_id), keys.leases(acc_id), tkey],
                               args=[task_id, final, self._lver[acc_id] if changed else "",
                                     self.done_ttl, out.charged_ms, *_flatten(changed)])
            code = int(res[0])
            if code == 1:
                if changed:  # the CAS held: our fields are exactly Redis' at this lver
                    self._lver[acc_id] = str(res[1])
                self._mine.pop(task_id, None)
                self._evaluate_pool(now)
                return out
            del ledger.notifications[n:]
            if code == 0:
                acc.in_flight, acc.reserved_ms = in_flight, reserved
                self._mine.pop(task_id, None)
                self._refresh_account(acc_id)
                why = "its lease expired" if str(res[1]) == "expired" else "already finished"
                raise NotInFlight(f"cannot {verb} task {task_id}: not in flight ({why})", "L1")
            log.debug("%s of %s raced on %s; recomputing", verb, task_id, acc_id)
            self._to_mirror(acc_id, _pairs(res[2:]))

    def complete_many(self, items: list[tuple[str, float]],
                      now: float) -> list[Outcome | NotInFlight]:
        """Complete several tasks this process reserved, one round trip per round.

        Each completion runs ``Ledger.complete`` on the mirror and is written by
        the same CAS script as ``complete``. An account gets at most one
        fast-time-changing completion per round (a second one would need the
        first's new version), so a conflict can never let a later write slip
        through; conflicts and tasks reserved elsewhere finish one by one.
        """
        self.advance(now)
        ledger, keys = self.ledger, self.keys
        out: list[Outcome | NotInFlight | None] = [None] * len(items)
        todo = list(range(len(items)))
        slow: list[int] = []
        while todo:
            pipe = self.r.pipeline(transaction=False)
            sent: list[tuple[int, InFlight, Outcome, bool, list[Notification]]] = []
            busy: set[str] = set()
            later: list[int] = []
            for i in todo:
                task_id, gpu = items[i]
                task = self._mine.get(task_id)
                if task is None:
                    slow.append(i)
                    continue
                acc = ledger.accounts[task.account_id]
                if acc.id in busy:
                    later.append(i)
                    continue
                ledger.tasks[task_id] = task
                before = ledger_fields(acc)
                n = len(ledger.notifications)
                res = ledger.complete(task_id, seconds_to_ms(gpu), now)
                notes = ledger.notifications[n:]
                changed = {k: v for k, v in ledger_fields(acc).items() if before[k] != v}
                if changed:
                    busy.add(acc.id)
                self._finish(keys=[keys.acc(acc.id), keys.leases(acc.id),
                                   keys.task(acc.id, task_id)],
                             args=[task_id, "completed", self._lver[acc.id] if changed else "",
                                   self.done_ttl, res.charged_ms, *_flatten(changed)],
                             client=pipe)
                sent.append((i, task, res, bool(changed), notes))
            dirty: set[str] = set()
            for (i, task, res, wrote, notes), r in zip(sent, pipe.execute() if sent else [],
                                                       strict=True):
                code = int(r[0])
                if code == 1:
                    out[i] = res
                    self._mine.pop(task.task_id, None)
                    if wrote:
                        self._lver[task.account_id] = str(r[1])
                    continue
                for note in notes:
                    ledger.notifications.remove(note)
                dirty.add(task.account_id)
                if code == 0:
                    self._mine.pop(task.task_id, None)
                    why = "its lease expired" if str(r[1]) == "expired" else "already finished"
                    out[i] = NotInFlight(f"cannot complete task {task.task_id}: not in flight "
                                         f"({why})", "L1")
                else:
                    later.append(i)
            for acc_id in dirty:
                self._refresh_account(acc_id)
            todo = sorted(later)
        for i in slow:
            try:
                out[i] = self.complete(*items[i], now)
            except NotInFlight as exc:
                out[i] = exc
        self._evaluate_pool(now)
        return [o for o in out if o is not None]

    def complete(self, task_id: str, gpu_seconds: float, now: float) -> Outcome:
        return self._finish_task(task_id, now, "complete", seconds_to_ms(gpu_seconds))

    def fail(self, task_id: str, now: float) -> Outcome:
        return self._finish_task(task_id, now, "fail", 0)

    def cancel(self, task_id: str, now: float) -> Outcome:
        return self._finish_task(task_id, now, "cancel", 0)

    # ------------------------------------------------------------ user changes
    def _user_change(self, account_id: str, now: float,
                     change: Callable[[Ledger], Account]) -> Account:
        self.advance(now)
        if account_id not in self.ledger.accounts:
            self.refresh()
            if account_id not in self.ledger.accounts:
                raise UnknownAccount(f"no account {account_id!r} in the pool", "L5")
        while True:
            h = self._refresh_account(account_id)
            acc = change(self.ledger)
            ok = self._apply(keys=[self.keys.acc(account_id), self.keys.hist(account_id)],
                             args=[h["lver"], 0, *_flatten(ledger_fields(acc))])
            if int(ok) == 1:
                self._evaluate_pool(now)
                snap = copy.copy(acc)
                snap.history = self._history(account_id)
                return snap

    def set_status(self, account_id: str, status: Status, now: float) -> Account:
        return self._user_change(account_id, now,
                                 lambda lg: lg.set_status(account_id, Status(status), now))

    def set_setting(self, account_id: str, setting: Setting, now: float) -> Account:
        return self._user_change(account_id, now,
                                 lambda lg: lg.set_setting(account_id, Setting(setting), now))

    # ------------------------------------------------------------- snapshots
    def accounts(self) -> list[Account]:
        self.refresh()
        pipe = self.r.pipeline(transaction=False)
        for acc_id in self._ids:
            pipe.lrange(self.keys.hist(acc_id), 0, -1)
        out: list[Account] = []
        for acc_id, hist in zip(self._ids, pipe.execute(), strict=True):
            acc = copy.copy(self.ledger.accounts[acc_id])
            acc.history = [p for p in (period_from_json(str(x)) for x in hist) if p is not None]
            out.append(acc)
        return out

    def _history(self, acc_id: str) -> list[PeriodRecord]:
        raw = self.r.lrange(self.keys.hist(acc_id), 0, -1)
        return [p for p in (period_from_json(str(x)) for x in raw) if p is not None]

    def drain(self) -> tuple[list[Notification], list[Renewal]]:
        return self.ledger.drain()

    # ------------------------------------------------------------------ leases
    def maintain(self, now: float) -> list[str]:
        """Extend this process's leases, release expired ones of any owner."""
        t = self.clock()
        keys = self.keys
        by_acc: dict[str, dict[str, float]] = defaultdict(dict)
        for task_id, task in self._mine.items():
            by_acc[task.account_id][task_id] = t + self.lease_seconds
        pipe = self.r.pipeline(transaction=False)
        for acc_id, mapping in by_acc.items():
            pipe.zadd(keys.leases(acc_id), mapping, xx=True, gt=True)
        for acc_id in self._ids:
            pipe.zrangebyscore(keys.leases(acc_id), "-inf", t, start=0, num=500)
        res = pipe.execute()[len(by_acc):]
        released: list[str] = []
        for acc_id, cands in zip(self._ids, res, strict=True):
            if not cands:
                continue
            ids = [str(c) for c in cands]
            got = self._expire(
                keys=[keys.acc(acc_id), keys.leases(acc_id),
                      *[keys.task(acc_id, i) for i in ids]],
                args=[repr(t), self.done_ttl, *ids])
            for task_id in got:
                released.append(str(task_id))
                self._mine.pop(str(task_id), None)
        if released:
            log.warning("released %d expired reservations (lease %.1f s)",
                        len(released), self.lease_seconds)
        self.refresh()
        self.advance(now)
        return released

    # --------------------------------------------------------------- secrets
    def set_secret(self, account_id: str, name: str, value: str) -> None:
        if account_id not in self.ledger.accounts:
            raise UnknownAccount(f"no account {account_id!r} in the pool", "L5")
        self.r.hset(self.keys.secret(account_id), name, value)

    def secret_names(self, account_id: str) -> list[str]:
        return sorted(str(k) for k in self.r.hkeys(self.keys.secret(account_id)))

    # ---------------------------------------------------------- task records
    def put_record(self, task_id: str, data: str) -> None:
        self.r.set(self.keys.record(task_id), data, ex=self.done_ttl)

    def put_records(self, records: dict[str, str]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for task_id, data in records.items():
            pipe.set(self.keys.record(task_id), data, ex=self.done_ttl)
        pipe.execute()

    def get_record(self, task_id: str) -> str | None:
        raw = self.r.get(self.keys.record(task_id))
        return None if raw is None else str(raw)

    def close(self) -> None:
        self.r.close()
