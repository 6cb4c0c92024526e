"""The store's pipelines against a real redis-server. ``ScriptPipe``: the store's
scripts run by EVALSHA alone (no ``SCRIPT EXISTS`` round trip per pipeline), and a
script the server forgot (restart, ``SCRIPT FLUSH``) is loaded and still runs
exactly once. ``LeanPipeline``: the answers of redis-py's pipeline, a connection
kept per thread and opened again when it drops."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from redis_server import redis_server

from router.stores.redis_keys import connect
from router.stores.redis_pipe import (
    LeanPipeline,
    ScriptPipe,
    _pack,
    carry,
    flush_carried,
    pipeline,
)

COUNT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with redis_server() as u:
        yield u


def script_exists_calls(r: object) -> int:
    stats = r.info("commandstats")  # type: ignore[attr-defined]
    return int(stats.get("cmdstat_script|exists", stats.get("cmdstat_script", {})).get("calls", 0))


def test_scripts_on_a_pipeline_ask_no_script_exists(url: str) -> None:
    r = connect(url)
    r.delete("n")
    count = r.register_script(COUNT)
    count(keys=["n"], args=[0])  # the script is known to the server
    r.config_resetstat()
    pipe = ScriptPipe(r)
    pipe.run(count, ["n"], [1])
    pipe.set("other", "x")
    pipe.run(count, ["n"], [10])
    assert pipe.execute() == [1, True, 11]  # answers in queue order
    assert script_exists_calls(r) == 0
    # redis-py's own pipeline asks first: the round trip ScriptPipe saves
    plain = r.pipeline(transaction=False)
    count(keys=["n"], args=[1], client=plain)
    plain.execute()
    assert script_exists_calls(r) == 1


def test_a_forgotten_script_is_loaded_and_runs_once(url: str) -> None:
    r = connect(url)
    r.delete("n")
    count = r.register_script(COUNT)
    count(keys=["n"], args=[0])
    r.script_flush()  # as after a restart with AOF: data kept, scripts gone
    pipe = ScriptPipe(r)
    pipe.run(count, ["n"], [1])
    pipe.run(count, ["n"], [2])
    assert pipe.execute() == [1, 3]
    assert r.get("n") == "3"  # each call ran exactly once


def test_errors_are_raised_unless_asked_for(url: str) -> None:
    r = connect(url)
    r.set("s", "text")
    count = r.register_script(COUNT)
    pipe = ScriptPipe(r)
    pipe.run(count, ["s"], [1])  # INCRBY on a string: a script error
    with pytest.raises(Exception, match="not an integer"):
        pipe.execute()
    pipe.run(count, ["s"], [1])
    (res,) = pipe.execute(raise_on_error=False)
    assert isinstance(res, Exception)


# ---------------------------------------------------------------- LeanPipeline
def _queue_everything(pipe: Any) -> None:
    """Every command the store queues on a pipeline, with its options."""
    pipe.set("lp:s", "v", ex=60)
    pipe.execute_command("SET", "lp:r", "record", "EX", 60)  # the records' own form
    pipe.get("lp:s")
    pipe.get("lp:missing")
    pipe.hset("lp:h", mapping={"a": "1", "b": "2"})
    pipe.hset("lp:h", "c", "3")
    pipe.hincrby("lp:h", "ver", 1)
    pipe.hgetall("lp:h")
    pipe.hgetall("lp:none")
    pipe.rpush("lp:l", "x", "y")
    pipe.lrange("lp:l", 0, -1)
    pipe.zadd("lp:z", {"t1": 5.0, "t2": 7.5})
    pipe.zadd("lp:z", {"t1": 9.0}, xx=True, gt=True)
    pipe.zrangebyscore("lp:z", "-inf", 8.0, start=0, num=10)
    pipe.zrank("lp:z", "t2")
    pipe.zscore("lp:z", "t1")
    pipe.zcard("lp:z")
    pipe.incr("lp:s")  # not an integer: an error answer, in its place


def test_lean_pipeline_answers_as_redis_pys_pipeline(url: str) -> None:
    """Same commands, same answers (callbacks applied, errors in place) as
    redis-py's non-transactional pipeline, and ``raise_on_error`` raises the first."""
    r = connect(url)
    answers = []
    for make in (lambda: r.pipeline(transaction=False), lambda: pipeline(r)):
        r.delete("lp:s", "lp:r", "lp:h", "lp:l", "lp:z")
        pipe = make()
        _queue_everything(pipe)
        assert len(pipe) == 18
        answers.append(pipe.execute(raise_on_error=False))
    theirs, ours = answers
    assert isinstance(ours[-1], redis.ResponseError) and "not an integer" in str(ours[-1])
    assert [type(a) for a in ours] == [type(a) for a in theirs]
    assert ours[:-1] == theirs[:-1]
    assert ours[7] == {"a": "1", "b": "2", "c": "3", "ver": "1"} and ours[0] is True
    assert type(pipeline(r)) is LeanPipeline
    pipe = pipeline(r)
    pipe.incr("lp:s")
    pipe.get("lp:s")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        pipe.execute()
    assert pipeline(r).execute() == []


