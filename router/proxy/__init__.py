"""``byoa serve``: the reference proxy with GoAPI's unified task API.

The router decides (``router.engine`` through a ``router.stores.Store``); this
package only speaks HTTP, runs tasks on an ``Upstream`` and delivers webhooks.

* ``app``: the FastAPI routes and error handlers; ``edge``: API key, bodies,
  account updates; ``schema``: the OpenAPI models; ``envelope``: GoAPI's envelope.
* ``service.TaskService``: a task's life cycle, with one helper per job:
  ``records`` (task records), ``dispatch`` (the waiting line, R5), ``runner``
  (running and charging), ``notices`` (webhooks), ``admin`` (account endpoints),
  ``reroute`` (H4: a task refused for lack of fast time moves under its id),
  ``waiting`` (a waiting task's place and estimated start, R5),
  ``metrics`` (counters, latency histogram, ``GET /metrics``).
* ``batcher.TurnBatcher``: the calls of one event-loop turn in one store round trip.
* ``queue``, ``upstream``, ``webhooks``, ``tasks``: the line, the upstream, deliveries,
  a task's GoAPI shape. Error codes and their HTTP statuses: ``router.errors``.
"""

from router.proxy.app import create_app
from router.proxy.service import ProxyConfig, TaskService
from router.proxy.upstream import SimulatedUpstream, Upstream, UpstreamResult

__all__ = ["ProxyConfig", "SimulatedUpstream", "TaskService", "Upstream", "UpstreamResult",
           "create_app"]
