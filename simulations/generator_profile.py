"""The bounds' view of a generated workload, computed from its parameters.

Expected tasks per hour by type and requested mode follow from the generator's
rate, task mix, mode shares and follow-up rules (children inherit the parent's
mode, M5); the busiest hour is the base rate times the daily profile's peak (and
a scheduled burst's multiplier when there is one).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from router.errors import InputError
from simulations.bounds import WorkloadProfile
from simulations.facts import GPU_SECONDS, TURBO_SPEEDUP
from simulations.scenario import GeneratorModel


def generator_model(params: dict[str, Any], *, source: str = "<generator>") -> GeneratorModel:
    """Validate generator parameters (a scenario's ``[workload.generator]`` keys)."""
    try:
        return GeneratorModel.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(generator)"
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        raise InputError(f"{msg}, got {err.get('input')!r}", source=source,
                         field=field) from None


def profile_generator(gen: GeneratorModel, days: float) -> WorkloadProfile:
    """Expected profile of ``days`` of the generator ``gen``."""
    mix_total = sum(gen.task_mix.values())
    level: dict[str, float] = {t: gen.rate_per_hour * w / mix_total
                               for t, w in gen.task_mix.items()}
    per_hour: dict[str, float] = dict(level)
    for _ in range(gen.max_depth):
        nxt: dict[str, float] = {}
        for rule in gen.followups:
            nxt[rule.type] = nxt.get(rule.type, 0.0) + rule.mean * sum(
                level.get(t, 0.0) for t in rule.after)
        for t, x in nxt.items():
            per_hour[t] = per_hour.get(t, 0.0) + x
        level = nxt
    share_total = sum(gen.modes.values())
    shares = {m: gen.modes.get(m, 0.0) / share_total for m in ("fast", "turbo", "relax")}
    hours = days * 24.0
    prof = sum(gen.daily_profile) / 24.0
    peak = max(gen.daily_profile) / prof
    if gen.bursts or gen.random_bursts_per_day:
        burst = max([b.multiplier for b in gen.bursts] + [gen.burst_multiplier
                                                           if gen.random_bursts_per_day else 1])
        peak *= max(1.0, burst)
    p = WorkloadProfile(days=days)
    total_per_hour = sum(per_hour.values())
    p.tasks = round(total_per_hour * hours)
    p.fast_tasks = round(total_per_hour * (shares["fast"] + shares["turbo"]) * hours)
    p.relax_tasks = p.tasks - p.fast_tasks
    for t, rate in per_hour.items():
        gpu = GPU_SECONDS.get(t, 60.0)
        n = rate * hours
        p.fast_gpu_hours += n * gpu * (shares["fast"] + 2 * shares["turbo"]) / 3600.0
        p.relax_gpu_hours += n * gpu * shares["relax"] / 3600.0
        p.fast_run_seconds += n * gpu * (shares["fast"] + shares["turbo"] / TURBO_SPEEDUP)
    p.peak_fast_per_hour = total_per_hour * (shares["fast"] + shares["turbo"]) * peak
    p.by_type = {t: round(r * hours) for t, r in sorted(per_hour.items())}
    return p
