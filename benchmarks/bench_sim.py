"""Benchmark: the simulator on 1,000,000 root tasks (+ follow-ups), 1,000 accounts,
30 simulated days, against a bare SimPy loop fed the same arrivals and durations
without routing, measured side by side in the same run.

    .venv/bin/python benchmarks/bench_sim.py [--roots 1000000] [--repeat 3]

Each measurement runs in a fresh child process so that its peak memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own. Reported: medians
over ``--repeat`` runs of wall time (workload generation excluded from the
loops, shown separately), CPU time of the loop (``time.process_time``: less
distorted by other jobs on a shared machine), peak RSS, and the ratios harness /
bare loop (wall and CPU).
Targets: <= 60 s, <= 2 GiB, <= 3x the bare loop.

Two baselines, both fed the same arrivals, durations (GPU time, turbo /4),
failures and follow-up think times, with no Pool and no ledger:

* ``bare``: the same SimPy scheme as the harness (timeouts with callbacks,
  follow-ups scheduled when their parent ends); each task runs as soon as it
  arrives. The strictest baseline: SimPy's own cost per task.
* ``router``: no SimPy at all: every task's ``Pool.submit`` then
  ``Pool.complete``/``Pool.fail`` in index order (parents before children) on a
  clock spread evenly over the horizon. The floor the router's calls set.
* ``process``: the idiomatic SimPy model: one process per task, one
  ``simpy.Resource`` per account with the plan's fast-slot count, accounts
  assigned round-robin (no routing decision), follow-ups as processes that
  sleep their think time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from functools import partial
from typing import Any

import numpy as np
import simpy
from counting import count_python
from simpy.events import Event, Timeout

from router import compiled
from router.accounts import Account
from router.ledger import Policy
from router.timeutil import parse_time
from simulations.facts import DEFAULT_FAILURE_RATE
from simulations.fleet import scenario_accounts
from simulations.harness import RunOptions, Simulation
from simulations.scenario import ScenarioModel, parse_scenario
from simulations.spec import RunSpec
from simulations.workload import Workload, generate

START = "2026-01-01T00:00:00Z"


def scenario(roots: int, accounts: int, days: float) -> ScenarioModel:
    n_std, n_pro = int(accounts * 0.6), int(accounts * 0.3)
    n_mega = accounts - n_std - n_pro
    n_relax = max(1, n_std // 10)
    rate = roots / (days * 24)
    return parse_scenario(f"""
        name = "bench"
        [simulation]
        start = "{START}"
        days = {days}
        seed = 1
        sample_minutes = 360
        [[fleet.groups]]
        plan = "standard"
        count = {n_std - n_relax}
        id_prefix = "std"
        [[fleet.groups]]
        plan = "standard"
        count = {n_relax}
        setting = "relax"
        id_prefix = "rlx"
        [[fleet.groups]]
        plan = "pro"
        count = {n_pro}
        id_prefix = "pro"
        [[fleet.groups]]
        plan = "mega"
        count = {n_mega}
        id_prefix = "mega"
        [workload.generator]
        rate_per_hour = {rate}
        max_depth = 2
        followups = [
          {{ type = "upscale", mean = 0.3, think_seconds = 60 }},
          {{ type = "variation", mean = 0.1, think_seconds = 90 }},
        ]
    """, source="bench")


def make_workload(sc: ScenarioModel) -> Workload:
    gen = sc.workload.generator
    assert gen is not None
    return generate(gen, sc.execution, parse_time(START), sc.simulation.days,
                    sc.simulation.seed, DEFAULT_FAILURE_RATE)


def fleet(sc: ScenarioModel) -> tuple[list[Account], Policy]:
    """The scenario's accounts and its router policy (no variants here)."""
    ((_variant, policy),) = sc.policies()
    return scenario_accounts(sc, "bench", None, parse_time(START)), policy


