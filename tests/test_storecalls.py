"""``StoreCalls`` alone (no Redis): the calls of one event-loop turn go to the store
thread as one job, in order, each with its own answer; a call whose caller was
cancelled does not disturb the others; calls the thread never ran are cancelled
by ``close``; a records batch sees the calls queued behind it (``queued``)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from router.proxy.storecalls import StoreCalls


def test_the_calls_of_one_turn_are_one_job_in_order_each_with_its_answer() -> None:
    ran: list[str] = []
    jobs: list[int] = []

    def op(name: str) -> str:
        ran.append(name)
        if name == "bad":
            raise ValueError("bad input")
        return name.upper()

    async def main() -> None:
        calls = StoreCalls(remote=True)
        assert calls._pool is not None
        real = calls._pool.put

        def counted(*a: Any, **k: Any) -> Any:
            jobs.append(1)
            return real(*a, **k)

        calls._pool.put = counted  # type: ignore[method-assign]
        futs = [calls.submit(op, n) for n in ("a", "bad", "c")]
        assert calls.queued() == 3  # nothing handed over before the end of the turn
        got = await asyncio.gather(*futs, return_exceptions=True)
        assert got[0] == "A" and got[2] == "C"
        assert isinstance(got[1], ValueError) and str(got[1]) == "bad input"
        assert await calls.call(op, "d") == "D"  # a later turn: a job of its own
        calls.close()

    asyncio.run(main())
    assert ran == ["a", "bad", "c", "d"]
    assert jobs == [1, 1]


def test_a_cancelled_caller_leaves_the_others_alone() -> None:
    gate = threading.Event()

    def slow() -> str:
        gate.wait(10)
        return "slow"

    async def main() -> None:
        calls = StoreCalls(remote=True)
        first = calls.submit(slow)
        second = calls.submit(lambda: "second")
        first.cancel()
        gate.set()
        assert await second == "second"
        assert first.cancelled()
        calls.close()

    asyncio.run(main())


def test_close_cancels_the_calls_the_thread_never_ran() -> None:
    gate = threading.Event()

    async def main() -> None:
        calls = StoreCalls(remote=True)
        running = calls.submit(lambda: gate.wait(10))
        await asyncio.sleep(0.05)  # the first job is on the thread, blocked
        waiting = calls.submit(lambda: "never")
        await asyncio.sleep(0.05)  # handed over, queued behind it
        calls.close()
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, 5)
        assert await running is True
        with pytest.raises(RuntimeError):  # closed: refused, not lost
            await asyncio.wait_for(calls.submit(lambda: "late"), 5)

    asyncio.run(main())


def test_a_call_sees_the_calls_queued_behind_it() -> None:
    seen: list[int] = []

    async def main() -> None:
        calls = StoreCalls(remote=True)
        await asyncio.gather(*(calls.submit(lambda: seen.append(calls.queued()))
                               for _ in range(3)))
        calls.close()

    asyncio.run(main())
    assert seen == [2, 1, 0]


def test_answers_that_pile_up_wake_the_loop_once() -> None:
    """The thread wakes the loop for the first answer the loop has not taken; the
    answers that come while it is busy ride with that wake-up, in order."""
    wakes: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        real = loop.call_soon_threadsafe

        def counted(*a: Any, **k: Any) -> Any:
            wakes.append(1)
            return real(*a, **k)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        calls = StoreCalls(remote=True)
        futs = [calls.submit(lambda n=n: n * 10) for n in range(5)]
        await asyncio.sleep(0)  # end of the turn: the five calls go to the thread
        deadline = time.monotonic() + 10
        while len(calls._answers) < 5 and time.monotonic() < deadline:
            time.sleep(0.001)  # the loop is busy (blocked) while the thread answers
        assert await asyncio.gather(*futs) == [0, 10, 20, 30, 40]
        calls.close()

    asyncio.run(main())
    assert wakes == [1]
