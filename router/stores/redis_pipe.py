"""The store's pipelines: ``pipeline`` (plain commands) and ``ScriptPipe`` (plain
commands and the store's Lua scripts, run by ``EVALSHA`` alone).

``pipeline(client)`` gives a ``LeanPipeline`` on one Redis server: the same
commands and answers as redis-py's non-transactional pipeline (the same command
builders, encoding, response callbacks and retries on a dropped connection), with
less Python per call. redis-py's ``Pipeline.execute`` checks deprecated arguments
on every connection it borrows, records metrics, and looks each answer's callback
up in a case-insensitive map; on the proxy's store thread that was a quarter of
the time a process held the GIL on Redis (``benchmarks/bench_proxy_cpu.py``,
sampled with py-spy). Here one connection per thread (and one for its store
greenlets, ``redis_wait``) is kept for the client's pipelines (the proxy's store
calls run one at a time), the commands are
packed and sent in one write, and every answer is read in order; an error answer
is returned in its place (``raise_on_error=False``) or raised. On a cluster
client (``router.stores.cluster``) ``pipeline`` gives the cluster's own.

redis-py's own pipeline asks ``SCRIPT EXISTS`` before every ``execute`` that
carries a registered script: one more round trip per batch. The scripts are
loaded when they are registered, so that question is almost always answered
yes; ``ScriptPipe`` sends ``EVALSHA`` alone, and a script the server does not
know (it restarted or its script cache was flushed) comes back as
``NoScriptError`` without having run; only that call is sent again through the
script object, which loads it first. Every script still runs exactly once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.commands.core import CoreCommands, Script
from redis.connection import AbstractConnection, HiredisRespSerializer
from redis.exceptions import NoScriptError, ResponseError

from router.stores.redis_wait import in_store_greenlet

try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # redis-py packs in Python then
    _hiredis_pack = None  # type: ignore[assignment]
pack_command: Callable[[tuple[Any, ...]], bytes] | None = _hiredis_pack

Queued = tuple[tuple[Any, ...], dict[str, Any]]


class LeanPipeline(CoreCommands):
    """A non-transactional pipeline on one Redis server (``pipeline``)."""

    _event_dispatcher: Any = None  # a member of redis-py's command protocol, unused here

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._cmds: list[Queued] = []

    def __len__(self) -> int:
        return len(self._cmds)

    def execute_command(self, *args: Any, **options: Any) -> LeanPipeline:
        """Queue one command (what every command builder calls)."""
        self._cmds.append((args, options))
        return self

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Send everything queued in one write; the answers in order. A connection
        that drops is opened again and the batch sent again, as many times as the
        client's ``retry`` allows (as redis-py's pipeline does).

        Writes this thread ``carry``-ed for the client go first in the same write;
        their answers are not returned. If the write fails they are carried again
        (a later write of the same key wins); an error answer to one of them is
        raised only by a pipeline that carries them alone (``flush_carried``)."""
        cmds, self._cmds = self._cmds, []
        client = self._client
        held = _held(client)
        carried, held.carried = held.carried, {}
        if carried:
            cmds = [(args, {}) for args in carried.values()] + cmds
        if not cmds:
            return []
        conn = _connection(client, held)
        try:
            res: list[Any] = conn.retry.call_with_retry(
                lambda: _exchange(client, conn, cmds),
                lambda _error: conn.disconnect())  # type: ignore[no-untyped-call]
        except BaseException:
            _carry_again(held, carried)
            raise
        if carried:
            head, res = res[:len(carried)], res[len(carried):]
            if not res:  # nothing but carried writes: their errors are this call's
                res = head
            elif any(isinstance(r, ResponseError) for r in head):
                _carry_again(held, carried)  # for the flush to raise, not the carrier
        if raise_on_error:
            for r in res:
                if isinstance(r, ResponseError):
                    raise r
        return res