class BareLoop:
    """Same arrivals, durations and follow-up structure; no routing at all."""

    def __init__(self, wl: Workload, opt: RunOptions, turbo_share: np.ndarray[Any, Any]
                 ) -> None:
        self.wl, self.opt = wl, opt
        self.env = simpy.Environment(initial_time=opt.start)
        self.dur = np.where(turbo_share, wl.gpu / 4.0, wl.gpu).tolist()
        self.done = 0

    def feeder(self) -> Any:
        env, arr = self.env, self.wl.arrival
        idx = np.nonzero(~np.isnan(arr))[0]
        for i, t in zip(idx.tolist(), arr[idx].tolist(), strict=True):
            if t > env.now:
                yield env.timeout(t - env.now)
            self.arrive(i)

    def arrive(self, i: int) -> None:
        Timeout(self.env, self.dur[i], i).callbacks.append(self.finish)

    def on_followup(self, ev: Event) -> None:
        self.arrive(ev.value)

    def finish(self, ev: Event) -> None:
        i = ev.value
        self.done += 1
        wl = self.wl
        if wl.fail[i] or self.env.now >= self.opt.horizon_end:
            return
        a, b = int(wl.child_ptr[i]), int(wl.child_ptr[i + 1])
        for c in wl.child_idx[a:b].tolist():
            Timeout(self.env, float(wl.think[c]), c).callbacks.append(self.on_followup)

    def run(self) -> int:
        self.env.process(self.feeder())
        self.env.run()
        return self.done


class ProcessLoop:
    """Idiomatic SimPy: a process per task and a Resource per account."""

    def __init__(self, wl: Workload, opt: RunOptions, turbo: np.ndarray[Any, Any],
                 slots: list[int]) -> None:
        self.wl, self.opt = wl, opt
        self.env = simpy.Environment(initial_time=opt.start)
        self.dur = np.where(turbo, wl.gpu / 4.0, wl.gpu).tolist()
        self.res = [simpy.Resource(self.env, capacity=max(1, n)) for n in slots]
        self.done = 0
        self.next_acc = 0

    def feeder(self) -> Any:
        env, arr = self.env, self.wl.arrival
        idx = np.nonzero(~np.isnan(arr))[0]
        for i, t in zip(idx.tolist(), arr[idx].tolist(), strict=True):
            if t > env.now:
                yield env.timeout(t - env.now)
            env.process(self.task(i, 0.0))

    def task(self, i: int, think: float) -> Any:
        env, wl = self.env, self.wl
        if think > 0:
            yield env.timeout(think)
        self.next_acc = (self.next_acc + 1) % len(self.res)
        with self.res[self.next_acc].request() as req:
            yield req
            yield env.timeout(self.dur[i])
        self.done += 1
        if wl.fail[i] or env.now >= self.opt.horizon_end:
            return
        a, b = int(wl.child_ptr[i]), int(wl.child_ptr[i + 1])
        for c in wl.child_idx[a:b].tolist():
            env.process(self.task(c, float(wl.think[c])))

    def run(self) -> int:
        self.env.process(self.feeder())
        self.env.run()
        return self.done


def router_only(wl: Workload, sc: ScenarioModel, opt: RunOptions) -> int:
    """Every task through the Pool (submit, then complete or fail), no simulation."""
    from router.pool import Pool

    accs, policy = fleet(sc)
    pool = Pool(accs, policy, explain=False)
    step = (opt.horizon_end - opt.start) / max(wl.n, 1) / 2
    gpu, fail = wl.gpu.tolist(), wl.fail.tolist()
    t = opt.start
    done = 0
    for i in range(wl.n):
        tid = f"t{i}"
        d = pool.submit(tid, wl.body(i), t)
        t += step
        if d.error is None and d.account_id is not None:
            if fail[i]:
                pool.fail(tid, t)
            else:
                pool.complete(tid, gpu[i], t)
            done += 1
        t += step
    return done


