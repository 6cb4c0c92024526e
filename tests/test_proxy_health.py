"""H1–H4 through the proxy: an upstream "no fast time" re-routes the task (H4), a
timed status ends with ``account_recovered`` (H1), a queued task shows its place
(R5), and the per-account gauges (H2). In one process (``TaskService`` on a
``MemoryStore``) and against real ``byoa serve`` processes."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _util import acc
from proxy_procs import API_KEY, start_proxy
from test_proxy_api import Receiver, wait_for

from router.accounts import Mode, Setting, Status
from router.proxy.edge import ApiError
from router.proxy.metrics import render_metrics
from router.proxy.service import ProxyConfig, TaskService
from router.proxy.upstream import SimulatedUpstream
from router.stores.memory import MemoryStore
from router.timeutil import format_time, parse_time

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
        data = await svc.get_async(task_id)
        if data is not None and data["status"] in statuses and not _charging(data):
            return data
        await asyncio.sleep(0.01)
    raise AssertionError(f"task {task_id} never reached {statuses}: "
                         f"{await svc.get_async(task_id)}")


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
            data = await svc.get_async(tid)
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


def test_with_no_other_account_the_moved_task_runs_as_relax_on_the_same_one_H4() -> None:
    """H4 then R3/L3: the only account was flipped to relax, so the new decision for the
    same task id is relax with ``fallback`` there, which the upstream runs."""
    upstream = SimulatedUpstream(speedup=600)
    upstream.exhaust("a1")
    svc, store = service([acc("a1", fast_s=3600)], upstream)

    async def main() -> dict[str, Any]:
        _s, env = await svc.submit_async(dict(FAST))
        return await until_status(svc, env["data"]["task_id"], ("completed", "failed"))

    data = run(svc, main)
    assert data["status"] == "completed" and data["meta"]["account_id"] == "a1"
    assert data["meta"]["effective_mode"] == "relax" and data["meta"]["fallback"] is True
    (move,) = data["meta"]["reroutes"]
    assert move["effective_mode"] == "fast" and move["reroute"]["effective_mode"] == "relax"
    (a1,) = store.accounts()
    assert a1.fast_ms == 0 and a1.in_flight == 0  # relax is not charged fast time (L1)


class PlainStore:
    """A store without H1/H4 (not a ``HealthStore``): only ``Store``'s methods."""

    def __init__(self, inner: MemoryStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in ("set_status_until", "fail_fast_exhausted", "drain_recoveries",
                    "pending_recoveries"):
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_a_store_without_H4_fails_the_refused_task_and_refuses_until() -> None:
    """Without ``HealthStore`` the refusal is an ordinary upstream failure (room back,
    nothing charged, a note saying why it did not move) and ``until`` is a 400."""
    upstream = SimulatedUpstream(speedup=600)
    upstream.exhaust("a1")
    inner = MemoryStore([acc("a1", fast_s=3600), acc("a2", fast_s=3600, weight=0.5)],
                        start_at=time.time())
    store: Any = PlainStore(inner)
    svc = TaskService(store, upstream, ProxyConfig(api_key="k", start_delay=0.0))

    async def main() -> dict[str, Any]:
        _s, env = await svc.submit_async(dict(FAST))
        return await until_status(svc, env["data"]["task_id"], ("completed", "failed"))

    data = run(svc, main)
    assert data["status"] == "failed" and data["error"]["raw_message"] == "upstream_failed"
    assert "does not implement H4" in data["meta"]["note"]
    assert "reroutes" not in data["meta"]
    a1 = inner.accounts()[0]
    assert a1.in_flight == 0 and a1.fast_ms == 3_600_000  # the proxy's books unchanged
    with pytest.raises(ApiError) as info:
        asyncio.run(svc.set_account("a2", Status.BANNED, None, {},
                                    until=datetime_text(time.time() + 60)))
    assert "does not keep timed statuses" in info.value.message


def test_a_timed_status_ends_at_until_with_account_recovered_H1() -> None:
    """H1: ``until`` makes the account active again at that time, without traffic (the
    maintenance pass), with an ``account_recovered`` webhook naming the old status; a
    task that waited for it (R5) then runs."""
    receiver = Receiver()
    try:
        hour = int(time.time() % 86_400 // 3600)  # a2 sleeps now (T1): the task must wait
        svc, store = service([acc("a1", fast_s=3600),
                              acc("a2", window=(hour, (hour + 2) % 24))],
                             SimulatedUpstream(speedup=600),
                             notify_url=receiver.url + "/notify", maintain_interval=0.05)

        async def main() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
            until = time.time() + 0.5
            view = await svc.set_account("a1", Status.BANNED, None, {},
                                         until=datetime_text(until))
            status, env = await svc.submit_async(dict(FAST))
            assert status == 200, env
            waiting = env["data"]
            data = await until_status(svc, env["data"]["task_id"], ("completed", "failed"))
            if svc.notifier.webhooks is not None:
                await svc.notifier.webhooks.idle()
            return view, waiting, data

        view, waiting, data = run(svc, main)
    finally:
        receiver.close()
    assert view["status"] == "banned" and view["recovers_at"] is not None
    assert waiting["status"] == "pending" and waiting["meta"]["queued"] is True
    assert data["status"] == "completed" and data["meta"]["account_id"] == "a1"
    a1 = store.accounts()[0]
    assert a1.status is Status.ACTIVE
    assert store.pending_recoveries() == {}
    kinds = [body["type"] for _path, _h, body in receiver.calls]
    assert kinds == ["mj_bot_banned", "account_recovered"]
    recovered = receiver.calls[1][2]
    assert recovered["detail"]["account_id"] == "a1"
    assert recovered["detail"]["status_was"] == "banned"
    assert recovered["detail"]["recovered_at"] == view["recovers_at"]


def _charging(data: dict[str, Any]) -> bool:
    """A completed task's record is written before its charge (L1) lands: the
    charge is there once ``usage.charged_seconds`` is."""
    usage = data["meta"].get("usage") or {}
    return data["status"] == "completed" and usage.get("charged_seconds") is None


def datetime_text(at: float) -> str:
    return format_time(round(at, 3))


def test_until_that_is_not_a_future_time_or_not_with_a_timed_status_is_refused_H1() -> None:
    """H1: a bad ``until`` changes nothing and says what was expected."""
    svc, store = service([acc("a1")], SimulatedUpstream())
    cases = [
        (Status.BANNED, "yesterday", "ISO-8601"),
        (Status.BANNED, datetime_text(time.time() - 60), "not in the future"),
        (Status.ACTIVE, datetime_text(time.time() + 60), "together with status"),
        (Status.SUBSCRIPTION_EXPIRED, datetime_text(time.time() + 60), "together with status"),
        (None, datetime_text(time.time() + 60), "together with status"),
    ]
    for status, until, expected in cases:
        with pytest.raises(ApiError) as info:
            asyncio.run(svc.set_account("a1", status, None, {}, until=until))
        assert info.value.code == "invalid_request" and expected in info.value.message
        assert info.value.message.startswith("until: ")
    (a1,) = store.accounts()
    assert a1.status is Status.ACTIVE and store.pending_recoveries() == {}


def test_a_waiting_task_shows_its_place_and_an_estimated_start_R5() -> None:
    """R5: a queued task's GET shows ``queue_position`` (1 = next) and
    ``estimated_start_at``: null until enough tasks finished to give a rate, then
    later for a later place."""
    # about a second a task: the line does not move while it is read
    svc, _store = service([acc("a1", max_in_flight=1)], SimulatedUpstream(speedup=60))

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        ids = []
        for _ in range(3):
            _s, env = await svc.submit_async(dict(FAST))
            ids.append(env["data"]["task_id"])
        first = [await svc.get_async(t) for t in ids[1:]]
        for t in ids:
            await until_status(svc, t, ("completed",))
        later = []
        for _ in range(3):
            _s, env = await svc.submit_async(dict(FAST))
            later.append(env["data"]["task_id"])
        second = [await svc.get_async(t) for t in later[1:]]
        for t in later:
            await until_status(svc, t, ("completed",))
        return [d for d in first if d], [d for d in second if d]

    first, second = run(svc, main)
    assert [d["meta"]["queue_position"] for d in first] == [1, 2]
    assert [d["meta"]["estimated_start_at"] for d in first] == [None, None]  # no rate yet
    assert [d["meta"]["queue_position"] for d in second] == [1, 2]
    starts = [d["meta"]["estimated_start_at"] for d in second]
    assert None not in starts and starts[0] <= starts[1]


def test_per_account_gauges_are_the_stores_values_H2() -> None:
    """/metrics: fast hours left, in flight, status and jobs today against the cap, per
    account, equal to the store's snapshot."""
    capped = acc("a1", fast_s=7200)
    capped.max_jobs_per_day = 5
    svc, store = service([capped, acc("a2", status="banned")], SimulatedUpstream())
    store.submit("t1", dict(FAST), time.time())
    text = render_metrics(svc, *asyncio.run(svc.snapshot()))
    values = {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1]
              for line in text.splitlines() if line and not line.startswith("#")}
    a1, a2 = store.accounts()
    assert float(values['byoa_account_fast_hours_remaining{account="a1"}']) == 2.0
    assert int(values['byoa_account_in_flight{account="a1"}']) == a1.in_flight == 1
    assert int(values['byoa_account_jobs_today{account="a1"}']) == 1
    assert int(values['byoa_account_max_jobs_per_day{account="a1"}']) == 5
    assert 'byoa_account_max_jobs_per_day{account="a2"}' not in values  # no cap, no series
    assert values['byoa_account_status{account="a2",status="banned"}'] == "1"
    assert values['byoa_account_status{account="a1",status="active"}'] == "1"
    assert a2.status is Status.BANNED


ACCOUNTS = {"accounts": [
    {"id": "a1", "plan": "standard", "fast_hours_remaining": 1.0, "max_in_flight": 2},
    {"id": "a2", "plan": "standard", "fast_hours_remaining": 1.0, "max_in_flight": 2,
     "weight": 0.5},
]}


@pytest.fixture()
def served(tmp_path: Any) -> Any:
    notify = Receiver()
    tasks = Receiver()
    (tmp_path / "accounts.json").write_text(json.dumps(ACCOUNTS))
    p = start_proxy(["--accounts", str(tmp_path / "accounts.json"), "--speedup", "600",
                     "--upstream-fast-exhausted", "a1", "--notify-url", notify.url + "/n",
                     "--webhook-backoff", "0.05", "--lease", "0.3"], str(tmp_path))
    yield p, notify, tasks
    p.stop()
    notify.close()
    tasks.close()


def test_byoa_serve_reroutes_a_refused_task_and_recovers_a_timed_ban_H1_H4(
        served: Any) -> None:
    """A real ``byoa serve``: the upstream refuses a1's fast jobs; the task moves to a2
    under its id (GET shows ``meta.reroutes``), the task webhook and ``task_rerouted``
    say so; ``until`` bans a2 for a moment and ``account_recovered`` ends it."""
    p, notify, tasks = served
    body = dict(FAST, config={"webhook_config": {"endpoint": tasks.url + "/t", "secret": "s"}})
    r = httpx.post(f"{p.url}/api/v1/task", json=body, headers=H, timeout=10)
    assert r.status_code == 200 and r.json()["data"]["meta"]["account_id"] == "a1"
    tid = r.json()["data"]["task_id"]

    def task() -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{p.url}/api/v1/task/{tid}", headers=H,
                                         timeout=10).json()["data"]
        return data

    wait_for(lambda: task()["status"] == "completed")
    data = task()
    assert data["meta"]["account_id"] == "a2"
    assert [m["account_id"] for m in data["meta"]["reroutes"]] == ["a1"]
    wait_for(lambda: len(tasks.calls) >= 2)
    assert [c[2]["data"]["status"] for c in tasks.calls] == ["pending", "completed"]
    assert tasks.calls[0][2]["data"]["meta"]["reroutes"][0]["reroute"]["account_id"] == "a2"
    wait_for(lambda: {"task_rerouted", "mj_bot_no_fasthour"}
             <= {c[2]["type"] for c in notify.calls})
    moved = next(c[2] for c in notify.calls if c[2]["type"] == "task_rerouted")
    assert moved["detail"]["task_id"] == tid and moved["detail"]["from_account_id"] == "a1"

    accounts = {a["id"]: a for a in httpx.get(f"{p.url}/api/v1/accounts", headers=H,
                                              timeout=10).json()["data"]["accounts"]}
    assert accounts["a1"]["fast_hours_remaining"] == 0.0
    assert accounts["a1"]["setting"] == "relax" and accounts["a1"]["flipped_to_relax"]

    for bad, expected in (({"status": "banned", "until": "2020-01-01T00:00:00Z"},
                           "not in the future"),
                          ({"status": "banned", "until": "soon"}, "ISO-8601"),
                          ({"status": "active", "until": datetime_text(time.time() + 60)},
                           "together with status"),
                          ({"status": "banned", "until": 5}, "ISO-8601")):
        r = httpx.post(f"{p.url}/api/v1/accounts/a2", json=bad, headers=H, timeout=10)
        assert r.status_code == 400, bad
        assert r.json()["data"]["error"]["raw_message"] == "invalid_request"
        assert expected in r.json()["message"], r.json()

    until = datetime_text(time.time() + 1.0)
    r = httpx.post(f"{p.url}/api/v1/accounts/a2", json={"status": "banned", "until": until},
                   headers=H, timeout=10)
    assert r.status_code == 200, r.text
    view = r.json()["data"]["account"]
    assert view["status"] == "banned" and view["recovers_at"] == until

    def a2() -> dict[str, Any]:
        accs = httpx.get(f"{p.url}/api/v1/accounts", headers=H, timeout=10).json()
        return next(a for a in accs["data"]["accounts"] if a["id"] == "a2")

    wait_for(lambda: a2()["status"] == "active")
    assert a2()["recovers_at"] is None
    wait_for(lambda: any(c[2]["type"] == "account_recovered" for c in notify.calls))
    rec = next(c[2] for c in notify.calls if c[2]["type"] == "account_recovered")
    assert rec["detail"]["account_id"] == "a2" and rec["detail"]["status_was"] == "banned"

    text = httpx.get(f"{p.url}/metrics", headers=H, timeout=10).text
    assert 'byoa_account_fast_hours_remaining{account="a1"} 0.0' in text
    assert 'byoa_account_status{account="a2",status="active"} 1' in text
    assert 'byoa_tasks_total{event="rerouted"} 1' in text


