"""Schemathesis drives every operation of the proxy's own OpenAPI document
(bounded: a few dozen examples per operation) and finds no server error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
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


def test_no_server_error_on_any_operation(served: Proxy) -> None:
    """Any body, path or header the schema allows is answered 2xx or 4xx, never 5xx.

    Driven with Hypothesis per operation (schemathesis' pytest plugin is not
    used, so the suite does not depend on its pytest internals)."""
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    seen = []
    for result in schema.get_all_operations():
        operation = result.ok()
        seen.append(f"{operation.method.upper()} {operation.path}")

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=served.url, headers={"x-api-key": API_KEY},
                                 timeout=10)
            case.validate_response(response, checks=[not_a_server_error])
            assert response.status_code < 500

        check()
    assert set(seen) >= {"POST /api/v1/task", "GET /api/v1/task/{task_id}",
                         "DELETE /api/v1/task/{task_id}", "GET /api/v1/accounts",
                         "POST /api/v1/accounts/{account_id}", "GET /metrics"}
