"""L rules: the ledger over time (L0-L6)."""

from __future__ import annotations

import calendar
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _util import T0, acc, fast, pool, relax, turbo
from hypothesis import given
from hypothesis import strategies as st

from router.accounts import (
    PLAN_ALLOWANCE_MS,
    Mode,
    Plan,
    Setting,
    hours_to_ms,
    round_even,
    seconds_to_ms,
)
from router.cli import main
from router.timeutil import add_months, format_time, parse_time


# ----------------------------------------------------------------------- L0
def test_L0_hours_and_seconds_become_whole_milliseconds_rounded_to_nearest() -> None:
    assert hours_to_ms(0.02) == 72_000
    assert hours_to_ms(1 / 3_600_000 * 0.4) == 0
    assert hours_to_ms(1 / 3_600_000 * 0.6) == 1
    assert seconds_to_ms(58.2) == 58_200
    assert seconds_to_ms(0.0004) == 0 and seconds_to_ms(0.0006) == 1
    assert isinstance(hours_to_ms(3.3), int)
    assert PLAN_ALLOWANCE_MS[Plan.BASIC] == 11_880_000  # 3.3 h, exact in ms


@given(st.one_of(st.floats(-1e7, 1e7, allow_nan=False),
                 st.integers(-10**7, 10**7).map(lambda k: k / 1000 + 0.0005),  # ties
                 st.floats(-1e300, 1e300, allow_nan=False)))
def test_L0_seconds_to_ms_is_round_of_milliseconds(seconds: float) -> None:
    """``seconds_to_ms`` avoids the builtin ``round`` (issue 13), same answers."""
    assert seconds_to_ms(seconds) == round(seconds * 1000)


@given(st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                 st.integers(-10**9, 10**9).map(lambda k: k + 0.5),  # ties: to even
                 st.integers(-10**6, 10**6).map(lambda k: k / 8)))
def test_L0_round_even_is_round(x: float) -> None:
    """The native ``round`` that L0 (milliseconds) and S weighted (millionths of a
    weight) use: the builtin's answer for every finite float, ties to even."""
    assert round_even(x) == round(x)


@pytest.mark.parametrize("x", [math.inf, -math.inf, math.nan])
def test_L0_round_even_refuses_what_round_refuses(x: float) -> None:
    with pytest.raises((OverflowError, ValueError)) as got:
        round_even(x)
    with pytest.raises(type(got.value)) as expected:
        round(x)
    assert str(got.value) == str(expected.value)


def test_L0_ledger_counts_in_integers_and_reaches_zero_exactly() -> None:
    p = pool(acc("a1", fast_s=0.3))
    p.submit("t1", fast(), T0)
    p.submit("t2", fast(), T0)  # 300 ms - 60 s reserved < 0 -> fallback
    out = p.complete("t1", 0.1, T0 + 1)
    assert out.fast_ms == 200 and isinstance(out.fast_ms, int)
    p.submit("t3", fast(), T0 + 2)
    out = p.complete("t3", 0.2, T0 + 3)  # 0.1 + 0.2 as floats is not 0.3; in ms it is
    assert out.fast_ms == 0 and out.flipped


def test_L0_outputs_report_unrounded_hours_from_milliseconds(tmp_path: Path) -> None:
    accounts = tmp_path / "a.json"
    accounts.write_text(json.dumps({"accounts": [
        {"id": "a1", "plan": "standard", "fast_hours_remaining": 1.0000001}]}))
    events = tmp_path / "e.jsonl"
    lines = [
        {"op": "submit", "at": "2026-11-24T10:00:00Z", "task_id": "t1",
         "request": fast()},
        {"op": "complete", "at": "2026-11-24T10:01:00Z", "task_id": "t1",
         "gpu_seconds": 1.2345678},
    ]
    events.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "o.jsonl"
    assert main(["replay", "--accounts", str(accounts), "--events", str(events),
                 "--out", str(out)]) == 0
    rec = json.loads(out.read_text().splitlines()[1])
    assert rec["charged_seconds"] == 1.235  # 1234.5678 ms -> 1235 ms
    assert rec["fast_hours_remaining"] == (3_600_000 - 1235) / 3_600_000


# ----------------------------------------------------------------------- L1
def test_L1_only_completed_tasks_are_charged() -> None:
    p = pool(acc("a1", fast_s=1000))
    for t in ("t1", "t2", "t3"):
        p.submit(t, fast(), T0)
    assert p.fail("t1", T0 + 1).charged_ms == 0
    assert p.cancel("t2", T0 + 1).charged_ms == 0
    assert p.account("a1").fast_ms == 1_000_000
    assert p.complete("t3", 50, T0 + 2).charged_ms == 50_000
    a = p.account("a1")
    assert (a.fast_ms, a.in_flight, a.reserved_ms) == (950_000, 0, 0)


