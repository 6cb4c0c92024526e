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
estimated start, R5). Every store call goes through ``StoreCalls`` (one worker
thread for Redis): the event loop never waits for a Redis round trip, requests
that need a stalled store get 503 ``store_unavailable`` at once, and
``StoreEpoch`` reports a store that was emptied or replaced.

Tasks of a process that died are adopted once their leases lapse (``maintain``):
routed again under the same id when they had not started, followed upstream
when they had. Tasks on GoAPI's public pool (P1) are leased and adopted the same
way (their store account id is ``PUBLIC``), and handed over at a graceful
shutdown with the rest; they are never charged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from router.accounts import Account, Mode, Setting, Status
from router.decision import Decision
from router.errors import NotInFlight, PoolSaturated, http_status
from router.proxy.admin import AccountAdmin
from router.proxy.batcher import TurnBatcher
from router.proxy.dispatch import Dispatcher
from router.proxy.envelope import envelope, error_envelope, route_error, task_error
from router.proxy.metrics import Counters, Histogram
from router.proxy.notices import Notice, Notifier
from router.proxy.queue import LocalQueue, TaskQueue
from router.proxy.records import TaskRecords
from router.proxy.reroute import Rerouter
from router.proxy.runner import TaskRunner
from router.proxy.storecalls import STALLED, StoreCalls, StoreUnavailable
from router.proxy.storeepoch import StoreEpoch
from router.proxy.tasks import Task, new_task_id, task_data
from router.proxy.upstream import Upstream
from router.proxy.waiting import LineEstimate
from router.stores.base import PUBLIC, Adoption, Store
from router.timeutil import parse_time

log = logging.getLogger(__name__)

