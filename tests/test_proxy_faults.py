"""The shared store stalls, dies or comes back empty (real redis-server, real
``byoa serve`` processes): requests that need Redis get a 503 ``store_unavailable``
with ``Retry-After`` once ``--redis-timeout`` passes (not when Redis comes back),
requests that do not need it do not wait, no accepted task is lost or charged twice
(L1), and an emptied store is reported."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from proxy_procs import API_KEY, Proxy, start_proxy
from redis_server import RestartableRedis, redis_binary, restartable_redis

from router.io.loading import load_accounts
from router.stores.embedded import embedded_redis
from router.stores.redis_store import connect, load_into_redis

REPO = Path(__file__).resolve().parent.parent
H = {"x-api-key": API_KEY}
BODY = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "a cat --relax"}}


@pytest.fixture
def server() -> Iterator[tuple[int, str]]:
    """A redis-server this test can stop and continue (SIGSTOP/SIGCONT): its pid and URL."""
    with embedded_redis(redis_binary()) as url:
        pid = int(connect(url).info("server")["process_id"])
        accounts, policy = load_accounts(REPO / "examples" / "accounts.json")
        load_into_redis(connect(url), accounts, policy, time.time())
        try:
            yield pid, url
        finally:
            os.kill(pid, signal.SIGCONT)


def test_a_stalled_redis_gives_503_with_retry_after_then_recovers(
        server: tuple[int, str], tmp_path: Path) -> None:
    pid, url = server
    proxy = start_proxy(["--redis", url, "--redis-timeout", "0.5"], str(tmp_path), "stall")
    try:
        assert httpx.post(f"{proxy.url}/api/v1/task", json=BODY, headers=H,
                          timeout=10).status_code == 200
        os.kill(pid, signal.SIGSTOP)
        try:
            # the client gives up after 8 s: a proxy that waited for Redis would fail here
            r = httpx.post(f"{proxy.url}/api/v1/task", json=BODY, headers=H, timeout=8)
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            assert r.json()["data"]["error"]["raw_message"] == "store_unavailable"
            assert r.json()["message"].startswith("the shared store (Redis) did not answer")
        finally:
            os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + 30
        while True:
            r = httpx.post(f"{proxy.url}/api/v1/task", json=BODY, headers=H, timeout=10)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 200, r.text
    finally:
        proxy.stop()
    assert "Traceback" not in proxy.output()


def test_redis_timeout_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    from router.cli import main

    assert main(["serve", "--api-key", "k", "--redis", "redis://127.0.0.1:1/0",
                 "--redis-timeout", "0"]) == 2
    assert capsys.readouterr().err == ("byoa serve: --redis-timeout: expected seconds > 0, "
                                       "got 0.0\n")


# ------------------------------------------------------------------ under load

ACCOUNTS = {"policy": {"strategy": "least_loaded"}, "accounts": [
    {"id": f"p{i}", "plan": "pro", "setting": "fast", "max_in_flight": 3}
    for i in range(3)]}
FAST = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "a cat --fast"}}
FINAL = ("completed", "failed")


def load(url: str, tmp_path: Path) -> None:
    (tmp_path / "accounts.json").write_text(json.dumps(ACCOUNTS))
    accounts, policy = load_accounts(tmp_path / "accounts.json")
    client = connect(url)
    load_into_redis(client, accounts, policy, time.time())
    client.close()


def accounts_in(url: str) -> dict[str, dict[str, str]]:
    """Every account hash, read straight from Redis."""
    r = connect(url)
    try:
        return {str(i): r.hgetall(f"byoa:{{acc:{i}}}") for i in r.lrange("byoa:accounts", 0, -1)}
    finally:
        r.close()


def task_hashes(url: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Every reservation's task hash (``byoa:{acc:ID}:t:TASK``): task id -> (account, hash)."""
    r = connect(url)
    try:
        out: dict[str, tuple[str, dict[str, str]]] = {}
        for key in r.scan_iter("byoa:{acc:*}:t:*"):
            head, _, task_id = str(key).partition("}:t:")
            out[task_id] = (head.split("{acc:", 1)[1], r.hgetall(key))
        return out
    finally:
        r.close()


