"""The ``byoa`` entry point: the command table (``byoa.commands`` entry points),
optional commands and ``python -m router.cli``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from router import cli


def test_missing_optional_dependency_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without fastapi (None in sys.modules makes its import fail), ``byoa serve``
    is listed but says which extra to install."""
    for name in [m for m in sys.modules if m.startswith(("router.proxy", "fastapi"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert cli.main(["serve", "--port", "1"]) == 1
    err = capsys.readouterr().err
    assert "byoa serve: needs the optional dependencies of byoa-router[proxy]" in err
    assert "missing module: fastapi" in err
    assert "pip install 'byoa-router[proxy]'" in err


def test_python_dash_m_sees_the_extra_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "router.cli", "serve", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "usage: byoa serve" in out and "--redis" in out


def test_the_command_table_lists_every_command_in_help_order() -> None:
    assert list(cli.commands()) == ["route", "replay", "simulate", "sweep", "plan",
                                    "accounts", "serve"]


def test_router_never_imports_simulations() -> None:
    """The layout's direction: simulations depend on router, never the reverse (not
    even at run time: the command table loads simulations' commands by entry point)."""
    repo = Path(__file__).resolve().parent.parent
    offenders = [f"{path.relative_to(repo)}:{n}"
                 for path in sorted((repo / "router").rglob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if re.match(r"\s*(from|import)\s+simulations\b", line)]
    assert offenders == []
    code = ("import sys, router, router.cli, router.pool, router.stores.memory; "
            "print(sorted(m for m in sys.modules if m.startswith('simulations')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"

