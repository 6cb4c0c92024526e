"""``RedisRecords``: the proxy's task records and the accounts' secrets in Redis.

Records (``P:rec:<task>``) expire after ``done_ttl`` seconds; the proxy lets the
records of a turn ride with the store call queued behind them (``carry``: one
round trip less) when there is one. Secrets live in
the account's ``...:secret`` hash, sealed (``router.stores.secrets``), and are never
read back by the proxy, only their names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from router.errors import UnknownAccount
from router.stores.redis_keys import Keys
from router.stores.redis_pipe import carry as carry_writes
from router.stores.redis_pipe import flush_carried, pipeline
from router.stores.secrets import ENV_SECRET_KEY, SecretBox


class RedisRecords:
    """``RecordStore`` on Redis; ``known`` says whether an account exists."""

    def __init__(self, client: redis.Redis, keys: Keys, *, done_ttl: int,
                 known: Callable[[str], bool], box: SecretBox | None = None) -> None:
        self.r = client
        self.box = box
        self.keys = keys
        self.done_ttl = done_ttl
        self.known = known

    def keeps_secrets(self) -> bool:
        return self.box is not None

    def set_secret(self, account_id: str, name: str, value: str) -> None:
        if self.box is None:
            raise RuntimeError(f"no ${ENV_SECRET_KEY}: secrets are not kept in plain text")
        if not self.known(account_id):
            raise UnknownAccount(f"no account {account_id!r} in the pool", "L5")
        self.r.hset(self.keys.secret(account_id), name, self.box.seal(value))

    def secret_names(self, account_id: str) -> list[str]:
        return sorted(str(k) for k in self.r.hkeys(self.keys.secret(account_id)))

    def put_record(self, task_id: str, data: str) -> None:
        self.r.set(self.keys.record(task_id), data, ex=self.done_ttl)

    def put_records(self, records: dict[str, str], *, carry: bool = False) -> None:
        """The records, each ``SET`` with the store's TTL; with ``carry`` (and one
        Redis server), sent with this thread's next pipeline instead (``carry``)."""
        ttl, record = self.done_ttl, self.keys.record
        writes: dict[str, tuple[Any, ...]] = {}
        for task_id, data in records.items():  # ``pipe.set(..., ex=ttl)``, less checking
            key = record(task_id)
            writes[key] = ("SET", key, data, "EX", ttl)
        if carry and carry_writes(self.r, writes):
            return
        pipe = pipeline(self.r)
        for args in writes.values():
            pipe.execute_command(*args)
        pipe.execute()

    def flush_records(self) -> None:
        flush_carried(self.r)

    def get_record(self, task_id: str) -> str | None:
        raw = self.r.get(self.keys.record(task_id))
        return None if raw is None else str(raw)
