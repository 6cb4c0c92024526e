"""Accounts as flat Redis hashes (and back), exactly: floats by ``repr``, L0 ints."""

from __future__ import annotations

import json
from typing import Any

from router.accounts import Account, InactiveWindow, PeriodRecord, Plan, Setting, Status
from router.ledger import Policy
from router.strategies import Strategy

#: Fields the ledger changes on a completion, renewal or user change (CAS-written).
LEDGER_FIELDS = ("setting", "status", "fast_ms", "flipped_from", "renewals_done",
                 "next_renewal_at", "period")


def _f(v: float | None) -> str:
    return "" if v is None else repr(float(v))


def _uf(s: str) -> float | None:
    return None if s == "" else float(s)


#: ``json.dumps(value, separators=(",", ":"))`` with one encoder for the process
#: (``json.dumps`` with arguments builds a new encoder for every call).
compact_json = json.JSONEncoder(separators=(",", ":")).encode


def period_to_json(p: PeriodRecord | None) -> str:
    if p is None:
        return ""
    return compact_json({
        "account_id": p.account_id, "period": p.period, "start": p.start, "end": p.end,
        "allowance_ms": p.allowance_ms, "used_ms": p.used_ms, "expired_ms": p.expired_ms,
        "overdraft_ms": p.overdraft_ms, "flipped_at": p.flipped_at,
        "setting_at_end": p.setting_at_end.value if p.setting_at_end else None,
        "flipped_at_end": p.flipped_at_end, "corrected_ms": p.corrected_ms,
    })


def period_from_json(s: str) -> PeriodRecord | None:
    if not s:
        return None
    d: dict[str, Any] = json.loads(s)
    sae = d.pop("setting_at_end")
    return PeriodRecord(**d, setting_at_end=Setting(sae) if sae else None)


def ledger_fields(acc: Account) -> dict[str, str]:
    """The CAS-written part of an account (what rules in ``router.ledger`` change)."""
    return {
        "setting": acc.setting.value,
        "status": acc.status.value,
        "fast_ms": str(acc.fast_ms),
        "flipped_from": acc.flipped_from.value if acc.flipped_from else "",
        "renewals_done": str(acc.renewals_done),
        "next_renewal_at": _f(acc.next_renewal_at),
        "period": period_to_json(acc.period),
    }


def ledger_state(acc: Account) -> tuple[object, ...]:
    """The values behind ``ledger_fields``, in ``LEDGER_FIELDS`` order and not
    encoded: two states compare far cheaper than two encodings (a finish takes one
    before the ledger's rule runs and compares it after, ``changed_fields``)."""
    p = acc.period
    return (acc.setting, acc.status, acc.fast_ms, acc.flipped_from, acc.renewals_done,
            acc.next_renewal_at,
            None if p is None else (p.account_id, p.period, p.start, p.end, p.allowance_ms,
                                    p.used_ms, p.expired_ms, p.overdraft_ms, p.flipped_at,
                                    p.setting_at_end, p.flipped_at_end, p.corrected_ms))


def changed_fields(acc: Account, before: tuple[object, ...]) -> dict[str, str]:
    """The ledger fields of ``acc`` whose value differs from ``before`` (a
    ``ledger_state``), encoded as ``ledger_fields`` encodes them; nothing is
    encoded when nothing changed."""
    after = ledger_state(acc)
    if after == before:
        return {}
    encoded = ledger_fields(acc)
    return {k: encoded[k] for k, b, a in zip(LEDGER_FIELDS, before, after, strict=True)
            if b != a}


def account_to_hash(acc: Account) -> dict[str, str]:
    """Every field of ``acc`` (history lives in its own list key)."""
    w = acc.inactive_window
    h = {
        "id": acc.id, "plan": acc.plan.value, "renews_at": _f(acc.renews_at),
        "weight": repr(float(acc.weight)), "backup": "1" if acc.backup else "0",
        "max_in_flight": str(acc.max_in_flight),
        "bot_id": "" if acc.bot_id is None else str(acc.bot_id),
        "win_start": "" if w is None else str(w.start_s),
        "win_end": "" if w is None else str(w.end_s),
        "order": str(acc.order), "in_flight": str(acc.in_flight),
        "reserved_ms": str(acc.reserved_ms), "lver": "0",
        **pacing_fields(acc),
    }
    h.update(ledger_fields(acc))
    return h


def pacing_fields(acc: Account) -> dict[str, str]:
    """H2/H3: the cap and gap (set when the accounts are loaded) and the counters
    the reservation script keeps: the UTC day counted, the tasks routed to the
    account that day and when the last one was routed. ``recover_at`` (H1) is the
    pending recovery of a timed status, written by ``set_status``."""
    return {
        "max_jobs_day": "" if acc.max_jobs_per_day is None else str(acc.max_jobs_per_day),
        "min_gap": repr(float(acc.min_gap_s)),
        "jobs_day": str(acc.jobs_day), "jobs_today": str(acc.jobs_today),
        "last_routed": _f(acc.last_routed_at), "recover_at": "",
    }


def apply_hash(acc: Account, h: dict[str, str]) -> None:
    """Overwrite the live state of ``acc`` from a hash read back from Redis."""
    acc.setting = Setting(h["setting"])
    acc.status = Status(h["status"])
    acc.fast_ms = int(h["fast_ms"])
    acc.flipped_from = Setting(h["flipped_from"]) if h["flipped_from"] else None
    acc.renewals_done = int(h["renewals_done"])
    acc.next_renewal_at = _uf(h["next_renewal_at"])
    acc.period = period_from_json(h["period"])
    acc.in_flight = int(h["in_flight"])
    acc.reserved_ms = int(h["reserved_ms"])
    acc.renews_at = _uf(h["renews_at"])
    if "jobs_day" in h:  # H2/H3: kept by the reservation script
        acc.jobs_day = int(h["jobs_day"])
        acc.jobs_today = int(h["jobs_today"])
        acc.last_routed_at = _uf(h["last_routed"])
    if "win_start" in h:  # T1: a window changed in Redis reaches every mirror
        acc.inactive_window = (InactiveWindow(int(h["win_start"]), int(h["win_end"]))
                               if h["win_start"] != "" else None)


def recover_at(h: dict[str, str]) -> float | None:
    """H1: the time a timed status ends (None: no pending recovery)."""
    return _uf(h.get("recover_at", ""))


def account_from_hash(h: dict[str, str]) -> Account:
    acc = Account(
        id=h["id"], plan=Plan(h["plan"]), weight=float(h["weight"]), backup=h["backup"] == "1",
        max_in_flight=int(h["max_in_flight"]),
        bot_id=int(h["bot_id"]) if h["bot_id"] else None, order=int(h["order"]),
        max_jobs_per_day=int(h["max_jobs_day"]) if h.get("max_jobs_day") else None,
        min_gap_s=float(h.get("min_gap") or 0.0),
    )
    apply_hash(acc, h)
    return acc


def policy_to_json(p: Policy) -> str:
    return json.dumps({
        "strategy": p.strategy.value, "seed": p.seed,
        "fallback_on_saturation": p.fallback_on_saturation,
        "restore_fast_on_renewal": p.restore_fast_on_renewal, "estimates": p.estimates,
    }, sort_keys=True)


def policy_from_json(s: str) -> Policy:
    d = json.loads(s)
    return Policy(Strategy(d["strategy"]), int(d["seed"]), bool(d["fallback_on_saturation"]),
                  bool(d["restore_fast_on_renewal"]), dict(d["estimates"]))
