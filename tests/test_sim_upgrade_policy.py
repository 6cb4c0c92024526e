"""The opt-in ``upgrade_relax_when_expiring`` policy in scenario files:
off by default, on through ``[policy]`` or a ``[[variants]]`` entry, and on the
same workload it turns fast time that would expire into relax work run as fast."""

from __future__ import annotations

from sim_helpers import run_toml

SCENARIO = """
[simulation]
start = "2026-01-01T00:00:00Z"
days = 20
seed = 3
[[fleet.groups]]
plan = "standard"
count = 2
renewal = "2026-01-10T00:00:00Z"
[workload.generator]
rate_per_hour = 4
modes = { fast = 0.0, turbo = 0.0, relax = 1.0 }
{policy}
[[variants]]
name = "documented"
upgrade_relax_when_expiring = false
[[variants]]
name = "upgrade"
upgrade_relax_when_expiring = true
"""


def test_upgrade_relax_when_expiring_is_off_by_default_and_set_by_variants() -> None:
    """M3/R4 as documented: relax-only demand never spends fast time, so the whole
    allowance expires; the opt-in policy spends some of it before the renewal."""
    documented, upgrade = run_toml(SCENARIO.replace("{policy}", ""))
    assert documented.result.pool.policy.upgrade_relax_when_expiring is False
    assert upgrade.result.pool.policy.upgrade_relax_when_expiring is True
    d, u = documented.summary, upgrade.summary
    assert d["fast_hours_used"] == 0.0
    assert d["wasted_fast_hours"] == 2 * 15.0  # both allowances expire on Jan 10
    assert u["fast_hours_used"] > 0.0
    assert u["wasted_fast_hours"] < d["wasted_fast_hours"]
    assert u["tasks_total"] == d["tasks_total"]  # same workload (common random numbers)


def test_upgrade_relax_when_expiring_in_the_policy_section() -> None:
    policy = "[policy]\nupgrade_relax_when_expiring = true\nupgrade_relax_horizon_hours = 24"
    documented, upgrade = run_toml(SCENARIO.replace("{policy}", policy))
    assert documented.result.pool.policy.upgrade_relax_when_expiring is False  # the variant wins
    assert upgrade.result.pool.policy.upgrade_relax_when_expiring is True
    assert upgrade.result.pool.policy.upgrade_relax_horizon_hours == 24.0
