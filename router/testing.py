"""Hypothesis strategies for property-testing code that embeds the router.

This module needs Hypothesis, which comes with the ``dev`` extra
(``pip install 'byoa-router[dev]'``); ``import router`` alone never imports it.

    from hypothesis import given
    from router import Pool
    from router.testing import event_scripts, pools

    @given(pools(), st.data())
    def test_my_embedding(pool_and_policy, data):
        accounts, policy = pool_and_policy
        script = data.draw(event_scripts([a.id for a in accounts]))
        ...

What is here:

* ``accounts()`` one ``Account`` (any plan, setting, status, fast time, window,
  room, backup flag, renewal instant); ``policies()`` a ``Policy``;
  ``pools()`` a list of accounts with unique ids and ``bot_id`` s, and a policy.
* ``account_documents()`` the same as a JSON-ready accounts file (docs/formats.md).
* ``prompts()`` prompts with mode flags in every spelling, look-alikes included
  (M2); ``request_bodies()`` GoAPI unified request bodies: roots, children of
  given parents, public ones, ``bot_id`` pins, ``process_mode`` and prompt
  variants, and (unless ``valid_only``) invalid ones (M0/M1).
* ``event_scripts()`` lists of JSON-ready event dicts (docs/formats.md) whose times
  never decrease; they span several renewals when ``max_gap_days`` allows.

Everything generated is small on purpose: room limits of 0-4 and little fast
time, so that saturation (R5), fallback (R3) and flips (L3) happen often.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from router.accounts import (
    CHILD_TASK_TYPES,
    PLAN_ALLOWANCE_MS,
    PLAN_MAX_IN_FLIGHT,
    Account,
    InactiveWindow,
    Plan,
    Setting,
    Status,
)
from router.ledger import Policy
from router.strategies import Strategy
from router.timeutil import format_time, parse_time

#: The default first instant of generated event scripts.
START = parse_time("2026-11-24T10:00:00Z")
DAY = 86_400

_ID_ALPHABET = "abcdxyz0189-"
_ROOT_TYPES = ("imagine", "imagine", "imagine", "describe", "blend")
_CHILD_TYPES = tuple(sorted(CHILD_TASK_TYPES))
_WORDS = ("a", "cat", "night", "city", "--ar 16:9", "--v 6", "::2", "--q .5")
_MODE_WORDS = ("--fast", "--relax", "--turbo", "\u2014fast", "\u2014relax", "\u2014turbo",
               "--FAST", "--Relax", "\u2014TURBO")
_LOOK_ALIKES = ("--fastest", "a--fast", "--fast,", "-fast", "---turbo", "\u2013relax", "fast")
_VALID_PROCESS_MODES = ("fast", "relax", "turbo", "FAST", " Relax ", "turbo\t")
_EMPTY_PROCESS_MODES: tuple[object, ...] = (None, "", "   ")
_INVALID_PROCESS_MODES: tuple[object, ...] = ("superfast", "fast relax", "--fast", 3, True,
                                              ["fast"])


def account_ids(*, min_size: int = 1, max_size: int = 8) -> st.SearchStrategy[list[str]]:
    """Unique, non-empty account ids (short, so that string order matters)."""
    return st.lists(st.text(_ID_ALPHABET, min_size=1, max_size=4),
                    min_size=min_size, max_size=max_size, unique=True)


def windows() -> st.SearchStrategy[InactiveWindow | None]:
    """T1: no window, or a daily ``[start, end)`` on a 15-minute grid (may wrap)."""
    quarter = st.integers(0, 95).map(lambda q: q * 900)
    return st.one_of(st.none(), st.none(), st.none(), st.builds(InactiveWindow, quarter, quarter))


def renewal_instants(start: float = START) -> st.SearchStrategy[float | None]:
    """L4: a renewal instant near ``start`` (month ends included), or None (default)."""
    near = st.integers(-3 * DAY, 35 * DAY).map(lambda s: float(start + s))
    month_end = st.sampled_from(("2026-11-30T23:00:00Z", "2026-12-31T12:00:00Z",
                                 "2027-01-31T00:00:00Z", "2027-01-29T06:30:00Z"))
    return st.one_of(st.none(), near, month_end.map(parse_time))


@st.composite
def accounts(draw: st.DrawFn, account_id: str | None = None, *,
             start: float = START) -> Account:
    """One ``Account`` with any plan, setting, status and a little fast time."""
    plan = draw(st.sampled_from(list(Plan)))
    allowance = PLAN_ALLOWANCE_MS[plan]
    fast_ms = draw(st.one_of(st.just(0), st.integers(1, 90_000), st.integers(1, 400_000),
                             st.integers(0, allowance)))
    return Account(
        id=account_id if account_id is not None else draw(st.text(_ID_ALPHABET, min_size=1,
                                                                  max_size=4)),
        plan=plan,
        setting=draw(st.sampled_from([Setting.FAST, Setting.FAST, Setting.TURBO,
                                      Setting.RELAX])),
        status=draw(st.sampled_from([Status.ACTIVE] * 8 + list(Status))),
        fast_ms=fast_ms,
        renews_at=draw(renewal_instants(start)),
        weight=draw(st.sampled_from([0.0, 1.0, 1.0, 2.5, 5.0])),
        backup=draw(st.integers(0, 3)) == 0,
        max_in_flight=draw(st.one_of(st.integers(0, 4), st.just(PLAN_MAX_IN_FLIGHT[plan]))),
        bot_id=None,
        inactive_window=draw(windows()),
        max_jobs_per_day=draw(daily_caps()),
        min_gap_s=draw(min_gaps()),
    )


def daily_caps() -> st.SearchStrategy[int | None]:
    """H2: mostly no cap; otherwise a small one, so that it binds."""
    return st.one_of(st.none(), st.none(), st.none(), st.integers(1, 5))


def min_gaps() -> st.SearchStrategy[float]:
    """H3: mostly no gap; otherwise whole seconds up to an hour (some fractional)."""
    return st.one_of(st.just(0.0), st.just(0.0), st.just(0.0),
                     st.integers(1, 3600).map(float), st.sampled_from([0.5, 90.25]))


def policies(strategies: Sequence[Strategy] | None = None) -> st.SearchStrategy[Policy]:
    """A ``Policy``: any strategy (or one of ``strategies``), seed and options."""
    return st.builds(
        Policy,
        strategy=st.sampled_from(list(strategies or Strategy)),
        seed=st.integers(0, 2**16),
        fallback_on_saturation=st.booleans(),
        restore_fast_on_renewal=st.booleans(),
    )


@st.composite
def pools(draw: st.DrawFn, *, min_size: int = 1, max_size: int = 8,
          strategies: Sequence[Strategy] | None = None,
          start: float = START) -> tuple[list[Account], Policy]:
    """A pool: accounts with unique ids and unique ``bot_id`` s (some have none),
    and a ``Policy``. Pass the list to ``Pool(accounts, policy)``."""
    ids = draw(account_ids(min_size=min_size, max_size=max_size))
    accs = [draw(accounts(i, start=start)) for i in ids]
    bots = draw(st.lists(st.integers(1, 10_000), min_size=len(accs), max_size=len(accs),
                         unique=True))
    for acc, bot in zip(accs, bots, strict=True):
        if draw(st.booleans()):
            acc.bot_id = bot
    return accs, draw(policies(strategies))


def account_document(accs: Sequence[Account], policy: Policy) -> dict[str, Any]:
    """The contract's accounts-file dict for ``accs`` and ``policy`` (JSON-ready)."""
    out: list[dict[str, Any]] = []
    for a in accs:
        d: dict[str, Any] = {
            "id": a.id, "plan": a.plan.value, "setting": a.setting.value,
            "status": a.status.value, "fast_hours_remaining": a.fast_ms / 3_600_000,
            "weight": a.weight, "backup": a.backup, "max_in_flight": a.max_in_flight,
        }
        if a.renews_at is not None:
            d["renews_at"] = format_time(a.renews_at)
        if a.bot_id is not None:
            d["bot_id"] = a.bot_id
        if a.inactive_window is not None:
            start, end = a.inactive_window.as_text()
            d["inactive_window"] = {"start": start, "end": end}
        if a.max_jobs_per_day is not None:
            d["max_jobs_per_day"] = a.max_jobs_per_day  # H2
        if a.min_gap_s > 0:
            d["min_gap_seconds"] = a.min_gap_s  # H3
        out.append(d)
    return {"policy": {"strategy": policy.strategy.value, "seed": policy.seed,
                       "fallback_on_saturation": policy.fallback_on_saturation,
                       "restore_fast_on_renewal": policy.restore_fast_on_renewal},
            "accounts": out}


