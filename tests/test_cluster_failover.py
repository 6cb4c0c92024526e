"""A Redis Cluster failover under load: two real ``byoa serve`` processes on a real
6-node cluster (3 masters, each with one replica), thousands of concurrent
submits; mid-load a master is SIGKILLed (the one that holds the most accounts,
or the one that holds the waiting line) and its replica takes over
(``cluster-node-timeout`` 1000 ms), or the switch is a planned ``CLUSTER FAILOVER``.

What must hold (issue 11): every task that got a 200 ends completed, started
upstream once and charged once (L1), or rejected by the router when its turn
came in the line (as without a failover); none fails because a process lost
track of it (``lease_expired``); no account ever exceeds ``max_in_flight`` (R1);
the ledger totals in Redis equal one process's ``Ledger`` fed the same
completions (L1-L3). Submits made while the shard is away may get 503
``store_unavailable`` with ``Retry-After``: the client sends them again, as a
client of the proxy should.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import test_proxy_cluster as pc
from proxy_procs import Proxy, proxies
from redis_server import redis_cluster

from router.stores.cluster import ClusterUnavailable, SlotCluster, client_for

#: Small, so that the replica takes over about 2 s after the kill.
NODE_TIMEOUT_MS = 1000
SUBMITS = 1500
KILL_AT = 400


LINE_KEY = "byoa:{q}:line"


class Victim:
    """A master and its replica: the master that owns the most accounts' slots
    (``shard`` "accounts"), or the one that owns the shared waiting line (R5) and
    the epoch ("line")."""

    def __init__(self, r: redis.Redis, shard: str = "accounts") -> None:
        owners: dict[str, list[str]] = {}
        for acc in pc.IDS:
            node = r.get_node_from_key(f"byoa:{{acc:{acc}}}")  # type: ignore[attr-defined]
            owners.setdefault(node.name, []).append(acc)
        if shard == "line":
            self.name = r.get_node_from_key(LINE_KEY).name  # type: ignore[attr-defined]
            self.accounts = owners.get(self.name, [])
        else:
            self.name, self.accounts = max(owners.items(), key=lambda kv: len(kv[1]))
        host, port = self.name.rsplit(":", 1)
        self.master = redis.Redis(host=host, port=int(port), decode_responses=True)
        self.pid = int(self.master.info("server")["process_id"])
        replica = self.master.info("replication")["slave0"]
        self.replica = redis.Redis(host=replica["ip"], port=int(replica["port"]),
                                   decode_responses=True, socket_timeout=1)
        self.switched_at: float | None = None
        self.promoted_at: float | None = None
        self.master_offset = 0  # the master's replication offset just before the kill

    def kill(self) -> bool:
        """SIGKILL the master: its replica takes over once the others mark it failed."""
        self.master_offset = int(self.master.info("replication")["master_repl_offset"])
        os.kill(self.pid, signal.SIGKILL)
        self.switched_at = time.time()
        threading.Thread(target=self._watch, daemon=True).start()
        return True

    def hand_over(self) -> bool:
        """``CLUSTER FAILOVER`` on the replica (a planned switch): the master stays up,
        as a replica that answers MOVED for its old slots."""
        self.replica.execute_command("CLUSTER FAILOVER")
        self.switched_at = time.time()
        threading.Thread(target=self._watch, daemon=True).start()
        return True

    def replica_behind(self) -> int:
        """Bytes of the old master's replication stream, as it was read just before
        the kill, that the promoted replica never received (<= 0: none)."""
        had = int(self.replica.info("replication")["second_repl_offset"]) - 1
        return self.master_offset - had

    def _watch(self) -> None:
        """Note when the replica is a master and its cluster is ok again."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                info = self.replica.execute_command("CLUSTER INFO")
                if (self.replica.info("replication")["role"] == "master"
                        and info["cluster_state"] == "ok"):
                    self.promoted_at = time.time()
                    return
            except redis.RedisError:
                pass
            time.sleep(0.02)


