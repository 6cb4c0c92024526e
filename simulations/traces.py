"""Trace files -> ``Workload``: the contract's event script, CSV and Parquet.

Event script (``.jsonl``, ``.jsonl.gz``; docs/formats.md): ``submit`` lines give the
arrivals and request bodies; a ``complete`` line's ``gpu_seconds`` becomes that
task's GPU time in the simulation (a recorded log replays with its real costs);
a ``fail`` line makes that task fail; ``cancel`` cancels a task still waiting at
that time; ``set_status``/``set_setting`` are applied at their times; ``tick``
is ignored. The times of complete/fail lines are not used: the simulation
decides when tasks finish.

CSV (``.csv``, ``.csv.gz``) and Parquet (``.parquet``) have one row per task:

=================  ========  ==================================================
column             required  meaning
=================  ========  ==================================================
``submitted_at``   yes       ISO-8601 UTC time, or epoch seconds
``task_id``        yes       unique, non-empty
``task_type``      yes       imagine, describe, blend, upscale, variation, ...
``process_mode``   no        fast, relax, turbo or empty (M1)
``prompt``         no        the prompt (``--fast`` etc. count, M2)
``parent_task_id`` no        the parent's ``task_id`` for child tasks (R7)
``gpu_seconds``    no        real GPU seconds; empty: drawn from the cost table
``failed``         no        true/false (1/0): the task fails
=================  ========  ==================================================

Rows may come in any order; they are replayed in time order. A malformed row
stops everything before the run starts: ``InputError`` naming the file, line
(CSV: the physical line, header = 1; Parquet: ``row N``) and column.
Children whose parent is in the trace never arrive before their parent
finishes (a follow-up needs its parent's result), so they are released at
``max(submitted_at, parent's end)``.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from router.accounts import CHILD_TASK_TYPES, ROOT_TASK_TYPES
from router.errors import InputError
from router.io.events import read_events
from router.io.files import check_input, open_text
from router.io.limits import MAX_SECONDS, MAX_TIME, MAX_TIME_TEXT, check_time
from router.timeutil import parse_time
from simulations.scenario import ExecutionModel
from simulations.workload import TYPE_CODE, Workload, children_csr, draw_gpu, streams

log = logging.getLogger(__name__)

CSV_COLUMNS = ("submitted_at", "task_id", "task_type", "process_mode", "prompt",
               "parent_task_id", "gpu_seconds", "failed")
REQUIRED_COLUMNS = ("submitted_at", "task_id", "task_type")


@dataclass(slots=True)
class _Rows:
    at: list[float] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    types: list[int] = field(default_factory=list)
    parents: list[str | None] = field(default_factory=list)
    gpu: list[float] = field(default_factory=list)  # NaN: draw
    fail: list[bool] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    cancels: dict[str, float] = field(default_factory=dict)
    estimates: dict[str, float] = field(default_factory=dict)
    account_events: list[tuple[float, str, str, str]] = field(default_factory=list)

    def add(self, at: float, task_id: str, body: dict[str, Any], task_type: str,
            parent: str | None, gpu: float, failed: bool) -> None:
        self.index[task_id] = len(self.ids)
        self.at.append(at)
        self.ids.append(task_id)
        self.bodies.append(body)
        self.types.append(TYPE_CODE.get(task_type, TYPE_CODE["imagine"]))
        self.parents.append(parent)
        self.gpu.append(gpu)
        self.fail.append(failed)


def trace_format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "events"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    raise InputError("unknown trace format; expected .jsonl (event script), .csv or "
                     ".parquet (optionally .gz)", source=str(path))


def _read_event_script(path: Path) -> _Rows:
    rows = _Rows()
    source = str(path)
    for ev in read_events(path):
        raw = ev.raw
        if ev.op == "submit":
            tid = ev.task_id
            if tid in rows.index:
                raise InputError(f"duplicate task_id {tid!r} (already submitted earlier)",
                                 source=source, line=ev.line, field="task_id")
            body = raw["request"]
            inp = body.get("input")
            parent = inp.get("origin_task_id") if isinstance(inp, dict) else None
            est = raw.get("estimated_gpu_seconds")
            rows.add(ev.at, tid, body, str(body.get("task_type", "")),
                     parent if isinstance(parent, str) else None, math.nan, False)
            if est is not None:
                rows.estimates[tid] = float(est)
        elif ev.op in ("complete", "fail"):
            tid = ev.task_id
            i = rows.index.get(tid)
            if i is None:
                log.warning("%s:%d: %s of task %s that was never submitted: ignored",
                            source, ev.line, ev.op, tid)
                continue
            if ev.op == "complete":
                rows.gpu[i] = float(raw["gpu_seconds"])
            else:
                rows.fail[i] = True
        elif ev.op == "cancel":
            rows.cancels[ev.task_id] = ev.at
        elif ev.op == "set_status":
            rows.account_events.append((ev.at, ev.account_id, "status", str(raw["status"])))
        elif ev.op == "set_setting":
            rows.account_events.append((ev.at, ev.account_id, "setting", str(raw["setting"])))
    return rows


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value).strip()


def _row_error(msg: str, where: tuple[str, int | str], column: str) -> InputError:
    """``msg`` about ``column`` of a row: at a CSV line, or a Parquet ``row N``."""
    source, line = where
    if isinstance(line, int):
        return InputError(msg, source=source, line=line, field=column)
    return InputError(msg, source=f"{source}: {line}", field=column)


def _parse_row(rec: dict[str, object], where: tuple[str, int | str], rows: _Rows) -> None:
    def err(msg: str, column: str) -> InputError:
        return _row_error(msg, where, column)

    raw_at = rec.get("submitted_at")
    at_text = _cell(raw_at)
    if not at_text:
        raise err("required value is empty (an ISO-8601 time or epoch seconds)",
                  "submitted_at")
    if isinstance(raw_at, datetime):  # Parquet timestamp columns (naive = UTC)
        at = (raw_at if raw_at.tzinfo else raw_at.replace(tzinfo=UTC)).timestamp()
    else:
        try:
            at = float(at_text)
        except ValueError:
            try:
                at = parse_time(at_text)
            except ValueError as exc:
                raise err(str(exc), "submitted_at") from None
        else:
            if not 0 <= at < MAX_TIME:
                raise err(f"expected epoch seconds >= 0 and < {MAX_TIME:.0f} (before "
                          f"{MAX_TIME_TEXT}), got {at_text!r}", "submitted_at")
    try:
        check_time(at, at_text)
    except ValueError as exc:
        raise err(str(exc), "submitted_at") from None
    tid = _cell(rec.get("task_id"))
    if not tid:
        raise err("required value is empty", "task_id")
    if tid in rows.index:
        raise err(f"duplicate task_id {tid!r}", "task_id")
    ttype = _cell(rec.get("task_type"))
    if ttype not in ROOT_TASK_TYPES | CHILD_TASK_TYPES:
        allowed = ", ".join(sorted(ROOT_TASK_TYPES | CHILD_TASK_TYPES))
        raise err(f"expected one of {allowed}, got {ttype!r}", "task_type")
    mode = _cell(rec.get("process_mode"))
    if mode and mode.lower() not in ("fast", "relax", "turbo"):
        raise err(f"expected fast, relax, turbo or empty, got {mode!r}", "process_mode")
    prompt = _cell(rec.get("prompt"))
    parent = _cell(rec.get("parent_task_id")) or None
    if ttype in CHILD_TASK_TYPES and parent is None:
        raise err(f"a {ttype} needs its parent's task id", "parent_task_id")
    if parent == tid:
        raise err("a task cannot be its own parent", "parent_task_id")
    gtext = _cell(rec.get("gpu_seconds"))
    gpu = math.nan
    if gtext:
        try:
            gpu = float(gtext)
        except ValueError:
            raise err(f"expected seconds >= 0 or empty, got {gtext!r}", "gpu_seconds") from None
        if not 0 <= gpu <= MAX_SECONDS:
            raise err(f"expected seconds >= 0 and <= {MAX_SECONDS:,} or empty, got {gtext!r}",
                      "gpu_seconds")
    ftext = _cell(rec.get("failed")).lower()
    if ftext not in ("", "true", "false", "1", "0", "yes", "no"):
        raise err(f"expected true/false, got {ftext!r}", "failed")
    inp: dict[str, Any] = {}
    if prompt:
        inp["prompt"] = prompt
    if mode:
        inp["process_mode"] = mode
    if parent is not None:
        inp["origin_task_id"] = parent
    body = {"model": "midjourney", "task_type": ttype, "input": inp}
    rows.add(at, tid, body, ttype, parent, gpu, ftext in ("true", "1", "yes"))


def _check_columns(names: list[str], source: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise InputError(f"required column is missing; columns are {', '.join(CSV_COLUMNS)}",
                         source=source, line=1, field=missing[0])
    unknown = [c for c in names if c not in CSV_COLUMNS]
    if unknown:
        raise InputError(f"unknown column; expected only {', '.join(CSV_COLUMNS)}",
                         source=source, line=1, field=unknown[0])


def _read_csv(path: Path) -> _Rows:
    rows = _Rows()
    source = str(path)
    lines: list[int] = []  # the physical line of each row
    with open_text(path, newline="", bom=True) as fh:  # Excel starts its CSV with a BOM
        try:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise InputError("empty file; expected a header row", source=source, line=1)
            names = [h.strip() for h in header]
            _check_columns(names, source)
            for rec in reader:
                line = reader.line_num
                if not rec or all(not c.strip() for c in rec):
                    continue
                if len(rec) != len(names):
                    raise InputError(f"expected {len(names)} values, got {len(rec)}",
                                     source=source, line=line)
                _parse_row(dict(zip(names, rec, strict=True)), (source, line), rows)
                lines.append(line)
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"cannot read the file: {exc}", source=source) from None
    _check_no_cycle(rows, lambda i: (source, lines[i]))
    return rows


def _check_no_cycle(rows: _Rows, where: Callable[[int], tuple[str, int | str]]) -> None:
    """A task must not descend from itself through ``parent_task_id`` (R7): such
    tasks would each wait for the other to finish and never run."""
    state = [0] * len(rows.ids)  # 0 unseen, 1 on the current chain, 2 done
    for first in range(len(rows.ids)):
        chain: list[int] = []
        i: int | None = first
        while i is not None and state[i] == 0:
            state[i] = 1
            chain.append(i)
            par = rows.parents[i]
            i = rows.index.get(par) if par is not None else None
        if i is not None and state[i] == 1:
            loop = chain[chain.index(i):]
            names = " -> ".join(rows.ids[k] for k in (*loop, loop[0]))
            raise _row_error(f"tasks descend from themselves ({names}); a task cannot be "
                             "its own ancestor (R7)", where(loop[-1]), "parent_task_id")
        for k in chain:
            state[k] = 2


def _read_parquet(path: Path) -> _Rows:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    source = str(check_input(path))
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise InputError(f"cannot read the Parquet file: {exc}", source=source) from None
    names = list(table.column_names)
    _check_columns(names, source)
    rows = _Rows()
    for i, rec in enumerate(table.to_pylist()):
        _parse_row(rec, (source, f"row {i + 1}"), rows)
    _check_no_cycle(rows, lambda i: (source, f"row {i + 1}"))
    return rows


def read_trace(path: str | Path, exe: ExecutionModel, seed: int,
               failure_rate: float = 0.0) -> Workload:
    """Read a trace (whole file checked first) and fix its random draws (CRN).

    GPU times missing from the trace are drawn from the cost table; random
    failures are added only when ``failure_rate`` > 0 (traces default to none).
    """
    p = Path(path)
    fmt = trace_format(p)
    if not p.exists():
        raise InputError("no such file", source=str(p))
    rows = (_read_event_script(p) if fmt == "events"
            else _read_csv(p) if fmt == "csv" else _read_parquet(p))
    return rows_to_workload(rows, exe, seed, failure_rate, str(p))


def rows_to_workload(rows: _Rows, exe: ExecutionModel, seed: int, failure_rate: float,
                     source: str) -> Workload:
    n = len(rows.ids)
    order = np.argsort(np.asarray(rows.at, dtype=np.float64), kind="stable")
    at = np.asarray(rows.at, dtype=np.float64)[order]
    ids = [rows.ids[i] for i in order]
    bodies = [rows.bodies[i] for i in order]
    pos = {tid: k for k, tid in enumerate(ids)}
    types = np.asarray(rows.types, dtype=np.int8)[order]
    parent = np.full(n, -1, np.int64)
    for k, i in enumerate(order):
        par = rows.parents[i]
        if par is not None and par in pos and pos[par] != k:  # its own origin: the router's
            parent[k] = pos[par]  # business (an event script's body goes to it as it is)
    rs = streams(seed)
    gpu = np.asarray(rows.gpu, dtype=np.float64)[order]
    drawn = draw_gpu(rs["gpu"], types, exe)
    gpu = np.where(np.isnan(gpu), drawn, gpu)
    fail = np.asarray(rows.fail, dtype=np.bool_)[order]
    if failure_rate > 0:
        fail |= rs["failures"].random(n) < failure_rate
    wl = Workload(at, np.zeros(n), parent, types, gpu, fail, rs["relax"].random(n),
                  np.full(n, -1, np.int64), bodies=bodies, task_ids=ids,
                  generated_followups=False, source=source)
    wl.child_ptr, wl.child_idx = children_csr(parent)
    wl.cancel_at = {pos[t]: when for t, when in rows.cancels.items() if t in pos}
    wl.estimates = {pos[t]: est for t, est in rows.estimates.items()}
    wl.account_events = sorted(rows.account_events, key=lambda e: e[0])
    return wl