def account_documents(**kwargs: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Accounts files as JSON-ready dicts (``pools(**kwargs)`` written out)."""
    return pools(**kwargs).map(lambda p: account_document(*p))


@st.composite
def prompts(draw: st.DrawFn, *, flags: bool = True) -> str:
    """A non-blank prompt; with ``flags``, mode parameters in any spelling (M2),
    conflicting ones, and look-alike tokens that are not mode parameters."""
    pool = _WORDS + (_MODE_WORDS + _LOOK_ALIKES if flags else ())
    words = draw(st.lists(st.sampled_from(pool), min_size=0, max_size=5))
    seps = draw(st.lists(st.sampled_from([" ", " ", "  ", "\t", "\n"]),
                         min_size=len(words) + 1, max_size=len(words) + 1))
    text = "scene" + "".join(s + w for s, w in zip(seps, words, strict=False))
    return text + seps[-1] if draw(st.booleans()) else text


@st.composite
def request_bodies(draw: st.DrawFn, parents: Sequence[str] = (),
                   bot_ids: Sequence[int] = (), *, valid_only: bool = False) -> dict[str, Any]:
    """A GoAPI unified request body (``{model, task_type, input, config}``).

    Roots (imagine/describe/blend) with ``process_mode`` and prompt-flag variants,
    optional ``bot_id`` pins (0, one of ``bot_ids``, or unknown), public ones
    (P1); children of one of ``parents`` (or of an unknown task) that sometimes
    carry a mode that must be ignored (M5). Unless ``valid_only``, a share of the
    bodies break M0 or M1 (each in one field).
    """
    kinds = ["root"] * 6 + (["child"] * 3 if parents else []) + ["orphan"]
    if not valid_only:
        kinds += ["invalid"]
    kind = draw(st.sampled_from(kinds))
    config: dict[str, Any] = {}
    service = draw(st.sampled_from([None, None, None, "", "", "private", "public"]))
    if service is not None:
        config["service_mode"] = service
    if draw(st.booleans()):
        config["webhook_config"] = {"endpoint": "", "secret": ""}
    if kind in ("child", "orphan"):
        origin = draw(st.sampled_from(list(parents))) if kind == "child" else draw(
            st.text(_ID_ALPHABET, min_size=1, max_size=6).map(lambda s: f"missing-{s}"))
        inp: dict[str, Any] = {"origin_task_id": origin, "index": "1"}
        if draw(st.integers(0, 4)) == 0:
            inp["process_mode"] = draw(st.sampled_from(_VALID_PROCESS_MODES +
                                                       _INVALID_PROCESS_MODES[:2]))
        if draw(st.integers(0, 4)) == 0:
            inp["prompt"] = draw(prompts())
        body: dict[str, Any] = {"model": "midjourney",
                                "task_type": draw(st.sampled_from(_CHILD_TYPES)), "input": inp}
    else:
        task_type = draw(st.sampled_from(_ROOT_TYPES))
        inp = {"prompt": draw(prompts())}
        if task_type != "imagine" and draw(st.booleans()):
            del inp["prompt"]
        pm = draw(st.sampled_from(_EMPTY_PROCESS_MODES + _VALID_PROCESS_MODES))
        if pm is not None or draw(st.booleans()):
            inp["process_mode"] = pm
        bot_choices: list[int | None] = [None] * 6 + [0, 99_999]
        bot_choices += list(bot_ids)
        bot = draw(st.sampled_from(bot_choices))
        if bot is not None or draw(st.booleans()):
            inp["bot_id"] = bot
        if draw(st.booleans()):
            inp["aspect_ratio"] = "16:9"
            inp["skip_prompt_check"] = False
        body = {"model": "midjourney", "task_type": task_type, "input": inp}
    if config:
        body["config"] = config
    if kind == "invalid":
        body = draw(_broken(body))
    return body


@st.composite
def _broken(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    """Break one thing in a root body (M0/M1)."""
    how = draw(st.sampled_from(["model", "task_type", "input", "service", "bot", "prompt",
                                "process_mode", "orphan_child"]))
    b = {**body, "input": dict(body["input"])}
    if how == "model":
        b["model"] = draw(st.sampled_from(["dalle", "", None, "Midjourney"]))
    elif how == "task_type":
        b["task_type"] = draw(st.sampled_from(["zoom", "", "Imagine", 3]))
    elif how == "input":
        b["input"] = draw(st.sampled_from([None, "prompt", [1]]))
    elif how == "service":
        b["config"] = {"service_mode": draw(st.sampled_from(["shared", "PUBLIC", 1]))}
    elif how == "bot":
        b["input"]["bot_id"] = draw(st.sampled_from(["7", 1.5, True]))
    elif how == "prompt":
        b["task_type"] = "imagine"
        b["input"]["prompt"] = draw(st.sampled_from(["", "   ", None, 5]))
    elif how == "process_mode":
        b["task_type"] = "imagine"
        b["input"]["prompt"] = "x"
        b["input"]["process_mode"] = draw(st.sampled_from(_INVALID_PROCESS_MODES))
    else:
        b["task_type"] = draw(st.sampled_from(_CHILD_TYPES))
        b["input"] = {"origin_task_id": draw(st.sampled_from(["", "  ", None, 7]))}
    return b


@st.composite
def event_scripts(draw: st.DrawFn, account_ids: Sequence[str], bot_ids: Sequence[int] = (),
                  *, min_events: int = 1, max_events: int = 40, start: float = START,
                  max_gap_days: float = 40.0, valid_only: bool = False) -> list[dict[str, Any]]:
    """A contract event script: JSON-ready dicts, times never decreasing.

    Submits (``request_bodies`` whose children name earlier tasks), completions,
    failures and cancellations of earlier tasks (and, unless ``valid_only``, of
    unknown ones), status and setting changes of ``account_ids`` (and of an
    unknown account), ticks, and time gaps from 0 s up to ``max_gap_days`` so a
    script crosses renewals (L4). ``task_id`` s are unique.
    """
    n = draw(st.integers(min_events, max_events))
    now = start
    submitted: list[str] = []
    ops = ["submit"] * 6 + ["complete"] * 4 + ["fail", "cancel", "set_status", "set_setting",
                                                 "tick"]
    gap = st.integers(0, 19).flatmap(lambda k: (
        st.just(0) if k < 4 else st.integers(1, 600) if k < 14
        else st.integers(600, 6 * 3600) if k < 18 else st.integers(0, int(max_gap_days * DAY))))
    out: list[dict[str, Any]] = []
    for k in range(n):
        now += draw(gap) + draw(st.sampled_from([0.0, 0.0, 0.25, 0.5]))
        at = format_time(now)
        op = draw(st.sampled_from(ops)) if submitted else "submit"
        if op == "submit":
            task_id = f"t{k}"
            ev: dict[str, Any] = {"op": "submit", "at": at, "task_id": task_id,
                                  "request": draw(request_bodies(submitted, bot_ids,
                                                                 valid_only=valid_only))}
            if draw(st.integers(0, 5)) == 0:
                ev["estimated_gpu_seconds"] = draw(st.integers(0, 120_000)) / 1000
            submitted.append(task_id)
        elif op in ("complete", "fail", "cancel"):
            choices = submitted[-8:] if valid_only else [*submitted[-8:], "ghost"]
            ev = {"op": op, "at": at, "task_id": draw(st.sampled_from(choices))}
            if op == "fail" and draw(st.booleans()):
                ev["reason"] = "fast_exhausted"  # H4
            if op == "complete":
                ev["gpu_seconds"] = draw(st.one_of(st.integers(0, 120_000),
                                                   st.integers(0, 4_000_000))) / 1000
        elif op in ("set_status", "set_setting"):
            ids = list(account_ids) if valid_only or not account_ids else [*account_ids, "nobody"]
            acc_id = draw(st.sampled_from(ids)) if ids else "nobody"
            if op == "set_status":
                ev = {"op": op, "at": at, "account_id": acc_id,
                      "status": draw(st.sampled_from([s.value for s in Status] + ["active"]))}
                if ev["status"] in ("disabled", "banned", "captcha_required") and draw(
                        st.booleans()):  # H1: a timed status, recovered at until
                    ev["until"] = format_time(now + draw(st.integers(1, 3 * DAY)))
            else:
                ev = {"op": op, "at": at, "account_id": acc_id,
                      "setting": draw(st.sampled_from([s.value for s in Setting]))}
        else:
            ev = {"op": "tick", "at": at}
        out.append(ev)
    return out


__all__ = [
    "START", "account_document", "account_documents", "account_ids", "accounts",
    "daily_caps", "event_scripts", "min_gaps", "policies", "pools", "prompts",
    "renewal_instants", "request_bodies", "windows",
]
