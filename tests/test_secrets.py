"""Account secrets are never readable at rest: sealed with $BYOA_SECRET_KEY in Redis,
refused (400, nothing changed) by a Redis-backed proxy that has no key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from proxy_procs import API_KEY, start_proxy
from redis_server import redis_server

from router.cli import main
from router.errors import InputError
from router.io.loading import load_accounts
from router.stores.redis_store import RedisStore, connect, load_into_redis
from router.stores.secrets import SEALED, SecretBox, new_key

REPO = Path(__file__).resolve().parent.parent
TOKEN = "discord-SECRET-token-7f3a9c"
H = {"x-api-key": API_KEY}


@pytest.fixture
def url() -> Iterator[str]:
    with redis_server() as u:
        accounts, policy = load_accounts(REPO / "examples" / "accounts.json")
        load_into_redis(connect(u), accounts, policy, time.time())
        yield u


def test_a_sealed_secret_opens_only_with_its_key() -> None:
    box = SecretBox(new_key())
    sealed = box.seal(TOKEN)
    assert sealed.startswith(SEALED) and TOKEN not in sealed
    assert box.open(sealed) == TOKEN
    with pytest.raises(ValueError, match="another key"):
        SecretBox(new_key()).open(sealed)


def test_a_malformed_key_names_the_variable() -> None:
    with pytest.raises(InputError) as err:
        SecretBox("not-a-key")
    assert str(err.value) == ("$BYOA_SECRET_KEY: expected a Fernet key (32 bytes, URL-safe "
                              "base64; `byoa accounts new-key` makes one)")


def test_redis_holds_only_the_sealed_value(url: str) -> None:
    box = SecretBox(new_key())
    store = RedisStore(connect(url), secret_box=box)
    store.set_secret("a1", "discord_token", TOKEN)
    raw = connect(url).hget(store.records.keys.secret("a1"), "discord_token")
    assert isinstance(raw, str) and raw.startswith(SEALED) and TOKEN not in raw
    assert box.open(raw) == TOKEN and store.secret_names("a1") == ["discord_token"]
    dump = [str(v) for key in connect(url).scan_iter("*")
            if connect(url).type(key) == "hash"
            for v in connect(url).hgetall(key).values()]
    assert not any(TOKEN in v for v in dump)
    store.close()


def test_without_a_key_the_store_keeps_no_secret(url: str) -> None:
    store = RedisStore(connect(url))
    assert not store.keeps_secrets()
    with pytest.raises(RuntimeError, match="BYOA_SECRET_KEY"):
        store.set_secret("a1", "discord_token", TOKEN)
    store.close()


def test_new_key_prints_a_usable_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["accounts", "new-key"]) == 0
    key = capsys.readouterr().out.strip()
    assert SecretBox(key).open(SecretBox(key).seal("x")) == "x"


def test_proxy_without_a_key_refuses_secrets_and_changes_nothing(
        url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BYOA_SECRET_KEY", raising=False)
    proxy = start_proxy(["--redis", url], str(tmp_path), "nokey")
    try:
        assert "no $BYOA_SECRET_KEY: account secrets (discord_token) will be refused" in (
            proxy.output())
        r = httpx.post(f"{proxy.url}/api/v1/accounts/a1", headers=H, timeout=10,
                       json={"status": "disabled", "discord_token": TOKEN})
        assert r.status_code == 400
        assert r.json()["message"].startswith("this proxy keeps no secrets")
        accounts = httpx.get(f"{proxy.url}/api/v1/accounts", headers=H,
                             timeout=10).json()["data"]["accounts"]
        a1 = next(a for a in accounts if a["id"] == "a1")
        assert a1["status"] == "active" and a1["secrets"] == []
    finally:
        proxy.stop()
    assert TOKEN not in proxy.output()


def test_proxy_with_a_key_seals_the_token(url: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    key = new_key()
    monkeypatch.setenv("BYOA_SECRET_KEY", key)
    proxy = start_proxy(["--redis", url], str(tmp_path), "key")
    try:
        r = httpx.post(f"{proxy.url}/api/v1/accounts/a1", headers=H, timeout=10,
                       json={"discord_token": TOKEN})
        assert r.status_code == 200 and r.json()["data"]["account"]["secrets"] == [
            "discord_token"]
        assert TOKEN not in json.dumps(r.json())
    finally:
        proxy.stop()
    client = connect(url)
    raw = client.hget(RedisStore(client).records.keys.secret("a1"), "discord_token")
    assert isinstance(raw, str) and SecretBox(key).open(raw) == TOKEN
    assert TOKEN not in proxy.output()
