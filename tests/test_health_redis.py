"""H1-H4 on shared state: the Redis store with several processes' views.

Two ``RedisStore`` objects on one real ``redis-server`` play two proxy processes
whose mirrors are stale on purpose (long refresh interval), so every race the
reservation script must settle for a daily cap (H2) or a gap (H3) really
happens; a timed status (H1) is recovered once however many processes see the
moment; an H4 fail is one compare-and-set followed by a new reservation of the
same task id. The last tests run two OS processes submitting concurrently on a
paced pool, on one Redis and on a 3-master Redis Cluster, while a sampler reads
every account's counters.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _util import Clock
from redis_server import redis_or_cluster, redis_server

from router.accounts import Account, Plan, Setting, Status, hours_to_ms
from router.errors import NotInFlight
from router.ledger import Policy
from router.stores.base import HealthStore
from router.stores.cluster import client_for
from router.stores.memory import MemoryStore
from router.stores.redis_store import RedisStore, connect, load_into_redis
from router.timeutil import parse_time

T0 = parse_time("2026-11-30T20:00:00Z")
DAY = 86_400


def body(mode: str = "fast", prompt: str = "a cat") -> dict[str, Any]:
    return {"model": "midjourney", "task_type": "imagine",
            "input": {"prompt": prompt, "process_mode": mode}}


def child(origin: str) -> dict[str, Any]:
    return {"model": "midjourney", "task_type": "upscale",
            "input": {"origin_task_id": origin, "index": "1"}}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with redis_server() as u:
        yield u


def acc(id_: str, **kw: Any) -> Account:
    kw.setdefault("max_in_flight", 3)
    kw.setdefault("fast_ms", hours_to_ms(1))
    return Account(id_, kw.pop("plan", Plan.STANDARD), **kw)


def two(url: str, accounts: list[Account], start: float = T0) -> tuple[RedisStore, RedisStore]:
    """Two processes' stores whose mirrors never refresh by themselves."""
    client = connect(url)
    client.flushdb()
    load_into_redis(client, accounts, Policy(), start)
    kw: dict[str, Any] = {"refresh_interval": 3600.0, "clock": Clock()}
    return (RedisStore(connect(url), owner="A", **kw),
            RedisStore(connect(url), owner="B", **kw))


def counts(store: RedisStore) -> dict[str, tuple[int, int]]:
    return {a.id: (a.jobs_day, a.jobs_today) for a in store.accounts()}


