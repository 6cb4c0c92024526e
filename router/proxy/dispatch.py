"""``Dispatcher``: the line of tasks waiting for capacity (``pool_saturated``, R5).

A saturated task waits in the (possibly shared) queue as ``pending``; the
dispatcher routes waiting tasks from the head of the line, FIFO, whenever
capacity may have come back (a task finished, an account changed) and at a
fixed interval. A task still saturated goes back to its place, and the pass
ends there. The line's reads and writes and the routing run on the store's
thread (``StoreCalls``); what follows a decision (the task starts or is
rejected) runs on the event loop.
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
from router.proxy.storecalls import StoreCalls, StoreUnavailable
from router.proxy.tasks import Task
from router.stores.base import AccountStore

log = logging.getLogger(__name__)

CLAIM = 8  # tasks claimed from the head of the line at a time


class Dispatcher:
    """Queues saturated tasks and routes them in arrival order."""

    def __init__(self, queue: TaskQueue, store: AccountStore, counters: Counters, *,
                 limit: int, route: Callable[[Task, float], Decision],
                 routed: Callable[[Task], None],
                 rejected: Callable[[Task, Decision], None],
                 calls: StoreCalls | None = None) -> None:
        self.queue = queue
        self.calls = calls or StoreCalls(remote=False)
        self.seen_length = 0  # the shared line's length when a store call last read it
        self.store = store
        self.counters = counters
        self.limit = limit
        self.route = route
        self.routed = routed
        self.rejected = rejected
        self._wake = asyncio.Event()
        self._stopped = False
        self._joining: list[tuple[str, str]] = []  # (task id, payload) to push, in order

    def length(self) -> int:
        """Tasks in line: counted now for a local store, else as last read (the
        event loop never waits for Redis)."""
        return self.seen_length if self.calls.remote else self.queue.length()

    def read_length(self) -> int:
        """In a store call: read the line's length (``length`` answers it)."""
        self.seen_length = self.queue.length()
        return self.seen_length

    def full(self) -> bool:
        return self.length() + len(self._joining) >= self.limit

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
        if joining:  # queued after the records, a store call; retried after a stall
            self.calls.durable(self._push, joining).add_done_callback(_logged)

    def _push(self, joining: list[tuple[str, str]]) -> None:
        for task_id, payload in joining:
            self.queue.push(task_id, payload)
        self.seen_length += len(joining)

    async def remove(self, task_id: str) -> Task | None:
        """Take a waiting task out of the line (cancel); None when it is not waiting."""
        payload = await self.calls.call(self.queue.remove, task_id)
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

    async def dispatch(self, max_routed: int = 256) -> int:
        """Route from the head of the line until a task is still saturated; how many
        were routed."""
        decided = await self.calls.call(self._take, max_routed)
        for task, d in decided:
            task.queued = False
            if d.error is None:
                task.decision = d
                self.routed(task)
            else:
                self.rejected(task, d)
        return sum(d.error is None for _task, d in decided)

    def _take(self, max_routed: int) -> list[tuple[Task, Decision]]:
        """In a store call: claim and route from the head of the line; the tasks
        that left it, each with its decision (routed or rejected), in order."""
        decided: list[tuple[Task, Decision]] = []
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
                    d = self.route(task, now)
                    saturated = d.error is not None and d.error.code == PoolSaturated.code
                    if saturated:
                        self.queue.put_back(task_id)
                    else:
                        self.queue.done(task_id)
                        decided.append((task, d))
                        routed += d.error is None
            if saturated:
                break
        self.read_length()
        return decided

    def _nothing_known_waiting(self, since_last: float, interval: float) -> bool:
        """Woken with the shared line empty when last read, nothing joining it, and
        the last pass less than ``interval`` ago: the pass is left to the next tick.
        (A finished task wakes the line; on Redis each pass costs two round trips,
        which at a low request rate were a pass per finished task. A task another
        process queued is still dispatched within ``interval``.)"""
        return (self.calls.remote and self.seen_length == 0 and not self._joining
                and since_last < interval)

    async def run(self, interval: float) -> None:
        """Dispatch when woken, or every ``interval`` seconds."""
        wake = self._wake
        last = -float("inf")
        while not self._stopped:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), interval)
            woken = wake.is_set()
            wake.clear()
            if self._stopped:
                return
            now = time.monotonic()
            if woken and self._nothing_known_waiting(now - last, interval):
                continue
            last = now
            try:
                await self.dispatch()
            except StoreUnavailable:  # said once by StoreCalls; its probe watches
                await self.calls.wait_up()
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


def _logged(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("joining the line: %s", done.exception())
