"""What a routed task costs the Redis store itself: round trips, Redis commands and
CPU per task, two ``RedisStore`` objects ("processes") on one ``redis-server``.

    .venv/bin/python benchmarks/bench_redis_calls.py [--runs 3] [--tasks 3000]
        [--baseline DIR] [--callgrind]

The load of ``bench_proxy_cpu.py``'s ``proxy redis x2 idle`` without HTTP: 20 Mega
accounts that never fill, the two stores submit in turn one fast imagine each
2.5 ms of a fake clock (so the mirrors' refresh every 50 ms falls at the same
submits on every run) and complete each task 8 submits (20 ms) later with
``complete_many``, charged. Counted per task: round trips (the client's socket
sends: a pipeline is one), Redis commands by name (``INFO commandstats``, the
scripts' own calls included), lost races; and timed: the client's CPU (both
stores, routing included) and ``redis-server``'s CPU. The counts are the same on
every run whatever the load; the CPU figures are not.

``--callgrind``: the client's machine instructions per task instead, counted by
``valgrind --tool=callgrind`` (the same on every run, whatever the load): the
load of ``--tasks`` and of three times as many, the difference divided by the
difference in tasks (the set-up taken out); with ``--baseline``, the ratio.

With ``--baseline DIR`` the same load runs on that checkout's ``router`` package
(PYTHONPATH), alternating which goes first, on the same server, in the same run.
Medians of ``--runs`` runs; the CPU ratios are taken within each run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Any

BODY = {"model": "midjourney", "task_type": "imagine",
        "input": {"prompt": "bench --ar 16:9", "process_mode": "fast"}}
T0 = 1_796_068_800.0
COMMANDS = ("evalsha", "hgetall", "hget", "hincrby", "set", "get", "lrange")


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def one(url: str, prefix: str, tasks: int) -> dict[str, float]:
    """The load on the ``router`` package this interpreter imports; per task."""
    import redis.connection as rc

    from router.accounts import Account, Plan
    from router.ledger import Policy
    from router.stores.redis_store import RedisStore, connect, load_into_redis

    sends = [0]
    conn_cls: Any = getattr(rc, "AbstractConnection", rc.Connection)
    original = conn_cls.send_packed_command

    def counted(self: Any, *args: Any, **kw: Any) -> Any:
        sends[0] += 1
        return original(self, *args, **kw)

    conn_cls.send_packed_command = counted
    client = connect(url)
    accs = [Account(f"acc{i:02d}", Plan.MEGA, max_in_flight=1_000_000) for i in range(20)]
    load_into_redis(client, accs, Policy(), T0, prefix=prefix)
    clock = _Clock()
    stores = [RedisStore(connect(url), prefix=prefix, owner=o, clock=clock) for o in "AB"]
    client.config_resetstat()
    sends[0] = 0
    r0 = client.info("cpu")
    cpu0 = time.process_time()
    live: list[tuple[int, RedisStore]] = []
    for k in range(tasks):
        clock.t += 0.0025
        now = T0 + clock.t - 1000.0
        store = stores[k % 2]
        store.submit(f"t{k}", BODY, now)
        live.append((k, store))
        while live and live[0][0] <= k - 8:
            j, owner = live.pop(0)
            owner.complete_many([(f"t{j}", 1.0)], now)
    cpu = time.process_time() - cpu0
    trips = sends[0]
    r1 = client.info("cpu")
    stats = client.info("commandstats")
    out = {"round_trips": trips / tasks, "client_cpu_us": cpu / tasks * 1e6,
           "redis_cpu_us": (r1["used_cpu_sys"] + r1["used_cpu_user"] - r0["used_cpu_sys"]
                            - r0["used_cpu_user"]) / tasks * 1e6,
           "lost_races": float(sum(s.lost_races for s in stores))}
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
    out["commands"] = sum(calls.values()) / tasks
    for name in COMMANDS:
        out[name] = calls.get(name, 0) / tasks
    return out


def run_tree(url: str, prefix: str, tasks: int, tree: str | None) -> dict[str, float]:
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree
    res = subprocess.run([sys.executable, __file__, "--one", url, prefix, str(tasks)],
                         env=env, capture_output=True, text=True, check=True)
    parsed: dict[str, float] = json.loads(res.stdout.strip().splitlines()[-1])
    return parsed


def instructions(url: str, prefix: str, tasks: int, tree: str | None) -> float:
    """The client's instructions per task under callgrind (``--callgrind``)."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    if tree:
        env["PYTHONPATH"] = tree
    refs = []
    for k, n in enumerate((tasks, 3 * tasks)):
        res = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                              sys.executable, __file__, "--one", url, f"{prefix}{k}", str(n)],
                             env=env, capture_output=True, text=True, check=True)
        found = re.search(r"refs:\s+([\d,]+)", res.stderr)
        assert found, res.stderr[-500:]
        refs.append(int(found.group(1).replace(",", "")))
    return (refs[1] - refs[0]) / (2 * tasks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tasks", type=int, default=3000)
    ap.add_argument("--baseline", metavar="DIR", help="a checkout to compare, same run")
    ap.add_argument("--callgrind", action="store_true",
                    help="count the client's instructions per task (needs valgrind)")
    ap.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.one:
        url, prefix, tasks = opts.one
        print(json.dumps(one(url, prefix, int(tasks))))
        return
    from router.stores.embedded import embedded_redis

    versions: list[tuple[str, str | None]] = [("this tree", None)]
    if opts.baseline:
        versions.append(("baseline", os.path.abspath(opts.baseline)))
    rows: dict[str, list[dict[str, float]]] = {tag: [] for tag, _ in versions}
    if opts.callgrind:
        with embedded_redis() as url:
            counts = {tag: instructions(url, f"cg{tag[0]}", opts.tasks, tree)
                      for tag, tree in versions}
        for tag, n in counts.items():
            print(f"  {tag}: {n:,.0f} client instructions per task (callgrind)")
        if opts.baseline:
            print(f"  client instructions, this tree / baseline: "
                  f"{counts['this tree'] / counts['baseline']:.2f}")
        return
    with embedded_redis() as url:
        for run in range(opts.runs):
            order = versions if run % 2 == 0 else versions[::-1]
            for tag, tree in order:
                row = run_tree(url, f"bench{run}{tag[0]}", opts.tasks, tree)
                rows[tag].append(row)
                print(f"run {run + 1}: {tag:9s} " + ", ".join(
                    f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    print(f"medians of {opts.runs} runs, per task ({opts.tasks} tasks, 2 stores, 20 accounts)")
    for tag, _ in versions:
        keys = rows[tag][0].keys()
        print(f"  {tag}: " + ", ".join(
            f"{k} {statistics.median(r[k] for r in rows[tag]):.2f}" for k in keys))
    if opts.baseline:
        for key in ("round_trips", "commands", "hgetall", "client_cpu_us", "redis_cpu_us"):
            ratios = [a[key] / b[key] for a, b in zip(rows["this tree"], rows["baseline"],
                                                      strict=True) if b[key]]
            if ratios:
                print(f"  {key}, this tree / baseline: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
