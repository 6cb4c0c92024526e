"""The SimPy harness: a workload through ``router.pool.Pool`` and the execution model.

Every routing decision, reservation, charge, flip and renewal is the router's:
tasks go through ``Pool.submit``, finish through ``Pool.complete``/``Pool.fail``
(or ``cancel``), bans and captchas through ``Pool.set_status``, and the clock
through ``Pool.advance``. The harness only owns time and the accounts' slots.

Late binding (R5): a task answered ``pool_saturated`` waits in the central queue
(``simulations.central_queue``) and is routed again whenever an account frees,
and every ``retry_seconds`` (for inactive windows). Its waiting time counts. The
harness is written with plain SimPy timeouts and callbacks (no process per task)
so that a million tasks fit in a minute; the router calls are the bulk of the time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from router.accounts import Account
from router.ledger import Policy
from router.pool import Pool
from simulations.scenario import ExecutionModel
from simulations.simloop import (
    CANCELLED,
    COMPLETED,
    ERROR_CODES,
    ERROR_INDEX,
    FAILED,
    PENDING,
    PUBLIC,
    QUEUED,
    REJECTED,
    RUNNING,
    STATUS_NAMES,
    WAITING,
    SimLoop,
)
from simulations.workload import Workload

F64 = npt.NDArray[np.float64]


@dataclass(slots=True)
class RunOptions:
    """When the run starts and stops, and how it is observed, in seconds (built by
    ``simulations.spec.RunSpec.options`` from the scenario's documented defaults)."""

    start: float
    horizon_end: float
    drain: bool
    sample_s: float
    retry_s: float
    ban_rate: float  # per job
    ban_s: float
    captcha_rate: float  # per job
    captcha_s: float
    progress: Callable[[float], None] | None = None  # fraction of the horizon done
    drain_limit_s: float = 30 * 86_400.0  # draining stops this long after the horizon


@dataclass(slots=True)
class SimResult:
    """Raw per-task columns and counters; ``simulations.metrics`` builds tables."""

    workload: Workload
    pool: Pool
    accounts: list[Account]
    options: RunOptions
    ready: F64
    routed: F64
    start: F64
    end: F64
    acc: npt.NDArray[np.int32]
    req: npt.NDArray[np.int8]
    eff: npt.NDArray[np.int8]
    fallback: npt.NDArray[np.bool_]
    charged_ms: npt.NDArray[np.int64]
    status: npt.NDArray[np.int8]
    error: npt.NDArray[np.int8]
    attempts: npt.NDArray[np.int32]
    queued_s: F64  # time spent in the central queue
    q_enter: F64  # when the task entered the central queue (NaN: never)
    sample_t: list[float] = field(default_factory=list)
    sample_fast_ms: list[npt.NDArray[np.int64]] = field(default_factory=list)
    queue_area: float = 0.0  # integral of the central queue length over time
    queue_entries: int = 0
    queue_t0: float = 0.0
    queue_t1: float = 0.0
    end_time: float = 0.0
    incidents: list[tuple[float, str, str]] = field(default_factory=list)  # (at, account, status)
    recoveries: list[tuple[float, str, str]] = field(default_factory=list)  # H1: (at, account, was)


class Simulation:
    """One run: a ``Pool`` (built here from ``accounts`` and ``policy``), a workload,
    and the execution model. The events and their callbacks are
    ``simulations.simloop.SimLoop``'s (compiled with the core by ``make compile``)."""

    def __init__(self, accounts: list[Account], policy: Policy, workload: Workload,
                 execution: ExecutionModel, options: RunOptions, seed: int = 0) -> None:
        self.pool = Pool(accounts, policy, explain=False)
        self.accounts = accounts
        empty = np.empty(0)
        self.res = SimResult(
            workload, self.pool, accounts, options, ready=empty, routed=empty, start=empty,
            end=empty, acc=np.empty(0, np.int32), req=np.empty(0, np.int8),
            eff=np.empty(0, np.int8), fallback=np.empty(0, np.bool_),
            charged_ms=np.empty(0, np.int64), status=np.empty(0, np.int8),
            error=np.empty(0, np.int8), attempts=np.empty(0, np.int32), queued_s=empty,
            q_enter=empty,
        )
        self.loop = SimLoop(self.pool, accounts, workload, execution, options, self.res, seed)

    def run(self) -> SimResult:
        return self.loop.run()


def simulate(accounts: list[Account], policy: Policy, workload: Workload,
             execution: ExecutionModel, options: RunOptions, seed: int = 0) -> SimResult:
    """Run one simulation and return its raw result."""
    return Simulation(accounts, policy, workload, execution, options, seed).run()


__all__ = [
    "CANCELLED", "COMPLETED", "ERROR_CODES", "ERROR_INDEX", "FAILED", "PENDING", "PUBLIC",
    "QUEUED", "REJECTED", "RUNNING", "STATUS_NAMES", "WAITING", "RunOptions", "SimResult",
    "Simulation", "simulate",
]
