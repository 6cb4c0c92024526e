"""``ScriptPipe`` against a real redis-server: the store's scripts run by EVALSHA
alone (no ``SCRIPT EXISTS`` round trip per pipeline), and a script the server
forgot (restart, ``SCRIPT FLUSH``) is loaded and still runs exactly once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_server import redis_server

from router.stores.redis_keys import connect
from router.stores.redis_pipe import ScriptPipe

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
