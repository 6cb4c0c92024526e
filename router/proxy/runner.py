"""``TaskRunner``: runs routed tasks on the upstream and settles their charge.

A routed task stays ``pending`` for the start delay (cancellable), then runs
``processing`` on the upstream and ends ``completed`` or ``failed``. A task on
one of our accounts is then completed (charged once, L1-L3) or failed (room
back, nothing charged) in the store; completions that finish in the same
event-loop turn are charged together (``Store.complete_many``), each exactly as
``complete`` would. Public-pool tasks (P1) are not ours to charge: when one ends,
its record is written and then its lease is dropped (``Store.end_public``,
batched per turn), nothing more.

Before a task on one of our accounts starts, its upstream job reference is
recorded in the store (``Store.start_many``, batched per turn): a process that
adopts the task after we died follows that job (``resume``) and charges it once
(L1). A completed task's record is written before its charge, so a process that
dies in between leaves a completed record and a lease that a survivor adopts:
it follows the finished job and charges it, once. A task another process
adopted meanwhile (our lease had lapsed) does not start here at all, so no task
runs twice. Public-pool tasks hold a lease too (under ``PUBLIC``), so all of this
holds for them as well, without the charge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis

from router.accounts import MS_PER_SECOND
from router.decision import Outcome
from router.errors import NotInFlight
from router.proxy.batcher import TurnBatcher
from router.proxy.envelope import task_error
from router.proxy.metrics import Counters
from router.proxy.storecalls import StoreCalls
from router.proxy.tasks import Task
from router.proxy.upstream import Upstream, UpstreamResult
from router.stores.base import PUBLIC, AccountStore

log = logging.getLogger(__name__)


class TaskRunner:
    """One asyncio task per routed task; ``finished`` is called when it ends."""

    def __init__(self, store: AccountStore, upstream: Upstream, counters: Counters, *,
                 start_delay: float, finished: Callable[[Task], None],
                 dropped: Callable[[Task], None],
                 save: Callable[[Task], None] = lambda task: None,
                 flush: Callable[[], None] = lambda: None,
                 refused: Callable[[Task, UpstreamResult, float], Awaitable[bool]] | None = None,
                 calls: StoreCalls | None = None) -> None:
        self.store = store
        self.calls = calls or StoreCalls(remote=False)
        self.upstream = upstream
        self.counters = counters
        self.start_delay = start_delay
        self.finished = finished
        self.dropped = dropped  # adopted by another process before it started here
        self.save = save  # posts a task's record (written at ``flush``)
        self.flush = flush
        #: H4: takes a result the upstream refused for lack of fast time (True: the
        #: task was re-routed and does not finish here)
        self.refused = refused
        self._running: dict[asyncio.Task[None], Task] = {}
        #: a completed task's record is queued before its charge (a survivor re-charges
        #: none): the records posted this turn are flushed just before each batch
        self._completions: TurnBatcher[tuple[str, float], Outcome] = TurnBatcher(
            self._complete_many, name="completions", calls=calls, durable=True,
            before=lambda: self.flush())
        self._starts: TurnBatcher[tuple[str, str, str, float], bool] = TurnBatcher(
            self._start_many, name="starts", calls=calls, durable=True)
        #: P1: the leases of public tasks that ended, dropped after their records
        self._public_ends: TurnBatcher[tuple[str, str], bool] = TurnBatcher(
            self._end_public, name="public task ends", calls=calls, durable=True,
            before=lambda: self.flush())

    def start(self, task: Task) -> None:
        self._spawn(task, self._run(task))

    def resume(self, task: Task, job: str) -> None:
        """Follow the upstream job of a task adopted from a stopped process."""
        self._spawn(task, self._follow(task, job))

    def _spawn(self, task: Task, coro: Any) -> None:
        runner = asyncio.get_running_loop().create_task(coro)
        self._running[runner] = task
        runner.add_done_callback(self._done)

    def _done(self, runner: asyncio.Task[None]) -> None:
        self._running.pop(runner, None)

    def running(self) -> list[Task]:
        """The tasks this process is running (or about to start)."""
        return list(self._running.values())

    async def stop(self) -> None:
        running = list(self._running)
        for t in running:
            t.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _complete_many(self, items: list[tuple[str, float]]) -> list[Outcome | Exception]:
        return list(self.store.complete_many(items, time.time()))

    def _start_many(self, items: list[tuple[str, str, str, float]]) -> list[bool | Exception]:
        return list(self.store.start_many(items))

    def _end_public(self, items: list[tuple[str, str]]) -> list[bool | Exception]:
        return list(self.store.end_public(items))

    async def _run(self, task: Task) -> None:
        d = task.decision
        assert d is not None and d.effective_mode is not None
        if self.start_delay > 0:
            await asyncio.sleep(self.start_delay)
        if task.status != "pending":
            return  # cancelled while pending
        started = time.time()
        job = self.upstream.reference(task.task_id, task.task_type, d.effective_mode,
                                      d.account_id or "public")
        try:  # a public task (P1) too: it is leased under ``PUBLIC``
            mine = await self._starts.call(
                (task.task_id, d.account_id or PUBLIC, job, started))
        except Exception as exc:
            self._crashed(task, exc)
            return
        if task.status != "pending":
            return  # cancelled while its start was being recorded
        if not mine:
            self.counters.count("adopted_elsewhere")
            log.warning("task %s was adopted by another process before it started here",
                        task.task_id)
            self.dropped(task)
            return
        task.status = "processing"
        task.started_at = started
        await self._follow(task, job)

    async def _follow(self, task: Task, job: str) -> None:
        d = task.decision
        assert d is not None and task.started_at is not None
        try:
            res = await self.upstream.run(job, task.body, task.started_at)
            now = time.time()
            if res.reason is not None and self.refused is not None \
                    and await self.refused(task, res, now):
                return  # H4: re-routed under the same id
            self._record_result(task, res, now)
            if d.account_id is not None:
                if res.ok:
                    self.save(task)  # written before the charge (a survivor re-charges none)
                await self._settle(task, res, now)
            else:  # P1 public tasks are not ours to charge; their lease is dropped
                self.save(task)  # after their record (the batch's ``before``): a process
                # that dies in between leaves a lease, and a survivor follows the job
                await self._public_ends.call((task.task_id, task.status))
            self.finished(task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._crashed(task, exc)

    def _crashed(self, task: Task, exc: Exception) -> None:
        if isinstance(exc, redis.RedisError):  # the store stalled or went away
            log.warning("task %s: the store did not answer (%s); the task fails",
                        task.task_id, exc)
        else:
            log.exception("task %s crashed in the proxy", task.task_id)
        task.status = "failed"
        task.error = task_error("proxy_error", "internal error while running the task")
        d = task.decision
        released: asyncio.Future[Any]
        if d is not None and d.account_id is None:  # P1: only its lease to drop
            released = self.calls.durable(self.store.end_public, [(task.task_id, "failed")])
        else:
            released = self.calls.durable(self.store.fail, task.task_id, time.time())
        released.add_done_callback(_ignore)
        self.finished(task)

    def _record_result(self, task: Task, res: UpstreamResult, now: float) -> None:
        task.ended_at = now
        if res.ok:
            task.gpu_seconds = res.gpu_seconds
            task.output = res.output
            task.status = "completed"
            self.counters.count("completed")
        else:
            task.status = "failed"
            task.error = task_error("upstream_failed", res.error or "the upstream failed")
            self.counters.count("failed")

    async def _settle(self, task: Task, res: UpstreamResult, now: float) -> None:
        """Charge a completed task (L1) or release a failed one's reservation."""
        try:
            if res.ok:
                # its record is queued first (the batch's ``before``: one records
                # batch per turn, not one per task): no charge lands without its record
                out = await self._completions.call((task.task_id, res.gpu_seconds))
                task.charged_seconds = out.charged_ms / MS_PER_SECOND
            else:
                await self.calls.durable(self.store.fail, task.task_id, now)
        except NotInFlight as exc:
            self.counters.count("finish_not_in_flight")
            task.note = f"not charged: {exc.message}"
            log.warning("task %s: %s", task.task_id, exc.message)


def _ignore(done: asyncio.Future[Any]) -> None:
    """A release that needs no answer (the task already failed): its error is logged."""
    if not done.cancelled() and done.exception() is not None:
        log.warning("releasing a failed task: %s", done.exception())
