"""The README's code examples run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_router_testing_example_runs() -> None:
    (block,) = [b for b in _python_blocks() if "router.testing" in b]
    namespace: dict[str, Any] = {}
    exec(compile(block, "README.md", "exec"), namespace)  # our own README
    namespace["test_no_fast_work_on_relax_set_accounts"]()  # a Hypothesis test: runs many


def test_readme_python_api_example_runs(monkeypatch: Any, capsys: Any) -> None:
    (block,) = [b for b in _python_blocks() if "load_pool" in b]
    assert len(block.strip().splitlines()) <= 10  # the API example fits in ten lines
    monkeypatch.chdir(README.parent)
    exec(compile(block, "README.md", "exec"), {})  # our own README
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith("a1 fast False 2/3 fast-eligible")
    # a1 starts with 0.02 h = 72 s; 58.2 s charged (L1) leaves 13.8 s, still fast-set (L3)
    assert second == f"{13_800 / 3_600_000} fast"  # L0: milliseconds
