"""Repeat a short trace to cover a longer horizon (a week into a billing month).

Copy ``k`` of the trace is shifted by ``k`` times its span rounded up to whole
days (so the daily profile and weekdays line up), and every task id, and every
``origin_task_id`` naming one, gets the suffix ``~k`` so that copies stay apart.
Only the operations a workload needs are kept: ``submit``, ``complete``, ``fail``.
"""

from __future__ import annotations

import copy
import gzip
import json
import math
from pathlib import Path
from typing import Any

from router.io.events import read_events
from router.timeutil import DAY, format_time

KEEP_OPS = frozenset({"submit", "complete", "fail"})


def is_event_script(path: str | Path) -> bool:
    return str(path).endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz"))


def to_event_script(path: str | Path, out: str | Path) -> Path:
    """A CSV or Parquet trace as an event script (``submit`` and ``fail`` lines).

    Read by the simulator's own reader (same checks, same line numbers in errors).
    GPU seconds recorded in the trace are not carried over: the simulation draws
    them from its cost table, per seed.
    """
    from simulations.scenario import ExecutionModel
    from simulations.traces import read_trace

    wl = read_trace(path, ExecutionModel(), 0)
    assert wl.bodies is not None
    out = Path(out)
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        for i in range(wl.n):
            at = format_time(float(wl.arrival[i]))
            fh.write(json.dumps({"op": "submit", "at": at, "task_id": wl.task_id(i),
                                 "request": wl.bodies[i]}, separators=(",", ":")) + "\n")
            if wl.fail[i]:
                fh.write(json.dumps({"op": "fail", "at": at, "task_id": wl.task_id(i)}) + "\n")
    return out


def tile_trace(path: str | Path, days: float, out: str | Path) -> Path:
    """Write ``out`` (JSON Lines, gzip when it ends in .gz) covering ``days`` days."""
    if not is_event_script(path):
        path = to_event_script(path, Path(out).with_suffix(".source.jsonl.gz"))
    events = [ev for ev in read_events(path) if ev.op in KEEP_OPS]
    out = Path(out)
    if not events:
        out.write_bytes(Path(path).read_bytes())
        return out
    first = events[0].at
    span_days = max(1, math.ceil((events[-1].at - first) / DAY + 1e-9))
    copies = max(1, math.ceil(days / span_days))
    opener: Any = gzip.open if out.suffix == ".gz" else open
    with opener(out, "wt", encoding="utf-8") as fh:
        for k in range(copies):
            shift = k * span_days * DAY
            for ev in events:
                if ev.at + shift >= first + days * DAY:
                    break
                raw = copy.deepcopy(ev.raw)
                raw["at"] = format_time(ev.at + shift)
                if k:
                    raw["task_id"] = f"{raw['task_id']}~{k}"
                    req = raw.get("request")
                    inp = req.get("input") if isinstance(req, dict) else None
                    if isinstance(inp, dict) and inp.get("origin_task_id"):
                        inp["origin_task_id"] = f"{inp['origin_task_id']}~{k}"
                fh.write(json.dumps(raw, separators=(",", ":")) + "\n")
    return out
