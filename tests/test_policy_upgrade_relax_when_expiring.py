"""Opt-in policy ``upgrade_relax_when_expiring`` (departs from M3/R4 on purpose).

Off by default: every documented behaviour is unchanged. On: a relax-requested
root task runs as fast on a fast-eligible account whose fast time would expire
unused before its renewal, and the decision says that this departs from the rules.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from router import InputError, Mode, Policy, Pool, load_accounts
from router.accounts import Account, Plan, Setting, hours_to_ms

RENEW = "2026-12-01T00:00:00Z"


def _pool(*, on: bool, setting: Setting = Setting.FAST, horizon: float = 48.0,
          plan: Plan = Plan.STANDARD) -> Pool:
    from router.timeutil import parse_time

    acc = Account("a1", plan, setting=setting, fast_ms=hours_to_ms(15),
                  renews_at=parse_time(RENEW), max_in_flight=13)
    policy = Policy(upgrade_relax_when_expiring=on, upgrade_relax_horizon_hours=horizon)
    pool = Pool([acc], policy)
    pool.advance("2026-11-01T00:00:00Z")  # the billing period starts here
    return pool


def _imagine(mode: str) -> dict[str, object]:
    return {"model": "midjourney", "task_type": "imagine",
            "input": {"prompt": "a cat", "process_mode": mode}}


def test_upgrade_relax_when_expiring_off_by_default_runs_relax_as_documented_R4() -> None:
    assert Policy().upgrade_relax_when_expiring is False
    pool = _pool(on=False)
    d = pool.submit("t1", _imagine("relax"), at="2026-11-30T12:00:00Z")
    assert d.effective_mode is Mode.RELAX and d.account_id == "a1"
    assert not any("upgrade" in n for n in d.notes)


def test_upgrade_relax_when_expiring_runs_relax_request_as_fast_and_charges_it_L1() -> None:
    pool = _pool(on=True)
    d = pool.submit("t1", _imagine("relax"), at="2026-11-30T12:00:00Z")
    assert d.requested_mode is Mode.RELAX
    assert d.effective_mode is Mode.FAST and d.account_id == "a1" and not d.fallback
    assert d.reserved_ms == 60_000  # R9 estimate, like any fast task
    note = " ".join(d.notes)
    assert "upgrade_relax_when_expiring" in note and "departs from the documented rules" in note
    out = pool.complete("t1", gpu_seconds=50, at="2026-11-30T12:01:00Z")
    assert out.charged_ms == 50_000  # charged as fast (L1)
    assert pool.account("a1").fast_ms == hours_to_ms(15) - 50_000


def test_upgrade_relax_when_expiring_not_before_the_horizon() -> None:
    pool = _pool(on=True, horizon=48.0)
    d = pool.submit("t1", _imagine("relax"), at="2026-11-27T00:00:00Z")  # 4 days left
    assert d.effective_mode is Mode.RELAX


def test_upgrade_relax_when_expiring_keeps_what_fast_demand_will_spend_at_this_pace() -> None:
    """29 days used 14.9 h: at that pace the last day spends more than the 0.1 h left,
    so nothing would expire unused and relax stays relax."""
    pool = _pool(on=True)
    pool.submit("f1", _imagine("fast"), at="2026-11-01T00:00:00Z")
    pool.complete("f1", gpu_seconds=14.9 * 3600, at="2026-11-30T00:00:00Z")
    d = pool.submit("t1", _imagine("relax"), at="2026-11-30T00:00:00Z")
    assert d.effective_mode is Mode.RELAX


def test_upgrade_relax_when_expiring_never_uses_a_relax_set_account_R6() -> None:
    pool = _pool(on=True, setting=Setting.RELAX)
    d = pool.submit("t1", _imagine("relax"), at="2026-11-30T12:00:00Z")
    assert d.effective_mode is Mode.RELAX


def test_upgrade_relax_when_expiring_children_inherit_the_relax_request_M5() -> None:
    pool = _pool(on=True)
    pool.submit("t1", _imagine("relax"), at="2026-11-30T12:00:00Z")
    pool.complete("t1", gpu_seconds=50, at="2026-11-30T12:01:00Z")
    child = {"model": "midjourney", "task_type": "upscale",
             "input": {"origin_task_id": "t1", "index": "1"}}
    d = pool.submit("c1", child, at="2026-11-30T12:02:00Z")
    assert d.requested_mode is Mode.RELAX and d.effective_mode is Mode.RELAX


def test_upgrade_relax_when_expiring_read_from_the_accounts_file(tmp_path: Path) -> None:
    f = tmp_path / "accounts.toml"
    f.write_text('[policy]\nupgrade_relax_when_expiring = true\n'
                 'upgrade_relax_horizon_hours = 24\n\n'
                 '[[accounts]]\nid = "a1"\nplan = "standard"\n')
    _accounts, policy = load_accounts(f)
    assert policy.upgrade_relax_when_expiring is True
    assert policy.upgrade_relax_horizon_hours == 24.0


def test_upgrade_relax_when_expiring_bad_value_names_file_line_and_field(tmp_path: Path) -> None:
    f = tmp_path / "accounts.json"
    f.write_text('{"policy": {"upgrade_relax_when_expiring": "yes"},\n'
                 ' "accounts": [{"id": "a1", "plan": "standard"}]}\n')
    with pytest.raises(InputError) as exc:
        load_accounts(f)
    msg = str(exc.value)
    assert f"{f}:1" in msg and "policy.upgrade_relax_when_expiring" in msg
