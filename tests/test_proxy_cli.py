"""``byoa serve`` refuses bad input with a message naming the option (exit 2)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_server import redis_server

from router.cli import main


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
