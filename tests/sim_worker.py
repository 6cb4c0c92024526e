"""Runs small simulations for ``test_compiled.py`` (not a test module).

Imported, ``digest`` runs one generated scenario in this process. Run as a script
(the test starts it with ``BYOA_PURE=1``, so its core and the simulator's loop are
the pure-Python ones), it reads ``digest``'s arguments from stdin and writes each
result to stdout, framed as ``core_worker`` frames them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

from core_worker import receive, send

import simulations.simloop
from router import compiled
from simulations.run import run_scenario
from simulations.scenario import parse_scenario

COLUMNS = ("ready", "routed", "start", "end", "acc", "req", "eff", "fallback", "charged_ms",
           "status", "error", "attempts", "queued_s", "q_enter")


def scenario(seed: int, std: int, pro: int, rate: float, hours: float, strategy: str,
             incidents: bool) -> str:
    """A generated scenario: ``std`` Standard and ``pro`` Pro accounts (one group of
    relax-set Standard), roots at ``rate`` an hour with follow-ups, optional bans and
    captchas, and a variant with fallback on saturation (R5; two runs on one workload)."""
    inc = ("ban_per_1000_jobs = 20.0\ncaptcha_per_1000_jobs = 40.0\n" if incidents else "")
    return f"""
        name = "compiled-vs-pure"
        [simulation]
        start = "2026-01-01T00:00:00Z"
        days = {hours / 24}
        seed = {seed}
        sample_minutes = 60
        [policy]
        strategy = "{strategy}"
        [[fleet.groups]]
        plan = "standard"
        count = {std}
        id_prefix = "std"
        [[fleet.groups]]
        plan = "standard"
        count = 1
        setting = "relax"
        id_prefix = "rlx"
        [[fleet.groups]]
        plan = "pro"
        count = {pro}
        id_prefix = "pro"
        [execution]
        {inc}
        [workload.generator]
        rate_per_hour = {rate}
        max_depth = 2
        followups = [
          {{ type = "upscale", mean = 0.5, think_seconds = 60 }},
          {{ type = "variation", mean = 0.2, think_seconds = 90 }},
        ]
        [[variants]]
        name = "queue"
        fallback_on_saturation = false
        [[variants]]
        name = "fallback"
        fallback_on_saturation = true
    """


def digest(*args: Any) -> dict[str, Any]:
    """Every run's per-task columns, samples, queue figures, incidents and recoveries
    (hashed) and summary (as JSON text), and which loop ran."""
    runs = run_scenario(parse_scenario(scenario(*args), source="test.toml"))
    out: list[str] = []
    for run in runs:
        r = run.result
        h = hashlib.sha256()
        for name in COLUMNS:
            col = getattr(r, name)
            h.update(f"{name}:{col.dtype}:".encode())
            h.update(col.tobytes())
        for s in r.sample_fast_ms:
            h.update(s.tobytes())
        h.update(repr((r.sample_t, r.queue_area, r.queue_entries, r.queue_t0, r.queue_t1,
                       r.end_time, r.incidents, r.recoveries)).encode())
        out.append(f"{run.name} {h.hexdigest()} "
                   f"{json.dumps(run.summary, sort_keys=True, default=str)}")
    return {"runs": out, "loop": "compiled" if compiled.is_compiled(simulations.simloop)
            else "pure"}


def main() -> None:
    while True:
        try:
            args = receive(sys.stdin.buffer)
        except EOFError:
            return
        send(sys.stdout.buffer, digest(*args))


if __name__ == "__main__":
    main()
