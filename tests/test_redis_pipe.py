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
from router.stores.redis_pipe import LeanPipeline, ScriptPipe, pipeline

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
