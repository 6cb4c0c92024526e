"""Workloads as flat arrays, fixed before the run (common random numbers).

A ``Workload`` holds every task the run may see, roots and follow-ups, with all
of its random draws (arrival or think time, GPU time, failure, relax-wait draw)
made up front from streams spawned by ``numpy.random.SeedSequence``. Nothing in
it depends on the policy, so two policies run on the same seed see the same
workload; only *when* a follow-up arrives depends on when its parent finished.

The generator: a Poisson process whose rate is ``rate_per_hour`` x the daily
profile's weight for the hour (piecewise constant, so counts per hour are
Poisson and times uniform inside the hour), plus bursts (given or random) that
add ``(multiplier - 1)`` x the base rate for their duration. Root task types,
modes and the way the mode is asked (``process_mode`` or a prompt flag) are
drawn from the configured shares. Follow-up rules draw a Poisson number of
children per completed parent, each after an exponential think time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from router.accounts import ROOT_TYPES, TASK_TYPES, Mode
from simulations.scenario import ExecutionModel, GeneratorModel

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
B = npt.NDArray[np.bool_]

HOUR = 3600.0
DAY = 86_400.0

#: Task type codes: the index into ``router.accounts.TASK_TYPES``.
TYPE_CODE: dict[str, int] = {t: i for i, t in enumerate(TASK_TYPES)}
#: Mode codes used in arrays: -1 none.
MODES: tuple[Mode, ...] = (Mode.RELAX, Mode.FAST, Mode.TURBO)
MODE_CODE: dict[Mode, int] = {m: i for i, m in enumerate(MODES)}

#: Named random streams, spawned from the run seed in this order (CRN).
STREAMS = ("arrivals", "roots", "followups", "gpu", "failures", "relax", "incidents")


def streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per stream (``SeedSequence(seed).spawn``)."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(ss) for name, ss in zip(STREAMS, children, strict=True)}


@dataclass(slots=True)
class Workload:
    """Every task of a run; index ``i`` is the task. Roots have ``parent == -1``.

    ``arrival`` is the absolute arrival time (epoch seconds) of roots and of trace
    tasks, NaN for generated follow-ups (they arrive ``think`` seconds after their
    parent finishes). ``children`` lists generated follow-ups per parent (CSR:
    ``child_ptr[i]:child_ptr[i+1]`` into ``child_idx``).
    """

    arrival: F64
    think: F64
    parent: I64
    type_code: I8
    gpu: F64
    fail: B
    u_relax: F64
    body_code: I64  # generator roots: index into ``templates``; -1 otherwise
    templates: list[dict[str, Any]] = field(default_factory=list)
    template_mode: list[int] = field(default_factory=list)  # mode code asked by a template
    bodies: list[dict[str, Any]] | None = None  # trace tasks: the raw request bodies
    task_ids: list[str] | None = None  # trace task ids (generated runs use "t<i>")
    child_ptr: I64 = field(default_factory=lambda: np.zeros(1, np.int64))
    child_idx: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    generated_followups: bool = True
    cancel_at: dict[int, float] = field(default_factory=dict)  # trace cancel lines
    estimates: dict[int, float] = field(default_factory=dict)  # submit-line R9 overrides
    account_events: list[tuple[float, str, str, str]] = field(default_factory=list)
    source: str = "generator"

    @property
    def n(self) -> int:
        return int(self.arrival.shape[0])

    @property
    def roots(self) -> int:
        return int((self.parent < 0).sum())

    def task_id(self, i: int) -> str:
        return self.task_ids[i] if self.task_ids is not None else f"t{i}"

    def body(self, i: int) -> dict[str, Any]:
        """Task ``i``'s GoAPI request body: the trace's, a root template, or a child
        naming its parent (M5/R7)."""
        if self.bodies is not None:
            return self.bodies[i]
        code = int(self.body_code[i])
        if code >= 0:
            return self.templates[code]
        return {"model": "midjourney", "task_type": TASK_TYPES[int(self.type_code[i])],
                "input": {"origin_task_id": self.task_id(int(self.parent[i]))}}

    def children_of(self, i: int) -> I64:
        return self.child_idx[self.child_ptr[i]:self.child_ptr[i + 1]]


def draw_gpu(rng: np.random.Generator, types: I8, exe: ExecutionModel) -> F64:
    """GPU seconds per task: the type's mean x a mean-1 lognormal spread."""
    means = np.array([exe.gpu_seconds[t] for t in TASK_TYPES], dtype=np.float64)
    sigma = exe.gpu_spread
    spread = rng.lognormal(-0.5 * sigma * sigma, sigma, size=types.shape[0]) if sigma > 0 \
        else np.ones(types.shape[0])
    out: F64 = means[types.astype(np.int64)] * spread
    return out