# ------------------------------------------------------------------ H2, H3
def test_two_processes_never_both_take_the_last_job_of_the_day_H2(url: str) -> None:
    """c1 and c2 each take one job a day. B's stale mirror still sees c1 free
    after A took it: the script refuses c1 and B gets c2; A, stale about c2 in
    turn, is refused there and gets pool_saturated. A pinned child ignores the
    cap but adds to the count."""
    a, b = two(url, [acc("c1", max_jobs_per_day=1), acc("c2", max_jobs_per_day=1)])
    day = int(T0 // DAY)
    assert a.submit("t1", body(), T0).account_id == "c1"
    d2 = b.submit("t2", body(), T0 + 1)
    assert d2.account_id == "c2" and b.lost_races == 1
    d3 = a.submit("t3", body(), T0 + 2)
    assert d3.error is not None and d3.error.code == "pool_saturated" and a.lost_races == 1
    assert d3.explanation is not None and "daily cap (H2)" in d3.explanation
    assert counts(a) == {"c1": (day, 1), "c2": (day, 1)}
    kid = b.submit("t4", child("t1"), T0 + 3)  # R7: pinned, beyond the cap
    assert kid.account_id == "c1" and kid.pinned
    assert counts(b)["c1"] == (day, 2)


def test_the_count_starts_again_at_midnight_utc_across_processes_H2(url: str) -> None:
    midnight = (int(T0 // DAY) + 1) * DAY
    a, b = two(url, [acc("c1", max_jobs_per_day=1)], start=midnight - 60)
    assert a.submit("t1", body(), midnight - 1.0).account_id == "c1"
    late = b.submit("t2", body(), midnight - 0.5)  # stale: c1 looks free
    assert late.error is not None and late.error.code == "pool_saturated"
    assert b.submit("t3", body(), float(midnight)).account_id == "c1"
    assert counts(a)["c1"] == (midnight // DAY, 1)


def test_a_task_routed_on_a_day_already_left_behind_waits_for_that_day_H2(url: str) -> None:
    """A process whose routing time is still yesterday while another already
    counted today's first job cannot add to a day whose count is gone: the
    script refuses, and the process routes again at 00:00 UTC (L6: time moves
    on), where the account still has room under its cap."""
    midnight = (int(T0 // DAY) + 1) * DAY
    a, b = two(url, [acc("c1", max_jobs_per_day=5)], start=midnight - 60)
    assert a.submit("t1", body(), float(midnight)).account_id == "c1"
    d = b.submit("t2", body(), midnight - 0.5)  # B's clock is behind A's
    assert d.account_id == "c1" and b.lost_races == 1
    assert counts(a)["c1"] == (midnight // DAY, 2)
    assert connect(url).hget("byoa:{acc:c1}:t:t2", "at") == repr(float(midnight))


def test_two_processes_never_land_inside_one_gap_H3(url: str) -> None:
    """g1 and g2 need 60 s between two routed tasks. B (stale) tries g1 one
    second after A took it: refused, g2. A, stale about g2, is refused there.
    At exactly 60 s after A's task g1 is available again."""
    a, b = two(url, [acc("g1", min_gap_s=60.0), acc("g2", min_gap_s=60.0)])
    assert a.submit("t1", body(), T0).account_id == "g1"
    assert b.submit("t2", body(), T0 + 1).account_id == "g2" and b.lost_races == 1
    d3 = a.submit("t3", body(), T0 + 30)
    assert d3.error is not None and d3.error.code == "pool_saturated"
    assert d3.explanation is not None and "gap (H3)" in d3.explanation
    assert b.submit("t4", body(), T0 + 60).account_id == "g1"
    assert {x.id: x.last_routed_at for x in a.accounts()} == {"g1": T0 + 60, "g2": T0 + 1}


def test_a_batch_from_a_stale_process_respects_the_gap_H3(url: str) -> None:
    a, b = two(url, [acc("g1", min_gap_s=10.0), acc("g2", min_gap_s=10.0),
                     acc("g3", min_gap_s=10.0)])
    first = a.submit_many([(f"x{i}", body(), None) for i in range(2)], T0)
    assert [d.account_id for d in first] == ["g1", "g2"]
    second = b.submit_many([(f"y{i}", body(), None) for i in range(3)], T0 + 5)
    # B's stale mirror spreads y0-y2 over g1-g3; g1 and g2 are inside their gaps
    assert [d.account_id for d in second] == [None, None, "g3"]
    assert b.lost_races == 2
    assert [x.jobs_today for x in a.accounts()] == [1, 1, 1]


# ---------------------------------------------------------------------- H1
def test_a_timed_status_recovers_once_across_processes_H1(url: str) -> None:
    """Five processes see the moment; one flips the account, one notification."""
    client = connect(url)
    client.flushdb()
    load_into_redis(client, [acc("a1"), acc("a2")], Policy(), T0)
    stores = [RedisStore(connect(url), owner=f"p{i}", refresh_interval=3600.0,
                         clock=Clock()) for i in range(5)]
    stores[0].set_status_until("a1", Status.BANNED, T0, T0 + 100)
    for s in stores[1:]:
        s.refresh()  # every mirror knows the pending recovery
    assert isinstance(stores[4], HealthStore)  # what the proxy asks of a store for H1/H4
    assert stores[4].pending_recoveries() == {"a1": T0 + 100}
    for s in stores:
        s.advance(T0 + 99)
    assert all(s.ledger.accounts["a1"].status is Status.BANNED for s in stores)
    for s in stores:
        s.advance(T0 + 100)
    notes = [n for s in stores for n in s.drain()[0] if n.type == "account_recovered"]
    assert [(n.account_id, n.at) for n in notes] == [("a1", T0 + 100)]
    recs = [r for s in stores for r in s.drain_recoveries()]
    assert [(r.account_id, r.at, r.status_was) for r in recs] == [("a1", T0 + 100,
                                                                   Status.BANNED)]
    assert all(s.ledger.accounts["a1"].status is Status.ACTIVE for s in stores)
    assert all(s.pending_recoveries() == {} for s in stores)
    assert stores[3].submit("t1", body(), T0 + 101).error is None


def test_a_recovery_replaced_by_another_process_does_not_happen_H1(url: str) -> None:
    a, b = two(url, [acc("a1"), acc("a2")])
    a.set_status_until("a1", Status.BANNED, T0, T0 + 100)
    b.refresh()
    b.set_status("a1", Status.CAPTCHA_REQUIRED, T0 + 10)  # no until: cancels it
    a.advance(T0 + 200)  # A's mirror still has the old recovery: the script says no
    b.advance(T0 + 200)
    assert [n for s in (a, b) for n in s.drain()[0] if n.type == "account_recovered"] == []
    assert a.ledger.accounts["a1"].status is Status.CAPTCHA_REQUIRED
    b.set_status_until("a1", Status.DISABLED, T0 + 300, T0 + 400)  # replaced below
    a.refresh()
    a.set_status_until("a1", Status.DISABLED, T0 + 350, T0 + 500)
    b.advance(T0 + 450)
    assert b.ledger.accounts["a1"].status is Status.DISABLED
    b.advance(T0 + 500)
    a.advance(T0 + 500)
    notes = [(n.account_id, n.at) for s in (a, b) for n in s.drain()[0]
             if n.type == "account_recovered"]
    assert notes == [("a1", T0 + 500)]


def test_until_must_be_later_and_only_with_an_outage_status_H1(url: str) -> None:
    a, _b = two(url, [acc("a1")])
    with pytest.raises(ValueError, match="H1"):
        a.set_status_until("a1", Status.BANNED, T0, T0)
    with pytest.raises(ValueError, match="H1"):
        a.set_status_until("a1", Status.ACTIVE, T0, T0 + 10)


# ---------------------------------------------------------------------- H4
def test_fast_exhausted_fail_from_another_process_reroutes_the_same_id_H4(url: str) -> None:
    """A reserved t1 on f1; B receives the upstream "no fast time": nothing is
    charged, f1's fast time is zeroed as a correction and flipped (L3), t1 is
    routed again under its id. A second delivery changes nothing (L1)."""
    a, b = two(url, [acc("f1", fast_ms=hours_to_ms(0.5)), acc("f2", plan=Plan.PRO)])
    assert a.submit("t1", body(), T0).account_id == "f1"
    out, d = b.fail_fast_exhausted("t1", T0 + 5)
    assert (out.account_id, out.charged_ms, out.fast_ms, out.setting, out.flipped) == (
        "f1", 0, 0, Setting.RELAX, True)
    assert d is not None and (d.task_id, d.account_id, d.effective_mode) == (
        "t1", "f2", d.requested_mode)
    with pytest.raises(NotInFlight):
        a.fail_fast_exhausted("t1", T0 + 6)
    notes = [n.type for s in (a, b) for n in s.drain()[0]]
    assert notes.count("mj_bot_no_fasthour") == 1
    f1, f2 = a.accounts()
    assert (f1.in_flight, f1.fast_ms, f2.in_flight) == (0, 0, 1)
    assert f1.period is not None and f1.period.corrected_ms == hours_to_ms(0.5)
    assert f1.period.used_ms == 0
    done = a.complete("t1", 60.0, T0 + 70)  # the new reservation, charged once
    assert (done.account_id, done.charged_ms) == ("f2", 60_000)


def test_fast_exhausted_matches_the_memory_store_step_by_step_H4(url: str) -> None:
    """The same script on both stores gives the same outcomes and decisions: a
    re-route back onto the flipped account as relax with fallback (its task hash
    reserved again under the same id), a pinned child that falls back to relax
    (R7), then a fast_exhausted fail of a task now running as relax, which is an
    ordinary fail, and a repeat, which is not in flight (L1)."""
    def pool() -> list[Account]:
        return [acc("f1", fast_ms=hours_to_ms(0.5), max_in_flight=2)]
    mem = MemoryStore(pool(), start_at=T0)
    red, _ = two(url, pool())
    script: list[tuple[str, tuple[Any, ...]]] = [
        ("submit", ("t1", body("fast"), T0)),
        ("submit", ("t2", child("t1"), T0 + 1)),
        ("fail_fast_exhausted", ("t1", T0 + 2)),
        ("fail_fast_exhausted", ("t2", T0 + 3)),
        ("fail_fast_exhausted", ("t1", T0 + 4)),
        ("fail_fast_exhausted", ("t1", T0 + 5)),
        ("submit", ("t3", body("relax"), T0 + 6)),
        ("complete", ("t2", 30.0, T0 + 7)),
    ]
    seen = []
    for op, args in script:
        got = []
        for store in (mem, red):
            try:
                got.append(getattr(store, op)(*args))
            except NotInFlight as exc:
                got.append(exc.code)
        assert repr(got[0]) == repr(got[1]), op
        seen.append(got[0])
    assert seen[2][1].account_id == "f1" and seen[2][1].fallback  # re-routed as relax
    assert seen[3][1].pinned and seen[3][1].fallback  # the child stays on f1 (R7)
    assert seen[4][1] is None and seen[5] == "not_in_flight"
    state = [(a.setting, a.fast_ms, a.in_flight, a.period) for a in mem.accounts()]
    assert state == [(a.setting, a.fast_ms, a.in_flight, a.period) for a in red.accounts()]
    assert state[0][2] == 1  # t3
    assert [(n.type, n.at) for n in mem.drain()[0]] == [(n.type, n.at) for n in red.drain()[0]]


# ------------------------------------------------ two OS processes, a sampler
BASE = parse_time("2026-12-01T23:58:00Z")  # the run crosses 00:00 UTC
SPEEDUP = 200.0  # routing seconds per real second
RUN_S = 3.0  # real seconds of load per process
PACED = [
    acc("c1", max_jobs_per_day=6),
    acc("c2", plan=Plan.PRO, max_jobs_per_day=4, min_gap_s=30.0),
    acc("c3", setting=Setting.RELAX, max_jobs_per_day=5, min_gap_s=10.0),
    acc("g1", plan=Plan.PRO, min_gap_s=40.0),
    acc("g2", plan=Plan.MEGA, setting=Setting.TURBO, max_jobs_per_day=8, min_gap_s=15.0),
]
CAPS = {a.id: a.max_jobs_per_day for a in PACED}
GAPS = {a.id: a.min_gap_s for a in PACED}


def worker(url: str, owner: str, wall0: Any, ready: Any, go: Any, out: str) -> None:
    """One process: batches of root submits on the shared pool, completions of
    the tasks it routed a little later; writes its decisions to ``out``."""
    store = RedisStore.from_url(url, owner=owner, refresh_interval=0.2)
    ready.put(owner)
    go.wait()

    def now() -> float:
        return BASE + (time.time() - wall0.value) * SPEEDUP

    accepted: list[tuple[str, str]] = []
    errors: dict[str, int] = defaultdict(int)
    open_tasks: list[tuple[float, str]] = []
    n = 0
    while time.time() - wall0.value < RUN_S:
        items: list[tuple[str, Any, float | None]] = []
        for _ in range(1 + n % 3):
            n += 1
            items.append((f"{owner}-{n}", body(("fast", "relax", "turbo")[n % 3]), None))
        for d in store.submit_many(items, now()):
            if d.error is None:
                accepted.append((d.task_id, d.account_id or ""))
                open_tasks.append((time.time(), d.task_id))
            else:
                errors[d.error.code] += 1
        due = [t for at, t in open_tasks if time.time() - at > 0.05]
        if due:
            store.complete_many([(t, 20.0) for t in due], now())
            open_tasks = [(at, t) for at, t in open_tasks if t not in set(due)]
        time.sleep(0.002)
    Path(out).write_text(json.dumps({"accepted": accepted, "errors": errors,
                                     "lost_races": store.lost_races}))
    store.close()


class Sampler(threading.Thread):
    """Reads every account's counters (one atomic HMGET each) until stopped."""

    def __init__(self, url: str, pool: list[Account] | None = None) -> None:
        super().__init__(daemon=True)
        self.pool = pool or PACED
        self.r = client_for(url)
        self.stop_flag = threading.Event()
        self.samples = 0
        self.violations: list[str] = []
        self.at_cap = 0
        self.last: dict[str, tuple[int, float]] = {}

    def run(self) -> None:
        while not self.stop_flag.is_set():
            pipe = self.r.pipeline(transaction=False)
            for a in self.pool:
                pipe.hmget(f"byoa:{{acc:{a.id}}}", "jobs_day", "jobs_today", "last_routed",
                           "in_flight")
            for a, (day, jobs, last, inf) in zip(self.pool, pipe.execute(), strict=True):
                cap = a.max_jobs_per_day
                if cap is not None and int(jobs) > cap:
                    self.violations.append(f"{a.id}: {jobs} jobs on day {day} > cap {cap} (H2)")
                self.at_cap += cap is not None and int(jobs) == cap
                if int(inf) > a.max_in_flight:
                    self.violations.append(f"{a.id}: in_flight {inf} (R1)")
                seen = (int(day), float(last) if last else 0.0)
                if a.id in self.last and seen < self.last[a.id]:
                    self.violations.append(f"{a.id}: counters went back {seen} (H2/H3)")
                self.last[a.id] = seen
            self.samples += 1
            time.sleep(0.002)


@pytest.fixture(scope="module", params=["redis", "cluster"])
def any_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """One redis-server, or a real 3-master Redis Cluster (``redis+cluster://``)."""
    with redis_or_cluster(request.param) as u:
        yield u


def test_two_processes_never_exceed_a_cap_nor_break_a_gap_H2_H3(
        any_url: str, tmp_path: Path) -> None:
    """H2: no account ever routes more root tasks in a UTC day than its cap (the
    sampler's reads, and the routing times recorded on the tasks); H3: no two
    root tasks on one account are routed closer than its gap (recorded times).
    The run crosses 00:00 UTC, so the counts start again once."""
    load_into_redis(client_for(any_url), PACED, Policy(), BASE, replace=True)
    ctx = multiprocessing.get_context("spawn")
    wall0, ready, go = ctx.Value("d", 0.0), ctx.Queue(), ctx.Event()
    outs = [tmp_path / f"{o}.json" for o in ("A", "B")]
    procs = [ctx.Process(target=worker, args=(any_url, o, wall0, ready, go, str(f)))
             for o, f in zip(("A", "B"), outs, strict=True)]
    for p in procs:
        p.start()
    assert sorted(ready.get(timeout=120) for _ in procs) == ["A", "B"]  # pool read
    sampler = Sampler(any_url)
    sampler.start()
    wall0.value = time.time()
    go.set()
    for p in procs:
        p.join(timeout=120)
    sampler.stop_flag.set()
    sampler.join()
    assert [p.exitcode for p in procs] == [0, 0]
    results = [json.loads(f.read_text()) for f in outs]
    assert sampler.violations == []
    r = client_for(any_url)
    routed: dict[str, list[float]] = defaultdict(list)
    for res in results:
        for task_id, acc_id in res["accepted"]:
            routed[acc_id].append(float(r.hget(f"byoa:{{acc:{acc_id}}}:t:{task_id}", "at")))
    per_day: dict[tuple[str, int], int] = defaultdict(int)
    for acc_id, times in routed.items():
        times.sort()
        for t in times:
            per_day[acc_id, int(t // DAY)] += 1
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g >= GAPS[acc_id] for g in gaps), (acc_id, min(gaps))
    over = {k: v for k, v in per_day.items() if v > (CAPS[k[0]] or v)}
    assert over == {}
    # the load really pressed on the rules: both days seen, caps reached, races lost
    assert {day for _acc, day in per_day} == {int(BASE // DAY), int(BASE // DAY) + 1}
    assert any(v == CAPS[k[0]] for k, v in per_day.items())  # a cap was reached
    assert sampler.samples > 50 and sampler.at_cap > 0
    assert sum(res["lost_races"] for res in results) > 0
    assert sum(res["errors"].get("pool_saturated", 0) for res in results) > 0


# ------------------------------------------------- two ``byoa serve`` processes
SERVED = {"accounts": [
    {"id": "s1", "plan": "standard", "max_in_flight": 3, "max_jobs_per_day": 5,
     "min_gap_seconds": 0.2},
    {"id": "s2", "plan": "pro", "max_in_flight": 3, "max_jobs_per_day": 4},
    {"id": "s3", "plan": "pro", "setting": "relax", "max_in_flight": 3,
     "max_jobs_per_day": 6, "min_gap_seconds": 0.15},
    {"id": "s4", "plan": "mega", "setting": "turbo", "max_in_flight": 3,
     "min_gap_seconds": 0.3},
]}


async def _post_all(urls: list[str], n: int) -> dict[str, int]:
    """``n`` root submits from 16 concurrent clients, alternating the processes;
    the answers' status codes (200: accepted or waiting in line, R5)."""
    import asyncio

    import httpx
    from proxy_procs import API_KEY

    codes: dict[str, int] = defaultdict(int)
    counter = itertools.count()

    async def one(client: httpx.AsyncClient) -> None:
        while (i := next(counter)) < n:
            r = await client.post(f"{urls[i % 2]}/api/v1/task", json=body(
                ("fast", "relax", "turbo")[i % 3], f"task {i}"), headers={"x-api-key": API_KEY})
            codes[str(r.status_code)] += 1

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*[one(client) for _ in range(16)])
    return codes


def test_two_byoa_serve_processes_never_exceed_a_cap_nor_break_a_gap_H2_H3(
        any_url: str, tmp_path: Path) -> None:
    """Two real ``byoa serve`` processes on the shared pool, concurrent clients,
    routing on the wall clock: every task reserved on an account (each task hash
    in Redis, with the routing time the process recorded) respects the account's
    daily cap per UTC day (H2) and its minimum gap (H3); the sampler never sees
    a count above a cap."""
    import asyncio

    from proxy_procs import proxies

    from router.cli import main
    from router.io.loading import load_accounts

    f = tmp_path / "accounts.json"
    f.write_text(json.dumps(SERVED))
    assert main(["accounts", "load", str(f), "--redis", any_url, "--replace"]) == 0
    pool, _policy = load_accounts(f)
    serve = ["--redis", any_url, "--speedup", "3000", "--start-delay", "0.01", "--lease", "2"]
    with proxies([serve, serve], str(tmp_path)) as ps:
        sampler = Sampler(any_url, pool)
        sampler.start()
        codes = asyncio.run(_post_all([p.url for p in ps], 240))
        time.sleep(0.5)  # the lines go on dispatching a moment: the sampler watches
        sampler.stop_flag.set()
        sampler.join()
    assert sampler.violations == []
    assert codes["200"] > 0 and sampler.samples > 20 and sampler.at_cap > 0
    r = client_for(any_url)
    per_day: dict[tuple[str, int], int] = defaultdict(int)
    for a in pool:
        keys = list(r.scan_iter(match=f"byoa:{{acc:{a.id}}}:t:*"))
        times = sorted(float(r.hget(str(k), "at")) for k in keys)
        for t in times:
            per_day[a.id, int(t // DAY)] += 1
        gaps = [y - x for x, y in itertools.pairwise(times)]
        assert all(g >= a.min_gap_s for g in gaps), (a.id, min(gaps))
        assert a.max_jobs_per_day is None or all(
            n <= a.max_jobs_per_day for (acc_id, _d), n in per_day.items() if acc_id == a.id)
    assert any(n == a.max_jobs_per_day for a in pool for (acc_id, _d), n in per_day.items()
               if acc_id == a.id)  # a cap was reached: the load pressed on H2
