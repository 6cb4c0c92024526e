"""``StoreEpoch``: notice a shared store that was emptied or replaced under us.

``byoa accounts load`` writes a fresh epoch key (``redis_load``). Each proxy
process remembers the epoch it started with and reads it again at every
maintenance pass (a store call). Missing or changed means the store lost
its data (a restart without persistence, a flush) or was loaded again: the
accounts, reservations, task records and the line this process relies on are
gone. That is said loudly: an ERROR log line, ``GET /health`` answers 503,
``byoa_store_epoch_mismatch 1`` in ``/metrics``, and the store counts as down
(``StoreLost``): requests that need it get 503 ``store_unavailable``, and starts
and charges wait, until it is the same store again (e.g. Redis restarted on its
AOF) or an operator restarts the processes on a loaded store.
"""

from __future__ import annotations

import logging

from router.proxy.storecalls import StoreLost

log = logging.getLogger(__name__)


class StoreEpoch:
    """The epoch this process started with, and what the store holds now."""

    def __init__(self, store: object) -> None:
        self.store = store
        self.seen: str | None = None
        self.problem: str | None = None  # why the store is not the one we started on

    def remember(self) -> None:
        """At start (in a store call): the epoch, written if there is none yet."""
        ensure = getattr(self.store, "ensure_epoch", None)
        if ensure is not None:
            self.seen = str(ensure())

    def check(self) -> None:
        """In a store call: compare the store's epoch with the remembered one;
        ``StoreLost`` when it differs."""
        read = getattr(self.store, "epoch", None)
        if read is None:
            return  # a store in this process cannot be emptied under us
        now = read()
        if self.seen is None:  # the start could not read it: remember it now
            self.seen = now if now is not None else self.seen
            return
        if now == self.seen:
            if self.problem is not None:
                log.warning("the shared store's epoch is %s again, as at start", now)
            self.problem = None
            return
        problem = ("the shared store (Redis) lost its data: its epoch key is gone "
                   "(restarted without persistence, or flushed)" if now is None else
                   f"the shared store (Redis) was loaded again: epoch {now}, this process "
                   f"started on {self.seen}")
        if problem != self.problem:
            log.error("%s; accepted tasks, reservations and the line may be lost; restart "
                      "the proxy processes once the accounts are loaded (see "
                      "docs/operations.md)", problem)
        self.problem = problem
        raise StoreLost(problem)
