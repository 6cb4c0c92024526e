"""The proxy's counters and route-latency histogram, and ``GET /metrics``:
Prometheus text exposition, written by hand (no extra dependency).

Accounts appear by id only; secrets never appear.

Per-account gauges (label ``account``) read the store's snapshot of each account
(``Store.accounts``): nothing is re-computed here. Cardinality: one series per
account per gauge (nine gauges, the daily cap only for capped accounts, and
``byoa_account_status`` carries the status as a label with one series per
account, value 1), so a pool of N accounts adds at most 9·N series; at thousands
of accounts, drop the ones you do not chart with ``metric_relabel_configs``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from router.accounts import MS_PER_HOUR, MS_PER_SECOND

if TYPE_CHECKING:
    from router.accounts import Account
    from router.proxy.service import TaskService

ROUTE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Counters:
    """Events of this process by name (``routed``, ``queued``, ``rejected_<code>``...)."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def count(self, name: str, n: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + n

    def get(self, name: str) -> int:
        return self.values.get(name, 0)


class Histogram:
    """A cumulative-bucket histogram of durations in seconds."""

    def __init__(self, buckets: tuple[float, ...] = ROUTE_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, seconds: float, n: int = 1) -> None:
        """``n`` observations of ``seconds`` each."""
        self.sum += seconds * n
        for i, bound in enumerate(self.buckets):
            if seconds <= bound:
                self.counts[i] += n
                return
        self.counts[-1] += n

    def lines(self, name: str) -> list[str]:
        out: list[str] = []
        cum = 0
        for bound, n in zip(self.buckets, self.counts, strict=False):
            cum += n
            out.append(f'{name}_bucket{{le="{bound}"}} {cum}')
        cum += self.counts[-1]
        out.append(f'{name}_bucket{{le="+Inf"}} {cum}')
        out.append(f"{name}_sum {self.sum}")
        out.append(f"{name}_count {cum}")
        return out


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_metrics(service: TaskService, accounts: list[Account], queue_length: int,
                   fresh: bool) -> str:
    """The metrics; ``accounts`` and ``queue_length`` as last read from the store
    (``fresh`` False: the store did not answer, and ``byoa_store_up`` is 0)."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    counters = service.counters.values
    metric("byoa_tasks_total", "counter", "Tasks by what happened to them in this process.")
    for key in sorted(counters):
        lines.append(f'byoa_tasks_total{{event="{_label(key)}"}} {counters[key]}')
    metric("byoa_queue_length", "gauge", "Tasks waiting for capacity (pool_saturated, R5).")
    lines.append(f"byoa_queue_length {queue_length}")
    metric("byoa_route_seconds", "histogram", "Time to route and reserve one submit.")
    lines += service.route_latency.lines("byoa_route_seconds")
    metric("byoa_store_up", "gauge", "1 when the shared store answered this scrape.")
    lines.append(f"byoa_store_up {int(fresh and not service.calls.down)}")
    metric("byoa_store_stalls_total", "counter", "Times the store stopped answering.")
    lines.append(f"byoa_store_stalls_total {service.calls.stalls}")
    metric("byoa_store_epoch_mismatch", "gauge", "1 when the store was emptied or loaded "
           "again since this process started (its epoch key is gone or changed).")
    lines.append(f"byoa_store_epoch_mismatch {int(service.epoch.problem is not None)}")
    now = time.time()
    gauges = (
        ("byoa_account_in_flight", "Tasks in flight on the account.",
         lambda a: a.in_flight),
        ("byoa_account_max_in_flight", "Room limit of the account.",
         lambda a: a.max_in_flight),
        ("byoa_account_fast_seconds_remaining", "Fast time left this period (L0).",
         lambda a: a.fast_ms / MS_PER_SECOND),
        ("byoa_account_fast_hours_remaining", "Fast hours left this period (L0).",
         lambda a: a.fast_ms / MS_PER_HOUR),
        ("byoa_account_unreserved_fast_seconds", "Fast time minus reservations (R9).",
         lambda a: a.unreserved_ms / MS_PER_SECOND),
        ("byoa_account_active", "1 when the account's status is active.",
         lambda a: 1 if a.status.value == "active" else 0),
        ("byoa_account_jobs_today", "Tasks routed to the account this UTC day (H2).",
         lambda a: a.jobs_on_day(now)),
    )
    for name, help_text, fn in gauges:
        metric(name, "gauge", help_text)
        for acc in accounts:
            lines.append(f'{name}{{account="{_label(acc.id)}"}} {fn(acc)}')
    metric("byoa_account_max_jobs_per_day", "gauge",
           "The account's daily cap (H2); capped accounts only.")
    for acc in accounts:
        if acc.max_jobs_per_day is not None:
            lines.append(f'byoa_account_max_jobs_per_day{{account="{_label(acc.id)}"}} '
                         f"{acc.max_jobs_per_day}")
    metric("byoa_account_status", "gauge",
           "1, labelled with the account's status (L5; timed statuses end by H1).")
    for acc in accounts:
        lines.append(f'byoa_account_status{{account="{_label(acc.id)}",'
                     f'status="{acc.status.value}"}} 1')
    webhooks = service.notifier.webhooks
    if webhooks is not None:
        metric("byoa_webhooks_total", "counter", "Webhook deliveries by result.")
        for result, n in (("sent", webhooks.sent), ("failed", webhooks.failed),
                          ("retried", webhooks.retries)):
            lines.append(f'byoa_webhooks_total{{result="{result}"}} {n}')
    return "\n".join(lines) + "\n"
