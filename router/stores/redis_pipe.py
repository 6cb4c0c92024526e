"""``ScriptPipe``: a non-transactional pipeline that runs the store's Lua scripts
by ``EVALSHA`` alone.

redis-py's own pipeline asks ``SCRIPT EXISTS`` before every ``execute`` that
carries a registered script: one more round trip per batch (about a sixth of a
proxy process's CPU on Redis, measured by ``benchmarks/bench_proxy_cpu.py``).
The scripts are loaded when they are registered, so that question is almost
always answered yes; here a script the server does not know (it restarted or
its script cache was flushed) comes back as ``NoScriptError`` without having
run, and only that call is sent again through the script object, which loads
it first. Every script still runs exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError


class ScriptPipe:
    """One pipeline's commands; scripts queued with ``run``."""

    def __init__(self, client: redis.Redis) -> None:
        self._pipe: Any = client.pipeline(transaction=False)
        self._scripts: list[tuple[int, Script, Sequence[Any], Sequence[Any]]] = []

    def __len__(self) -> int:
        return len(self._pipe)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)  # plain commands: hset, zadd, set, ...

    def run(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> None:
        """Queue ``script`` (its answer comes at this position in ``execute``)."""
        self._scripts.append((len(self._pipe), script, keys, args))
        self._pipe.evalsha(script.sha, len(keys), *keys, *args)

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
