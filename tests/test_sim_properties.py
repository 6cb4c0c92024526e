"""Queueing identities, determinism (D1) and common random numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sim_helpers import run_toml

from simulations.metrics import tasks_table

SATURATED = """
    name = "saturated"
    [simulation]
    start = "2026-02-02T00:00:00Z"
    days = 3
    seed = {seed}
    [policy]
    strategy = "{strategy}"
    [[fleet.groups]]
    plan = "standard"
    count = 2
    max_in_flight = 4
    inactive_window = {{ start = "03:00", end = "05:00" }}
    [[fleet.groups]]
    plan = "pro"
    count = 1
    setting = "relax"
    max_in_flight = 5
    [workload.generator]
    rate_per_hour = 40
    random_bursts_per_day = 1
    burst_multiplier = 4
"""


def test_R5_littles_law_holds_on_the_central_queue() -> None:
    """R5 late binding: L = lambda x W on the central pool_saturated queue.

    L is the harness's time integral of the queue length, W the mean of the per-task
    queue times in the task table, lambda = entries / span. The run drains (every
    queued task leaves before the end), so the law holds as a sample-path identity;
    the tolerance (1e-9 relative) only covers float summation.
    """
    run = run_toml(SATURATED.format(seed=5, strategy="least_loaded"))[0]
    q = run.summary["queue"]
    assert q["entries"] > 100  # the scenario really saturates
    tasks = tasks_table(run.result)
    queued = tasks[tasks["queue_wait_s"] > 0]
    w = float(np.nansum(run.result.queued_s)) / q["entries"]
    assert abs(q["time_average_length"] - q["arrival_rate_per_s"] * w) <= \
        1e-9 * max(q["time_average_length"], 1e-12)
    assert abs(w - q["mean_wait_s"]) <= 1e-9 * w
    # Waits in the table are never negative, and queued tasks waited at least their queue time.
    assert (tasks["queue_wait_s"] >= 0).all()
    assert (queued["wait_s"] >= queued["queue_wait_s"] - 1e-9).all()
    assert run.summary["tasks_unfinished"] == 0


def test_D1_same_seed_gives_identical_results() -> None:
    """D1: the same scenario and seed give byte-identical tables and summary."""
    a = run_toml(SATURATED.format(seed=9, strategy="least_loaded"))[0]
    b = run_toml(SATURATED.format(seed=9, strategy="least_loaded"))[0]
    assert a.summary == b.summary
    pd.testing.assert_frame_equal(tasks_table(a.result), tasks_table(b.result))
    c = run_toml(SATURATED.format(seed=10, strategy="least_loaded"))[0]
    assert c.summary["tasks_total"] != a.summary["tasks_total"]


def test_common_random_numbers_two_policies_see_the_same_workload() -> None:
    """Two policies (least_loaded, round_robin) on one seed: the same tasks, arrival
    times, GPU times and failure draws (numpy SeedSequence streams fixed before the run)."""
    a = run_toml(SATURATED.format(seed=4, strategy="least_loaded"))[0].result
    b = run_toml(SATURATED.format(seed=4, strategy="round_robin"))[0].result
    wa, wb = a.workload, b.workload
    for field in ("arrival", "think", "parent", "type_code", "gpu", "fail", "u_relax"):
        np.testing.assert_array_equal(getattr(wa, field), getattr(wb, field))
    ta, tb = tasks_table(a), tasks_table(b)
    roots_a = ta[ta["parent_task_id"].isna()].set_index("task_id")
    roots_b = tb[tb["parent_task_id"].isna()].set_index("task_id")
    pd.testing.assert_series_equal(roots_a["ready_at"], roots_b["ready_at"])
    both = ta.merge(tb, on="task_id", suffixes=("_a", "_b"))
    assert len(both) > 0.9 * len(ta)
    assert (both["gpu_seconds_a"] == both["gpu_seconds_b"]).all()
    assert (both["task_type_a"] == both["task_type_b"]).all()
    assert (both["requested_mode_a"] == both["requested_mode_b"]).all()
    assert (both["account_id_a"] != both["account_id_b"]).any()  # the policies did differ
