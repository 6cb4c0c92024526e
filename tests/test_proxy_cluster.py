"""Two ``byoa serve`` processes on one real Redis, and on a real 3-master Redis
Cluster, under thousands of concurrent submits from several async clients
(loopback only).

While the load runs, a sampler reads every account's hash many times a second:
at no sample may an account exceed ``max_in_flight`` (R1), nor its unreserved
fast time go below 0 by more than one task's reservation (R2, R9: a turbo
reservation is the largest). Afterwards every accepted task was routed exactly
once, and the ledger totals equal what one process's ``Ledger`` charges for the
same completions (L1-L3). A second run SIGKILLs one proxy under load: the
survivor adopts its tasks and every accepted task completes, once. A third
restarts both processes one after the other under load (SIGTERM drains).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from proxy_procs import API_KEY, Proxy, proxies, start_proxy
from redis_server import redis_or_cluster

from router.accounts import Mode, seconds_to_ms
from router.cli import main
from router.io.loading import load_accounts
from router.ledger import InFlight, Ledger
from router.stores.cluster import client_for

H = {"x-api-key": API_KEY}
ACCOUNTS = {"accounts": [
    {"id": "f1", "plan": "standard", "setting": "fast", "max_in_flight": 6},
    {"id": "f2", "plan": "pro", "setting": "fast", "max_in_flight": 8},
    {"id": "f3", "plan": "mega", "setting": "turbo", "max_in_flight": 8},
    {"id": "r1", "plan": "pro", "setting": "relax", "max_in_flight": 6},
    {"id": "b1", "plan": "basic", "setting": "fast", "max_in_flight": 4},
    {"id": "f4", "plan": "standard", "setting": "fast", "fast_hours_remaining": 0.2,
     "max_in_flight": 4},
]}
IDS = [a["id"] for a in ACCOUNTS["accounts"]]
LARGEST_RESERVATION_MS = 2 * 60_000  # a turbo imagine (R8, R9)
SERVE = ["--speedup", "3000", "--start-delay", "0.01", "--lease", "2"]
MULT = {"fast": 1, "turbo": 2, "relax": 0}


@pytest.fixture(scope="module", params=["redis", "cluster"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """One redis-server, or a real 3-master Redis Cluster (``redis+cluster://``)."""
    with redis_or_cluster(request.param) as u:
        yield u


def load(url: str, tmp: Path) -> Path:
    f = tmp / "accounts.json"
    f.write_text(json.dumps(ACCOUNTS))
    assert main(["accounts", "load", str(f), "--redis", url, "--replace"]) == 0
    return f


class Sampler(threading.Thread):
    """Reads every account (one atomic HMGET each) until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.r = client_for(url)
        self.stop_flag = threading.Event()
        self.samples = 0
        self.violations: list[str] = []
        self.full_seen = 0

    def run(self) -> None:
        while not self.stop_flag.is_set():
            pipe = self.r.pipeline(transaction=False)
            for acc in IDS:
                pipe.hmget(f"byoa:{{acc:{acc}}}", "in_flight", "max_in_flight", "fast_ms",
                           "reserved_ms")
            for acc, (inf, mx, fast, res) in zip(IDS, pipe.execute(), strict=True):
                if int(inf) > int(mx):
                    self.violations.append(f"{acc}: in_flight {inf} > max_in_flight {mx} (R1)")
                # each task in flight holds at most one reservation (R8, R9; released
                # at its end, L1). Not "unreserved > -LARGEST": a reservation is made
                # only while unreserved > 0 (R2), but the tasks already in flight are
                # then charged their real GPU time (L1, up to 1.2x the estimate here),
                # which can take fast_ms to 0 (L2) under a reservation still held
                if int(res) > int(inf) * LARGEST_RESERVATION_MS:
                    self.violations.append(f"{acc}: reserved {res} ms for {inf} tasks (R9, L1)")
                if int(fast) < 0:
                    self.violations.append(f"{acc}: fast_ms {fast} < 0 (L2)")
                self.full_seen += int(inf) == int(mx)
            self.samples += 1
            time.sleep(0.002)


def body_for(i: int, accepted: list[str]) -> dict[str, Any]:
    kind = i % 20
    inp: dict[str, Any] = {"prompt": f"task {i}"}
    if kind < 8:
        inp["process_mode"] = "fast"
    elif kind < 12:
        inp["process_mode"] = "relax"
    elif kind < 15:
        inp["process_mode"] = "turbo"
    elif kind < 17:
        inp["prompt"] += " --fast"
    elif kind < 18 or not accepted:
        pass  # default: relax (M3)
    else:
        return {"model": "midjourney", "task_type": "upscale",
                "input": {"origin_task_id": accepted[(i * 7919) % len(accepted)], "index": "1"}}
    return {"model": "midjourney", "task_type": "imagine", "input": inp}


class Load:
    """Several async clients, each with its own connection pool, alternating proxies."""

    def __init__(self, targets: list[Proxy], n: int, clients: int = 4,
                 concurrency: int = 24) -> None:
        self.targets, self.n, self.clients, self.concurrency = targets, n, clients, concurrency
        self.accepted: dict[str, str] = {}  # task id -> proxy url
        self.rejected: dict[str, int] = {}
        self.failovers = 0
        self.sent = 0
        self.kill_at: int | None = None
        self.on_kill: Any = None
        self.killed = False
        self._ids: list[str] = []
        self._counter = itertools.count()

    async def _one(self, client: httpx.AsyncClient, i: int) -> None:
        """Like a client behind a load balancer: the other process when one is gone
        or draining, and again a moment later while a replacement starts."""
        body = body_for(i, self._ids)
        for _round in range(400):  # a liveness bound, not a timing
            order = [self.targets[i % 2], self.targets[(i + 1) % 2]]
            for target in order:
                if target.proc.poll() is not None:
                    continue
                try:
                    r = await client.post(f"{target.url}/api/v1/task", json=body, headers=H)
                except httpx.TransportError:
                    self.failovers += 1
                    continue  # the process died under us: the other one takes it
                if r.status_code == 503 and r.json()["data"]["error"]["raw_message"] == \
                        "shutting_down":
                    self.failovers += 1
                    continue  # a draining process: the other one takes it
                if r.status_code == 200:
                    task_id = r.json()["data"]["task_id"]
                    self.accepted[task_id] = target.url
                    self._ids.append(task_id)
                else:
                    code = r.json()["data"]["error"]["raw_message"]
                    self.rejected[code] = self.rejected.get(code, 0) + 1
                return
            await asyncio.sleep(0.05)
        raise AssertionError("no proxy answered")

    async def _worker(self, client: httpx.AsyncClient) -> None:
        while True:
            i = next(self._counter)
            if i >= self.n:
                return
            if self.kill_at is not None and i >= self.kill_at and not self.killed:
                self.killed = self.on_kill()  # False: not yet (tried again next submit)
            await self._one(client, i)

    async def _client(self) -> None:
        async with httpx.AsyncClient(timeout=30,
                                     limits=httpx.Limits(max_connections=self.concurrency)) as c:
            await asyncio.gather(*[self._worker(c) for _ in range(self.concurrency)])

    async def _run(self) -> None:
        await asyncio.gather(*[self._client() for _ in range(self.clients)])

    def run(self) -> None:
        asyncio.run(self._run())


def wait_idle(r: redis.Redis, timeout: float = 90.0) -> None:
    """Until nothing waits in line and no account has a task in flight."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        pipe = r.pipeline(transaction=False)
        pipe.zcard("byoa:{q}:line")
        pipe.zcard("byoa:{q}:claims")
        for acc in IDS:
            pipe.hget(f"byoa:{{acc:{acc}}}", "in_flight")
        vals = [int(v) for v in pipe.execute()]
        quiet = quiet + 1 if not any(vals) else 0
        if quiet >= 5:
            return
        time.sleep(0.2)
    raise AssertionError(f"not idle: line/claims/in-flight {vals}")


def records(r: redis.Redis, ids: list[str]) -> dict[str, dict[str, Any]]:
    pipe = r.pipeline(transaction=False)
    for task_id in ids:
        pipe.get(f"byoa:rec:{task_id}")
    return {t: json.loads(raw) for t, raw in zip(ids, pipe.execute(), strict=True) if raw}


def task_hashes(r: redis.Redis, ids: list[str]) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """Where each task was reserved: (account, task hash) for every account holding it."""
    pipe = r.pipeline(transaction=False)
    for task_id in ids:
        for acc in IDS:
            pipe.hgetall(f"byoa:{{acc:{acc}}}:t:{task_id}")
    res = iter(pipe.execute())
    out: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for task_id in ids:
        out[task_id] = [(acc, h) for acc in IDS if (h := next(res))]
    return out


def in_flight(r: redis.Redis) -> dict[str, dict[str, str]]:
    """Every leased task's hash, by task id."""
    pipe = r.pipeline(transaction=False)
    for acc in IDS:
        pipe.zrange(f"byoa:{{acc:{acc}}}:leases", 0, -1)
    leased = [(acc, str(t)) for acc, ts in zip(IDS, pipe.execute(), strict=True) for t in ts]
    pipe = r.pipeline(transaction=False)
    for acc, t in leased:
        pipe.hgetall(f"byoa:{{acc:{acc}}}:t:{t}")
    return {t: h for (_acc, t), h in zip(leased, pipe.execute(), strict=True)
            if h.get("state") == "flight"}


def accounts_now(r: redis.Redis) -> dict[str, dict[str, str]]:
    return {acc: r.hgetall(f"byoa:{{acc:{acc}}}") for acc in IDS}


def single_process_ledger(accounts_file: Path, done: list[tuple[float, str, str, str, float]],
                          t0: float) -> Ledger:
    """What one process's ledger charges for the same completions, in time order."""
    accounts, policy = load_accounts(accounts_file)
    ledger = Ledger(accounts, policy)
    ledger.start(t0)
    for ended, task_id, acc_id, mode, gpu in sorted(done):
        ledger.tasks[task_id] = InFlight(task_id, acc_id, Mode(mode), 0, ended)
        ledger.accounts[acc_id].in_flight += 1
        ledger.complete(task_id, seconds_to_ms(gpu), ended)
    return ledger


def check_ledger_totals(r: redis.Redis, accounts_file: Path,
                        hashes: dict[str, list[tuple[str, dict[str, str]]]],
                        recs: dict[str, dict[str, Any]]) -> None:
    """Redis' totals equal one process's ledger fed the same completions (L1-L3).

    Every task hash in Redis counts, not only the tasks whose answer a client saw
    (a process may die after routing, before its answer left)."""
    every = {str(k).rsplit(":t:", 1)[1] for k in r.scan_iter(match="byoa:{acc:*}:t:*")}
    assert {t for t, where in hashes.items() if where} <= every
    hashes = {**task_hashes(r, sorted(every - set(hashes))), **hashes}
    done = []
    for task_id, where in hashes.items():
        for acc, h in where:
            if h["state"] != "completed":
                continue
            mode, rec = h["mode"], recs.get(task_id, {})
            usage = rec.get("meta", {}).get("usage")
            if usage:
                gpu = usage["gpu_seconds"]
            else:  # the record was never written: take the charge the script kept
                gpu = int(h["charged_ms"]) / MULT[mode] / 1000 if MULT[mode] else 0.0
            ended = _ended(rec) if rec.get("meta", {}).get("ended_at") else float(h["at"])
            done.append((ended, task_id, acc, mode, gpu))
    reference = single_process_ledger(accounts_file, done, time.time() - 3600)
    final = accounts_now(r)
    for acc in IDS:
        h, ref = final[acc], reference.accounts[acc]
        period = json.loads(h["period"])
        charged = sum(int(th.get("charged_ms", 0)) for w in hashes.values()
                      for a, th in w if a == acc and th["state"] == "completed")
        assert int(h["fast_ms"]) == ref.fast_ms, (acc, charged, ref.period, period)
        assert ref.period is not None
        assert (period["used_ms"], period["overdraft_ms"]) == (ref.period.used_ms,
                                                               ref.period.overdraft_ms), acc
        assert h["setting"] == ref.setting.value, f"{acc}: flip (L3) differs"
        assert (int(h["in_flight"]), int(h["reserved_ms"])) == (0, 0), acc
        assert r.zcard(f"byoa:{{acc:{acc}}}:leases") == 0, acc


def wait_final(r: redis.Redis, ids: list[str], timeout: float = 120.0,
               all_must_end: bool = True) -> dict[str, Any]:
    """The records once every one is final (a liveness bound, generous for a loaded
    machine); with ``all_must_end=False``, whatever they are at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        recs = records(r, ids)
        open_ = [t for t in ids if recs[t]["status"] not in ("completed", "failed")]
        if not open_:
            return recs
        if time.monotonic() > deadline:
            if not all_must_end:
                return recs
            raise AssertionError(f"{len(open_)} of {len(ids)} tasks not final after "
                                 f"{timeout:.0f} s, e.g. {open_[0]}: {recs[open_[0]]['status']}")
        time.sleep(0.2)


def _ended(rec: dict[str, Any]) -> float:
    from router.timeutil import parse_time

    return parse_time(rec["meta"]["ended_at"])


def test_two_proxies_share_one_redis_under_thousands_of_submits_R1_R2_L1(
        url: str, tmp_path: Path) -> None:
    accounts_file = load(url, tmp_path)
    r = client_for(url)
    if url.startswith("redis+cluster://"):  # the accounts spread over the shards
        shards = {r.get_node_from_key(f"byoa:{{acc:{a}}}").name for a in IDS}  # type: ignore[attr-defined]
        assert len(shards) >= 2, shards
    with proxies([["--redis", url, *SERVE], ["--redis", url, *SERVE]], str(tmp_path)) as ps:
        sampler = Sampler(url)
        sampler.start()
        load_run = Load(ps, n=2400)
        load_run.run()
        wait_idle(r)
        sampler.stop_flag.set()
        sampler.join()
        ids = list(load_run.accepted)
        recs = wait_final(r, ids)
        logs = "".join(p.output() for p in ps)
    assert sampler.violations == []
    assert sampler.samples > 50 and sampler.full_seen > 0  # the pool really was saturated
    assert len(ids) + sum(load_run.rejected.values()) == 2400
    assert len(ids) > 2000
    hashes = task_hashes(r, ids)
    completed: dict[str, tuple[str, dict[str, Any]]] = {}
    for task_id in ids:
        rec, where = recs[task_id], hashes[task_id]
        if rec["status"] == "completed":
            assert len(where) == 1, f"{task_id} routed {len(where)} times"
            acc, h = where[0]
            assert acc == rec["meta"]["account_id"] and h["state"] == "completed"
            gpu, mode = rec["meta"]["usage"]["gpu_seconds"], rec["meta"]["effective_mode"]
            assert int(h["charged_ms"]) == seconds_to_ms(gpu) * MULT[mode]  # L1
            completed[task_id] = (acc, rec)
        else:  # rejected when its turn came (e.g. a child pinned to a flipped Basic)
            assert where == [] and rec["error"]["detail"]["error_code"], rec["error"]
    assert len(completed) > 2000
    check_ledger_totals(r, accounts_file, hashes, recs)
    assert "Traceback" not in logs


def check_each_task_ran_once(ids: list[str], recs: dict[str, Any],
                             hashes: dict[str, list[tuple[str, dict[str, str]]]]) -> int:
    """Every accepted task completed, started upstream once and charged once (L1);
    the only other end is a rejection by the router when its turn came in the
    line (as in the run without a kill). A reservation released by an adoption
    (``expired``) never started. The number completed."""
    completed = 0
    for task_id in ids:
        rec, where = recs[task_id], hashes[task_id]
        live = [(acc, h) for acc, h in where if h["state"] != "expired"]
        assert len(live) <= 1, f"{task_id} reserved twice: {where}"
        for _acc, h in where:
            if h["state"] == "expired":  # released by an adoption before it started
                assert "job" not in h and "charged_ms" not in h, h
        if rec["status"] == "completed":
            assert len(live) == 1, (task_id, where)
            acc, h = live[0]
            assert h["state"] == "completed" and acc == rec["meta"]["account_id"]
            assert h["starts"] == "1", f"{task_id} started {h['starts']} times upstream"
            gpu, mode = rec["meta"]["usage"]["gpu_seconds"], rec["meta"]["effective_mode"]
            assert int(h["charged_ms"]) == seconds_to_ms(gpu) * MULT[mode]  # L1
            completed += 1
        else:  # never lease_expired: a router rejection (with its rule) from the line
            assert rec["status"] == "failed" and live == [], rec
            assert rec["error"]["detail"]["error_code"], rec["error"]
    return completed


def adoption_seconds(log: str, since: float) -> float | None:
    """Seconds from ``since`` to the survivor's last "adopted" log line."""
    from datetime import datetime

    last = None
    for line in log.splitlines():
        if " adopted " in line and "tasks of a stopped process" in line:
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            last = stamp - since
    return last


def test_sigkill_one_proxy_under_load_survivor_adopts_every_task_L1_R7(
        url: str, tmp_path: Path) -> None:
    accounts_file = load(url, tmp_path)
    r = client_for(url)
    killed_at: list[float] = []
    held: list[str] = []  # tasks in flight on the dead process when it died
    owner: list[str] = []  # the dead process's owner id, once found

    def kill(p: Proxy) -> bool:
        """Freeze the process and note the tasks it holds in flight (leased, owner
        it); kill it only when it holds some (else let it go on: the next submit
        tries again)."""
        p.proc.send_signal(signal.SIGSTOP)
        if not owner:  # its owner id, from the newest of its tasks that was reserved
            mine = [t for t, where in load_run.accepted.items() if where == p.url]
            for k in range(len(mine), 0, -20):  # (its latest ones may all wait in line)
                batch = task_hashes(r, mine[max(0, k - 20):k])
                owner.extend(h["owner"] for hs in batch.values() for _a, h in hs
                             if h.get("owner"))
                if owner:
                    break
        held.extend(t for t, h in in_flight(r).items() if owner and h.get("owner") == owner[0])
        if not held:
            p.proc.send_signal(signal.SIGCONT)
            return False
        p.kill()
        killed_at.append(time.time())
        return True

    with proxies([["--redis", url, *SERVE], ["--redis", url, *SERVE]], str(tmp_path)) as ps:
        dead, survivor = ps
        load_run = Load(ps, n=1500)
        load_run.kill_at = 500
        load_run.on_kill = lambda: kill(dead)
        load_run.run()
        assert dead.proc.poll() is not None  # it really died mid-run
        wait_idle(r)  # the survivor adopted, ran and charged what the dead one held
        ids = list(load_run.accepted)
        recs = wait_final(r, ids)  # every accepted task ends (liveness bound only)
        # the survivor keeps serving after the kill
        after = httpx.post(f"{survivor.url}/api/v1/task", headers=H, json=body_for(0, []))
        assert after.status_code == 200
        survivor_log = survivor.output()
    assert len(ids) + sum(load_run.rejected.values()) == 1500
    hashes = task_hashes(r, ids)
    completed = check_each_task_ran_once(ids, recs, hashes)
    assert "lease_expired" not in json.dumps(recs)  # none failed because a process died
    adopted = adoption_seconds(survivor_log, killed_at[0])
    assert held and adopted is not None  # the dead process held tasks, and they were adopted
    print(f"\nSIGKILL with {len(held)} tasks in flight on the dead process: {completed} of "
          f"{len(ids)} accepted tasks completed; "
          f"adoption done {adopted:.2f} s after the kill (--lease 2)")
    assert len(set(load_run.accepted.values())) == 2
    check_ledger_totals(r, accounts_file, hashes, recs)  # nothing charged twice
    assert "Traceback" not in survivor_log
    assert completed > 1000


def test_rolling_restart_under_load_loses_and_duplicates_nothing_L1(
        url: str, tmp_path: Path) -> None:
    """SIGTERM one process, start its replacement, then the other, while the load
    runs: the first hands everything over at once (--drain-seconds 0), the second
    lets its tasks finish first; new submits meanwhile go to the other process."""
    accounts_file = load(url, tmp_path)
    r = client_for(url)
    drains = ["0", "5"]
    started: list[Proxy] = []
    logs: list[str] = []
    try:
        with proxies([["--redis", url, *SERVE, "--drain-seconds", d] for d in drains],
                     str(tmp_path)) as ps:
            load_run = Load(list(ps), n=2000)
            loader = threading.Thread(target=load_run.run)
            loader.start()
            while len(load_run.accepted) < 300 and loader.is_alive():
                time.sleep(0.01)
            for k in (0, 1):  # one after the other, under load
                old = load_run.targets[k]
                old.proc.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 60  # liveness bound; poll(): the load
                while old.proc.poll() is None:  # thread polls the same process
                    assert time.monotonic() < deadline, "a draining process did not exit"
                    time.sleep(0.05)
                logs.append(old.output())
                new = start_proxy(["--redis", url, *SERVE, "--drain-seconds", drains[k]],
                                  str(tmp_path), f"proxy{k}-new")
                started.append(new)
                load_run.targets[k] = new
            restarted_at = len(load_run.accepted)
            loader.join(timeout=300)
            assert not loader.is_alive()
            wait_idle(r)
            ids = list(load_run.accepted)
            recs = wait_final(r, ids)
        logs += [p.output() for p in started]
    finally:
        for p in started:
            p.stop()
    assert len(ids) + sum(load_run.rejected.values()) == 2000
    assert restarted_at < len(ids)  # the load went on after both restarts
    handed = [int(m) for m in re.findall(r"handed (\d+) tasks over", "".join(logs[:2]))]
    assert len(handed) == 2
    hashes = task_hashes(r, ids)
    completed = check_each_task_ran_once(ids, recs, hashes)
    assert "lease_expired" not in json.dumps(recs)
    print(f"\nrolling restart: {completed} of {len(ids)} accepted tasks completed; "
          f"handed over {handed}; {load_run.failovers} submits failed over")
    check_ledger_totals(r, accounts_file, hashes, recs)
    assert "Traceback" not in "".join(logs)
    assert completed > 1500
