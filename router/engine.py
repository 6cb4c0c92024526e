"""route(): validate -> pool -> pin -> filter -> order -> decision (E0, X1).

The engine reads the ledger's state and candidate index and returns a
``Decision``; it never mutates account state (the ledger's ``reserve`` does).
Only the strategy's own state (round-robin pointer, seeded RNG) advances.
"""

from __future__ import annotations

from router.accounts import PLAN_HAS_RELAX, Account, Mode, Setting, Status
from router.candidates import Path
from router.decision import Decision
from router.errors import make_error
from router.ledger import Ledger
from router.requests import ParsedRequest
from router.rules import fast_reason, is_available


def route(ledger: Ledger, req: ParsedRequest, task_id: str, now: float,
          estimate_ms: int | None = None, *, explain: bool = True) -> Decision:
    """Decide where ``req`` runs. Order of checks per E0.

    ``explain=False`` skips the per-account ``rejections`` and the summary line
    (X1); every other field is identical.
    """
    d = Decision(task_id, task_type=req.task_type)
    est = ledger.policy.estimate_ms(req.task_type) if estimate_ms is None else estimate_ms
    if req.is_child:
        return _route_child(ledger, req, d, now, est, explain)
    resolved = req.resolved
    assert resolved is not None
    d.requested_mode, d.mode_source = resolved.mode, resolved.source
    if resolved.conflict:
        flags = " ".join(f"--{m.value}" for m in resolved.conflict)
        d.notes.append(f"conflicting mode flags in the prompt ({flags}): the last one wins (M2)")
    if req.public:  # P1
        d.pool = "public"
        d.effective_mode = resolved.mode
        return d
    if req.bot_id is not None:  # R7 pinning by bot_id
        acc = ledger.by_bot.get(req.bot_id)
        if acc is None:
            return _fail(d, "account_not_found", "R7",
                         f"input.bot_id {req.bot_id} matches no account in the pool (R7); "
                         "use a bot_id from the accounts file, or 0 to let the router choose")
        d.pinned = True
        return _route_pinned(ledger, d, acc, est, f"pinned by bot_id {req.bot_id}")
    if ledger.active_count == 0:
        if explain:
            d.rejections = {i: "R1" for i in ledger.ids_sorted}
        return _fail(d, "no_active_account", "E1",
                     "no account in the pool is active (E1, GoAPI no_active_mj_bot); "
                     "reactivate an account or add one")
    return _route_free(ledger, d, now, est, explain)


# --------------------------------------------------------------------- roots
def _route_free(ledger: Ledger, d: Decision, now: float, est: int, explain: bool) -> Decision:
    """R2-R5 for a root task that no one pinned."""
    cands, state, policy = ledger.candidates, ledger.state, ledger.policy
    requested = d.requested_mode
    assert requested is not None
    if requested is not Mode.RELAX:
        acc = cands.pick("fast", now, state)
        if acc is not None:  # R2
            d.account_id, d.effective_mode = acc.id, requested
            d.reserved_ms = est * (2 if requested is Mode.TURBO else 1)  # R8, R9
            if explain:
                _explain(ledger, d, "fast", now, f"{policy.strategy.value} picks {acc.id}"
                         f" (load {acc.in_flight}/{acc.max_in_flight})")
            return d
        if cands.eligible_count("fast") > 0:  # R5: saturated, not fallback
            relax_acc = cands.pick("relax", now, state) if policy.fallback_on_saturation else None
            if relax_acc is None:
                if explain:
                    _explain(ledger, d, "fast", now, "none available now (R5)")
                    _pacing_tail(ledger, d, "fast", now)
                return _fail(d, "pool_saturated", "R5",
                             "fast-eligible accounts exist but none is available now "
                             f"({_why_busy(ledger)}) (R5); retry when one frees")
            d.notes.append("fallback_on_saturation: fast-eligible accounts are busy (R5)")
            return _relax_chosen(ledger, d, relax_acc, now, explain, fallback=True)
        d.fallback = True  # R3
    elif policy.upgrade_relax_when_expiring:  # opt-in, departs from M3/R4
        upgraded = _upgrade_expiring(ledger, d, now, est, explain)
        if upgraded is not None:
            return upgraded
    acc = cands.pick("relax", now, state)
    if acc is not None:  # R4
        return _relax_chosen(ledger, d, acc, now, explain, fallback=d.fallback)
    path: Path = "fast" if d.fallback else "relax"
    if cands.eligible_count("relax") > 0:
        if explain:
            _explain(ledger, d, path, now, "relax-eligible accounts exist, none available now (R5)")
            _pacing_tail(ledger, d, "relax", now)  # a fallback's relax path too (R3)
        return _fail(d, "pool_saturated", "R5",
                     "relax-eligible accounts exist but none is available now "
                     f"({_why_busy(ledger)}) (R5); retry when one frees")
    if explain:
        tail = ("no account can run relax (R4)" if path == "relax"
                else cands.summary("relax", now))
        _explain(ledger, d, path, now, tail)
    return _fail(d, "no_relax_capacity", "R4",
                 "no account can run relax: only Basic-plan accounts (no relax) or none active "
                 "(R4); add a Standard, Pro or Mega account or send the task as fast")


