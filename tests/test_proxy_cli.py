"""``byoa serve`` refuses bad input with a message naming the option (exit 2)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from redis_server import free_port, redis_server

from router.cli import main
from router.stores.url import redact_url


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with redis_server() as u:
        yield u


@pytest.mark.parametrize(("argv", "message"), [
    (["--accounts", "examples/accounts.json"],
     "byoa serve: --api-key: an API key is required: --api-key KEY or $BYOA_API_KEY"),
    (["--api-key", "k"],
     "byoa serve: --redis/--accounts: say where the accounts are: --redis URL "
     "(after `byoa accounts load`) or --accounts FILE"),
    (["--api-key", "k", "--accounts", "nope.json"], "byoa serve: nope.json: no such file"),
    (["--api-key", "k", "--redis", "redis://127.0.0.1:1/0"],
     "byoa serve: --redis: cannot reach Redis at redis://127.0.0.1:1/0"),
    (["--api-key", "k", "--accounts", "examples/accounts.json", "--speedup", "0"],
     "byoa serve: --speedup: expected a speed-up > 0, got 0.0"),
])
def test_serve_bad_options(argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("BYOA_API_KEY", raising=False)
    assert main(["serve", *argv]) == 2
    assert capsys.readouterr().err.startswith(message)


#: a free port first: a check made after binding (the accounts) must not meet a port in use
MEM = ["--port", str(free_port()), "--api-key", "k", "--accounts", "examples/accounts.json"]


@pytest.mark.parametrize(("options", "message"), [
    (["--port", "70000"], "--port: expected an integer 1-65535, got 70000"),
    (["--port", "0"], "--port: expected an integer 1-65535, got 0"),
    (["--fail-rate", "2"], "--fail-rate: expected a share between 0 and 1, got 2.0"),
    (["--fail-rate", "nan"], "--fail-rate: expected a share between 0 and 1, got nan"),
    (["--speedup", "nan"], "--speedup: expected a speed-up > 0, got nan"),
    (["--speedup", "-1"], "--speedup: expected a speed-up > 0, got -1.0"),
    (["--speedup", "inf"], "--speedup: expected a speed-up > 0 and finite, got inf"),
    (["--lease", "0"], "--lease: expected seconds > 0, got 0.0"),
    (["--redis-timeout", "nan"], "--redis-timeout: expected seconds > 0, got nan"),
    (["--start-delay", "-1"], "--start-delay: expected seconds >= 0 (finite), got -1.0"),
    (["--drain-seconds", "inf"], "--drain-seconds: expected seconds >= 0 (finite), got inf"),
    (["--webhook-backoff", "nan"],
     "--webhook-backoff: expected seconds >= 0 (finite), got nan"),
    (["--max-body", "0"], "--max-body: expected a number of bytes >= 1, got 0"),
    (["--notify-url", "notaurl"], "--notify-url: expected an http(s) URL, got 'notaurl'"),
    (["--notify-url", "gopher://x"], "--notify-url: expected an http(s) URL, got 'gopher://x'"),
    (["--log-level", "bogus"],
     "--log-level: expected one of critical, error, warning, info, debug, got 'bogus'"),
    (["--upstream-fast-exhausted", "zz"],
     "--upstream-fast-exhausted: no account 'zz' in the store (its accounts: a1, a2, b1)"),
    (["--upstream-fast-exhausted", "a1", "--upstream-fast-exhausted", "zz@2026-01-01T00:00:00Z",
      "--upstream-fast-exhausted", "b2"],
     "--upstream-fast-exhausted: no account 'b2', 'zz' in the store (its accounts: a1, a2, b1)"),
    (["--host", "999.1.1.1", "--port", "8000"],
     "cannot listen on 999.1.1.1:8000: name or service not known"),
])
def test_serve_refuses_values_that_would_silently_do_something_else(
        options: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Each was accepted: --port 70000 listened on 4464, --fail-rate 2 failed every
    task, --speedup nan and --lease 0 ran, --log-level bogus was a traceback."""
    assert main(["serve", *MEM, *options]) == 2
    out = capsys.readouterr()
    assert out.err == f"byoa serve: {message}\n"
    assert out.out == ""  # nothing started, no banner


@pytest.mark.parametrize("command", [["serve", "--api-key", "k"], ["accounts", "list"]])
@pytest.mark.parametrize(("redis", "message"), [
    ("http://x", "--redis: expected a redis://, rediss://, unix:// or redis+cluster:// URL, "
     "got 'http://x'"),
    ("redis://ops:hunter2@h:port/0", "--redis: cannot use 'redis://ops:***@h:port/0': Port "
     "could not be cast to integer value as 'port'"),
])
def test_a_redis_url_that_is_not_one_is_said_plainly(
        command: list[str], redis: str, message: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--redis", redis]) == 2
    assert capsys.readouterr().err == f"byoa {command[0]}: {message}\n"


def test_a_port_in_use_is_said_before_anything_starts(
        capsys: pytest.CaptureFixture[str]) -> None:
    """It printed the "listening" banner, then uvicorn's raw [Errno 98] (exit 3)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", *MEM, "--port", str(port)]) == 2
    out = capsys.readouterr()
    assert out.err == f"byoa serve: cannot listen on 127.0.0.1:{port}: address already in use\n"
    assert out.out == ""


def test_serve_before_accounts_are_loaded(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--api-key", "k", "--redis", url]) == 2
    assert capsys.readouterr().err == (
        "byoa serve: no accounts in Redis under the prefix 'byoa'; load them first with "
        "`byoa accounts load accounts.json`\n")


@pytest.mark.parametrize("command", [["serve", "--api-key", "k"], ["accounts", "list"]])
def test_a_redis_password_is_never_printed(command: list[str], monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("BYOA_REDIS_URL", raising=False)
    assert main([*command, "--redis", "redis://ops:hunter2@127.0.0.1:1/0"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach Redis at redis://ops:***@127.0.0.1:1/0" in err
    assert "hunter2" not in err


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://ops:hunter2@host:6379/0", "redis://ops:***@host:6379/0"),
    ("rediss://:hunter2@host/1", "rediss://:***@host/1"),
    ("redis://hunter2@host", "redis://***@host"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("unix:///run/redis.sock", "unix:///run/redis.sock"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
