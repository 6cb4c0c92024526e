"""Benchmark: route + reserve + complete per decision, indexed engine vs linear scan.

    make bench                      # or: .venv/bin/python benchmarks/bench_router.py
    .venv/bin/python benchmarks/bench_router.py --sizes 10 1000 --runs 3

For pools of 10, 1k, 10k and 100k accounts (mixed plans, settings, statuses and
backups, seeded), one *decision* is ``Pool.submit`` (request validation, mode
resolution, routing, reservation) plus the ``Pool.complete`` of an earlier task,
so the pool sits in a steady state with a window of tasks in flight; decisions
are 5 s apart, so inactive windows open and close and some renewals fall due
during a run. Requests
mix fast (50 %), relax (30 %) and turbo (20 %). The baseline is the naive
reference in the same run: ``Pool(indexed=False)``, a linear scan applying the
same rules. Each configuration is timed ``--runs`` times on a fresh pool; the
table reports the median per-decision time. The scan gets fewer decisions
(it is O(n) per decision). ``explain=False`` is the hot path; ``explain=True``
hands out the full per-account ``rejections`` map (X1), a copy of a map kept up
to date (O(n) at C speed), and is reported beside it; the first explanation
of a pool builds that map and is not timed.

A second table gives, per strategy, the indexed ``explain=False`` time at 10,
10k and 100k accounts (``--strategy-sizes``) and its ratio to ``least_loaded``
measured in the same run; a last line times ``byoa replay``'s loop (replay with
explanations, every record written as JSON) in ms per event on 10k accounts.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections import deque
from functools import partial
from typing import Any

from counting import count_python

from router import compiled
from router.accounts import (
    PLAN_ALLOWANCE_MS,
    PLAN_MAX_IN_FLIGHT,
    Account,
    InactiveWindow,
    Plan,
    Setting,
    Status,
)
from router.candidates import ScanCandidates
from router.io.events import Event
from router.io.replay import replay_events, write_records
from router.ledger import Policy
from router.pool import Pool
from router.strategies import Strategy
from router.timeutil import parse_time

T0 = parse_time("2026-11-24T10:00:00Z")
PLANS = [Plan.BASIC] * 2 + [Plan.STANDARD] * 4 + [Plan.PRO] * 3 + [Plan.MEGA]
SETTINGS = [Setting.FAST] * 7 + [Setting.TURBO] + [Setting.RELAX] * 2
STATUSES = ([Status.ACTIVE] * 17 + [Status.DISABLED, Status.BANNED, Status.CAPTCHA_REQUIRED,
                                     Status.SUBSCRIPTION_EXPIRED])
MODES = ["fast"] * 5 + ["relax"] * 3 + ["turbo"] * 2
STEP = 5.0  # seconds between decisions: 5,000 decisions span ~7 h (windows open and close)
COUNTED = 500  # decisions whose bytecodes are counted (the same figure in every line)


def make_accounts(n: int, seed: int, windows: float = 0.0,
                  pacing: bool = False) -> list[Account]:
    """A mixed pool: plans, settings, statuses, fast time, ~5 % backups.

    ``windows`` is the share of accounts with an 8-hour inactive window (T1);
    ``pacing`` gives every account a daily cap of 1-49 jobs (H2) and a gap of
    10-599 s (H3), drawn from a separate generator (the pool is otherwise the same).
    """
    prng = random.Random(seed + 7_919)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        plan = rng.choice(PLANS)
        window = None
        if rng.random() < windows:
            start = rng.randrange(24) * 3600
            window = InactiveWindow(start, (start + 8 * 3600) % 86_400)
        out.append(Account(
            id=f"acc-{i:06d}", plan=plan, setting=rng.choice(SETTINGS),
            status=rng.choice(STATUSES),
            fast_ms=rng.choice([0, rng.randrange(PLAN_ALLOWANCE_MS[plan] + 1)]),
            renews_at=T0 + rng.randrange(1, 30 * 86_400), weight=rng.choice([1.0, 2.0]),
            backup=rng.random() < 0.05, max_in_flight=PLAN_MAX_IN_FLIGHT[plan],
            bot_id=i + 1, inactive_window=window,
            max_jobs_per_day=prng.randrange(1, 50) if pacing else None,
            min_gap_s=float(prng.randrange(10, 600)) if pacing else 0.0,
        ))
    return out


def bodies(k: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"model": "midjourney", "task_type": "imagine",
             "input": {"prompt": "night city --ar 16:9", "process_mode": rng.choice(MODES)}}
            for _ in range(k)]


def steady_pool(n: int, decisions: int, *, strategy: Strategy, windows: float,
                seed: int, pacing: bool = False
                ) -> tuple[Pool, list[dict[str, Any]], deque[str], float]:
    """A pool of ``n`` accounts warmed up to the steady state (``depth`` tasks in
    flight), on the indexed engine without explanations; the requests for
    ``decisions`` more decisions, the tasks in flight and the clock."""
    pool = Pool(make_accounts(n, seed, windows, pacing), Policy(strategy, seed=seed),
                indexed=True, explain=False)
    reqs = bodies(max(decisions, 1), seed)
    in_flight: deque[str] = deque()
    depth = max(1, min(n, 2_000) // 2)  # tasks kept in flight: the steady state
    now = T0
    pool.advance(now)
    for k in range(depth):  # warm up to the steady state (not measured)
        now += STEP
        d = pool.submit(f"w{k}", reqs[k % len(reqs)], now)
        if d.error is None and d.pool == "private":
            in_flight.append(d.task_id)
    return pool, reqs, in_flight, now


def decide(pool: Pool, body: dict[str, Any], task_id: str, in_flight: deque[str],
           now: float) -> None:
    """One decision: the submit of ``body``, then the completion of the oldest
    task in flight."""
    d = pool.submit(task_id, body, now)
    if d.error is None and d.pool == "private":
        in_flight.append(d.task_id)
    if in_flight:
        pool.complete(in_flight.popleft(), 60.0, now)


def run_once(n: int, decisions: int, *, indexed: bool, explain: bool,
             strategy: Strategy, windows: float, seed: int, pacing: bool = False) -> float:
    """Seconds per decision (submit + complete) over ``decisions`` decisions."""
    # The warm-up to the steady state runs on the indexed engine without
    # explanations (the scan would need minutes at 100k); then the pool is
    # switched to the configuration under test. ScanCandidates keeps no derived
    # state, so handing it the accounts is all a switch needs.
    pool, reqs, in_flight, now = steady_pool(n, decisions, strategy=strategy,
                                             windows=windows, seed=seed, pacing=pacing)
    if not indexed:
        led = pool.ledger
        led.candidates = ScanCandidates(strategy)
        for acc in led.accounts.values():
            led.candidates.update(acc, led.backups_active)
    pool.explain = explain
    if explain:  # the first explanation builds what later ones read (once per pool): not timed
        pool.route(reqs[0], "warm-explain", now)
    # the task ids are inputs, made before the clock starts, like the bodies
    task_ids = [f"t{k}" for k in range(decisions)]
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for k in range(decisions):
            now += STEP
            decide(pool, reqs[k], task_ids[k], in_flight, now)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed / decisions


def replay_once(n: int, events: int, *, strategy: Strategy, seed: int,
                write: bool = True) -> float:
    """Seconds per event of ``byoa replay``'s loop: a fresh ``Pool`` (explain=True,
    as the command builds it), submits 5 s apart with a completion of the task
    submitted ``depth`` events earlier between them, each record written as JSON
    (``write=False``: the records are built, not encoded)."""
    pool = Pool(make_accounts(n, seed), Policy(strategy, seed=seed))
    reqs = bodies(events, seed)
    depth = max(1, min(n, 2_000) // 2)
    evs: list[Event] = []
    now, k = T0, 0
    while len(evs) < events:
        now += STEP
        evs.append(Event(len(evs) + 1, "submit", now,
                         {"op": "submit", "task_id": f"t{k}", "request": reqs[k % len(reqs)]}))
        if k >= depth and len(evs) < events:
            evs.append(Event(len(evs) + 1, "complete", now,
                             {"op": "complete", "task_id": f"t{k - depth}", "gpu_seconds": 60.0}))
        k += 1
    out = io.StringIO()
    gc.collect()
    start = time.perf_counter()
    if write:
        write_records(replay_events(pool, evs), out)
    else:
        for _rec in replay_events(pool, evs):
            pass
    return (time.perf_counter() - start) / events


def bytecodes_per_decision(n: int, decisions: int, *, strategy: Strategy,
                           windows: float = 0.0, pacing: bool = False,
                           seed: int = 1) -> tuple[float, float]:
    """(bytecodes, Python-level calls) per decision in the steady state, counted
    (``counting.count_python``): the same on every run of the same code, whatever
    the machine's load. Time per decision / bytecodes = what one bytecode costs on
    this machine; the target's time / that = the bytecodes it allows."""
    pool, reqs, in_flight, now = steady_pool(n, decisions, strategy=strategy,
                                             windows=windows, seed=seed, pacing=pacing)
    ops = calls = 0
    for k in range(decisions):
        now += STEP
        _none, o, c = count_python(partial(decide, pool, reqs[k], f"t{k}", in_flight, now))
        ops, calls = ops + o, calls + c - 1  # ``decide`` itself: not the router's
    return ops / decisions, calls / decisions


HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def in_interpreter(tree: str, code: str, what: str, env: dict[str, str] | None = None) -> str:
    """The output of ``code`` run in an interpreter of its own on ``tree``'s router
    (``b``: this benchmark module, ``Strategy`` and ``json`` imported); exits
    naming ``what`` when the run fails."""
    prelude = (f"import sys, json; sys.path.insert(1, {os.path.join(HERE, 'benchmarks')!r}); "
               "import bench_router as b; from router.strategies import Strategy; ")
    out = subprocess.run(
        [sys.executable, "-c", prelude + code],
        env={**os.environ, "PYTHONPATH": os.path.abspath(tree), **(env or {})},
        cwd=tree, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"{what}: the run failed:\n{out.stderr.strip()}")
    return out.stdout


def baseline_pairs(tree: str, runs: int, n: int, decisions: int, strategy: Strategy,
                   *, pure: bool = False) -> tuple[list[float], list[float], float, float]:
    """µs per decision of this tree and of ``tree`` (another checkout of this
    repository: the code before a change; with ``pure``, this tree's own core
    from its ``.py`` sources, ``BYOA_PURE=1``), each run in its own interpreter,
    alternating which goes first; and each side's bytecodes per decision."""
    code = ("s = Strategy({st!r}); "
            "print(json.dumps([b.run_once({n}, {k}, indexed=True, explain=False, strategy=s, "
            "windows=0.0, seed={seed}) * 1e6, b.bytecodes_per_decision({n}, {counted}, strategy=s)"
            "[0] if {seed} == 1 else 0.0]))")
    mine: list[float] = []
    theirs: list[float] = []
    ops = [0.0, 0.0]
    sides = [(HERE, {}), (tree, {"BYOA_PURE": "1"} if pure else {})]
    for r in range(runs):
        for side in ((0, 1) if r % 2 == 0 else (1, 0)):
            src, extra = sides[side]
            us, count = json.loads(in_interpreter(
                src, code.format(st=strategy.value, n=n, counted=COUNTED, k=decisions,
                                 seed=r + 1), f"--baseline {tree}", extra))
            (theirs if side else mine).append(us)
            if count:
                ops[side] = count
    return mine, theirs, ops[0], ops[1]


