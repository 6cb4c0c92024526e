"""Compile the router's core with mypyc, in place (issue 13): ``make compile``.

Each module of ``router.compiled.CORE_MODULES`` gets an extension module beside
its source (``router/pool.cpython-311-*.so``, ``simulations/simloop...so`` ...),
and the compiled code of all of them one shared library, ``router/_core__mypyc*.so``.
The ``.py`` files stay the reference and the fallback: ``BYOA_PURE=1`` loads them
instead, and ``--clean`` deletes the extensions. The C sources and objects go to ``build/mypyc``.

Usage: ``python tools/compile_core.py [--clean]``
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "mypyc"


def core_modules() -> tuple[str, ...]:
    """``CORE_MODULES``, read without importing ``router`` (whose compiled modules
    this script is about to replace)."""
    spec = importlib.util.spec_from_file_location("_byoa_core_list", ROOT / "router/compiled.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    modules: tuple[str, ...] = mod.CORE_MODULES
    return modules


def compiled_files() -> list[Path]:
    """Every extension module under ``router/`` and ``simulations/`` (the core's and
    the shared library)."""
    return sorted({p for s in importlib.machinery.EXTENSION_SUFFIXES
                   for pkg in ("router", "simulations") for p in (ROOT / pkg).glob("*" + s)})


def clean() -> None:
    for path in compiled_files():
        path.unlink()
        print(f"removed {path.relative_to(ROOT)}")


def compile_core() -> None:
    from mypyc.build import mypycify
    from setuptools import Distribution  # type: ignore[import-untyped]

    paths = [m.replace(".", "/") + ".py" for m in core_modules()]
    # Unlink the old extensions first: a process that has them loaded keeps its
    # copy, instead of seeing the file rewritten under it.
    clean()
    extensions = mypycify(paths, opt_level="3", group_name="router._core",
                          target_dir=str(BUILD))
    # A bare Distribution reads no configuration file (pyproject.toml is the
    # package's, not this build's): build_ext alone, in place.
    dist = Distribution({"name": "byoa-router-core", "ext_modules": extensions})
    cmd = dist.get_command_obj("build_ext")
    cmd.inplace = True
    cmd.build_temp = str(BUILD / "temp")
    cmd.build_lib = str(BUILD / "lib")
    cmd.parallel = 2
    dist.run_command("build_ext")
    # build_ext copies an unchanged module's extension with its old time: stamp them
    # all now, the build time router.compiled compares the sources with.
    for path in compiled_files():
        os.utime(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clean", action="store_true",
                    help="delete the compiled modules (back to the pure-Python core)")
    args = ap.parse_args(argv)
    if args.clean:
        clean()
        return 0
    t0 = time.perf_counter()
    compile_core()
    print(f"compiled {len(core_modules())} modules in {time.perf_counter() - t0:.0f} s:")
    for path in compiled_files():
        print(f"  {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
