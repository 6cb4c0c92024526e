"""``TaskService`` in one process, without HTTP: a saturated task joins the waiting
line only after its record is written, so a process that routes it from a shared
line never has its newer record overwritten by the queuing process's older one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from _util import acc

from router.accounts import Mode
from router.proxy.queue import LocalQueue
from router.proxy.service import ProxyConfig, TaskService
from router.proxy.upstream import UpstreamResult
from router.stores.memory import MemoryStore

BODY = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "a cat --fast"}}


class NeverDone:
    def reference(self, task_id: str, task_type: str, mode: Mode, account_id: str) -> str:
        return task_id

    async def run(self, job: str, body: Mapping[str, Any], started_at: float) -> UpstreamResult:
        await asyncio.sleep(3600)
        return UpstreamResult(ok=True, gpu_seconds=1.0)


class CheckingQueue(LocalQueue):
    """A line that notes, at each push, whether the task's record was already stored."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__()
        self.store = store
        self.record_before_push: list[bool] = []

    def push(self, task_id: str, payload: str) -> None:
        self.record_before_push.append(self.store.get_record(task_id) is not None)
        super().push(task_id, payload)


def test_queued_tasks_join_the_line_after_their_records_are_written() -> None:
    store = MemoryStore([acc("a1", max_in_flight=1)], start_at=time.time())
    queue = CheckingQueue(store)
    service = TaskService(store, NeverDone(), ProxyConfig(api_key="k", start_delay=0.0),
                          queue)

    async def main() -> list[tuple[int, dict[str, Any]]]:
        answers = await asyncio.gather(*(service.submit_async(dict(BODY)) for _ in range(3)))
        await service.runner.stop()
        return list(answers)

    answers = asyncio.run(main())
    assert [status for status, _ in answers] == [200, 200, 200]
    queued = [env["data"]["meta"]["queued"] for _, env in answers]
    assert queued == [False, True, True]
    assert queue.record_before_push == [True, True]
    assert queue.length() == 2 and service.counters.get("queued") == 2
