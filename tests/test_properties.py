"""Hypothesis properties: invariants the rules imply, on random pools and event
scripts from ``router.testing``. Each test's docstring states its rule."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from _util import events
from hypothesis import given, settings
from hypothesis import strategies as st

from router.accounts import PLAN_HAS_RELAX, Account, Mode, Plan, Setting, Status
from router.decision import Decision, Outcome
from router.errors import NotInFlight, UnknownAccount
from router.io.replay import replay_events
from router.ledger import Policy
from router.modes import apply_mode, prompt_modes, resolve_mode
from router.pool import Pool
from router.rules import availability_reason, can_take_work, fast_reason
from router.strategies import Strategy
from router.testing import event_scripts, pools, prompts

FAST_MODES = (Mode.FAST, Mode.TURBO)



@dataclass
class Trace:
    """What happened in a checked run, for properties that look back."""

    decisions: list[tuple[Decision, dict[str, dict[str, Any]]]] = field(default_factory=list)
    outcomes: list[tuple[Outcome, Setting, str, float]] = field(default_factory=list)
    routed: dict[str, str | None] = field(default_factory=dict)  # task -> account (None=public)


def _snapshot(pool: Pool, now: float) -> dict[str, dict[str, Any]]:
    """Per account, what the rules see just before a decision."""
    led = pool.ledger
    return {a.id: {
        "setting": a.setting, "plan": a.plan, "unreserved": a.unreserved_ms,
        "fast_eligible": fast_reason(a, led.backups_active) is None,
        "can_take": can_take_work(a, led.backups_active) is None,
        "available": availability_reason(a, now) is None, "status": a.status,
    } for a in led.accounts.values()}


def run(accounts: list[Account], policy: Policy, script: list[dict[str, Any]],
        *, after_each: Any = None) -> tuple[Pool, Trace]:
    """Drive a Pool through ``script`` via its Python API, keeping a trace."""
    pool = Pool(accounts, policy)
    trace = Trace()
    for ev in events(script):
        raw = ev.raw
        pool.advance(ev.at)
        if ev.op == "submit":
            before = _snapshot(pool, ev.at)
            d = pool.submit(ev.task_id, raw["request"], ev.at,
                            estimated_gpu_seconds=raw.get("estimated_gpu_seconds"))
            trace.decisions.append((d, before))
            if d.error is None:
                trace.routed[d.task_id] = d.account_id
        elif ev.op in ("complete", "fail", "cancel"):
            task = pool.ledger.tasks.get(ev.task_id)
            setting = pool.account(task.account_id).setting if task else Setting.FAST
            try:
                if ev.op == "complete":
                    out = pool.complete(ev.task_id, raw["gpu_seconds"], ev.at)
                else:
                    out = getattr(pool, ev.op)(ev.task_id, ev.at)
            except NotInFlight:
                assert task is None
            else:
                trace.outcomes.append((out, setting, ev.op, raw.get("gpu_seconds", 0.0)))
        elif ev.op in ("set_status", "set_setting"):
            try:
                getattr(pool, ev.op)(ev.account_id, raw[ev.op.removeprefix("set_")], ev.at)
            except UnknownAccount:
                assert ev.account_id not in pool.accounts
        if after_each is not None:
            after_each(pool)
    return pool, trace


@st.composite
def scenarios(draw: st.DrawFn, strategies: list[Strategy] | None = None,
              max_events: int = 40) -> tuple[list[Account], Policy, list[dict[str, Any]]]:
    accounts, policy = draw(pools(strategies=strategies))
    bots = [a.bot_id for a in accounts if a.bot_id is not None]
    script = draw(event_scripts([a.id for a in accounts], bots, max_events=max_events))
    return accounts, policy, script


def _submits(s: tuple[list[Account], Policy, list[dict[str, Any]]]) -> Trace:
    return run(*s)[1]


# ------------------------------------------------------------------ decisions
@given(scenarios())
def test_R6_no_fast_or_turbo_effective_mode_on_a_relax_set_account(s: Any) -> None:
    """R6/R2: a task runs fast or turbo only on an active account that is not
    relax-set and has unreserved fast time > 0 at decision time."""
    for d, before in _submits(s).decisions:
        if d.effective_mode in FAST_MODES and d.account_id is not None:
            b = before[d.account_id]
            assert b["setting"] is not Setting.RELAX
            assert b["unreserved"] > 0 and b["status"] is Status.ACTIVE


@given(scenarios())
def test_R4_no_relax_on_a_basic_account(s: Any) -> None:
    """R4: relax (requested or fallen back) never runs on a Basic account."""
    for d, before in _submits(s).decisions:
        if d.account_id is not None and d.effective_mode is Mode.RELAX:
            assert before[d.account_id]["plan"] is not Plan.BASIC
            assert PLAN_HAS_RELAX[before[d.account_id]["plan"]]


@given(scenarios())
def test_R3_R5_fallback_only_when_no_account_was_fast_eligible(s: Any) -> None:
    """R3: an unpinned fallback happens only when no account was fast-eligible;
    with fallback_on_saturation (R5) also when none of them was available now.
    R2: when a fast-eligible account was available, the requested mode runs."""
    policy: Policy = s[1]
    for d, before in _submits(s).decisions:
        if d.pinned or d.pool == "public" or d.requested_mode not in FAST_MODES:
            assert not d.fallback or d.pinned
            continue
        eligible = [i for i, b in before.items() if b["fast_eligible"]]
        available = [i for i in eligible if before[i]["available"]]
        if d.fallback:
            assert d.error is None and d.effective_mode is Mode.RELAX
            assert not eligible or (policy.fallback_on_saturation and not available)
        if available and d.error is None:
            assert d.effective_mode is d.requested_mode and d.account_id in available


@given(scenarios())
def test_R7_pinned_fallback_exactly_when_the_account_cannot_run_fast(s: Any) -> None:
    """R7: a pinned fast/turbo task runs relax (fallback) exactly when its account
    is relax-set or has no unreserved fast time."""
    for d, before in _submits(s).decisions:
        if d.pinned and d.error is None and d.account_id is not None:
            b = before[d.account_id]
            cannot = b["setting"] is Setting.RELAX or b["unreserved"] <= 0
            assert d.fallback == (d.requested_mode in FAST_MODES and cannot)


@given(scenarios())
def test_R1_T1_unpinned_work_only_on_active_available_accounts(s: Any) -> None:
    """R1/B1/T1: an unpinned task goes only to an active, non-dormant account
    that is outside its inactive window and has room."""
    for d, before in _submits(s).decisions:
        if d.account_id is not None and not d.pinned:
            b = before[d.account_id]
            assert b["can_take"] and b["available"]


@given(scenarios())
def test_R7_child_runs_on_its_parents_account(s: Any) -> None:
    """R7/P1/M5: an accepted child runs on its parent's account (or in the public
    pool when the parent did) and inherits the parent's requested mode."""
    trace = _submits(s)
    requested = {d.task_id: d.requested_mode for d, _ in trace.decisions if d.error is None}
    bodies = {e["task_id"]: e["request"] for e in s[2] if e["op"] == "submit"}
    for d, _ in trace.decisions:
        inp = bodies[d.task_id].get("input")
        if d.error is not None or d.mode_source != "parent" or not isinstance(inp, dict):
            continue
        parent = inp["origin_task_id"]
        assert d.account_id == trace.routed[parent]
        assert d.pool == ("public" if trace.routed[parent] is None else "private")
        assert d.requested_mode is requested[parent]