def _measure(kind: str, roots: int, accounts: int, days: float, q: Any) -> None:
    sc = scenario(roots, accounts, days)
    t0 = time.perf_counter()
    wl = make_workload(sc)
    gen_s = time.perf_counter() - t0
    accs, policy = fleet(sc)
    opt = RunSpec("bench", accs, policy, wl, parse_time(START), sc.simulation,
                  sc.execution).options()
    t1, c1 = time.perf_counter(), time.process_time()
    if kind == "router":
        tasks = router_only(wl, sc, opt)
    elif kind == "harness":
        sim = Simulation(accs, policy, wl, sc.execution, opt, seed=1)
        res = sim.run()
        tasks = int((res.status != 0).sum())
    elif kind == "bare":
        tasks = BareLoop(wl, opt, turbo_of(wl)).run()
    else:
        slots = [sc.execution.concurrency[a.plan.value]["fast"] for a in accs]
        tasks = ProcessLoop(wl, opt, turbo_of(wl), slots).run()
    wall, cpu = time.perf_counter() - t1, time.process_time() - c1
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    q.put({"kind": kind, "wall_s": wall, "cpu_s": cpu, "generate_s": gen_s, "peak_rss_bytes": rss,
           "tasks": tasks, "workload_tasks": wl.n, "roots": wl.roots,
           "core": compiled.status()})


def turbo_of(wl: Workload) -> np.ndarray[Any, Any]:
    """Which tasks run as turbo (the baselines' durations: GPU time / 4)."""
    turbo = np.zeros(wl.n, np.bool_)
    roots_mask = wl.body_code >= 0
    tm = np.array(wl.template_mode)
    turbo[roots_mask] = tm[wl.body_code[roots_mask]] == 2
    return turbo


def bytecodes_per_task(roots: int, accounts: int, days: float) -> dict[str, float]:
    """Bytecodes per arrived task of the bare loop, the router's calls alone and the
    harness on the same small workload, counted (``counting.count_python``, SimPy's
    own Python included): the same on every run, whatever the machine's load. C
    work (dict, heap, numpy) is not counted, so the ratios are a floor-free view of
    the Python each side executes, next to the timed ones."""
    sc = scenario(roots, accounts, days)
    wl = make_workload(sc)
    accs, policy = fleet(sc)
    opt = RunSpec("bench", accs, policy, wl, parse_time(START), sc.simulation,
                  sc.execution).options()
    turbo = turbo_of(wl)
    sim = Simulation(*fleet(sc), wl, sc.execution, opt, seed=1)

    def harness() -> int:
        return int((sim.run().status != 0).sum())

    out: dict[str, float] = {}
    for kind, fn in (("bare", BareLoop(wl, opt, turbo).run),
                     ("router", partial(router_only, wl, sc, opt)), ("harness", harness)):
        tasks, ops, _calls = count_python(fn)
        out[kind] = ops / max(tasks, 1)
    return out


