"""``byoa plan`` end to end through the simulator, and its bad-input messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from small_trace import write_small_trace

from router.accounts import Plan
from router.cli import main
from simulations.bounds import profile_trace
from simulations.spec import PolicySpec
from simulations.tiling import tile_trace

_write_trace = write_small_trace


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_trace(tmp_path_factory.mktemp("trace") / "small.jsonl")


def test_plan_recommends_the_cheapest_passing_fleet_with_evidence(
        trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """27 fast GPU hours a month: $60 buys 30 h as 1 Pro (12 fast slots) or 2 Standard
    (6); everything cheaper is pruned by the fast-hours bound."""
    out = tmp_path / "plan"
    code = main(["plan", "--trace", str(trace), "--days", "2", "--seeds", "2",
                 "--max-accounts", "6", "--policies", "documented", "--workers", "2",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    res = json.loads((out / "plan.json").read_text())
    assert res["workload"]["profile"]["fast_hours_per_month"] == pytest.approx(
        30 * 24 * (60 + 75) / 3600)
    rec, runner = res["recommendation"], res["runner_up"]
    assert rec["fleet"] == "1 pro" and rec["monthly_cost_usd"] == 60.0
    assert runner["fleet"] == "2 standard" and runner["monthly_cost_usd"] == 60.0
    assert rec["seeds"] == 2 and rec["passed"]
    for name in ("p95_fast_wait_s", "downgraded_share", "rejected", "wasted_fast_hours"):
        assert set(rec["evidence"][name]) == {"mean", "min", "max", "stdev"}
    assert rec["evidence"]["rejected"]["max"] == 0
    assert res["pruned_by_bounds"]["fast hours"] > 0
    md = (out / "plan.md").read_text()
    printed = capsys.readouterr().out
    assert "## Recommendation: 1 pro" in md and "Monthly cost: $60.00" in md
    assert "## Runner-up: 2 standard" in printed


def test_plan_a_short_trace_is_repeated_to_cover_the_month(trace: Path, tmp_path: Path) -> None:
    tiled = tile_trace(trace, 5, tmp_path / "t.jsonl.gz")
    prof = profile_trace(tiled)
    assert prof.tasks == 5 * 24 * 3 and prof.days == 5
    assert prof.fast_tasks == 2 * 5 * 24


@pytest.mark.parametrize(("args", "message"), [
    (["--price", "gold=3"], "--price: expected PLAN=USD with PLAN one of basic, standard"),
    (["--price", "pro=-1"], "--price: expected PLAN=USD with a price >= 0"),
    (["--max-downgraded", "150"], "--max-downgraded: expected a percentage between 0 and 100"),
    (["--p95-fast-wait", "0"], "--p95-fast-wait: expected seconds > 0"),
    (["--seeds", "0"], "--seeds: expected an integer >= 1"),
    (["--plans", "pro,gold"], "--plans: expected a comma-separated list of basic"),
    (["--policies", "fastest"], "--policies: expected a comma-separated list of documented"),
    (["--extra-hours", "5,x"], "--extra-hours: expected comma-separated hours >= 0"),
    (["--days", "-1"], "--days: expected days > 0"),
    (["--days", "nan"], "byoa plan: --days: expected a finite number of days, got nan"),
    (["--days", "inf"], "byoa plan: --days: expected a finite number of days, got inf"),
    (["--days", "1e-300"], "byoa plan: --days: expected at least 0.001 days (86.4 s), "
     "got 1e-300"),
    (["--price", "pro=nan"], "byoa plan: --price: expected PLAN=USD with a finite price, "
     "got 'pro=nan'"),
    (["--price", "pro=inf"], "byoa plan: --price: expected PLAN=USD with a finite price, "
     "got 'pro=inf'"),
    (["--p95-fast-wait", "nan"], "byoa plan: --p95-fast-wait: expected seconds > 0, got nan"),
    (["--extra-hour-price", "inf"], "byoa plan: --extra-hour-price: expected USD >= 0, "
     "got inf"),
    (["--root-seed", "-1"], "byoa plan: --root-seed: expected an integer >= 0, got -1"),
    (["--extra-hours", "5,nan"], "byoa plan: --extra-hours: expected comma-separated hours "
     ">= 0, got '5,nan'"),
    (["--max-jobs-per-account-day", "0"], "byoa plan: --max-jobs-per-account-day: expected "
     "an integer >= 1 (jobs per account per UTC day, H2), got '0'"),
    (["--max-jobs-per-account-day", "-5"], "--max-jobs-per-account-day: expected an integer "
     ">= 1 (jobs per account per UTC day, H2), got '-5'"),
    (["--max-jobs-per-account-day", "2.5"], "--max-jobs-per-account-day: expected an integer "
     ">= 1 (jobs per account per UTC day, H2), got '2.5'"),
])
def test_plan_bad_option_exits_2_naming_the_option(
        trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        args: list[str], message: str) -> None:
    code = main(["plan", "--trace", str(trace), "--out", str(tmp_path), *args])
    assert code == 2
    assert message in capsys.readouterr().err


def test_plan_missing_trace_exits_2_naming_the_file(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.jsonl"
    assert main(["plan", "--trace", str(missing), "--out", str(tmp_path)]) == 2
    assert f"byoa plan: {missing}: --trace: no such file" in capsys.readouterr().err


def test_plan_malformed_trace_line_exits_2_with_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write_trace(tmp_path / "bad.jsonl", hours=2)
    bad.write_text(bad.read_text() + '{"op": "submit", "at": "yesterday"}\n')
    assert main(["plan", "--trace", str(bad), "--out", str(tmp_path)]) == 2
    assert f"{bad}:7" in capsys.readouterr().err


def test_plan_bad_generator_parameter_names_file_and_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gen = tmp_path / "gen.toml"
    gen.write_text("rate_per_hour = -3\n")
    assert main(["plan", "--generator", str(gen), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{gen}: rate_per_hour:" in err and "greater than or equal to 0" in err


def test_plan_from_generator_parameters(tmp_path: Path) -> None:
    """A generator workload: 2 roots an hour, all fast, no follow-ups (60 s imagines):
    24 fast GPU hours per 30 days. One Standard (15 h) is pruned by the bound; two
    (30 h, $60) are cheaper than a Mega ($120)."""
    gen = tmp_path / "gen.toml"
    gen.write_text('rate_per_hour = 2\nmodes = { fast = 1.0 }\nfollowups = []\n'
                   'task_mix = { imagine = 1.0 }\n')
    out = tmp_path / "plan"
    code = main(["plan", "--generator", str(gen), "--days", "2", "--seeds", "2",
                 "--max-accounts", "3", "--plans", "standard,mega", "--policies", "restore",
                 "--workers", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    res = json.loads((out / "plan.json").read_text())
    assert res["workload"]["profile"]["fast_hours_per_month"] == pytest.approx(24.0)
    assert res["pruned_by_bounds"] == {"fast hours": 1}
    assert res["recommendation"]["fleet"] == "2 standard"
    assert res["recommendation"]["evidence"]["downgraded_share"]["max"] == 0.0


def test_a_csv_trace_starts_the_run_at_its_earliest_row(tmp_path: Path) -> None:
    from router.timeutil import parse_time
    from simulations.run import point_spec
    from simulations.spec import FleetGroup, FleetSpec, ScenarioSpec, WorkloadSpec

    f = tmp_path / "t.csv"
    f.write_text("submitted_at,task_id,task_type,process_mode\n"
                 "2026-05-04T10:00:00Z,a,imagine,fast\n2026-05-04T09:00:00Z,b,imagine,relax\n")
    fleet = FleetSpec("f", (FleetGroup(Plan.PRO, 1),))
    spec = point_spec(ScenarioSpec(0, fleet, PolicySpec(), WorkloadSpec("t", trace=str(f)),
                                   1.0, 0, 0, 0))
    assert spec.start == parse_time("2026-05-04T09:00:00Z")
    assert spec.accounts[0].renews_at == spec.start + 15 * 86_400.0  # mid-month (spread)


def test_plan_without_a_passing_fleet_exits_1_and_says_what_to_change(
        trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two Basic accounts at most: no relax (R4) and 6.6 h of 27: every fleet is pruned."""
    code = main(["plan", "--trace", str(trace), "--plans", "basic", "--max-accounts", "2",
                 "--out", str(tmp_path), "--no-progress"])
    assert code == 1
    out = capsys.readouterr().out
    assert "none found within the search limits" in out and "0 simulated" in out
    res = json.loads((tmp_path / "plan.json").read_text())
    assert res["recommendation"] is None and res["pruned_by_bounds"]


