"""``StoreCalls``: the one way the proxy calls its store, never blocking the event loop.

For a remote store (Redis) every call runs in the order it was made, one at a
time: the store's local mirror (``redis_mirror``) is only ever touched by one
call at a time, and a write posted before another one reaches Redis before it.
The calls made during one turn of the event loop are handed over together, at
the end of the turn, each answered as soon as it ran. Where they run:

* one server: in a *store greenlet* on the event loop's own thread
  (``storeloop.StoreLoop``). A call is plain blocking code, but when its answer
  from Redis has not come yet, its connection (``router.stores.redis_wait``)
  lets the loop serve other requests until the socket is readable: no second
  thread, so no hand-over between threads and no contention for the GIL
  (measured in the README's "What a request costs the server");
* a Redis Cluster: on one dedicated worker thread (``StoreThread``), since
  redis-py's cluster client may sleep between its retries, which must not
  stall the loop.

For the in-memory store a call runs inline (nothing can stall).

When a call fails because Redis did not answer (the client's ``--redis-timeout``:
a connection error or a timeout), the store is marked *down*: calls made while
it is down fail at once with ``StoreUnavailable`` (the HTTP layer answers 503
``store_unavailable`` with ``Retry-After``) instead of queueing behind a stalled
socket, and a probe pings the store, after the calls already queued, until it
answers again. Calls that must not be lost (a task's start, its charge or
release, its record, its place in the shared line) are made ``durable``: they
wait for the store to answer again and are retried, so a task that starts or
finishes during a stall does not fail (each of them is safe to repeat: a charge
that already landed answers ``NotInFlight`` the second time, L1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import greenlet
import redis

from router.errors import InputError
from router.proxy.storeloop import Job, StoreLoop

if TYPE_CHECKING:
    from router.proxy.storeepoch import StoreEpoch
    from router.stores.redis_store import RedisStore

log = logging.getLogger(__name__)

R = TypeVar("R")

#: Seconds between two pings of a store that stopped answering.
PROBE_INTERVAL = 0.2


class StoreUnavailable(redis.ConnectionError):
    """The store is known not to answer right now: the call was not sent."""


class StoreLost(redis.ConnectionError):
    """The store answers but is not the one this process started on: emptied,
    flushed or loaded again (``StoreEpoch``). Treated as down until it is."""


#: What says that the store itself did not answer (not a bad command).
STALLED = (redis.ConnectionError, redis.TimeoutError)


#: A call queued for the store's runner: its future on the loop, the function, its
#: arguments.
Call = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class StoreThread:
    """The store's one worker thread: runs jobs in the order they were put, each
    ``run()``; after ``close``, the jobs not begun get ``drop()`` instead, and new
    ones are refused (``RuntimeError``), as ``ThreadPoolExecutor.shutdown(
    cancel_futures=True)`` would do, without a ``Future``, a work item and a
    semaphore per job (a job is handed over every turn of the event loop)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._closed = False
        # a daemon thread: a process that exits without ``close`` does not hang on
        # it (the proxy closes its calls when it shuts down, after its last call)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, run: Callable[[], object], drop: Callable[[], object]) -> None:
        if self._closed:
            raise RuntimeError("cannot schedule new calls after close")
        self._jobs.put((run, drop))

    def close(self) -> None:
        """Drop the jobs not begun; the running one finishes; the thread ends."""
        self._closed = True
        self._jobs.put(None)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            run, drop = job
            try:
                (drop if self._closed else run)()
            except BaseException:  # a job reports its own errors: keep the thread
                log.exception("store thread job failed")


