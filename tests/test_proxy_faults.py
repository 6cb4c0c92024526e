"""The shared store stalls: requests that need Redis get a 503 ``store_unavailable``
with ``Retry-After`` once ``--redis-timeout`` passes (not when Redis comes back), and
the proxy serves again when it does."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from proxy_procs import API_KEY, start_proxy
from redis_server import redis_binary

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