README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_proxy_transcript_runs_against_byoa_serve_as_shown(
        tmp_path: Any, monkeypatch: Any, capsys: Any) -> None:
    """The README's H1/H4 proxy transcript: its ``byoa serve`` line is started as
    written (on a free port), its block runs, and prints exactly the text below it."""
    text = README.read_text(encoding="utf-8")
    (block, shown), = re.findall(
        r"```python\n(# byoa serve [^\n]*--upstream-fast-exhausted.*?)```\n\n```text\n(.*?)```",
        text, re.DOTALL)
    args = shlex.split(block.splitlines()[0].removeprefix("# byoa serve "))
    port = args.index("--port")
    del args[port:port + 2]
    monkeypatch.chdir(README.parent)
    p = start_proxy(args, str(tmp_path))
    try:
        monkeypatch.setenv("BYOA_URL", p.url)
        monkeypatch.setenv("BYOA_API_KEY", API_KEY)
        exec(compile(block, "README.md", "exec"), {})  # our own README
    finally:
        p.stop()
    assert capsys.readouterr().out == shown


def test_the_local_and_the_redis_line_give_the_same_places_R5() -> None:
    """R5: ``position`` on both lines: 1 for a claimed task (being routed) and for the
    head, then in arrival order after the claimed ones; None once it left the line."""
    from redis_server import redis_server

    from router.proxy.queue import LocalQueue, RedisQueue
    from router.stores.redis_store import connect

    def places(q: Any) -> list[list[int | None]]:
        out = []
        for t in ("t1", "t2", "t3", "t4"):
            q.push(t, "{}")
        out.append([q.position(t) for t in ("t1", "t2", "t3", "t4", "nope")])
        (claimed, _payload), = q.claim(1)
        assert claimed == "t1"
        out.append([q.position(t) for t in ("t1", "t2", "t3", "t4")])
        q.done("t1")
        q.remove("t3")
        out.append([q.position(t) for t in ("t1", "t2", "t3", "t4")])
        return out

    expected = [[1, 2, 3, 4, None], [1, 2, 3, 4], [None, 1, None, 2]]
    assert places(LocalQueue()) == expected
    with redis_server() as url:
        client = connect(url)
        try:
            assert places(RedisQueue(client, prefix="health")) == expected
        finally:
            client.close()


