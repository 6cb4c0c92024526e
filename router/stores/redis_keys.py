"""Key names of the Redis store, the client it expects, and flat-list helpers."""

from __future__ import annotations

import uuid
from typing import Any

import redis

from router.stores.base import PUBLIC  # the public pool's pseudo-account id (P1): ""
from router.stores.redis_pipe import StoreClient
from router.stores.redis_wait import cooperative
from router.stores.url import DEFAULT_TIMEOUT

DEFAULT_URL = "redis://127.0.0.1:6379/0"


class Keys:
    """Key names under one prefix; per-account keys share the ``{acc:<id>}`` tag, and
    the public pool's pseudo-account (``PUBLIC``) has keys of its own with the ``{pub}``
    tag: its hash (``in_flight``: public tasks leased now), leases and task hashes."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.accounts = f"{prefix}:accounts"
        self.policy = f"{prefix}:policy"
        self.backups = f"{prefix}:backups_active"
        self.no_active = f"{prefix}:no_active"
        self.epoch = f"{prefix}:epoch"  # written when the accounts are loaded

    def acc(self, acc_id: str) -> str:
        if acc_id == PUBLIC:  # P1 tasks: one slot of their own on Redis Cluster
            return f"{self.prefix}:{{pub}}"
        return f"{self.prefix}:{{acc:{acc_id}}}"

    def leases(self, acc_id: str) -> str:
        return f"{self.acc(acc_id)}:leases"

    def task(self, acc_id: str, task_id: str) -> str:
        return f"{self.acc(acc_id)}:t:{task_id}"

    def hist(self, acc_id: str) -> str:
        return f"{self.acc(acc_id)}:hist"

    def secret(self, acc_id: str) -> str:
        return f"{self.acc(acc_id)}:secret"

    def parent(self, task_id: str) -> str:
        return f"{self.prefix}:p:{task_id}"

    def record(self, task_id: str) -> str:
        return f"{self.prefix}:rec:{task_id}"


def connect(url: str, timeout: float = DEFAULT_TIMEOUT) -> redis.Redis:
    """A client with string responses (what the store expects) whose connects and
    commands give up after ``timeout`` seconds."""
    return cooperative(StoreClient.from_url(url, decode_responses=True, socket_timeout=timeout,
                                            socket_connect_timeout=timeout))


def new_epoch() -> str:
    """A fresh epoch value: which loading of the accounts a store holds."""
    return uuid.uuid4().hex


def pairs(flat: list[Any]) -> dict[str, str]:
    """``[k1, v1, k2, v2, ...]`` (a hash as a script returns it) as a dict."""
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


def flatten(fields: dict[str, str]) -> list[str]:
    """A dict as ``[k1, v1, k2, v2, ...]`` (script arguments)."""
    out: list[str] = []
    for k, v in fields.items():
        out += [k, v]
    return out
