"""What asynchronous replication costs a Redis Cluster failover, and what ``WAIT``
would cost to close it (docs/operations.md, "Redis Cluster with replicas").

    .venv/bin/python benchmarks/bench_cluster_replication.py [--kills 6] [--runs 5]

Both parts run on a 6-node cluster on loopback (3 masters, one replica each,
``embedded_cluster(3, replicas=1)``, ``cluster-node-timeout`` 1000 ms):

* **lost**: 4 threads send pipelines of 10 ``SET``s to one master as fast as they
  can, noting every key whose pipeline was answered; after 1 s the master is
  SIGKILLed; once its replica is master, the acknowledged keys it lacks are
  counted. Once per ``--kills``, on a fresh cluster each time.
* **WAIT**: the latency of one pipeline of 8 small scripts on one master
  (the baseline), and of the same pipeline followed by ``WAIT 1 1000`` (the
  answer comes once the replica has the writes), alternated in the same run:
  medians over ``--runs`` rounds of the per-round p50 and p99 of 2,000 batches,
  and their ratios.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import threading
import time
from typing import Any

import redis
from redis.cluster import RedisCluster

from router.stores.embedded import embedded_cluster

SCRIPT = ("redis.call('HINCRBY', KEYS[1], 'n', 1); "
          "redis.call('HSET', KEYS[1], 'at', ARGV[1]); return 1")
SLOT_KEY = "{acc:f2}"


def master_and_replica(nodes: list[str]) -> tuple[redis.Redis, redis.Redis]:
    cluster = RedisCluster.from_url(nodes[0])
    node = cluster.get_node_from_key(SLOT_KEY)  # type: ignore[no-untyped-call]
    master = redis.Redis(host=node.host, port=node.port)
    rep = master.info("replication")["slave0"]
    cluster.close()
    return master, redis.Redis(host=rep["ip"], port=int(rep["port"]))


def lost_at_one_kill() -> tuple[int, int]:
    """(acknowledged SETs, of them missing on the promoted replica)."""
    with embedded_cluster(3, replicas=1, node_timeout_ms=1000) as nodes:
        master, replica = master_and_replica(nodes)
        host, port = master.connection_pool.connection_kwargs["host"], \
            master.connection_pool.connection_kwargs["port"]
        acked: list[list[str]] = [[] for _ in range(4)]

        def writer(k: int) -> None:
            c = redis.Redis(host=host, port=port)
            i = 0
            while True:
                keys = [f"{SLOT_KEY}:{k}:{i + j}" for j in range(10)]
                pipe = c.pipeline(transaction=False)
                for key in keys:
                    pipe.set(key, 1)
                try:
                    pipe.execute()
                except redis.RedisError:
                    return  # the master is gone
                acked[k].extend(keys)
                i += 10

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        os.kill(int(master.info("server")["process_id"]), signal.SIGKILL)
        for t in threads:
            t.join()
        while True:
            try:
                if replica.info("replication")["role"] == "master":
                    break
            except redis.RedisError:
                pass
            time.sleep(0.05)
        every = [key for keys in acked for key in keys]
        pipe = replica.pipeline(transaction=False)
        for key in every:
            pipe.exists(key)
        return len(every), len(every) - sum(pipe.execute())


def wait_cost(runs: int) -> dict[bool, list[tuple[float, float]]]:
    """Per round and variant (with WAIT or not): (p50, p99) of a batch, seconds."""
    out: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with embedded_cluster(3, replicas=1, node_timeout_ms=1000) as nodes:
        master, _replica = master_and_replica(nodes)
        sha = master.script_load(SCRIPT)

        def batch(wait: bool) -> float:
            pipe: Any = master.pipeline(transaction=False)
            for i in range(8):
                pipe.evalsha(sha, 1, SLOT_KEY, i)
            if wait:
                pipe.execute_command("WAIT", 1, 1000)
            t = time.perf_counter()
            res = pipe.execute()
            took = time.perf_counter() - t
            assert not wait or res[-1] == 1, res  # the replica confirmed
            return took

        for _ in range(runs):
            for wait in (False, True):  # alternated: the same machine noise for both
                xs = sorted(batch(wait) for _ in range(2000))
                out[wait].append((xs[len(xs) // 2], xs[int(len(xs) * 0.99)]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    total = lost = 0
    for k in range(args.kills):
        acked, missing = lost_at_one_kill()
        total, lost = total + acked, lost + missing
        print(f"kill {k + 1}: {acked} acknowledged SETs, {missing} missing on the "
              "promoted replica", flush=True)
    print(f"lost: {lost} of {total} acknowledged writes over {args.kills} kills")
    rounds = wait_cost(args.runs)
    for wait in (False, True):
        p50 = statistics.median(a for a, _ in rounds[wait]) * 1e6
        p99 = statistics.median(b for _, b in rounds[wait]) * 1e6
        print(f"{'with WAIT 1' if wait else 'baseline   '}: batch of 8 scripts p50 {p50:.0f} µs, "
              f"p99 {p99:.0f} µs (medians of {args.runs} rounds)")
    r50 = statistics.median(w[0] / b[0] for w, b in zip(rounds[True], rounds[False], strict=True))
    r99 = statistics.median(w[1] / b[1] for w, b in zip(rounds[True], rounds[False], strict=True))
    print(f"WAIT / baseline: p50 x{r50:.2f}, p99 x{r99:.2f} (median of per-round ratios)")


if __name__ == "__main__":
    main()
