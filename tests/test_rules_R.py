"""R rules: choosing an account (R1-R9), one or more example tests per rule ID."""

from __future__ import annotations

import pytest
from _util import T0, acc, child, fast, imagine, pool, public, relax, turbo

from router.accounts import Mode

SECOND_ACTIVE_STATUSES = ["disabled", "banned", "captcha_required", "subscription_expired"]


# ----------------------------------------------------------------------- R1
@pytest.mark.parametrize("status", SECOND_ACTIVE_STATUSES)
def test_R1_only_active_accounts_take_work(status: str) -> None:
    p = pool(acc("a1", status=status), acc("a2", setting="relax"))
    d = p.submit("t1", fast(), T0)
    assert d.account_id == "a2" and d.fallback  # a1 is not fast-eligible
    assert d.rejections == {"a1": "R1"}
    assert status in (d.explanation or "")
    d = p.submit("t2", relax(), T0)
    assert d.account_id == "a2" and d.rejections == {"a1": "R1"}


def test_R1_no_room_is_temporary_and_never_changes_the_mode() -> None:
    p = pool(acc("a1", max_in_flight=1), acc("a2", setting="relax"))
    assert p.submit("t1", fast(), T0).account_id == "a1"
    d = p.submit("t2", fast(), T0 + 1)
    # a1 is still fast-eligible, only full: saturated, not fallback to a2 (R1, R5)
    assert d.error is not None and d.error.code == "pool_saturated"
    assert d.rejections["a1"] == "R1" and d.rejections["a2"] == "R6"
    p.complete("t1", 10, T0 + 2)
    d = p.submit("t3", fast(), T0 + 3)
    assert d.account_id == "a1" and d.effective_mode is Mode.FAST


def test_R1_zero_room_account_is_never_available() -> None:
    p = pool(acc("a1", max_in_flight=0), acc("a2", max_in_flight=1))
    assert p.submit("t1", relax(), T0).account_id == "a2"
    assert p.submit("t2", relax(), T0).error.code == "pool_saturated"  # type: ignore[union-attr]


# ----------------------------------------------------------------------- R2
def test_R2_fast_goes_to_a_fast_eligible_account_in_the_requested_mode() -> None:
    p = pool(acc("a1", setting="relax"), acc("a2", fast_s=0), acc("a3"))
    d = p.submit("t1", fast(), T0)
    assert (d.account_id, d.effective_mode, d.fallback) == ("a3", Mode.FAST, False)
    assert d.rejections == {"a1": "R6", "a2": "R2"}


def test_R2_unreserved_fast_time_counts_in_flight_estimates() -> None:
    p = pool(acc("a1", fast_s=100), acc("a2", setting="relax"))
    assert p.submit("t1", fast(), T0).effective_mode is Mode.FAST  # reserves 60 s
    assert p.submit("t2", fast(), T0).effective_mode is Mode.FAST  # 40 s unreserved > 0
    d = p.submit("t3", fast(), T0)  # 100 - 120 < 0: no unreserved fast time
    assert d.fallback and d.effective_mode is Mode.RELAX and d.rejections["a1"] == "R2"
    assert p.account("a1").reserved_ms == 120_000
    p.fail("t1", T0 + 1)  # the reservation comes back
    assert p.submit("t4", fast(), T0 + 2).effective_mode is Mode.FAST


def test_R2_turbo_requested_is_turbo_effective() -> None:
    p = pool(acc("a1"))
    d = p.submit("t1", turbo(), T0)
    assert (d.effective_mode, d.fallback) == (Mode.TURBO, False)


# ----------------------------------------------------------------------- R3
def test_R3_fallback_only_when_no_account_is_fast_eligible() -> None:
    p = pool(acc("a1", setting="relax"), acc("a2", fast_s=0), acc("b1", "basic", fast_s=0),
             acc("x1", status="banned"))
    d = p.submit("t1", fast(), T0)
    # least_loaded among the relax-eligible a1, a2: tie at 0 load, lowest id
    assert (d.account_id, d.effective_mode, d.fallback) == ("a1", Mode.RELAX, True)
    assert d.requested_mode is Mode.FAST
    assert d.rejections == {"a2": "R2", "b1": "R2", "x1": "R1"}
    assert d.explanation is not None and d.explanation.startswith("0/4 fast-eligible")
    assert "R3" in d.explanation


def test_R3_turbo_falls_back_too_and_reserves_nothing() -> None:
    p = pool(acc("a1", setting="relax"))
    d = p.submit("t1", turbo(), T0)
    assert (d.effective_mode, d.fallback, d.reserved_ms) == (Mode.RELAX, True, 0)
    assert p.account("a1").reserved_ms == 0


