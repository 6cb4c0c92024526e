"""Schemathesis drives every operation of the proxy's own OpenAPI document
(bounded: a few dozen examples per operation): it finds no server error, and no
request answered other than 200 changed the ledger (no charge without a 200 and
a task id)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from proxy_procs import API_KEY, Proxy, start_proxy
from schemathesis.checks import not_a_server_error

ACCOUNTS = {"accounts": [
    {"id": "a1", "plan": "standard", "max_in_flight": 3, "bot_id": 5},
    {"id": "a2", "plan": "basic", "max_in_flight": 2},
]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    d: Path = tmp_path_factory.mktemp("schemathesis")
    (d / "accounts.json").write_text(json.dumps(ACCOUNTS))
    p = start_proxy(["--accounts", str(d / "accounts.json"), "--speedup", "1000",
                     "--webhook-backoff", "0.01"], str(d))
    yield p
    p.stop()


H = {"x-api-key": API_KEY}
COUNTED = ("routed", "queued")  # tasks this process accepted, by how


def ledger(url: str) -> tuple[Any, ...]:
    """What a request can change: every account as the API shows it (fast time,
    in flight, status, setting, secrets by name; L0-L5), the waiting line (R5) and
    the tasks accepted so far. Read once nothing is in flight or waiting, so that
    no task finishing in the background changes it between two reads."""
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=10, headers=H) as c:
        while True:
            accounts = c.get(f"{url}/api/v1/accounts").json()["data"]["accounts"]
            metrics = c.get(f"{url}/metrics").text.splitlines()
            queue = next(line for line in metrics if line.startswith("byoa_queue_length "))
            idle = all(a["in_flight"] == 0 for a in accounts) and queue.endswith(" 0")
            if idle:
                break
            assert time.monotonic() < deadline, ("the pool never went idle", accounts, queue)
            time.sleep(0.02)
    counts = tuple(line for line in metrics for event in COUNTED
                   if line.startswith(f'byoa_tasks_total{{event="{event}"}} '))
    return json.dumps(accounts, sort_keys=True), queue, counts


def test_no_server_error_on_any_operation(served: Proxy) -> None:
    """Any body, path or header the schema allows is answered 2xx or 4xx, never 5xx;
    and a request answered anything but 200 changed no ledger state: no fast time
    charged or reserved, nothing in flight, no account changed, no task accepted
    or queued (L1: a charge needs an accepted task, whose answer is 200 with a
    task id).

    Driven with Hypothesis per operation (schemathesis' pytest plugin is not
    used, so the suite does not depend on its pytest internals)."""
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    seen = []
    refused: list[int] = []  # statuses of the answers whose ledger was compared
    for result in schema.get_all_operations():
        operation = result.ok()
        seen.append(f"{operation.method.upper()} {operation.path}")

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            before = ledger(served.url)
            response = case.call(base_url=served.url, headers={"x-api-key": API_KEY},
                                 timeout=10)
            case.validate_response(response, checks=[not_a_server_error])
            assert response.status_code < 500
            if response.status_code != 200:
                assert ledger(served.url) == before, (response.status_code, response.text)
                refused.append(response.status_code)

        check()
    assert set(seen) >= {"POST /api/v1/task", "GET /api/v1/task/{task_id}",
                         "DELETE /api/v1/task/{task_id}", "GET /api/v1/accounts",
                         "POST /api/v1/accounts/{account_id}", "GET /metrics"}
    assert {400, 404} <= set(refused)  # the ledger comparison did run on refusals


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
FLAGS = st.sampled_from(["", " --fast", " --relax", " --turbo", " --v 6", " --ar 16:9",
                         " --fast --relax", " --"])
INPUT = st.fixed_dictionaries(
    {"prompt": st.one_of(st.builds(lambda t, f: t + f, st.text(max_size=20), FLAGS), JSONISH)},
    optional={"process_mode": st.sampled_from(["fast", "relax", "turbo", "", "FAST", 5, None]),
              "origin_task_id": st.one_of(st.text(max_size=10), JSONISH),
              "index": st.one_of(st.sampled_from(["1", "4", "9"]), JSONISH),
              "seed": st.one_of(st.integers(), st.floats()),
              "bot_id": st.one_of(st.integers(-2, 9), JSONISH)})
TASK_BODY = st.fixed_dictionaries(
    {"model": st.sampled_from(["midjourney", "Midjourney", "", "mj"]),
     "task_type": st.sampled_from(["imagine", "upscale", "variation", "reroll", "describe",
                                   "blend", "inpaint", "nope"]),
     "input": st.one_of(INPUT, JSONISH)},
    optional={"config": st.one_of(st.fixed_dictionaries({"service_mode": st.sampled_from(
        ["private", "public", ""])}), JSONISH)})


def test_a_task_is_charged_only_with_a_200_and_a_task_id(served: Proxy) -> None:
    """L1 at the HTTP edge: near-valid GoAPI task bodies (the schema alone rarely
    builds one the router accepts) are either accepted, 200 with a task id, or
    answered otherwise with no ledger state changed (no fast time, reservation,
    account or accepted task)."""
    outcomes: list[int] = []

    @given(body=TASK_BODY)
    @example(body={"model": "midjourney", "task_type": "imagine",  # both ends, always
                   "input": {"prompt": "a cat --fast"}})
    @example(body={"model": "midjourney", "task_type": "nope", "input": {"prompt": "a cat"}})
    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(body: dict[str, Any]) -> None:
        before = ledger(served.url)
        r = httpx.post(f"{served.url}/api/v1/task", headers=H, timeout=10,
                       content=json.dumps(body))
        assert r.status_code < 500, r.text
        if r.status_code == 200:
            assert r.json()["data"]["task_id"], r.text
        else:
            assert ledger(served.url) == before, (body, r.status_code, r.text)
        outcomes.append(r.status_code)

    check()
    assert 200 in outcomes and any(s != 200 for s in outcomes), outcomes
