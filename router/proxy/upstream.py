"""Where tasks really run. ``SimulatedUpstream`` is a small Midjourney model in
accelerated real time, so the whole proxy runs on one machine with nothing external.

A task runs as an upstream *job* named by a reference that the proxy obtains
(``Upstream.reference``) and records in the store *before* the job starts; a
process that adopts the task after its owner died calls ``run`` with the same
reference and start time, which follows the job already running rather than
starting another (a real upstream would look the job up by that reference).

The simulated upstream is deterministic from (job reference, start time): the
job's GPU time, its outcome and its end (``started_at`` + wall time) are
functions of the reference (and the seed), not of a random stream, so any
process with the same settings (``--speedup``, ``--seed``, ``--fail-rate``)
follows the same job to the same result at the same moment.

Model: a task's fast-mode GPU time is the R9 estimate for its type times a
jitter drawn from the reference; the wall time is that GPU time in fast, a
quarter of it in turbo (about four times the speed) and twice it plus a queue
wait in relax, all divided by ``speedup``. The reported ``gpu_seconds`` is the
fast-equivalent GPU time; the ledger charges twice it for turbo (L1).

Running out of fast time before the proxy's books say so (H4): ``fast_exhausted``
names accounts on which Midjourney has no fast time left, each from a time on
(``byoa serve --upstream-fast-exhausted ACCOUNT[@TIME]``). A fast or turbo job
on such an account that starts at or after that time is refused at once with
``reason`` ``fast_exhausted`` (no GPU time); relax jobs run as usual. This too
is a function of (job reference, start time), so every process agrees.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from router.accounts import DEFAULT_ESTIMATE_SECONDS, Mode


@dataclass(slots=True)
class UpstreamResult:
    ok: bool
    gpu_seconds: float
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: why the upstream refused the job: ``fast_exhausted`` (H4) or None
    reason: str | None = None


#: ``UpstreamResult.reason`` when Midjourney has no fast time left for the job (H4)
FAST_EXHAUSTED = "fast_exhausted"


class Upstream(Protocol):
    """Runs routed tasks as jobs named by a reference, which any process can follow."""

    def reference(self, task_id: str, task_type: str, mode: Mode, account_id: str) -> str:
        """The job reference of one task on one account in one effective mode."""
        ...

    async def run(self, job: str, body: Mapping[str, Any], started_at: float) -> UpstreamResult:
        """Start ``job`` at ``started_at``, or follow it when it already runs; its result."""
        ...


WALL_FACTOR: dict[Mode, float] = {Mode.FAST: 1.0, Mode.TURBO: 0.25, Mode.RELAX: 2.0}


class SimulatedUpstream:
    """Accelerated simulated Midjourney: ``speedup`` simulated seconds per real second."""

    def __init__(self, *, speedup: float = 60.0, seed: int = 0, fail_rate: float = 0.0,
                 jitter: float = 0.2, relax_wait_seconds: float = 30.0,
                 gpu_seconds: Mapping[str, float] | None = None,
                 fast_exhausted: Mapping[str, float] | None = None) -> None:
        self.speedup = speedup
        #: H4: account id -> the time from which Midjourney has no fast time for it
        self.fast_exhausted: dict[str, float] = dict(fast_exhausted or {})
        self.seed = seed
        self.fail_rate = fail_rate
        self.jitter = jitter
        self.relax_wait = relax_wait_seconds
        self.gpu = dict(DEFAULT_ESTIMATE_SECONDS if gpu_seconds is None else gpu_seconds)

    def reference(self, task_id: str, task_type: str, mode: Mode, account_id: str) -> str:
        return f"sim:{task_type}:{mode.value}:{account_id}:{task_id}"

    def _draw(self, job: str, what: str) -> float:
        """A number in [0, 1) fixed by (seed, job, what)."""
        h = hashlib.sha256(f"{self.seed}|{what}|{job}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64

    def exhaust(self, account_id: str, since: float = float("-inf")) -> None:
        """H4: from ``since`` on, refuse fast and turbo jobs on ``account_id``."""
        self.fast_exhausted[account_id] = since

    def refuses_fast(self, account_id: str, mode: Mode, started_at: float) -> bool:
        """True when a ``mode`` job started at ``started_at`` finds no fast time (H4)."""
        since = self.fast_exhausted.get(account_id)
        return mode is not Mode.RELAX and since is not None and started_at >= since

    def gpu_for(self, job: str, task_type: str) -> float:
        base = self.gpu.get(task_type, 60.0)
        u = self._draw(job, "gpu")
        return round(base * (1 - self.jitter + 2 * self.jitter * u), 3)

    async def run(self, job: str, body: Mapping[str, Any], started_at: float) -> UpstreamResult:
        _sim, task_type, mode_s, account_id, task_id = job.split(":", 4)
        mode = Mode(mode_s)
        if self.refuses_fast(account_id, mode, started_at):  # refused when submitted
            await asyncio.sleep(max(0.0, started_at - time.time()))
            return UpstreamResult(False, 0.0, reason=FAST_EXHAUSTED,
                                  error=f"Midjourney reports no fast time left on account "
                                        f"{account_id}")
        gpu = self.gpu_for(job, task_type)
        wall = gpu * WALL_FACTOR[mode] + (self.relax_wait if mode is Mode.RELAX else 0.0)
        end = started_at + wall / self.speedup
        await asyncio.sleep(max(0.0, end - time.time()))
        if self._draw(job, "fail") < self.fail_rate:
            return UpstreamResult(False, 0.0, error="simulated upstream failure")
        base = f"https://sim.byoa.invalid/{task_id}"
        urls = [f"{base}/{i}.png" for i in range(1, 5)]
        output = {
            "image_url": f"{base}/grid.png", "image_urls": urls, "temporary_image_urls": urls,
            "discord_image_url": "", "progress": 100, "intermediate_image_urls": None,
            "actions": (["upscale1", "upscale2", "upscale3", "upscale4", "variation1",
                         "variation2", "variation3", "variation4", "reroll"]
                        if task_type in ("imagine", "blend", "reroll", "variation") else []),
        }
        return UpstreamResult(True, gpu, output)
