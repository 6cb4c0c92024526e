"""Scenario files: shipped ones load; mistakes name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.cli import main
from router.errors import InputError
from simulations.scenario import load_scenario, parse_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "simulations" / "scenarios"


@pytest.mark.parametrize("name", ["default", "policy_comparison", "bursty_agency"])
def test_shipped_scenarios_validate(name: str) -> None:
    sc = load_scenario(SCENARIOS / f"{name}.toml")
    assert sc.name == name


def test_comparison_scenario_compares_the_documented_policy_with_restore() -> None:
    sc = load_scenario(SCENARIOS / "policy_comparison.toml")
    assert [(v.name, v.restore_fast_on_renewal) for v in sc.variants] == [
        ("documented", False), ("restore_fast", True)]


@pytest.mark.parametrize("text, expected", [
    ('[simulation]\ndays = 3\ncolour = "red"\n[[fleet.groups]]\nplan = "pro"\n',
     "s.toml:3: simulation.colour: unknown field"),
    ('[simulation]\ndays = -1\n[[fleet.groups]]\nplan = "pro"\n',
     "s.toml:2: simulation.days: expected a value greater than 0, got -1"),
    ('[[fleet.groups]]\nplan = "pro"\n[[fleet.groups]]\nplan = "gold"\n',
     "s.toml:4: fleet.groups[1].plan: expected one of 'basic', 'standard', 'pro' or 'mega'"),
    ('[[fleet.groups]]\nplan = "pro"\n[workload.generator]\nmodes = { fast = 1, slow = 1 }\n',
     "s.toml:4: workload.generator.modes: 'slow' is not a mode"),
    ('[[fleet.groups]]\nplan = "pro"\n[workload]\ntrace = "t.csv"\n[workload.generator]\n',
     "workload: give either trace or [workload.generator], not both"),
    ('[simulation]\ndays = 3\n', "s.toml: fleet: required field is missing"),
    ('[simulation]\ndays = 3\n[fleet]\n', "(scenario): the fleet is empty"),
    ('[simulation]\ndays = 3\n[[fleet.groups]]\nplan = "pro"\nrenewal = "soon"\n',
     "s.toml:5: fleet.groups[0].renewal: expected 'spread' or an ISO-8601 UTC time"),
    ('[simulation\n', "s.toml: not valid TOML"),
])
def test_bad_scenario_names_file_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_scenario(text, source="s.toml")
    assert expected in str(exc.value)


def test_bad_scenario_on_the_command_line_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "bad.toml"
    p.write_text('[[fleet.groups]]\nplan = "pro"\ncount = 0\n', encoding="utf-8")
    assert main(["simulate", str(p), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert ("bad.toml:3: fleet.groups[0].count: "
            "expected a value greater than or equal to 1, got 0") in err
    assert main(["simulate", "--trace", "x.jsonl", "--out", str(tmp_path / "o")]) == 2
    assert "--accounts" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_H2_H3_fleet_groups_carry_caps_and_gaps_to_every_account() -> None:
    """H2/H3: ``max_jobs_per_day`` and ``min_gap_seconds`` on a ``[[fleet.groups]]``
    entry reach each of its accounts (explicit ``[[fleet.accounts]]`` take the
    accounts file's fields, the same model)."""
    from simulations.fleet import scenario_accounts

    sc = parse_scenario('[[fleet.groups]]\nplan = "pro"\ncount = 2\nmax_jobs_per_day = 200\n'
                        'min_gap_seconds = 30\n[[fleet.accounts]]\nid = "x"\nplan = "mega"\n'
                        'max_jobs_per_day = 5\n', source="s.toml")
    accs = scenario_accounts(sc, "s.toml", None, 0.0)
    assert [(a.id, a.max_jobs_per_day, a.min_gap_s) for a in accs] == [
        ("x", 5, 0.0), ("pro1-1", 200, 30.0), ("pro1-2", 200, 30.0)]


@pytest.mark.parametrize("text, expected", [
    ('[[fleet.groups]]\nplan = "pro"\nmax_jobs_per_day = 0\n',
     "s.toml:3: fleet.groups[0].max_jobs_per_day: expected a value greater than 0, got 0"),
    ('[[fleet.groups]]\nplan = "pro"\nmin_gap_seconds = -5\n',
     "s.toml:3: fleet.groups[0].min_gap_seconds: expected a value greater than or equal to 0, "
     "got -5"),
])
def test_bad_H2_H3_group_fields_name_file_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_scenario(text, source="s.toml")
    assert expected in str(exc.value)


@pytest.mark.parametrize("text, expected", [
    ('[simulation]\ndays = inf\n[[fleet.groups]]\nplan = "pro"\n',
     "s.toml:2: simulation.days: expected a finite number, got inf"),
    ('[simulation]\ndays = 1e9\n[[fleet.groups]]\nplan = "pro"\n',
     "s.toml:2: simulation.days: expected at most 3660 days (ten years), got 1000000000.0"),
    ('[simulation]\ndays = 1e-300\n[[fleet.groups]]\nplan = "pro"\n',
     "s.toml:2: simulation.days: expected at least 0.001 days (86.4 s), got 1e-300"),
    ('[[fleet.groups]]\nplan = "pro"\n[workload.generator]\nrate_per_hour = inf\n',
     "s.toml:4: workload.generator.rate_per_hour: expected a finite number, got inf"),
    ('[[fleet.groups]]\nplan = "pro"\n[workload.generator]\nrate_per_hour = 1e12\n',
     "s.toml:4: workload.generator.rate_per_hour: expected a value less than or equal to "
     "100000, got 1000000000000.0"),
    ('[[fleet.groups]]\nplan = "pro"\n[workload.generator]\nmodes = { fast = nan, relax = 2 }\n',
     "s.toml:4: workload.generator.modes.fast: expected a finite number, got nan"),
])
def test_scenario_values_out_of_range_are_named(text: str, expected: str) -> None:
    """Values that used to end in OverflowError, 'Unable to allocate 179 GiB', 'lam value
    too large' or 'Probabilities contain NaN' (or a simpy error for a tiny horizon)."""
    with pytest.raises(InputError) as exc:
        parse_scenario(text, source="s.toml")
    assert str(exc.value) == expected


def test_scenario_generator_too_large_for_memory_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "big.toml"
    p.write_text('[[fleet.groups]]\nplan = "pro"\n[workload.generator]\nrate_per_hour = 90000\n',
                 encoding="utf-8")
    assert main(["simulate", str(p), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"byoa simulate: {p}: workload.generator.rate_per_hour: rate_per_hour x 24 x days = "
        "64,800,000 root tasks expected; at most 20,000,000 (the workload is drawn in memory "
        "before the run)\n")


@pytest.mark.parametrize("args, expected", [
    (["--days", "0"], "--days: expected a value greater than 0, got 0.0"),
    (["--days", "-1"], "--days: expected a value greater than 0, got -1.0"),
    (["--days", "1e-300"], "--days: expected at least 0.001 days (86.4 s), got 1e-300"),
    (["--days", "nan"], "--days: expected a finite number, got nan"),
    (["--days", "inf"], "--days: expected a finite number, got inf"),
    (["--days", "1e9"], "--days: expected at most 3660 days (ten years), got 1000000000.0"),
    (["--seed", "-1"], "--seed: expected a value greater than or equal to 0, got -1"),
])
def test_simulate_bad_days_or_seed_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
        expected: str) -> None:
    """With a scenario, and (for --days) with --accounts/--trace, where inf used to hang."""
    code = main(["simulate", str(SCENARIOS / "default.toml"), *args, "--out",
                 str(tmp_path / "o"), "--no-progress"])
    assert code == 2 and capsys.readouterr().err == f"byoa simulate: {expected}\n"
    if args[0] != "--days":
        return
    acc = tmp_path / "acc.json"
    acc.write_text('{"accounts": [{"id": "a1", "plan": "pro"}]}', encoding="utf-8")
    trace = tmp_path / "t.csv"
    trace.write_text("submitted_at,task_id,task_type\n2026-01-01T00:00:00Z,t1,imagine\n",
                     encoding="utf-8")
    code = main(["simulate", "--accounts", str(acc), "--trace", str(trace), *args, "--out",
                 str(tmp_path / "o"), "--no-progress"])
    assert code == 2 and capsys.readouterr().err == f"byoa simulate: {expected}\n"


def test_scenario_with_a_bom_names_the_bom() -> None:
    with pytest.raises(InputError) as exc:
        parse_scenario('\ufeff[[fleet.groups]]\nplan = "pro"\n', source="s.toml")
    assert str(exc.value) == ("s.toml:1: not valid TOML: Unexpected UTF-8 BOM (column 1); "
                              "save the file as UTF-8 without a byte order mark")


@pytest.mark.parametrize("line, expected", [
    ("fast_hours_remaining = 1e308", "fleet.groups[0].fast_hours_remaining: expected a value "
     "less than or equal to 1000000, got 1e+308"),
    ("min_gap_seconds = 1e300", "fleet.groups[0].min_gap_seconds: expected a value less than "
     "or equal to 1000000000, got 1e+300"),
    ("renewal = 1e20", "fleet.groups[0].renewal: expected a time before "
     "9000-01-01T00:00:00Z, got 1e+20"),
    ("renewal = -1e20", "fleet.groups[0].renewal: expected a time from "
     "1970-01-01T00:00:00Z on, got -1e+20"),
])
def test_scenario_group_values_out_of_range_are_named(line: str, expected: str) -> None:
    """They reach the accounts (a raw pydantic dump) or datetime (OverflowError) otherwise."""
    with pytest.raises(InputError) as exc:
        parse_scenario(f'[[fleet.groups]]\nplan = "pro"\n{line}\n', source="s.toml")
    assert str(exc.value) == f"s.toml:3: {expected}"


@pytest.mark.parametrize("line, expected", [
    ("sample_minutes = 1e-300", "simulation.sample_minutes: expected a value greater than or "
     "equal to 1, got 1e-300"),
    ("retry_seconds = 1e-300", "simulation.retry_seconds: expected a value greater than or "
     "equal to 1, got 1e-300"),
])
def test_scenario_tiny_steps_are_refused(line: str, expected: str) -> None:
    """A step of 1e-300 passed 'greater than 0' and the run never ended."""
    with pytest.raises(InputError) as exc:
        parse_scenario(f'[simulation]\n{line}\n[[fleet.groups]]\nplan = "pro"\n',
                       source="s.toml")
    assert str(exc.value) == f"s.toml:2: {expected}"
