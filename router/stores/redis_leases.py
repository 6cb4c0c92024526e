"""``Leases``: reservations are leases, so a dead process's reservations come back.

The owning process extends its leases; any process releases the expired ones
of a dead owner (``scripts.EXPIRE``: room and fast time come back, nothing is
charged, L1).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

import redis

from router.ledger import InFlight
from router.stores import scripts
from router.stores.redis_keys import Keys

log = logging.getLogger(__name__)

SCAN = 500  # expired leases released per account and pass


class Leases:
    """Extends this process's leases and releases expired ones of any owner."""

    def __init__(self, client: redis.Redis, keys: Keys, mine: dict[str, InFlight], *,
                 lease_seconds: float, done_ttl: int, clock: Callable[[], float]) -> None:
        self.r = client
        self.keys = keys
        self.mine = mine  # tasks this process reserved
        self.lease_seconds = lease_seconds
        self.done_ttl = done_ttl
        self.clock = clock
        self._expire = client.register_script(scripts.EXPIRE)

    def renew_and_expire(self, account_ids: list[str]) -> list[str]:
        """One pass over ``account_ids``; the task ids whose lease expired."""
        t = self.clock()
        keys = self.keys
        by_acc: dict[str, dict[str, float]] = defaultdict(dict)
        for task_id, task in self.mine.items():
            by_acc[task.account_id][task_id] = t + self.lease_seconds
        pipe = self.r.pipeline(transaction=False)
        for acc_id, mapping in by_acc.items():
            pipe.zadd(keys.leases(acc_id), mapping, xx=True, gt=True)
        for acc_id in account_ids:
            pipe.zrangebyscore(keys.leases(acc_id), "-inf", t, start=0, num=SCAN)
        res = pipe.execute()[len(by_acc):]
        released: list[str] = []
        for acc_id, cands in zip(account_ids, res, strict=True):
            if cands:
                released += self._release(acc_id, [str(c) for c in cands], t)
        if released:
            log.warning("released %d expired reservations (lease %.1f s)",
                        len(released), self.lease_seconds)
        return released

    def _release(self, acc_id: str, ids: list[str], t: float) -> list[str]:
        keys = self.keys
        got = self._expire(keys=[keys.acc(acc_id), keys.leases(acc_id),
                                 *[keys.task(acc_id, i) for i in ids]],
                           args=[repr(t), self.done_ttl, *ids])
        released = [str(task_id) for task_id in got]
        for task_id in released:
            self.mine.pop(task_id, None)
        return released