def test_L1_charge_by_effective_mode_fast_turbo_relax() -> None:
    p = pool(acc("a1", fast_s=1000), acc("r1", setting="relax", fast_s=1000))
    p.submit("f", fast(bot_id=None), T0)
    p.submit("t", turbo(), T0)
    p.submit("r", relax(), T0)  # least_loaded: r1 (0 load)
    assert p.complete("f", 10, T0 + 1).charged_ms == 10_000
    assert p.complete("t", 10, T0 + 1).charged_ms == 20_000
    out = p.complete("r", 10, T0 + 1)
    assert out.charged_ms == 0 and out.account_id == "r1"
    assert p.account("r1").fast_ms == 1_000_000


def test_L1_fallback_to_relax_is_charged_nothing() -> None:
    p = pool(acc("a1", setting="relax", fast_s=500))
    d = p.submit("t1", fast(), T0)
    assert d.fallback
    assert p.complete("t1", 100, T0 + 1).charged_ms == 0


# ----------------------------------------------------------------------- L2
def test_L2_charge_clamped_at_zero_with_overdraft_recorded() -> None:
    p = pool(acc("a1", fast_s=30))
    p.submit("t1", turbo(), T0)
    out = p.complete("t1", 20, T0 + 1)  # 40 s charged, 30 s left
    assert out.charged_ms == 40_000 and out.overdraft_ms == 10_000 and out.fast_ms == 0
    a = p.account("a1")
    assert a.fast_ms == 0
    assert a.period is not None and a.period.used_ms == 30_000 and a.period.overdraft_ms == 10_000


# ----------------------------------------------------------------------- L3
@pytest.mark.parametrize("setting", ["fast", "turbo"])
def test_L3_emptying_a_fast_or_turbo_set_account_flips_it_to_relax(setting: str) -> None:
    p = pool(acc("a1", setting=setting, fast_s=60))
    p.submit("t1", fast(), T0)
    out = p.complete("t1", 60, T0 + 60)
    assert out.flipped and out.setting is Setting.RELAX
    a = p.account("a1")
    assert a.setting is Setting.RELAX and a.flipped_from is Setting(setting)
    notes, _ = p.drain()
    assert [(n.type, n.account_id) for n in notes] == [("mj_bot_no_fasthour", "a1")]
    d = p.submit("t2", fast(), T0 + 61)
    assert d.fallback and d.effective_mode is Mode.RELAX and d.rejections == {}


def test_L3_no_flip_without_a_charge_or_when_time_is_left() -> None:
    p = pool(acc("a1", fast_s=60))
    p.submit("t1", fast(), T0)
    assert not p.complete("t1", 59.999, T0 + 1).flipped
    p.submit("t2", fast(), T0 + 2)
    p.set_setting("a1", "relax", T0 + 3)  # user's own setting: relax already
    out = p.complete("t2", 100, T0 + 4)
    assert out.fast_ms == 0 and not out.flipped
    assert p.drain()[0] == []


def test_L3_users_set_setting_clears_the_flip_mark() -> None:
    p = pool(acc("a1", fast_s=60))
    p.submit("t1", fast(), T0)
    p.complete("t1", 60, T0 + 1)
    assert p.account("a1").flipped_from is Setting.FAST
    p.set_setting("a1", "relax", T0 + 2)
    assert p.account("a1").flipped_from is None


def test_L3_flipped_basic_account_takes_no_work_until_fast_again() -> None:
    p = pool(acc("b1", "basic", fast_s=60, renews_at="2026-12-01T00:00:00Z"))
    p.submit("t1", fast(), T0)
    p.complete("t1", 60, T0 + 1)
    assert p.account("b1").setting is Setting.RELAX
    for i, body in enumerate((fast(), relax())):
        d = p.submit(f"x{i}", body, T0 + 2)
        assert d.error is not None and d.error.code == "no_relax_capacity"
    # renewal refills fast time but (restore off) the setting stays relax: still no work
    d = p.submit("x3", fast(), "2026-12-01T00:00:00Z")
    assert p.account("b1").fast_ms == PLAN_ALLOWANCE_MS[p.account("b1").plan]
    assert d.error is not None and d.error.code == "no_relax_capacity"
    p.set_setting("b1", "fast", "2026-12-01T00:00:01Z")
    assert p.submit("x4", fast(), "2026-12-01T00:00:02Z").effective_mode is Mode.FAST


