"""Shared fixtures: the spec folder beside the repo (as CI lays it out)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    assert SHARED.is_dir(), f"../shared is missing beside the repo ({SHARED})"
    return SHARED


@pytest.fixture(scope="session")
def example_dir(shared: Path) -> Path:
    return shared / "spec" / "example"
