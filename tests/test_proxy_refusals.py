"""Bodies the proxy must refuse before anything is routed or charged, and an answer
that cannot be sent after a task was accepted: against real ``byoa serve`` processes
on the memory store and on Redis (``--redis embedded``), and in one process."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from proxy_procs import API_KEY, Proxy, start_proxy

from router.io.loading import load_accounts
from router.proxy import app as app_module
from router.proxy.app import create_app
from router.proxy.service import ProxyConfig, TaskService
from router.proxy.upstream import SimulatedUpstream
from router.stores.memory import MemoryStore

POOL = {"policy": {"strategy": "least_loaded"}, "accounts": [
    {"id": "p1", "plan": "pro", "setting": "fast", "max_in_flight": 3},
    {"id": "p2", "plan": "standard", "setting": "relax"}]}
H = {"x-api-key": API_KEY, "content-type": "application/json"}
FINITE = "numbers must be finite (at most about 1.8e308)"


class Counting(SimulatedUpstream):
    """The simulated Midjourney, counting the jobs it was given."""

    started: list[str]

    def reference(self, task_id: str, task_type: str, mode: Any, account_id: str) -> str:
        self.started.append(task_id)
        return super().reference(task_id, task_type, mode, account_id)


@pytest.fixture(scope="module", params=["memory", "redis"])
def proxy(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    d = tmp_path_factory.mktemp(f"refusals-{request.param}")
    accounts = str(d / "accounts.json")
    Path(accounts).write_text(json.dumps(POOL))
    store = (["--accounts", accounts] if request.param == "memory"
             else ["--redis", "embedded", "--accounts", accounts])
    p = start_proxy([*store, "--start-delay", "0"], str(d), request.param)
    yield p
    p.stop()


def _ledger(p: Proxy) -> list[dict[str, Any]]:
    r = httpx.get(f"{p.url}/api/v1/accounts", headers=H, timeout=10)
    accounts: list[dict[str, Any]] = r.json()["data"]["accounts"]
    return accounts


def _routed(p: Proxy) -> str:
    text = httpx.get(f"{p.url}/metrics", headers=H, timeout=10).text
    return "\n".join(line for line in text.splitlines()
                     if line.startswith(("byoa_tasks_total", "byoa_requests_total")))


@pytest.mark.parametrize(("raw", "message"), [
    (b'{"model":"midjourney","task_type":"imagine","input":{"prompt":"x --fast",'
     b'"aspect_ratio":1e400}}', f"input.aspect_ratio: the number 1e400 is out of range; {FINITE}"),
    (b'{"model":"midjourney","task_type":"imagine","input":{"prompt":1e400}}',
     f"input.prompt: the number 1e400 is out of range; {FINITE}"),
    (b'{"model":"midjourney","task_type":"imagine","input":{"prompt":"x --fast",'
     b'"seeds":[1,-2.5E+999]}}', f"input.seeds[1]: the number -2.5E+999 is out of range; {FINITE}"),
])
def test_numbers_too_large_for_a_float_are_400_and_charge_nothing(
        proxy: Proxy, raw: bytes, message: str) -> None:
    """Python reads 1e400 as infinity without the ``Infinity`` literal; the answer
    could not echo it (it was a 500 after the task was routed, run and charged)."""
    before, counted = _ledger(proxy), _routed(proxy)
    r = httpx.post(f"{proxy.url}/api/v1/task", content=raw, headers=H, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == message
    assert r.json()["data"]["error"]["raw_message"] == "invalid_json"
    time.sleep(0.2)  # a task routed by mistake would show by now (start delay 0)
    assert _ledger(proxy) == before
    assert _routed(proxy) == counted
    assert "Traceback" not in proxy.output()


@pytest.mark.parametrize(("config", "message"), [
    ({"webhook_config": "str"}, "config.webhook_config: expected an object, got str (M0)"),
    ({"webhook_config": {"endpoint": 5}},
     "config.webhook_config.endpoint: expected an http(s) URL, got 5 (M0)"),
    ({"webhook_config": {"endpoint": "gopher://x"}},
     "config.webhook_config.endpoint: expected an http(s) URL, got 'gopher://x' (M0)"),
    ({"webhook_config": {"endpoint": "file:///etc/passwd", "secret": "s3cr3t"}},
     "config.webhook_config.endpoint: expected an http(s) URL, got 'file:///etc/passwd' (M0)"),
    ({"webhook_config": {"endpoint": "not a url"}},
     "config.webhook_config.endpoint: expected an http(s) URL, got 'not a url' (M0)"),
    ({"webhook_config": {"endpoint": "https://hooks.example/x", "secret": ["s3cr3t"]}},
     "config.webhook_config.secret: expected a string, got list (M0)"),
])
def test_a_webhook_that_could_never_be_sent_is_400_M0(
        proxy: Proxy, config: dict[str, Any], message: str) -> None:
    """It was accepted (200) and stored with an empty webhook, then silently dropped."""
    before = _ledger(proxy)
    body = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x --fast"},
            "config": config}
    r = httpx.post(f"{proxy.url}/api/v1/task", json=body, headers=H, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == f"invalid_request: {message}"
    error = r.json()["data"]["error"]
    assert (error["raw_message"], error["message"], error["detail"]["rule"]) == (
        "invalid_request", message, "M0")
    assert "s3cr3t" not in r.text
    assert _ledger(proxy) == before


# ------------------------------------------------------ an answer that cannot be sent

def test_an_accepted_task_whose_answer_cannot_be_encoded_is_withdrawn(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Should a value the answer cannot hold ever get past the body check (here the
    check is bypassed), the client gets a 500 and the task it never learned about
    is cancelled before it starts: nothing runs, nothing stays reserved or charged."""
    (tmp_path / "accounts.json").write_text(json.dumps(POOL))
    accounts, policy = load_accounts(tmp_path / "accounts.json")
    store = MemoryStore(accounts, policy, start_at=time.time())
    upstream = Counting(speedup=600)
    upstream.started = []
    service = TaskService(store, upstream,
                          ProxyConfig(api_key=API_KEY, start_delay=0.5))
    body = {"model": "midjourney", "task_type": "imagine",
            "input": {"prompt": "x --fast", "aspect_ratio": math.inf}}

    async def unchecked(request: Any, limit: int) -> Any:
        return body

    monkeypatch.setattr(app_module, "read_json", unchecked)
    before = {a.id: (a.in_flight, a.fast_ms) for a in store.accounts()}
    app = create_app(service)

    async def main() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as c:
                r = await c.post("/api/v1/task", headers=H, content=b"{}")
                await asyncio.sleep(0.8)  # past the start delay: a task left would start
                return r

    r = asyncio.run(main())
    assert r.status_code == 500
    assert r.json()["message"] == "internal error"
    assert service.counters.get("routed") == 1
    assert service.counters.get("withdrawn") == service.counters.get("cancelled") == 1
    assert upstream.started == []
    assert {a.id: (a.in_flight, a.fast_ms) for a in store.accounts()} == before
