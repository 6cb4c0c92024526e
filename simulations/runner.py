"""The one seam between capacity planning and the simulator.

``run_scenario(spec)`` runs one ``ScenarioSpec`` through the SimPy harness
(issue 3) and returns its summary metrics (the keys of ``summary.json``:
``wasted_fast_hours``, ``tasks_downgraded``, ``wait_seconds`` by mode,
``cost_per_1000_images``, ``tasks_rejected``, ...). Sweeps and the planner call
nothing else, so the harness can change behind this function.

The fleet becomes explicit accounts in the contract's format: renewal instants
spread evenly over the 30 days after the start (``renewal = "spread"``) or all
30 days after it (``"same"``); with ``initial_fast = "prorated"`` an account
starts with the part of its allowance left at an even pace (allowance x days
to its renewal / 30), the steady state of a fleet already running.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from router.accounts import MS_PER_HOUR, PLAN_ALLOWANCE_MS, Setting
from router.timeutil import DAY, format_time, parse_time
from simulations.spec import ScenarioSpec

#: Renewal instants are spread over this many days (one billing month).
SPREAD_DAYS = 30.0
#: The start of a generated workload unless the spec names one.
DEFAULT_START = "2026-01-01T00:00:00Z"


def fleet_accounts(spec: ScenarioSpec, start: float) -> list[dict[str, Any]]:
    """The fleet as contract account objects, ids ``<plan>-<n>`` in group order."""
    fleet = spec.fleet
    n = fleet.size
    docs: list[dict[str, Any]] = []
    k = 0
    for group in fleet.groups:
        for j in range(group.count):
            if fleet.renewal == "same":
                renews = start + SPREAD_DAYS * DAY
            else:
                renews = start + SPREAD_DAYS * DAY * (k + 0.5) / n
            allowance_h = PLAN_ALLOWANCE_MS[group.plan] / MS_PER_HOUR
            fast_h = allowance_h
            if fleet.initial_fast == "prorated":
                fast_h = allowance_h * min(1.0, (renews - start) / (SPREAD_DAYS * DAY))
            docs.append({
                "id": f"{group.plan.value}-{group.setting.value}-{j + 1:02d}",
                "plan": group.plan.value, "setting": group.setting.value,
                "renews_at": format_time(renews), "fast_hours_remaining": fast_h,
            })
            k += 1
    if fleet.extra_fast_hours > 0:
        fast_set = [d for d in docs if d["setting"] != Setting.RELAX.value]
        if fast_set:
            last = max(fast_set, key=lambda d: parse_time(d["renews_at"]))
            last["fast_hours_remaining"] += fleet.extra_fast_hours
    return docs


def trace_start(path: str) -> str:
    """The time of a trace's first task: the first line of an event script (.gz ok),
    else the earliest row of a CSV or Parquet trace (read by the simulator's reader)."""
    if path.endswith((".jsonl", ".jsonl.gz")):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    return str(json.loads(line)["at"])
        return DEFAULT_START
    from simulations.scenario import ExecutionModel
    from simulations.traces import read_trace

    wl = read_trace(path, ExecutionModel(), 0)
    return format_time(float(wl.arrival[0])) if wl.n else DEFAULT_START


def scenario_document(spec: ScenarioSpec) -> dict[str, Any]:
    """The simulator's scenario (its TOML shape, as a dict) for ``spec``."""
    wl = spec.workload
    start_text = spec.start
    if wl.trace is not None:
        start_text = trace_start(wl.trace)
    start = parse_time(start_text)
    workload: dict[str, Any] = (
        {"trace": wl.trace} if wl.trace is not None else {"generator": wl.generator_params})
    pol = spec.policy
    doc: dict[str, Any] = {
        "name": f"scenario-{spec.index}",
        "simulation": {"start": format_time(start), "days": spec.days, "seed": spec.seed},
        "policy": {"strategy": pol.strategy.value, "seed": spec.seed,
                   "fallback_on_saturation": pol.fallback_on_saturation,
                   "restore_fast_on_renewal": pol.restore_fast_on_renewal},
        "fleet": {"accounts": fleet_accounts(spec, start)},
        "workload": workload,
    }
    return doc


def run_scenario(spec: ScenarioSpec) -> dict[str, Any]:
    """Simulate ``spec`` and return its summary metrics (pure in ``spec``, D1).

    Goes through the harness's own steps (``simulations.run``): the scenario
    model, its workload, accounts and policy, then one run. The policy gets the
    opt-in ``upgrade_relax_when_expiring`` options the scenario format leaves out.
    """
    from simulations.fleet import build_accounts, build_policy
    from simulations.run import build_workload, run_one
    from simulations.scenario import ScenarioModel

    doc = scenario_document(spec)
    sc = ScenarioModel.model_validate(doc)
    source = f"<scenario {spec.index}>"
    wl = build_workload(sc, None)
    start = parse_time(doc["simulation"]["start"])
    accounts = build_accounts(sc, source, None, start)
    policy = build_policy(sc.policy)
    policy.upgrade_relax_when_expiring = spec.policy.upgrade_relax_when_expiring
    policy.upgrade_relax_horizon_hours = spec.policy.upgrade_relax_horizon_hours
    summary: dict[str, Any] = run_one(sc, accounts, policy, wl, start).summary
    return summary
