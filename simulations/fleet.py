"""Fleets as ``router.Account`` objects, built directly (times as epoch seconds).

A scenario's fleet: an accounts file (read by ``router.io.loading``, as ``byoa
replay`` reads it), explicit ``[[fleet.accounts]]`` (the same account model and
builder) and ``[[fleet.groups]]``. A sweep's or plan's ``FleetSpec``: accounts per
plan and setting. Renewals ``spread`` over the billing month use one formula,
``simulations.facts.spread_renewals``.
"""

from __future__ import annotations

from pathlib import Path

from router.accounts import MS_PER_HOUR, PLAN_ALLOWANCE_MS, Account, Setting, hours_to_ms
from router.errors import InputError
from router.io.loading import AccountModel, account_from_model, accounts_from_models, load_accounts
from router.timeutil import DAY
from simulations.facts import BILLING_MONTH_DAYS, spread_renewals
from simulations.scenario import GroupModel, ScenarioModel
from simulations.spec import FleetGroup, FleetSpec


def group_accounts(group: GroupModel, index: int, start: float) -> list[Account]:
    """The accounts of one ``[[fleet.groups]]`` entry (``index`` from 1)."""
    prefix = group.id_prefix or f"{group.plan.value}{index}"
    width = len(str(group.count))
    if group.renewal == "spread":
        renewals = spread_renewals(start, group.count)
    else:
        renewals = [group.renewal] * group.count
    out: list[Account] = []
    for k, renews in enumerate(renewals):
        acc = account_from_model(AccountModel(
            id=f"{prefix}-{k + 1:0{width}d}", plan=group.plan, setting=group.setting,
            status=group.status, fast_hours_remaining=group.fast_hours_remaining,
            weight=group.weight, backup=group.backup, max_in_flight=group.max_in_flight,
            inactive_window=group.inactive_window, max_jobs_per_day=group.max_jobs_per_day,
            min_gap_seconds=group.min_gap_seconds))
        acc.renews_at = renews
        out.append(acc)
    return out


def scenario_accounts(sc: ScenarioModel, source: str, base: Path | None,
                      start: float) -> list[Account]:
    """Accounts in file order: accounts_file, then explicit accounts, then groups."""
    accounts: list[Account] = []
    if sc.fleet.accounts_file is not None:
        p = Path(sc.fleet.accounts_file)
        if base is not None and not p.is_absolute():
            p = base / p
        accounts.extend(load_accounts(p)[0])
    accounts.extend(accounts_from_models(sc.fleet.accounts, {}, source, ("fleet", "accounts")))
    for i, group in enumerate(sc.fleet.groups):
        accounts.extend(group_accounts(group, i + 1, start))
    seen: set[str] = set()
    for acc in accounts:
        if acc.id in seen:
            raise InputError(f"duplicate account id {acc.id!r} in the fleet; ids must be "
                             "unique (set id_prefix on groups)", source=source, field="fleet")
        seen.add(acc.id)
    return accounts


def spec_accounts(fleet: FleetSpec, start: float) -> list[Account]:
    """A sweep's or plan's fleet, ids ``<plan>-<setting>-<n>`` in group order.

    Renewals are spread over the month after ``start`` across the whole fleet
    (``"spread"``) or all one month after it (``"same"``). With ``initial_fast =
    "prorated"`` an account starts with the part of its allowance an even pace leaves
    it (allowance x days to its renewal / 30), the steady state of a running fleet.
    Bought ``extra_fast_hours`` go to the fast-set account that renews last. The fleet's
    ``max_jobs_per_day`` (H2) and ``min_gap_seconds`` (H3) go to every account.
    """
    month = BILLING_MONTH_DAYS * DAY
    n = fleet.size
    renewals = (spread_renewals(start, n) if fleet.renewal != "same"
                else [start + month] * n)
    rows: list[tuple[str, FleetGroup, float, float]] = []
    k = 0
    for group in fleet.groups:
        allowance_h = PLAN_ALLOWANCE_MS[group.plan] / MS_PER_HOUR
        for j in range(group.count):
            renews = renewals[k]
            fast_h = allowance_h
            if fleet.initial_fast == "prorated":
                fast_h = allowance_h * min(1.0, (renews - start) / month)
            rows.append((f"{group.plan.value}-{group.setting.value}-{j + 1:02d}", group,
                         renews, fast_h))
            k += 1
    if fleet.extra_fast_hours > 0:
        fast_set = [r for r in range(len(rows)) if rows[r][1].setting is not Setting.RELAX]
        if fast_set:
            last = max(fast_set, key=lambda r: rows[r][2])
            acc_id, group, renews, fast_h = rows[last]
            rows[last] = (acc_id, group, renews, fast_h + fleet.extra_fast_hours)
    return [Account(acc_id, group.plan, setting=group.setting, fast_ms=hours_to_ms(fast_h),
                    renews_at=renews, max_jobs_per_day=fleet.max_jobs_per_day,
                    min_gap_s=fleet.min_gap_seconds)
            for acc_id, group, renews, fast_h in rows]