class StoreClient(redis.Redis):
    """The store's client for one Redis server (``redis_keys.connect``): a single
    command (a script called directly, a ``GET``) first sends the writes this thread
    carries (``carry``), so that every command reaches Redis after them, as if they
    had been written alone before it."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        _send_carried(self)
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


def carry(client: redis.Redis, writes: dict[str, tuple[Any, ...]]) -> bool:
    """Let ``writes`` (commands by the key they write) go with this thread's next
    command on ``client``, in the same round trip, ahead of it (``LeanPipeline``,
    ``StoreClient``). False (nothing carried) for any other client (a cluster's)."""
    if not isinstance(client, StoreClient):
        return False
    _held(client).carried.update(writes)
    return True


def flush_carried(client: redis.Redis) -> None:
    """Send what this thread carries for ``client`` now, if anything (errors raised)."""
    if isinstance(client, StoreClient):
        _send_carried(client)


def _send_carried(client: StoreClient) -> None:
    if _held(client).carried:
        LeanPipeline(client).execute()  # nothing of its own: only what is carried


def _carry_again(held: _Held, carried: dict[str, tuple[Any, ...]]) -> None:
    for key, args in carried.items():
        held.carried.setdefault(key, args)  # a write carried since is newer


def _exchange(client: redis.Redis, conn: AbstractConnection, cmds: list[Queued]) -> list[Any]:
    """One write of every command, then every answer, through the client's response
    callbacks (as ``Redis.parse_response``; a command with options goes through it)."""
    conn.send_packed_command(_pack(conn, cmds))  # type: ignore[no-untyped-call]
    out: list[Any] = []
    read, callbacks = conn.read_response, _callbacks(client)
    for args, options in cmds:
        try:
            if options and (len(options) > 1 or "keys" not in options):
                out.append(client.parse_response(  # type: ignore[no-untyped-call]
                    conn, args[0], **options))
                continue
            answer = read()
        except ResponseError as exc:
            out.append(exc)
            continue
        callback = callbacks.get(str(args[0]).upper())
        out.append(answer if callback is None else callback(answer))
    return out


def _pack(conn: AbstractConnection, cmds: list[Queued]) -> Any:
    """Every command in the bytes redis-py would send, in one piece.

    With hiredis (the ``redis`` extra installs it), redis-py packs each command by
    ``hiredis.pack_command`` after splitting a command name that holds a space and
    copying every argument into a new tuple to turn ``bytearray``/``memoryview``
    into ``bytes`` (the store sends neither), a Python generator over every
    argument of every command. Here the same function packs the same arguments,
    without the copy (with the parent's ``SET`` below, 945,545 -> 790,426 client
    instructions per task: ``bench_redis_calls.py --callgrind``). Any other
    packer: redis-py's own."""
    if type(conn._command_packer) is not HiredisRespSerializer or pack_command is None:
        return conn.pack_commands([args for args, _ in cmds])  # type: ignore[no-untyped-call]
    out: list[bytes] = []
    for args, _options in cmds:
        name = args[0]
        if " " in (name if type(name) is str else name.decode()):  # e.g. "CLIENT SETNAME"
            args = (*name.split(), *args[1:])
        out.append(pack_command(args))
    return [b"".join(out)]  # send_packed_command sends each item of a list


def _callbacks(client: redis.Redis) -> dict[str, Any]:
    """The client's response callbacks by command name, in a plain map."""
    cached: dict[str, Any] | None = client.__dict__.get("_byoa_callbacks")
    if cached is None:
        cached = {str(k).upper(): v for k, v in client.response_callbacks.items()}
        client.__dict__["_byoa_callbacks"] = cached
    return cached


#: This process's id, kept up to date across ``fork`` (no ``getpid`` system call per
#: pipeline: ``_held`` asks for it on every one).
_PID = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))


class _Held(threading.local):
    """This thread's connection for a client's pipelines, the process it was opened
    in (a forked child opens its own), and the writes it carries (``carry``). The
    store greenlets of a thread (``redis_wait``) have their own: a store call that
    waits for its answer on the event loop leaves its connection mid-exchange,
    and other code on that thread must not write to it meanwhile."""

    conn: AbstractConnection | None = None
    pid: int = 0
    store: _Held | None = None

    def __init__(self) -> None:
        self.carried: dict[str, tuple[Any, ...]] = {}


def _held(client: redis.Redis) -> _Held:
    """This thread's (or its store greenlets') ``_Held`` for ``client`` (empty again
    in a forked child)."""
    held: _Held | None = client.__dict__.get("_byoa_held")
    if held is None:
        held = client.__dict__.setdefault("_byoa_held", _Held())
    if in_store_greenlet():
        if held.store is None:
            held.store = _Held()
        held = held.store
    pid = _PID[0]
    if held.pid != pid:
        held.conn, held.pid, held.carried = None, pid, {}
    return held


def _connection(client: redis.Redis, held: _Held) -> AbstractConnection:
    """This thread's connection for ``client``'s pipelines, taken from the
    client's pool once and kept (closing the client closes it too), checked before
    each use as the pool checks the connections it hands out."""
    conn = held.conn
    if conn is None:
        conn = held.conn = client.connection_pool.get_connection()
        return conn
    # as the pool checks a connection it hands out: connected, and nothing to read
    # (data there means the server closed it, or an answer was left unread)
    conn.connect()  # type: ignore[no-untyped-call]
    try:
        if conn.can_read():
            raise redis.ConnectionError("Connection has data")
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        conn.disconnect()  # type: ignore[no-untyped-call]
        conn.connect()  # type: ignore[no-untyped-call]
        if conn.can_read():
            raise redis.ConnectionError("Connection not ready") from None
    return conn


def pipeline(client: redis.Redis) -> Any:
    """A non-transactional pipeline for ``client``: a ``LeanPipeline`` on one
    server, the cluster client's own pipeline on a cluster."""
    if isinstance(client, redis.Redis):
        return LeanPipeline(client)
    return client.pipeline(transaction=False)


class ScriptPipe:
    """One pipeline's commands; scripts queued with ``run``."""

    def __init__(self, client: redis.Redis) -> None:
        self._pipe: Any = pipeline(client)
        self._scripts: list[tuple[int, Script, Sequence[Any], Sequence[Any]]] = []

    def __len__(self) -> int:
        return len(self._pipe)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)  # plain commands: hset, zadd, set, ...

    def run(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> None:
        """Queue ``script`` (its answer comes at this position in ``execute``)."""
        self._scripts.append((len(self._pipe), script, keys, args))
        self._pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Send everything queued; answers in order. A script the server did not
        know is loaded and run then (it had not run)."""
        scripts, self._scripts = self._scripts, []
        if not len(self._pipe):
            return []
        res: list[Any] = self._pipe.execute(raise_on_error=False)
        for i, script, keys, args in scripts:
            if isinstance(res[i], NoScriptError):
                try:
                    res[i] = script(keys=keys, args=args)
                except redis.RedisError as exc:
                    res[i] = exc
        if raise_on_error:
            for r in res:
                if isinstance(r, Exception):
                    raise r
        return res
