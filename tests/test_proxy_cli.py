"""``byoa serve`` refuses bad input with a message naming the option (exit 2)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_server import redis_server

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
