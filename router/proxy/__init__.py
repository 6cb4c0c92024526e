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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.proxy.app import create_app
    from router.proxy.service import ProxyConfig, TaskService
    from router.proxy.upstream import SimulatedUpstream, Upstream, UpstreamResult

_WHERE = {"create_app": "app", "ProxyConfig": "service", "TaskService": "service",
          "SimulatedUpstream": "upstream", "Upstream": "upstream", "UpstreamResult": "upstream"}


def __getattr__(name: str) -> Any:
    """The public names, imported when first asked for: ``byoa`` builds its parser
    (``router.proxy.cli``) without FastAPI and the proxy's modules."""
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'router.proxy' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"router.proxy.{where}"), name)

__all__ = ["ProxyConfig", "SimulatedUpstream", "TaskService", "Upstream", "UpstreamResult",
           "create_app"]
