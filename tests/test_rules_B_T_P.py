"""B1 backups, T1 inactive windows, P1 the public pool, X1 explanations,
E0/E1 order of checks and error codes, D1 determinism."""

from __future__ import annotations

import json
from pathlib import Path

from _util import T0, acc, child, fast, imagine, pool, public, relax

from router.accounts import Mode
from router.cli import main
from router.errors import ERROR_TYPES, NotInFlight


# ----------------------------------------------------------------------- B1
def test_B1_backup_dormant_while_an_active_non_backup_has_fast_time() -> None:
    p = pool(acc("a1", fast_s=60, max_in_flight=1), acc("k1", backup=True))
    assert p.submit("t1", fast(), T0).account_id == "a1"
    d = p.submit("t2", relax(), T0)  # a1 full, k1 dormant: saturated
    assert d.error is not None and d.error.code == "pool_saturated"
    assert d.rejections == {"a1": "R1", "k1": "B1"}


def test_B1_backups_activate_at_once_for_good_when_fast_time_runs_out() -> None:
    p = pool(acc("a1", fast_s=60), acc("k1", backup=True), acc("k2", backup=True))
    p.submit("t1", fast(), T0)
    p.complete("t1", 60, T0 + 60)
    notes, _ = p.drain()
    assert [n.type for n in notes] == ["mj_bot_no_fasthour", "backups_activated"]
    assert p.ledger.backups_active
    d = p.submit("t2", fast(), T0 + 61)
    assert (d.account_id, d.effective_mode) == ("k1", Mode.FAST)
    p.advance("2027-06-01T00:00:00Z")  # renewals refill a1: backups stay active
    assert p.ledger.backups_active
    assert "backups_activated" not in [n.type for n in p.drain()[0]]


def test_B1_backups_activate_when_no_active_non_backup_account_is_left() -> None:
    p = pool(acc("a1"), acc("k1", backup=True))
    p.set_status("a1", "banned", T0)
    notes, _ = p.drain()
    assert [n.type for n in notes] == ["backups_activated"]
    assert p.submit("t1", fast(), T0 + 1).account_id == "k1"


def test_B1_evaluated_when_the_pool_is_loaded() -> None:
    p = pool(acc("a1", fast_s=0), acc("k1", backup=True))
    d = p.submit("t1", fast(), T0)
    assert (d.account_id, d.effective_mode) == ("k1", Mode.FAST)
    assert [n.type for n in p.drain()[0]] == ["backups_activated"]


def test_B1_pool_of_only_backups_activates_them() -> None:
    p = pool(acc("k1", backup=True))
    assert p.submit("t1", relax(), T0).account_id == "k1"


# ----------------------------------------------------------------------- T1
def test_T1_inactive_window_keeps_root_tasks_away() -> None:
    p = pool(acc("a1", window=(2, 10)), acc("a2", max_in_flight=1))
    at_0930 = T0 - 1800
    assert p.submit("t1", relax(), at_0930).account_id == "a2"
    d = p.submit("t2", relax(), at_0930)
    assert d.error is not None and d.error.code == "pool_saturated"
    assert d.rejections == {"a1": "T1", "a2": "R1"}
    assert p.submit("t3", relax(), T0).account_id == "a1"  # 10:00: window is [02:00, 10:00)


def test_T1_window_may_wrap_past_midnight() -> None:
    p = pool(acc("a1", window=(22, 6)), acc("a2", max_in_flight=0))
    midnight = T0 - 10 * 3600 + 86_400
    for at, ok in ((midnight + 3 * 3600, False), (midnight + 6 * 3600, True),
                   (midnight + 21 * 3600, True), (midnight + 23 * 3600, False)):
        d = p.submit(f"t{at}", relax(), at)
        assert (d.account_id == "a1") is ok, at


def test_T1_window_never_changes_the_mode() -> None:
    p = pool(acc("a1", window=(9, 11)), acc("a2", setting="relax"))
    d = p.submit("t1", fast(), T0)
    assert d.error is not None and d.error.code == "pool_saturated" and not d.fallback


# ----------------------------------------------------------------------- P1
def test_P1_public_service_mode_goes_to_the_public_pool() -> None:
    p = pool(acc("a1"))
    d = p.submit("t1", public(imagine("a --turbo")), T0)
    assert (d.pool, d.account_id, d.effective_mode, d.requested_mode, d.fallback, d.error) == (
        "public", None, Mode.TURBO, Mode.TURBO, False, None)
    assert p.account("a1").in_flight == 0


def test_P1_public_even_with_no_active_account_or_a_bot_id() -> None:
    p = pool(acc("a1", status="banned"))
    d = p.submit("t1", public(fast(bot_id=99)), T0)
    assert d.pool == "public" and d.error is None


def test_P1_finishing_a_public_task_is_not_in_flight() -> None:
    p = pool(acc("a1"))
    p.submit("t1", public(fast()), T0)
    try:
        p.complete("t1", 10, T0 + 1)
    except NotInFlight as exc:
        assert exc.code == "not_in_flight" and "public pool (P1)" in exc.message
    else:
        raise AssertionError("completing a public task must raise NotInFlight")


def test_P1_child_follows_the_parents_pool_ignoring_its_own_service_mode() -> None:
    p = pool(acc("a1"))
    p.submit("t1", fast(), T0)
    d = p.submit("t2", public(child("t1")), T0 + 1)
    assert d.pool == "private" and d.account_id == "a1"


