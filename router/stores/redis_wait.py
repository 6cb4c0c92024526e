"""Redis reads that wait on the event loop instead of blocking its thread.

The proxy runs its store calls, which are ordinary blocking code, one at a time
in a *store greenlet* on the event loop's thread (``router.proxy.storeloop``).
A connection of a client made ``cooperative`` does not block in ``recv`` when
its answer has not come yet and it runs in such a greenlet: it asks the loop to
wake it when the socket is readable (or when the client's ``socket_timeout``
has passed: ``redis.TimeoutError``, as a blocking read would raise) and switches
back to the loop, which serves other requests meanwhile. Anywhere else (another
thread, the main greenlet, a command-line tool) it reads as redis-py does.
Writes are not made to wait: a store call's commands are small and the socket's
send buffer takes them at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import greenlet
import redis

#: The store greenlets: the only ones whose reads wait on the loop.
_STORE_GREENLETS: set[greenlet.greenlet] = set()


def in_store_greenlet() -> bool:
    """Whether the running code is a store greenlet's (its reads wait on the loop)."""
    return greenlet.getcurrent() in _STORE_GREENLETS


def store_greenlet(run: Any) -> greenlet.greenlet:
    """A greenlet whose Redis reads wait on the event loop (it is forgotten when
    it ends)."""
    def body() -> None:
        try:
            run()
        finally:
            _STORE_GREENLETS.discard(g)

    g = greenlet.greenlet(body)
    _STORE_GREENLETS.add(g)
    return g


def wait_readable(sock: Any, timeout: float | None) -> None:
    """In a store greenlet: back to the loop until ``sock`` is readable, or raise
    ``redis.TimeoutError`` after ``timeout`` seconds."""
    me = greenlet.getcurrent()
    loop = asyncio.get_running_loop()
    fd = sock.fileno()
    timer: asyncio.TimerHandle | None = None

    def wake(ok: bool) -> None:
        loop.remove_reader(fd)
        if timer is not None:
            timer.cancel()
        me.switch(ok)

    loop.add_reader(fd, wake, True)
    if timeout is not None:
        timer = loop.call_later(timeout, wake, False)
    assert me.parent is not None
    if not me.parent.switch():
        raise redis.TimeoutError("Timeout reading from socket")


class _Waiting:
    """The mixin of ``cooperative`` connections."""

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        conn: Any = self
        if conn._sock is not None and in_store_greenlet() and not conn.can_read(0):
            wait_readable(conn._sock, conn.socket_timeout)
        return super().read_response(*args, **kwargs)  # type: ignore[misc]


_CLASSES: dict[type[Any], type[Any]] = {}


def cooperative(client: redis.Redis) -> redis.Redis:
    """``client`` with connections that wait on the loop in a store greenlet."""
    pool = client.connection_pool
    cls = pool.connection_class
    if not issubclass(cls, _Waiting):
        sub = _CLASSES.get(cls)
        if sub is None:
            sub = _CLASSES[cls] = type(f"Waiting{cls.__name__}", (_Waiting, cls), {})
        pool.connection_class = sub
    return client
