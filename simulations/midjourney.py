"""The Midjourney execution model of one account (docs/facts.md).

* Concurrent fast and relax slots by plan (Basic 3/0, Standard 3/3, Pro and
  Mega 12/3); turbo jobs use the fast slots. Tasks the router sent to the
  account wait in its queue (FIFO per kind) until a slot of their kind frees;
  the router's ``max_in_flight`` (slots + the 10-job waiting queue) is what
  limits how many it sends (R1 room).
* Run time: fast ~ the GPU time; turbo ``turbo_speedup`` (4x) faster; relax
  ``relax_run_factor`` x the GPU time. The *charge* is the router's (L1: turbo
  2x, relax 0): the simulator reports the fast-equivalent GPU seconds.
* Relax wait before a relax job may take a slot: ``u x cap`` with ``u`` the
  task's pre-drawn uniform and ``cap`` growing linearly from
  ``relax_wait_base_seconds`` to ``relax_wait_max_seconds`` (10 min) as the
  account's relax GPU hours this period reach ``relax_wait_full_at_hours``;
  it resets when the ledger renews the account (L4).

This module holds the account-side state only; the SimPy scheduling is in
``simulations.harness``. Nothing here decides routing or charges.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from router.accounts import Account, Mode
from simulations.scenario import ExecutionModel
from simulations.workload import MODE_CODE

#: Final: static in the compiled core, not a module-dict look-up at every use.
RELAX: Final = MODE_CODE[Mode.RELAX]
FAST: Final = MODE_CODE[Mode.FAST]
TURBO: Final = MODE_CODE[Mode.TURBO]


@dataclass(slots=True)
class ExecParams:
    """Execution-model numbers in the units the harness uses."""

    turbo_speedup: float
    relax_run_factor: float
    relax_base_s: float
    relax_max_s: float
    relax_full_at_s: float

    @classmethod
    def from_model(cls, m: ExecutionModel) -> ExecParams:
        return cls(m.turbo_speedup, m.relax_run_factor, m.relax_wait_base_seconds,
                   m.relax_wait_max_seconds, m.relax_wait_full_at_hours * 3600.0)

    def run_seconds(self, gpu: float, mode: int) -> float:
        """Wall-clock run time of a job with ``gpu`` fast-equivalent GPU seconds."""
        if mode == TURBO:
            return gpu / self.turbo_speedup
        if mode == RELAX:
            return gpu * self.relax_run_factor
        return gpu


class AccountExec:
    """Slots, waiting queues and relax priority of one account."""

    __slots__ = ("acc", "fast_q", "fast_slots", "idx", "period_seen", "relax_q",
                 "relax_slots", "relax_used_s", "running_fast", "running_relax")

    def __init__(self, idx: int, acc: Account, fast_slots: int, relax_slots: int) -> None:
        self.idx = idx
        self.acc = acc
        self.fast_slots = fast_slots
        self.relax_slots = relax_slots
        self.running_fast = 0
        self.running_relax = 0
        self.fast_q: deque[int] = deque()
        self.relax_q: deque[int] = deque()
        self.relax_used_s = 0.0
        self.period_seen = acc.renewals_done

    def _sync_period(self) -> None:
        """Relax priority resets when the ledger renewed the account (L4)."""
        if self.period_seen != self.acc.renewals_done:
            self.period_seen = self.acc.renewals_done
            self.relax_used_s = 0.0

    def relax_wait(self, u: float, p: ExecParams) -> float:
        """Seconds a relax job waits before it may take a slot."""
        self._sync_period()
        frac = min(1.0, self.relax_used_s / p.relax_full_at_s)
        return u * (p.relax_base_s + (p.relax_max_s - p.relax_base_s) * frac)

    def add_relax_use(self, gpu: float) -> None:
        self._sync_period()
        self.relax_used_s += gpu

    def enqueue(self, task: int, mode: int) -> None:
        (self.relax_q if mode == RELAX else self.fast_q).append(task)

    def startable(self) -> list[int]:
        """Pop the tasks that can start now (slots taken)."""
        out: list[int] = []
        while self.fast_q and self.running_fast < self.fast_slots:
            out.append(self.fast_q.popleft())
            self.running_fast += 1
        while self.relax_q and self.running_relax < self.relax_slots:
            out.append(self.relax_q.popleft())
            self.running_relax += 1
        return out

    def release(self, mode: int) -> None:
        if mode == RELAX:
            self.running_relax -= 1
        else:
            self.running_fast -= 1

    def remove_waiting(self, task: int) -> bool:
        """Drop a task still waiting for a slot (a cancel); True if it was there."""
        for q in (self.fast_q, self.relax_q):
            if task in q:
                q.remove(task)
                return True
        return False
