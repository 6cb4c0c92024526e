"""``TurnBatcher``: the calls made during one turn of the event loop, handled together.

Requests that arrive in the same turn (a burst of submits, completions finishing
together, task records written while routing them) are gathered and handed to
one ``flush`` function at the end of the turn, in the order they were made: one
round trip to Redis for all of them instead of one each. ``flush`` returns one
result per item, in order; a result that is an ``Exception`` is raised to that
item's caller only, and an exception raised by ``flush`` itself reaches every
caller of the batch (for items posted without waiting: to whoever called
``flush``, the event loop when it ran at the end of the turn).

With ``calls`` (``router.proxy.storecalls``) the batch runs on the store's
thread, queued when ``flush`` is called (so batches and other store calls keep
their order), and the waiters are settled on the event loop when it is done;
a ``durable`` batch is retried when the store answers again after a stall.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

import redis

if TYPE_CHECKING:
    from router.proxy.storecalls import StoreCalls

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class TurnBatcher(Generic[T, R]):
    """Gathers items until the end of the current event-loop turn, then flushes once."""

    def __init__(self, flush: Callable[[list[T]], Sequence[R | Exception]], *,
                 name: str = "batch", calls: StoreCalls | None = None,
                 durable: bool = False, before: Callable[[], None] | None = None) -> None:
        self._flush_items = flush
        #: called (on the loop) just before a batch is handed over: e.g. flushing
        #: another batcher whose writes must be queued ahead of this batch
        self.before = before
        self.name = name
        self.calls = calls
        self.durable = durable
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[R] | None] = []
        self._scheduled = False
        self.flushes = 0  # batches handed to ``flush`` so far

    async def call(self, item: T) -> R:
        """Add ``item`` to this turn's batch and wait for its result."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._add(item, fut, loop)
        return await fut

    def post(self, item: T) -> None:
        """Add ``item`` without waiting for its result (a failure is logged).

        With no running event loop (a direct call), the item is flushed now and
        a failure is raised here.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flushes += 1
            self._flush_items([item])
            return
        self._add(item, None, loop)

    @property
    def pending(self) -> list[T]:
        """Items waiting for the end of this turn, in order."""
        return list(self._items)

    def _add(self, item: T, fut: asyncio.Future[R] | None,
             loop: asyncio.AbstractEventLoop) -> None:
        self._items.append(item)
        self._waiters.append(fut)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand the gathered items to ``flush`` and settle every waiter (at the end
        of the turn, or earlier when called directly)."""
        self._scheduled = False
        items, waiters = self._items, self._waiters
        self._items, self._waiters = [], []
        if not items:
            return
        if self.before is not None:
            self.before()
        self.flushes += 1
        if self.calls is not None:
            run = self.calls.durable if self.durable else self.calls.submit
            done = run(self._flush_items, items)
            done.add_done_callback(lambda f: self._settle_async(f, items, waiters))
            return
        try:
            results = self._flush_items(items)
        except Exception as exc:
            self._failed(exc, waiters)
            return
        self._settle(results, waiters)

    def _settle_async(self, done: asyncio.Future[Sequence[R | Exception]], items: list[T],
                      waiters: list[asyncio.Future[R] | None]) -> None:
        """The batch ran as a store call: settle its waiters on the loop."""
        if done.cancelled():  # shutting down
            for fut in waiters:
                if fut is not None and not fut.done():
                    fut.cancel()
            return
        exc = done.exception()
        if exc is None:
            self._settle(done.result(), waiters)
            return
        assert isinstance(exc, Exception)
        try:
            self._failed(exc, waiters)
        except Exception:
            log.exception("%s failed", self.name)

    def _failed(self, exc: Exception, waiters: list[asyncio.Future[R] | None]) -> None:
        """``flush`` itself failed (e.g. Redis unreachable): every caller gets it."""
        for fut in waiters:
            if fut is not None and not fut.done():
                fut.set_exception(exc)
        if any(w is None for w in waiters):
            if isinstance(exc, redis.RedisError):  # the store stalled: one line
                log.warning("%s: the store did not answer (%s)", self.name, exc)
                return
            raise exc  # posted items: to whoever flushes (the event loop logs it)

    def _settle(self, results: Sequence[R | Exception],
                waiters: list[asyncio.Future[R] | None]) -> None:
        if len(results) != len(waiters):
            self._failed(RuntimeError(f"{self.name}: {len(results)} results for "
                                      f"{len(waiters)} items"), waiters)
            return
        for fut, res in zip(waiters, results, strict=True):
            if fut is None:
                if isinstance(res, Exception):
                    log.warning("%s: %s", self.name, res)
            elif not fut.done():
                if isinstance(res, Exception):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)