def expiring_surplus_ms(acc: Account, now: float, horizon_s: float) -> int:
    """Fast time of ``acc`` that would expire unused at its next renewal (L4).

    Zero unless the renewal is at most ``horizon_s`` away. Otherwise the
    unreserved fast time minus what the account would still spend before the
    renewal at this period's pace (fast time used so far / time elapsed in the
    period x time left). Used only by the opt-in ``upgrade_relax_when_expiring``.
    """
    renew = acc.next_renewal_at
    if renew is None:
        return 0
    left = renew - now
    if left <= 0 or left > horizon_s:
        return 0
    period = acc.period
    elapsed = now - period.start if period is not None and period.start is not None else 0.0
    pace = period.used_ms / elapsed if period is not None and elapsed > 0 else 0.0
    return acc.unreserved_ms - round(pace * left)


def _upgrade_expiring(ledger: Ledger, d: Decision, now: float, est: int,
                      explain: bool) -> Decision | None:
    """Policy ``upgrade_relax_when_expiring`` (opt-in, off by default).

    A relax-requested root task runs as ``fast`` on a fast-eligible account
    (R1, B1, R2, R6), available now, whose expiring surplus
    (``expiring_surplus_ms``) covers the task's estimate (R9); the one with the
    largest surplus wins, ties to the lowest id (D1). This departs from the
    documented rules (M3/R4: a relax request runs as relax), and the decision
    says so in its notes. ``None``: no such account, route as documented.
    """
    horizon_s = ledger.policy.upgrade_relax_horizon_hours * 3600.0
    best: Account | None = None
    best_surplus = 0
    for acc_id in ledger.ids_sorted:
        acc = ledger.accounts[acc_id]
        if fast_reason(acc, ledger.backups_active) is not None or not is_available(acc, now):
            continue
        surplus = expiring_surplus_ms(acc, now, horizon_s)
        if surplus >= max(est, 1) and surplus > best_surplus:
            best, best_surplus = acc, surplus
    if best is None:
        return None
    d.account_id, d.effective_mode, d.reserved_ms = best.id, Mode.FAST, est
    left_h = ((best.next_renewal_at or now) - now) / 3600.0
    d.notes.append(
        f"upgrade_relax_when_expiring: relax requested, run as fast on {best.id}, whose "
        f"{best_surplus / 3_600_000:.2f} h of fast time would expire unused at its renewal "
        f"in {left_h:.1f} h; this departs from the documented rules (M3/R4 run a relax "
        "request as relax) and is an opt-in policy")
    if explain:
        _explain(ledger, d, "fast", now, f"upgrade_relax_when_expiring picks {best.id}")
    return d


def _relax_chosen(ledger: Ledger, d: Decision, acc: Account, now: float, explain: bool,
                  *, fallback: bool) -> Decision:
    d.account_id, d.effective_mode, d.fallback, d.reserved_ms = acc.id, Mode.RELAX, fallback, 0
    if explain:
        strategy = ledger.policy.strategy.value
        if fallback:
            _explain(ledger, d, "fast", now, f"relax on {acc.id} (R3 fallback, {strategy})")
        else:
            _explain(ledger, d, "relax", now,
                     f"{strategy} picks {acc.id} (load {acc.in_flight}/{acc.max_in_flight})")
    return d


