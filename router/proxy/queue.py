"""The waiting line for ``pool_saturated`` tasks (R5): local, or shared in Redis.

A task that finds no room waits here as ``pending``. Dispatchers *claim* a few
tasks from the head, route them, and either finish the claim (routed or
rejected) or put the task back at its old place (still saturated). With the
Redis queue every proxy process works on one line, so a task queued by a
process that dies is routed by another; a claim is a lease too, and an expired
claim goes back to the line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import redis
from sortedcontainers import SortedDict

from router.stores.redis_pipe import pipeline


class TaskQueue(Protocol):
    def push(self, task_id: str, payload: str) -> None: ...

    def claim(self, n: int) -> list[tuple[str, str]]:
        """Take up to ``n`` tasks from the head: (task id, payload)."""
        ...

    def put_back(self, task_id: str) -> None:
        """Return a claimed task to its old place in the line."""
        ...

    def done(self, task_id: str) -> None:
        """Forget a claimed task (routed or rejected)."""
        ...

    def remove(self, task_id: str) -> str | None:
        """Cancel a waiting task: its payload, or None when it is not waiting."""
        ...

    def length(self) -> int: ...

    def position(self, task_id: str) -> int | None:
        """A waiting task's place: 1 is the next to be routed (claimed tasks, being
        routed now, count as ahead); None when it is not waiting."""
        ...

    def sweep(self) -> int:
        """Put expired claims back in line; how many."""
        ...


class LocalQueue:
    """One process's line, FIFO by arrival."""

    def __init__(self) -> None:
        self._seq = 0
        self._line: SortedDict[int, str] = SortedDict()
        self._where: dict[str, int] = {}
        self._payload: dict[str, str] = {}
        self._claimed: set[str] = set()

    def push(self, task_id: str, payload: str) -> None:
        self._seq += 1
        self._line[self._seq] = task_id
        self._where[task_id] = self._seq
        self._payload[task_id] = payload

    def claim(self, n: int) -> list[tuple[str, str]]:
        out = []
        for seq in list(self._line.keys()[:n]):
            task_id = self._line.pop(seq)
            self._claimed.add(task_id)
            out.append((task_id, self._payload[task_id]))
        return out

    def put_back(self, task_id: str) -> None:
        if task_id in self._claimed:
            self._claimed.discard(task_id)
            self._line[self._where[task_id]] = task_id

    def done(self, task_id: str) -> None:
        self._claimed.discard(task_id)
        self._where.pop(task_id, None)
        self._payload.pop(task_id, None)

    def remove(self, task_id: str) -> str | None:
        seq = self._where.get(task_id)
        if seq is None or task_id in self._claimed:
            return None
        del self._line[seq]
        payload = self._payload.get(task_id)
        self.done(task_id)
        return payload

    def length(self) -> int:
        return len(self._line) + len(self._claimed)

    def position(self, task_id: str) -> int | None:
        if task_id in self._claimed:
            return 1
        seq = self._where.get(task_id)
        if seq is None or seq not in self._line:
            return None
        return len(self._claimed) + self._line.index(seq) + 1

    def sweep(self) -> int:
        return 0


_PUSH = """
local seq = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[5], ARGV[1], seq)
redis.call('ZADD', KEYS[1], seq, ARGV[1])
return seq
"""
_CLAIM = """
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), id)
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[3], id) or ''
end
return out
"""
_PUT_BACK = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  local seq = redis.call('HGET', KEYS[5], ARGV[1])
  if seq then redis.call('ZADD', KEYS[1], tonumber(seq), ARGV[1]) end
end
return 1
"""
_DONE = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
return 1
"""
_REMOVE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  local payload = redis.call('HGET', KEYS[3], ARGV[1]) or ''
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[5], ARGV[1])
  return {1, payload}
end
return {0}
"""
_SWEEP = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[2], id)
  local seq = redis.call('HGET', KEYS[5], id)
  if seq then redis.call('ZADD', KEYS[1], tonumber(seq), id) end
end
return #ids
"""


class RedisQueue:
    """The line shared by every process on one Redis; all keys share the tag ``{q}``."""

    def __init__(self, client: redis.Redis, *, prefix: str = "byoa",
                 claim_seconds: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        base = f"{prefix}:{{q}}"
        self.keys = [f"{base}:line", f"{base}:claims", f"{base}:payload", f"{base}:seq",
                     f"{base}:place"]
        self.r = client
        self.claim_seconds = claim_seconds
        self.clock = clock
        self._push = client.register_script(_PUSH)
        self._claim = client.register_script(_CLAIM)
        self._put_back = client.register_script(_PUT_BACK)
        self._done = client.register_script(_DONE)
        self._remove = client.register_script(_REMOVE)
        self._sweep = client.register_script(_SWEEP)

    def push(self, task_id: str, payload: str) -> None:
        self._push(keys=self.keys, args=[task_id, payload])

    def claim(self, n: int) -> list[tuple[str, str]]:
        flat = self._claim(keys=self.keys, args=[n, repr(self.clock() + self.claim_seconds)])
        return [(str(flat[i]), str(flat[i + 1])) for i in range(0, len(flat), 2)]

    def put_back(self, task_id: str) -> None:
        self._put_back(keys=self.keys, args=[task_id])

    def done(self, task_id: str) -> None:
        self._done(keys=self.keys, args=[task_id])

    def remove(self, task_id: str) -> str | None:
        res = self._remove(keys=self.keys, args=[task_id])
        return str(res[1]) if int(res[0]) == 1 else None

    def length(self) -> int:
        pipe = pipeline(self.r)
        pipe.zcard(self.keys[0])
        pipe.zcard(self.keys[1])
        a, b = pipe.execute()
        return int(a) + int(b)

    def position(self, task_id: str) -> int | None:
        pipe = pipeline(self.r)
        pipe.zrank(self.keys[0], task_id)
        pipe.zcard(self.keys[1])
        pipe.zscore(self.keys[1], task_id)
        rank, claimed, mine = pipe.execute()
        if mine is not None:
            return 1
        return None if rank is None else int(claimed) + int(rank) + 1

    def sweep(self) -> int:
        return int(self._sweep(keys=self.keys, args=[repr(self.clock())]))