def fresh_us(n: int, decisions: int, *, seed: int, strategy: Strategy, **kw: Any) -> float:
    """µs per decision of ``run_once``, run in an interpreter of its own: every
    measurement gets its pool laid out as a fresh process (a long-lived proxy)
    has it, whatever was measured before it. (Pools built one after another in
    one process land scattered in memory, and measured up to 2x slower, so a
    table measured in one process favoured whatever it measured first.)"""
    code = (f"print(b.run_once({n}, {decisions}, seed={seed}, strategy=Strategy("
            f"{strategy.value!r}), **json.loads({json.dumps(kw)!r})) * 1e6)")
    return float(in_interpreter(HERE, code, f"a measurement (n={n}, {strategy.value}, {kw})"))


def median_us(runs: int, n: int, decisions: int, **kw: Any) -> float:
    return statistics.median(fresh_us(n, decisions, seed=r + 1, **kw) for r in range(runs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 1_000, 10_000, 100_000])
    ap.add_argument("--runs", type=int, default=5, help="runs per configuration (median)")
    ap.add_argument("--decisions", type=int, default=5_000, help="decisions per indexed run")
    ap.add_argument("--scan-budget", type=int, default=2_000_000,
                    help="the scan gets about this many account-visits per run")
    ap.add_argument("--strategy", default="least_loaded", choices=[s.value for s in Strategy])
    ap.add_argument("--windows", type=float, default=0.0,
                    help="share of accounts with an 8-hour inactive window (T1)")
    ap.add_argument("--pacing", action="store_true",
                    help="every account has a daily cap (H2, 1-49 jobs) and a gap (H3, 10-599 s)")
    ap.add_argument("--strategy-sizes", type=int, nargs="*", default=[10, 10_000, 100_000],
                    help="pool sizes of the per-strategy table (none: skip it)")
    ap.add_argument("--replay-accounts", type=int, default=10_000,
                    help="pool size of the replay timing (0: skip it)")
    ap.add_argument("--replay-events", type=int, default=2_000)
    ap.add_argument("--baseline", metavar="DIR",
                    help="another checkout of this repository (the code before a change, "
                         "e.g. from `git worktree add`): least_loaded at 10k accounts is "
                         "timed for both trees in alternation, ratio taken in this run")
    ap.add_argument("--baseline-pure", action="store_true",
                    help="the baseline is this tree's core from its .py sources "
                         "(BYOA_PURE=1): compiled (make compile) against pure, in one run")
    args = ap.parse_args(argv)
    if args.baseline_pure:
        args.baseline = HERE
    if args.baseline and not os.path.isdir(os.path.join(args.baseline, "router")):
        ap.error(f"--baseline {args.baseline}: not a checkout of this repository "
                 "(no router/ in it)")
    strategy = Strategy(args.strategy)
    common = {"strategy": strategy, "windows": args.windows, "pacing": args.pacing}
    print(f"byoa-router benchmark: route + reserve + complete per decision; "
          f"strategy {strategy.value}, windows {args.windows:.0%}, "
          f"{'caps+gaps on every account (H2, H3), ' if args.pacing else ''}"
          f"medians of {args.runs} runs")
    print(f"python {sys.version.split()[0]}, core: {compiled.status()}")
    rows = []
    head = (f"{'accounts':>9} | {'indexed µs':>10} | {'+explain µs':>11} | {'scan µs':>9} | "
            f"{'speed-up':>8} | {'scan n':>6}")
    print(head)
    print("-" * len(head))
    for n in args.sizes:
        fast = median_us(args.runs, n, args.decisions, indexed=True, explain=False, **common)
        exp_decisions = max(50, min(args.decisions, 10 * args.scan_budget // max(n, 1)))
        full = median_us(args.runs, n, exp_decisions, indexed=True, explain=True, **common)
        scan_decisions = max(20, min(args.decisions, args.scan_budget // max(n, 1)))
        scan = median_us(args.runs, n, scan_decisions, indexed=False, explain=False, **common)
        rows.append((n, fast, full, scan))
        print(f"{n:>9,} | {fast:>10.1f} | {full:>11.1f} | {scan:>9.1f} | "
              f"{scan / fast:>7.1f}x | {scan_decisions:>6}", flush=True)
    by_n = {n: (f, e, s) for n, f, e, s in rows}
    if 10 in by_n and 10_000 in by_n:
        print(f"growth 10 -> 10k (indexed, explain=False): "
              f"{by_n[10_000][0] / by_n[10][0]:.2f}x")
    if 10 in by_n and 100_000 in by_n:
        print(f"growth 10 -> 100k (indexed, explain=False): "
              f"{by_n[100_000][0] / by_n[10][0]:.2f}x")
    if 10_000 in by_n:
        f, _e, s = by_n[10_000]
        print(f"speed-up vs linear scan at 10k: {s / f:.0f}x; indexed at 10k: {f:.1f} µs")
        ops, calls = bytecodes_per_decision(10_000, COUNTED, **common)
        print(f"work per decision at 10k (counted, the same on every run): {ops:,.0f} "
              f"bytecodes in {calls:.1f} Python calls; {f * 1e3 / ops:.1f} ns per bytecode "
              f"in this run, so 5 µs allows about {5e3 / (f * 1e3 / ops):,.0f}")
    if args.baseline:
        mine, theirs, ops_m, ops_t = baseline_pairs(args.baseline, max(args.runs, 3), 10_000,
                                                    args.decisions, strategy,
                                                    pure=args.baseline_pure)
        m, t = statistics.median(mine), statistics.median(theirs)
        what = "--baseline-pure (BYOA_PURE=1)" if args.baseline_pure else "--baseline"
        print(f"against {what} {args.baseline}, 10k accounts, {strategy.value}, "
              f"{len(mine)} alternating runs each: this tree {m:.1f} µs, baseline {t:.1f} µs, "
              f"this / baseline {m / t:.2f}; bytecodes per decision {ops_m:,.0f} against "
              f"{ops_t:,.0f} ({ops_m / ops_t:.2f})")
    worst = strategy_table(args) if args.strategy_sizes else None
    replay_ms = None
    if args.replay_accounts:
        n, k = args.replay_accounts, args.replay_events
        ms = [statistics.median(replay_once(n, k, strategy=strategy, seed=r + 1, write=w)
                                for r in range(args.runs)) * 1e3 for w in (True, False)]
        replay_ms = ms[0]
        print(f"byoa replay, {n:,} accounts, {k:,} events: {ms[0]:.3f} ms/event with every "
              f"record written as JSON, {ms[1]:.3f} ms/event to build the records")
    targets(by_n, worst, replay_ms)
    return 0


def targets(by_n: dict[int, tuple[float, float, float]], worst: float | None,
            replay_ms: float | None) -> None:
    """The issue's goals against this run's figures (absolute times move with the
    machine's load; the ratios are taken within the run)."""
    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    parts = []
    if 10_000 in by_n:
        us = by_n[10_000][0]
        parts.append(f"<= 5 µs per decision at 10k: {us:.1f} µs, {met(us <= 5)}")
    if 10 in by_n and 100_000 in by_n:
        g = by_n[100_000][0] / by_n[10][0]
        parts.append(f"growth 10 -> 100k <= 2x: {g:.2f}x, {met(g <= 2)}")
    if worst is not None:
        parts.append(f"every strategy <= 3x least_loaded: worst {worst:.2f}x, {met(worst <= 3)}")
    if replay_ms is not None:
        parts.append(f"replay <= 1 ms/event: {replay_ms:.3f} ms, {met(replay_ms <= 1)}")
    if parts:
        print("targets: " + "; ".join(parts))


def strategy_table(args: argparse.Namespace) -> float | None:
    """Per strategy: indexed µs/decision (explain=False) and the ratio to
    least_loaded, both measured in this run, at each of ``--strategy-sizes``;
    returns the worst ratio at 10k accounts or more (the issue's target), if any."""
    sizes = args.strategy_sizes
    print(f"\nper strategy: indexed, explain=False, µs per decision (ratio to least_loaded), "
          f"windows {args.windows:.0%}, medians of {args.runs} runs")
    head = f"{'strategy':>15} | " + " | ".join(f"{n:>19,}" for n in sizes)
    print(head)
    print("-" * len(head))
    # Each run measures every strategy once, in turn, so a change of the
    # machine's speed during the table touches them alike; then the medians.
    times: dict[tuple[Strategy, int], list[float]] = {}
    for r in range(args.runs):
        for n in sizes:
            for strategy in Strategy:
                times.setdefault((strategy, n), []).append(fresh_us(
                    n, args.decisions, seed=r + 1, strategy=strategy, indexed=True,
                    explain=False, windows=args.windows, pacing=args.pacing))
        print(f"  (round {r + 1} of {args.runs} measured)", file=sys.stderr, flush=True)
    base = {n: statistics.median(times[(Strategy.LEAST_LOADED, n)]) for n in sizes}
    worst = 0.0
    for strategy in Strategy:  # least_loaded first: the baseline of the ratios
        cells = []
        for n in sizes:
            us = statistics.median(times[(strategy, n)])
            if n >= 10_000:
                worst = max(worst, us / base[n])
            cells.append(f"{us:>9.1f} µs ({us / base[n]:>4.2f}x)")
        print(f"{strategy.value:>15} | " + " | ".join(cells), flush=True)
    return worst if any(n >= 10_000 for n in sizes) else None


if __name__ == "__main__":
    sys.exit(main())
