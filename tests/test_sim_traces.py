"""Trace replay: event scripts with complete/fail lines, CSV, gzip, Parquet, bad rows."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sim_helpers import run_toml, write_csv

from router.cli import main
from router.errors import InputError
from simulations.metrics import tasks_table
from simulations.scenario import ExecutionModel
from simulations.traces import read_trace

REQ = {"model": "midjourney", "task_type": "imagine",
       "input": {"prompt": "a cat", "process_mode": "fast"}}


def _events(path: Path, lines: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


SCRIPT = [
    {"op": "submit", "at": "2026-01-01T00:00:00Z", "task_id": "a", "request": REQ},
    {"op": "submit", "at": "2026-01-01T00:01:00Z", "task_id": "b", "request": REQ},
    {"op": "submit", "at": "2026-01-01T00:02:00Z", "task_id": "c", "request": REQ},
    {"op": "submit", "at": "2026-01-01T00:03:00Z", "task_id": "u",
     "request": {"model": "midjourney", "task_type": "upscale",
                 "input": {"origin_task_id": "a", "index": "1"}}},
    {"op": "complete", "at": "2026-01-01T00:05:00Z", "task_id": "a", "gpu_seconds": 323.5},
    {"op": "fail", "at": "2026-01-01T00:05:00Z", "task_id": "b"},
    {"op": "complete", "at": "2026-01-01T00:06:00Z", "task_id": "c", "gpu_seconds": 7.25},
]

ONE_PRO = """
    [simulation]
    days = 1
    [[fleet.groups]]
    plan = "pro"
    id_prefix = "p"
    [workload]
    trace = "{trace}"