class StoreCalls:
    """Runs store calls in a store greenlet (remote, ``on_loop``), on one worker
    thread (remote) or inline (in memory)."""

    def __init__(self, *, remote: bool, ping: Callable[[], object] = lambda: None,
                 settle: Callable[[], object] = lambda: None,
                 probe_interval: float = PROBE_INTERVAL, on_loop: bool = False) -> None:
        self.remote = remote
        self._ping = ping
        #: run by the runner after a call when no other is queued: sends the writes
        #: that calls left to ride with the next one (``RecordStore.flush_records``)
        self._settle = settle
        self._sent = 0  # calls queued (counted on the loop)
        self._begun = 0  # calls begun (counted by the runner)
        #: the calls made during this turn of the loop: handed over together
        self._turn: list[Call] = []
        #: answers the thread has for the loop, and the lock they are passed under:
        #: the loop is woken once for the answers that pile up before it takes them
        self._answers: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        self._answers_lock = threading.Lock()
        self.probe_interval = probe_interval
        self._pool: StoreThread | StoreLoop | None = (
            None if not remote else StoreLoop() if on_loop else StoreThread("byoa-store"))
        self._on_loop = on_loop
        self.down_since: float | None = None  # wall-clock time the store stopped answering
        self.reason = ""  # why it is down
        self.stalls = 0  # times the store stopped answering
        self._up = asyncio.Event()
        self._up.set()
        self._probe: asyncio.Task[None] | None = None
        self._retrying: set[asyncio.Task[Any]] = set()

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def queued(self) -> int:
        """Calls queued for the store and not begun yet (in a call: the ones behind
        it)."""
        return self._sent - self._begun

    # ------------------------------------------------------------------ calls
    def submit(self, fn: Callable[..., R], *args: Any) -> asyncio.Future[R]:
        """Queue ``fn(*args)`` now (calls run in the order they were submitted); its
        future. Fails at once with ``StoreUnavailable`` while the store is down."""
        loop = asyncio.get_running_loop()
        if self._pool is None:
            fut: asyncio.Future[R] = loop.create_future()
            try:
                fut.set_result(fn(*args))
            except Exception as exc:
                fut.set_exception(exc)
            return fut
        if self.down:
            fut = loop.create_future()
            fut.set_exception(self._unavailable())
            return fut
        fut = loop.create_future()
        self._sent += 1
        self._turn.append((fut, fn, args))
        if len(self._turn) == 1:
            loop.call_soon(self._hand_over, loop)
        return fut

    async def call(self, fn: Callable[..., R], *args: Any) -> R:
        """``fn(*args)`` by the store's runner; fails fast while the store is down."""
        return await self.submit(fn, *args)

    def durable(self, fn: Callable[..., R], *args: Any) -> asyncio.Future[R]:
        """``fn(*args)`` queued now, and again each time the store answers again
        after a stall, until it ran; its future (other errors end it)."""
        first = self.submit(fn, *args)
        if self._pool is None:
            return first
        task = asyncio.ensure_future(self._until_done(first, fn, args))
        self._retrying.add(task)
        task.add_done_callback(self._retrying.discard)
        return task

    async def _until_done(self, first: asyncio.Future[R], fn: Callable[..., R],
                          args: tuple[Any, ...]) -> R:
        fut = first
        while True:
            try:
                return await fut
            except STALLED:
                await self.wait_up()
                fut = self.submit(fn, *args)

    async def wait_up(self) -> None:
        """Return once the store answers (at once when it is not down)."""
        while self.down:
            if self._up.is_set():  # marked down by the runner; _went_down not yet run
                self._up.clear()
            await self._up.wait()

    def retrying(self) -> int:
        """Durable calls waiting for the store to answer again."""
        return len(self._retrying)

    def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        if self._pool is not None:
            self._pool.close()

    # ------------------------------------------------------------- the runner
    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """End of the turn: this turn's calls go to the runner as one job (for the
        thread: one wake-up for all of them)."""
        batch, self._turn = self._turn, []
        assert self._pool is not None
        try:
            self._pool.put(lambda: self._run_all(loop, batch),
                           lambda: self._dropped(loop, batch))
        except RuntimeError as exc:  # closed: nothing runs any more
            for fut, _fn, _args in batch:
                _resolve(fut, None, exc)

    def _run_all(self, loop: asyncio.AbstractEventLoop, batch: list[Call]) -> None:
        """In the runner: every call of the batch in order, each with its own result
        or error, answered on the loop as soon as it ran (a route's answer does not
        wait for the calls queued behind it in the same turn)."""
        for fut, fn, args in batch:
            result: Any = None
            error: BaseException | None = None
            try:
                result = self._guarded(loop, fn, args)
            except greenlet.GreenletExit:  # the store greenlet is discarded (exit)
                raise
            except BaseException as exc:  # every caller gets its own answer
                error = exc
            if loop.is_closed():
                return
            self._answer(loop, fut, result, error)

    def _answer(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any],
                result: Any, error: BaseException | None) -> None:
        """One call's answer: at once in a store greenlet (it runs on the loop);
        from the thread, the loop is woken only by the first answer it has not
        taken yet (the others ride with it)."""
        with self._answers_lock:
            self._answers.append((fut, result, error))
            first = len(self._answers) == 1
        if first:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        """On the loop: every answer the thread has left, in the order they came."""
        with self._answers_lock:
            answers, self._answers = self._answers, []
        for fut, result, error in answers:
            _resolve(fut, result, error)

    def _in_runner(self, loop: asyncio.AbstractEventLoop,
                   fn: Callable[[], R]) -> asyncio.Future[R]:
        """``fn()`` by the runner, after the jobs already queued; its future."""
        fut: asyncio.Future[R] = loop.create_future()

        def run() -> None:
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn()
            except greenlet.GreenletExit:
                raise
            except BaseException as exc:
                error = exc
            self._answer(loop, fut, result, error)

        assert self._pool is not None
        self._pool.put(run, lambda: self._dropped(loop, [(fut, fn, ())]))
        return fut

    def _dropped(self, loop: asyncio.AbstractEventLoop, batch: list[Call]) -> None:
        """A batch the runner never ran (``close`` came first): its calls are
        cancelled, as ``run_in_executor``'s would be."""
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_cancel_all, batch)

    def _guarded(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., R],
                 args: tuple[Any, ...]) -> R:
        """In the runner: run ``fn`` unless the store went down meanwhile;
        then, if no other call is queued, settle what calls left to go with the next."""
        self._begun += 1
        if self.down:
            raise self._unavailable()
        try:
            return fn(*args)
        except StoreUnavailable:
            raise
        except STALLED as exc:
            self._mark_down(loop, exc)
            raise
        except InputError as exc:  # the mirror found no accounts: the store was emptied
            lost = StoreLost(str(exc))
            self._mark_down(loop, lost)
            raise lost from None
        finally:
            if self._sent == self._begun and not self.down:
                self._settled(loop)

    def _settled(self, loop: asyncio.AbstractEventLoop) -> None:
        """``settle``, in the runner: a stall marks the store down (what was carried
        stays carried and goes with the probe's reads); an error answer is logged
        (those writes were answered: as a batch written alone that failed)."""
        try:
            self._settle()
        except STALLED as exc:
            self._mark_down(loop, exc)
        except redis.RedisError as exc:
            log.warning("writes carried to the store failed: %s", exc)

    def _mark_down(self, loop: asyncio.AbstractEventLoop, exc: Exception) -> None:
        if not self.down:
            self.reason = str(exc)
            self.down_since = time.time()  # read by the loop; only the runner sets it
            loop.call_soon_threadsafe(self._went_down, exc)

    def _unavailable(self) -> StoreUnavailable:
        since = time.time() - (self.down_since or time.time())
        return StoreUnavailable(f"the store has been unavailable for {since:.1f} s "
                                f"({self.reason})")

    # -------------------------------------------------------------- the probe
    def _went_down(self, exc: BaseException) -> None:
        self.stalls += 1
        self._up.clear()
        log.warning("the store stopped answering (%s): requests that need it get 503 "
                    "store_unavailable until it answers again", exc)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_up())

    async def _probe_until_up(self) -> None:
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.probe_interval)
            try:
                await self._in_runner(loop, self._ping)
            except Exception:  # still away, or not the store we started on
                continue
            since = self.down_since or time.time()
            self.down_since = None
            self._up.set()
            log.warning("the store answers again after %.1f s", time.time() - since)
            return


def _resolve(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """On the loop: one call's answer to its caller (none if it was cancelled)."""
    if fut.done():
        return
    if error is None:
        fut.set_result(result)
    else:
        fut.set_exception(error)


def _cancel_all(batch: list[Call]) -> None:
    for fut, _fn, _args in batch:
        fut.cancel()


def redis_calls(store: RedisStore, epoch: StoreEpoch) -> StoreCalls:
    """``StoreCalls`` for a Redis store. Its probe pings Redis, checks that it is
    still the store this process started on (its epoch: not emptied, not loaded
    again), then re-reads every account into the mirror before any retried call
    runs: a call that timed out may have left the mirror ahead of Redis (or
    behind, if it landed)."""
    def probe() -> None:
        store.r.ping()
        epoch.check()  # raises StoreLost: stays down
        store.refresh()

    # one server: the calls run on the loop (its client's reads wait there); a
    # cluster client (not a ``redis.Redis``) keeps the worker thread
    return StoreCalls(remote=True, ping=probe, settle=store.flush_records,
                      on_loop=isinstance(store.r, redis.Redis))
