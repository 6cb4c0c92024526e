"""The real 2022 trace (data/, gzip) reads and routes as-is: M0/M1 accept
every body, R7/M5 pin every child of an accepted parent to its parent's account."""

from __future__ import annotations

from pathlib import Path

from router.accounts import Account, Plan
from router.io.events import read_events
from router.io.replay import replay_events
from router.ledger import Policy
from router.pool import Pool


def test_real_trace_replays_with_no_invalid_request(real_week: Path) -> None:
    trace = real_week
    accounts = [Account(f"acc-{i}", Plan.PRO if i % 2 else Plan.STANDARD, fast_ms=3_600_000,
                        max_in_flight=100_000) for i in range(6)]
    pool = Pool(accounts, Policy(), explain=False)
    events = list(read_events(trace))
    parents = {ev.task_id: ev.raw["request"]["input"].get("origin_task_id") for ev in events}
    records = list(replay_events(pool, events))
    where: dict[str, str | None] = {}
    assert len(records) == 15_305
    codes = {r["error"]["code"] for r in records if r["error"]}
    assert codes <= {"parent_not_found"}  # the dump is a sample: some parents are missing
    children = 0
    for r in records:
        if r["error"] is None:
            where[r["task_id"]] = r["account_id"]
            parent = parents[r["task_id"]]
            if parent:
                children += 1
                assert r["mode_source"] == "parent" and r["account_id"] == where[parent]
    submitted = set(parents)
    with_parent = sum(1 for p in parents.values() if p and p in submitted)
    assert children == with_parent > 3_000
