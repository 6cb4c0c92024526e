"""What a request costs the server: CPU per routed submit of ``byoa serve``
against a bare endpoint of the same framework, p99 routing, and throughput with
a saturated pool against an idle one, all in the same run.

    .venv/bin/python benchmarks/bench_proxy_cpu.py [--runs 3] [--seconds 2]
        [--only memory|redis] [--baseline DIR]
    make bench-proxy

Every scenario starts real server processes and drives them over HTTP from a
separate load-generator process: a raw asyncio HTTP/1.1 client that keeps
``--conns`` keep-alive connections and pipelines ``--depth`` requests on each
(it costs less CPU than the servers it measures; its own CPU is printed too).
After a warm-up, the generator reads the CPU time (utime + stime from
``/proc/PID/stat``) of every server process (and of ``redis-server`` where one
is used), counts the ``200`` answers for ``--seconds``, and reads the CPU time
again. CPU per submit = server CPU in the window / 200 answers in the window.

Scenarios, each run (servers started afresh for each run):

* ``bare x1`` / ``bare x2``: FastAPI/uvicorn with the settings of ``byoa serve``
  (no access log, log level warning); ``POST /api/v1/task`` reads and parses the
  JSON body and returns a constant GoAPI task envelope. Two processes are
  started; ``x1`` drives the first alone, ``x2`` both.
* ``proxy memory x1 idle``: one ``byoa serve --accounts`` process; the pool never
  fills (``max_in_flight`` 10^6 per account, ``--speedup 3000``: tasks finish in
  about 20 ms and are charged, so their whole life is in the CPU figure).
* ``proxy redis x2 idle``: two ``byoa serve --redis`` processes on one
  ``redis-server`` (whose CPU is counted), the same accounts.
* ``... saturated``: the same topologies with every account full (one slot per
  account, ``--speedup 0.01``: nothing finishes) and ``--waiting`` tasks already
  queued (R5) before the window opens; the 200 answers are queued tasks.

The route latency is the proxy's own ``byoa_route_seconds`` histogram (the
``submit_many`` call inside the proxy, each submit of a batch counted with its
batch's time), read from ``/metrics`` at both ends of the window: its p99 is
given as the upper bound of the bucket that holds it and as the linear
interpolation inside that bucket (as Prometheus' ``histogram_quantile``). The
end-to-end p99 seen by the client is printed as well (it includes waiting
behind the pipelined requests of the same connection).

Medians of ``--runs`` runs; ratios are taken within each run, then the median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

KEY = "bench-key-0123456789"
BODY = {"model": "midjourney", "task_type": "imagine",
        "input": {"prompt": "bench --ar 16:9", "process_mode": "fast"}}
CLK_TCK = os.sysconf("SC_CLK_TCK")

#: The bare endpoint's answer: the shape of a routed task's envelope.
BARE_ANSWER: dict[str, Any] = {
    "code": 200, "message": "success",
    "data": {
        "task_id": "00000000-0000-4000-8000-000000000000", "model": "midjourney",
        "task_type": "imagine", "status": "pending",
        "config": {"service_mode": "", "webhook_config": {"endpoint": "", "secret": ""}},
        "input": BODY["input"],
        "output": {"image_url": "", "image_urls": None, "temporary_image_urls": None,
                   "discord_image_url": "", "actions": [], "progress": 0,
                   "intermediate_image_urls": None},
        "meta": {"created_at": "2026-12-02T13:00:00Z", "started_at": None, "ended_at": None,
                 "queued": False, "pool": "private", "account_id": "acc00",
                 "requested_mode": "fast", "mode_source": "process_mode",
                 "effective_mode": "fast", "fallback": False, "explanation": None},
        "detail": None, "logs": [],
        "error": {"code": 0, "raw_message": "", "message": "", "detail": None},
    },
}


# ------------------------------------------------------------------ servers
def bare_server(port: int) -> None:
    """The baseline: the same framework and uvicorn settings as ``byoa serve``."""
    import uvicorn

    app = FastAPI(title="bare")

    @app.post("/api/v1/task")
    async def create_task(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        if not isinstance(body, dict):
            return JSONResponse({"code": 400, "data": None, "message": "bad"}, status_code=400)
        return JSONResponse(BARE_ANSWER)

    uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                  access_log=False, timeout_graceful_shutdown=2)).run()


def free_port() -> int:
    from router.stores.embedded import free_port as fp

    return fp()


@dataclass
class Servers:
    procs: list[subprocess.Popen[bytes]]
    ports: list[int]
    extra_pids: list[int] = field(default_factory=list)  # redis-server

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs] + self.extra_pids

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _wait_up(servers: Servers) -> None:
    import httpx

    for proc, port in zip(servers.procs, servers.ports, strict=True):
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                servers.stop()
                raise RuntimeError(f"server on port {port} exited ({proc.returncode})")
            try:
                httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    servers.stop()
                    raise RuntimeError(f"server on port {port} did not start") from None
                time.sleep(0.05)


def start_bare(n: int) -> Servers:
    ports = [free_port() for _ in range(n)]
    procs = [subprocess.Popen([sys.executable, __file__, "--bare-server", str(p)],
                              stdout=subprocess.DEVNULL) for p in ports]
    s = Servers(procs, ports)
    _wait_up(s)
    return s


def start_proxies(arg_sets: list[list[str]], speedup: float,
                  extra_pids: list[int], tree: str | None = None) -> Servers:
    """``byoa serve`` processes; with ``tree``, its ``router`` package (PYTHONPATH)."""
    byoa = os.path.join(os.path.dirname(sys.executable), "byoa")
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree
    ports = [free_port() for _ in arg_sets]
    procs = [subprocess.Popen([byoa, "serve", "--api-key", KEY, "--port", str(p),
                               "--speedup", str(speedup), "--start-delay", "0",
                               "--drain-seconds", "0", *a],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
             for a, p in zip(arg_sets, ports, strict=True)]
    s = Servers(procs, ports, extra_pids)
    _wait_up(s)
    return s


def accounts_doc(room: int) -> dict[str, Any]:
    return {"accounts": [{"id": f"acc{i:02d}", "plan": "mega", "max_in_flight": room,
                          "fast_hours_remaining": 1_000_000.0} for i in range(20)]}


# ------------------------------------------------------------ load generator
def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


class Load:
    def __init__(self) -> None:
        self.measuring = False
        self.stop = False
        self.warm_ok = 0
        self.counts: dict[int, int] = {}
        self.lat: list[float] = []


async def _conn(port: int, request: bytes, depth: int, load: Load,
                interval: float = 0.0, offset: float = 0.0) -> None:
    """One keep-alive connection: ``depth`` pipelined requests, their answers, again;
    with ``interval``, a batch goes every ``interval`` seconds, from ``offset`` on (a
    fixed offered load; a batch whose time has passed goes at once)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    batch = request * depth
    buf = b""
    next_at = time.perf_counter() + offset
    while not load.stop:
        if interval:
            wait = next_at - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            next_at += interval
        t0 = time.perf_counter()
        writer.write(batch)  # pipelined: one write, ``depth`` answers
        got = 0
        while got < depth:
            idx = buf.find(b"\r\n\r\n")
            if idx < 0:
                chunk = await reader.read(262144)
                if not chunk:
                    raise RuntimeError("server closed the connection")
                buf += chunk
                continue
            i = buf.find(b"content-length: ", 0, idx)
            j = buf.find(b"\r\n", i + 16, idx + 2)
            end = idx + 4 + int(buf[i + 16:j])
            while len(buf) < end:
                chunk = await reader.read(262144)
                if not chunk:
                    raise RuntimeError("server closed the connection")
                buf += chunk
            status = int(buf[9:12])
            buf = buf[end:]
            got += 1
            if load.measuring:
                load.counts[status] = load.counts.get(status, 0) + 1
                load.lat.append(time.perf_counter() - t0)
            elif status == 200:
                load.warm_ok += 1
    writer.close()


