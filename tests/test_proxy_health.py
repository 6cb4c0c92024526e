"""H1–H4 through the proxy: an upstream "no fast time" re-routes the task (H4), a
timed status ends with ``account_recovered`` (H1), a queued task shows its place
(R5), and the per-account gauges (H2). In one process (``TaskService`` on a
``MemoryStore``) and against real ``byoa serve`` processes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from _util import acc
from proxy_procs import API_KEY, start_proxy
from test_proxy_api import Receiver, wait_for

from router.accounts import Setting, Status
from router.proxy.metrics import render_metrics
from router.proxy.service import ProxyConfig, TaskService
from router.proxy.upstream import SimulatedUpstream
from router.stores.memory import MemoryStore

FAST = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "a cat --fast"}}
H = {"x-api-key": API_KEY}


def service(accounts: list[Any], upstream: SimulatedUpstream,
            **config: Any) -> tuple[TaskService, MemoryStore]:
    store = MemoryStore(accounts, start_at=time.time())
    cfg = ProxyConfig(api_key="k", start_delay=0.0, dispatch_interval=0.02, **config)
    return TaskService(store, upstream, cfg), store


def run(svc: TaskService, main: Callable[[], Awaitable[Any]]) -> Any:
    async def wrapped() -> Any:
        await svc.start()
        try:
            return await main()
        finally:
            await svc.stop()
    return asyncio.run(wrapped())


async def until_status(svc: TaskService, task_id: str, statuses: tuple[str, ...],
                       timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = svc.get(task_id)
        if data is not None and data["status"] in statuses:
            return data
        await asyncio.sleep(0.01)
    raise AssertionError(f"task {task_id} never reached {statuses}: {svc.get(task_id)}")


def test_upstream_no_fast_time_moves_the_task_under_its_id_H4() -> None:
    """H4: the refused fast task is not charged, its account's fast time goes to 0 and
    flips to relax (mj_bot_no_fasthour), and the same task id runs on the other account."""
    upstream = SimulatedUpstream(speedup=600)
    upstream.exhaust("a1")
    svc, store = service([acc("a1", fast_s=3600), acc("a2", fast_s=3600, weight=0.5)],
                         upstream)
    before = {a.id: a.fast_ms for a in store.accounts()}

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        status, env = await svc.submit_async(dict(FAST))
        assert status == 200 and env["data"]["meta"]["account_id"] == "a1"
        data = await until_status(svc, env["data"]["task_id"], ("completed", "failed"))
        return env["data"], data

    first, data = run(svc, main)
    assert data["task_id"] == first["task_id"] and data["status"] == "completed"
    assert data["meta"]["account_id"] == "a2" and data["meta"]["effective_mode"] == "fast"
    (move,) = data["meta"]["reroutes"]
    assert move["account_id"] == "a1" and move["reason"] == "fast_exhausted"
    assert move["fast_hours_remaining"] == 0.0 and move["setting"] == "relax"
    assert move["reroute"]["account_id"] == "a2" and move["reroute"]["error"] is None
    after = {a.id: a for a in store.accounts()}
    assert after["a1"].fast_ms == 0 and after["a1"].setting is Setting.RELAX  # L3 flip
    assert after["a1"].in_flight == 0  # its slot came back, nothing charged (L1)
    charged = before["a2"] - after["a2"].fast_ms
    assert charged == round(data["meta"]["usage"]["charged_seconds"] * 1000)
    assert svc.counters.get("rerouted") == 1
    assert svc.counters.get("notify_mj_bot_no_fasthour") == 1
    assert svc.counters.get("notify_task_rerouted") == 1


def test_a_reroute_that_finds_no_room_waits_in_line_not_failed_H4_R5() -> None:
    """H4 + R5: the new decision is pool_saturated, so the task waits in the line as
    pending (its moves kept) and runs when the other account frees."""
    upstream = SimulatedUpstream(speedup=60)  # a2's task takes about a second
    upstream.exhaust("a1")
    svc, _store = service([acc("a1", fast_s=3600, max_in_flight=1),
                           acc("a2", fast_s=3600, max_in_flight=1, weight=0.5)], upstream)
    seen: list[dict[str, Any]] = []

    async def main() -> dict[str, Any]:
        _s, first = await svc.submit_async(dict(FAST))  # a1 (least loaded, tie by id)
        _s, second = await svc.submit_async(dict(FAST))  # a2
        assert first["data"]["meta"]["account_id"] == "a1"
        assert second["data"]["meta"]["account_id"] == "a2"
        tid = first["data"]["task_id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            data = svc.get(tid)
            assert data is not None
            if data["meta"].get("reroutes"):
                seen.append(data)
                break
            await asyncio.sleep(0.002)
        return await until_status(svc, tid, ("completed", "failed"))

    data = run(svc, main)
    assert seen, "the task never showed a move"
    moved = seen[0]
    assert moved["status"] == "pending" and moved["error"]["code"] == 0
    assert moved["meta"]["reroutes"][0]["reroute"]["error"]["code"] == "pool_saturated"
    assert data["status"] == "completed" and data["meta"]["account_id"] == "a2"
    assert data["meta"]["reroutes"] == moved["meta"]["reroutes"]  # kept through the line
    assert svc.counters.get("rerouted") == 1 and svc.counters.get("queued") == 1