def submit(url: str, client: httpx.Client) -> httpx.Response:
    return client.post(f"{url}/api/v1/task", json=FAST, headers=H)


def wait_final(proxy_url: str, task_ids: list[str], seconds: float) -> dict[str, dict[str, Any]]:
    """Each task's ``data`` once every one is final (or the deadline passed)."""
    out: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < deadline:
            for task_id in task_ids:
                if out.get(task_id, {}).get("status") in FINAL:
                    continue
                r = client.get(f"{proxy_url}/api/v1/task/{task_id}", headers=H)
                if r.status_code == 200:
                    out[task_id] = r.json()["data"]
            if all(out.get(t, {}).get("status") in FINAL for t in task_ids):
                break
            time.sleep(0.2)
    return out


def assert_charged_once(url: str, before: dict[str, dict[str, str]], accepted: set[str]) -> None:
    """L1: every accepted task completed and was charged exactly once; nothing else
    was (a submit answered 503 left no charge and no reservation: at most a
    cancelled one); each account's fast time went down by exactly the sum of its
    charges, and nothing is in flight or reserved."""
    after = accounts_in(url)
    tasks = task_hashes(url)
    completed = {t for t, (_a, h) in tasks.items() if h.get("state") == "completed"}
    assert completed == accepted, (sorted(completed - accepted), sorted(accepted - completed))
    assert all(h.get("state") in ("completed", "cancelled") for _a, h in tasks.values()), tasks
    for acc_id, h in after.items():
        assert (h["in_flight"], h["reserved_ms"]) == ("0", "0"), (acc_id, h)
        charged = sum(int(t["charged_ms"]) for task_id, (a, t) in tasks.items()
                      if a == acc_id and task_id in completed)
        assert int(before[acc_id]["fast_ms"]) - int(h["fast_ms"]) == charged, acc_id


