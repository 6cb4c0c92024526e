"""``Leases``: reservations are leases, so a dead process's tasks are adopted.

The owning process extends its leases; any process adopts the expired ones of
a dead owner (``scripts.EXPIRE``). A task that had not started upstream is
released (room and fast time come back, nothing is charged, L1) and handed to
the adopter to be routed again under the same task id; a task that had started
(its upstream job reference was recorded first, ``scripts.START``) changes
owner, and the adopter follows that job and charges it once (L1).

Public-pool tasks (P1) hold a lease too, under the pseudo-account ``PUBLIC``
(keys tagged ``{pub}``, one Redis Cluster slot; ``scripts.HOLD`` takes it): the
same renewals, adoption, starts and hand-over, but no room, fast time or charge.
An adopted public task that had not started is routed again (to the public pool:
P1 follows the request), one that had started is followed to its end; either
way the task reaches a final state. Its lease is dropped when it ends
(``end_public``, the ``FINISH`` script without a charge).

Adoption time: a lease is extended every maintenance pass, so it lapses at most
``lease_seconds`` after its owner died, and a survivor's next pass (every
``maintain_interval``) adopts it: at most ``lease + maintain_interval``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import redis

from router.accounts import Mode
from router.ledger import InFlight
from router.stores import scripts
from router.stores.base import PUBLIC, Adoption
from router.stores.redis_keys import Keys
from router.stores.redis_pipe import ScriptPipe, pipeline

log = logging.getLogger(__name__)

SCAN = 500  # expired leases adopted per account and pass
ENTRY = 9  # values per adopted task in the EXPIRE script's answer


class Leases:
    """Extends this process's leases and adopts expired ones of any owner."""

    def __init__(self, client: redis.Redis, keys: Keys, mine: dict[str, InFlight],
                 public: dict[str, InFlight], *, owner: str, lease_seconds: float,
                 done_ttl: int, clock: Callable[[], float]) -> None:
        self.r = client
        self.keys = keys
        self.mine = mine  # tasks this process reserved or adopted
        self.public = public  # the same for public-pool tasks (P1, account ``PUBLIC``)
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.done_ttl = done_ttl
        self.clock = clock
        self.adopted: list[Adoption] = []  # taken by the embedding (``take_adopted``)
        self._expire = client.register_script(scripts.EXPIRE)
        self._start = client.register_script(scripts.START)
        self._hand_over = client.register_script(scripts.HAND_OVER)
        self._finish = client.register_script(scripts.FINISH)

    def held(self, task_id: str) -> dict[str, InFlight] | None:
        """Which of our dicts holds ``task_id`` (None: neither)."""
        return self.mine if task_id in self.mine else (
            self.public if task_id in self.public else None)

    def renew_and_expire(self, account_ids: list[str]) -> list[str]:
        """One pass over ``account_ids`` and the public pool's leases (P1); the task
        ids adopted from a dead owner."""
        t = self.clock()
        keys = self.keys
        account_ids = [*account_ids, PUBLIC]
        by_acc: dict[str, dict[str, float]] = defaultdict(dict)
        for task_id, task in [*self.mine.items(), *self.public.items()]:
            by_acc[task.account_id][task_id] = t + self.lease_seconds
        pipe = pipeline(self.r)
        for acc_id, mapping in by_acc.items():
            pipe.zadd(keys.leases(acc_id), mapping, xx=True, gt=True)
        for acc_id in account_ids:
            pipe.zrangebyscore(keys.leases(acc_id), "-inf", t, start=0, num=SCAN)
        res = pipe.execute()[len(by_acc):]
        adopted: list[Adoption] = []
        for acc_id, cands in zip(account_ids, res, strict=True):
            if cands:
                adopted += self._adopt(acc_id, [str(c) for c in cands], t)
        if adopted:
            resumed = sum(a.job is not None for a in adopted)
            public = sum(a.account_id == PUBLIC for a in adopted)
            log.warning("adopted %d tasks of a stopped process (lease %.1f s): %d routed "
                        "again, %d resumed; %d of them on the public pool (P1)",
                        len(adopted), self.lease_seconds, len(adopted) - resumed, resumed,
                        public)
        self.adopted += adopted
        return [a.task_id for a in adopted]

    def _adopt(self, acc_id: str, ids: list[str], t: float) -> list[Adoption]:
        keys = self.keys
        got = self._expire(keys=[keys.acc(acc_id), keys.leases(acc_id),
                                 *[keys.task(acc_id, i) for i in ids]],
                           args=[repr(t), self.done_ttl, self.owner,
                                 repr(t + self.lease_seconds), *ids])
        out: list[Adoption] = []
        for k in range(0, len(got), ENTRY):
            task_id, kind, body, created, job, started, mode, reserved, at = (
                str(v) for v in got[k:k + ENTRY])
            a = Adoption(task_id, acc_id, _body(body), float(created or t),
                         job or None, float(started) if started else None, Mode(mode))
            held = self.public if acc_id == PUBLIC else self.mine
            if kind == "resume":
                held[task_id] = InFlight(task_id, acc_id, Mode(mode), int(reserved),
                                         float(at or t))
            else:
                held.pop(task_id, None)
                a.job = None
            out.append(a)
        return out

    def hand_over(self, task_ids: list[str]) -> int:
        """Let the leases of ``task_ids`` (ours) lapse now, for a survivor to adopt
        (graceful shutdown); how many."""
        by_acc: dict[str, list[str]] = defaultdict(list)
        for task_id in task_ids:
            held = self.held(task_id)
            if held is not None:
                by_acc[held.pop(task_id).account_id].append(task_id)
        if not by_acc:
            return 0
        keys = self.keys
        pipe = ScriptPipe(self.r)
        for acc_id, ids in by_acc.items():
            pipe.run(self._hand_over, [keys.leases(acc_id), *(keys.task(acc_id, t) for t in ids)],
                     [self.owner, *ids])
        return sum(int(n) for n in pipe.execute())

    def start_many(self, items: list[tuple[str, str, str, float]]) -> list[bool]:
        """Record (task id, account id, job reference, started at) before each task
        starts upstream: True where we still own the task, one round trip. A task
        we no longer own (adopted elsewhere) is no longer ours to renew either."""
        pipe = ScriptPipe(self.r)
        for task_id, acc_id, job, started in items:
            pipe.run(self._start, [self.keys.task(acc_id, task_id)],
                     [self.owner, job, repr(started)])
        ours = [int(v) == 1 for v in pipe.execute()]
        for (task_id, *_rest), mine in zip(items, ours, strict=True):
            if not mine and (held := self.held(task_id)) is not None:
                held.pop(task_id)
        return ours

    def end_public(self, items: list[tuple[str, str]]) -> list[bool]:
        """P1: public tasks that ended here, (task id, final state: ``completed``,
        ``failed`` or ``cancelled``): each lease dropped and the task hash left in
        that state, by the ``FINISH`` script with no charge and no account fields,
        one round trip. True where the task was still in flight (False: it had
        ended already, e.g. followed to its end by a process that adopted it)."""
        keys = self.keys
        pipe = ScriptPipe(self.r)
        for task_id, state in items:
            self.public.pop(task_id, None)
            pipe.run(self._finish, [keys.acc(PUBLIC), keys.leases(PUBLIC),
                                    keys.task(PUBLIC, task_id)],
                     [task_id, state, "", self.done_ttl, 0])
        return [int(res[0]) == 1 for res in pipe.execute()]


def _body(raw: str) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
