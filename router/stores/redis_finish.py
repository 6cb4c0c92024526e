"""``Finisher``: complete, fail and cancel in Redis, each charged once (L1).

The ledger's own ``complete``/``fail`` runs on the account in the mirror and
the result is written by one script (``scripts.FINISH``) with a compare-and-set
on the account's ``lver``; a conflict returns the fresh account and the rule
runs again, so a flip (L3) happens once however many processes see it. A task
this process reserved is finished from the mirror (one round trip); a task
reserved elsewhere is read first (its account and task hash).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import redis

from router.accounts import Mode, seconds_to_ms
from router.decision import Notification, Outcome
from router.errors import NotInFlight
from router.ledger import InFlight
from router.stores import scripts
from router.stores.codec import changed_fields, ledger_state
from router.stores.redis_keys import Keys, flatten, pairs
from router.stores.redis_mirror import Mirror
from router.stores.redis_pipe import ScriptPipe, pipeline
from router.stores.redis_pool import PoolEvents

log = logging.getLogger(__name__)

FINAL = {"complete": "completed", "fail": "failed", "cancel": "cancelled",
         "exhausted": "rerouted"}


def not_in_flight(verb: str, task_id: str, why: str) -> NotInFlight:
    return NotInFlight(f"cannot {verb} task {task_id}: not in flight ({why})", "L1")


@dataclass(slots=True)
class _Sent:
    """One completion sent in a round of ``complete_many``."""

    index: int
    task: InFlight
    outcome: Outcome
    wrote: bool  # it changed the account's ledger fields (a CAS write)
    notes: list[Notification] = field(default_factory=list)


class Finisher:
    """Finishes tasks in flight: one by one, or completions in rounds."""

    def __init__(self, client: redis.Redis, keys: Keys, mirror: Mirror, pool: PoolEvents,
                 mine: dict[str, InFlight], *, done_ttl: int) -> None:
        self.r = client
        self.keys = keys
        self.mirror = mirror
        self.pool = pool
        self.mine = mine  # tasks this process reserved (shared with the reserver)
        self.done_ttl = done_ttl
        self._finish = client.register_script(scripts.FINISH)

    # ---------------------------------------------------------------- one task
    def finish(self, task_id: str, now: float, verb: str, gpu_ms: int) -> Outcome:
        """Run the ledger's complete/fail for ``verb`` and write it with a CAS."""
        return self.finish_task(task_id, now, verb, gpu_ms)[0]

    def finish_task(self, task_id: str, now: float, verb: str,
                    gpu_ms: int) -> tuple[Outcome, InFlight, list[str]]:
        """``finish``, with the task as it was in flight and the script's answer
        (``[1, lver, body, estimate]``). ``verb`` ``exhausted`` is H4's fail: the
        ledger's ``fail_fast_exhausted`` (no charge, fast time zeroed as a
        correction, L3's flip), written by the same CAS; the task is left
        ``rerouted`` for the caller to route again (a relax task: ``failed``)."""
        self.pool.advance(now)
        named = "fail" if verb == "exhausted" else verb
        task = self.mine.get(task_id) or self._read_in_flight(task_id, named)
        acc_id = task.account_id
        ledger = self.mirror.ledger
        acc = ledger.accounts[acc_id]
        final = FINAL[verb]
        if verb == "exhausted" and task.mode is Mode.RELAX:
            final = "failed"  # H4 does not apply to a relax task: an ordinary fail
        while True:
            in_flight, reserved = acc.in_flight, acc.reserved_ms
            ledger.tasks[task_id] = task
            before = ledger_state(acc)
            n = len(ledger.notifications)
            if verb == "complete":
                out = ledger.complete(task_id, gpu_ms, now)
            elif verb == "exhausted":
                out, _ = ledger.fail_fast_exhausted(task_id, now)
            else:
                out = ledger.fail(task_id, now, verb=verb)
            changed = changed_fields(acc, before)
            try:
                res = self._send(task, final, out, changed)
            except BaseException:  # the mirror ran the rule; Redis may not have
                self.mirror.forget(acc_id)
                raise
            code = int(res[0])
            if code == 1:
                if changed:  # the CAS held: our fields are exactly Redis' at this lver
                    self.mirror.lver[acc_id] = str(res[1])
                self.mirror.wrote(acc_id, int(res[4]))
                self.mine.pop(task_id, None)
                self.pool.evaluate(now)
                return out, task, [str(x) for x in res]
            del ledger.notifications[n:]
            if code == 0:
                acc.in_flight, acc.reserved_ms = in_flight, reserved
                self.mine.pop(task_id, None)
                self.mirror.refresh_account(acc_id)
                why = "its lease expired" if str(res[1]) == "expired" else "already finished"
                raise not_in_flight(named, task_id, why)
            log.debug("%s of %s raced on %s; recomputing", verb, task_id, acc_id)
            self.mirror.write(acc_id, pairs(res[2:]))

    def _send(self, task: InFlight, final: str, out: Outcome, changed: dict[str, str],
              pipe: ScriptPipe | None = None) -> list[str]:
        """The FINISH script for ``task`` (queued on ``pipe`` when given)."""
        keys, acc_id = self.keys, task.account_id
        lver = self.mirror.lver[acc_id] if changed else ""
        keys_ = [keys.acc(acc_id), keys.leases(acc_id), keys.task(acc_id, task.task_id)]
        args: list[str | int] = [task.task_id, final, lver, self.done_ttl, out.charged_ms,
                                 *flatten(changed)]
        if pipe is not None:
            pipe.run(self._finish, keys_, args)
            return []
        res: list[str] = self._finish(keys=keys_, args=args)
        return res

    def _read_in_flight(self, task_id: str, verb: str) -> InFlight:
        """A task reserved by another process: its account and task hash, read now."""
        acc_id = self._locate(task_id, verb)
        pipe = pipeline(self.r)
        pipe.hgetall(self.keys.acc(acc_id))
        pipe.hgetall(self.keys.task(acc_id, task_id))
        h, t = pipe.execute()
        if t.get("state") != "flight":
            why = {"expired": "its lease expired"}.get(t.get("state", ""), "already finished")
            raise not_in_flight(verb, task_id, why)
        self.mirror.write(acc_id, h)
        return InFlight(task_id, acc_id, Mode(t["mode"]), int(t["reserved_ms"]), float(t["at"]))

    def _locate(self, task_id: str, verb: str) -> str:
        raw = self.r.get(self.keys.parent(task_id))
        if raw is None:
            raise not_in_flight(verb, task_id, "never submitted, or rejected")
        acc_id = str(raw).partition("|")[0]
        if not acc_id:
            raise not_in_flight(verb, task_id, "it went to the public pool (P1)")
        if acc_id not in self.mirror.ledger.accounts:
            self.mirror.refresh()
        return acc_id

    # ------------------------------------------------------------- completions
    def complete_many(self, items: list[tuple[str, float]],
                      now: float) -> list[Outcome | NotInFlight]:
        """Complete several tasks, one round trip per round.

        Each completion runs ``Ledger.complete`` on the mirror and is written by
        the same CAS script as ``complete``. An account gets at most one
        fast-time-changing completion per round (a second one would need the
        first's new version), so a conflict can never let a later write slip
        through; conflicts and tasks reserved elsewhere finish one by one.
        """
        self.pool.advance(now)
        out: list[Outcome | NotInFlight | None] = [None] * len(items)
        todo = list(range(len(items)))
        slow: list[int] = []
        while todo:
            todo = self._complete_round(items, todo, now, out, slow)
        for i in slow:
            task_id, gpu = items[i]
            try:
                out[i] = self.finish(task_id, now, "complete", seconds_to_ms(gpu))
            except NotInFlight as exc:
                out[i] = exc
        self.pool.evaluate(now)
        return [o for o in out if o is not None]

    def _complete_round(self, items: list[tuple[str, float]], todo: list[int], now: float,
                        out: list[Outcome | NotInFlight | None], slow: list[int]) -> list[int]:
        """Send one round; the indexes left for the next one, in order."""
        ledger = self.mirror.ledger
        pipe = ScriptPipe(self.r)
        sent: list[_Sent] = []
        busy: set[str] = set()
        later: list[int] = []
        for i in todo:
            task_id, gpu = items[i]
            task = self.mine.get(task_id)
            if task is None:
                slow.append(i)
                continue
            acc = ledger.accounts[task.account_id]
            if acc.id in busy:
                later.append(i)
                continue
            ledger.tasks[task_id] = task
            before = ledger_state(acc)
            n = len(ledger.notifications)
            res = ledger.complete(task_id, seconds_to_ms(gpu), now)
            changed = changed_fields(acc, before)
            if changed:
                busy.add(acc.id)
            self._send(task, "completed", res, changed, pipe)
            sent.append(_Sent(i, task, res, bool(changed), ledger.notifications[n:]))
        dirty: set[str] = set()
        fresh: dict[str, dict[str, str]] = {}  # the account as a conflict returned it
        try:
            results = pipe.execute()
        except BaseException:  # the mirror ran the rules; Redis may not have
            for s in sent:
                self.mirror.forget(s.task.account_id)
            raise
        for s, r in zip(sent, results, strict=True):
            code = int(r[0])
            if code == 1:
                out[s.index] = s.outcome
                self.mine.pop(s.task.task_id, None)
                if s.wrote:
                    self.mirror.lver[s.task.account_id] = str(r[1])
                self.mirror.wrote(s.task.account_id, int(r[4]))
                continue
            for note in s.notes:
                ledger.notifications.remove(note)
            dirty.add(s.task.account_id)
            if code == 0:
                self.mine.pop(s.task.task_id, None)
                why = "its lease expired" if str(r[1]) == "expired" else "already finished"
                out[s.index] = not_in_flight("complete", s.task.task_id, why)
            else:  # -1: the CAS saw another change; the script answered the account
                fresh[s.task.account_id] = pairs(r[2:])
                later.append(s.index)
        for acc_id in dirty:
            # After a completion that changes the account (a CAS), the round sends no
            # other on that account, so the hash a conflict returned is the account as
            # this round left it: no second read.
            if acc_id in fresh:
                self.mirror.write(acc_id, fresh[acc_id])
            else:
                self.mirror.refresh_account(acc_id)
        return sorted(later)