def test_plan_takes_a_csv_trace(tmp_path: Path) -> None:
    """A CSV trace (the simulator's columns) is converted to an event script first."""
    rows = ["submitted_at,task_id,task_type,process_mode,prompt,parent_task_id"]
    for h in range(24):
        rows.append(f"2026-03-02T{h:02d}:00:00Z,f{h},imagine,fast,a fox,")
        rows.append(f"2026-03-02T{h:02d}:02:00Z,u{h},upscale,,,f{h}")
    f = tmp_path / "t.csv"
    f.write_text("\n".join(rows) + "\n")
    out = tmp_path / "plan"
    assert main(["plan", "--trace", str(f), "--days", "2", "--seeds", "1", "--max-accounts", "3",
                 "--policies", "documented", "--workers", "1", "--out", str(out),
                 "--no-progress"]) == 0
    res = json.loads((out / "plan.json").read_text())
    prof = res["workload"]["profile"]
    assert prof["fast_tasks"] == 2 * 48 and prof["by_type"] == {"imagine": 48, "upscale": 48}
    assert res["recommendation"] is not None


def test_plan_with_a_daily_cap_needs_more_accounts(tmp_path: Path) -> None:
    """2 fast roots an hour (48 a day, 24 fast GPU hours a month): unpaced, 2 Standard
    pass (test above). With --max-jobs-per-account-day 10 (H2) every candidate account is
    simulated with that cap, fewer than 5 accounts are pruned (48 > 4 x 10), and the
    recommended fleet keeps every account under 10 jobs per UTC day."""
    gen = tmp_path / "gen.toml"
    gen.write_text('rate_per_hour = 2\nmodes = { fast = 1.0 }\nfollowups = []\n'
                   'task_mix = { imagine = 1.0 }\n')
    out = tmp_path / "plan"
    code = main(["plan", "--generator", str(gen), "--days", "2", "--seeds", "2",
                 "--max-accounts", "8", "--plans", "standard", "--policies", "restore",
                 "--max-jobs-per-account-day", "10", "--workers", "1", "--out", str(out),
                 "--no-progress"])
    assert code == 0
    res = json.loads((out / "plan.json").read_text())
    assert res["targets"]["max_jobs_per_account_day"] == 10
    assert res["pruned_by_bounds"] == {"daily cap (H2)": 4}
    rec = res["recommendation"]
    assert rec["accounts"]["standard"] >= 5 and rec["fleet"].endswith("(cap 10/day)")
    assert rec["passed"] and rec["evidence"]["rejected"]["max"] == 0


