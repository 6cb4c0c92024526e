"""``PoolEvents``: the time-driven and pool-wide rules, each applied once across processes.

Due renewals (L6/L4) run the ledger's own rule on the freshly read account and
are written with a compare-and-set on its ``lver``: however many processes see
the moment, one renewal happens. Due recoveries of timed statuses (H1) are
claimed by ``scripts.RECOVER``, which flips the status only while the pending
recovery is still the one at that time; the one process that flips it runs the
ledger's own rule on its mirror and announces ``account_recovered``. Both kinds
are applied in time order, a renewal first on ties (L6, H1). Backup activation (B1) and
``no_active_mj_bot`` are claimed with ``SET NX``, so one process announces them;
B1 also clears each backup's ``dormant`` flag, which the reservation script
re-checks.
"""

from __future__ import annotations

import logging

import redis

from router.accounts import Status
from router.stores import scripts
from router.stores.codec import ledger_fields, period_to_json
from router.stores.redis_keys import Keys, flatten
from router.stores.redis_mirror import Mirror
from router.stores.redis_pipe import pipeline

log = logging.getLogger(__name__)


class PoolEvents:
    """Renewals and pool-wide notifications on the mirror, written once."""

    def __init__(self, client: redis.Redis, keys: Keys, mirror: Mirror) -> None:
        self.r = client
        self.keys = keys
        self.mirror = mirror
        self._apply = client.register_script(scripts.APPLY)
        self._recover = client.register_script(scripts.RECOVER)
        self._saw_no_active = False

    def evaluate(self, now: float) -> None:
        """B1 and ``no_active_mj_bot`` by the ledger's rule, claimed once with SET NX.

        B1 wakes the backups for good, so it is decided on fresh state: when the
        mirror says it fires, the pool is re-read and the rule runs again."""
        ledger = self.mirror.ledger
        n = len(ledger.notifications)
        ledger.evaluate_pool(now)
        fresh = ledger.notifications[n:]
        del ledger.notifications[n:]
        if any(note.type == "backups_activated" for note in fresh):
            self.mirror.refresh()  # a backup still dormant in Redis puts the flag back
            if not ledger.backups_active:  # then the rule runs on the fresh pool
                ledger.evaluate_pool(now)
                woke = any(note.type == "backups_activated"
                           for note in ledger.notifications[n:])
                del ledger.notifications[n:]
                if not woke:
                    fresh = [note for note in fresh if note.type != "backups_activated"]
        for note in fresh:
            if note.type == "backups_activated":
                self._wake_backups()
            key = self.keys.backups if note.type == "backups_activated" else self.keys.no_active
            if self.r.set(key, "1", nx=True):
                ledger.notifications.append(note)
            if note.type == "no_active_mj_bot":
                self._saw_no_active = True
        if self._saw_no_active and ledger.active_count > 0:
            self._saw_no_active = False
            self.r.delete(self.keys.no_active)

    def _wake_backups(self) -> None:
        """B1 in Redis: every backup's ``dormant`` flag cleared (the reservation
        script re-checks it), before the pool-wide flag is claimed."""
        pipe = pipeline(self.r)
        for acc in self.mirror.ledger.accounts.values():
            if acc.backup:
                pipe.hset(self.keys.acc(acc.id), "dormant", "0")
                pipe.hincrby(self.keys.acc(acc.id), "ver", 1)  # a change: mirrors re-read it
        pipe.execute()

    def advance(self, now: float) -> None:
        """L6/L4/H1: due renewals and recoveries in time order (a renewal first on
        ties), each applied once across processes, then B1."""
        if now >= self.mirror.next_due:
            while True:
                ledger = self.mirror.ledger
                due = [(a.next_renewal_at, 0, a.id) for a in ledger.accounts.values()
                       if a.next_renewal_at is not None and a.next_renewal_at <= now]
                due += [(at, 1, acc_id) for acc_id, at in ledger.pending_recovery.items()
                        if at <= now]
                if not due:
                    break
                at, kind, acc_id = min(due)
                if kind == 0:
                    self._renew_one(acc_id, now)
                else:
                    self._recover_one(acc_id, at)
            self.mirror.update_next_due()
        self.evaluate(now)

    def _recover_one(self, acc_id: str, at: float) -> None:
        """H1: recover ``acc_id`` at ``at`` if no other process did it first."""
        res = self._recover(keys=[self.keys.acc(acc_id)], args=[repr(at)])
        if int(res[0]) != 1:  # recovered elsewhere, or replaced: believe Redis
            self.mirror.refresh_account(acc_id)
            return
        ledger = self.mirror.ledger
        acc = ledger.accounts[acc_id]
        acc.status = Status(str(res[1]))  # the status it had in Redis
        ledger.pending_recovery[acc_id] = at
        ledger._recover(acc_id, at)  # the H1 rule itself: active, notification
        if self.mirror.lver.get(acc_id) == str(int(res[2]) - 1):
            self.mirror.lver[acc_id] = str(res[2])  # the mirror held the version before
        else:
            self.mirror.refresh_account(acc_id)  # it was stale: read the account afresh

    def _renew_one(self, acc_id: str, now: float) -> None:
        while True:
            h = self.mirror.refresh_account(acc_id)
            ledger = self.mirror.ledger
            acc = ledger.accounts[acc_id]
            if acc.next_renewal_at is None or acc.next_renewal_at > now:
                return  # another process renewed it
            hist_before, ren_before = len(acc.history), len(ledger.renewals)
            ledger._renew(acc, acc.next_renewal_at)  # the L4 rule itself
            entries = [period_to_json(p) for p in acc.history[hist_before:]]
            ok = self._apply(keys=[self.keys.acc(acc_id), self.keys.hist(acc_id)],
                             args=[h["lver"], len(entries), *entries,
                                   *flatten(ledger_fields(acc))])
            del acc.history[hist_before:]
            if int(ok) == 1:
                return
            del ledger.renewals[ren_before:]
            log.debug("renewal of %s raced with another process; re-reading", acc_id)
