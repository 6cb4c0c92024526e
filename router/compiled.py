"""The optional compiled core (issue 13): which modules mypyc compiles, and the
pure-Python fallback.

``make compile`` (``tools/compile_core.py``) compiles ``CORE_MODULES`` with mypyc
into extension modules beside their sources; Python's import system then prefers
them to the ``.py`` files. The sources stay the reference and the fallback: this
module, imported by ``router/__init__.py`` before anything of the core, installs
``PureFinder`` (every core module then loads from its ``.py`` file) when
``BYOA_PURE=1`` is set, when a source was edited after the last ``make compile``
(the compiled modules would run the old code), or when the build is incomplete.
``make clean-compiled`` deletes the compiled modules; ``status()`` says which core
runs. This module is never compiled itself.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

#: The hot path of a decision (validation, routing, reservation, index updates,
#: completion), in dependency order; then the simulator's per-task loop, which calls
#: it natively (``simulations.simloop`` and the account-side state it drives).
CORE_MODULES: tuple[str, ...] = (
    "router.errors",
    "router.timeutil",
    "router.accounts",
    "router.decision",
    "router.modes",
    "router.requests",
    "router.rules",
    "router.strategies",
    "router.buckets",
    "router.candidates",
    "router.ledger",
    "router.engine",
    "router.pool",
    "simulations.midjourney",
    "simulations.central_queue",
    "simulations.simloop",
)

_ROUTER_DIR = Path(__file__).resolve().parent
_ROOT = _ROUTER_DIR.parent


def source_path(module: str) -> Path:
    """The ``.py`` file of one of ``CORE_MODULES``."""
    return _ROOT / (module.replace(".", "/") + ".py")


def pure_requested() -> bool:
    """True when the environment asks for the pure-Python core (``BYOA_PURE``)."""
    return os.environ.get("BYOA_PURE", "") not in ("", "0")


def is_compiled(module: ModuleType) -> bool:
    """True when ``module`` was loaded from a compiled extension."""
    return isinstance(getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)


def compiled_files() -> list[Path]:
    """The compiled extension of each core module that has one."""
    found = []
    for m in CORE_MODULES:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = source_path(m).with_suffix(suffix)
            if path.exists():
                found.append(path)
                break
    return found


def stale_source(built: list[Path] | None = None) -> Path | None:
    """A core source edited after the core was compiled (its compiled module would
    run the old code), or None. Compares modification times only; ``built``: the
    compiled modules, when the caller has just listed them (``compiled_files``)."""
    built = compiled_files() if built is None else list(built)
    if not built:
        return None
    built += _ROUTER_DIR.glob("_core__mypyc.*")  # the shared library: the code itself
    oldest = min(p.stat().st_mtime for p in built)
    for m in CORE_MODULES:
        src = source_path(m)
        if src.stat().st_mtime > oldest:
            return src
    return None


def status() -> str:
    """Which core this process runs, and why: for benchmarks and reports."""
    import router.pool

    if is_compiled(router.pool):
        return "compiled (mypyc)"
    if pure_requested():
        return "pure Python (BYOA_PURE is set)"
    stale = stale_source()
    if stale is not None:
        return f"pure Python ({stale.name} changed since `make compile`)"
    if len(compiled_files()) < len(CORE_MODULES):
        return "pure Python (not compiled: `make compile`)"
    return "pure Python"


class PureFinder:
    """A meta-path finder that loads the core modules from their ``.py`` files."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in CORE_MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


def use_pure() -> None:
    """Load the core from its sources from now on (before it is first imported)."""
    if not any(isinstance(f, PureFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, PureFinder())


# Only the whole core compiles as one (its modules call each other natively): a
# partial or stale build is ignored rather than mixed with the sources. Without any
# compiled module (``make install``), the import system is left as it is.
_built = compiled_files()
if _built and (pure_requested() or len(_built) < len(CORE_MODULES)
               or stale_source(_built) is not None):
    use_pure()
