"""``Mirror``: this process's copy of the pool, an ordinary ``Ledger`` filled from Redis.

Routing and the ledger's rules run on the mirror exactly as in one process. The
mirror may be a few milliseconds stale; every write to Redis re-checks what it
relies on (a reservation script, or a compare-and-set on the account's
``lver``, the version each mirror account was read at).

Between two full reads (at the start, when the list of accounts changes, and at
each ``refresh``: the proxy's maintenance, every second), ``maybe_refresh``
re-reads only the accounts whose ``ver`` moved since this mirror read them: every
write to an account's hash adds 1 to it (``scripts``), so one call (``SYNC``)
answers which ones changed, with their hashes, and nothing another process did
is missed. A reservation or a finish of this process answers the ``ver`` it left
(``wrote``): when it was the only change since the mirror read the account, the
mirror, which applied the same change, is still exact and the account is not
re-read; otherwise it is, at the next sync.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import redis
from redis.cluster import RedisCluster

from router.errors import InputError
from router.ledger import Ledger
from router.stores import scripts
from router.stores.codec import account_from_hash, apply_hash, policy_from_json, recover_at
from router.stores.redis_keys import Keys, pairs
from router.stores.redis_pipe import ScriptPipe, pipeline


class Mirror:
    """The ledger mirror, the account ids in file order and each account's ``lver``
    and ``ver`` as last read."""

    def __init__(self, client: redis.Redis, keys: Keys, *, refresh_interval: float,
                 clock: Callable[[], float]) -> None:
        self.r = client
        self.keys = keys
        self.refresh_interval = refresh_interval
        self.clock = clock
        self.lver: dict[str, str] = {}
        self.ver: dict[str, str] = {}  # '' = re-read at the next sync
        self._sync = client.register_script(scripts.SYNC)
        self._per_slot = isinstance(client, RedisCluster)  # SYNC once per account
        self.ids: list[str] = []
        self.next_due = float("inf")  # the earliest renewal (L4) or recovery (H1)
        self.refreshed_at = 0.0
        self.ledger = self._read()

    def _read(self) -> Ledger:
        ids = [str(i) for i in self.r.lrange(self.keys.accounts, 0, -1)]
        raw_policy = self.r.get(self.keys.policy)
        if not ids or raw_policy is None:
            raise InputError(f"no accounts in Redis under the prefix {self.keys.prefix!r}; "
                             "load them first with `byoa accounts load accounts.json`")
        pipe = pipeline(self.r)
        for acc_id in ids:
            pipe.hgetall(self.keys.acc(acc_id))
        pipe.get(self.keys.backups)
        res = pipe.execute()
        accounts = [account_from_hash(h) for h in res[:-1]]
        self.lver = {str(h["id"]): str(h["lver"]) for h in res[:-1]}
        self.ver = {str(h["id"]): str(h.get("ver", "")) for h in res[:-1]}
        self.ids = ids
        ledger = Ledger(accounts, policy_from_json(str(raw_policy)))
        ledger.started = True
        ledger.backups_active = bool(res[-1])
        for acc, h in zip(accounts, res[:-1], strict=True):
            _pending(ledger, acc.id, h)
            ledger.touch(acc)
        self.refreshed_at = self.clock()
        self._update_next_due(ledger)
        return ledger

    def _update_next_due(self, ledger: Ledger) -> None:
        dues = [a.next_renewal_at for a in ledger.accounts.values()
                if a.next_renewal_at is not None]
        dues += ledger.pending_recovery.values()  # H1
        self.next_due = min(dues) if dues else float("inf")

    def update_next_due(self) -> None:
        self._update_next_due(self.ledger)

    def refresh(self) -> None:
        """Re-read every account (one pipelined round trip); the whole pool when
        the list of accounts changed."""
        pipe = pipeline(self.r)
        pipe.lrange(self.keys.accounts, 0, -1)
        pipe.get(self.keys.backups)
        for acc_id in self.ids:
            pipe.hgetall(self.keys.acc(acc_id))
        res = pipe.execute()
        self._settle(res[0], res[1], lambda: zip(self.ids, res[2:], strict=True))

    def sync(self) -> None:
        """Re-read the accounts whose ``ver`` moved (one round trip); the whole
        pool when the list of accounts changed."""
        pipe = ScriptPipe(self.r)
        pipe.lrange(self.keys.accounts, 0, -1)
        pipe.get(self.keys.backups)
        keys = [self.keys.acc(acc_id) for acc_id in self.ids]
        vers = [self.ver.get(acc_id, "") for acc_id in self.ids]
        if self._per_slot:  # Redis Cluster: one slot per script call
            for key, ver in zip(keys, vers, strict=True):
                pipe.run(self._sync, [key], [ver])
        else:
            pipe.run(self._sync, keys, vers)
        res = pipe.execute()

        def changed() -> Iterable[tuple[str, dict[str, str]]]:
            got = [r[0] for r in res[2:]] if self._per_slot else res[2]
            return ((acc_id, pairs(flat)) for acc_id, flat in zip(self.ids, got, strict=True)
                    if flat != 0)

        self._settle(res[0], res[1], changed)

    def _settle(self, listed: list[Any], backups: Any,
                fresh: Callable[[], Iterable[tuple[str, dict[str, str]]]]) -> None:
        """Apply a read of the pool: all of it again when the list of accounts
        changed; else the backups flag (B1) and the accounts ``fresh`` gives."""
        if [str(i) for i in listed] != self.ids:
            self.ledger = self._read()
            return
        if backups and not self.ledger.backups_active:
            self.ledger.backups_active = True
        for acc_id, h in fresh():
            self.write(acc_id, h)
        self.refreshed_at = self.clock()
        self.update_next_due()

    def maybe_refresh(self) -> None:
        if self.clock() - self.refreshed_at >= self.refresh_interval:
            self.sync()

    def wrote(self, acc_id: str, ver: int) -> None:
        """A script of this process left the account at ``ver`` and the mirror
        holds what it wrote: if the mirror had read the version just before,
        nobody else wrote in between, and the mirror is exact at ``ver``."""
        if self.ver.get(acc_id) == str(ver - 1):
            self.ver[acc_id] = str(ver)

    def forget(self, acc_id: str) -> None:
        """The mirror's account may differ from Redis: re-read it at the next sync."""
        self.ver[acc_id] = ""

    def write(self, acc_id: str, h: dict[str, str]) -> None:
        """Overwrite the mirror's account with a hash read from Redis.

        A backup still marked dormant in Redis (B1) while the mirror believes the
        backups active means the mirror went ahead of the pool: it believes Redis."""
        ledger = self.ledger
        acc = ledger.accounts[acc_id]
        apply_hash(acc, h)
        _pending(ledger, acc_id, h)
        self.lver[acc_id] = h["lver"]
        self.ver[acc_id] = h.get("ver", "")
        if ledger.backups_active and h.get("backup") == "1" and h.get("dormant") == "1":
            ledger.backups_active = False
            for other in ledger.accounts.values():
                if other.backup:
                    ledger.touch(other)
        ledger.touch(acc)
        if acc_id in ledger.pending_recovery:
            self.next_due = min(self.next_due, ledger.pending_recovery[acc_id])

    def refresh_account(self, acc_id: str) -> dict[str, str]:
        """Re-read one account; the hash as read."""
        h = {str(k): str(v) for k, v in self.r.hgetall(self.keys.acc(acc_id)).items()}
        self.write(acc_id, h)
        return h


def _pending(ledger: Ledger, acc_id: str, h: dict[str, str]) -> None:
    """H1: the account's pending recovery as Redis has it (set, replaced or gone)."""
    until = recover_at(h)
    if until is None:
        ledger.pending_recovery.pop(acc_id, None)
    else:
        ledger.pending_recovery[acc_id] = until
