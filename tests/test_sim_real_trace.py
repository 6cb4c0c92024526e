"""One day of the real June 2022 Midjourney trace (data/, read its README)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd

from router.cli import main
from router.timeutil import parse_time

FLEET = {
    "policy": {"strategy": "least_loaded"},
    "accounts": [
        {"id": "pro-1", "plan": "pro", "renews_at": "2022-06-23T00:00:00Z"},
        {"id": "std-1", "plan": "standard", "renews_at": "2022-06-20T12:00:00Z"},
        {"id": "std-2", "plan": "standard", "setting": "relax"},
    ],
}


def test_one_day_of_the_2022_trace_replays_through_the_router(
        real_week: Path, tmp_path: Path, capsys: object) -> None:
    """Every submit of the first day arrives, none is rejected (parents always precede
    children, R7), children run on their parent's account, and the one renewal inside
    the day (std-1 at 12:00, L4) is counted."""
    trace = real_week
    with gzip.open(trace, "rt", encoding="utf-8") as fh:
        subs = [json.loads(line) for line in fh]
    t0 = parse_time(subs[0]["at"])
    day = [s for s in subs if parse_time(s["at"]) < t0 + 86_400]
    acc = tmp_path / "fleet.json"
    acc.write_text(json.dumps(FLEET), encoding="utf-8")
    out = tmp_path / "out"
    code = main(["simulate", "--accounts", str(acc), "--trace", str(trace), "--days", "1",
                 "--out", str(out), "--no-progress", "--no-plots"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tasks_total"] == len(day)
    assert summary["tasks_rejected"] == {}
    assert summary["tasks_failed"] == 0  # a replayed trace gets no random failures
    assert summary["tasks_completed"] == len(day)
    fast = sum(1 for s in day if s["request"]["task_type"] == "imagine"
               and s["request"]["input"].get("process_mode") == "fast")
    assert summary["tasks_fast_requested"] >= fast  # children inherit fast too (M5)
    assert summary["renewals_in_horizon"] == 1
    assert summary["wasted_fast_hours_by_cause"]["relax_set_by_user"] == 0.0
    tasks = pd.read_parquet(out / "tasks.parquet").set_index("task_id")
    kids = tasks[tasks["parent_task_id"].notna()]
    parents = tasks.loc[kids["parent_task_id"], "account_id"].to_numpy()
    assert (kids["account_id"].to_numpy() == parents).all()
    assert (kids["ready_at"].to_numpy() >=
            tasks.loc[kids["parent_task_id"], "ended_at"].to_numpy()).all()
    assert (out / "periods.csv").exists() and (out / "fast_time.csv").exists()
