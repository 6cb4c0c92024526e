"""``GET /metrics``: Prometheus text exposition, written by hand (no extra dependency).

Accounts appear by id only; secrets never appear.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.accounts import MS_PER_SECOND

if TYPE_CHECKING:
    from router.proxy.service import TaskService


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_metrics(service: TaskService) -> str:
    from router.proxy.service import ROUTE_BUCKETS

    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    metric("byoa_tasks_total", "counter", "Tasks by what happened to them in this process.")
    for key in sorted(service.counters):
        lines.append(f'byoa_tasks_total{{event="{_label(key)}"}} {service.counters[key]}')
    metric("byoa_queue_length", "gauge", "Tasks waiting for capacity (pool_saturated, R5).")
    lines.append(f"byoa_queue_length {service.queue.length()}")
    metric("byoa_route_seconds", "histogram", "Time to route and reserve one submit.")
    cum = 0
    for bound, n in zip(ROUTE_BUCKETS, service.route_hist, strict=False):
        cum += n
        lines.append(f'byoa_route_seconds_bucket{{le="{bound}"}} {cum}')
    cum += service.route_hist[-1]
    lines.append(f'byoa_route_seconds_bucket{{le="+Inf"}} {cum}')
    lines.append(f"byoa_route_seconds_sum {service.route_sum}")
    lines.append(f"byoa_route_seconds_count {cum}")
    accounts = service.store.accounts()
    gauges = (
        ("byoa_account_in_flight", "Tasks in flight on the account.",
         lambda a: a.in_flight),
        ("byoa_account_max_in_flight", "Room limit of the account.",
         lambda a: a.max_in_flight),
        ("byoa_account_fast_seconds_remaining", "Fast time left this period (L0).",
         lambda a: a.fast_ms / MS_PER_SECOND),
        ("byoa_account_unreserved_fast_seconds", "Fast time minus reservations (R9).",
         lambda a: a.unreserved_ms / MS_PER_SECOND),
        ("byoa_account_active", "1 when the account's status is active.",
         lambda a: 1 if a.status.value == "active" else 0),
    )
    for name, help_text, fn in gauges:
        metric(name, "gauge", help_text)
        for acc in accounts:
            lines.append(f'{name}{{account="{_label(acc.id)}"}} {fn(acc)}')
    if service.webhooks is not None:
        metric("byoa_webhooks_total", "counter", "Webhook deliveries by result.")
        for result, n in (("sent", service.webhooks.sent), ("failed", service.webhooks.failed),
                          ("retried", service.webhooks.retries)):
            lines.append(f'byoa_webhooks_total{{result="{result}"}} {n}')
    return "\n".join(lines) + "\n"