Answer = tuple[int, dict[str, Any]]  # HTTP status and GoAPI envelope
Taken = tuple[Task, Adoption, "Decision | None"]  # an adopted task, routed again or not


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
                 queue: TaskQueue | None = None, calls: StoreCalls | None = None,
                 epoch: StoreEpoch | None = None) -> None:
        self.store = store
        self.config = config
        self.epoch = epoch or StoreEpoch(store)
        self.calls = calls = calls or StoreCalls(remote=False)
        self.counters = Counters()
        self.route_latency = Histogram()
        self.records = TaskRecords(store, config.keep_finished, calls)
        self.notifier = Notifier(store, self.counters, url=config.notify_url,
                                 secret=config.notify_secret,
                                 attempts=config.webhook_attempts,
                                 backoff=config.webhook_backoff)
        self.runner = TaskRunner(store, upstream, self.counters,
                                 start_delay=config.start_delay, finished=self._finished,
                                 dropped=self.records.forget, save=self.records.save,
                                 flush=self.records.flush, calls=calls)
        self.line = Dispatcher(queue if queue is not None else LocalQueue(), store,
                               self.counters, limit=config.queue_limit, route=self._route,
                               routed=self._routed, rejected=self._rejected, calls=calls)
        self.admin = AccountAdmin(store, self.notifier, self.line.wake, calls)
        self.rerouter = Rerouter(store, self.notifier, self.counters, routed=self._routed,
                                 queue=self._requeue, rejected=self._rejected,
                                 finished=self._finished, calls=calls)
        self.runner.refused = self.rerouter.take  # H4
        self.waiting = LineEstimate(self.queue.position)
        self.records.placement = self.waiting.placement  # R5: place and estimated start
        self._submits: TurnBatcher[Task, Decision] = TurnBatcher(self._route_many,
                                                                 name="submits", calls=calls)
        self.last_accounts: list[Account] = []  # the last snapshot read (for /metrics)
        self.batches = 0  # submit batches routed (written in a store call)
        self._loops: list[asyncio.Task[None]] = []
        self.draining = False  # graceful shutdown: new submits get 503 shutting_down
        # on a remote store, once per event-loop turn rather than once per task:
        self._join_line = OncePerTurn(self._join_now, calls.remote)  # queued tasks join
        self._drain_soon = OncePerTurn(self.drain_notices, calls.remote)  # notices are read

    @property
    def queue(self) -> TaskQueue:
        return self.line.queue

    # -------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.notifier.start()
        try:
            await self.calls.call(self.epoch.remember)
        except Exception as exc:  # the first maintenance pass reads it again
            log.warning("reading the store's epoch: %s", exc)
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
        self.calls.close()

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
                not shared and self.line.length())):
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
        ours = [t.task_id for t in left if t.decision is not None]  # P1 tasks too
        self.records.flush()
        try:
            n = await self.calls.call(self.store.hand_over, ours)
        except STALLED as exc:  # their leases lapse anyway: adopted all the same
            log.warning("shutting down: the store did not answer (%s); the leases of %d "
                        "tasks lapse on their own", exc, len(ours))
            n = 0
        for task in left:
            self.records.forget(task)
        self.counters.count("handed_over", n)
        log.warning("shutting down: handed %d tasks over to the other processes", n)
        return n

    async def _maintain_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.maintain_interval)
            try:
                await self.maintain()
            except StoreUnavailable:  # said once by StoreCalls; its probe watches
                await self.calls.wait_up()
            except redis.RedisError as exc:  # a stalled or restarting store: wait for it
                log.warning("store maintenance: the store did not answer (%s); retrying", exc)
            except Exception:
                log.exception("store maintenance failed; retrying")

    # ----------------------------------------------------------------- submit
    def _route(self, task: Task, now: float) -> Decision:
        """In a store call: route one task and reserve it."""
        t0 = time.perf_counter()
        d = self.store.submit(task.task_id, task.body, now)
        self.route_latency.observe(time.perf_counter() - t0)
        return d

    async def submit_async(self, body: Any) -> Answer:
        """POST /api/v1/task: route now, queue when saturated (R5). Submits that
        arrive in the same turn of the event loop are routed together in one store
        call (``Store.submit_many``: one round trip to Redis for the batch, the
        same decisions as one by one)."""
        if self.draining:
            return _answer(error_envelope("shutting_down", "this proxy process is shutting "
                                          "down; send the task to another one"))
        task = Task(new_task_id(), body, time.time())
        try:
            d = await self._submits.call(task)
        except STALLED as exc:
            if not isinstance(exc, StoreUnavailable):
                self._release_unanswered(task.task_id)
            raise
        self._count_batches()
        answer = self._accept(task, d, time.time())
        self._let_queued_in()
        return answer

    def _count_batches(self) -> None:
        counted = self.counters.get("batches")
        if self.batches > counted:
            self.counters.count("batches", self.batches - counted)

    def _route_many(self, tasks: list[Task]) -> list[Decision | Exception]:
        """In a store call: one batch of submits."""
        now = time.time()
        t0 = time.perf_counter()
        decisions = self.store.submit_many([(t.task_id, t.body, None) for t in tasks], now)
        self.route_latency.observe(time.perf_counter() - t0, len(tasks))
        self.batches += 1  # counted on the loop (``_count_batches``): one writer per dict
        if any(d.error is not None and d.error.code == PoolSaturated.code for d in decisions):
            self.line.read_length()  # for ``full``, read on the loop
        return list(decisions)

    def _release_unanswered(self, task_id: str) -> None:
        """The store did not answer a submit in time, so the client gets 503 and no
        task id: but Redis may still run the reservation once it continues. Release
        it then (nothing charged, room back), so no task runs that was not accepted."""
        def release() -> None:
            try:
                self.store.cancel(task_id, time.time())
                log.warning("task %s: its reservation landed after the client got 503; "
                            "released", task_id)
            except NotInFlight:
                pass

        self.counters.count("unanswered_submits")
        self.calls.durable(release).add_done_callback(_logged)

    def _let_queued_in(self) -> None:
        """Queued tasks join the shared line once their records are written. On a
        remote store, the tasks queued in one event-loop turn join together at its
        end (one records batch and one push for the turn, not one each)."""
        if self.line.joining:
            self._join_line()

    def _join_now(self) -> None:
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
        self._drain_soon()
        self.line.wake()
        self.records.finished(task)

    def drain_notices(self) -> None:
        """Send the store's notifications (read in a store call)."""
        self.calls.submit(self.notifier.collect).add_done_callback(self._send_notices)

    def _send_notices(self, done: asyncio.Future[list[Notice]]) -> None:
        if done.cancelled() or done.exception() is not None:
            return  # they stay in the store for the next drain
        notices = done.result()
        self.notifier.send(notices)
        if any(kind == "account_recovered" for kind, *_rest in notices):
            self.line.wake()  # H1: an account is back, the line may move

    # ----------------------------------------------------------------- leases
    async def dispatch(self, max_routed: int = 256) -> int:
        """Route waiting tasks from the head of the (shared) line, FIFO."""
        return await self.line.dispatch(max_routed)

    async def maintain(self) -> list[str]:
        """Leases: extend ours, adopt dead processes' tasks (routed again when they
        had not started, followed upstream when they had); expired queue claims
        go back in line. The store's epoch is checked on the way."""
        adopted, taken = await self.calls.call(self._maintain_store)
        for task, a, d in taken:
            self._adopt(task, a, d)
        self.counters.count("adopted", len(adopted))
        self.drain_notices()
        return adopted

    def _maintain_store(self) -> tuple[list[str], list[Taken]]:
        """In a store call: the epoch, leases, the line's expired claims, and
        each adopted task with its decision when it is to be routed again."""
        self.epoch.check()  # StoreLost: not the store we started on, adopt nothing
        self.queue.sweep()
        adopted = self.store.maintain(time.time())
        taken: list[Taken] = []
        for a in self.store.take_adopted():
            raw = self.store.get_record(a.task_id)
            data: dict[str, Any] = json.loads(raw) if raw else {}
            meta = data.get("meta") or {}
            created = (parse_time(meta["created_at"]) if meta.get("created_at")
                       else a.created_at)
            task = Task(a.task_id, a.body, created)
            if a.job is None:
                taken.append((task, a, self._route(task, time.time())))
            else:
                task.decision = _decision(a, meta)
                taken.append((task, a, None))
        return adopted, taken

    def _adopt(self, task: Task, a: Adoption, d: Decision | None) -> None:
        """Take over one task of a stopped process, under its task id."""
        if a.job is None:
            assert d is not None
            log.warning("task %s adopted before it started: routed again", a.task_id)
            now = time.time()
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
        task.status = "processing"
        task.started_at = a.started_at
        self.records.register(task)
        self.runner.resume(task, a.job)

    # ------------------------------------------------------------------- read
    async def get_async(self, task_id: str) -> dict[str, Any] | None:
        """GET /api/v1/task/{id}: a record of another process is read off the event loop."""
        return await self.records.fetch(task_id)

    async def cancel(self, task_id: str) -> Answer:
        """DELETE /api/v1/task/{id}: only pending tasks (waiting in line, or routed
        and not yet started). A routed task is cancelled here at once (it will not
        start); its reservation is released in a store call, after a stall too."""
        task = self.records.local(task_id)
        if task is None:
            task = await self.line.remove(task_id)
            if task is None:
                return await self._not_cancellable(task_id)
        elif task.status != "pending":
            return _answer(error_envelope("not_pending",
                                          f"only pending tasks can be cancelled; task {task_id} "
                                          f"is {task.status}"))
        else:
            task.status = "failed"  # the runner does not start it now
            public = task.decision is not None and task.decision.account_id is None
            self.calls.durable(self._release_cancelled, task_id, time.time(),
                               public).add_done_callback(_logged)
        task.queued = False
        task.status = "failed"
        task.error = task_error("cancelled", "cancelled by the user before it started")
        self.counters.count("cancelled")
        self._finished(task)
        return 200, envelope(200, task_data(task), "success")

    async def withdraw(self, task_id: str) -> None:
        """A task accepted whose answer could not be sent (it failed to encode): the
        client never learns its id, so it is cancelled as if the client had (still
        pending: nothing has run; its reservation is released, nothing charged)."""
        status, _content = await self.cancel(task_id)
        self.counters.count("withdrawn")
        log.error("task %s: its answer could not be encoded; withdrawn (%s)", task_id,
                  "cancelled before it started" if status == 200 else "could not be "
                  "cancelled")

    def _release_cancelled(self, task_id: str, now: float, public: bool) -> None:
        if public:  # P1: nothing reserved, only its lease to drop
            self.store.end_public([(task_id, "cancelled")])
            return
        try:
            self.store.cancel(task_id, now)
        except NotInFlight as exc:
            log.warning("cancel %s: %s", task_id, exc.message)

    async def _not_cancellable(self, task_id: str) -> Answer:
        """Why a task that is neither ours nor waiting in line cannot be cancelled."""
        data = await self.get_async(task_id)
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
    async def accounts(self) -> list[dict[str, Any]]:
        return await self.admin.accounts()

    async def set_account(self, account_id: str, status: Status | None,
                          setting: Setting | None,
                          secrets: Mapping[str, str], *,
                          until: str | None = None) -> dict[str, Any]:
        view = await self.admin.set_account(account_id, status, setting, secrets,
                                            until=until)
        self.drain_notices()
        return view

    async def snapshot(self) -> tuple[list[Account], int, bool]:
        """For /metrics: the accounts and the line's length, and whether they are
        fresh (False: the store did not answer; the last ones read are shown)."""
        try:
            accounts, length = await self.calls.call(self._read_snapshot)
        except STALLED:
            return self.last_accounts, self.line.length(), False
        self.last_accounts = accounts
        return accounts, length, True

    def _read_snapshot(self) -> tuple[list[Account], int]:
        return self.store.accounts(), self.line.read_length()


