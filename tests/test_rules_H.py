"""H rules: account health and pacing (H1 timed status, H2 daily cap, H3 minimum
gap, H4 upstream fast_exhausted). Every expected value is computed by hand from
docs/rules.md section H and docs/formats.md."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from _util import HOUR, T0, acc, events, fast, imagine, pool, relax
from hypothesis import given, settings
from hypothesis import strategies as st

from router.accounts import Account, Mode, Setting, Status
from router.cli import main
from router.decision import Decision
from router.io.replay import replay_events
from router.ledger import Policy
from router.pool import Pool
from router.requests import parse_request
from router.testing import event_scripts, pools
from router.timeutil import parse_time

DAY_END = parse_time("2026-11-25T00:00:00Z")  # the UTC midnight after T0 (10:00)


def paced(acc_id: str, *, cap: int | None = None, gap: float = 0.0, **kw: Any) -> Account:
    a = acc(acc_id, **kw)
    a.max_jobs_per_day, a.min_gap_s = cap, gap
    return a


def upscale(origin: str) -> dict[str, Any]:
    return {"model": "midjourney", "task_type": "upscale",
            "input": {"origin_task_id": origin, "index": "1"}}


def _replay(tmp_path: Path, accounts: list[dict[str, Any]],
            events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    a = tmp_path / "accounts.json"
    a.write_text(json.dumps({"accounts": accounts}))
    e = tmp_path / "events.jsonl"
    e.write_text("".join(json.dumps(x) + "\n" for x in events))
    out = tmp_path / "out.jsonl"
    assert main(["replay", "--accounts", str(a), "--events", str(e), "--out", str(out)]) == 0
    return [json.loads(x) for x in out.read_text().splitlines()]


def _submit(at: str, task_id: str, prompt: str) -> dict[str, Any]:
    return {"op": "submit", "at": at, "task_id": task_id,
            "request": {"model": "midjourney", "task_type": "imagine",
                        "input": {"prompt": prompt}}}


# ----------------------------------------------------------------------- H1
def test_H1_account_recovers_exactly_at_until_with_notification_and_recoveries(
        tmp_path: Path) -> None:
    recs = _replay(tmp_path, [{"id": "a1", "plan": "standard"}], [
        {"op": "set_status", "at": "2026-12-01T08:00:00Z", "account_id": "a1",
         "status": "banned", "until": "2026-12-01T12:00:00Z"},
        {"op": "tick", "at": "2026-12-01T11:59:59Z"},
        {"op": "tick", "at": "2026-12-01T12:00:00Z"},
        {"op": "tick", "at": "2026-12-01T12:00:01Z"},
    ])
    assert recs[0]["status"] == "banned" and "recoveries" not in recs[0]
    assert recs[0]["notifications"] == [{"type": "no_active_mj_bot"}]
    assert recs[1] == {"event": 2, "op": "tick", "error": None, "notifications": [],
                       "renewals": []}
    assert recs[2] == {"event": 3, "op": "tick", "error": None,
                       "notifications": [{"type": "account_recovered", "account_id": "a1"}],
                       "renewals": [],
                       "recoveries": [{"account_id": "a1", "at": "2026-12-01T12:00:00Z",
                                       "status_was": "banned"}]}
    assert recs[3] == {"event": 4, "op": "tick", "error": None, "notifications": [],
                       "renewals": []}


def test_H1_recovery_is_applied_before_the_event_that_passes_until(tmp_path: Path) -> None:
    recs = _replay(tmp_path, [{"id": "a1", "plan": "standard"}], [
        {"op": "set_status", "at": "2026-12-01T08:00:00Z", "account_id": "a1",
         "status": "captcha_required", "until": "2026-12-01T09:00:00Z"},
        _submit("2026-12-01T10:00:00Z", "t1", "a cat --fast"),
    ])
    assert recs[1]["recoveries"] == [{"account_id": "a1", "at": "2026-12-01T09:00:00Z",
                                      "status_was": "captcha_required"}]
    assert recs[1]["notifications"] == [{"type": "account_recovered", "account_id": "a1"}]
    assert recs[1]["account_id"] == "a1" and recs[1]["effective_mode"] == "fast"
    assert recs[1]["error"] is None


def test_H1_a_later_set_status_replaces_the_pending_recovery() -> None:
    p = pool(acc("a1"), acc("a2"))
    p.set_status("a1", "banned", T0, until=T0 + 2 * HOUR)
    p.set_status("a1", "captcha_required", T0 + HOUR, until=T0 + 3 * HOUR)
    p.advance(T0 + 2 * HOUR)
    assert p.drain_recoveries() == []
    assert p.account("a1").status is Status.CAPTCHA_REQUIRED
    p.advance(T0 + 3 * HOUR)
    [r] = p.drain_recoveries()
    assert (r.account_id, r.at, r.status_was) == ("a1", T0 + 3 * HOUR, Status.CAPTCHA_REQUIRED)
    assert p.account("a1").status is Status.ACTIVE


def test_H1_a_later_set_status_without_until_cancels_the_recovery() -> None:
    p = pool(acc("a1"), acc("a2"))
    p.set_status("a1", "banned", T0, until=T0 + HOUR)
    p.set_status("a1", "disabled", T0 + 60)
    p.advance(T0 + 10 * HOUR)
    assert p.drain_recoveries() == []
    assert p.account("a1").status is Status.DISABLED


def test_H1_in_flight_tasks_finish_and_are_charged_normally_L5() -> None:
    p = pool(acc("a1"))
    d = p.submit("t1", fast(), T0)
    assert d.account_id == "a1"
    p.set_status("a1", "banned", T0 + 10, until=T0 + HOUR)
    out = p.complete("t1", 30.0, T0 + 20)
    assert out.charged_ms == 30_000 and out.account_id == "a1"
    assert p.submit("t2", fast(), T0 + 30).error is not None  # still banned (R1)
    d3 = p.submit("t3", fast(), T0 + HOUR)  # recovered at until (H1)
    assert d3.account_id == "a1" and d3.error is None


def test_H1_renewal_and_recovery_at_the_same_instant_both_precede_the_event(
        tmp_path: Path) -> None:
    recs = _replay(tmp_path, [{"id": "a1", "plan": "standard", "fast_hours_remaining": 1.0,
                               "renews_at": "2026-12-01T12:00:00Z"}], [
        {"op": "set_status", "at": "2026-12-01T08:00:00Z", "account_id": "a1",
         "status": "banned", "until": "2026-12-01T12:00:00Z"},
        {"op": "tick", "at": "2026-12-01T12:00:00Z"},
    ])
    assert recs[1]["renewals"] == [{"account_id": "a1", "at": "2026-12-01T12:00:00Z",
                                    "expired_hours": 1.0}]
    assert recs[1]["recoveries"] == [{"account_id": "a1", "at": "2026-12-01T12:00:00Z",
                                      "status_was": "banned"}]


# ----------------------------------------------------------------------- H2
def test_H2_daily_cap_blocks_root_tasks_until_the_next_utc_midnight() -> None:
    p = pool(paced("a1", cap=2))
    assert p.submit("t1", fast(), T0).account_id == "a1"
    assert p.submit("t2", fast(), T0 + 1).account_id == "a1"
    d = p.submit("t3", fast(), T0 + 2)
    assert d.error is not None and d.error.code == "pool_saturated" and d.error.retryable
    assert d.rejections == {"a1": "H2"}
    assert d.explanation == ("1/1 fast-eligible; none available now (R5): 1 daily cap (H2)")
    assert "daily cap (H2)" in d.error.message
    assert p.submit("t4", fast(), DAY_END - 1).error is not None
    d5 = p.submit("t5", fast(), DAY_END)  # counts restart at 00:00 UTC
    assert d5.account_id == "a1" and d5.error is None


def test_H2_cap_never_changes_the_mode_saturated_not_fallback() -> None:
    p = pool(paced("a1", cap=1), acc("a2", setting="relax"))
    assert p.submit("t1", fast(), T0).account_id == "a1"
    d = p.submit("t2", fast(), T0 + 1)
    assert d.error is not None and d.error.code == "pool_saturated"
    assert d.fallback is False and d.effective_mode is None
    assert d.rejections == {"a1": "H2", "a2": "R6"}


def test_H2_pinned_tasks_ignore_the_cap_but_count() -> None:
    p = pool(paced("a1", cap=1, bot_id=7), acc("a2"))
    assert p.submit("t1", relax(), T0).account_id == "a1"
    d2 = p.submit("t2", upscale("t1"), T0 + 1)  # child pinned to a1 (R7)
    assert d2.account_id == "a1" and d2.error is None
    d3 = p.submit("t3", relax(bot_id=7), T0 + 2)  # pinned by bot_id
    assert d3.account_id == "a1" and d3.error is None
    a1 = p.account("a1")
    assert a1.jobs_on_day(T0 + 2) == 3
    assert p.submit("t4", relax(), T0 + 3).account_id == "a2"  # a1 capped (H2)


def test_H2_rejected_tasks_do_not_count() -> None:
    p = pool(paced("a1", cap=1, plan="basic", setting="relax"), acc("a2", status="banned"))
    d = p.submit("t1", relax(), T0)
    assert d.error is not None and d.error.code == "no_relax_capacity"
    assert p.account("a1").jobs_on_day(T0) == 0


def test_H2_completions_free_room_but_not_the_cap() -> None:
    p = pool(paced("a1", cap=1))
    p.submit("t1", fast(), T0)
    p.complete("t1", 10.0, T0 + 60)
    d = p.submit("t2", fast(), T0 + 120)
    assert d.error is not None and d.error.code == "pool_saturated"


# ----------------------------------------------------------------------- H3
def test_H3_a_root_task_waits_min_gap_seconds_after_the_last_routed_task() -> None:
    p = pool(paced("a1", gap=600.0), acc("a2", status="disabled"))
    assert p.submit("t1", fast(), T0).account_id == "a1"
    d = p.submit("t2", fast(), T0 + 599)
    assert d.error is not None and d.error.code == "pool_saturated"
    assert d.rejections == {"a1": "H3", "a2": "R1"}
    assert d.explanation == ("1/2 fast-eligible: 1 disabled (R1); none available now (R5): "
                             "1 gap (H3)")
    assert p.submit("t3", fast(), T0 + 600).account_id == "a1"


def test_H3_pinned_tasks_ignore_the_gap_and_restart_it() -> None:
    p = pool(paced("a1", gap=600.0))
    p.submit("t1", fast(), T0)
    d = p.submit("t2", upscale("t1"), T0 + 300)  # pinned (R7): the gap does not apply
    assert d.account_id == "a1" and d.error is None
    assert p.submit("t3", fast(), T0 + 600).error is not None  # gap counts from T0+300
    assert p.submit("t4", fast(), T0 + 900).account_id == "a1"


def test_H3_the_gap_moves_root_tasks_to_another_account() -> None:
    p = pool(paced("a1", gap=60.0), paced("a2", gap=60.0))
    assert [p.submit(f"t{k}", fast(), T0 + k * 20).account_id for k in range(4)] == [
        "a1", "a2", None, "a1"]


# ----------------------------------------------------------------------- H4
def test_H4_fast_exhausted_fail_zeroes_flips_and_reroutes_the_same_task() -> None:
    p = pool(acc("a1", fast_s=3600.0), acc("a2", fast_s=7200.0))
    d = p.submit("t1", fast(), T0)
    assert d.account_id == "a1"
    out, again = p.fail_fast_exhausted("t1", T0 + 30)
    assert out.charged_ms == 0 and out.fast_ms == 0 and out.setting is Setting.RELAX
    assert out.flipped
    notes, _ = p.drain()
    assert [(n.type, n.account_id) for n in notes] == [("mj_bot_no_fasthour", "a1")]
    assert again is not None and again.task_id == "t1"
    assert again.account_id == "a2" and again.effective_mode is Mode.FAST
    assert again.rejections == {"a1": "R6"}
    a1 = p.account("a1")
    assert a1.period is not None
    assert (a1.period.used_ms, a1.period.corrected_ms) == (0, 3_600_000)
    assert a1.flipped_from is Setting.FAST
    assert p.ledger.tasks["t1"].account_id == "a2"  # in flight again, reserved (R9)
    assert p.account("a2").reserved_ms == 60_000
    assert p.complete("t1", 50.0, T0 + 90).charged_ms == 50_000


def test_H4_reroutes_a_task_submitted_parsed_and_one_rerouted_before() -> None:
    """H4: the request stays with the task in flight, however it was submitted
    (``submit`` or ``submit_parsed``, which used to keep none) and after an
    earlier re-route: each fast-exhausted fail routes it again."""
    p = pool(acc("a1", fast_s=3600.0), acc("a2", fast_s=7200.0), acc("a3", fast_s=7200.0))
    d = p.submit_parsed("t1", parse_request(fast()), T0, 30_000)
    assert (d.account_id, d.reserved_ms) == ("a1", 30_000)
    _out, again = p.fail_fast_exhausted("t1", T0 + 30)
    assert again is not None and (again.account_id, again.reserved_ms) == ("a2", 30_000)
    _out, third = p.fail_fast_exhausted("t1", T0 + 60)
    assert third is not None and (third.account_id, third.reserved_ms) == ("a3", 30_000)
    assert p.complete("t1", 20.0, T0 + 90).account_id == "a3"
    assert "t1" not in p.ledger.tasks


def test_not_in_flight_reasons_tell_never_submitted_rejected_public_and_finished() -> None:
    """L1's error lines: why a task cannot be finished; ``submitted`` holds every
    task id submitted, accepted or rejected."""
    p = pool(acc("a1", plan="basic"))
    p.submit("t1", fast(), T0)
    assert p.submit("t2", relax(), T0 + 1).error is not None  # R4: Basic has no relax
    p.submit("t3", {**fast(), "config": {"service_mode": "public"}}, T0 + 2)
    p.complete("t1", 10.0, T0 + 3)
    assert p.submitted == {"t1", "t2", "t3"}
    assert [p.not_in_flight_reason(t) for t in ("t0", "t1", "t2", "t3")] == [
        "never submitted", "already finished", "it was rejected",
        "it went to the public pool (P1)"]


def test_H4_correction_is_neither_used_nor_expired_at_renewal() -> None:
    p = pool(acc("a1", fast_s=3600.0, renews_at="2026-11-25T10:00:00Z"), acc("a2"))
    p.submit("t1", fast(), T0)
    p.fail_fast_exhausted("t1", T0 + 30)
    p.advance(parse_time("2026-11-25T10:00:00Z"))
    [rec] = p.account("a1").history
    assert (rec.used_ms, rec.expired_ms, rec.corrected_ms) == (0, 0, 3_600_000)


def test_H4_a_child_stays_pinned_and_runs_as_relax_with_fallback() -> None:
    p = pool(acc("a1"), acc("a2", fast_s=10.0))
    p.submit("t1", fast(), T0)
    p.complete("t1", 30.0, T0 + 60)
    d = p.submit("t2", upscale("t1"), T0 + 120)
    assert d.account_id == "a1" and d.effective_mode is Mode.FAST
    _out, again = p.fail_fast_exhausted("t2", T0 + 150)
    assert again is not None and again.error is None
    assert (again.account_id, again.effective_mode, again.fallback) == ("a1", Mode.RELAX, True)


def test_H4_fast_exhausted_of_a_relax_task_is_an_ordinary_fail() -> None:
    p = pool(acc("a1", fast_s=3600.0))
    p.submit("t1", relax(), T0)
    out, again = p.fail_fast_exhausted("t1", T0 + 30)
    assert again is None and out.fast_ms == 3_600_000 and out.setting is Setting.FAST
    assert p.drain()[0] == []
    assert "t1" not in p.ledger.tasks


def test_H4_a_reroute_that_finds_no_account_is_an_error() -> None:
    p = pool(acc("a1", plan="basic"))
    p.submit("t1", fast(), T0)
    out, again = p.fail_fast_exhausted("t1", T0 + 30)
    assert out.charged_ms == 0
    assert again is not None and again.error is not None
    assert again.error.code == "no_relax_capacity"
    assert "t1" not in p.ledger.tasks


# ------------------------------------------------------- replay, H1-H4 together
def test_H1_H2_H3_H4_replay_script_gives_the_contract_fields_exactly(tmp_path: Path) -> None:
    """acc-1: cap 2 (H2); acc-2: gap 600 s (H3). t1 and t3 fill acc-1's day, t2
    starts acc-2's gap, so t4 is saturated; acc-2 goes to captcha until 00:30;
    t1 fails fast_exhausted: acc-1 zeroed and flipped, and the re-route finds
    acc-1 capped and acc-2 in captcha (saturated); after midnight t5 runs relax
    with fallback on acc-1; at 00:30 acc-2 recovers."""
    recs = _replay(tmp_path, [
        {"id": "acc-1", "plan": "standard", "fast_hours_remaining": 1.0, "max_jobs_per_day": 2},
        {"id": "acc-2", "plan": "standard", "fast_hours_remaining": 1.0, "min_gap_seconds": 600},
    ], [
        _submit("2026-12-01T23:50:00Z", "t1", "a cat --fast"),
        _submit("2026-12-01T23:51:00Z", "t2", "a dog --fast"),
        _submit("2026-12-01T23:52:00Z", "t3", "a fox --fast"),
        _submit("2026-12-01T23:53:00Z", "t4", "an owl --fast"),
        {"op": "set_status", "at": "2026-12-01T23:55:00Z", "account_id": "acc-2",
         "status": "captcha_required", "until": "2026-12-02T00:30:00Z"},
        {"op": "fail", "at": "2026-12-01T23:58:00Z", "task_id": "t1",
         "reason": "fast_exhausted"},
        _submit("2026-12-02T00:00:00Z", "t5", "a bee --fast"),
        {"op": "tick", "at": "2026-12-02T00:30:00Z"},
    ])
    assert [r["account_id"] for r in recs[:4]] == ["acc-1", "acc-2", "acc-1", None]
    assert recs[2]["rejections"] == {"acc-2": "H3"}
    assert recs[3]["error"]["code"] == "pool_saturated"
    assert recs[3]["rejections"] == {"acc-1": "H2", "acc-2": "H3"}
    assert recs[3]["explanation"] == (
        "2/2 fast-eligible; none available now (R5): 1 daily cap (H2), 1 gap (H3)")
    fail = recs[5]
    assert {k: fail[k] for k in ("task_id", "account_id", "charged_seconds",
                                 "fast_hours_remaining", "setting", "notifications")} == {
        "task_id": "t1", "account_id": "acc-1", "charged_seconds": 0.0,
        "fast_hours_remaining": 0.0, "setting": "relax",
        "notifications": [{"type": "mj_bot_no_fasthour", "account_id": "acc-1"}]}
    reroute = fail["reroute"]
    assert list(reroute) == ["account_id", "requested_mode", "mode_source", "effective_mode",
                             "fallback", "error", "explanation", "rejections"]
    assert reroute["account_id"] is None and reroute["error"]["code"] == "pool_saturated"
    assert reroute["requested_mode"] == "fast" and reroute["mode_source"] == "prompt"
    assert reroute["rejections"] == {"acc-1": "R6", "acc-2": "R1"}
    assert (recs[6]["account_id"], recs[6]["effective_mode"], recs[6]["fallback"]) == (
        "acc-1", "relax", True)
    assert recs[7]["recoveries"] == [{"account_id": "acc-2", "at": "2026-12-02T00:30:00Z",
                                      "status_was": "captcha_required"}]
    assert recs[7]["notifications"] == [{"type": "account_recovered", "account_id": "acc-2"}]
    for r in recs[:7]:
        assert "recoveries" not in r
    for r in recs:
        assert ("reroute" in r) == (r["event"] == 6)


# ---------------------------------------------------------------- properties
_MODES = st.sampled_from(["fast", "relax", "turbo"])


@st.composite
def _paced_pools(draw: st.DrawFn) -> tuple[list[Account], Policy]:
    """Pools whose every account has a daily cap (H2) and a gap (H3)."""
    accs, policy = draw(pools(max_size=5))
    for a in accs:
        a.max_jobs_per_day = draw(st.integers(1, 4))
        a.min_gap_s = float(draw(st.sampled_from([1, 30, 600, 3600])))
    return accs, policy


@st.composite
def _root_runs(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    """(op, seconds forward, pick) steps: root submits (some pinned by bot_id),
    children of earlier tasks, completions."""
    return draw(st.lists(st.tuples(st.sampled_from(["root", "root", "root", "pin", "child",
                                                    "complete"]),
                                   st.sampled_from([0, 1, 29, 30, 600, 3600, 20_000, 86_400]),
                                   st.integers(0, 50)), min_size=1, max_size=40))


def _drive(accs: list[Account], policy: Policy, steps: list[tuple[str, int, int]],
           indexed: bool = True) -> list[tuple[float, Decision]]:
    p = Pool(copy.deepcopy(accs), copy.deepcopy(policy), indexed=indexed, explain=False)
    bots = sorted(a.bot_id for a in accs if a.bot_id is not None)
    now, out, routed = T0, [], []
    for k, (op, forward, pick) in enumerate(steps):
        now += forward
        if op == "complete":
            live = sorted(p.ledger.tasks)
            if live:
                p.complete(live[pick % len(live)], 10.0, now)
            continue
        if op == "child" and routed:
            body: dict[str, Any] = upscale(routed[pick % len(routed)])
        elif op == "pin" and bots:
            body = fast(bot_id=bots[pick % len(bots)])
        else:
            body = imagine("a cat", process_mode=["fast", "relax", "turbo"][pick % 3])
        d = p.submit(f"t{k}", body, now)
        if d.error is None and d.account_id is not None:
            routed.append(d.task_id)
            out.append((now, d))
    return out


@settings(max_examples=60, deadline=None)
@given(_paced_pools(), _root_runs())
def test_H2_property_a_capped_account_never_exceeds_its_cap_in_any_UTC_day(
        pool_policy: tuple[list[Account], Policy], steps: list[tuple[str, int, int]]) -> None:
    """H2: in any UTC day, an account never receives more unpinned root tasks than
    leave its count (every routed task, pinned ones included) at most its cap;
    without pinned tasks, never more than the cap."""
    accs, policy = pool_policy
    caps = {a.id: a.max_jobs_per_day for a in accs}
    counts: dict[tuple[str, int], int] = {}
    for now, d in _drive(accs, policy, steps):
        assert d.account_id is not None
        key = (d.account_id, int(now // 86_400))
        if not d.pinned:
            cap = caps[d.account_id]
            assert cap is not None and counts.get(key, 0) < cap
        counts[key] = counts.get(key, 0) + 1


@settings(max_examples=60, deadline=None)
@given(_paced_pools(), _root_runs())
def test_H3_property_no_root_task_lands_inside_a_gap(
        pool_policy: tuple[list[Account], Policy], steps: list[tuple[str, int, int]]) -> None:
    """H3: an unpinned root task is routed to an account only min_gap_seconds or
    more after the last task (root or child, pinned or not) routed to it."""
    accs, policy = pool_policy
    gaps = {a.id: a.min_gap_s for a in accs}
    last: dict[str, float] = {}
    for now, d in _drive(accs, policy, steps):
        assert d.account_id is not None
        if not d.pinned and d.account_id in last:
            assert now >= last[d.account_id] + gaps[d.account_id]
        last[d.account_id] = now


@settings(max_examples=40, deadline=None)
@given(_paced_pools(), _root_runs())
def test_H2_H3_property_indexed_equals_the_linear_scan_with_caps_and_gaps(
        pool_policy: tuple[list[Account], Policy], steps: list[tuple[str, int, int]]) -> None:
    """S/H2/H3: with a cap and a gap on every account, the indexed candidate sets
    and the naive scan make the same decisions (every strategy's index parks
    capped and gapped accounts; the scan checks each one)."""
    accs, policy = pool_policy
    fast_run = [(t, d.task_id, d.account_id, d.effective_mode, d.error)
                for t, d in _drive(accs, policy, steps, indexed=True)]
    scan_run = [(t, d.task_id, d.account_id, d.effective_mode, d.error)
                for t, d in _drive(accs, policy, steps, indexed=False)]
    assert fast_run == scan_run


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a1", "a2"]),
                          st.sampled_from(["active", "disabled", "banned", "captcha_required"]),
                          st.one_of(st.none(), st.integers(1, 7200)),
                          st.integers(0, 5000)), min_size=1, max_size=20))
def test_H1_property_a_recovery_happens_exactly_at_until_unless_replaced(
        steps: list[tuple[str, str, int | None, int]]) -> None:
    """H1: every recovery is at the ``until`` of the account's last set_status,
    and every such ``until`` that no later set_status replaced gives one."""
    p = pool(acc("a1"), acc("a2"))
    now, pending, seen = T0, {}, []
    expected: list[tuple[str, float, str]] = []
    status = {"a1": "active", "a2": "active"}
    for acc_id, st_, until, forward in steps:
        nxt = now + forward
        for a_id, u in sorted(pending.items(), key=lambda kv: (kv[1], kv[0])):
            if u <= nxt:  # due before the next event (L6)
                expected.append((a_id, u, status[a_id]))
                status[a_id] = "active"
                del pending[a_id]
        now = nxt
        timed = until is not None and st_ != "active"
        p.set_status(acc_id, st_, now, until=now + until if timed and until else None)
        seen += [(r.account_id, r.at, r.status_was.value) for r in p.drain_recoveries()]
        status[acc_id] = st_
        if timed and until:
            pending[acc_id] = now + until
        else:
            pending.pop(acc_id, None)
    p.advance(now + 10_000)
    seen += [(r.account_id, r.at, r.status_was.value) for r in p.drain_recoveries()]
    expected += [(a_id, u, status[a_id])
                 for a_id, u in sorted(pending.items(), key=lambda kv: (kv[1], kv[0]))]
    assert seen == expected


@settings(max_examples=60, deadline=None)
@given(pools(max_size=4), st.data())
def test_H4_property_fast_exhausted_never_charges_and_always_reroutes_or_errors(
        pool_policy: tuple[list[Account], Policy], data: st.DataObject) -> None:
    """H4: a fail with reason fast_exhausted is never charged; for a task running
    as fast or turbo it always gives a new decision for the same task id, routed
    or with an error; for a relax task it is a plain fail (no re-route)."""
    accs, policy = pool_policy
    bots = [a.bot_id for a in accs if a.bot_id is not None]
    script = data.draw(event_scripts([a.id for a in accs], bots, max_events=40))
    p = Pool(copy.deepcopy(accs), copy.deepcopy(policy))
    modes: dict[str, str | None] = {}
    for rec in replay_events(p, events(script)):
        if rec["op"] == "submit":
            modes[rec["task_id"]] = rec["effective_mode"]
        if rec["op"] != "fail" or rec["error"] is not None:
            continue
        assert rec["charged_seconds"] == 0.0
        ran = modes[rec["task_id"]]
        if ran in ("fast", "turbo") and "reroute" in rec:
            again = rec["reroute"]
            assert (again["account_id"] is None) == (again["error"] is not None)
            modes[rec["task_id"]] = again["effective_mode"]
        else:
            assert "reroute" not in rec
        line = script[rec["event"] - 1]
        assert ("reroute" in rec) == (line.get("reason") == "fast_exhausted"
                                      and ran in ("fast", "turbo"))



def test_H1_H4_readme_worked_example_is_byte_identical_to_the_recorded_transcript() -> None:
    """The README's H1-H4 worked example (examples/health/) gives exactly the bytes
    recorded in tests/data/health_example.out.jsonl, which the README shows."""
    repo = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "router.cli", "replay",
           "--accounts", str(repo / "examples" / "health" / "accounts.json"),
           "--events", str(repo / "examples" / "health" / "events.jsonl")]
    got = subprocess.run(cmd, capture_output=True, check=True).stdout
    recorded = (repo / "tests" / "data" / "health_example.out.jsonl").read_bytes()
    assert got == recorded
    assert recorded.decode() in (repo / "README.md").read_text(encoding="utf-8")