def test_a_stall_blocks_no_request_that_does_not_need_redis_and_loses_no_task(
        tmp_path: Path) -> None:
    """Redis SIGSTOPped under load: /openapi.json, /health and a task this process
    holds answer before Redis is continued; store-needing requests get 503 with
    Retry-After; afterwards every accepted task completes, charged once (L1)."""
    with restartable_redis(str(tmp_path)) as server:
        load(server.url, tmp_path)
        before = accounts_in(server.url)
        proxy = start_proxy(["--redis", server.url, "--redis-timeout", "0.5",
                             "--speedup", "120"], str(tmp_path), "stall-load")
        accepted: set[str] = set()
        refused: list[httpx.Response] = []
        try:
            with httpx.Client(timeout=30) as client:
                first = ""
                for _ in range(12):  # 9 run (3 accounts x 3), 3 wait in line (R5)
                    r = submit(proxy.url, client)
                    assert r.status_code == 200, r.text
                    accepted.add(r.json()["data"]["task_id"])
                    first = first or r.json()["data"]["task_id"]
                held = first  # routed at once: this process holds it
                stop = threading.Event()
                load_errors: list[BaseException] = []

                def keep_submitting() -> None:  # the load during the stall
                    with httpx.Client(timeout=30) as c:
                        while not stop.is_set():
                            try:
                                r = submit(proxy.url, c)
                            except httpx.HTTPError as exc:
                                load_errors.append(exc)
                                return
                            if r.status_code == 200:
                                accepted.add(r.json()["data"]["task_id"])
                            else:
                                refused.append(r)
                            time.sleep(0.05)

                answered: dict[str, tuple[int, float]] = {}

                def during_stall() -> None:
                    with httpx.Client(timeout=30) as c:
                        for name, path in (("openapi", "/openapi.json"),
                                           ("held", f"/api/v1/task/{held}"),
                                           ("health", "/health"),
                                           ("accounts", "/api/v1/accounts"),
                                           ("metrics", "/metrics")):
                            r = c.get(f"{proxy.url}{path}", headers=H)
                            answered[name] = (r.status_code, time.monotonic())
                            if name == "accounts":
                                assert r.headers["retry-after"] == "1"

                assert server.proc is not None
                os.kill(server.proc.pid, signal.SIGSTOP)
                loader = threading.Thread(target=keep_submitting, daemon=True)
                loader.start()
                time.sleep(1.0)  # the store is marked down by now: a request failed
                prober = threading.Thread(target=during_stall, daemon=True)
                prober.start()
                time.sleep(3.0)
                continued_at = time.monotonic()
                os.kill(server.proc.pid, signal.SIGCONT)
                prober.join(30)
                time.sleep(1.0)  # load after the stall: accepted again
                stop.set()
                loader.join(30)
            assert not load_errors
            # answered before Redis was continued: they did not wait for it
            for name in ("openapi", "held", "health", "accounts", "metrics"):
                assert answered[name][1] < continued_at, name
            assert answered["openapi"][0] == 200 and answered["held"][0] == 200
            assert answered["metrics"][0] == 200  # from this process's counters
            assert answered["health"][0] == 503 and answered["accounts"][0] == 503
            assert refused, "no submit was refused during the stall"
            for r in refused:
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"] == "1"
                assert r.json()["data"]["error"]["raw_message"] == "store_unavailable"
            assert len(accepted) > 12  # submits were accepted again after the stall
            data = wait_final(proxy.url, sorted(accepted), 90)
            assert {t: d.get("status") for t, d in data.items()} == {
                t: "completed" for t in accepted}
        finally:
            proxy.stop()
        assert_charged_once(server.url, before, accepted)
        assert "Traceback" not in proxy.output()


def kill_and_restart_under_load(tmp_path: Path, persist: tuple[str, ...],
                                name: str) -> tuple[RestartableRedis, Proxy, set[str],
                                                    dict[str, dict[str, str]]]:
    """A server with ``persist``, a proxy with tasks running and waiting, then Redis
    SIGKILLed, a submit refused while it is away, and Redis started again."""
    server = RestartableRedis(str(tmp_path), persist)
    server.start()
    load(server.url, tmp_path)
    before = accounts_in(server.url)
    proxy = start_proxy(["--redis", server.url, "--redis-timeout", "0.5", "--speedup", "120",
                         "--lease", "3"], str(tmp_path), name)
    accepted: set[str] = set()
    with httpx.Client(timeout=30) as client:
        for _ in range(12):
            r = submit(proxy.url, client)
            assert r.status_code == 200, r.text
            accepted.add(r.json()["data"]["task_id"])
        server.kill()
        r = submit(proxy.url, client)
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
        time.sleep(1.0)
        server.start()
    return server, proxy, accepted, before


def test_redis_killed_and_restarted_with_aof_loses_no_accepted_task(tmp_path: Path) -> None:
    """With ``appendonly yes`` / ``appendfsync always`` a SIGKILLed Redis comes back
    with every write it acknowledged: every accepted task answers GET, completes
    and is charged once (L1); nothing is reported lost (the epoch is the same)."""
    server, proxy, accepted, before = kill_and_restart_under_load(
        tmp_path, ("--appendonly", "yes", "--appendfsync", "always"), "aof")
    try:
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 30
            while (r := submit(proxy.url, client)).status_code != 200:
                assert time.monotonic() < deadline, r.text
                time.sleep(0.2)
            accepted.add(r.json()["data"]["task_id"])
        data = wait_final(proxy.url, sorted(accepted), 90)
        assert {t: d.get("status") for t, d in data.items()} == {
            t: "completed" for t in accepted}
        with httpx.Client(timeout=10) as client:
            assert client.get(f"{proxy.url}/health").status_code == 200
            metrics = client.get(f"{proxy.url}/metrics", headers=H).text
        assert "byoa_store_epoch_mismatch 0" in metrics
        proxy.stop()
        assert_charged_once(server.url, before, accepted)
        assert "Traceback" not in proxy.output()
    finally:
        proxy.stop()
        server.stop()