def test_R3_no_fallback_when_a_fast_eligible_account_exists_but_is_busy() -> None:
    p = pool(acc("a1", max_in_flight=0), acc("a2", setting="relax"))
    d = p.submit("t1", fast(), T0)
    assert d.error is not None and d.error.code == "pool_saturated" and not d.fallback


# ----------------------------------------------------------------------- R4
def test_R4_relax_on_relax_set_and_fast_set_accounts_never_basic() -> None:
    p = pool(acc("b1", "basic"), acc("a1", "standard", max_in_flight=1),
             acc("a2", "pro", setting="relax", max_in_flight=1))
    d1 = p.submit("t1", relax(), T0)
    d2 = p.submit("t2", relax(), T0)
    assert {d1.account_id, d2.account_id} == {"a1", "a2"}
    assert d1.effective_mode is Mode.RELAX and d2.effective_mode is Mode.RELAX
    assert d1.rejections["b1"] == "R4"
    d3 = p.submit("t3", relax(), T0)
    assert d3.error is not None and d3.error.code == "pool_saturated"  # not moved to b1


def test_R4_no_relax_capacity_when_only_basic_accounts() -> None:
    p = pool(acc("b1", "basic"), acc("b2", "basic", setting="relax"))
    d = p.submit("t1", relax(), T0)
    assert d.error is not None and d.error.code == "no_relax_capacity"
    assert d.error.rule == "R4" and not d.error.retryable
    assert d.rejections == {"b1": "R4", "b2": "R4"}
    d = p.submit("t2", fast(), T0)  # fast on b1 works
    assert (d.account_id, d.effective_mode) == ("b1", Mode.FAST)


def test_R4_fallback_with_only_basic_accounts_is_no_relax_capacity() -> None:
    p = pool(acc("b1", "basic", fast_s=0), acc("b2", "basic", setting="relax"))
    d = p.submit("t1", fast(), T0)
    assert d.error is not None and d.error.code == "no_relax_capacity"
    assert d.rejections == {"b1": "R2", "b2": "R6"}


# ----------------------------------------------------------------------- R5
def test_R5_saturation_is_not_fallback_by_default() -> None:
    p = pool(acc("a1", max_in_flight=1), acc("a2", setting="relax"))
    p.submit("t1", fast(), T0)
    d = p.submit("t2", fast(), T0 + 1)
    assert d.error is not None and d.error.code == "pool_saturated"
    assert d.error.retryable and d.retryable and d.error.rule == "R5"
    assert d.account_id is None and not d.fallback


def test_R5_fallback_on_saturation_policy_falls_back_to_an_available_relax_account() -> None:
    p = pool(acc("a1", max_in_flight=1), acc("a2", setting="relax"),
             fallback_on_saturation=True)
    p.submit("t1", fast(), T0)
    d = p.submit("t2", fast(), T0 + 1)
    assert (d.account_id, d.effective_mode, d.fallback, d.error) == (
        "a2", Mode.RELAX, True, None)
    assert any("R5" in n for n in d.notes)


def test_R5_fallback_on_saturation_stays_saturated_without_a_relax_account_free() -> None:
    p = pool(acc("a1", max_in_flight=1), acc("b1", "basic", setting="relax"),
             fallback_on_saturation=True)
    p.submit("t1", fast(), T0)
    d = p.submit("t2", fast(), T0 + 1)
    assert d.error is not None and d.error.code == "pool_saturated"


def test_R5_inactive_window_saturates_too() -> None:
    p = pool(acc("a1", window=(9, 11)))  # T0 is 10:00 UTC
    d = p.submit("t1", relax(), T0)
    assert d.error is not None and d.error.code == "pool_saturated"
    assert d.rejections == {"a1": "T1"}


# ----------------------------------------------------------------------- R6
def test_R6_relax_set_account_runs_everything_as_relax() -> None:
    p = pool(acc("a1", "mega", setting="relax"))
    for i, body in enumerate((fast(), turbo(), relax(), imagine())):
        d = p.submit(f"t{i}", body, T0)
        assert d.account_id == "a1" and d.effective_mode is Mode.RELAX
    assert p.account("a1").reserved_ms == 0
    p.complete("t0", 60, T0 + 60)
    assert p.account("a1").fast_ms == 60 * 3_600_000  # wasted, never spent (R6)


