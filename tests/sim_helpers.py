"""Helpers shared by the simulator tests (tests/test_sim_*.py)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from simulations.run import Run, run_scenario
from simulations.scenario import parse_scenario

DAY = 86_400.0


def run_toml(text: str, tmp: Path | None = None) -> list[Run]:
    """Validate and run a scenario given as TOML text (relative paths from ``tmp``)."""
    sc = parse_scenario(text, source="test.toml")
    return run_scenario(sc, source="test.toml", base=tmp)


def write_csv(path: Path, rows: Iterable[dict[str, object]]) -> Path:
    cols = ["submitted_at", "task_id", "task_type", "process_mode", "prompt",
            "parent_task_id", "gpu_seconds", "failed"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})
    return path


def fast_rows(start: float, n: int, prefix: str, *, mode: str = "fast", gpu: float = 60.0,
              spacing: float = 61.0) -> list[dict[str, object]]:
    """``n`` imagine tasks asking ``mode``, one every ``spacing`` s, ``gpu`` s each."""
    return [{"submitted_at": start + k * spacing, "task_id": f"{prefix}{k}",
             "task_type": "imagine", "process_mode": mode, "prompt": "a cat",
             "gpu_seconds": gpu} for k in range(n)]