def test_upstream_fast_exhausted_option_and_its_start_time_H4() -> None:
    """``--upstream-fast-exhausted ACCOUNT[@TIME]``: from TIME on (default: always) fast
    and turbo jobs on ACCOUNT are refused as ``fast_exhausted``; relax jobs and jobs that
    started earlier run; a bad value is a clear error naming the option."""
    from router.errors import InputError
    from router.proxy.cli import fast_exhausted

    since = parse_time("2026-12-01T12:00:00Z")
    assert fast_exhausted(["a1", "a2@2026-12-01T12:00:00Z"]) == {"a1": float("-inf"),
                                                                 "a2": since}
    for bad in ("@2026-12-01T12:00:00Z", "a1@noon"):
        with pytest.raises(InputError) as info:
            fast_exhausted([bad])
        assert info.value.field == "--upstream-fast-exhausted"
    up = SimulatedUpstream(speedup=1e9, fast_exhausted={"a2": since})

    def outcome(mode: Mode, started: float) -> str | None:
        job = up.reference("t1", "imagine", mode, "a2")
        res = asyncio.run(up.run(job, dict(FAST), started))
        return res.reason if not res.ok else "ok"

    assert outcome(Mode.FAST, since) == "fast_exhausted"
    assert outcome(Mode.TURBO, since + 1) == "fast_exhausted"
    assert outcome(Mode.RELAX, since + 1) == "ok"
    assert outcome(Mode.FAST, since - 1) == "ok"