def test_R6_fast_work_is_never_sent_to_a_relax_set_account_with_fast_time() -> None:
    p = pool(acc("a1", "mega", setting="relax"), acc("a2", fast_s=30, max_in_flight=5))
    d = p.submit("t1", fast(), T0)
    assert (d.account_id, d.effective_mode) == ("a2", Mode.FAST)
    assert d.rejections == {"a1": "R6"}


# ----------------------------------------------------------------------- R7
def test_R7_child_goes_to_the_parents_account_and_never_moves() -> None:
    p = pool(acc("a1", max_in_flight=2), acc("a2"))
    parent = p.submit("t1", relax(), T0)
    assert parent.account_id == "a1"
    p.submit("t2", relax(), T0)  # a2 now; then a1 is the most loaded
    d = p.submit("t3", child("t1"), T0 + 1)
    assert d.account_id == "a1" and d.pinned
    assert p.submit("t4", child("t1", "variation"), T0 + 2).error.code == "pool_saturated"  # type: ignore[union-attr]


def test_R7_bot_id_pins_a_root_task() -> None:
    p = pool(acc("a1", bot_id=11), acc("a2", bot_id=12))
    d = p.submit("t1", fast(bot_id=12), T0)
    assert (d.account_id, d.effective_mode, d.pinned) == ("a2", Mode.FAST, True)


@pytest.mark.parametrize("bot_id", [0, None])
def test_R7_bot_id_zero_or_null_pins_nothing(bot_id: int | None) -> None:
    p = pool(acc("a1", bot_id=11), acc("a2", bot_id=12))
    d = p.submit("t1", relax(bot_id=bot_id), T0)
    assert d.account_id == "a1" and not d.pinned


def test_R7_unknown_bot_id_is_account_not_found() -> None:
    p = pool(acc("a1", bot_id=11))
    d = p.submit("t1", fast(bot_id=99), T0)
    assert d.error is not None and d.error.code == "account_not_found" and d.error.rule == "R7"
    assert "99" in d.error.message


@pytest.mark.parametrize("status", SECOND_ACTIVE_STATUSES)
def test_R7_pinned_account_not_active_is_pinned_account_unavailable(status: str) -> None:
    p = pool(acc("a1", bot_id=11, status=status), acc("a2"))
    d = p.submit("t1", fast(bot_id=11), T0)
    assert d.error is not None and d.error.code == "pinned_account_unavailable"
    assert status in d.error.message and d.account_id is None


def test_R7_child_of_a_banned_parent_account_is_pinned_account_unavailable() -> None:
    p = pool(acc("a1"), acc("a2"))
    p.submit("t1", fast(), T0)
    p.set_status("a1", "banned", T0 + 1)
    d = p.submit("t2", child("t1"), T0 + 2)
    assert d.error is not None and d.error.code == "pinned_account_unavailable"


def test_R7_pinned_fast_on_relax_set_runs_relax_with_fallback() -> None:
    p = pool(acc("a1", bot_id=11, setting="relax"))
    d = p.submit("t1", turbo(bot_id=11), T0)
    assert (d.account_id, d.effective_mode, d.fallback) == ("a1", Mode.RELAX, True)


def test_R7_pinned_fast_without_unreserved_fast_time_runs_relax_with_fallback() -> None:
    p = pool(acc("a1", bot_id=11, fast_s=30))
    assert p.submit("t1", fast(bot_id=11), T0).effective_mode is Mode.FAST  # reserves 60
    d = p.submit("t2", fast(bot_id=11), T0)
    assert (d.effective_mode, d.fallback) == (Mode.RELAX, True)


def test_R7_pinned_relax_request_has_no_fallback() -> None:
    p = pool(acc("a1", bot_id=11, setting="relax"))
    d = p.submit("t1", relax(bot_id=11), T0)
    assert (d.effective_mode, d.fallback) == (Mode.RELAX, False)


@pytest.mark.parametrize(("setting", "fast_s", "body"), [
    ("relax", 100.0, fast), ("fast", 0.0, fast), ("fast", 100.0, relax),
])
def test_R7_pinned_basic_that_cannot_run_is_pinned_account_cannot_run(
        setting: str, fast_s: float, body: object) -> None:
    p = pool(acc("b1", "basic", bot_id=7, setting=setting, fast_s=fast_s), acc("a1"))
    d = p.submit("t1", body(bot_id=7), T0)  # type: ignore[operator]
    assert d.error is not None and d.error.code == "pinned_account_cannot_run"
    assert d.account_id is None


