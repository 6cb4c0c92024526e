"""Shared fixtures: the repository's own copies of the worked example and the real
2022 week (the suite never reads anything outside the repository), and the
Hypothesis profiles: "ci" (default) keeps the suite within its time budget on
2 cores; ``HYPOTHESIS_PROFILE=thorough`` runs many more examples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
REAL_WEEK = REPO / "data" / "mj2022-week1.events.jsonl.gz"
GOAPI_EXAMPLE = Path(__file__).resolve().parent / "data" / "goapi_imagine_example.json"

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("thorough", max_examples=1000, deadline=None,
                          suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def example_dir() -> Path:
    """The contract's worked example: accounts, events and the expected output."""
    return EXAMPLES


@pytest.fixture(scope="session")
def real_week() -> Path:
    """The real June 2022 week (data/README.md says where it comes from)."""
    return REAL_WEEK


def pytest_report_header() -> str:
    """Say which redis-server the store and proxy tests start (tests/redis_server.py)."""
    from redis_server import redis_binary

    from router.errors import InputError

    try:
        return f"redis-server: {redis_binary().describe()}"
    except InputError as exc:
        return f"redis-server: none ({exc})"