"""


@pytest.mark.parametrize("gz", [False, True])
def test_event_script_complete_lines_give_gpu_seconds_and_fail_lines_fail(
        tmp_path: Path, gz: bool) -> None:
    """L1: complete-line gpu_seconds are charged, fail lines fail uncharged; .gz works."""
    path = _events(tmp_path / "t.jsonl", SCRIPT)
    if gz:
        with open(path, "rb") as src, gzip.open(tmp_path / "t.jsonl.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        path = tmp_path / "t.jsonl.gz"
    run = run_toml(ONE_PRO.format(trace=path.name), tmp_path)[0]
    t = tasks_table(run.result).set_index("task_id")
    assert t.loc["a", "charged_seconds"] == 323.5 and t.loc["a", "run_s"] == 323.5
    assert t.loc["c", "charged_seconds"] == 7.25
    assert t.loc["b", "status"] == "failed" and t.loc["b", "charged_seconds"] == 0.0
    # The upscale (no complete line) draws its GPU time from the cost table, and
    # waits for its parent to finish (a follow-up needs the parent's result).
    assert t.loc["u", "status"] == "completed" and t.loc["u", "gpu_seconds"] > 0
    assert t.loc["u", "ready_at"] == t.loc["a", "ended_at"]
    assert t.loc["u", "account_id"] == t.loc["a", "account_id"]  # R7 pinning
    assert run.summary["tasks_failed"] == 1  # a replayed trace gets no random failures


def test_csv_gzip_and_parquet_give_the_same_workload(tmp_path: Path) -> None:
    rows = [
        {"submitted_at": "2026-01-01T00:00:00Z", "task_id": "r1", "task_type": "imagine",
         "process_mode": "fast", "prompt": "x", "gpu_seconds": 50},
        {"submitted_at": 1767225660.0, "task_id": "r2", "task_type": "imagine",
         "prompt": "y --turbo", "failed": "true"},
        {"submitted_at": "2026-01-01T00:02:00Z", "task_id": "c1", "task_type": "variation",
         "parent_task_id": "r1"},
    ]
    csv_path = write_csv(tmp_path / "t.csv", rows)
    with open(csv_path, "rb") as src, gzip.open(tmp_path / "t.csv.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    df.to_parquet(tmp_path / "t.parquet", index=False)
    exe = ExecutionModel()
    a = read_trace(csv_path, exe, 3)
    b = read_trace(tmp_path / "t.csv.gz", exe, 3)
    c = read_trace(tmp_path / "t.parquet", exe, 3)
    for w in (b, c):
        assert w.task_ids == a.task_ids == ["r1", "r2", "c1"]
        assert w.bodies == a.bodies
        assert (w.gpu == a.gpu).all() and (w.fail == a.fail).all()
        assert list(w.parent) == [-1, -1, 0]
    assert a.gpu[0] == 50.0 and list(a.fail) == [False, True, False]
    assert a.bodies is not None and a.bodies[1]["input"] == {"prompt": "y --turbo"}


@pytest.mark.parametrize("row, where, message", [
    ({"submitted_at": "yesterday", "task_id": "x", "task_type": "imagine"},
     "t.csv:3: submitted_at:", "ISO-8601"),
    ({"submitted_at": "2026-01-01T00:00:00Z", "task_id": "x", "task_type": "paint"},
     "t.csv:3: task_type:", "expected one of"),
    ({"submitted_at": "2026-01-01T00:00:00Z", "task_id": "x", "task_type": "imagine",
      "gpu_seconds": "-3"}, "t.csv:3: gpu_seconds:", "expected seconds >= 0"),
    ({"submitted_at": "2026-01-01T00:00:00Z", "task_id": "x", "task_type": "upscale"},
     "t.csv:3: parent_task_id:", "needs its parent"),
    ({"submitted_at": "2026-01-01T00:00:00Z", "task_id": "ok", "task_type": "imagine"},
     "t.csv:3: task_id:", "duplicate"),
    ({"submitted_at": "2026-01-01T00:00:00Z", "task_id": "x", "task_type": "imagine",
      "process_mode": "superfast"}, "t.csv:3: process_mode:", "expected fast, relax, turbo"),
])
def test_bad_csv_row_names_file_line_and_column(tmp_path: Path, row: dict[str, object],
                                                where: str, message: str) -> None:
    good = {"submitted_at": "2026-01-01T00:00:00Z", "task_id": "ok", "task_type": "imagine",
            "prompt": "p"}
    write_csv(tmp_path / "t.csv", [good, row])
    with pytest.raises(InputError) as exc:
        read_trace(tmp_path / "t.csv", ExecutionModel(), 0)
    assert where in str(exc.value) and message in str(exc.value)


def test_bad_csv_header_and_parquet_row(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("when,task_id,task_type\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"h\.csv:1: submitted_at: required column"):
        read_trace(tmp_path / "h.csv", ExecutionModel(), 0)
    pd.DataFrame({"submitted_at": ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"],
                  "task_id": ["a", "b"], "task_type": ["imagine", "zoom"]}
                 ).to_parquet(tmp_path / "p.parquet", index=False)
    with pytest.raises(InputError, match=r"p\.parquet: row 2: task_type: expected one of"):
        read_trace(tmp_path / "p.parquet", ExecutionModel(), 0)


def test_bad_event_script_line_stops_the_run_before_it_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed line (here line 3, unknown field) is exit 2 with file:line: field, and
    nothing is simulated or written."""
    lines = [json.dumps(x) for x in SCRIPT[:2]]
    lines.append(json.dumps({"op": "complete", "at": "2026-01-01T00:09:00Z", "task_id": "a",
                             "gpu_seconds": 3, "colour": "red"}))
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "acc.json").write_text(json.dumps({"accounts": [{"id": "a1", "plan": "pro"}]}),
                                       encoding="utf-8")
    out = tmp_path / "out"
    code = main(["simulate", "--accounts", str(tmp_path / "acc.json"), "--trace",
                 str(tmp_path / "bad.jsonl"), "--days", "1", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "bad.jsonl:3: colour: unknown field" in err
    assert not out.exists()


@pytest.mark.parametrize("row, message", [
    ({"submitted_at": "1e20", "task_id": "x", "task_type": "imagine"},
     "t.csv:3: submitted_at: expected epoch seconds >= 0 and < 221845392000 (before "
     "9000-01-01T00:00:00Z), got '1e20'"),
    ({"submitted_at": "nan", "task_id": "x", "task_type": "imagine"},
     "t.csv:3: submitted_at: expected epoch seconds >= 0 and < 221845392000 (before "
     "9000-01-01T00:00:00Z), got 'nan'"),
    ({"submitted_at": "9999-01-01T00:00:00Z", "task_id": "x", "task_type": "imagine"},
     "t.csv:3: submitted_at: expected a time before 9000-01-01T00:00:00Z, "
     "got '9999-01-01T00:00:00Z'"),
    ({"submitted_at": "2026-01-01T00:00:00Z", "task_id": "x", "task_type": "imagine",
      "gpu_seconds": "1e308"},
     "t.csv:3: gpu_seconds: expected seconds >= 0 and <= 1,000,000,000 or empty, got '1e308'"),
    ({"submitted_at": "2026-01-01T00:00:00Z", "task_id": "x", "task_type": "imagine",
      "parent_task_id": "x"}, "t.csv:3: parent_task_id: a task cannot be its own parent"),
])
def test_bad_csv_row_out_of_range_or_own_parent(tmp_path: Path, row: dict[str, object],
                                                message: str) -> None:
    """Rows that used to fail mid-run (year 10000) or never run (own parent)."""
    good = {"submitted_at": "2026-01-01T00:00:00Z", "task_id": "ok", "task_type": "imagine"}
    write_csv(tmp_path / "t.csv", [good, row])
    with pytest.raises(InputError) as exc:
        read_trace(tmp_path / "t.csv", ExecutionModel(), 0)
    assert str(exc.value).replace(str(tmp_path / "t.csv"), "t.csv") == message


def test_csv_with_a_bom_as_excel_writes_it_is_read(tmp_path: Path) -> None:
    """Excel's 'CSV UTF-8' starts with a byte order mark; it used to hide the first
    column ('submitted_at: required column is missing')."""
    text = "submitted_at,task_id,task_type\n2026-01-01T00:00:00Z,t1,imagine\n"
    (tmp_path / "plain.csv").write_text(text, encoding="utf-8")
    (tmp_path / "excel.csv").write_text("\ufeff" + text, encoding="utf-8")
    a = read_trace(tmp_path / "plain.csv", ExecutionModel(), 0)
    b = read_trace(tmp_path / "excel.csv", ExecutionModel(), 0)
    assert b.task_ids == a.task_ids == ["t1"] and list(b.arrival) == list(a.arrival)


def test_event_script_task_naming_itself_as_origin_goes_to_the_router(tmp_path: Path) -> None:
    """As in byoa replay (parent_not_found, R7), not a child waiting for itself forever."""
    body = {"model": "midjourney", "task_type": "upscale",
            "input": {"origin_task_id": "t1", "index": "1"}}
    p = _events(tmp_path / "self.jsonl", [
        {"op": "submit", "at": "2026-01-01T00:00:00Z", "task_id": "t1", "request": body}])
    wl = read_trace(p, ExecutionModel(), 0)
    assert list(wl.parent) == [-1]


def test_csv_parent_cycle_is_refused(tmp_path: Path) -> None:
    """t1 -> t2 -> t3 -> t1: each would wait for its parent to finish and none would run."""
    (tmp_path / "t.csv").write_text(
        "submitted_at,task_id,task_type,parent_task_id\n"
        "2022-06-21T00:00:00Z,t0,imagine,\n"
        "2022-06-21T00:00:00Z,t1,upscale,t2\n"
        "2022-06-21T00:00:00Z,t2,variation,t3\n"
        "2022-06-21T00:00:00Z,t3,variation,t1\n"
        "2022-06-21T00:00:01Z,t4,upscale,t0\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_trace(tmp_path / "t.csv", ExecutionModel(), 0)
    assert str(exc.value).replace(str(tmp_path / "t.csv"), "t.csv") == (
        "t.csv:5: parent_task_id: tasks descend from themselves (t1 -> t2 -> t3 -> t1); "
        "a task cannot be its own ancestor (R7)")


def test_simulate_names_the_trace_as_given(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative --trace is named as written ('tr.csv:2'), not as an absolute path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "acc.json").write_text('{"accounts": [{"id": "a1", "plan": "pro"}]}',
                                       encoding="utf-8")
    (tmp_path / "tr.csv").write_text(
        "submitted_at,task_id,task_type,process_mode,prompt,parent_task_id,gpu_seconds,"
        "failed\n2022-06-21T00:00:00Z,t1,imagine,fast,hi,t1,60,false\n", encoding="utf-8")
    code = main(["simulate", "--accounts", "acc.json", "--trace", "tr.csv", "--days", "1",
                 "--out", "o", "--no-progress"])
    assert code == 2
    assert capsys.readouterr().err == (
        "byoa simulate: tr.csv:2: parent_task_id: a task cannot be its own parent\n")
