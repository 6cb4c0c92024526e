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
