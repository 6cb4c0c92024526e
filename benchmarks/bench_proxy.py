"""Routed submits/s and route latency: the Redis store with two processes
against the in-memory store in one process, in the same run.

    .venv/bin/python benchmarks/bench_proxy.py [--runs 5] [--seconds 3] [--http]

Store level (what the proxy calls per submit): each worker process loops
``submit`` (route on the mirror + one atomic Lua reservation) and, to keep the
pool from filling up, completes its oldest task whenever it holds more than
``--keep`` in flight. The throughput counts routed submits over the whole wall
time, completions included. The route latency is the time of one ``submit``
call. ``--http`` adds the end-to-end figure: two ``byoa serve`` processes on the
same Redis driven over HTTP by an async client, against one in-memory
``byoa serve``. Medians of ``--runs`` runs are printed, with ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

from router.accounts import Account, Plan, hours_to_ms
from router.ledger import Policy
from router.stores.embedded import embedded_redis, free_port
from router.stores.memory import MemoryStore
from router.stores.redis_store import RedisStore, connect, load_into_redis

BODY = {"model": "midjourney", "task_type": "imagine",
        "input": {"prompt": "bench --ar 16:9", "process_mode": "fast"}}


ROOM = {"steady": 22, "burst": 1_000_000}


def accounts(room: int = 22) -> list[Account]:
    """20 Mega accounts; ``burst`` gives them room for every submit of a run."""
    return [Account(f"acc{i:02d}", Plan.MEGA, fast_ms=hours_to_ms(60_000), max_in_flight=room)
            for i in range(20)]


def loop(store: Any, seconds: float, keep: int, tag: str,
         batch: int = 1) -> tuple[int, list[float]]:
    """Submit for ``seconds`` (``batch`` at a time through ``submit_many``; each
    task's latency is its batch's); complete the oldest beyond ``keep`` in flight."""
    held: deque[str] = deque()
    lat: list[float] = []
    n = 0
    start = time.perf_counter()
    now = time.time()
    while time.perf_counter() - start < seconds:
        ids = [f"{tag}-{n + k}" for k in range(batch)]
        t0 = time.perf_counter()
        if batch == 1:
            decisions = [store.submit(ids[0], BODY, now)]
        else:
            decisions = store.submit_many([(t, BODY, None) for t in ids], now)
        dt = time.perf_counter() - t0
        lat.extend([dt] * batch)
        n += batch
        held.extend(d.task_id for d in decisions if d.error is None)
        if batch == 1:
            while len(held) > keep:
                store.complete(held.popleft(), 1.0, now)
        elif len(held) > keep:
            store.complete_many([(held.popleft(), 1.0) for _ in range(len(held) - keep)], now)
    while held:  # leave the pool empty for the next phase
        store.complete(held.popleft(), 1.0, now)
    return n, lat


def open_loop(store: Any, seconds: float, rate: float, keep: int,
              tag: str) -> tuple[int, list[float]]:
    """Tasks arrive at ``rate`` per second; each turn routes everything that has
    arrived (up to 64) in one ``submit_many``; latency = done - arrival."""
    held: deque[str] = deque()
    lat: list[float] = []
    n = 0
    start = time.perf_counter()
    now = time.time()
    while True:
        t = time.perf_counter()
        if t - start >= seconds:
            break
        due = min(int((t - start) * rate) - n, 64)
        if due <= 0:
            time.sleep(0.0002)
            continue
        arrivals = [start + (n + k) / rate for k in range(due)]
        decisions = store.submit_many([(f"{tag}-{n + k}", BODY, None) for k in range(due)],
                                      now)
        done = time.perf_counter()
        lat.extend(done - a for a in arrivals)
        n += due
        held.extend(d.task_id for d in decisions if d.error is None)
        if len(held) > keep:
            store.complete_many([(held.popleft(), 1.0) for _ in range(len(held) - keep)], now)
    return n, lat


def redis_rate_worker(url: str, seconds: float, rate: float, keep: int, tag: str,
                      out: Any) -> None:
    store = RedisStore(connect(url), owner=tag, explain=False)
    open_loop(store, 0.3, rate, keep, tag + "w")
    n, lat = open_loop(store, seconds, rate, keep, tag)
    out.put((n, lat, store.lost_races))


def redis_worker(url: str, seconds: float, keep: int, tag: str, batch: int,
                 out: Any) -> None:
    store = RedisStore(connect(url), owner=tag, explain=False)
    n, lat = loop(store, 0.3, keep, tag + "w", batch)  # warm-up: scripts, connections
    n, lat = loop(store, seconds, keep, tag, batch)
    out.put((n, lat, store.lost_races))


def run_memory(seconds: float, keep: int, room: int,
               batch: int) -> tuple[float, list[float]]:
    store = MemoryStore(accounts(room), Policy(), start_at=time.time(), explain=False)
    loop(store, 0.3, keep, "w", batch)
    n, lat = loop(store, seconds, keep, "m", batch)
    return n / seconds, lat


def run_redis(url: str, seconds: float, keep: int, procs: int,
              room: int, batch: int) -> tuple[float, list[float], int]:
    client = connect(url)
    load_into_redis(client, accounts(room), Policy(), time.time(), replace=True)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=redis_worker,
                           args=(url, seconds, keep, f"p{i}", batch, out))
               for i in range(procs)]
    for w in workers:
        w.start()
    results = [out.get() for _ in workers]
    for w in workers:
        w.join()
    total = sum(r[0] for r in results)
    lat = [x for r in results for x in r[1]]
    return total / seconds, lat, sum(r[2] for r in results)


def run_rate(url: str | None, seconds: float, rate: float, keep: int,
             procs: int) -> tuple[float, list[float]]:
    """Open loop at ``rate`` in total: memory in one process, or Redis split over ``procs``."""
    if url is None:
        store = MemoryStore(accounts(), Policy(), start_at=time.time(), explain=False)
        open_loop(store, 0.3, rate, keep, "w")
        n, lat = open_loop(store, seconds, rate, keep, "m")
        return n / seconds, lat
    load_into_redis(connect(url), accounts(), Policy(), time.time(), replace=True)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=redis_rate_worker,
                           args=(url, seconds, rate / procs, keep, f"r{i}", out))
               for i in range(procs)]
    for w in workers:
        w.start()
    results = [out.get() for _ in workers]
    for w in workers:
        w.join()
    return sum(r[0] for r in results) / seconds, [x for r in results for x in r[1]]


def p(lat: list[float], q: float) -> float:
    s = sorted(lat)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


# ------------------------------------------------------------------------- HTTP
def serve(args: list[str], key: str) -> subprocess.Popen[bytes]:
    byoa = os.path.join(os.path.dirname(sys.executable), "byoa")
    return subprocess.Popen([byoa, "serve", "--api-key", key, "--speedup", "3000",
                             "--start-delay", "0", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_up(port: int) -> None:
    import httpx

    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("byoa serve did not start")


async def _raw_worker(port: int, key: str, stop: float, counts: dict[int, int]) -> None:
    """A minimal keep-alive HTTP/1.1 client: the load generator must cost less
    CPU than the servers it measures (httpx' pool does not, on two cores)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = json.dumps(BODY).encode()
    request = (f"POST /api/v1/task HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {key}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
               ).encode() + payload
    while time.perf_counter() < stop:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        counts[status] = counts.get(status, 0) + 1
    writer.close()


async def drive(ports: list[int], key: str, seconds: float, conc: int) -> int:
    counts: dict[int, int] = {}
    stop = time.perf_counter() + seconds
    await asyncio.gather(*[_raw_worker(ports[i % len(ports)], key, stop, counts)
                           for i in range(conc)])
    return counts.get(200, 0)


def route_p99_from_metrics(port: int, key: str) -> tuple[float, int]:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"x-api-key": key}).text
    buckets = []
    for line in text.splitlines():
        if line.startswith("byoa_route_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), int(line.split()[-1])))
    total = buckets[-1][1]
    for le, cum in buckets:
        if cum >= 0.99 * total:
            return le * 1000, total
    return float("inf"), total


def run_http(url: str, seconds: float, tmp: Path) -> dict[str, float]:
    key = "bench-key"
    acc_file = tmp / "accounts.json"
    acc_file.write_text(json.dumps({"accounts": [
        {"id": f"acc{i:02d}", "plan": "mega", "max_in_flight": 22} for i in range(20)]}))
    load_into_redis(connect(url), accounts(), Policy(), time.time(), replace=True)
    out: dict[str, float] = {}
    for label, arg_sets in (("memory_1proc", [["--accounts", str(acc_file)]]),
                            ("redis_2proc", [["--redis", url], ["--redis", url]])):
        ports = [free_port() for _ in arg_sets]
        procs = [serve([*a, "--port", str(pt)], key)
                 for a, pt in zip(arg_sets, ports, strict=True)]
        try:
            for pt in ports:
                wait_up(pt)
            n = asyncio.run(drive(ports, key, seconds, 32))
            out[f"http_{label}_submits_per_s"] = n / seconds
            p99s = [route_p99_from_metrics(pt, key)[0] for pt in ports]
            out[f"http_{label}_route_p99_bucket_ms"] = max(p99s)
        finally:
            for pr in procs:
                pr.terminate()
                pr.wait()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--keep", type=int, default=200, help="tasks held in flight per process")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16, help="submits per submit_many call")
    ap.add_argument("--rate", type=float, default=5000.0,
                    help="offered submits/s in total for the open-loop latency run")
    ap.add_argument("--http", action="store_true", help="also measure end to end over HTTP")
    ap.add_argument("--http-only", action="store_true", help="only the HTTP measurement")
    args = ap.parse_args()
    rows: dict[str, list[float]] = {}

    def add(k: str, v: float) -> None:
        rows.setdefault(k, []).append(v)

    with embedded_redis() as url, tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            if args.http_only:
                for k, v in run_http(url, args.seconds, Path(tmp)).items():
                    add(k, v)
                continue
            for (kind, room), batch in itertools.product(ROOM.items(), (1, args.batch)):
                mode = f"{kind} b{batch}"
                keep = args.keep if kind == "steady" else 10**9
                mem_rate, mem_lat = run_memory(args.seconds, keep, room, batch)
                red_rate, red_lat, lost = run_redis(url, args.seconds, keep, args.procs, room,
                                                    batch)
                add(f"{mode}: memory_1proc_submits_per_s", mem_rate)
                add(f"{mode}: memory_p50_ms", p(mem_lat, 0.50))
                add(f"{mode}: memory_p99_ms", p(mem_lat, 0.99))
                add(f"{mode}: redis_{args.procs}proc_submits_per_s", red_rate)
                add(f"{mode}: redis_p50_ms", p(red_lat, 0.50))
                add(f"{mode}: redis_p99_ms", p(red_lat, 0.99))
                add(f"{mode}: added_p99_ms", p(red_lat, 0.99) - p(mem_lat, 0.99))
                add(f"{mode}: lost_races", float(lost))
                add(f"{mode}: ratio redis/memory throughput", red_rate / mem_rate)
                print(f"run {run + 1}/{args.runs} {mode}: memory {mem_rate:,.0f}/s, "
                      f"redis x{args.procs} {red_rate:,.0f}/s", file=sys.stderr)
            mem_rate, mem_lat = run_rate(None, args.seconds, args.rate, args.keep, 1)
            red_rate, red_lat = run_rate(url, args.seconds, args.rate, args.keep, args.procs)
            tag = f"open loop {args.rate:g}/s"
            add(f"{tag}: memory achieved per_s", mem_rate)
            add(f"{tag}: memory p50_ms", p(mem_lat, 0.50))
            add(f"{tag}: memory p99_ms", p(mem_lat, 0.99))
            add(f"{tag}: redis x{args.procs} achieved per_s", red_rate)
            add(f"{tag}: redis p50_ms", p(red_lat, 0.50))
            add(f"{tag}: redis p99_ms", p(red_lat, 0.99))
            add(f"{tag}: added p99_ms", p(red_lat, 0.99) - p(mem_lat, 0.99))
            print(f"run {run + 1}/{args.runs} open loop: memory {mem_rate:,.0f}/s "
                  f"p99 {p(mem_lat, 0.99):.2f} ms, redis {red_rate:,.0f}/s "
                  f"p99 {p(red_lat, 0.99):.2f} ms", file=sys.stderr)
            if args.http:
                for k, v in run_http(url, args.seconds, Path(tmp)).items():
                    add(k, v)
    print(f"medians of {args.runs} runs, {args.seconds:g} s each, 20 Mega accounts, "
          f"fast imagine, {os.cpu_count()} CPUs (steady: completions in the loop, "
          f"{args.keep} held per process; burst: submits only; bN: N submits per round "
          "trip through submit_many)")
    for k, vals in rows.items():
        print(f"  {k:<44} {statistics.median(vals):>12,.3f}")
    if args.http or args.http_only:
        rh = statistics.median(rows["http_redis_2proc_submits_per_s"])
        mh = statistics.median(rows["http_memory_1proc_submits_per_s"])
        print(f"  ratio HTTP redis x2 / memory x1 throughput: {rh / mh:.3f}")


if __name__ == "__main__":
    main()