# ----------------------------------------------------------------------- L4
def _add_months_by_datetime(anchor: float, months: int) -> float:
    """L4 by ``datetime`` and ``calendar`` (what ``add_months`` computed before its
    integer path, issue 13)."""
    dt = datetime.fromtimestamp(anchor, tz=UTC)
    total = dt.month - 1 + months
    year, month = dt.year + total // 12, total % 12 + 1
    day = min(dt.day, calendar.monthrange(year, month)[1])
    return dt.replace(year=year, month=month, day=day).timestamp()


@given(st.one_of(st.integers(0, 253_402_300_799).map(float),
                 st.integers(1_600_000_000, 2_000_000_000).map(float),
                 st.floats(0, 4e9, allow_nan=False)),
       st.integers(0, 1_300))
def test_L4_add_months_equals_the_datetime_calendar_reference(anchor: float,
                                                              months: int) -> None:
    """Whole seconds take an integer path, other times datetime's: the same
    instant (or the same error past year 9999) either way."""
    try:
        want: float | type[Exception] = _add_months_by_datetime(anchor, months)
    except (ValueError, OverflowError) as exc:
        want = type(exc)
    try:
        got: float | type[Exception] = add_months(anchor, months)
    except (ValueError, OverflowError) as exc:
        got = type(exc)
    assert got == want


def test_L4_renewals_follow_calendar_months_from_the_original_date() -> None:
    jan31 = parse_time("2027-01-31T12:00:00Z")
    assert format_time(add_months(jan31, 1)) == "2027-02-28T12:00:00Z"
    assert format_time(add_months(jan31, 2)) == "2027-03-31T12:00:00Z"
    assert format_time(add_months(jan31, 13)) == "2028-02-29T12:00:00Z"
    p = pool(acc("a1", fast_s=100, renews_at="2027-01-31T12:00:00Z"))
    p.advance("2027-01-01T00:00:00Z")
    p.advance("2027-04-30T11:59:59Z")
    _, renewals = p.drain()
    assert [format_time(r.at) for r in renewals] == [
        "2027-01-31T12:00:00Z", "2027-02-28T12:00:00Z", "2027-03-31T12:00:00Z"]
    assert format_time(p.account("a1").next_renewal_at or 0) == "2027-04-30T12:00:00Z"


def test_L4_renewal_records_expired_time_per_period_and_resets_allowance() -> None:
    allowance = PLAN_ALLOWANCE_MS[acc("a").plan]
    p = pool(acc("a1", fast_s=1000, renews_at="2026-12-01T00:00:00Z"))
    p.submit("t1", fast(), T0)
    p.complete("t1", 100, T0 + 100)
    p.advance("2026-12-01T00:00:00Z")  # due exactly at the event time
    _, renewals = p.drain()
    assert [(r.account_id, r.expired_ms) for r in renewals] == [("a1", 900_000)]
    a = p.account("a1")
    assert a.fast_ms == allowance
    p.submit("t2", fast(), "2026-12-02T00:00:00Z")
    p.complete("t2", 60, "2026-12-02T00:01:00Z")
    p.advance("2027-01-01T00:00:00Z")
    first, second = a.history
    assert (first.allowance_ms, first.used_ms, first.expired_ms) == (1_000_000, 100_000, 900_000)
    assert (second.allowance_ms, second.used_ms, second.expired_ms) == (
        allowance, 60_000, allowance - 60_000)
    assert first.end == parse_time("2026-12-01T00:00:00Z") == second.start


def test_L4_renewal_keeps_the_setting_so_a_flipped_account_stays_relax() -> None:
    p = pool(acc("a1", fast_s=60, renews_at="2026-12-01T00:00:00Z"))
    p.submit("t1", fast(), T0)
    p.complete("t1", 60, T0 + 60)
    p.advance("2026-12-01T00:00:00Z")
    a = p.account("a1")
    assert a.setting is Setting.RELAX and a.fast_ms > 0
    d = p.submit("t2", fast(), "2026-12-01T00:00:01Z")
    assert d.fallback and d.effective_mode is Mode.RELAX  # new fast time goes unused


@pytest.mark.parametrize("setting", ["fast", "turbo"])
def test_L4_restore_fast_on_renewal_gives_back_the_pre_flip_setting(setting: str) -> None:
    p = pool(acc("a1", fast_s=60, setting=setting, renews_at="2026-12-01T00:00:00Z"),
             restore_fast_on_renewal=True)
    p.submit("t1", fast(), T0)
    p.complete("t1", 60, T0 + 60)
    assert p.account("a1").setting is Setting.RELAX
    p.advance("2026-12-01T00:00:00Z")
    assert p.account("a1").setting is Setting(setting)
    assert p.account("a1").flipped_from is None
    assert p.submit("t2", fast(), "2026-12-01T00:00:01Z").effective_mode is Mode.FAST


