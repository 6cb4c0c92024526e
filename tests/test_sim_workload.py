"""The workload generator: Poisson arrivals with a daily profile and bursts, shares,
follow-up trees. Statistical checks use 5-sigma bounds (false alarm < 1e-6)."""

from __future__ import annotations

import numpy as np

from router.timeutil import parse_time
from simulations.scenario import BurstModel, ExecutionModel, FollowupModel, GeneratorModel
from simulations.workload import MODES, TASK_TYPES, TYPE_CODE, generate

START = parse_time("2026-01-05T00:00:00Z")


def test_arrivals_follow_the_rate_and_the_daily_profile() -> None:
    profile = [0.0] * 6 + [1.0] * 12 + [3.0] * 6  # nights empty, evenings 3x
    gen = GeneratorModel(rate_per_hour=50, daily_profile=profile, followups=[])
    wl = generate(gen, ExecutionModel(), START, 20, seed=3, failure_rate=0.0)
    t = wl.arrival
    assert np.all(np.diff(t) >= 0) and t[0] >= START and t[-1] < START + 20 * 86_400
    expected = 50 * 24 * 20
    assert abs(t.size - expected) < 5 * np.sqrt(expected)
    hour = ((t - START) % 86_400 // 3600).astype(int)
    assert not np.any(hour < 6)
    mean_w = np.mean(profile)
    day_n, eve_n = np.sum((hour >= 6) & (hour < 18)), np.sum(hour >= 18)
    e_day, e_eve = 50 * 20 * 12 * 1.0 / mean_w, 50 * 20 * 6 * 3.0 / mean_w
    assert abs(day_n - e_day) < 5 * np.sqrt(e_day)
    assert abs(eve_n - e_eve) < 5 * np.sqrt(e_eve)


def test_a_burst_adds_multiplier_minus_one_times_the_rate() -> None:
    flat = [1.0] * 24
    burst = BurstModel(at_hours=30, minutes=120, multiplier=6)
    base = GeneratorModel(rate_per_hour=40, daily_profile=flat, followups=[])
    with_burst = base.model_copy(update={"bursts": [burst]})
    a = generate(with_burst, ExecutionModel(), START, 3, seed=1, failure_rate=0.0).arrival
    lo, hi = START + 30 * 3600, START + 32 * 3600
    inside = np.sum((a >= lo) & (a < hi))
    expected = 40 * 2 * 6
    assert abs(inside - expected) < 5 * np.sqrt(expected)


def test_shares_follow_ups_and_failures() -> None:
    gen = GeneratorModel(
        rate_per_hour=200, task_mix={"imagine": 0.8, "describe": 0.2},
        modes={"fast": 0.5, "turbo": 0.1, "relax": 0.4}, prompt_flag_share=0.25,
        followups=[FollowupModel(type="upscale", mean=1.2, think_seconds=30, after=["imagine"])],
    )
    wl = generate(gen, ExecutionModel(gpu_spread=0.0), START, 10, seed=8, failure_rate=0.1)
    roots = wl.parent < 0
    n = int(roots.sum())
    imag = roots & (wl.type_code == TYPE_CODE["imagine"])
    p = 0.8
    assert abs(imag.sum() - p * n) < 5 * np.sqrt(n * p * (1 - p))
    modes = np.array(wl.template_mode)[wl.body_code[roots]]
    for code, share in ((1, 0.5), (2, 0.1), (0, 0.4)):
        assert abs(np.sum(modes == code) - share * n) < 5 * np.sqrt(n * share * (1 - share)), \
            MODES[code]
    kids = ~roots
    assert np.all(wl.type_code[kids] == TYPE_CODE["upscale"])
    assert np.all(wl.type_code[wl.parent[kids]] == TYPE_CODE["imagine"])  # only after imagine
    m = int(imag.sum())
    assert abs(kids.sum() - 1.2 * m) < 5 * np.sqrt(1.2 * m)
    assert abs(wl.think[kids].mean() - 30) < 5 * 30 / np.sqrt(kids.sum())
    # gpu_spread 0: every task costs exactly its type's table value.
    table = ExecutionModel().gpu_seconds
    assert np.all(wl.gpu == np.array([table[t] for t in TASK_TYPES])[wl.type_code])
    assert abs(wl.fail.mean() - 0.1) < 5 * np.sqrt(0.09 / wl.n)
    # Prompt-flag roots say their mode in the prompt, the others in process_mode (M1/M2).
    by_flag = [b for b in wl.templates if "process_mode" not in b["input"]]
    assert all(any(f"--{mo.value}" in b["input"]["prompt"] for mo in MODES) for b in by_flag)
