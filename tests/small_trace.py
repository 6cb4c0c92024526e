"""A small event script for planning tests: 27 fast GPU hours per 30 days."""

from __future__ import annotations

import json
from pathlib import Path

from router.timeutil import format_time, parse_time


def write_small_trace(path: Path, hours: int = 48) -> Path:
    """Each hour: a fast imagine, its upscale 2 minutes later, a relax imagine."""
    t0 = parse_time("2026-03-02T00:00:00Z")
    lines = []
    for h in range(hours):
        at = t0 + h * 3600.0
        lines.append({"op": "submit", "at": format_time(at), "task_id": f"f{h}",
                      "request": {"model": "midjourney", "task_type": "imagine",
                                  "input": {"prompt": "a fox --fast"}}})
        lines.append({"op": "submit", "at": format_time(at + 120), "task_id": f"u{h}",
                      "request": {"model": "midjourney", "task_type": "upscale",
                                  "input": {"origin_task_id": f"f{h}", "index": "1"}}})
        lines.append({"op": "submit", "at": format_time(at + 600), "task_id": f"r{h}",
                      "request": {"model": "midjourney", "task_type": "imagine",
                                  "input": {"prompt": "a fox", "process_mode": "relax"}}})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path