# ------------------------------------------------------------------- children
def _route_child(ledger: Ledger, req: ParsedRequest, d: Decision, now: float, est: int,
                 explain: bool) -> Decision:
    """M5, P1 and R7 for upscale/variation/reroll/... (E0 child order)."""
    d.mode_source = "parent"
    if req.ignored_mode:
        d.notes.append(f"{req.ignored_mode} on a {req.task_type} is ignored; "
                       "children inherit the parent's mode (M5)")
    origin = req.origin_task_id or ""
    parent = ledger.parents.get(origin)
    if parent is None:
        d.mode_source = None
        return _fail(d, "parent_not_found", "R7",
                     f"input.origin_task_id {origin!r} is not a task submitted earlier and "
                     "accepted (R7, M5); submit the parent first")
    d.requested_mode = parent.requested_mode
    if parent.public:  # P1: a child follows its parent's pool
        d.pool, d.effective_mode = "public", parent.requested_mode
        return d
    assert parent.account_id is not None
    d.pinned = True
    return _route_pinned(ledger, d, ledger.accounts[parent.account_id], est,
                         f"pinned to the parent's account {parent.account_id}")


def _route_pinned(ledger: Ledger, d: Decision, acc: Account, est: int, why: str) -> Decision:
    """R7: pinned tasks never move; windows and backup dormancy are ignored."""
    requested = d.requested_mode
    assert requested is not None
    d.account_id = acc.id
    if acc.status is not Status.ACTIVE:
        d.account_id = None
        return _fail(d, "pinned_account_unavailable", "R7",
                     f"{why} (R7), but {acc.id} is {acc.status.value} (R1); "
                     "pinned tasks never move to another account")
    if requested is not Mode.RELAX and acc.setting is not Setting.RELAX and acc.unreserved_ms > 0:
        d.effective_mode = requested
        d.reserved_ms = est * (2 if requested is Mode.TURBO else 1)
        d.explanation = f"{why} (R7); fast time left"
    elif PLAN_HAS_RELAX[acc.plan]:
        d.effective_mode = Mode.RELAX
        d.fallback = requested is not Mode.RELAX
        if d.fallback:
            cause = ("is relax-set (R6)" if acc.setting is Setting.RELAX
                     else "has no unreserved fast time (R2)")
            d.explanation = f"{why} (R7); {acc.id} {cause}, so relax with fallback"
        else:
            d.explanation = f"{why} (R7); relax"
    else:
        d.account_id = None
        cause = "is relax-set" if acc.setting is Setting.RELAX else "has no fast time left"
        return _fail(d, "pinned_account_cannot_run", "R7",
                     f"{why} (R7), but {acc.id} is Basic (no relax, R4) and {cause}; "
                     "pinned tasks never move")
    if not acc.has_room:
        return _fail(d, "pool_saturated", "R7",
                     f"{why} (R7), but {acc.id} has no room "
                     f"({acc.in_flight}/{acc.max_in_flight}) (R5); retry when it frees")
    return d


# ---------------------------------------------------------------- explanations
def _why_busy(ledger: Ledger) -> str:
    """R5's list of temporary conditions; H2/H3 named only when a pool uses them
    (a pool without pacing keeps its bytes)."""
    if ledger.paced:
        return "no room, inside an inactive window, daily cap (H2) or gap (H3)"
    return "no room or inside an inactive window"


def _pacing_tail(ledger: Ledger, d: Decision, path: Path, now: float) -> None:
    """X1 for a paced pool that is saturated: how many ``path``-eligible accounts
    the daily cap (H2) and the gap (H3) keep off (counts kept up to date). For an
    R3 fallback that finds no relax account available, ``path`` is relax: the
    caps named are the ones that kept the relax path off, not the fast path's
    rejections."""
    if not ledger.paced or d.explanation is None:
        return
    caps, gaps = ledger.candidates.pacing_counts(path, now)
    parts = [f"{n} {label}" for n, label in ((caps, "daily cap (H2)"), (gaps, "gap (H3)")) if n]
    if parts:
        d.explanation = f"{d.explanation}: {', '.join(parts)}"


def _fail(d: Decision, code: str, rule: str, message: str) -> Decision:
    d.error = make_error(code, rule, message)
    d.account_id, d.effective_mode, d.reserved_ms, d.fallback = None, None, 0, False
    return d


def _explain(ledger: Ledger, d: Decision, path: Path, now: float, tail: str) -> None:
    """X1: per-account first excluding rule, plus the one-line summary (kept up
    to date by the candidate index, not a scan of the pool)."""
    summary, d.rejections = ledger.candidates.explain(path, now, d.account_id)
    d.explanation = f"{summary}; {tail}"