def test_R7_pinned_account_without_room_is_pool_saturated() -> None:
    p = pool(acc("a1", bot_id=11, max_in_flight=1), acc("a2"))
    p.submit("t1", relax(bot_id=11), T0)
    d = p.submit("t2", relax(bot_id=11), T0)
    assert d.error is not None and d.error.code == "pool_saturated" and d.error.retryable
    assert d.account_id is None


def test_R7_pinned_tasks_ignore_inactive_windows_and_backup_dormancy() -> None:
    p = pool(acc("a1", bot_id=11, window=(9, 11)), acc("k1", bot_id=12, backup=True),
             acc("a2"))
    d = p.submit("t1", fast(bot_id=11), T0)  # inside a1's window
    assert (d.account_id, d.effective_mode) == ("a1", Mode.FAST)
    d = p.submit("t2", fast(bot_id=12), T0)  # dormant backup
    assert (d.account_id, d.effective_mode) == ("k1", Mode.FAST)
    d = p.submit("t3", child("t1"), T0 + 1)
    assert d.account_id == "a1"
    assert not p.ledger.backups_active


def test_R7_child_of_a_public_task_is_public() -> None:
    p = pool(acc("a1"))
    d = p.submit("t1", public(fast()), T0)
    assert d.pool == "public"
    c = p.submit("t2", child("t1"), T0 + 1)  # its own service_mode (none) is ignored
    assert (c.pool, c.account_id, c.effective_mode, c.error) == ("public", None, Mode.FAST, None)


def test_R7_child_of_an_unknown_parent_is_parent_not_found() -> None:
    p = pool(acc("a1"))
    d = p.submit("t1", child("nope"), T0)
    assert d.error is not None and d.error.code == "parent_not_found"
    assert "nope" in d.error.message


# ----------------------------------------------------------------------- R8
def test_R8_turbo_routes_like_fast_and_reserves_and_costs_double() -> None:
    p = pool(acc("a1", setting="relax"), acc("a2", fast_s=1000, setting="turbo"))
    d = p.submit("t1", turbo(), T0)
    assert (d.account_id, d.effective_mode, d.reserved_ms) == ("a2", Mode.TURBO, 120_000)
    assert d.rejections == {"a1": "R6"}
    out = p.complete("t1", 30, T0 + 30)
    assert out.charged_ms == 60_000 and p.account("a2").fast_ms == 940_000


def test_R8_turbo_and_fast_set_accounts_both_take_fast_and_turbo() -> None:
    p = pool(acc("a1", setting="turbo"))
    assert p.submit("t1", fast(), T0).effective_mode is Mode.FAST
    p2 = pool(acc("a1", setting="fast"))
    assert p2.submit("t1", turbo(), T0).effective_mode is Mode.TURBO


# ----------------------------------------------------------------------- R9
@pytest.mark.parametrize(("task_type", "expected_ms"), [
    ("imagine", 60_000), ("describe", 10_000), ("blend", 60_000),
])
def test_R9_default_estimates_per_task_type(task_type: str, expected_ms: int) -> None:
    p = pool(acc("a1"))
    body = {"model": "midjourney", "task_type": task_type,
            "input": {"prompt": "x", "process_mode": "fast"}}
    d = p.submit("t1", body, T0)
    assert d.reserved_ms == expected_ms == p.account("a1").reserved_ms


@pytest.mark.parametrize(("task_type", "expected_ms"), [
    ("upscale", 60_000), ("variation", 60_000), ("reroll", 60_000), ("inpaint", 60_000),
    ("outpaint", 60_000), ("pan", 60_000), ("seed", 0),
])
def test_R9_default_estimates_for_children(task_type: str, expected_ms: int) -> None:
    p = pool(acc("a1"))
    p.submit("t0", fast(), T0)
    d = p.submit("t1", child("t0", task_type), T0)
    assert d.reserved_ms == expected_ms


def test_R9_caller_estimate_overrides_and_turbo_reserves_twice() -> None:
    p = pool(acc("a1"))
    d = p.submit("t1", fast(), T0, estimated_gpu_seconds=12.5)
    assert d.reserved_ms == 12_500
    d = p.submit("t2", turbo(), T0, estimated_gpu_seconds=12.5)
    assert d.reserved_ms == 25_000
    assert p.account("a1").reserved_ms == 37_500
    d = p.submit("t3", relax(), T0, estimated_gpu_seconds=12.5)
    assert d.reserved_ms == 0


def test_R9_policy_estimate_table() -> None:
    p = pool(acc("a1"), estimates={"imagine": 30.0})
    assert p.submit("t1", turbo(), T0).reserved_ms == 60_000