def test_readme_plan_with_a_daily_cap_prints_the_recorded_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's `byoa plan ... --max-jobs-per-account-day 200` run prints exactly
    tests/data/plan_cap.out.txt, which the README shows."""
    repo = Path(__file__).resolve().parent.parent
    recorded = (repo / "tests/data/plan_cap.out.txt").read_text(encoding="utf-8")
    assert recorded in (repo / "README.md").read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code = main(["plan", "--generator", str(repo / "examples/sweeps/pacing-workload.toml"),
                 "--days", "7", "--plans", "standard", "--policies", "documented",
                 "--seeds", "2", "--max-jobs-per-account-day", "200", "--workers", "2",
                 "--out", "out/plan-cap", "--no-progress"])
    assert code == 0
    assert capsys.readouterr().out == recorded


def test_plan_generator_too_large_for_memory_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gen = tmp_path / "gen.toml"
    gen.write_text("rate_per_hour = 90000\n", encoding="utf-8")
    code = main(["plan", "--generator", str(gen), "--days", "30", "--out", str(tmp_path / "o"),
                 "--no-progress"])
    assert code == 2
    assert capsys.readouterr().err == (
        f"byoa plan: {gen}: rate_per_hour: rate_per_hour x 24 x days = 64,800,000 root tasks "
        "expected; at most 20,000,000 (the workload is drawn in memory before the run)\n")


def test_plan_generator_with_a_bom_names_the_bom(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gen = tmp_path / "gen.toml"
    gen.write_text("\ufeffrate_per_hour = 5\n", encoding="utf-8")
    code = main(["plan", "--generator", str(gen), "--out", str(tmp_path / "o"),
                 "--no-progress"])
    assert code == 2
    assert capsys.readouterr().err == (
        f"byoa plan: {gen}:1: not valid TOML: Unexpected UTF-8 BOM (column 1); save the file "
        "as UTF-8 without a byte order mark\n")


def test_plan_too_many_candidate_fleets_is_exit_2(
        trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--max-accounts 100 over four plans is 4.6 million fleets, all built in memory."""
    code = main(["plan", "--trace", str(trace), "--max-accounts", "100",
                 "--out", str(tmp_path), "--no-progress"])
    assert code == 2
    assert capsys.readouterr().err == (
        "byoa plan: --max-accounts: 100 accounts of 4 plans with 1 --extra-hours value(s) are "
        "4,598,125 fleets to weigh; at most 1,000,000 (lower --max-accounts or give fewer "
        "--plans)\n")