def test_redis_restarted_empty_is_reported_loudly(tmp_path: Path) -> None:
    """Without persistence a restarted Redis is empty: the proxy says so (its epoch
    key is gone): /health 503, ``byoa_store_epoch_mismatch 1``, an ERROR log line,
    and submits get 503 instead of being routed on a store that lost its tasks."""
    server, proxy, _accepted, _before = kill_and_restart_under_load(
        tmp_path, ("--appendonly", "no"), "empty")
    try:
        with httpx.Client(timeout=10) as client:
            deadline = time.monotonic() + 30
            while "lost its data" not in (h := client.get(f"{proxy.url}/health")).text:
                assert time.monotonic() < deadline, h.text
                time.sleep(0.2)
            assert h.json()["data"]["error"]["raw_message"] == "store_unavailable"
            assert h.json()["message"].startswith("the shared store (Redis) lost its data")
            metrics = client.get(f"{proxy.url}/metrics", headers=H).text
            assert "byoa_store_epoch_mismatch 1" in metrics
            r = submit(proxy.url, client)
            assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
            load(server.url, tmp_path)  # loaded again: a new epoch, still not ours
            deadline = time.monotonic() + 30
            while "loaded again" not in (h := client.get(f"{proxy.url}/health")).text:
                assert time.monotonic() < deadline, h.text
                time.sleep(0.2)
            assert h.status_code == 503
    finally:
        proxy.stop()
        server.stop()
    errors = [line for line in proxy.output().splitlines() if " ERROR " in line]
    assert any("lost its data" in line for line in errors), proxy.output()
    assert "Traceback" not in proxy.output()


# ------------------------------------------------------------- StoreCalls alone

def test_store_calls_run_in_order_fail_fast_while_down_and_durable_ones_wait() -> None:
    """One store thread, calls in submission order; after a timeout the store is
    down: a call fails at once (StoreUnavailable, not sent), a durable call waits
    and runs once the probe gets an answer; then calls go through again."""
    import asyncio

    import redis

    from router.proxy.storecalls import StoreCalls, StoreUnavailable

    ran: list[str] = []
    threads: set[int] = set()
    answering = threading.Event()

    def ping() -> None:
        if not answering.is_set():
            raise redis.ConnectionError("still stopped")

    def op(name: str) -> str:
        threads.add(threading.get_ident())
        if name == "stalls":
            raise redis.TimeoutError("Timeout reading from socket")
        ran.append(name)
        return name

    async def main() -> None:
        calls = StoreCalls(remote=True, ping=ping, probe_interval=0.01)
        firsts = [calls.submit(op, f"c{i}") for i in range(5)]
        assert await asyncio.gather(*firsts) == [f"c{i}" for i in range(5)]
        with pytest.raises(redis.TimeoutError):
            await calls.call(op, "stalls")
        assert calls.down
        with pytest.raises(StoreUnavailable):
            await calls.call(op, "refused")
        kept = calls.durable(op, "kept")
        await asyncio.sleep(0.05)
        assert not kept.done() and calls.retrying() == 1  # waits for the store
        answering.set()
        assert await asyncio.wait_for(kept, 10) == "kept"
        assert not calls.down and calls.stalls == 1
        assert await calls.call(op, "after") == "after"
        calls.close()

    asyncio.run(main())
    assert ran == ["c0", "c1", "c2", "c3", "c4", "kept", "after"]  # "refused" never ran
    assert len(threads) == 1 and threading.get_ident() not in threads