async def _get(port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {KEY}\r\n"
                 "Connection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    return data.split(b"\r\n\r\n", 1)[1].decode()


async def _metrics(ports: list[int]) -> list[str]:
    return list(await asyncio.gather(*[_get(p, "/metrics") for p in ports]))


async def _generate(ports: list[int], pids: list[int], metrics: bool, warm: float,
                    warm_min: int, seconds: float, conns: int, depth: int,
                    rate: float = 0.0) -> dict[str, Any]:
    payload = json.dumps(BODY).encode()
    request = (f"POST /api/v1/task HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {KEY}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
               ).encode() + payload
    load = Load()
    interval = depth * conns / rate if rate else 0.0  # seconds between a connection's batches
    workers = [asyncio.ensure_future(_conn(ports[i % len(ports)], request, depth, load,
                                           interval, interval * i / conns))
               for i in range(conns)]
    t_warm = time.perf_counter()
    await asyncio.sleep(warm)
    while load.warm_ok < warm_min and time.perf_counter() - t_warm < 60:
        await asyncio.sleep(0.05)
    before = await _metrics(ports) if metrics else []
    cpu0 = [cpu_seconds(p) for p in pids]
    own0 = time.process_time()
    t0 = time.perf_counter()
    load.measuring = True
    await asyncio.sleep(seconds)
    load.measuring = False
    wall = time.perf_counter() - t0
    own = time.process_time() - own0
    cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
    after = await _metrics(ports) if metrics else []
    load.stop = True
    await asyncio.gather(*workers, return_exceptions=True)
    return {"counts": load.counts, "lat": load.lat, "wall": wall, "cpu": cpu, "own": own,
            "before": before, "after": after, "warm_ok": load.warm_ok}


def generator(args: tuple[Any, ...], out: Any) -> None:
    out.put(asyncio.run(_generate(*args)))


# ------------------------------------------------------------------ metrics
def histogram(text: str, name: str = "byoa_route_seconds") -> list[tuple[float, int]]:
    out = []
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket"):
            le = line.split('le="')[1].split('"')[0]
            out.append((float("inf") if le == "+Inf" else float(le), int(line.split()[-1])))
    return out


def gauge(text: str, prefix: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(prefix))


def quantile(before: list[str], after: list[str], q: float) -> tuple[float, float]:
    """(bucket upper bound, interpolated) of quantile ``q`` over the window, all ports."""
    buckets: dict[float, int] = {}
    for b_text, a_text in zip(before, after, strict=True):
        b = dict(histogram(b_text))
        for le, cum in histogram(a_text):
            buckets[le] = buckets.get(le, 0) + cum - b.get(le, 0)
    rows = sorted(buckets.items())
    total = rows[-1][1] if rows else 0
    if total == 0:
        return float("nan"), float("nan")
    lo, prev = 0.0, 0
    for le, cum in rows:
        if cum >= q * total:
            if le == float("inf"):
                return le, lo
            inside = cum - prev
            frac = (q * total - prev) / inside if inside else 1.0
            return le, lo + (le - lo) * frac
        lo, prev = le, cum
    return float("inf"), lo


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


# ----------------------------------------------------------------- scenarios
def measure(servers: Servers, opts: argparse.Namespace, *, proxy: bool,
            warm_min: int = 0) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    g = ctx.Process(target=generator, args=((servers.ports, servers.pids, proxy, opts.warm,
                                             warm_min, opts.seconds, opts.conns, opts.depth,
                                             opts.rate),
                                            out))
    g.start()
    r = out.get()
    g.join()
    ok = r["counts"].get(200, 0)
    other = sum(n for s, n in r["counts"].items() if s != 200)
    cpu = sum(r["cpu"])
    row = {"submits_per_s": ok / r["wall"], "non_200": float(other),
           "server_cpu_us_per_submit": cpu / max(ok, 1) * 1e6,
           "server_cpu_share": cpu / r["wall"],
           "generator_cpu_us_per_submit": r["own"] / max(ok, 1) * 1e6,
           "client_p50_ms": pct(r["lat"], 0.50) * 1000,
           "client_p99_ms": pct(r["lat"], 0.99) * 1000}
    if len(servers.pids) > len(servers.ports):
        row["redis_cpu_us_per_submit"] = sum(r["cpu"][len(servers.ports):]) / max(ok, 1) * 1e6
    if proxy:
        bound, interp = quantile(r["before"], r["after"], 0.99)
        row["route_p99_bucket_ms"] = bound * 1000
        row["route_p99_interp_ms"] = interp * 1000
        row["waiting_at_end"] = sum(gauge(t, "byoa_queue_length ") for t in r["after"])
        row["queued_in_window"] = sum(
            gauge(a, 'byoa_tasks_total{event="queued"}')
            - gauge(b, 'byoa_tasks_total{event="queued"}')
            for b, a in zip(r["before"], r["after"], strict=True))
    return row


def run_once(opts: argparse.Namespace, tmp: Path, run: int) -> dict[str, dict[str, float]]:
    from router.stores.embedded import embedded_redis

    idle_file, full_file = tmp / "idle.json", tmp / "full.json"
    idle_file.write_text(json.dumps(accounts_doc(1_000_000)))
    full_file.write_text(json.dumps(accounts_doc(1)))
    res: dict[str, dict[str, float]] = {}

    def go(label: str, servers: Servers, proxy: bool, warm_min: int = 0,
           stop: bool = True) -> None:
        try:
            res[label] = measure(servers, opts, proxy=proxy, warm_min=warm_min)
        finally:
            if stop:
                servers.stop()
        row = res[label]
        print(f"run {run}: {label:<28} {row['submits_per_s']:>7,.0f} submits/s, "
              f"server {row['server_cpu_us_per_submit']:>6,.0f} us/submit, "
              f"generator {row['generator_cpu_us_per_submit']:>5,.0f} us/submit"
              + (f", route p99 <= {row['route_p99_bucket_ms']:g} ms, "
                 f"{row['waiting_at_end']:,.0f} waiting" if proxy else ""),
              file=sys.stderr, flush=True)

    bare = start_bare(2)  # x1 on the first, then x2 on both (one start-up less)
    go("bare x1", Servers(bare.procs[:1], bare.ports[:1]), False, stop=False)
    go("bare x2", bare, False)
    # with --baseline, the idle proxies also run from that tree (alternating which first)
    versions: list[tuple[str, str | None]] = [("", None)]
    if opts.baseline:
        versions.insert(run % 2, (" baseline", opts.baseline))
    for tag, tree in versions if opts.only != "redis" else ():
        go(f"proxy memory x1 idle{tag}",
           start_proxies([["--accounts", str(idle_file)]], 3000, [], tree), True)
    if opts.only != "redis":
        go("proxy memory x1 saturated",
           start_proxies([["--accounts", str(full_file)]], 0.01, []), True, opts.waiting)
    for kind, path, speedup, warm_min, tag, tree in () if opts.only == "memory" else (
            *[("idle", idle_file, 3000.0, 0, tag, tree) for tag, tree in versions],
            ("saturated", full_file, 0.01, opts.waiting, "", None)):
        with embedded_redis() as url:
            import redis

            from router.io.loading import load_accounts
            from router.stores.redis_store import connect, load_into_redis

            client = connect(url)
            accs, policy = load_accounts(str(path))
            load_into_redis(client, accs, policy, time.time(), replace=True)
            redis_pid = int(redis.Redis.from_url(url).info("server")["process_id"])
            client.close()
            go(f"proxy redis x2 {kind}{tag}",
               start_proxies([["--redis", url], ["--redis", url]], speedup, [redis_pid],
                             tree), True, warm_min)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.5, help="measured window per scenario")
    ap.add_argument("--warm", type=float, default=0.5, help="warm-up seconds per scenario")
    ap.add_argument("--conns", type=int, default=32, help="keep-alive connections")
    ap.add_argument("--depth", type=int, default=4, help="pipelined requests per connection")
    ap.add_argument("--waiting", type=int, default=2000,
                    help="tasks queued before a saturated window opens")
    ap.add_argument("--baseline", metavar="DIR",
                    help="also run the idle proxies from the router package in DIR (e.g. "
                    "`git archive REV router | tar -x -C DIR`): before/after in one run")
    ap.add_argument("--rate", type=float, default=0.0, metavar="N",
                    help="offer N submits/s in all (each connection sends its batches at a "
                    "fixed pace) instead of as many as the servers answer: route p99 at a "
                    "load below saturation")
    ap.add_argument("--only", choices=["memory", "redis"],
                    help="run the bare endpoint and only this store's idle and saturated "
                    "scenarios (a shorter run)")
    ap.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.bare_server:
        bare_server(opts.bare_server)
        return
    runs: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(1, opts.runs + 1):
            runs.append(run_once(opts, Path(tmp), run))

    def med(label: str, key: str) -> float:
        return statistics.median(r[label][key] for r in runs)

    def med_ratio(a: str, b: str, key: str) -> float:
        return statistics.median(r[a][key] / r[b][key] for r in runs)

    tags = [t for t in ("memory x1", "redis x2") if f"proxy {t} idle" in runs[0]]

    print(f"medians of {opts.runs} runs, {opts.seconds:g} s windows, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; {opts.conns} keep-alive connections x "
          f"{opts.depth} pipelined"
          + (f", {opts.rate:,.0f} submits/s offered" if opts.rate else ", as fast as answered")
          + "; 20 Mega accounts, fast imagine")
    keys = ("submits_per_s", "server_cpu_us_per_submit", "redis_cpu_us_per_submit",
            "server_cpu_share", "generator_cpu_us_per_submit", "client_p50_ms",
            "client_p99_ms", "route_p99_bucket_ms", "route_p99_interp_ms",
            "queued_in_window", "waiting_at_end", "non_200")
    for label in runs[0]:
        print(f"  {label}")
        for k in keys:
            if k in runs[0][label]:
                print(f"    {k:<30} {med(label, k):>12,.3f}")
    print("ratios (within each run, median)")
    for tag in tags:
        n = tag[-2:]
        print(f"  CPU/submit proxy {tag} idle / bare {n}: "
              f"{med_ratio(f'proxy {tag} idle', f'bare {n}', 'server_cpu_us_per_submit'):.2f}"
              "  (goal <= 2)")
    for tag in tags:
        print(f"  throughput proxy {tag} saturated / idle: "
              f"{med_ratio(f'proxy {tag} saturated', f'proxy {tag} idle', 'submits_per_s'):.2f}"
              "  (goal >= 1)")
    if opts.baseline:
        for tag in tags:
            ratio = med_ratio(f"proxy {tag} idle", f"proxy {tag} idle baseline",
                              "server_cpu_us_per_submit")
            print(f"  CPU/submit proxy {tag} idle, this tree / baseline: {ratio:.2f}")
    for tag in tags:
        print(f"  throughput proxy {tag} idle / bare: "
              f"{med_ratio(f'proxy {tag} idle', 'bare ' + tag[-2:], 'submits_per_s'):.2f}")


if __name__ == "__main__":
    main()