def test_lean_pipeline_sends_the_bytes_redis_py_sends(url: str) -> None:
    """The pipeline packs its commands itself (hiredis, without redis-py's copy of
    every argument): the same bytes as redis-py's ``pack_commands`` for every kind
    of argument the store sends (str, non-ASCII str, bytes, int, float, a command
    name with a space), and the same through the Python packer when hiredis is
    not the connection's packer."""
    from redis.connection import PythonRespSerializer

    r = connect(url)
    conn = r.connection_pool.get_connection()
    cmds: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        (("EVALSHA", "ab" * 20, 3, "k1", "k2", "k3", "t-é", 1.5, 0.1, 1e20, -3, b"raw"), {}),
        (("SET", "lp:p", "acc|fast", "EX", 86400), {}),
        (("CLIENT SETNAME", "byoa"), {}),
        ((b"HGETALL", b"lp:h"), {}),
    ]
    plain = [a for a, _ in cmds]
    try:
        theirs = b"".join(conn.pack_commands(plain))  # type: ignore[no-untyped-call]
        assert b"".join(_pack(conn, cmds)) == theirs
        assert b"$3\r\n1.5\r\n" in theirs and b"$6\r\nCLIENT\r\n" in theirs
        conn._command_packer = PythonRespSerializer(conn._buffer_cutoff, conn.encoder.encode)
        python = b"".join(conn.pack_commands(plain))  # type: ignore[no-untyped-call]
        assert b"".join(_pack(conn, cmds)) == python
    finally:
        r.connection_pool.release(conn)
        r.connection_pool.disconnect()


def test_lean_pipeline_opens_a_dropped_connection_again(url: str) -> None:
    """The connection kept for a thread's pipelines is killed by the server: the next
    pipeline reconnects (the client's retry, as redis-py's pipeline)."""
    r = connect(url)
    pipe = pipeline(r)
    pipe.client_id()
    (mine,) = pipe.execute()
    admin = connect(url)
    assert admin.client_kill_filter(_id=mine) == 1
    pipe = pipeline(r)
    pipe.set("lp:after", "1")
    pipe.client_id()
    ok, again = pipe.execute()
    assert ok is True and again != mine


def test_lean_pipeline_keeps_one_connection_per_thread(url: str) -> None:
    """Pipelines of one thread share a connection; another thread gets its own."""
    r = connect(url)

    def my_id() -> int:
        pipe = pipeline(r)
        pipe.client_id()
        return int(pipe.execute()[0])

    first, second = my_id(), my_id()
    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(my_id).result()
    assert first == second and other != first


# ------------------------------------------------------------------- carrying
class _Sends:
    """Counts the writes (round trips) on this thread's pipeline connection."""

    def __init__(self, r: redis.Redis) -> None:
        pipe = pipeline(r)
        pipe.ping()
        pipe.execute()  # opens this thread's connection
        self.conn = r.__dict__["_byoa_held"].conn
        self.n = 0
        real = self.conn.send_packed_command

        def counted(*a: Any, **k: Any) -> Any:
            self.n += 1
            return real(*a, **k)

        self.conn.send_packed_command = counted


def test_a_forked_child_opens_its_own_connection(url: str) -> None:
    """A child forked after the parent's pipelines ran does not write to the
    parent's kept connection (their answers would mix): it opens its own, and the
    parent keeps its."""
    import multiprocessing

    r = connect(url)
    pipe = pipeline(r)
    pipe.client_id()
    (parent,) = pipe.execute()

    def child(out: Any) -> None:
        p = pipeline(r)
        p.client_id()
        out.put(p.execute()[0])

    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    proc = ctx.Process(target=child, args=(q,))
    proc.start()
    theirs = q.get(timeout=30)
    proc.join(30)
    assert proc.exitcode == 0 and theirs != parent
    pipe = pipeline(r)
    pipe.client_id()
    assert pipe.execute() == [parent]


