"""``RedisStore``: account state shared by several proxy processes.

Each process keeps a *mirror* (``redis_mirror.Mirror``): an ordinary
``router.ledger.Ledger`` filled from Redis. Routing runs ``router.engine.route``
on the mirror, exactly as in one process, and every write re-checks in Redis
what it relied on. The work is shared by one object per job:

* ``Reserver`` (``redis_reserve``): route and reserve, atomically per task;
* ``Finisher`` (``redis_finish``): complete, fail, cancel, charged once (L1);
* ``PoolEvents`` (``redis_pool``): renewals (L4/L6) and B1 / ``no_active_mj_bot``,
  each applied once across processes;
* ``Leases`` (``redis_leases``): a dead process's tasks are adopted (routed
  again, or followed upstream when they had started), public-pool ones (P1)
  too: they hold a lease of their own, but no room, fast time or charge;
* ``RedisRecords`` (``redis_records``): the proxy's task records and secrets.

User changes (L5) run the ledger's own code on the freshly read account and are
written with a compare-and-set on the account's ``lver``; a timed status (H1)
writes its ``recover_at`` in the same step, and ``PoolEvents`` recovers the
account once across processes. Daily caps and gaps (H2, H3) are counted and
re-checked on the account's hash by the reservation script. An H4 fail
(``fail_fast_exhausted``) is one CAS on the account, then an ordinary
reservation of the same task id.

Keys (``P`` is the prefix): ``P:accounts`` (ids in file order), ``P:policy``,
``P:backups_active``, ``P:no_active``, ``P:epoch`` (written at each load),
``P:p:<task>`` (parent record, M5/R7),
``P:rec:<task>`` (the proxy's task record), and per account, all with the hash
tag ``{acc:<id>}``: ``P:{acc:<id>}`` (hash), ``...:leases`` (zset),
``...:t:<task>`` (task hash), ``...:hist`` (period history), ``...:secret``.
Public-pool tasks (P1) are leased under the tag ``{pub}``: ``P:{pub}`` (hash:
``in_flight``), ``P:{pub}:leases``, ``P:{pub}:t:<task>``.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from router.accounts import Account, Mode, PeriodRecord, Setting, Status, seconds_to_ms
from router.decision import Decision, Notification, Outcome, Recovery, Renewal
from router.errors import NotInFlight, UnknownAccount
from router.ledger import InFlight, Ledger, Policy
from router.stores import scripts
from router.stores.base import Adoption
from router.stores.codec import ledger_fields, period_from_json
from router.stores.redis_finish import Finisher
from router.stores.redis_keys import DEFAULT_URL, Keys, connect, flatten, new_epoch
from router.stores.redis_leases import Leases
from router.stores.redis_load import load_into_redis
from router.stores.redis_mirror import Mirror
from router.stores.redis_pipe import pipeline
from router.stores.redis_pool import PoolEvents
from router.stores.redis_records import RedisRecords
from router.stores.redis_reserve import Reserver
from router.stores.secrets import SecretBox

__all__ = ["DEFAULT_URL", "Keys", "RedisStore", "connect", "load_into_redis"]

DAY_S = 86_400


class RedisStore:
    """Shared state in Redis; rules in Python on a local mirror ledger."""

    def __init__(self, client: redis.Redis, *, prefix: str = "byoa", owner: str | None = None,
                 lease_seconds: float = 30.0, refresh_interval: float = 0.05,
                 done_ttl: int = DAY_S, explain: bool = True,
                 clock: Callable[[], float] = time.time,
                 secret_box: SecretBox | None = None) -> None:
        self.r = client
        self.keys = keys = Keys(prefix)
        self.owner = owner or uuid.uuid4().hex[:12]
        self.mirror = Mirror(client, keys, refresh_interval=refresh_interval, clock=clock)
        self.pool = PoolEvents(client, keys, self.mirror)
        mine: dict[str, InFlight] = {}  # tasks this process reserved
        public: dict[str, InFlight] = {}  # public-pool tasks this process leased (P1)
        self.reserver = Reserver(client, keys, self.mirror, self.pool, mine, public,
                                 owner=self.owner, lease_seconds=lease_seconds,
                                 done_ttl=done_ttl, explain=explain, clock=clock)
        self.finisher = Finisher(client, keys, self.mirror, self.pool, mine, done_ttl=done_ttl)
        self.leases = Leases(client, keys, mine, public, owner=self.owner,
                             lease_seconds=lease_seconds, done_ttl=done_ttl, clock=clock)
        self.records = RedisRecords(client, keys, done_ttl=done_ttl,
                                    known=lambda acc_id: acc_id in self.ledger.accounts,
                                    box=secret_box)
        self._apply = client.register_script(scripts.APPLY)

    @classmethod
    def from_url(cls, url: str = DEFAULT_URL, **kwargs: Any) -> RedisStore:
        from router.stores.cluster import client_for

        return cls(client_for(url), **kwargs)

    @property
    def ledger(self) -> Ledger:
        """The mirror ledger (may be a few milliseconds stale)."""
        return self.mirror.ledger

    @property
    def policy(self) -> Policy:
        return self.ledger.policy

    @property
    def lost_races(self) -> int:
        """Reservations another process won first (each routed again)."""
        return self.reserver.lost_races

    def epoch(self) -> str | None:
        """Which loading of the accounts Redis holds (None: the key is gone)."""
        raw = self.r.get(self.keys.epoch)
        return None if raw is None else str(raw)

    def ensure_epoch(self) -> str:
        """The epoch, written first if the accounts were loaded without one."""
        self.r.set(self.keys.epoch, new_epoch(), nx=True)
        return self.epoch() or ""

    def refresh(self) -> None:
        """Re-read every account into the mirror (one pipelined round trip)."""
        self.mirror.refresh()

    def advance(self, now: float) -> None:
        """L6/L4: due renewals, each applied once across processes (CAS), then B1."""
        self.pool.advance(now)

    # --------------------------------------------------------- route, finish
    def submit(self, task_id: str, body: Any, now: float, *,
               estimated_gpu_seconds: float | None = None) -> Decision:
        """Route on the mirror, reserve atomically; a lost race routes again."""
        return self.submit_many([(task_id, body, estimated_gpu_seconds)], now)[0]

    def submit_many(self, items: list[tuple[str, Any, float | None]],
                    now: float) -> list[Decision]:
        """Route several submits in order and reserve them in one round trip per
        round; the same decisions as one by one."""
        return self.reserver.submit_many(items, now)

    def routed(self, task_id: str) -> bool:
        return task_id in self.ledger.parents or bool(self.r.exists(self.keys.parent(task_id)))

    def complete(self, task_id: str, gpu_seconds: float, now: float) -> Outcome:
        return self.finisher.finish(task_id, now, "complete", seconds_to_ms(gpu_seconds))

    def complete_many(self, items: list[tuple[str, float]],
                      now: float) -> list[Outcome | NotInFlight]:
        return self.finisher.complete_many(items, now)

    def fail(self, task_id: str, now: float) -> Outcome:
        return self.finisher.finish(task_id, now, "fail", 0)

    def cancel(self, task_id: str, now: float) -> Outcome:
        return self.finisher.finish(task_id, now, "cancel", 0)

    def fail_fast_exhausted(self, task_id: str, now: float) -> tuple[Outcome, Decision | None]:
        """H4, as ``Pool.fail_fast_exhausted``: one CAS on the account (no charge,
        fast time zeroed as a correction, L3's flip, at most once however many
        processes deliver it), then the same task id routed again at ``now`` by an
        ordinary reservation (its own script, on the new account's shard).

        The two steps are not one transaction (the new account may live on
        another shard): a process that stops between them leaves the task
        ``rerouted`` on its old account and in flight nowhere, so no lease
        adopts it; its embedding's record still shows it running."""
        out, task, res = self.finisher.finish_task(task_id, now, "exhausted", 0)
        if task.mode is Mode.RELAX:
            return out, None
        est = int(res[3]) if len(res) > 3 and res[3] != "" else None
        return out, self.reserver.reroute(task_id, res[2], est, now)

    # ------------------------------------------------------------ user changes
    def _user_change(self, account_id: str, now: float, change: Callable[[Ledger], Account],
                     extra: dict[str, str] | None = None) -> Account:
        self.advance(now)
        if account_id not in self.ledger.accounts:
            self.refresh()
            if account_id not in self.ledger.accounts:
                raise UnknownAccount(f"no account {account_id!r} in the pool", "L5")
        while True:
            h = self.mirror.refresh_account(account_id)
            acc = change(self.ledger)
            ok = self._apply(keys=[self.keys.acc(account_id), self.keys.hist(account_id)],
                             args=[h["lver"], 0, *flatten(ledger_fields(acc)),
                                   *flatten(extra or {})])
            if int(ok) == 1:
                self.mirror.update_next_due()  # H1: a recovery may now be pending
                self.pool.evaluate(now)
                snap = copy.copy(acc)
                snap.history = self._history(account_id)
                return snap

    def set_status(self, account_id: str, status: Status, now: float) -> Account:
        """L5 (and H1: it cancels the account's pending recovery, if any)."""
        return self._set_status(account_id, status, now, None)

    def set_status_until(self, account_id: str, status: Status, now: float,
                         until: float) -> Account:
        """H1 (``HealthStore``): the account returns to ``active`` at ``until``, once
        across processes (``PoolEvents``), replacing any pending recovery."""
        return self._set_status(account_id, status, now, until)

    def _set_status(self, account_id: str, status: Status, now: float,
                    until: float | None) -> Account:
        return self._user_change(
            account_id, now, lambda lg: lg.set_status(account_id, Status(status), now, until),
            {"recover_at": "" if until is None else repr(float(until))})

    def pending_recoveries(self) -> dict[str, float]:
        """H1: account id -> when its timed status ends, as this process last read
        them (refreshed at most ``refresh_interval`` ago)."""
        self.mirror.maybe_refresh()
        return dict(self.ledger.pending_recovery)

    def set_setting(self, account_id: str, setting: Setting, now: float) -> Account:
        return self._user_change(account_id, now,
                                 lambda lg: lg.set_setting(account_id, Setting(setting), now))

    # ------------------------------------------------------------- snapshots
    def accounts(self) -> list[Account]:
        self.refresh()
        pipe = pipeline(self.r)
        for acc_id in self.mirror.ids:
            pipe.lrange(self.keys.hist(acc_id), 0, -1)
        out: list[Account] = []
        for acc_id, hist in zip(self.mirror.ids, pipe.execute(), strict=True):
            acc = copy.copy(self.ledger.accounts[acc_id])
            acc.history = _periods(hist)
            out.append(acc)
        return out

    def _history(self, acc_id: str) -> list[PeriodRecord]:
        return _periods(self.r.lrange(self.keys.hist(acc_id), 0, -1))

    def drain(self) -> tuple[list[Notification], list[Renewal]]:
        return self.ledger.drain()

    def drain_recoveries(self) -> list[Recovery]:
        """H1: the recoveries this process applied since the last call."""
        return self.ledger.drain_recoveries()

    def maintain(self, now: float) -> list[str]:
        """Extend this process's leases, adopt expired ones of any owner (their
        task ids; the details from ``take_adopted``)."""
        adopted = self.leases.renew_and_expire(self.mirror.ids)
        self.refresh()
        self.advance(now)
        return adopted

    def take_adopted(self) -> list[Adoption]:
        out, self.leases.adopted = self.leases.adopted, []
        return out

    def start_many(self, items: list[tuple[str, str, str, float]]) -> list[bool]:
        return self.leases.start_many(items)

    def hand_over(self, task_ids: list[str]) -> int:
        return self.leases.hand_over(task_ids)

    def end_public(self, items: list[tuple[str, str]]) -> list[bool]:
        return self.leases.end_public(items)

    # ------------------------------------------------- task records, secrets
    def keeps_secrets(self) -> bool:
        return self.records.keeps_secrets()

    def set_secret(self, account_id: str, name: str, value: str) -> None:
        self.records.set_secret(account_id, name, value)

    def secret_names(self, account_id: str) -> list[str]:
        return self.records.secret_names(account_id)

    def put_record(self, task_id: str, data: str) -> None:
        self.records.put_record(task_id, data)

    def put_records(self, records: dict[str, str], *, carry: bool = False) -> None:
        self.records.put_records(records, carry=carry)

    def flush_records(self) -> None:
        self.records.flush_records()

    def get_record(self, task_id: str) -> str | None:
        return self.records.get_record(task_id)

    def close(self) -> None:
        self.r.close()


def _periods(raw: Any) -> list[PeriodRecord]:
    return [p for p in (period_from_json(str(x)) for x in raw) if p is not None]
