"""``StoreLoop``: the store's jobs, in order, in one greenlet on the event loop's thread.

The alternative to a worker thread (``storecalls.StoreThread``) for a client whose
reads can wait on the loop (``router.stores.redis_wait``): a job runs as plain
blocking code until its answer from Redis has not come yet, then the loop serves
other work until the socket is readable. There is no hand-over between threads
(no wake-up of another thread, no contention for the GIL), and the store's local
mirror is still only touched by one job at a time, in the order they were put.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

import greenlet

from router.stores.redis_wait import store_greenlet

log = logging.getLogger(__name__)

Job = tuple[Callable[[], object], Callable[[], object]]


class StoreLoop:
    """Runs jobs in the order they were put, each ``run()``, in a store greenlet
    started on the loop when there is work; after ``close``, the jobs not begun
    get ``drop()``, and new ones are refused (``RuntimeError``)."""

    def __init__(self) -> None:
        self._jobs: deque[Job] = deque()
        self._worker: greenlet.greenlet | None = None
        self._closed = False

    def put(self, run: Callable[[], object], drop: Callable[[], object]) -> None:
        """Queue a job; when none runs, start it now (until its first wait)."""
        if self._closed:
            raise RuntimeError("cannot schedule new calls after close")
        self._jobs.append((run, drop))
        if self._worker is None:
            self._worker = store_greenlet(self._drain)
            self._worker.switch()

    def close(self) -> None:
        """The jobs not begun are dropped now; a running one may still finish."""
        self._closed = True
        jobs, self._jobs = self._jobs, deque()
        for _run, drop in jobs:
            drop()

    def _drain(self) -> None:
        try:
            while self._jobs:
                run, _drop = self._jobs.popleft()
                try:
                    run()
                except greenlet.GreenletExit:  # the greenlet is discarded (process exit)
                    raise
                except BaseException:  # a job reports its own errors: keep going
                    log.exception("store job failed")
        finally:
            self._worker = None
