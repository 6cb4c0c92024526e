"""Build the scenario's fleet and policy with the router's own loader.

Explicit accounts, an accounts file and ``[[fleet.groups]]`` all become documents
in the contract's accounts format and go through ``router.loading.parse_accounts``
(the same validation and defaults as ``byoa replay``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from router.accounts import Account
from router.errors import InputError
from router.ledger import Policy
from router.loading import load_accounts, parse_accounts
from router.timeutil import DAY, format_time, parse_time
from simulations.scenario import GroupModel, PolicyModel, ScenarioModel, VariantModel

#: ``renewal = "spread"``: renewal instants spread evenly over this many days.
SPREAD_DAYS = 30.0


def group_accounts(group: GroupModel, index: int, start: float) -> list[dict[str, Any]]:
    """One contract account object per account of the group."""
    prefix = group.id_prefix or f"{group.plan.value}{index}"
    out: list[dict[str, Any]] = []
    width = len(str(group.count))
    for k in range(group.count):
        if group.renewal == "spread":
            renews = start + SPREAD_DAYS * DAY * (k + 0.5) / group.count
        else:
            renews = parse_time(group.renewal)
        acc: dict[str, Any] = {
            "id": f"{prefix}-{k + 1:0{width}d}", "plan": group.plan.value,
            "setting": group.setting.value, "status": group.status.value,
            "renews_at": format_time(renews), "weight": group.weight, "backup": group.backup,
        }
        if group.fast_hours_remaining is not None:
            acc["fast_hours_remaining"] = group.fast_hours_remaining
        if group.max_in_flight is not None:
            acc["max_in_flight"] = group.max_in_flight
        if group.inactive_window is not None:
            acc["inactive_window"] = group.inactive_window.model_dump()
        out.append(acc)
    return out


def build_policy(pm: PolicyModel, variant: VariantModel | None = None) -> Policy:
    """The router ``Policy`` for the scenario (and a variant's overrides)."""
    policy = Policy(pm.strategy, pm.seed, pm.fallback_on_saturation, pm.restore_fast_on_renewal,
                    upgrade_relax_when_expiring=pm.upgrade_relax_when_expiring,
                    upgrade_relax_horizon_hours=pm.upgrade_relax_horizon_hours)
    if pm.estimates:
        policy.estimates.update(pm.estimates)
    if variant is not None:
        if variant.strategy is not None:
            policy.strategy = variant.strategy
        if variant.fallback_on_saturation is not None:
            policy.fallback_on_saturation = variant.fallback_on_saturation
        if variant.restore_fast_on_renewal is not None:
            policy.restore_fast_on_renewal = variant.restore_fast_on_renewal
        if variant.upgrade_relax_when_expiring is not None:
            policy.upgrade_relax_when_expiring = variant.upgrade_relax_when_expiring
    return policy


def build_accounts(sc: ScenarioModel, source: str, base: Path | None,
                   start: float) -> list[Account]:
    """Accounts in file order: accounts_file, then explicit accounts, then groups."""
    accounts: list[Account] = []
    if sc.fleet.accounts_file is not None:
        p = Path(sc.fleet.accounts_file)
        if base is not None and not p.is_absolute():
            p = base / p
        accounts.extend(load_accounts(p)[0])
    docs: list[dict[str, Any]] = [
        am.model_dump(exclude_none=True, exclude_defaults=False) for am in sc.fleet.accounts
    ]
    for i, group in enumerate(sc.fleet.groups):
        docs.extend(group_accounts(group, i + 1, start))
    if docs:
        text = json.dumps({"accounts": docs}, default=str)
        accounts.extend(parse_accounts(text, source=f"{source} (fleet)", fmt="json")[0])
    seen: set[str] = set()
    for acc in accounts:
        if acc.id in seen:
            raise InputError(f"duplicate account id {acc.id!r} in the fleet; ids must be "
                             "unique (set id_prefix on groups)", source=source, field="fleet")
        seen.add(acc.id)
    return accounts