def _decision(a: Adoption, meta: dict[str, Any]) -> Decision:
    """The routing decision of an adopted running task, as its record shows it (on
    the public pool, P1, for the store's ``PUBLIC`` account)."""
    def mode(key: str) -> Mode:
        value = meta.get(key)
        return Mode(value) if isinstance(value, str) and value else a.mode

    public = a.account_id == PUBLIC
    return Decision(a.task_id, pool="public" if public else "private",
                    account_id=None if public else a.account_id,
                    requested_mode=mode("requested_mode"), mode_source=meta.get("mode_source"),
                    effective_mode=a.mode, fallback=bool(meta.get("fallback", False)),
                    explanation=meta.get("explanation"))


def _answer(content: dict[str, Any]) -> Answer:
    return int(content["code"]), content


def _logged(done: asyncio.Future[Any]) -> None:
    """A store call nobody waits for: its failure is logged."""
    if not done.cancelled() and done.exception() is not None:
        log.warning("a store call failed: %s", done.exception())


class OncePerTurn:
    """``fn`` run once at the end of the current event-loop turn however often it
    is asked for during the turn (``deferred``: a remote store, where each run is a
    store-thread call), or at once each time (in memory)."""

    def __init__(self, fn: Callable[[], None], deferred: bool) -> None:
        self.fn = fn
        self.deferred = deferred
        self._scheduled = False

    def __call__(self) -> None:
        if not self.deferred:
            self.fn()
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        self.fn()
