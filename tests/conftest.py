"""Shared fixtures: the spec folder beside the repo (as CI lays it out), and the
Hypothesis profiles: "ci" (default) keeps the suite within its time budget on
2 cores; ``HYPOTHESIS_PROFILE=thorough`` runs many more examples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("thorough", max_examples=1000, deadline=None,
                          suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def shared() -> Path:
    assert SHARED.is_dir(), f"../shared is missing beside the repo ({SHARED})"
    return SHARED


@pytest.fixture(scope="session")
def example_dir(shared: Path) -> Path:
    return shared / "spec" / "example"