def test_byoa_serve_puts_a_moved_task_that_finds_no_room_in_line_H4_R5(
        tmp_path: Any) -> None:
    """A real ``byoa serve``: a2's only slot is busy when a1 is refused, so the moved
    task waits in the line (pending, its place shown), then runs on a2: never failed."""
    accounts = {"accounts": [
        {"id": "a1", "plan": "standard", "max_in_flight": 1},
        {"id": "a2", "plan": "standard", "max_in_flight": 1, "weight": 0.5}]}
    (tmp_path / "accounts.json").write_text(json.dumps(accounts))
    p = start_proxy(["--accounts", str(tmp_path / "accounts.json"), "--speedup", "12",
                     "--start-delay", "2", "--upstream-fast-exhausted", "a1"], str(tmp_path))
    try:
        ids = []
        for _ in range(2):  # a1, then a2 (about five seconds), both before either starts
            r = httpx.post(f"{p.url}/api/v1/task", json=FAST, headers=H, timeout=10)
            assert r.status_code == 200
            ids.append(r.json()["data"]["task_id"])
            assert r.json()["data"]["meta"]["account_id"] == f"a{len(ids)}"

        def task() -> dict[str, Any]:
            data: dict[str, Any] = httpx.get(f"{p.url}/api/v1/task/{ids[0]}", headers=H,
                                             timeout=10).json()["data"]
            return data

        wait_for(lambda: bool(task()["meta"].get("reroutes")))
        waiting = task()
        wait_for(lambda: task()["status"] == "completed", timeout=60)
        done = task()
    finally:
        p.stop()
    assert waiting["status"] == "pending" and waiting["meta"]["queued"] is True
    assert waiting["meta"]["queue_position"] == 1
    assert "estimated_start_at" in waiting["meta"]  # null: nothing finished yet
    move = waiting["meta"]["reroutes"][0]
    assert move["account_id"] == "a1"
    assert move["reroute"]["error"]["code"] == "pool_saturated"
    assert done["meta"]["account_id"] == "a2" and done["meta"]["reroutes"] == [move]