class RetryingLoad(pc.Load):
    """``pc.Load`` whose clients send a submit again after a 503
    ``store_unavailable`` (after its ``Retry-After``, as a client should), or to
    the other process when the connection broke; every such 503 is noted with its
    time."""

    def __init__(self, targets: list[Proxy], n: int) -> None:
        super().__init__(targets, n, clients=4, concurrency=16)
        self.unavailable: list[float] = []
        self.accepted_at: list[float] = []

    async def _one(self, client: httpx.AsyncClient, i: int) -> None:
        body = pc.body_for(i, self._ids)
        for _round in range(400):  # a liveness bound, not a timing
            target = self.targets[(i + _round) % 2]
            try:
                r = await client.post(f"{target.url}/api/v1/task", json=body, headers=pc.H)
            except httpx.TransportError:  # e.g. a keep-alive connection the server
                self.failovers += 1  # closed as it was reused: the other process
                continue
            if r.status_code == 200:
                task_id = r.json()["data"]["task_id"]
                self.accepted[task_id] = target.url
                self._ids.append(task_id)
                self.accepted_at.append(time.time())
                return
            code = r.json()["data"]["error"]["raw_message"]
            if r.status_code == 503 and code == "store_unavailable":
                self.unavailable.append(time.time())
                await asyncio.sleep(float(r.headers["Retry-After"]))
                continue
            self.rejected[code] = self.rejected.get(code, 0) + 1
            return
        raise AssertionError("the store never answered again")


class TolerantSampler(pc.Sampler):
    """``pc.Sampler`` that goes on sampling the shards that answer while one is away."""

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                super().run()
            except redis.RedisError:
                self.r.nodes_manager.initialize()  # type: ignore[attr-defined]
                time.sleep(0.02)


def cluster_url(nodes: list[str]) -> str:
    return "redis+cluster://" + nodes[0].split("://", 1)[1]


def wait_for(check: Any, what: str) -> None:
    deadline = time.monotonic() + 60  # a liveness bound, not a timing
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_pipeline_with_a_stale_slot_map_follows_moved_and_runs_each_script_once() -> None:
    """After ``CLUSTER FAILOVER`` the old master answers MOVED: the store's pipeline
    sends those commands (which did not run) to the new master, once."""
    with redis_cluster(3, replicas=1, node_timeout_ms=NODE_TIMEOUT_MS) as nodes:
        c = client_for(cluster_url(nodes))
        assert isinstance(c, SlotCluster)
        incr = c.register_script("return redis.call('INCR', KEYS[1])")
        key = "byoa:{acc:f2}:n"
        old = c.get_node_from_key(key)  # type: ignore[no-untyped-call]
        master = redis.Redis(host=old.host, port=old.port, decode_responses=True)
        replica = master.info("replication")["slave0"]
        new = redis.Redis(host=replica["ip"], port=int(replica["port"]), decode_responses=True)
        new.execute_command("CLUSTER FAILOVER")
        wait_for(lambda: master.info("replication")["role"] == "slave", "no switch")
        assert c.get_node_from_key(key).name == old.name  # type: ignore[no-untyped-call]
        pipe = c.pipeline(transaction=False)
        pipe.evalsha(incr.sha, 1, key)
        pipe.get(key)
        assert pipe.execute() == [1, "1"]  # ran once, on the new master
        assert c.get_node_from_key(key).name != old.name  # type: ignore[no-untyped-call]
        assert new.get(key) == "1"


def test_a_cluster_that_cannot_serve_a_slot_is_a_stall_not_an_error() -> None:
    """A master gone with no replica: the others answer CLUSTERDOWN. The store's
    pipeline and its single commands raise ``ClusterUnavailable``, a
    ``redis.ConnectionError``, which the proxy treats as a stalled store (503
    for new requests; starts, charges and records retried), never as a failure."""
    with redis_cluster(3, node_timeout_ms=NODE_TIMEOUT_MS) as nodes:
        c = client_for(cluster_url(nodes))
        dead, alive = c.get_primaries()[:2]  # type: ignore[attr-defined]
        key = next(f"k{i}" for i in range(10_000)
                   if c.get_node_from_key(f"k{i}").name == alive.name)  # type: ignore[attr-defined]
        victim = redis.Redis(host=dead.host, port=dead.port)
        os.kill(int(victim.info("server")["process_id"]), signal.SIGKILL)
        survivor = redis.Redis(host=alive.host, port=alive.port, decode_responses=True)
        wait_for(lambda: survivor.execute_command("CLUSTER INFO")["cluster_state"] == "fail",
                 "the cluster never noticed")
        pipe = c.pipeline(transaction=False)
        pipe.set(key, "x")
        with pytest.raises(ClusterUnavailable) as raised:
            pipe.execute()
        assert isinstance(raised.value, redis.ConnectionError)
        with pytest.raises(ClusterUnavailable):
            c.get(key)


