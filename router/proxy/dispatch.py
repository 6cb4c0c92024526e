"""``Dispatcher``: the line of tasks waiting for capacity (``pool_saturated``, R5).

A saturated task waits in the (possibly shared) queue as ``pending``; the
dispatcher routes waiting tasks from the head of the line, FIFO, whenever
capacity may have come back (a task finished, an account changed) and at a
fixed interval. A task still saturated goes back to its place, and the pass
ends there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

import redis

from router.decision import Decision
from router.errors import PoolSaturated
from router.proxy.metrics import Counters
from router.proxy.queue import TaskQueue
from router.proxy.tasks import Task
from router.stores.base import AccountStore

log = logging.getLogger(__name__)

CLAIM = 8  # tasks claimed from the head of the line at a time


class Dispatcher:
    """Queues saturated tasks and routes them in arrival order."""

    def __init__(self, queue: TaskQueue, store: AccountStore, counters: Counters, *,
                 limit: int, route: Callable[[Task, float], Decision],
                 routed: Callable[[Task], None],
                 rejected: Callable[[Task, Decision], None]) -> None:
        self.queue = queue
        self.store = store
        self.counters = counters
        self.limit = limit
        self.route = route
        self.routed = routed
        self.rejected = rejected
        self._wake = asyncio.Event()
        self._stopped = False
        self._joining: list[tuple[str, str]] = []  # (task id, payload) to push, in order

    def full(self) -> bool:
        return self.queue.length() + len(self._joining) >= self.limit

    def enqueue(self, task: Task, now: float) -> None:
        """Queue a saturated task; it joins the line at ``join``."""
        task.queued = True
        data = {"body": task.body, "created_at": now}
        if task.reroutes:  # H4: a moved task keeps its creation time and its moves
            data.update(created_at=task.created_at, reroutes=task.reroutes)
        self._joining.append((task.task_id, json.dumps(data)))

    @property
    def joining(self) -> bool:
        return bool(self._joining)

    def join(self) -> None:
        """Push the queued tasks into the (shared) line, in order. The caller writes
        their records first: once in line, another process may route, run and
        finish a task, and its newer record must not be overwritten by ours."""
        joining, self._joining = self._joining, []
        for task_id, payload in joining:
            self.queue.push(task_id, payload)

    def remove(self, task_id: str) -> Task | None:
        """Take a waiting task out of the line (cancel); None when it is not waiting."""
        payload = self.queue.remove(task_id)
        return None if payload is None else _from_payload(task_id, payload)

    def wake(self) -> None:
        """Capacity may have come back: dispatch soon."""
        self._wake.set()

    def stop(self) -> None:
        """End ``run`` (graceful shutdown: the shared line is left to the others).
        A flag, not only a cancel: ``asyncio.wait_for`` in Python 3.11 can swallow
        a cancel that lands as its wait ends."""
        self._stopped = True
        self._wake.set()

    def dispatch(self, max_routed: int = 256) -> int:
        """Route from the head of the line until a task is still saturated; how many
        were routed."""
        routed = 0
        while routed < max_routed:
            claimed = self.queue.claim(CLAIM)
            if not claimed:
                break
            now = time.time()
            saturated = False
            for task_id, payload in claimed:
                if saturated:
                    self.queue.put_back(task_id)
                elif not (task := _from_payload(task_id, payload)).reroutes \
                        and self.store.routed(task_id):  # routed by a process that then died
                    self.queue.done(task_id)  # (a task re-routed by H4 was routed before)
                else:
                    outcome = self._route_one(task, now)
                    saturated = outcome is None
                    routed += bool(outcome)
            if saturated:
                break
        return routed

    def _route_one(self, task: Task, now: float) -> bool | None:
        """True: routed; False: rejected; None: still saturated (back in line)."""
        d = self.route(task, now)
        if d.error is not None and d.error.code == PoolSaturated.code:
            self.queue.put_back(task.task_id)
            return None
        self.queue.done(task.task_id)
        task.queued = False
        if d.error is None:
            task.decision = d
            self.routed(task)
            return True
        self.rejected(task, d)
        return False

    async def run(self, interval: float) -> None:
        """Dispatch when woken, or every ``interval`` seconds."""
        wake = self._wake
        while not self._stopped:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), interval)
            wake.clear()
            if self._stopped:
                return
            try:
                self.dispatch()
            except redis.RedisError as exc:  # a stalled or restarting store: wait for it
                log.warning("dispatching queued tasks: the store did not answer (%s); "
                            "retrying", exc)
                await asyncio.sleep(interval)
            except Exception:
                log.exception("dispatching queued tasks failed; retrying")
                await asyncio.sleep(interval)


def _from_payload(task_id: str, payload: str) -> Task:
    data = json.loads(payload) if payload else {}
    return Task(task_id, data.get("body"), float(data.get("created_at", time.time())),
                queued=True, reroutes=list(data.get("reroutes") or []))
