"""Redis Cluster for the shared state: ``redis+cluster://HOST:PORT`` (any node).

Every Lua script touches the keys of one account (hash tag ``{acc:<id>}``) or of
the waiting line (``{q}``), so it runs on one shard, and the accounts spread
over the shards by their ids. redis-py's cluster pipeline refuses scripts, so
``SlotPipeline`` queues commands, sends them as one plain pipeline per shard
(the node that owns each command's first key) and returns the answers in
order; the scripts are loaded on every primary when registered.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, cast

import redis
from redis.cluster import RedisCluster

from router.stores.redis_keys import DEFAULT_TIMEOUT, connect

SCHEME = "redis+cluster://"


def is_cluster_url(url: str) -> bool:
    return url.startswith(SCHEME)


def client_for(url: str, timeout: float = DEFAULT_TIMEOUT) -> redis.Redis:
    """A client for ``url``: ``redis://`` (one server) or ``redis+cluster://`` (a
    cluster, reached through any of its nodes), whose commands give up after
    ``timeout`` seconds."""
    if not is_cluster_url(url):
        return connect(url, timeout)
    node_url = "redis://" + url[len(SCHEME):]
    return cast(redis.Redis, SlotCluster.from_url(
        node_url, decode_responses=True, socket_timeout=timeout,
        socket_connect_timeout=timeout))


class SlotPipeline:
    """A non-transactional pipeline over a cluster: one plain pipeline per shard."""

    def __init__(self, client: SlotCluster) -> None:
        self._c = client
        self._cmds: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __len__(self) -> int:
        return len(self._cmds)

    def __getattr__(self, name: str) -> Any:
        def queue(*args: Any, **kwargs: Any) -> SlotPipeline:
            self._cmds.append((name, args, kwargs))
            return self
        return queue

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        cmds, self._cmds = self._cmds, []
        by_node: dict[str, list[int]] = defaultdict(list)
        nodes: dict[str, Any] = {}
        for i, (name, args, _kw) in enumerate(cmds):
            node = self._c.get_node_from_key(_first_key(name, args))  # type: ignore[no-untyped-call]
            by_node[node.name].append(i)
            nodes[node.name] = node
        out: list[Any] = [None] * len(cmds)
        for node_name, idx in by_node.items():
            pipe = nodes[node_name].redis_connection.pipeline(transaction=False)
            for i in idx:
                name, args, kw = cmds[i]
                getattr(pipe, name)(*args, **kw)
            for i, res in zip(idx, pipe.execute(raise_on_error=raise_on_error), strict=True):
                out[i] = res
        return out


class SlotCluster(RedisCluster):
    """``RedisCluster`` whose pipelines may carry the store's scripts."""

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        return SlotPipeline(self)

    def register_script(self, script: Any) -> Any:
        registered = super().register_script(script)
        for node in self.get_primaries():  # type: ignore[no-untyped-call]
            if node.redis_connection is not None:
                node.redis_connection.script_load(script)
        return registered


def _first_key(name: str, args: tuple[Any, ...]) -> str:
    """The key a queued command is routed by (``execute_command`` names its command
    first, as redis-py's own multi-key splitting queues them)."""
    if name == "execute_command":
        name, args = str(args[0]).lower(), args[1:]
    return str(args[2] if name in ("evalsha", "eval") else args[0])
