"""Result tables (pandas) and ``summary.json`` from a ``SimResult``.

* ``tasks``: one row per task that arrived (times, requested and effective mode,
  fallback, account, waits, charge, status, error code).
* ``periods``: one row per account and billing period, from the ledger's own
  ``PeriodRecord`` history (L4): allowance, used, expired (= wasted), overdraft,
  flip time, and the cause the expired time is put down to.
* ``fast_time``: fast hours left per account at each sample time.

Waste causes (a closed period with expired fast time):
``relax_set_by_user`` — the account was relax-set and not by a flip (R6);
``flipped_not_restored`` — the setting at renewal was ``relax`` because of an
earlier L3 flip that no one undid (L4 keeps it unless ``restore_fast_on_renewal``);
``no_demand`` — the account was fast/turbo-set, the fast work just did not use it
all (including time the account spent banned or disabled).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from router.accounts import MS_PER_HOUR, PLAN_PRICE_USD, TASK_TYPES, PeriodRecord, Setting
from simulations.facts import BILLING_MONTH_DAYS
from simulations.harness import (
    COMPLETED,
    ERROR_CODES,
    FAILED,
    PENDING,
    PUBLIC,
    QUEUED,
    REJECTED,
    RUNNING,
    STATUS_NAMES,
    WAITING,
    SimResult,
)
from simulations.workload import MODES

CAUSES = ("relax_set_by_user", "flipped_not_restored", "no_demand")
#: Task types whose completion delivers an image (a grid or an upscale).
IMAGE_TYPES = frozenset(TASK_TYPES) - {"describe", "seed"}


def waste_cause(p: PeriodRecord) -> str:
    """Why a closed period's leftover fast time expired (see the module text)."""
    if p.flipped_at_end:
        return "flipped_not_restored"
    if p.setting_at_end is Setting.RELAX:
        return "relax_set_by_user"
    return "no_demand"


def _times(a: np.ndarray[Any, Any]) -> pd.Series[Any]:
    return pd.Series(pd.to_datetime(a, unit="s", utc=True))


def tasks_table(r: SimResult) -> pd.DataFrame:
    """One row per task that arrived (``not_arrived`` tasks are left out)."""
    wl = r.workload
    arrived = np.nonzero(r.status != PENDING)[0]
    ids = [wl.task_id(int(i)) for i in arrived]
    par = wl.parent[arrived]
    parent_ids = [wl.task_id(int(p)) if p >= 0 else None for p in par.tolist()]
    mode_names = np.array([m.value for m in MODES] + [None], dtype=object)
    acc_names = np.array([a.id for a in r.accounts] + [None], dtype=object)
    err_names = np.array([c or None for c in ERROR_CODES], dtype=object)
    ready, start, end = r.ready[arrived], r.start[arrived], r.end[arrived]
    acc = r.acc[arrived].astype(np.int64)
    return pd.DataFrame({
        "task_id": ids,
        "task_type": np.array(TASK_TYPES, dtype=object)[wl.type_code[arrived].astype(np.int64)],
        "parent_task_id": parent_ids,
        "ready_at": _times(ready),
        "routed_at": _times(r.routed[arrived]),
        "started_at": _times(start),
        "ended_at": _times(end),
        "requested_mode": mode_names[r.req[arrived].astype(np.int64)],
        "effective_mode": mode_names[r.eff[arrived].astype(np.int64)],
        "fallback": r.fallback[arrived],
        "account_id": acc_names[acc],
        "queue_wait_s": r.queued_s[arrived],
        "wait_s": start - ready,
        "run_s": end - start,
        "gpu_seconds": wl.gpu[arrived],
        "charged_seconds": r.charged_ms[arrived] / 1000.0,
        "status": np.array(STATUS_NAMES, dtype=object)[r.status[arrived].astype(np.int64)],
        "error": err_names[r.error[arrived].astype(np.int64)],
        "attempts": r.attempts[arrived],
    })


