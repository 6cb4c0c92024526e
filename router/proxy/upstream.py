"""Where tasks really run. ``SimulatedUpstream`` is a small Midjourney model in
accelerated real time, so the whole proxy runs on one machine with nothing external.

Model: a task's fast-mode GPU time is the R9 estimate for its type times a
seeded jitter; the wall time is that GPU time in fast, a quarter of it in turbo
(about four times the speed) and twice it plus a queue wait in relax, all
divided by ``speedup``. The reported ``gpu_seconds`` is the fast-equivalent
GPU time; the ledger charges twice it for turbo (L1).
"""

from __future__ import annotations

import asyncio
import random
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


class Upstream(Protocol):
    """Runs one routed task on one account in one effective mode."""

    async def run(self, task_id: str, task_type: str, mode: Mode, account_id: str,
                  body: Mapping[str, Any]) -> UpstreamResult: ...


WALL_FACTOR: dict[Mode, float] = {Mode.FAST: 1.0, Mode.TURBO: 0.25, Mode.RELAX: 2.0}


class SimulatedUpstream:
    """Accelerated simulated Midjourney: ``speedup`` simulated seconds per real second."""

    def __init__(self, *, speedup: float = 60.0, seed: int = 0, fail_rate: float = 0.0,
                 jitter: float = 0.2, relax_wait_seconds: float = 30.0,
                 gpu_seconds: Mapping[str, float] | None = None) -> None:
        self.speedup = speedup
        self.rng = random.Random(seed)
        self.fail_rate = fail_rate
        self.jitter = jitter
        self.relax_wait = relax_wait_seconds
        self.gpu = dict(DEFAULT_ESTIMATE_SECONDS if gpu_seconds is None else gpu_seconds)

    def gpu_for(self, task_type: str) -> float:
        base = self.gpu.get(task_type, 60.0)
        return round(base * self.rng.uniform(1 - self.jitter, 1 + self.jitter), 3)

    async def run(self, task_id: str, task_type: str, mode: Mode, account_id: str,
                  body: Mapping[str, Any]) -> UpstreamResult:
        gpu = self.gpu_for(task_type)
        wall = gpu * WALL_FACTOR[mode] + (self.relax_wait if mode is Mode.RELAX else 0.0)
        await asyncio.sleep(wall / self.speedup)
        if self.rng.random() < self.fail_rate:
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
