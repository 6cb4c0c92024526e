"""The ``byoa`` entry point: optional commands and ``python -m router.cli``."""

from __future__ import annotations

import importlib
import subprocess
import sys
from types import ModuleType

import pytest

from router import cli


def test_missing_optional_dependency_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.import_module

    def fake(name: str, package: str | None = None) -> ModuleType:
        if name == "router.proxy.cli":
            raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake)
    monkeypatch.setattr(cli, "EXTRA_COMMANDS", {})
    assert cli.main(["serve", "--port", "1"]) == 1
    err = capsys.readouterr().err
    assert "byoa serve: needs the optional dependencies of byoa-router[proxy]" in err
    assert "missing module: fastapi" in err
    assert "pip install 'byoa-router[proxy]'" in err


def test_python_dash_m_sees_the_extra_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "router.cli", "serve", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "usage: byoa serve" in out and "--redis" in out