def measure(kind: str, roots: int, accounts: int, days: float) -> dict[str, Any]:
    """One measurement in a fresh process; a kind ending in ``-pure`` runs the
    router's core from its ``.py`` sources (``BYOA_PURE=1``, router.compiled)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    base = kind.removesuffix("-pure")
    saved = os.environ.get("BYOA_PURE")
    if base != kind:
        os.environ["BYOA_PURE"] = "1"  # the spawned child reads it as it imports router
    try:
        p = ctx.Process(target=_measure, args=(base, roots, accounts, days, q))
        p.start()
    finally:
        if saved is None:
            os.environ.pop("BYOA_PURE", None)
        else:
            os.environ["BYOA_PURE"] = saved
    out: dict[str, Any] = q.get()
    p.join()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--roots", type=int, default=1_000_000)
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="also write the raw figures here")
    ap.add_argument("--count-roots", type=int, default=5_000,
                    help="roots of the workload whose bytecodes per task are counted "
                         "(0: skip the count)")
    ap.add_argument("--pure-too", action="store_true",
                    help="also time the router and the harness on the pure-Python core "
                         "(BYOA_PURE=1), alternating with the compiled one (make compile)")
    args = ap.parse_args(argv)
    print(f"core: {compiled.status()}", file=sys.stderr)
    kinds: tuple[str, ...] = ("bare", "process", "router", "harness")
    if args.pure_too:
        kinds += ("router-pure", "harness-pure")
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for r in range(args.repeat):
        for kind in kinds:  # side by side, alternating
            m = measure(kind, args.roots, args.accounts, args.days)
            runs[kind].append(m)
            print(f"run {r + 1} {kind:12s} wall {m['wall_s']:7.2f} s  "
                  f"CPU {m['cpu_s']:7.2f} s  peak {m['peak_rss_bytes'] / 2**30:5.2f} GiB  "
                  f"tasks {m['tasks']:,}  core: {m['core']}",
                  file=sys.stderr)
    med = {k: {f: statistics.median(x[f] for x in v) for f in ("wall_s", "cpu_s",
                                                                  "peak_rss_bytes",
                                                                  "generate_s")}
           for k, v in runs.items()}
    ratios = [h["wall_s"] / b["wall_s"] for h, b in zip(runs["harness"], runs["bare"],
                                                        strict=True)]
    ratios_p = [h["wall_s"] / b["wall_s"] for h, b in zip(runs["harness"], runs["process"],
                                                          strict=True)]
    h, b, pr = med["harness"], med["bare"], med["process"]
    w = runs["harness"][0]
    print(f"workload: {w['roots']:,} roots, {w['workload_tasks']:,} tasks drawn "
          f"({w['tasks']:,} arrived), {args.accounts:,} accounts, {args.days:g} days; "
          f"medians of {args.repeat} runs")
    print(f"{'':10s} {'wall (s)':>10s} {'CPU (s)':>8s} {'peak RSS (GiB)':>15s} "
          f"{'generate (s)':>13s}")
    for k, m in (("bare loop", b), ("process", pr), ("router", med["router"]),
                 ("harness", h)):
        print(f"{k:10s} {m['wall_s']:10.2f} {m['cpu_s']:8.2f} "
              f"{m['peak_rss_bytes'] / 2**30:15.2f} "
              f"{m['generate_s']:13.2f}")
    ratio = statistics.median(ratios)
    ratio_p = statistics.median(ratios_p)
    ratio_cpu = statistics.median(h_["cpu_s"] / b_["cpu_s"] for h_, b_ in
                                  zip(runs["harness"], runs["bare"], strict=True))
    print(f"harness / bare loop: {ratio:.2f}x; harness / process-per-task loop: "
          f"{ratio_p:.2f}x (medians of per-run ratios)")
    print(f"harness / bare loop in CPU time: {ratio_cpu:.2f}x (what a shared, loaded "
          "machine distorts least)")
    share = statistics.median(r["wall_s"] / h_["wall_s"] for r, h_ in
                              zip(runs["router"], runs["harness"], strict=True))
    print(f"router calls alone (no SimPy): {share:.0%} of the harness's wall time")
    if args.pure_too:
        for k in ("router", "harness"):
            pairs = list(zip(runs[k], runs[k + "-pure"], strict=True))
            wall = statistics.median(c["wall_s"] / p["wall_s"] for c, p in pairs)
            cpu = statistics.median(c["cpu_s"] / p["cpu_s"] for c, p in pairs)
            pm = med[k + "-pure"]
            print(f"{k} on this core / on the pure core: wall {wall:.2f}, CPU {cpu:.2f} "
                  f"(medians of per-run ratios; pure: {pm['wall_s']:.2f} s wall, "
                  f"{pm['cpu_s']:.2f} s CPU)")
    if args.count_roots:
        days = args.days * args.count_roots / args.roots  # the timed runs' density
        c = bytecodes_per_task(args.count_roots, args.accounts, days)
        print(f"bytecodes per task (counted, the same on every run; {args.count_roots:,} "
              f"roots in {days * 24:.3g} h, the timed runs' density): bare loop "
              f"{c['bare']:,.0f}, router calls alone {c['router']:,.0f}, "
              f"harness {c['harness']:,.0f}; harness / bare {c['harness'] / c['bare']:.2f}x")
    print(f"targets: wall <= 60 s: {'met' if h['wall_s'] <= 60 else 'NOT met'}; "
          f"peak <= 2 GiB: {'met' if h['peak_rss_bytes'] <= 2**31 else 'NOT met'}; "
          f"<= 3x bare: {'met' if ratio <= 3 else 'NOT met'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"runs": runs, "medians": med, "ratio_bare": ratio,
                       "ratio_process": ratio_p, "ratio_bare_cpu": ratio_cpu,
                       "router_share": share}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
