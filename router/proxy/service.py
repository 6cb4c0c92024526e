"""The proxy's task life cycle, independent of HTTP.

``pending`` (routed and waiting to start, or queued because the pool is
saturated, R5) → ``processing`` (running on the upstream) → ``completed`` or
``failed``. Only pending tasks can be cancelled. Every routing decision, charge,
flip and renewal comes from the store, i.e. from ``router.engine`` and
``router.ledger``; ``TaskService`` only sequences them in real time, with one
helper per job: ``TaskRecords`` (task records), ``Dispatcher`` (the waiting
line), ``TaskRunner`` (running and charging), ``Notifier`` (webhooks),
``AccountAdmin`` (account endpoints), ``Rerouter`` (a task the upstream refused
for lack of fast time moves, H4), ``LineEstimate`` (a waiting task's place and
estimated start, R5).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from router.accounts import Mode, Setting, Status
from router.decision import Decision
from router.errors import NotInFlight, PoolSaturated, http_status
from router.proxy.admin import AccountAdmin
from router.proxy.batcher import TurnBatcher
from router.proxy.dispatch import Dispatcher
from router.proxy.envelope import envelope, error_envelope, route_error, task_error
from router.proxy.metrics import Counters, Histogram
from router.proxy.notices import Notifier
from router.proxy.queue import LocalQueue, TaskQueue
from router.proxy.records import TaskRecords
from router.proxy.reroute import Rerouter
from router.proxy.runner import TaskRunner
from router.proxy.tasks import Task, task_data
from router.proxy.upstream import Upstream
from router.proxy.waiting import LineEstimate
from router.stores.base import Adoption, Store
from router.timeutil import parse_time

log = logging.getLogger(__name__)

Answer = tuple[int, dict[str, Any]]  # HTTP status and GoAPI envelope


@dataclass(slots=True)
class ProxyConfig:
    """Settings of one ``byoa serve`` process."""

    api_key: str
    max_body_bytes: int = 64 * 1024
    start_delay: float = 0.05  # real seconds a routed task stays pending (cancellable)
    queue_limit: int = 100_000
    dispatch_interval: float = 0.05
    maintain_interval: float = 1.0
    notify_url: str | None = None
    notify_secret: str = ""
    webhook_attempts: int = 5
    webhook_backoff: float = 0.5
    keep_finished: int = 200_000  # finished task records kept in this process


class TaskService:
    """Routes, queues, runs and finishes tasks; owns the background loops."""

    def __init__(self, store: Store, upstream: Upstream, config: ProxyConfig,
                 queue: TaskQueue | None = None) -> None:
        self.store = store
        self.config = config
        self.counters = Counters()
        self.route_latency = Histogram()
        self.records = TaskRecords(store, config.keep_finished)
        self.notifier = Notifier(store, self.counters, url=config.notify_url,
                                 secret=config.notify_secret,
                                 attempts=config.webhook_attempts,
                                 backoff=config.webhook_backoff)
        self.runner = TaskRunner(store, upstream, self.counters,
                                 start_delay=config.start_delay, finished=self._finished,
                                 dropped=self.records.forget, save=self.records.save,
                                 flush=self.records.flush)
        self.line = Dispatcher(queue if queue is not None else LocalQueue(), store,
                               self.counters, limit=config.queue_limit, route=self._route,
                               routed=self._routed, rejected=self._rejected)
        self.admin = AccountAdmin(store, self.notifier, self.line.wake)
        self.rerouter = Rerouter(store, self.notifier, self.counters, routed=self._routed,
                                 queue=self._requeue, rejected=self._rejected,
                                 finished=self._finished)
        self.runner.refused = self.rerouter.take  # H4
        self.waiting = LineEstimate(self.queue.position)
        self.records.placement = self.waiting.placement  # R5: place and estimated start
        self._submits: TurnBatcher[Task, Answer] = TurnBatcher(self._submit_many,
                                                               name="submits")
        self._loops: list[asyncio.Task[None]] = []
        self.draining = False  # graceful shutdown: new submits get 503 shutting_down

    @property
    def queue(self) -> TaskQueue:
        return self.line.queue

    # -------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.notifier.start()
        loop = asyncio.get_running_loop()
        self._loops = [loop.create_task(self.line.run(self.config.dispatch_interval)),
                       loop.create_task(self._maintain_loop())]

    async def stop(self) -> None:
        self.line.stop()
        for t in self._loops:
            t.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        await self.runner.stop()
        await self.notifier.close()

    async def drain(self, seconds: float) -> int:
        """Graceful shutdown: stop accepting, let running tasks finish for up to
        ``seconds``, then hand the rest over (their leases lapse now, so another
        process adopts them at its next maintenance pass: routed again if they had
        not started, followed upstream if they had). Queued tasks stay in the shared
        line for the other processes. How many tasks were handed over.

        With one process on a local line (in memory) there is nobody to hand over
        to: queued tasks keep being dispatched until the deadline."""
        self.draining = True
        shared = not isinstance(self.queue, LocalQueue)
        if shared:
            self.line.stop()  # the dispatcher: the line is left to the others
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and (self.runner.running() or (
                not shared and self.queue.length())):
            await asyncio.sleep(0.02)
        self.line.stop()
        for t in self._loops[1:]:
            t.cancel()  # no more maintenance: we must not adopt what we hand over
        await asyncio.gather(*self._loops, return_exceptions=True)
        running = self.runner.running()
        left = [t for t in running if t.status in ("pending", "processing")]
        if running:
            log.warning("shutting down: %d tasks still running after %.1f s (%s)", len(running),
                        seconds, ", ".join(sorted({t.status for t in running})))
        await self.runner.stop()
        ours = [t.task_id for t in left if t.decision is not None
                and t.decision.account_id is not None]
        self.records.flush()
        n = self.store.hand_over(ours)
        for task in left:
            self.records.forget(task)
        self.counters.count("handed_over", n)
        log.warning("shutting down: handed %d tasks over to the other processes", n)
        return n

    async def _maintain_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.maintain_interval)
            try:
                self.maintain()
            except redis.RedisError as exc:  # a stalled or restarting store: wait for it
                log.warning("store maintenance: the store did not answer (%s); retrying", exc)
            except Exception:
                log.exception("store maintenance failed; retrying")

    # ----------------------------------------------------------------- submit
    def _route(self, task: Task, now: float) -> Decision:
        t0 = time.perf_counter()
        d = self.store.submit(task.task_id, task.body, now)
        self.route_latency.observe(time.perf_counter() - t0)
        return d

    def submit(self, body: Any) -> Answer:
        """POST /api/v1/task, one at a time: route now, queue when saturated (R5)."""
        now = time.time()
        task = Task(str(uuid.uuid4()), body, now)
        answer = self._accept(task, self._route(task, now), now)
        self._let_queued_in()
        return answer

    async def submit_async(self, body: Any) -> Answer:
        """POST /api/v1/task under load: submits that arrive in the same turn of
        the event loop are routed together (``Store.submit_many``: one round
        trip to Redis for the batch, the same decisions as one by one)."""
        if self.draining:
            return _answer(error_envelope("shutting_down", "this proxy process is shutting "
                                          "down; send the task to another one"))
        return await self._submits.call(Task(str(uuid.uuid4()), body, time.time()))

    def _submit_many(self, tasks: list[Task]) -> list[Answer | Exception]:
        now = time.time()
        t0 = time.perf_counter()
        decisions = self.store.submit_many([(t.task_id, t.body, None) for t in tasks], now)
        self.route_latency.observe(time.perf_counter() - t0, len(tasks))
        self.counters.count("batches")
        answers: list[Answer | Exception] = [
            self._accept(t, d, now) for t, d in zip(tasks, decisions, strict=True)]
        self._let_queued_in()
        return answers

    def _let_queued_in(self) -> None:
        """Queued tasks join the shared line once their records are written."""
        if self.line.joining:
            self.records.flush()
            self.line.join()

    def _accept(self, task: Task, d: Decision, now: float) -> Answer:
        if d.error is None:
            task.decision = d
            self._routed(task)
        elif d.error.code != PoolSaturated.code:
            self._count_rejected(task, d)
            status = http_status(d.error.code)
            return status, envelope(status, task_data(task), f"{d.error.code}: {d.error.message}")
        elif self.line.full():
            self.counters.count("rejected_queue_full")
            return _answer(error_envelope("queue_full",
                                          f"the proxy queue is full ({self.config.queue_limit} "
                                          "tasks waiting); retry later"))
        else:
            self.counters.count("queued")
            task.queued = True
            self.records.save(task)
            self.line.enqueue(task, now)
        return 200, envelope(200, task_data(task), "success")

    def _routed(self, task: Task) -> None:
        self.counters.count("routed")
        self.records.register(task)
        self.runner.start(task)

    def _requeue(self, task: Task, now: float) -> None:
        """H4: a re-routed task that found no room waits in the line (R5), its record
        (with ``meta.reroutes``) written first; the line, not this process, holds it."""
        task.queued = True
        self.records.save(task)
        self.records.forget(task)
        self.line.enqueue(task, now)
        self._let_queued_in()

    def _count_rejected(self, task: Task, d: Decision) -> None:
        assert d.error is not None
        self.counters.count(f"rejected_{d.error.code}")
        task.status = "failed"
        task.error = route_error(d.error)

    def _rejected(self, task: Task, d: Decision) -> None:
        """A waiting task the router now rejects (e.g. its account was disabled)."""
        self._count_rejected(task, d)
        self._finished(task)

    def _finished(self, task: Task) -> None:
        task.ended_at = task.ended_at or time.time()
        self.waiting.finished(task)
        self.records.save(task)
        self.notifier.task_finished(task)
        self.notifier.drain()
        self.line.wake()
        self.records.finished(task)

    # ----------------------------------------------------------------- leases
    def dispatch(self, max_routed: int = 256) -> int:
        """Route waiting tasks from the head of the (shared) line, FIFO."""
        return self.line.dispatch(max_routed)

    def maintain(self) -> list[str]:
        """Leases: extend ours, adopt dead processes' tasks (routed again when they
        had not started, followed upstream when they had); expired queue claims
        go back in line."""
        self.queue.sweep()
        adopted = self.store.maintain(time.time())
        for a in self.store.take_adopted():
            self._adopt(a)
        self.counters.count("adopted", len(adopted))
        if any(n.type == "account_recovered" for n in self.notifier.drain()):
            self.line.wake()  # H1: an account is back, the line may move
        return adopted

    def _adopt(self, a: Adoption) -> None:
        """Take over one task of a stopped process, under its task id."""
        raw = self.store.get_record(a.task_id)
        data: dict[str, Any] = json.loads(raw) if raw else {}
        meta = data.get("meta") or {}
        created = parse_time(meta["created_at"]) if meta.get("created_at") else a.created_at
        task = Task(a.task_id, a.body, created)
        if a.job is None:
            log.warning("task %s adopted before it started: routed again", a.task_id)
            now = time.time()
            d = self._route(task, now)
            if d.error is None:
                task.decision = d
                self._routed(task)
            elif d.error.code == PoolSaturated.code:
                self.counters.count("queued")
                task.queued = True
                self.records.save(task)
                self.line.enqueue(task, now)
                self._let_queued_in()
            else:
                self._rejected(task, d)
            return
        log.warning("task %s adopted while running: following job %s", a.task_id, a.job)
        task.decision = _decision(a, meta)
        task.status = "processing"
        task.started_at = a.started_at
        self.records.register(task)
        self.runner.resume(task, a.job)

    # ------------------------------------------------------------------- read
    def get(self, task_id: str) -> dict[str, Any] | None:
        return self.records.get(task_id)

    async def get_async(self, task_id: str) -> dict[str, Any] | None:
        """GET /api/v1/task/{id}: a record of another process is read off the event loop."""
        return await self.records.fetch(task_id)

    def cancel(self, task_id: str) -> Answer:
        """DELETE /api/v1/task/{id}: only pending tasks (waiting in line, or routed
        and not yet started)."""
        task = self.records.local(task_id)
        if task is None:
            task = self.line.remove(task_id)
            if task is None:
                return self._not_cancellable(task_id)
        elif task.status != "pending":
            return _answer(error_envelope("not_pending",
                                          f"only pending tasks can be cancelled; task {task_id} "
                                          f"is {task.status}"))
        else:
            try:
                self.store.cancel(task_id, time.time())
            except NotInFlight as exc:
                log.warning("cancel %s: %s", task_id, exc.message)
        task.queued = False
        task.status = "failed"
        task.error = task_error("cancelled", "cancelled by the user before it started")
        self.counters.count("cancelled")
        self._finished(task)
        return 200, envelope(200, task_data(task), "success")

    def _not_cancellable(self, task_id: str) -> Answer:
        """Why a task that is neither ours nor waiting in line cannot be cancelled."""
        data = self.get(task_id)
        if data is None:
            return _answer(error_envelope("task_not_found", f"no task with id {task_id}"))
        if data.get("status") != "pending":
            return _answer(error_envelope(
                "not_pending", "only pending tasks can be cancelled; task "
                f"{task_id} is {data.get('status')}"))
        return _answer(error_envelope("not_owned",
                                      f"task {task_id} is being started by another "
                                      "proxy process; retry the cancel in a moment"))

    # --------------------------------------------------------------- accounts
    def accounts(self) -> list[dict[str, Any]]:
        return self.admin.accounts()

    def set_account(self, account_id: str, status: Status | None, setting: Setting | None,
                    secrets: Mapping[str, str], *, until: str | None = None) -> dict[str, Any]:
        return self.admin.set_account(account_id, status, setting, secrets, until=until)


def _decision(a: Adoption, meta: dict[str, Any]) -> Decision:
    """The routing decision of an adopted running task, as its record shows it."""
    def mode(key: str) -> Mode:
        value = meta.get(key)
        return Mode(value) if isinstance(value, str) and value else a.mode

    return Decision(a.task_id, pool="private", account_id=a.account_id,
                    requested_mode=mode("requested_mode"), mode_source=meta.get("mode_source"),
                    effective_mode=a.mode, fallback=bool(meta.get("fallback", False)),
                    explanation=meta.get("explanation"))


def _answer(content: dict[str, Any]) -> Answer:
    return int(content["code"]), content