@given(scenarios())
def test_P1_public_decisions_have_no_account_and_the_requested_mode(s: Any) -> None:
    """P1: a public task has no account, its requested mode, no fallback, no error."""
    for d, _ in _submits(s).decisions:
        if d.pool == "public":
            assert d.account_id is None and d.error is None and not d.fallback
            assert d.effective_mode is d.requested_mode is not None


# --------------------------------------------------------------------- ledger
def _ledger_invariants(pool: Pool) -> None:
    per_account: dict[str, tuple[int, int]] = {}
    for task in pool.ledger.tasks.values():
        n, r = per_account.get(task.account_id, (0, 0))
        per_account[task.account_id] = (n + 1, r + task.reserved_ms)
    for acc in pool.accounts.values():
        assert acc.fast_ms >= 0  # L2
        assert (acc.in_flight, acc.reserved_ms) == per_account.get(acc.id, (0, 0))
        assert acc.in_flight <= max(acc.max_in_flight, 0)
        for per in acc.history:  # closed periods: the leftover expired
            assert per.allowance_ms == per.used_ms + per.expired_ms, (acc.id, per.period)
            assert per.used_ms >= 0 and per.overdraft_ms >= 0 and per.expired_ms >= 0
        if acc.period is not None:  # the open period: what is left is still there
            assert acc.period.allowance_ms == acc.period.used_ms + acc.fast_ms


