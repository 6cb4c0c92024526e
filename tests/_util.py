"""Small builders shared by the rule tests (not a test module)."""

from __future__ import annotations

from typing import Any

from router.accounts import (
    PLAN_ALLOWANCE_MS,
    PLAN_MAX_IN_FLIGHT,
    Account,
    InactiveWindow,
    Plan,
    Setting,
    Status,
)
from router.io.events import Event, check_event
from router.ledger import Policy
from router.pool import Pool
from router.strategies import Strategy
from router.timeutil import parse_time

T0 = parse_time("2026-11-24T10:00:00Z")
HOUR = 3600.0


def acc(acc_id: str, plan: str = "standard", *, setting: str = "fast",
        status: str = "active", fast_s: float | None = None, renews_at: str | None = None,
        weight: float = 1.0, backup: bool = False, max_in_flight: int | None = None,
        bot_id: int | None = None, window: tuple[int, int] | None = None) -> Account:
    """An account; ``fast_s`` in seconds (default: the plan's allowance)."""
    p = Plan(plan)
    return Account(
        id=acc_id, plan=p, setting=Setting(setting), status=Status(status),
        fast_ms=PLAN_ALLOWANCE_MS[p] if fast_s is None else round(fast_s * 1000),
        renews_at=parse_time(renews_at) if renews_at else None,
        weight=weight, backup=backup,
        max_in_flight=PLAN_MAX_IN_FLIGHT[p] if max_in_flight is None else max_in_flight,
        bot_id=bot_id,
        inactive_window=InactiveWindow(window[0] * 3600, window[1] * 3600) if window else None,
    )


def pool(*accounts: Account, strategy: str = "least_loaded", indexed: bool = True,
         **policy: Any) -> Pool:
    return Pool(list(accounts), Policy(Strategy(strategy), **policy), indexed=indexed)


def imagine(prompt: str = "a cat", **inp: Any) -> dict[str, Any]:
    return {"model": "midjourney", "task_type": "imagine", "input": {"prompt": prompt, **inp}}


def fast(prompt: str = "a cat", **inp: Any) -> dict[str, Any]:
    return imagine(prompt, process_mode="fast", **inp)


def turbo(prompt: str = "a cat", **inp: Any) -> dict[str, Any]:
    return imagine(prompt, process_mode="turbo", **inp)


def relax(prompt: str = "a cat", **inp: Any) -> dict[str, Any]:
    return imagine(prompt, process_mode="relax", **inp)


def child(origin: str, task_type: str = "upscale", **inp: Any) -> dict[str, Any]:
    return {"model": "midjourney", "task_type": task_type,
            "input": {"origin_task_id": origin, "index": "1", **inp}}


def public(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "config": {"service_mode": "public"}}


def events(script: list[dict[str, Any]]) -> list[Event]:
    """An event script given as dicts, checked line by line as ``byoa replay`` does."""
    out, last = [], None
    for line, obj in enumerate(script, start=1):
        ev = check_event(obj, line, "<script>", last)
        last = ev.at
        out.append(ev)
    return out


class Clock:
    """A settable clock for the stores' ``clock=`` (seconds)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t