def root_arrivals(gen: GeneratorModel, start: float, days: float,
                  rng: np.random.Generator) -> F64:
    """Sorted arrival times in ``[start, start + days)``: profile x rate, plus bursts."""
    end = start + days * DAY
    profile = np.asarray(gen.daily_profile, dtype=np.float64)
    profile = profile / profile.mean()
    n_hours = int(np.ceil(days * 24))
    hour_starts = start + HOUR * np.arange(n_hours)
    hour_of_day = ((hour_starts % DAY) // HOUR).astype(np.int64)
    widths = np.minimum(end - hour_starts, HOUR)
    lam = gen.rate_per_hour * profile[hour_of_day] * widths / HOUR
    counts = rng.poisson(lam)
    times = [np.repeat(hour_starts, counts) + rng.random(int(counts.sum())) *
             np.repeat(widths, counts)]
    bursts = [(start + b.at_hours * HOUR, b.minutes * 60.0, b.multiplier) for b in gen.bursts]
    if gen.random_bursts_per_day > 0:
        k = int(rng.poisson(gen.random_bursts_per_day * days))
        for t0 in np.sort(start + rng.random(k) * days * DAY):
            bursts.append((float(t0), gen.burst_minutes * 60.0, gen.burst_multiplier))
    for t0, dur, mult in bursts:
        if mult <= 1.0:
            continue
        dur = min(dur, end - t0)
        if dur <= 0:
            continue
        # Extra intensity (mult - 1) x the base rate x the profile at the burst's start.
        hod = int((t0 % DAY) // HOUR)
        lam_b = gen.rate_per_hour * profile[hod] * (mult - 1.0) * dur / HOUR
        nb = int(rng.poisson(lam_b))
        times.append(t0 + rng.random(nb) * dur)
    allt = np.sort(np.concatenate(times))
    return allt


def build_templates(gen: GeneratorModel) -> tuple[list[dict[str, Any]], list[int],
                                                    list[tuple[int, int, bool]]]:
    """Request bodies per (root type, mode, asked by prompt flag?)."""
    templates: list[dict[str, Any]] = []
    modes: list[int] = []
    keys: list[tuple[int, int, bool]] = []
    for t in ROOT_TYPES:
        for m in MODES:
            for by_prompt in (False, True):
                inp: dict[str, Any] = {}
                if t == "imagine":
                    inp["prompt"] = f"a generated scene --{m.value}" if by_prompt \
                        else "a generated scene"
                elif by_prompt:
                    inp["prompt"] = f"--{m.value}"
                if not by_prompt:
                    inp["process_mode"] = m.value
                if t == "blend":
                    inp["image_urls"] = ["https://example.invalid/a.png",
                                         "https://example.invalid/b.png"]
                if t == "describe":
                    inp["image_url"] = "https://example.invalid/a.png"
                templates.append({"model": "midjourney", "task_type": t, "input": inp})
                modes.append(MODE_CODE[m])
                keys.append((TYPE_CODE[t], MODE_CODE[m], by_prompt))
    return templates, modes, keys


def _choice(rng: np.random.Generator, weights: dict[str, float], names: tuple[str, ...],
            n: int) -> I64:
    w = np.array([weights.get(x, 0.0) for x in names], dtype=np.float64)
    out: I64 = rng.choice(len(names), size=n, p=w / w.sum()).astype(np.int64)
    return out


def generate(gen: GeneratorModel, exe: ExecutionModel, start: float, days: float,
             seed: int, failure_rate: float) -> Workload:
    """Draw a whole workload: roots, then follow-up trees level by level."""
    rs = streams(seed)
    arrivals = root_arrivals(gen, start, days, rs["arrivals"])
    n_root = arrivals.shape[0]
    roots_rng = rs["roots"]
    rtype = _choice(roots_rng, gen.task_mix, ROOT_TYPES, n_root)
    rmode = _choice(roots_rng, gen.modes, ("relax", "fast", "turbo"), n_root)
    by_prompt: B = np.asarray(roots_rng.random(n_root) < gen.prompt_flag_share, np.bool_)
    templates, tmodes, keys = build_templates(gen)
    key_index = {k: i for i, k in enumerate(keys)}
    lut = np.full((3, 3, 2), -1, dtype=np.int64)
    for (tc, mc, bp), i in key_index.items():
        lut[tc, mc, int(bp)] = i
    body_code = lut[rtype, rmode, by_prompt.astype(np.int64)]
    type_code = np.array([TYPE_CODE[t] for t in ROOT_TYPES], np.int8)[rtype]

    parents = [np.full(n_root, -1, np.int64)]
    types = [type_code]
    thinks = [np.zeros(n_root)]
    # Follow-up trees, one level at a time (vectorised).
    fu_rng = rs["followups"]
    level_idx = np.arange(n_root, dtype=np.int64)
    level_types = type_code
    next_id = n_root
    for _depth in range(gen.max_depth):
        new_par: list[I64] = []
        new_typ: list[I8] = []
        new_thk: list[F64] = []
        for rule in gen.followups:
            after = np.array([TYPE_CODE[t] for t in rule.after if t in TYPE_CODE], np.int8)
            ok = np.isin(level_types, after)
            counts = fu_rng.poisson(rule.mean, size=level_idx.shape[0]) * ok
            total = int(counts.sum())
            if total == 0:
                continue
            new_par.append(np.repeat(level_idx, counts))
            new_typ.append(np.full(total, TYPE_CODE[rule.type], np.int8))
            new_thk.append(fu_rng.exponential(rule.think_seconds, size=total)
                           if rule.think_seconds > 0 else np.zeros(total))
        if not new_par:
            break
        par = np.concatenate(new_par)
        order = np.argsort(par, kind="stable")
        par = par[order]
        typ = np.concatenate(new_typ)[order]
        thk = np.concatenate(new_thk)[order]
        ids = np.arange(next_id, next_id + par.shape[0], dtype=np.int64)
        next_id += par.shape[0]
        parents.append(par)
        types.append(typ)
        thinks.append(thk)
        level_idx, level_types = ids, typ
    parent = np.concatenate(parents)
    all_types = np.concatenate(types).astype(np.int8)
    n = parent.shape[0]
    arrival = np.full(n, np.nan)
    arrival[:n_root] = arrivals
    gpu = draw_gpu(rs["gpu"], all_types, exe)
    fail: B = np.asarray(rs["failures"].random(n) < failure_rate, np.bool_)
    u_relax: F64 = np.asarray(rs["relax"].random(n), np.float64)
    bc = np.full(n, -1, np.int64)
    bc[:n_root] = body_code
    wl = Workload(arrival, np.concatenate(thinks), parent, all_types, gpu, fail, u_relax, bc,
                  templates=templates, template_mode=tmodes)
    wl.child_ptr, wl.child_idx = children_csr(parent)
    return wl


def children_csr(parent: I64) -> tuple[I64, I64]:
    """Children per task as CSR arrays, children in index order."""
    n = parent.shape[0]
    has = parent >= 0
    kids = np.nonzero(has)[0].astype(np.int64)
    order = np.argsort(parent[kids], kind="stable")
    kids = kids[order]
    counts = np.bincount(parent[has], minlength=n) if kids.size else np.zeros(n, np.int64)
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr, kids
