"""Status changes during a run: bans and captchas (R1, L5), trace set_setting and cancel."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sim_helpers import run_toml

from simulations.metrics import tasks_table


def test_R1_L5_H1_incidents_end_by_router_recoveries_and_nothing_is_routed_meanwhile() -> None:
    """Bans and captchas from the execution model are timed set_status calls (L5, H1:
    ``until`` = now + ban_hours / captcha_minutes). The router recovers each account
    exactly at its ``until`` (H1) and routes no root task to it in between (R1); tasks in
    flight there still finish (L5). The summary counts incidents and recoveries."""
    run = run_toml("""
        [simulation]
        start = "2026-01-01T00:00:00Z"
        days = 2
        seed = 2
        [[fleet.groups]]
        plan = "pro"
        count = 3
        [workload.generator]
        rate_per_hour = 20
        [execution]
        ban_per_1000_jobs = 20
        ban_hours = 2
        captcha_per_1000_jobs = 20
        captcha_minutes = 30
    """)[0]
    res = run.result
    assert len(res.incidents) > 4
    assert {k for _, _, k in res.incidents} == {"banned", "captcha_required"}
    duration = {"banned": 2 * 3600.0, "captcha_required": 30 * 60.0}
    # H1: every incident ends by one recovery at exactly its until (the drain runs on
    # past the horizon, so even the last ones are due), recorded with the status it ended.
    expected = sorted((t + duration[k], a, k) for t, a, k in res.incidents)
    assert sorted(res.recoveries) == expected
    assert run.summary["incidents"] == len(res.incidents)
    assert run.summary["recoveries"] == len(res.recoveries)
    assert not res.pool.ledger.pending_recovery
    tasks = tasks_table(res)
    routed_at = tasks["routed_at"].astype("int64").to_numpy() / 1e9
    roots = tasks["parent_task_id"].isna().to_numpy()
    for lo, acc, kind in res.incidents:
        hi = lo + duration[kind]
        mine = (tasks["account_id"] == acc).to_numpy()
        inside = mine & roots & (routed_at > lo) & (routed_at < hi)
        assert not inside.any(), f"root task routed to {acc} while it was down"
    assert run.summary["tasks_unfinished"] == 0


def test_a_run_without_incidents_has_no_recoveries_key() -> None:
    """Without bans or captchas the summary is what it was before H1 (no ``recoveries``)."""
    run = run_toml("""
        [simulation]
        days = 1
        [[fleet.groups]]
        plan = "standard"
        count = 2
        [workload.generator]
        rate_per_hour = 5
    """)[0]
    assert run.summary["incidents"] == 0 and "recoveries" not in run.summary
    assert run.result.recoveries == []


def _script(tmp: Path, lines: list[dict[str, object]]) -> Path:
    p = tmp / "s.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return p


def _imagine(t: str, tid: str, mode: str = "fast") -> dict[str, object]:
    return {"op": "submit", "at": t, "task_id": tid,
            "request": {"model": "midjourney", "task_type": "imagine",
                        "input": {"prompt": "x", "process_mode": mode}}}


SCEN = """
    [simulation]
    days = 1
    [[fleet.accounts]]
    id = "a1"
    plan = "standard"
    max_in_flight = 1
    [workload]
    trace = "s.jsonl"
"""


def test_trace_set_setting_and_cancel_lines_are_applied_at_their_times(tmp_path: Path) -> None:
    """A set_setting line makes the account relax-set (R6: later fast work falls back);
    a cancel line drops a task still waiting in the central queue (R5) unrun and uncharged."""
    _script(tmp_path, [
        _imagine("2026-01-01T00:00:00Z", "t1"),
        {"op": "complete", "at": "2026-01-01T00:01:00Z", "task_id": "t1", "gpu_seconds": 600},
        _imagine("2026-01-01T00:01:00Z", "t2"),  # a1 is full (max_in_flight 1): queued
        {"op": "cancel", "at": "2026-01-01T00:02:00Z", "task_id": "t2"},
        {"op": "set_setting", "at": "2026-01-01T01:00:00Z", "account_id": "a1",
         "setting": "relax"},
        _imagine("2026-01-01T02:00:00Z", "t3"),
    ])
    run = run_toml(SCEN, tmp_path)[0]
    t = tasks_table(run.result).set_index("task_id")
    assert t.loc["t1", "effective_mode"] == "fast" and t.loc["t1", "charged_seconds"] == 600
    assert t.loc["t2", "status"] == "cancelled" and pd.isna(t.loc["t2", "started_at"])
    assert t.loc["t2", "queue_wait_s"] == 60.0
    assert t.loc["t3", "effective_mode"] == "relax" and bool(t.loc["t3", "fallback"])
    assert t.loc["t3", "charged_seconds"] == 0.0
