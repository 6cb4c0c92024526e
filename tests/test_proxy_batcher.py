"""``TurnBatcher``: one flush per event-loop turn, results in call order, errors
to each caller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from router.proxy.batcher import TurnBatcher


class Recorder:
    """A flush function that records its batches and doubles each item."""

    def __init__(self, fail_on: set[int] | None = None, raise_all: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on or set()
        self.raise_all = raise_all

    def __call__(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        if self.raise_all:
            raise ConnectionError("store unreachable")
        return [ValueError(f"bad {i}") if i in self.fail_on else 2 * i for i in items]


def test_calls_of_one_turn_flush_once_in_order() -> None:
    rec = Recorder()
    batcher: TurnBatcher[int, int] = TurnBatcher(rec)

    async def main() -> list[int]:
        return await asyncio.gather(*(batcher.call(i) for i in range(5)))

    assert asyncio.run(main()) == [0, 2, 4, 6, 8]
    assert rec.batches == [[0, 1, 2, 3, 4]]
    assert batcher.flushes == 1


def test_each_turn_gets_its_own_flush() -> None:
    rec = Recorder()
    batcher: TurnBatcher[int, int] = TurnBatcher(rec)

    async def main() -> list[int]:
        first = asyncio.gather(batcher.call(1), batcher.call(2))
        await asyncio.sleep(0)  # the end of this turn: the first batch flushes
        await asyncio.sleep(0)
        assert rec.batches == [[1, 2]]
        second = asyncio.gather(batcher.call(3))
        return [*await first, *await second]

    assert asyncio.run(main()) == [2, 4, 6]
    assert rec.batches == [[1, 2], [3]]
    assert batcher.flushes == 2


def test_calls_made_while_flushing_go_to_the_next_turn() -> None:
    batches: list[list[int]] = []
    batcher: TurnBatcher[int, int]
    late: list[asyncio.Task[int]] = []

    def flush(items: list[int]) -> list[int | Exception]:
        batches.append(list(items))
        if not late:
            late.append(asyncio.get_running_loop().create_task(batcher.call(99)))
        return list(items)

    batcher = TurnBatcher(flush)

    async def main() -> tuple[int, int]:
        a = await batcher.call(1)
        return a, await late[0]

    assert asyncio.run(main()) == (1, 99)
    assert batches == [[1], [99]]


def test_an_item_error_reaches_only_its_caller() -> None:
    batcher: TurnBatcher[int, int] = TurnBatcher(Recorder(fail_on={2}))

    async def main() -> list[Any]:
        return await asyncio.gather(*(batcher.call(i) for i in (1, 2, 3)),
                                    return_exceptions=True)

    one, two, three = asyncio.run(main())
    assert one == 2 and three == 6
    assert isinstance(two, ValueError) and str(two) == "bad 2"


def test_a_flush_error_reaches_every_caller() -> None:
    rec = Recorder(raise_all=True)
    batcher: TurnBatcher[int, int] = TurnBatcher(rec)

    async def main() -> list[Any]:
        return await asyncio.gather(*(batcher.call(i) for i in range(3)),
                                    return_exceptions=True)

    results = asyncio.run(main())
    assert len(results) == 3
    assert all(isinstance(r, ConnectionError) for r in results)
    assert rec.batches == [[0, 1, 2]]


def test_a_wrong_number_of_results_is_an_error_for_every_caller() -> None:
    batcher: TurnBatcher[int, int] = TurnBatcher(lambda items: [1], name="short")

    async def main() -> list[Any]:
        return await asyncio.gather(batcher.call(1), batcher.call(2), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) and "short" in str(r) for r in results)


def test_post_joins_the_turn_without_waiting() -> None:
    rec = Recorder()
    batcher: TurnBatcher[int, int] = TurnBatcher(rec)

    async def main() -> int:
        batcher.post(7)
        assert batcher.pending == [7]
        got = await batcher.call(8)
        assert batcher.pending == []
        return got

    assert asyncio.run(main()) == 16
    assert rec.batches == [[7, 8]]


def test_post_without_a_loop_flushes_now_and_raises_there() -> None:
    rec = Recorder()
    batcher: TurnBatcher[int, int] = TurnBatcher(rec)
    batcher.post(4)
    assert rec.batches == [[4]] and batcher.pending == []
    failing: TurnBatcher[int, int] = TurnBatcher(Recorder(raise_all=True))
    with pytest.raises(ConnectionError):
        failing.post(1)


def test_a_flush_error_of_posted_items_goes_to_whoever_flushes() -> None:
    batcher: TurnBatcher[int, int] = TurnBatcher(Recorder(raise_all=True))

    async def main() -> None:
        waiting = asyncio.ensure_future(batcher.call(1))
        await asyncio.sleep(0)  # the call joins this turn's batch
        batcher.post(2)
        with pytest.raises(ConnectionError):
            batcher.flush()  # early, by hand: the posted item's error is raised here
        with pytest.raises(ConnectionError):
            await waiting  # and the waiting caller gets it too

    asyncio.run(main())
