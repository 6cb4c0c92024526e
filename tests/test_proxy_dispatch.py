"""``Dispatcher.run`` on a remote line (R5): a wake with the line empty when last
read does not cost a pass (on Redis a pass is two round trips, and every finished
task wakes the line), yet the line is still read at least every ``interval`` while
wakes keep coming, so a task another process queued is routed within it; with a
task known waiting, a wake passes at once."""

from __future__ import annotations

import asyncio
import json
import time

from router.decision import Decision
from router.proxy.dispatch import Dispatcher
from router.proxy.metrics import Counters
from router.proxy.queue import LocalQueue
from router.proxy.storecalls import StoreCalls
from router.proxy.tasks import Task


class CountingLine(LocalQueue):
    def __init__(self) -> None:
        super().__init__()
        self.claims = 0

    def claim(self, n: int) -> list[tuple[str, str]]:
        self.claims += 1
        return super().claim(n)


class NoStore:
    def routed(self, task_id: str) -> bool:
        return False


def _dispatcher(line: CountingLine, routed: list[tuple[str, float]]) -> Dispatcher:
    return Dispatcher(line, NoStore(), Counters(), limit=100,  # type: ignore[arg-type]
                      route=lambda task, now: Decision(task.task_id, account_id="acc"),
                      routed=lambda task: routed.append((task.task_id, time.monotonic())),
                      rejected=lambda task, d: None,
                      calls=StoreCalls(remote=True, on_loop=True))


def test_wakes_on_an_empty_line_cost_no_pass_but_the_line_is_read_every_interval() -> None:
    interval = 0.1
    line = CountingLine()
    routed: list[tuple[str, float]] = []

    async def main() -> None:
        d = _dispatcher(line, routed)
        runner = asyncio.ensure_future(d.run(interval))
        await asyncio.sleep(0.01)
        d.wake()  # the first pass: nothing was read yet
        await asyncio.sleep(0.01)
        first = line.claims
        assert first == 1
        pushed_at = 0.0
        end = time.monotonic() + 0.6
        while time.monotonic() < end:  # a finished task every 2 ms, line empty
            d.wake()
            await asyncio.sleep(0.002)
            if not pushed_at and time.monotonic() > end - 0.35:
                line.push("elsewhere", json.dumps({"body": {}, "created_at": 0}))
                pushed_at = time.monotonic()  # queued by another process
        # ~300 wakes: a pass per interval, not one per wake
        assert 2 <= line.claims - first <= 9, line.claims
        assert [t for t, _ in routed] == ["elsewhere"]
        assert routed[0][1] - pushed_at < 5 * interval  # (a loaded machine stretches it)
        d.stop()
        await runner

    asyncio.run(main())


def test_a_wake_with_a_task_known_waiting_passes_at_once() -> None:
    line = CountingLine()
    routed: list[tuple[str, float]] = []

    async def main() -> None:
        d = _dispatcher(line, routed)
        runner = asyncio.ensure_future(d.run(10.0))  # no tick during the test
        d.enqueue(Task("mine", {}, 0.0), 0.0)
        d.join()  # pushed by this process: it knows the line is not empty
        await asyncio.sleep(0.01)
        d.wake()
        await asyncio.sleep(0.05)
        assert [t for t, _ in routed] == ["mine"]
        d.stop()
        await runner

    asyncio.run(main())