def period_rows(r: SimResult) -> list[dict[str, Any]]:
    """Closed periods from the ledger's history, then each account's open period."""
    end = r.options.horizon_end
    rows: list[dict[str, Any]] = []
    for acc in r.accounts:
        periods = [(p, True) for p in acc.history]
        if acc.period is not None:
            periods.append((acc.period, False))
        for p, closed in periods:
            inside = closed and p.end is not None and p.end <= end
            rows.append({
                "account_id": acc.id, "plan": acc.plan.value, "period": p.period,
                "start": p.start, "end": p.end if closed else None,
                "closed_in_horizon": inside,
                "allowance_hours": p.allowance_ms / MS_PER_HOUR,
                "used_hours": p.used_ms / MS_PER_HOUR,
                "expired_hours": p.expired_ms / MS_PER_HOUR if closed else 0.0,
                "overdraft_hours": p.overdraft_ms / MS_PER_HOUR,
                "flipped_at": p.flipped_at,
                "setting_at_end": p.setting_at_end.value if p.setting_at_end else None,
                "flipped_at_end": p.flipped_at_end,
                "waste_cause": waste_cause(p) if closed and p.expired_ms > 0 else None,
            })
    return rows


def periods_table(r: SimResult) -> pd.DataFrame:
    df = pd.DataFrame(period_rows(r))
    for col in ("start", "end", "flipped_at"):
        df[col] = pd.to_datetime(df[col].astype("float64"), unit="s", utc=True)
    return df


def fast_time_table(r: SimResult) -> pd.DataFrame:
    """Long table: sample time, account, fast hours left."""
    if not r.sample_t:
        return pd.DataFrame({"t": [], "account_id": [], "fast_hours_left": []})
    mat = np.vstack(r.sample_fast_ms) / MS_PER_HOUR
    n_t, n_a = mat.shape
    return pd.DataFrame({
        "t": pd.to_datetime(np.repeat(np.asarray(r.sample_t), n_a), unit="s", utc=True),
        "account_id": np.tile(np.array([a.id for a in r.accounts], dtype=object), n_t),
        "fast_hours_left": mat.reshape(-1),
    })