def test_L4_restore_policy_never_touches_a_user_set_relax_account() -> None:
    p = pool(acc("a1", fast_s=60, renews_at="2026-12-01T00:00:00Z"),
             acc("u1", setting="relax", renews_at="2026-12-01T00:00:00Z"),
             restore_fast_on_renewal=True)
    p.submit("t1", fast(), T0)
    p.complete("t1", 60, T0 + 60)  # a1 flips
    p.set_setting("a1", "relax", T0 + 61)  # ... and then the user sets relax himself
    p.advance("2026-12-01T00:00:00Z")
    assert p.account("a1").setting is Setting.RELAX
    assert p.account("u1").setting is Setting.RELAX


@pytest.mark.parametrize("status", ["disabled", "banned", "captcha_required"])
def test_L4_renewal_happens_whatever_the_status(status: str) -> None:
    p = pool(acc("a1", fast_s=5, status=status, renews_at="2026-12-01T00:00:00Z"))
    p.advance("2026-12-01T00:00:00Z")
    assert [r.expired_ms for r in p.drain()[1]] == [5000]
    assert p.account("a1").fast_ms == PLAN_ALLOWANCE_MS[p.account("a1").plan]


def test_L4_subscription_expired_renewals_pass_with_no_effect() -> None:
    p = pool(acc("a1", fast_s=5, status="subscription_expired",
                 renews_at="2026-12-01T00:00:00Z"))
    p.advance("2027-02-15T00:00:00Z")  # Dec 1 and Jan 1 and Feb 1 pass
    assert p.drain()[1] == []
    a = p.account("a1")
    assert a.fast_ms == 5000 and a.history == []
    assert format_time(a.next_renewal_at or 0) == "2027-03-01T00:00:00Z"
    p.set_status("a1", "active", "2027-02-16T00:00:00Z")  # resubscribed
    p.advance("2027-03-01T00:00:00Z")  # the next instant counts again, same calendar
    assert [(format_time(r.at), r.expired_ms) for r in p.drain()[1]] == [
        ("2027-03-01T00:00:00Z", 5000)]


def test_L4_default_renewal_is_30_days_after_the_first_event() -> None:
    p = pool(acc("a1"))
    p.advance(T0)
    assert p.account("a1").renews_at == T0 + 30 * 86_400


# ----------------------------------------------------------------------- L5
def test_L5_status_change_is_immediate_and_in_flight_tasks_are_charged() -> None:
    p = pool(acc("a1", fast_s=600), acc("a2", setting="relax"))
    p.submit("t1", fast(), T0)
    p.set_status("a1", "banned", T0 + 1)
    d = p.submit("t2", fast(), T0 + 2)
    assert d.account_id == "a2" and d.fallback and d.rejections == {"a1": "R1"}
    out = p.complete("t1", 100, T0 + 3)
    assert out.charged_ms == 100_000 and out.fast_ms == 500_000
    p.set_status("a1", "active", T0 + 4)
    assert p.submit("t3", fast(), T0 + 5).account_id == "a1"


def test_L5_setting_change_is_immediate() -> None:
    p = pool(acc("a1"))
    p.set_setting("a1", "relax", T0)
    assert p.submit("t1", fast(), T0).fallback
    p.set_setting("a1", Setting.TURBO, T0 + 1)
    assert p.submit("t2", fast(), T0 + 1).effective_mode is Mode.FAST


def test_L5_unknown_account_raises_a_typed_error() -> None:
    from router.errors import UnknownAccount

    p = pool(acc("a1"))
    with pytest.raises(UnknownAccount) as exc:
        p.set_status("zz", "banned", T0)
    assert exc.value.code == "unknown_account"


# ----------------------------------------------------------------------- L6
def test_L6_due_renewals_happen_before_the_event_in_time_order() -> None:
    p = pool(acc("b", fast_s=0, renews_at="2026-11-30T00:00:00Z"),
             acc("a", fast_s=7, renews_at="2026-11-29T00:00:00Z"))
    p.advance(T0)
    d = p.submit("t1", fast(), "2026-12-30T00:00:00Z")
    _, renewals = p.drain()
    assert [(r.account_id, format_time(r.at)) for r in renewals] == [
        ("a", "2026-11-29T00:00:00Z"), ("b", "2026-11-30T00:00:00Z"),
        ("a", "2026-12-29T00:00:00Z"), ("b", "2026-12-30T00:00:00Z")]  # at the event: due
    assert d.effective_mode is Mode.FAST  # both were refilled before routing


def test_L6_time_going_backwards_is_refused() -> None:
    from router.ledger import TimeWentBackwards

    p = pool(acc("a1"))
    p.advance(T0)
    with pytest.raises(TimeWentBackwards, match="L6"):
        p.submit("t1", fast(), T0 - 1)
    assert p.submit("t2", fast(), T0).ok  # the same instant is fine
