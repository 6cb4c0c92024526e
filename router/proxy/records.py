"""``TaskRecords``: the tasks this process routed, and every task's record.

A record (the task's GoAPI ``data`` as JSON) is written to the store for every
process to read; the writes of one event-loop turn go together (one pipeline
for the Redis store). Finished tasks are kept in memory up to a limit. A task waiting
in the line (R5) is shown with its place and an estimated start (``placement``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from router.proxy.batcher import TurnBatcher
from router.proxy.storecalls import StoreCalls
from router.proxy.tasks import Task, task_data, task_record
from router.stores.base import RecordStore


class TaskRecords:
    """Live tasks by id, and the record writes of this event-loop turn."""

    def __init__(self, store: RecordStore, keep_finished: int,
                 calls: StoreCalls | None = None) -> None:
        self.store = store
        self.calls = calls or StoreCalls(remote=False)
        self.keep_finished = keep_finished
        self.live: dict[str, Task] = {}  # tasks this process routed
        self._finished: list[str] = []
        self._writes: TurnBatcher[tuple[str, str], None] = TurnBatcher(
            self._write, name="task records", calls=calls, durable=True)
        #: a waiting task's ``queue_position`` and ``estimated_start_at`` (R5)
        self.placement: Callable[[str, float], dict[str, Any]] | None = None

    def _write(self, items: list[tuple[str, str]]) -> list[Exception | None]:
        # a later write of one task wins; with a store call queued behind this batch
        # by the store's runner, the records ride with it (one round trip less), and
        # go alone once nothing is queued (``StoreCalls`` settles them)
        self.store.put_records(dict(items), carry=self.calls.queued() > 0)
        return [None] * len(items)

    def save(self, task: Task) -> None:
        """Write the task's record (at the end of this event-loop turn)."""
        self._writes.post((task.task_id, task_record(task)))

    def flush(self) -> None:
        """Write this turn's records now rather than at the end of the turn."""
        self._writes.flush()

    def register(self, task: Task) -> None:
        """A task this process routed: kept in memory, and its record written."""
        self.live[task.task_id] = task
        self.save(task)

    def local(self, task_id: str) -> Task | None:
        return self.live.get(task_id)

    def get(self, task_id: str) -> dict[str, Any] | None:
        """The task's ``data``: ours, a write not yet flushed, or the store's record."""
        task = self.live.get(task_id)
        if task is not None:
            return task_data(task)
        raw = self._unflushed(task_id) or self.store.get_record(task_id)
        return None if raw is None else self._placed(dict(json.loads(raw)))

    async def fetch(self, task_id: str) -> dict[str, Any] | None:
        """``get`` with the store's read as a store call, never blocking the event loop
        (a task this process holds answers without the store)."""
        task = self.live.get(task_id)
        if task is not None:
            return task_data(task)
        raw = self._unflushed(task_id) or await self.calls.call(self.store.get_record,
                                                                task_id)
        if raw is None:
            return None
        data = dict(json.loads(raw))
        return await self.calls.call(self._placed, data) if _waiting(data) else data

    def _placed(self, data: dict[str, Any]) -> dict[str, Any]:
        """A waiting task's record with its place in the line and estimated start
        (store calls)."""
        if self.placement is not None and _waiting(data):
            data["meta"].update(self.placement(str(data.get("task_id")), time.time()))
        return data

    def _unflushed(self, task_id: str) -> str | None:
        return next((data for tid, data in reversed(self._writes.pending) if tid == task_id),
                    None)

    def finished(self, task: Task) -> None:
        """Remember a finished task; past the limit, forget the older half."""
        self._finished.append(task.task_id)
        if len(self._finished) > self.keep_finished:
            drop = self._finished[: len(self._finished) // 2]
            del self._finished[: len(drop)]
            for task_id in drop:
                self.live.pop(task_id, None)

    def forget(self, task: Task) -> None:
        """A task that now belongs to another process: no longer ours to show."""
        self.live.pop(task.task_id, None)


def _waiting(data: dict[str, Any]) -> bool:
    """A record of a task that waits in the line (R5)."""
    meta = data.get("meta")
    return data.get("status") == "pending" and isinstance(meta, dict) and bool(meta.get("queued"))
