"""Store calls on the event loop (one Redis server): ``StoreCalls(on_loop=True)`` runs
them in a store greenlet on the loop's thread, in order, each with its own answer,
and a call whose answer from Redis has not come yet lets the loop serve other
work until it has (``router.stores.redis_wait``), or raises ``redis.TimeoutError``
after the client's timeout, as a blocking read would. A pipeline of that call
keeps its own connection, apart from the thread's other code."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis_server import redis_server

from router.proxy.storecalls import StoreCalls
from router.stores.redis_keys import connect
from router.stores.redis_pipe import pipeline
from router.stores.redis_wait import in_store_greenlet, wait_readable


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with redis_server() as u:
        yield u


async def _ticking(until: asyncio.Future[Any]) -> int:
    """How many times the loop ran this coroutine before ``until`` was done."""
    ticks = 0
    while not until.done():
        ticks += 1
        await asyncio.sleep(0.005)
    return ticks


def test_calls_run_in_order_on_the_loop_thread_each_with_its_answer() -> None:
    ran: list[tuple[str, bool, bool]] = []
    loop_thread = threading.get_ident()

    def op(name: str) -> str:
        ran.append((name, threading.get_ident() == loop_thread, in_store_greenlet()))
        if name == "bad":
            raise ValueError("bad input")
        return name.upper()

    async def main() -> None:
        calls = StoreCalls(remote=True, on_loop=True)
        futs = [calls.submit(op, n) for n in ("a", "bad", "c")]
        assert calls.queued() == 3  # nothing runs before the end of the turn
        got = await asyncio.gather(*futs, return_exceptions=True)
        assert got[0] == "A" and got[2] == "C"
        assert isinstance(got[1], ValueError) and str(got[1]) == "bad input"
        assert await calls.call(op, "d") == "D"
        calls.close()

    asyncio.run(main())
    assert ran == [(n, True, True) for n in ("a", "bad", "c", "d")]
    assert not in_store_greenlet()


def test_a_call_waiting_for_its_socket_lets_the_loop_run_and_the_next_call_waits() -> None:
    order: list[str] = []

    async def main() -> None:
        a, b = socket.socketpair()
        calls = StoreCalls(remote=True, on_loop=True)

        def read() -> bytes:
            wait_readable(a, 5.0)
            order.append("read")
            return a.recv(100)

        first = calls.submit(read)
        second = calls.submit(lambda: order.append("second"))
        ticks = asyncio.ensure_future(_ticking(first))
        await asyncio.sleep(0.05)
        assert order == []  # the first call waits; the second is behind it
        b.send(b"answer")
        assert await first == b"answer"
        await second
        assert order == ["read", "second"]
        assert await ticks >= 3  # the loop ran while the call waited
        calls.close()
        a.close()
        b.close()

    asyncio.run(main())


def test_a_wait_past_its_timeout_raises_redis_timeout_error() -> None:
    """... which marks the store down until its probe (run by the same runner, after
    the calls queued) answers again."""
    async def main() -> None:
        a, b = socket.socketpair()
        calls = StoreCalls(remote=True, on_loop=True, probe_interval=0.01)
        fut = calls.submit(wait_readable, a, 0.1)
        ticks = asyncio.ensure_future(_ticking(fut))
        with pytest.raises(redis.TimeoutError, match="Timeout reading from socket"):
            await fut
        assert await ticks >= 3
        assert calls.down and calls.stalls == 1
        await asyncio.wait_for(calls.wait_up(), 5)
        assert await calls.call(lambda: "next") == "next"  # the runner goes on
        calls.close()
        a.close()
        b.close()

    asyncio.run(main())


def test_close_cancels_the_calls_not_begun_behind_a_waiting_one() -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        calls = StoreCalls(remote=True, on_loop=True)
        waiting = calls.submit(wait_readable, a, 5.0)
        await asyncio.sleep(0.02)  # it has begun, and waits
        behind = calls.submit(lambda: "never")  # a later turn: a job of its own
        await asyncio.sleep(0.02)  # handed over, queued behind it
        calls.close()
        await asyncio.sleep(0)
        assert behind.cancelled()
        with pytest.raises(RuntimeError, match="after close"):
            await calls.call(lambda: "refused")
        b.send(b"x")
        await waiting  # the call that had begun still finishes
        a.close()
        b.close()

    asyncio.run(main())


def test_a_redis_command_in_a_store_call_waits_on_the_loop(url: str) -> None:
    """BLPOP keeps the server from answering for 0.3 s: the loop runs meanwhile, and
    a pipeline the thread's other code sends then uses its own connection."""
    client = connect(url)
    client.delete("wait:list")

    def blocked() -> Any:
        pipe = pipeline(client)
        pipe.blpop(["wait:list"], timeout=0.3)
        pipe.set("wait:after", "1")
        return pipe.execute()

    async def main() -> None:
        calls = StoreCalls(remote=True, on_loop=True)
        fut = calls.submit(blocked)
        ticks = asyncio.ensure_future(_ticking(fut))
        await asyncio.sleep(0.05)
        other = pipeline(client)  # the main greenlet, while the store call waits
        other.set("wait:other", "2")
        other.get("wait:other")
        assert other.execute() == [True, "2"]
        assert await fut == [None, True]
        assert await ticks >= 10
        calls.close()

    asyncio.run(main())
    client.close()


def test_the_same_client_reads_as_usual_outside_a_store_greenlet(url: str) -> None:
    client = connect(url)
    assert client.set("plain", "1") and client.get("plain") == "1"
    assert client.blpop(["plain:list"], timeout=0.05) is None
    client.close()