def run_failover(tmp_path: Path, how: str,
                 shard: str = "accounts") -> tuple[Victim, RetryingLoad, int]:
    """Two proxies under load; at the ``KILL_AT``-th submit the replica of the
    ``shard``'s master takes over (``how``: "kill" or "hand_over"). Checks
    everything the issue demands; the victim, the load and the number of tasks
    completed."""
    with redis_cluster(3, replicas=1, node_timeout_ms=NODE_TIMEOUT_MS) as nodes:
        url = cluster_url(nodes)
        accounts_file = pc.load(url, tmp_path)
        r = client_for(url)
        victim = Victim(r, shard)
        if shard == "accounts":
            assert len(victim.accounts) >= 2  # the switched shard holds accounts in use
        serve = ["--redis", url, *pc.SERVE]
        with proxies([serve, serve], str(tmp_path)) as ps:
            sampler = TolerantSampler(url)
            sampler.start()
            load_run = RetryingLoad(ps, n=SUBMITS)
            load_run.kill_at = KILL_AT
            load_run.on_kill = getattr(victim, how)
            load_run.run()
            assert victim.switched_at is not None and all(p.proc.poll() is None for p in ps)
            r.nodes_manager.initialize()  # type: ignore[attr-defined]
            pc.wait_idle(r)
            sampler.stop_flag.set()
            sampler.join()
            ids = list(load_run.accepted)
            recs = pc.wait_final(r, ids)
            logs = "".join(p.output() for p in ps)
        assert victim.promoted_at is not None, "the replica was not promoted"
        assert any(t > victim.promoted_at for t in load_run.accepted_at)  # the load went on
        assert sampler.violations == []  # R1, R2 at every sample
        assert len(ids) + sum(load_run.rejected.values()) == SUBMITS
        hashes = pc.task_hashes(r, ids)
        completed = pc.check_each_task_ran_once(ids, recs, hashes)
        later = Counter(rec["error"]["detail"]["error_code"] for rec in recs.values()
                        if rec["status"] == "failed")  # rejected when their turn came
        assert "lease_expired" not in json.dumps(recs)
        pc.check_ledger_totals(r, accounts_file, hashes, recs)  # nothing charged twice (L1-L3)
        assert "Traceback" not in logs
        behind = victim.replica_behind() if how == "kill" else 0
    since = [t - victim.switched_at for t in load_run.unavailable]
    print(f"\n{how} {shard} (accounts {victim.accounts}): replica promoted "
          f"{victim.promoted_at - victim.switched_at:.2f} s after it "
          f"(replica behind by {behind} bytes); {len(since)} submits got 503 "
          "store_unavailable" + (f" from {min(since):.2f} s to {max(since):.2f} s after it"
                                 if since else "")
          + f"; {completed} of {len(ids)} accepted tasks completed; "
          f"rejected by the router: at submit {load_run.rejected}, from the line "
          f"{dict(later)}; {load_run.failovers} broken connections")
    assert completed > SUBMITS // 2
    return victim, load_run, completed


@pytest.mark.parametrize("shard", ["accounts", "line"])
def test_a_master_sigkilled_under_load_its_replica_takes_over_nothing_lost_L1_R1(
        tmp_path: Path, shard: str) -> None:
    """The master stops answering at once (the one with the most accounts, or the
    one with the waiting line, R5, and the epoch); the others mark it failed after
    ``NODE_TIMEOUT_MS`` and its replica is elected. Meanwhile the proxies answer
    503 ``store_unavailable`` and keep their starts and charges until the store
    answers again."""
    run_failover(tmp_path, "kill", shard)


def test_a_planned_failover_under_load_moves_nothing_twice_L1_R1(tmp_path: Path) -> None:
    """``CLUSTER FAILOVER``: the old master stays up as a replica and answers MOVED
    for its slots to a process whose slot map is stale."""
    run_failover(tmp_path, "hand_over")