# ----------------------------------------------------------------------- X1
def test_X1_decision_carries_mode_source_rejections_and_a_summary_line() -> None:
    p = pool(acc("a", setting="relax"), acc("b", setting="relax"), acc("c", status="banned"),
             acc("d", fast_s=0), acc("e", fast_s=0))
    d = p.submit("t1", imagine("x", process_mode="fast"), T0)
    assert (d.requested_mode, d.mode_source, d.effective_mode, d.fallback) == (
        Mode.FAST, "process_mode", Mode.RELAX, True)
    assert d.rejections == {"b": "R6", "c": "R1", "d": "R2", "e": "R2"}
    assert d.explanation is not None
    assert d.explanation.startswith(
        "0/5 fast-eligible: 2 setting=relax (R6), 1 banned (R1), 2 no fast time (R2)")


def test_X1_explain_false_only_drops_the_per_account_part() -> None:
    full = pool(acc("a", setting="relax"), acc("b"), acc("c", status="banned"))
    lean = pool(acc("a", setting="relax"), acc("b"), acc("c", status="banned"))
    lean.explain = False
    for k, body in enumerate((fast(), relax(), fast(), child("t0"))):
        d1, d2 = full.submit(f"t{k}", body, T0), lean.submit(f"t{k}", body, T0)
        assert (d1.account_id, d1.effective_mode, d1.fallback, d1.error) == (
            d2.account_id, d2.effective_mode, d2.fallback, d2.error)
        assert d2.rejections == {}


# ----------------------------------------------------------------------- E0
def test_E0_root_order_validation_then_public_then_bot_id_then_no_active() -> None:
    p = pool(acc("a1", status="banned", bot_id=5))
    bad_public = public(imagine("x", process_mode="superfast"))
    assert p.submit("t1", bad_public, T0).error.code == "invalid_request"  # type: ignore[union-attr]
    assert p.submit("t2", public(fast(bot_id=99)), T0).pool == "public"
    assert p.submit("t3", fast(bot_id=99), T0).error.code == "account_not_found"  # type: ignore[union-attr]
    assert p.submit("t4", fast(bot_id=5), T0).error.code == "pinned_account_unavailable"  # type: ignore[union-attr]
    d = p.submit("t5", fast(), T0)
    assert d.error is not None and d.error.code == "no_active_account" and d.error.rule == "E1"
    assert d.rejections == {"a1": "R1"}


def test_E0_child_order_validation_then_parent_then_pool_then_pin() -> None:
    p = pool(acc("a1"))
    bad = {"model": "midjourney", "task_type": "upscale", "input": {"origin_task_id": ""}}
    assert p.submit("c1", bad, T0).error.code == "invalid_request"  # type: ignore[union-attr]
    assert p.submit("c2", child("zz"), T0).error.code == "parent_not_found"  # type: ignore[union-attr]
    p.submit("pub", public(fast()), T0)
    p.set_status("a1", "banned", T0)
    assert p.submit("c3", child("pub"), T0).pool == "public"  # pool before the account check
    p.set_status("a1", "active", T0)
    p.submit("t1", fast(), T0)
    p.set_status("a1", "disabled", T0)
    assert p.submit("c4", child("t1"), T0).error.code == "pinned_account_unavailable"  # type: ignore[union-attr]


# ----------------------------------------------------------------------- E1
def test_E1_error_codes_are_stable_and_only_pool_saturated_is_retryable() -> None:
    assert set(ERROR_TYPES) == {
        "invalid_request", "no_relax_capacity", "pool_saturated", "parent_not_found",
        "pinned_account_unavailable", "pinned_account_cannot_run", "account_not_found",
        "no_active_account", "not_in_flight", "unknown_account"}
    for code, cls in ERROR_TYPES.items():
        err = cls("m", "R1").as_error()
        assert err.code == code and err.retryable is (code == "pool_saturated")


def test_E1_every_routing_error_message_names_a_rule() -> None:
    p = pool(acc("b1", "basic", bot_id=1, fast_s=0), acc("a1", max_in_flight=0, bot_id=2))
    bodies = [imagine(""), fast(bot_id=9), fast(bot_id=1), relax(bot_id=2), child("x")]
    for k, body in enumerate(bodies):
        d = p.submit(f"t{k}", body, T0)
        assert d.error is not None
        assert any(f"({r}" in d.error.message for r in ("M0", "R4", "R5", "R7", "E1"))


# ----------------------------------------------------------------------- D1
def test_D1_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    accounts = tmp_path / "a.json"
    accounts.write_text(json.dumps({
        "policy": {"strategy": "weighted", "seed": 11},
        "accounts": [{"id": f"a{i}", "plan": ["basic", "standard", "pro"][i % 3],
                      "weight": i % 4, "setting": ["fast", "relax", "turbo"][i % 3]}
                     for i in range(8)]}))
    events = tmp_path / "e.jsonl"
    lines = []
    for k in range(40):
        mode = ["fast", "relax", "turbo", ""][k % 4]
        lines.append({"op": "submit", "at": f"2026-11-24T10:{k:02d}:00Z", "task_id": f"t{k}",
                      "request": imagine("x", process_mode=mode)})
    events.write_text("".join(json.dumps(x) + "\n" for x in lines))
    outs = []
    for n in range(2):
        out = tmp_path / f"o{n}.jsonl"
        assert main(["replay", "--accounts", str(accounts), "--events", str(events),
                     "--out", str(out)]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[0].count(b"\n") == 40
    picked = {json.loads(x)["account_id"] for x in outs[0].splitlines()}
    assert len(picked) > 2  # the seeded strategy really spread the work
