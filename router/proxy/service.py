"""The proxy's task life cycle, independent of HTTP.

``pending`` (routed and waiting to start, or queued because the pool is
saturated, R5) → ``processing`` (running on the upstream) → ``completed`` or
``failed``. Only pending tasks can be cancelled. Every routing decision, charge,
flip and renewal comes from the store, i.e. from ``router.engine`` and
``router.ledger``; this module only sequences them in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.accounts import MS_PER_SECOND, Account, Setting, Status
from router.decision import Decision, Notification, Outcome
from router.errors import NotInFlight, PoolSaturated, http_status
from router.proxy.envelope import envelope, error_envelope, route_error, task_error
from router.proxy.queue import LocalQueue, TaskQueue
from router.proxy.tasks import Task, account_view, task_data
from router.proxy.upstream import Upstream
from router.proxy.webhooks import WebhookSender, notification_payload, task_payload
from router.stores.base import Store

log = logging.getLogger(__name__)

#: GoAPI notification types for account statuses set through the API (L5).
STATUS_NOTICES: dict[Status, str] = {
    Status.BANNED: "mj_bot_banned",
    Status.CAPTCHA_REQUIRED: "mj_bot_captcha_required",
    Status.SUBSCRIPTION_EXPIRED: "mj_bot_subscription_expired",
}

ROUTE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


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
        self.upstream = upstream
        self.config = config
        self.tasks: dict[str, Task] = {}  # tasks this process routed
        self.queue: TaskQueue = queue if queue is not None else LocalQueue()
        self.counters: dict[str, int] = {}
        self.route_hist = [0] * (len(ROUTE_BUCKETS) + 1)
        self.route_sum = 0.0
        self.webhooks: WebhookSender | None = None
        self._wake: asyncio.Event | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._runners: set[asyncio.Task[None]] = set()
        self._finished: list[str] = []
        self._batch: list[tuple[Task, asyncio.Future[tuple[int, dict[str, Any]]]]] = []
        self._flush_scheduled = False
        self._done_batch: list[tuple[str, float, asyncio.Future[Outcome]]] = []
        self._done_scheduled = False
        self._records: dict[str, str] = {}
        self._records_scheduled = False

    # -------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.webhooks = WebhookSender(attempts=self.config.webhook_attempts,
                                      backoff=self.config.webhook_backoff)
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._loops = [loop.create_task(self._dispatch_loop()),
                       loop.create_task(self._maintain_loop())]

    async def stop(self) -> None:
        for t in [*self._loops, *self._runners]:
            t.cancel()
        await asyncio.gather(*self._loops, *self._runners, return_exceptions=True)
        if self.webhooks is not None:
            await self.webhooks.close()

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    # ----------------------------------------------------------------- submit
    def _observe(self, dt: float, n: int = 1) -> None:
        self.route_sum += dt * n
        for i, bound in enumerate(ROUTE_BUCKETS):
            if dt <= bound:
                self.route_hist[i] += n
                return
        self.route_hist[-1] += n

    def _route(self, task: Task, now: float) -> Decision:
        t0 = time.perf_counter()
        d = self.store.submit(task.task_id, task.body, now)
        self._observe(time.perf_counter() - t0)
        return d

    def submit(self, body: Any) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/task, one at a time: route now, queue when saturated (R5)."""
        now = time.time()
        task = Task(str(uuid.uuid4()), body, now)
        return self._accept(task, self._route(task, now), now)

    async def submit_async(self, body: Any) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/task under load: submits that arrive in the same turn of
        the event loop are routed together (``Store.submit_many``: one round
        trip to Redis for the batch, the same decisions as one by one)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[int, dict[str, Any]]] = loop.create_future()
        self._batch.append((Task(str(uuid.uuid4()), body, time.time()), fut))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._batch = self._batch, []
        now = time.time()
        try:
            t0 = time.perf_counter()
            decisions = self.store.submit_many([(t.task_id, t.body, None) for t, _ in batch],
                                               now)
            self._observe(time.perf_counter() - t0, len(batch))
            self._count("batches")
            for (task, fut), d in zip(batch, decisions, strict=True):
                if not fut.done():
                    fut.set_result(self._accept(task, d, now))
        except Exception as exc:  # e.g. Redis unreachable: every waiter gets a 500
            for _task, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)

    async def _complete_async(self, task_id: str, gpu_seconds: float) -> Outcome:
        """Completions that finish in the same turn of the event loop are charged
        together (``Store.complete_many``), each exactly as ``complete`` would."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Outcome] = loop.create_future()
        self._done_batch.append((task_id, gpu_seconds, fut))
        if not self._done_scheduled:
            self._done_scheduled = True
            loop.call_soon(self._flush_done)
        return await fut

    def _flush_done(self) -> None:
        self._done_scheduled = False
        batch, self._done_batch = self._done_batch, []
        try:
            results = self.store.complete_many([(t, g) for t, g, _ in batch], time.time())
            for (_t, _g, fut), res in zip(batch, results, strict=True):
                if fut.done():
                    continue
                if isinstance(res, Exception):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)
        except Exception as exc:
            for _t, _g, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)

    def _accept(self, task: Task, d: Decision, now: float) -> tuple[int, dict[str, Any]]:
        body = task.body
        if d.error is None:
            self._count("routed")
            task.decision = d
            self._register(task)
            self._start(task)
            return 200, envelope(200, task_data(task), "success")
        if d.error.code == PoolSaturated.code:
            if self.queue.length() >= self.config.queue_limit:
                self._count("rejected_queue_full")
                return _answer(error_envelope("queue_full",
                                              f"the proxy queue is full ({self.config.queue_limit} "
                                              "tasks waiting); retry later"))
            self._count("queued")
            task.queued = True
            self._save(task)
            self.queue.push(task.task_id, json.dumps({"body": body, "created_at": now}))
            return 200, envelope(200, task_data(task), "success")
        self._count(f"rejected_{d.error.code}")
        task.status = "failed"
        task.error = route_error(d.error)
        status = http_status(d.error.code)
        return status, envelope(status, task_data(task), f"{d.error.code}: {d.error.message}")

    def _register(self, task: Task) -> None:
        self.tasks[task.task_id] = task
        self._save(task)

    def _save(self, task: Task) -> None:
        """Write the task record for every process to read; writes of one turn of
        the event loop go together (one pipeline for the Redis store)."""
        self._records[task.task_id] = json.dumps(task_data(task))
        if not self._records_scheduled:
            self._records_scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self._flush_records)
            except RuntimeError:  # no loop (direct calls in tests): write now
                self._flush_records()

    def _flush_records(self) -> None:
        self._records_scheduled = False
        records, self._records = self._records, {}
        if records:
            self.store.put_records(records)

    def _start(self, task: Task) -> None:
        runner = asyncio.get_running_loop().create_task(self._run(task))
        self._runners.add(runner)
        runner.add_done_callback(self._runners.discard)

    async def _run(self, task: Task) -> None:
        d = task.decision
        assert d is not None and d.effective_mode is not None
        try:
            if self.config.start_delay > 0:
                await asyncio.sleep(self.config.start_delay)
            if task.status != "pending":
                return  # cancelled while pending
            task.status = "processing"
            task.started_at = time.time()
            account = d.account_id or "public"
            res = await self.upstream.run(task.task_id, task.task_type, d.effective_mode,
                                          account, task.body)
            now = time.time()
            task.ended_at = now
            if res.ok:
                task.gpu_seconds = res.gpu_seconds
                task.output = res.output
                task.status = "completed"
                self._count("completed")
            else:
                task.status = "failed"
                task.error = task_error("upstream_failed", res.error or "the upstream failed")
                self._count("failed")
            if d.account_id is not None:  # P1 public tasks are not ours to charge
                try:
                    if res.ok:
                        out = await self._complete_async(task.task_id, res.gpu_seconds)
                        task.charged_seconds = out.charged_ms / MS_PER_SECOND
                    else:
                        self.store.fail(task.task_id, now)
                except NotInFlight as exc:
                    self._count("finish_not_in_flight")
                    task.note = f"not charged: {exc.message}"
                    log.warning("task %s: %s", task.task_id, exc.message)
            self._finished_task(task)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task %s crashed in the proxy", task.task_id)
            task.status = "failed"
            task.error = task_error("proxy_error", "internal error while running the task")
            with contextlib.suppress(Exception):
                self.store.fail(task.task_id, time.time())
            self._finished_task(task)

    def _finished_task(self, task: Task) -> None:
        task.ended_at = task.ended_at or time.time()
        self._save(task)
        endpoint, secret = task.webhook()
        if endpoint and self.webhooks is not None:
            self.webhooks.send(endpoint, secret, task_payload(task_data(task)))
        self._notify_drained()
        if self._wake is not None:
            self._wake.set()
        self._finished.append(task.task_id)
        if len(self._finished) > self.config.keep_finished:
            drop = self._finished[: len(self._finished) // 2]
            del self._finished[: len(drop)]
            for task_id in drop:
                self.tasks.pop(task_id, None)

    # ----------------------------------------------------------------- queue
    def dispatch(self, max_routed: int = 256) -> int:
        """Route waiting tasks from the head of the (shared) line, FIFO; a task
        still saturated goes back to its place, and the pass ends there."""
        routed = 0
        while routed < max_routed:
            claimed = self.queue.claim(8)
            if not claimed:
                break
            now = time.time()
            saturated = False
            for task_id, payload in claimed:
                if saturated:
                    self.queue.put_back(task_id)
                    continue
                if self.store.routed(task_id):  # routed by a process that then died
                    self.queue.done(task_id)
                    continue
                task = self._from_payload(task_id, payload)
                d = self._route(task, now)
                if d.error is None:
                    self.queue.done(task_id)
                    task.queued = False
                    task.decision = d
                    routed += 1
                    self._count("routed")
                    self._register(task)
                    self._start(task)
                elif d.error.code == PoolSaturated.code:
                    self.queue.put_back(task_id)
                    saturated = True
                else:
                    self.queue.done(task_id)
                    task.queued = False
                    task.status = "failed"
                    task.error = route_error(d.error)
                    self._count(f"rejected_{d.error.code}")
                    self._finished_task(task)
            if saturated:
                break
        return routed

    def _from_payload(self, task_id: str, payload: str) -> Task:
        data = json.loads(payload) if payload else {}
        return Task(task_id, data.get("body"), float(data.get("created_at", time.time())),
                    queued=True)

    async def _dispatch_loop(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.dispatch_interval)
            self._wake.clear()
            try:
                self.dispatch()
            except Exception:
                log.exception("dispatching queued tasks failed; retrying")
                await asyncio.sleep(self.config.dispatch_interval)

    async def _maintain_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.maintain_interval)
            try:
                self.maintain()
            except Exception:
                log.exception("store maintenance failed; retrying")

    def maintain(self) -> list[str]:
        """Leases: extend ours, release dead processes' (their tasks end ``failed``,
        not charged, L1); expired queue claims go back in line."""
        self.queue.sweep()
        released = self.store.maintain(time.time())
        for task_id in released:
            self._lease_expired(task_id)
        self._count("leases_expired", len(released))
        self._notify_drained()
        return released

    def _lease_expired(self, task_id: str) -> None:
        error = task_error("lease_expired", "the proxy process running this task stopped; its "
                           "reservation expired and nothing was charged; submit it again")
        task = self.tasks.get(task_id)
        if task is not None:
            log.warning("task %s lost its reservation (lease expired)", task_id)
            task.status, task.error = "failed", error
            self._save(task)
            return
        raw = self.store.get_record(task_id)
        if raw is None:
            return
        data = json.loads(raw)
        if data.get("status") in ("pending", "processing"):
            data["status"], data["error"] = "failed", error
            self.store.put_record(task_id, json.dumps(data))

    # ------------------------------------------------------------------- read
    def get(self, task_id: str) -> dict[str, Any] | None:
        task = self.tasks.get(task_id)
        if task is not None:
            return task_data(task)
        raw = self._records.get(task_id) or self.store.get_record(task_id)
        return None if raw is None else dict(json.loads(raw))

    def cancel(self, task_id: str) -> tuple[int, dict[str, Any]]:
        """DELETE /api/v1/task/{id}: only pending tasks (waiting in line, or routed
        and not yet started)."""
        task = self.tasks.get(task_id)
        if task is None:
            payload = self.queue.remove(task_id)
            if payload is not None:
                task = self._from_payload(task_id, payload)
            else:
                data = self.get(task_id)
                if data is None:
                    return _answer(error_envelope("task_not_found",
                                                  f"no task with id {task_id}"))
                if data.get("status") != "pending":
                    return _answer(error_envelope(
                        "not_pending", "only pending tasks can be cancelled; task "
                        f"{task_id} is {data.get('status')}"))
                return _answer(error_envelope("not_owned",
                                              f"task {task_id} is being started by another "
                                              "proxy process; retry the cancel in a moment"))
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
        self._count("cancelled")
        self._finished_task(task)
        return 200, envelope(200, task_data(task), "success")

    # --------------------------------------------------------------- accounts
    def accounts(self) -> list[dict[str, Any]]:
        return [account_view(a, self.store.secret_names(a.id)) for a in self.store.accounts()]

    def set_account(self, account_id: str, status: Status | None, setting: Setting | None,
                    secrets: Mapping[str, str]) -> dict[str, Any]:
        now = time.time()
        acc: Account | None = None
        if status is not None:
            acc = self.store.set_status(account_id, status, now)
            kind = STATUS_NOTICES.get(status)
            if kind:
                self._notify(kind, now, f"account {account_id} is now {status.value}",
                             {"account_id": account_id, "bot_id": acc.bot_id})
        if setting is not None:
            acc = self.store.set_setting(account_id, setting, now)
        for name, value in secrets.items():
            self.store.set_secret(account_id, name, value)
        self._notify_drained()
        if self._wake is not None:
            self._wake.set()
        for a in self.store.accounts():
            if a.id == account_id:
                return account_view(a, self.store.secret_names(a.id))
        raise KeyError(account_id)

    # ---------------------------------------------------------- notifications
    def _notify(self, kind: str, at: float, message: str, detail: dict[str, Any]) -> None:
        self._count(f"notify_{kind}")
        log.info("notification %s: %s", kind, message)
        if self.config.notify_url and self.webhooks is not None:
            self.webhooks.send(self.config.notify_url, self.config.notify_secret,
                               notification_payload(kind, at, message, detail))

    def _notify_drained(self) -> None:
        notes, _renewals = self.store.drain()
        for note in notes:
            self._notify(*_describe(note, self.store))


def _answer(content: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return int(content["code"]), content


def _describe(note: Notification, store: Store) -> tuple[str, float, str, dict[str, Any]]:
    detail: dict[str, Any] = {}
    if note.account_id is not None:
        detail["account_id"] = note.account_id
        for a in store.accounts():
            if a.id == note.account_id:
                detail.update({"bot_id": a.bot_id, "subscription_plan": a.plan.value})
    messages = {
        "mj_bot_no_fasthour": f"account {note.account_id} ran out of fast time and was switched "
                              "to relax (L3)",
        "no_active_mj_bot": "no account in the pool is active (E1)",
        "backups_activated": "backup accounts were activated (B1)",
    }
    return note.type, note.at, messages.get(note.type, note.type), detail


