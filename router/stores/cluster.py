"""Redis Cluster for the shared state: ``redis+cluster://HOST:PORT`` (any node).

Every Lua script touches the keys of one account (hash tag ``{acc:<id>}``) or of
the waiting line (``{q}``), so it runs on one shard, and the accounts spread
over the shards by their ids. redis-py's cluster pipeline refuses scripts, so
``SlotPipeline`` queues commands, sends them as one plain pipeline per shard
(the node that owns each command's first key) and returns the answers in
order; the scripts are loaded on every primary when registered.

At a failover (a master killed and its replica promoted, or a planned
``CLUSTER FAILOVER``) the client's slot map goes stale: a command sent to the old
master fails to connect, or is answered ``MOVED`` by it (now a replica), and until
a replica is promoted every node answers ``CLUSTERDOWN``. A command answered
``MOVED`` did not run: the pipeline moves its slot to the node named in the answer
(as redis-py does for single commands) and sends it again there. A connection
error refreshes the whole map (the next call goes to the right node) and is raised
as before. Whatever still cannot be served (``CLUSTERDOWN``, ``TRYAGAIN``, ``ASK``,
or ``MOVED`` again and again) is raised as :class:`ClusterUnavailable`, a
``redis.ConnectionError``: to the proxy a stall like any other (503
``store_unavailable`` for new requests; starts, charges and records retried once
the store answers, ``router.proxy.storecalls``), never an error that fails a task
or drops its record.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any, cast

import redis
from redis.cluster import RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)

from router.stores.redis_keys import connect
from router.stores.redis_pipe import pipeline
from router.stores.url import DEFAULT_TIMEOUT

SCHEME = "redis+cluster://"

#: Times a pipeline sends the commands answered ``MOVED`` again (to the node the
#: answer named; from the second time on, the whole slot map is read again first),
#: before it says the cluster is unavailable.
MOVED_ATTEMPTS = 3

#: Answers that say the cluster cannot serve a slot right now; the command did not run.
NOT_SERVED = (ClusterDownError, TryAgainError, AskError, SlotNotCoveredError)


class ClusterUnavailable(redis.ConnectionError):
    """The cluster could not serve a slot (``CLUSTERDOWN``, ``TRYAGAIN``, ``ASK``,
    or ``MOVED`` after the slot map was refreshed): the command did not run. A
    ``ConnectionError``, so that callers treat it as a stalled store."""


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
        out: list[Any] = [None] * len(cmds)
        todo = list(range(len(cmds)))
        for attempt in range(MOVED_ATTEMPTS):
            todo = self._send(cmds, todo, out)  # the ones answered MOVED (not run)
            if not todo:
                break
            for i in todo:  # their slots now go where MOVED said (redis-py does the same)
                self._c.nodes_manager.move_slot(out[i])
            if attempt:  # MOVED again: the map may be wrong for other slots too
                self._c.refresh_slots()
        for i, res in enumerate(out):
            if isinstance(res, NOT_SERVED):
                out[i] = _unavailable(res)
        if raise_on_error:
            for res in out:
                if isinstance(res, Exception):
                    raise res
        return out

    def _send(self, cmds: list[tuple[str, tuple[Any, ...], dict[str, Any]]],
              todo: list[int], out: list[Any]) -> list[int]:
        """Send the commands ``todo`` (indexes into ``cmds``), one plain pipeline per
        shard; their answers (or errors) into ``out``. The ones answered ``MOVED``."""
        by_node: dict[str, list[int]] = defaultdict(list)
        nodes: dict[str, Any] = {}
        for i in todo:
            name, args, _kw = cmds[i]
            try:
                node = self._c.get_node_from_key(_first_key(name, args))  # type: ignore[no-untyped-call]
            except SlotNotCoveredError as exc:  # no owner known for its slot right now
                raise _unavailable(exc) from exc
            by_node[node.name].append(i)
            nodes[node.name] = node
        moved: list[int] = []
        for node_name, idx in by_node.items():
            pipe = pipeline(self._c.get_redis_connection(nodes[node_name]))
            for i in idx:
                name, args, kw = cmds[i]
                getattr(pipe, name)(*args, **kw)
            try:
                answers = pipe.execute(raise_on_error=False)
            except (redis.ConnectionError, redis.TimeoutError):
                self._c.refresh_slots()  # e.g. its master was killed: the next call
                raise  # goes to the replica promoted in its place
            for i, res in zip(idx, answers, strict=True):
                out[i] = res
                if isinstance(res, MovedError):
                    moved.append(i)
        return sorted(moved)


class SlotCluster(RedisCluster):
    """``RedisCluster`` whose pipelines may carry the store's scripts."""

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        return SlotPipeline(self)

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """As ``RedisCluster`` (which follows ``MOVED`` and retries a failed node a
        few times); what it still cannot serve raises ``ClusterUnavailable``."""
        try:
            return super().execute_command(*args, **kwargs)  # type: ignore[no-untyped-call]
        except NOT_SERVED as exc:
            raise _unavailable(exc) from exc

    def refresh_slots(self) -> None:
        """Ask the cluster again which node owns which slot (best effort: when no
        node answers, the next command fails and tries again)."""
        with contextlib.suppress(redis.RedisError, RedisClusterException):
            self.nodes_manager.initialize()

    def register_script(self, script: Any) -> Any:
        registered = super().register_script(script)
        for node in self.get_primaries():  # type: ignore[no-untyped-call]
            if node.redis_connection is not None:
                node.redis_connection.script_load(script)
        return registered


def _unavailable(exc: Exception) -> ClusterUnavailable:
    return ClusterUnavailable(f"the cluster cannot serve this slot now: {exc}")


def _first_key(name: str, args: tuple[Any, ...]) -> str:
    """The key a queued command is routed by (``execute_command`` names its command
    first, as redis-py's own multi-key splitting queues them)."""
    if name == "execute_command":
        name, args = str(args[0]).lower(), args[1:]
    return str(args[2] if name in ("evalsha", "eval") else args[0])