@given(scenarios())
def test_L2_L4_fast_time_never_negative_and_conservation_per_period(s: Any) -> None:
    """L2: fast time never goes below 0. L4 conservation, per account and period:
    allowance = used + expired (closed periods) and allowance = used + remaining
    (the open one). R9: in-flight counts and reservations match the tasks."""
    run(*s, after_each=_ledger_invariants)


@given(scenarios())
def test_L3_a_charge_that_empties_a_fast_set_account_flips_it_to_relax(s: Any) -> None:
    """L3: a completion whose charge > 0 leaves a fast/turbo-set account at 0
    fast time makes it relax-set, and only such a completion flips."""
    for out, setting_before, _op, _gpu in _submits(s).outcomes:
        empties = (out.charged_ms > 0 and out.fast_ms == 0
                   and setting_before in (Setting.FAST, Setting.TURBO))
        assert out.flipped == empties
        if empties:
            assert out.setting is Setting.RELAX


@given(scenarios())
def test_L1_charges_follow_the_effective_mode(s: Any) -> None:
    """L1: only completed tasks are charged: gpu_seconds for fast, twice that for
    turbo, nothing for relax; failed and cancelled tasks cost nothing."""
    trace = _submits(s)
    modes = {d.task_id: d.effective_mode for d, _ in trace.decisions if d.error is None}
    for out, _setting, op, gpu_seconds in trace.outcomes:
        if op != "complete":
            assert out.charged_ms == 0
            continue
        factor = {Mode.RELAX: 0, Mode.FAST: 1, Mode.TURBO: 2}[modes[out.task_id]]  # type: ignore[index]
        assert out.charged_ms == factor * round(gpu_seconds * 1000)
        assert out.charged_ms - out.overdraft_ms >= 0


# ------------------------------------------------------------ D1 and the index
def _replay(accounts: list[Account], policy: Policy, script: list[dict[str, Any]], *,
            indexed: bool, explain: bool = True) -> list[dict[str, Any]]:
    pool = Pool(copy.deepcopy(accounts), copy.deepcopy(policy), indexed=indexed,
                explain=explain)
    return list(replay_events(pool, events(script)))


@given(scenarios())
def test_D1_same_pool_script_policy_and_seed_give_the_same_bytes(s: Any) -> None:
    """D1: the same pool, tasks, policy and seed give the same decisions, byte for byte."""
    first = json.dumps(_replay(*s, indexed=True))
    assert first == json.dumps(_replay(*s, indexed=True))


@pytest.mark.parametrize("strategy", list(Strategy))
@settings(max_examples=3 * settings.default.max_examples)  # the index's guard: run it more
@given(data=st.data())
def test_indexed_engine_equals_the_naive_scan_for_every_strategy(
        strategy: Strategy, data: st.DataObject) -> None:
    """S/X1: the indexed candidate sets (Ledger indexed=True) and the naive linear
    scan (indexed=False) give identical output lines, explanations included."""
    accounts, policy, script = data.draw(scenarios([strategy], max_events=60))
    fast_lines = _replay(accounts, policy, script, indexed=True)
    assert fast_lines == _replay(accounts, policy, script, indexed=False)


@given(scenarios(max_events=30))
def test_explain_false_changes_only_the_explanations(s: Any) -> None:
    """X1: explain=False (the benchmark's hot path) decides exactly as explain=True."""
    full = _replay(*s, indexed=True, explain=True)
    lean = _replay(*s, indexed=True, explain=False)
    for a, b in zip(full, lean, strict=True):
        for rec in (a, b):
            for d in (rec, rec.get("reroute") or {}):  # H4: a re-route is a decision too
                d.pop("explanation", None)
                d.pop("rejections", None)
        assert a == b


# ----------------------------------------------------------------------- modes
@given(prompts(), st.sampled_from(list(Mode)))
def test_M4_apply_mode_leaves_only_the_effective_mode(prompt: str, mode: Mode) -> None:
    """M4: after apply_mode the prompt's only mode parameter is the effective one,
    and applying it again changes nothing."""
    out = apply_mode(prompt, mode)
    assert prompt_modes(out) == [mode]
    assert resolve_mode(None, out).mode is mode
    assert apply_mode(out, mode) == out


@given(prompts())
def test_M2_the_last_mode_flag_wins(prompt: str) -> None:
    """M2/M3: the requested mode is the last mode parameter in the prompt, else relax."""
    flags = prompt_modes(prompt)
    r = resolve_mode(None, prompt)
    assert r.mode is (flags[-1] if flags else Mode.RELAX)
    assert bool(r.conflict) == (len(set(flags)) > 1)