def test_carried_writes_ride_with_the_next_pipeline_ahead_of_it(url: str) -> None:
    """``carry``: the writes go in the next pipeline's round trip, before its own
    commands (a later carry of the same key wins); its answers are its own."""
    r = connect(url)
    r.delete("cw:1", "cw:2")
    sends = _Sends(r)
    assert carry(r, {"cw:1": ("SET", "cw:1", "old"), "cw:2": ("SET", "cw:2", "b")})
    assert carry(r, {"cw:1": ("SET", "cw:1", "new")})
    admin = connect(url)
    assert admin.get("cw:1") is None  # not sent yet
    pipe = pipeline(r)
    pipe.get("cw:1")
    pipe.get("cw:2")
    assert pipe.execute() == ["new", "b"]  # written first, in the same write
    assert sends.n == 1
    flush_carried(r)  # nothing left to send
    assert sends.n == 1


def test_a_direct_command_sends_what_is_carried_first(url: str) -> None:
    """A script called on the client (not on a pipeline) reaches Redis after the
    carried writes, as a GET does."""
    r = connect(url)
    r.delete("cw:n")
    count = r.register_script(COUNT)
    carry(r, {"cw:n": ("SET", "cw:n", "40")})
    assert count(keys=["cw:n"], args=[2]) == 42
    carry(r, {"cw:n": ("SET", "cw:n", "7")})
    assert r.get("cw:n") == "7"


def test_carried_writes_survive_a_dropped_connection(url: str) -> None:
    """The carrier's connection was killed: the writes stay carried and go with the
    next call (the client's own commands are retried as before)."""
    r = connect(url)
    r.delete("cw:k")
    pipe = pipeline(r)
    pipe.client_id()
    pipe.execute()  # opens this thread's connection
    carry(r, {"cw:k": ("SET", "cw:k", "kept")})
    conn = r.__dict__["_byoa_held"].conn
    real = conn.send_packed_command

    def dropped(*a: Any, **k: Any) -> Any:
        conn.send_packed_command = real
        raise redis.ConnectionError("dropped before the write")

    conn.send_packed_command = dropped
    pipe = pipeline(r)
    pipe.get("cw:k")
    with pytest.raises(redis.ConnectionError):
        pipe.execute()
    assert connect(url).get("cw:k") is None
    flush_carried(r)
    assert connect(url).get("cw:k") == "kept"


def test_a_clusters_client_carries_nothing(url: str) -> None:
    """Only the store's own client carries (its single commands flush first)."""
    plain = redis.Redis.from_url(url, decode_responses=True)
    assert not carry(plain, {"cw:x": ("SET", "cw:x", "1")})
    assert type(pipeline(plain)) is LeanPipeline


def test_store_calls_settle_carried_records_once_nothing_is_queued(url: str) -> None:
    """The proxy's records batch carries its writes when a call is queued behind it
    on the store thread (one round trip for both), and the thread sends them alone
    when nothing is: either way they are in Redis when the calls are done."""
    import asyncio
    import threading

    from router.proxy.storecalls import StoreCalls
    from router.stores.redis_keys import Keys
    from router.stores.redis_records import RedisRecords

    r = connect(url)
    recs = RedisRecords(r, Keys("cw"), done_ttl=60, known=lambda acc_id: True)
    admin = connect(url)
    go = threading.Event()
    counter: list[_Sends] = []

    def hold() -> None:  # on the store thread: its connection counted, then wait
        counter.append(_Sends(r))
        go.wait(10)

    def write(n: int, calls: StoreCalls) -> None:
        recs.put_records({f"t{n}": f"record {n}"}, carry=calls.queued() > 0)

    def read(key: str) -> Any:
        pipe = pipeline(r)
        pipe.get(key)
        return pipe.execute()[0]

    async def main() -> None:
        calls = StoreCalls(remote=True, settle=recs.flush_records)
        held = calls.submit(hold)
        first = calls.submit(write, 1, calls)  # the read is queued behind it
        second = calls.submit(read, "cw:rec:t1")
        go.set()
        await held
        await first
        assert await second == "record 1"  # the carried write went first
        assert counter[0].n == 1  # in the read's round trip
        await calls.submit(write, 2, calls)  # alone: settled after the call
        assert admin.get("cw:rec:t2") == "record 2"
        assert counter[0].n == 2
        calls.close()

    asyncio.run(main())
