"""Pacing in the simulator, sweeps and the README's pacing run: daily caps (H2) and
gaps (H3) on fleets, enforced by the router (the harness never re-implements them)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_helpers import run_toml

from router import InputError
from router.cli import main
from router.timeutil import DAY
from simulations.fleet import spec_accounts
from simulations.scenario import GeneratorModel
from simulations.sweepfile import load_sweep, parse_sweep

REPO = Path(__file__).resolve().parent.parent


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cap=st.integers(1, 8), gap=st.sampled_from([0.0, 30.0, 300.0]),
       accounts=st.integers(1, 3), rate=st.integers(1, 20), followups=st.booleans(),
       seed=st.integers(0, 10_000))
def test_H2_H3_a_paced_fleet_never_exceeds_its_cap_in_any_UTC_day(
        cap: int, gap: float, accounts: int, rate: int, followups: bool, seed: int) -> None:
    """H2: a root task is routed to an account only while fewer than ``cap`` tasks were
    routed to it since 00:00 UTC (so without follow-ups, which are pinned and may pass
    the cap, no account ever takes more than ``cap`` tasks in a UTC day); H3: a root
    task is routed to an account at least ``gap`` seconds after the last task routed to
    it. Checked on every task routed in a 2-day run (the rest waits in the queue, R5)."""
    follow = "" if followups else "followups = []\n"
    run = run_toml(f"""
        [simulation]
        start = "2026-03-01T18:00:00Z"
        days = 2
        seed = {seed}
        drain = false
        [[fleet.groups]]
        plan = "pro"
        count = {accounts}
        max_jobs_per_day = {cap}
        min_gap_seconds = {gap}
        [workload.generator]
        rate_per_hour = {rate}
        {follow}""")[0]
    res = run.result
    routed = ~np.isnan(res.routed) & (res.acc >= 0)
    assert routed.any()
    roots = res.workload.parent < 0
    for k in range(accounts):
        mine = np.nonzero(routed & (res.acc == k))[0]
        order = mine[np.argsort(res.routed[mine], kind="stable")]
        times = res.routed[order]
        days = np.floor(times / DAY)
        for j, i in enumerate(order):
            if not roots[i]:
                continue
            same_day_before = int(((days[:j] == days[j]) & (times[:j] < times[j])).sum())
            assert same_day_before < cap, f"root task {i} over the cap of {cap} (H2)"
            earlier = times[:j][times[:j] < times[j]]
            if gap and earlier.size:
                assert times[j] - earlier.max() >= gap, f"root task {i} inside the gap (H3)"
        if not followups:
            _, per_day = np.unique(days, return_counts=True)
            assert per_day.max() <= cap


SWEEP = """\
days = 1
seeds = 1

[[fleet]]
name = "2 std"
standard = 2

[[fleet]]
name = "2 std paced"
standard = 2
max_jobs_per_day = 5
min_gap_seconds = 600

[[workload]]
name = "gen"
[workload.generator]
rate_per_hour = 4
"""


def test_sweep_fleets_take_a_daily_cap_and_a_gap_for_every_account() -> None:
    grid = parse_sweep(SWEEP)
    plain, paced = grid.fleets
    assert not plain.paced and plain.label() == "2 standard"
    assert paced.max_jobs_per_day == 5 and paced.min_gap_seconds == 600
    assert paced.label() == "2 standard (cap 5/day, gap 600 s)"
    accounts = spec_accounts(paced, 0.0)
    assert [(a.max_jobs_per_day, a.min_gap_s) for a in accounts] == [(5, 600.0)] * 2
    assert all(not a.paced for a in spec_accounts(plain, 0.0))


@pytest.mark.parametrize(("old", "new", "message"), [
    ("max_jobs_per_day = 5", "max_jobs_per_day = 0",
     "sweep.toml:11: fleet[1].max_jobs_per_day: expected a value greater than 0, got 0"),
    ("min_gap_seconds = 600", "min_gap_seconds = -1",
     "sweep.toml:12: fleet[1].min_gap_seconds: expected a value greater than or equal to 0, "
     "got -1"),
    ("max_jobs_per_day = 5", "max_jobs_per_day = 2.5",
     "sweep.toml:11: fleet[1].max_jobs_per_day: expected a valid integer, got 2.5"),
])
def test_sweep_bad_pacing_values_name_line_and_field(tmp_path: Path, old: str, new: str,
                                                     message: str) -> None:
    f = tmp_path / "sweep.toml"
    f.write_text(SWEEP.replace(old, new))
    with pytest.raises(InputError) as exc:
        load_sweep(f)
    assert message in str(exc.value)


def test_sweep_with_a_paced_fleet_prints_what_pacing_costs_and_writes_the_plot(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A cap of 5 a day and a 10-minute gap on 2 accounts against ~4 roots an hour: the
    paced fleet queues work (R5) that the unpaced one does not, and waits longer."""
    f = tmp_path / "sweep.toml"
    f.write_text(SWEEP)
    out = tmp_path / "out"
    assert main(["sweep", str(f), "--workers", "1", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "what pacing costs (H2 daily cap, H3 gap; means over replicates):" in printed
    lines = {ln.split("  ")[0]: ln.split() for ln in printed.splitlines()
             if ln.startswith("2 std")}
    plain, paced = lines["2 std"], lines["2 std paced"]
    assert plain[2:5] == ["2", "-", "-"] and paced[3:6] == ["2", "5", "600"]
    assert float(plain[-4]) == 0.0 and float(paced[-4]) > 0.0  # queued %
    assert float(plain[-5]) == 1.0 and float(paced[-5]) > 1.0  # p95 vs unpaced
    png = out / "plots" / "pacing_costs.png"
    assert f"plot: {png}" in printed
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_without_a_paced_fleet_prints_no_pacing_table(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "sweep.toml"
    f.write_text(SWEEP.split("[[fleet]]\nname = \"2 std paced\"")[0] + "[[workload]]\n"
                 'name = "gen"\n[workload.generator]\nrate_per_hour = 4\n')
    out = tmp_path / "out"
    assert main(["sweep", str(f), "--workers", "1", "--out", str(out), "--no-progress"]) == 0
    assert "pacing" not in capsys.readouterr().out
    assert not (out / "plots").exists()


def test_the_pacing_sweep_and_the_plan_generator_describe_one_workload() -> None:
    """examples/sweeps/pacing.toml's workload is pacing-workload.toml (what the README's
    `byoa plan --max-jobs-per-account-day 200` run plans for)."""
    grid = load_sweep(REPO / "examples/sweeps/pacing.toml")
    (wl,) = grid.workloads
    data = tomllib.loads((REPO / "examples/sweeps/pacing-workload.toml").read_text())
    assert wl.generator == GeneratorModel(**data)


def test_readme_pacing_run_prints_the_recorded_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's `byoa sweep examples/sweeps/pacing.toml --workers 2 --out out/pacing`
    prints exactly tests/data/pacing_sweep.out.txt, which the README shows."""
    recorded = (REPO / "tests/data/pacing_sweep.out.txt").read_text(encoding="utf-8")
    assert recorded in (REPO / "README.md").read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    out = "out/pacing"
    assert main(["sweep", str(REPO / "examples/sweeps/pacing.toml"), "--workers", "2",
                 "--out", out, "--no-progress"]) == 0
    assert capsys.readouterr().out == recorded
    assert (tmp_path / out / "plots" / "pacing_costs.png").is_file()