def _pct(x: np.ndarray[Any, Any]) -> dict[str, float | int | None]:
    if x.size == 0:
        return {"n": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    p50, p95, p99 = np.percentile(x, [50, 95, 99])
    return {"n": int(x.size), "mean": float(x.mean()), "p50": float(p50), "p95": float(p95),
            "p99": float(p99), "max": float(x.max())}


#: The policy options ``summary.json`` repeats (the rest are in the run's inputs).
SUMMARY_POLICY_OPTIONS = ("strategy", "restore_fast_on_renewal", "fallback_on_saturation")


def _all_periods(r: SimResult) -> list[PeriodRecord]:
    """Every account's closed periods, then its open one."""
    return [p for acc in r.accounts
            for p in [*acc.history, *([acc.period] if acc.period else [])]]


def closed_periods(r: SimResult) -> list[PeriodRecord]:
    """Periods that ended (a renewal, L4) inside the horizon."""
    end = r.options.horizon_end
    return [p for acc in r.accounts for p in acc.history if p.end is not None and p.end <= end]


def waste_by_cause(closed: list[PeriodRecord]) -> dict[str, float]:
    """Fast hours expired at the renewals of ``closed``, by cause (module text)."""
    by_cause = dict.fromkeys(CAUSES, 0.0)
    for p in closed:
        if p.expired_ms > 0:
            by_cause[waste_cause(p)] += p.expired_ms / MS_PER_HOUR
    return by_cause


def fast_time_use(r: SimResult) -> dict[str, Any]:
    """Fast hours charged, overdraft (L2) and flips (L3) over every period."""
    periods = _all_periods(r)
    return {
        "fast_hours_used": sum(p.used_ms for p in periods) / MS_PER_HOUR,
        "overdraft_hours": sum(p.overdraft_ms for p in periods) / MS_PER_HOUR,
        "flips": sum(1 for p in periods if p.flipped_at is not None),
    }


def rejections(r: SimResult) -> dict[str, int]:
    """Rejected tasks by error code."""
    out: dict[str, int] = {}
    codes, counts = np.unique(r.error[r.status == REJECTED], return_counts=True)
    for code_i, count in zip(codes, counts, strict=True):
        out[ERROR_CODES[int(code_i)]] = int(count)
    return out


def task_counts(r: SimResult) -> dict[str, Any]:
    """How many tasks arrived, asked for fast, were downgraded, rejected, finished."""
    st = r.status
    arrived = st != PENDING
    routed = ~np.isnan(r.routed)
    return {
        "tasks_total": int(arrived.sum()),
        "tasks_roots": int((arrived & (r.workload.parent < 0)).sum()),
        "tasks_fast_requested": int((arrived & (r.req >= 1)).sum()),
        "tasks_turbo_requested": int((arrived & (r.req == 2)).sum()),
        "tasks_downgraded": int((routed & r.fallback).sum()),
        "tasks_rejected": rejections(r),
        "tasks_completed": int((st == COMPLETED).sum()),
        "tasks_failed": int((st == FAILED).sum()),
        "tasks_public": int((st == PUBLIC).sum()),
        "tasks_unfinished": int(((st == RUNNING) | (st == QUEUED) | (st == WAITING)).sum()),
        "tasks_queued_once": int(r.queue_entries),
    }


def wait_seconds(r: SimResult) -> dict[str, dict[str, float | int | None]]:
    """Ready-to-start waits of started tasks, by effective mode and all together."""
    started = ~np.isnan(r.start)
    wait = r.start - r.ready
    waits = {m.value: _pct(wait[started & (r.eff == k)]) for k, m in enumerate(MODES)}
    waits["all"] = _pct(wait[started])
    return waits


def queue_stats(r: SimResult) -> dict[str, Any]:
    """The central queue: entries, time-average length, arrival rate, mean wait."""
    span = max(r.queue_t1 - r.queue_t0, 1e-9)
    q_waits = r.queued_s[~np.isnan(r.q_enter)]
    return {"entries": r.queue_entries, "time_average_length": r.queue_area / span,
            "arrival_rate_per_s": r.queue_entries / span,
            "mean_wait_s": float(q_waits.mean()) if q_waits.size else 0.0,
            "span_s": span}


def images(r: SimResult) -> int:
    """Completed tasks that deliver an image (a grid or an upscale)."""
    type_names = np.array(TASK_TYPES, dtype=object)
    is_image = np.isin(type_names[r.workload.type_code.astype(np.int64)], list(IMAGE_TYPES))
    return int(((r.status == COMPLETED) & is_image).sum())


def fleet_cost(r: SimResult, days: float) -> float:
    """The fleet's plan prices, prorated to ``days``."""
    fleet_month = sum(PLAN_PRICE_USD[a.plan] for a in r.accounts)
    return fleet_month * days / BILLING_MONTH_DAYS


def summary(r: SimResult, *, name: str = "", variant: str = "") -> dict[str, Any]:
    """The machine-readable summary (``summary.json``)."""
    opt = r.options
    days = (opt.horizon_end - opt.start) / 86_400.0
    closed = closed_periods(r)
    by_cause = waste_by_cause(closed)
    n_images = images(r)
    cost = fleet_cost(r, days)
    plans: dict[str, int] = {}
    for a in r.accounts:
        plans[a.plan.value] = plans.get(a.plan.value, 0) + 1
    policy = r.pool.policy
    return {
        "scenario": name,
        "variant": variant,
        "horizon": {"start": opt.start, "end": opt.horizon_end, "days": days,
                    "simulated_until": r.end_time},
        "accounts": len(r.accounts),
        "plans": plans,
        "policy": {k: getattr(getattr(policy, k), "value", getattr(policy, k))
                   for k in SUMMARY_POLICY_OPTIONS},
        "wasted_fast_hours": sum(by_cause.values()),
        "wasted_fast_hours_by_cause": by_cause,
        "renewals_in_horizon": len(closed),
        **fast_time_use(r),
        **task_counts(r),
        "wait_seconds": wait_seconds(r),
        "queue": queue_stats(r),
        "images": n_images,
        "fleet_cost_usd": cost,
        "cost_per_1000_images": cost / n_images * 1000.0 if n_images else None,
        "incidents": len(r.incidents),
        # H1: only when the run had incidents or recoveries (other runs' summaries unchanged)
        **({"recoveries": len(r.recoveries)} if r.incidents or r.recoveries else {}),
    }
