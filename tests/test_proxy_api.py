"""``byoa serve`` through HTTP: GoAPI's envelope, errors, queueing, cancel,
webhooks and write-only secrets, against a real server process on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from conftest import GOAPI_EXAMPLE
from proxy_procs import API_KEY, Proxy, start_proxy

H = {"x-api-key": API_KEY}
SECRET = "discord-SECRET-token-7f3a9c"


def doc_examples() -> tuple[dict[str, Any], dict[str, Any]]:
    """The Imagine request and response examples, exactly as the GoAPI page shows them
    (copied with their source into tests/data/goapi_imagine_example.json)."""
    doc = json.loads(GOAPI_EXAMPLE.read_text())
    return doc["request"], doc["response"]


class Receiver:
    """A loopback webhook endpoint that answers with ``statuses`` in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.calls: list[tuple[str, dict[str, str], Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.calls.append((self.path, dict(self.headers.items()), json.loads(body)))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def wait_for(pred: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


ACCOUNTS = {
    "accounts": [
        {"id": "a1", "plan": "standard", "setting": "fast", "fast_hours_remaining": 0.001,
         "max_in_flight": 1},
        {"id": "a2", "plan": "pro", "setting": "relax", "max_in_flight": 1},
        {"id": "b1", "plan": "basic", "bot_id": 7, "max_in_flight": 1},
    ]
}


@pytest.fixture(scope="module")
def notify() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, notify: Receiver) -> Iterator[Proxy]:
    d = tmp_path_factory.mktemp("proxy")
    (d / "accounts.json").write_text(json.dumps(ACCOUNTS))
    p = start_proxy(["--accounts", str(d / "accounts.json"), "--speedup", "600",
                     "--start-delay", "2", "--webhook-backoff", "0.05",
                     "--notify-url", notify.url + "/notify", "--log-level", "info"], str(d))
    yield p
    p.stop()


def post(p: Proxy, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{p.url}/api/v1/task", json=body, headers=headers or H, timeout=10)


def get(p: Proxy, task_id: str) -> dict[str, Any]:
    r = httpx.get(f"{p.url}/api/v1/task/{task_id}", headers=H, timeout=10)
    assert r.status_code == 200
    data: dict[str, Any] = r.json()["data"]
    return data


def done(p: Proxy, task_id: str) -> bool:
    return get(p, task_id)["status"] in ("completed", "failed")


def test_imagine_doc_example_works_as_is_with_the_documented_envelope(
        proxy: Proxy) -> None:
    request, documented = doc_examples()
    r = post(proxy, request)
    assert r.status_code == 200
    got = r.json()
    assert set(got) == set(documented) and got["code"] == 200 and got["message"] == "success"
    data, doc = got["data"], documented["data"]
    assert set(data) == set(doc)
    assert set(data["error"]) == set(doc["error"]) and set(data["output"]) == set(doc["output"])
    assert set(data["config"]) == set(doc["config"])
    assert data["status"] == "pending" and data["task_type"] == "imagine"
    meta = data["meta"]
    assert meta["requested_mode"] == "fast" and meta["mode_source"] == "process_mode"
    assert data["input"] == request["input"]
    wait_for(lambda: done(proxy, data["task_id"]))
    final = get(proxy, data["task_id"])
    assert final["status"] == "completed" and final["output"]["image_url"]
    assert final["meta"]["usage"]["gpu_seconds"] > 0


def test_wrong_or_missing_api_key_is_401_in_the_envelope(proxy: Proxy) -> None:
    for headers in ({"x-api-key": "wrong"}, {}):
        r = httpx.post(f"{proxy.url}/api/v1/task", json={}, headers=headers)
        assert r.status_code == 401
        body = r.json()
        assert body["code"] == 401 and body["message"] == "missing or wrong x-api-key header"
        assert body["data"]["error"]["raw_message"] == "unauthorized"
    r = httpx.get(f"{proxy.url}/metrics", headers={"x-api-key": API_KEY + "x"})
    assert r.status_code == 401


def test_bad_json_is_400_naming_line_and_column(proxy: Proxy) -> None:
    r = httpx.post(f"{proxy.url}/api/v1/task", content=b'{"model": midjourney}',
                   headers={**H, "content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["message"] == ("request body is not valid JSON: Expecting value "
                                   "(line 1, column 11)")
    r = httpx.post(f"{proxy.url}/api/v1/task", content=b"", headers=H)
    assert r.status_code == 400 and "empty" in r.json()["message"]


def _ledger(p: Proxy) -> list[dict[str, Any]]:
    r = httpx.get(f"{p.url}/api/v1/accounts", headers=H, timeout=10)
    accounts: list[dict[str, Any]] = r.json()["data"]["accounts"]
    return accounts


@pytest.mark.parametrize(("raw", "message"), [
    (b'{"model":"midjourney","task_type":"imagine","input":{"prompt":"a cat --fast",'
     b'"seed":NaN}}', "request body is not valid JSON: NaN is not a JSON number"),
    (b'{"model":"midjourney","task_type":"imagine","input":{"prompt":"a cat \\ud800 --fast"}}',
     "input.prompt: contains a lone surrogate (\\ud800), which is not text"),
    (b'{"model":"\\ud800","task_type":"imagine","input":{"prompt":"a cat"}}',
     "model: contains a lone surrogate (\\ud800), which is not text"),
    (b'{"model":"midjourney","task_type":"imagine","input":{"prompt":"a cat","bot_id":'
     + b"7" * 5000 + b"}}", "request body has an integer of 5000 digits; at most 20 are accepted"),
    (b"[" * 950 + b"]" * 950, "request body is nested more than 32 levels deep"),
])
def test_values_that_cannot_be_echoed_are_400_and_charge_nothing(
        proxy: Proxy, raw: bytes, message: str) -> None:
    """A body the proxy could route but not answer for is refused before routing."""
    before = _ledger(proxy)
    r = httpx.post(f"{proxy.url}/api/v1/task", content=raw,
                   headers={**H, "content-type": "application/json"}, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == message
    assert r.json()["data"]["error"]["raw_message"] == "invalid_json"
    assert _ledger(proxy) == before


@pytest.mark.parametrize("body", [{"status": []}, {"setting": {"a": 1}}, {"status": 3}])
def test_account_updates_with_the_wrong_type_are_400(proxy: Proxy, body: Any) -> None:
    r = httpx.post(f"{proxy.url}/api/v1/accounts/a1", json=body, headers=H, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith(("status: expected one of", "setting: expected one of"))


def test_oversized_body_is_413(proxy: Proxy) -> None:
    big = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x" * 70_000}}
    r = post(proxy, big)
    assert r.status_code == 413
    assert r.json()["message"].endswith("the limit is 65536 bytes")
    assert r.json()["data"]["error"]["raw_message"] == "body_too_large"


def test_router_rejections_carry_the_router_code_and_rule_E1(proxy: Proxy) -> None:
    r = post(proxy, {"model": "dalle", "task_type": "imagine", "input": {"prompt": "x"}})
    assert r.status_code == 400
    err = r.json()["data"]["error"]
    assert err["raw_message"] == "invalid_request" and err["detail"]["rule"] == "M0"
    assert "model: expected 'midjourney'" in err["message"]
    r = post(proxy, {"model": "midjourney", "task_type": "imagine",
                     "input": {"prompt": "x", "bot_id": 99}})
    assert r.status_code == 404 and r.json()["data"]["error"]["raw_message"] == "account_not_found"
    r = post(proxy, {"model": "midjourney", "task_type": "upscale",
                     "input": {"origin_task_id": "nope", "index": "1"}})
    assert r.json()["data"]["error"]["raw_message"] == "parent_not_found"


def test_unknown_task_ids_are_404(proxy: Proxy) -> None:
    r = httpx.get(f"{proxy.url}/api/v1/task/no-such-task", headers=H)
    assert r.status_code == 404 and r.json()["message"] == "no task with id no-such-task"
    r = httpx.delete(f"{proxy.url}/api/v1/task/no-such-task", headers=H)
    assert r.status_code == 404 and r.json()["data"]["error"]["raw_message"] == "task_not_found"
    r = httpx.get(f"{proxy.url}/api/v1/nothing", headers=H)
    assert r.status_code == 404 and r.json()["code"] == 404


def test_saturated_tasks_wait_pending_then_run_R5(proxy: Proxy) -> None:
    body = {"model": "midjourney", "task_type": "imagine",
            "input": {"prompt": "x", "process_mode": "relax"}}
    ids = [post(proxy, body).json()["data"] for _ in range(4)]  # a2 has room for one
    assert all(d["status"] == "pending" for d in ids)
    assert any(d["meta"]["queued"] for d in ids)
    for d in ids:
        wait_for(lambda d=d: done(proxy, d["task_id"]))
        assert get(proxy, d["task_id"])["status"] == "completed"


def test_only_pending_tasks_can_be_cancelled(proxy: Proxy) -> None:
    body = {"model": "midjourney", "task_type": "imagine",
            "input": {"prompt": "x", "process_mode": "relax"}}
    first = post(proxy, body).json()["data"]["task_id"]
    post(proxy, body)  # a1 and a2 both take relax work: the third one waits
    queued = post(proxy, body).json()["data"]
    assert queued["meta"]["queued"]
    r = httpx.delete(f"{proxy.url}/api/v1/task/{queued['task_id']}", headers=H)
    assert r.status_code == 200 and r.json()["data"]["error"]["raw_message"] == "cancelled"
    r = httpx.delete(f"{proxy.url}/api/v1/task/{first}", headers=H)  # routed, not started (2 s)
    assert r.status_code == 200
    second = post(proxy, body).json()["data"]["task_id"]
    wait_for(lambda: done(proxy, second))
    r = httpx.delete(f"{proxy.url}/api/v1/task/{second}", headers=H)
    assert r.status_code == 400
    assert r.json()["message"] == f"only pending tasks can be cancelled; task {second} is completed"


def test_task_webhook_is_retried_until_200_with_the_secret_header(proxy: Proxy) -> None:
    rec = Receiver([500, 503])
    try:
        body = {"model": "midjourney", "task_type": "imagine",
                "input": {"prompt": "x", "process_mode": "relax"},
                "config": {"webhook_config": {"endpoint": rec.url + "/hook", "secret": "s3"}}}
        task_id = post(proxy, body).json()["data"]["task_id"]
        wait_for(lambda: len(rec.calls) == 3)
        for path, headers, payload in rec.calls:
            assert path == "/hook" and headers["x-webhook-secret"] == "s3"
            assert set(payload) == {"timestamp", "data"}
            assert payload["data"]["task_id"] == task_id
            assert payload["data"]["status"] == "completed"
            assert payload["data"]["config"]["webhook_config"]["secret"] == ""
    finally:
        rec.close()


def test_account_notifications_flip_and_ban_L3(proxy: Proxy, notify: Receiver) -> None:
    body = {"model": "midjourney", "task_type": "imagine",
            "input": {"prompt": "x", "process_mode": "fast"}}
    wait_for(lambda: _account(proxy, "a1")["in_flight"] == 0)
    d = post(proxy, body).json()["data"]
    wait_for(lambda: done(proxy, d["task_id"]))
    wait_for(lambda: any(c[2]["type"] == "mj_bot_no_fasthour" for c in notify.calls))
    note = next(c[2] for c in notify.calls if c[2]["type"] == "mj_bot_no_fasthour")
    assert note["detail"]["account_id"] == "a1" and set(note) == {"type", "time", "message",
                                                                  "detail"}
    assert _account(proxy, "a1")["setting"] == "relax"
    r = httpx.post(f"{proxy.url}/api/v1/accounts/b1", json={"status": "banned"}, headers=H)
    assert r.status_code == 200 and r.json()["data"]["account"]["status"] == "banned"
    wait_for(lambda: any(c[2]["type"] == "mj_bot_banned" for c in notify.calls))


def _account(p: Proxy, acc_id: str) -> dict[str, Any]:
    r = httpx.get(f"{p.url}/api/v1/accounts", headers=H)
    accounts: list[dict[str, Any]] = r.json()["data"]["accounts"]
    return next(a for a in accounts if a["id"] == acc_id)


def test_account_secrets_are_write_only(proxy: Proxy) -> None:
    r = httpx.post(f"{proxy.url}/api/v1/accounts/a2", json={"discord_token": SECRET},
                   headers=H)
    assert r.status_code == 200 and SECRET not in r.text
    assert r.json()["data"]["account"]["secrets"] == ["discord_token"]
    bad = httpx.post(f"{proxy.url}/api/v1/accounts/a2",
                     json={"discord_token": SECRET, "color": SECRET}, headers=H)
    assert bad.status_code == 400 and SECRET not in bad.text
    assert bad.json()["message"] == ("unknown field(s) color; allowed: status, until, "
                                     "setting, discord_token")
    assert SECRET not in httpx.get(f"{proxy.url}/api/v1/accounts", headers=H).text
    assert SECRET not in httpx.get(f"{proxy.url}/metrics", headers=H).text
    assert SECRET not in proxy.output()
    r = httpx.post(f"{proxy.url}/api/v1/accounts/zz", json={"status": "active"}, headers=H)
    assert r.status_code == 404 and r.json()["message"] == "no account 'zz' in the pool"
    r = httpx.post(f"{proxy.url}/api/v1/accounts/a2", json={"status": "sleepy"}, headers=H)
    assert r.status_code == 400 and r.json()["message"].startswith("status: expected one of")


def test_metrics_are_prometheus_text(proxy: Proxy) -> None:
    r = httpx.get(f"{proxy.url}/metrics", headers=H)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'byoa_account_max_in_flight{account="a2"} 1' in r.text
    assert "# TYPE byoa_route_seconds histogram" in r.text
