"""``byoa serve``: the reference proxy with GoAPI's unified task API.

The router decides (``router.engine`` through a ``router.stores.Store``); this
package only speaks HTTP, runs tasks on an ``Upstream`` and delivers webhooks.
"""

from router.proxy.app import create_app
from router.proxy.service import ProxyConfig, TaskService
from router.proxy.upstream import SimulatedUpstream, Upstream, UpstreamResult

__all__ = ["ProxyConfig", "SimulatedUpstream", "TaskService", "Upstream", "UpstreamResult",
           "create_app"]
