"""The sweep file: grid axes, seeds from one root, and clear errors (file:line: field)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from router import InputError
from router.accounts import Plan, Setting
from simulations.scenario import GeneratorModel
from simulations.sweep import derive_seed, expand
from simulations.sweepfile import load_sweep, parse_sweep

GOOD = """\
days = 2
seeds = 3
root_seed = 11

[[fleet]]
name = "small"
standard = 2
relax_set = { pro = 1 }

[[fleet]]
name = "big"
mega = 1

[[policy]]
name = "documented"

[[policy]]
name = "restore"
restore_fast_on_renewal = true

[[workload]]
name = "gen"
[workload.generator]
rate_per_hour = 5
"""


def _bad(tmp_path: Path, text: str) -> str:
    f = tmp_path / "sweep.toml"
    f.write_text(text)
    with pytest.raises(InputError) as exc:
        load_sweep(f)
    return str(exc.value)


def test_sweep_file_expands_fleets_x_policies_x_workloads_x_seeds() -> None:
    grid = parse_sweep(GOOD)
    specs = expand(grid)
    assert grid.size == len(specs) == 2 * 2 * 1 * 3
    assert [s.index for s in specs] == list(range(12))
    small = grid.fleets[0]
    assert small.count(Plan.STANDARD, Setting.FAST) == 2
    assert small.count(Plan.PRO, Setting.RELAX) == 1
    assert grid.policies[1].policy.restore_fast_on_renewal is True
    assert grid.workloads[0].generator == GeneratorModel(rate_per_hour=5)


def test_sweep_seeds_are_spawned_from_one_root_seed_sequence() -> None:
    """Replicate r gets child r of SeedSequence(root_seed); every fleet and policy of the
    same replicate shares it (common random numbers)."""
    specs = expand(parse_sweep(GOOD))
    for s in specs:
        child = np.random.SeedSequence(11).spawn(3)[s.replicate]
        assert s.seed == int(child.generate_state(1, dtype=np.uint32)[0])
    assert len({s.seed for s in specs}) == 3
    assert derive_seed(11, 0) != derive_seed(12, 0)


def test_sweep_file_unknown_field_names_line_and_field(tmp_path: Path) -> None:
    msg = _bad(tmp_path, GOOD.replace('mega = 1', 'gold = 1'))
    assert "sweep.toml:12: fleet[1].gold: unknown field" in msg


def test_sweep_file_bad_strategy_lists_the_allowed_ones(tmp_path: Path) -> None:
    msg = _bad(tmp_path, GOOD.replace('name = "documented"',
                                      'name = "documented"\nstrategy = "fastest"'))
    assert "sweep.toml:16: policy[0].strategy: expected one of" in msg and "fastest" in msg


def test_sweep_file_negative_count_is_rejected(tmp_path: Path) -> None:
    msg = _bad(tmp_path, GOOD.replace("standard = 2", "standard = -2"))
    assert "sweep.toml:7: fleet[0].standard:" in msg and "greater than or equal to 0" in msg


def test_sweep_file_empty_fleet_is_rejected(tmp_path: Path) -> None:
    msg = _bad(tmp_path, GOOD.replace("mega = 1", ""))
    assert "fleet[1]" in msg and "at least one account" in msg


def test_sweep_file_workload_needs_exactly_one_source(tmp_path: Path) -> None:
    msg = _bad(tmp_path, GOOD.replace('name = "gen"', 'name = "gen"\ntrace = "t.jsonl"'))
    assert "workload[0]" in msg and "exactly one of 'trace'" in msg


def test_sweep_file_missing_trace_names_the_file(tmp_path: Path) -> None:
    text = GOOD.split("[[workload]]")[0] + '[[workload]]\nname = "w"\ntrace = "nope.jsonl"\n'
    msg = _bad(tmp_path, text)
    assert "workload[0].trace: no such file" in msg and "nope.jsonl" in msg


def test_sweep_file_duplicate_names_are_rejected(tmp_path: Path) -> None:
    msg = _bad(tmp_path, GOOD.replace('name = "restore"', 'name = "documented"'))
    assert "policy[1].name: duplicate name 'documented'" in msg


def test_sweep_file_not_toml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid TOML" in _bad(tmp_path, "days = = 3\n")
    with pytest.raises(InputError, match="no such file"):
        load_sweep(tmp_path / "absent.toml")


def test_sweep_file_bad_days_and_seeds(tmp_path: Path) -> None:
    msg = _bad(tmp_path, GOOD.replace("days = 2", "days = 0").replace("seeds = 3", "seeds = 0"))
    assert "sweep.toml:1: days:" in msg and "sweep.toml:2: seeds:" in msg


def test_sweep_file_generator_is_checked_when_the_file_is_read(tmp_path: Path) -> None:
    """Generator parameters are the scenario's [workload.generator]: checked up front."""
    msg = _bad(tmp_path, GOOD.replace("rate_per_hour = 5", "rate_per_hr = 5"))
    assert "workload[0].generator.rate_per_hr: unknown field" in msg


def test_sweep_file_policy_takes_any_router_option_but_seed(tmp_path: Path) -> None:
    grid = parse_sweep(GOOD.replace('name = "documented"',
                                    'name = "documented"\nestimates = { imagine = 90 }'))
    assert grid.policies[0].policy.estimates["imagine"] == 90.0
    msg = _bad(tmp_path, GOOD.replace('name = "documented"', 'name = "documented"\nseed = 3'))
    assert "policy[0].seed: unknown field" in msg


@pytest.mark.parametrize("days, expected", [
    ("inf", "sweep.toml:1: days: expected a finite number, got inf"),
    ("1e9", "sweep.toml:1: days: expected at most 3660 days (ten years), got 1000000000.0"),
])
def test_sweep_file_days_out_of_range(tmp_path: Path, days: str, expected: str) -> None:
    """Used to be an OverflowError (inf) or a numpy allocation failure in the workers."""
    msg = _bad(tmp_path, GOOD.replace("days = 2", f"days = {days}"))
    assert msg.replace(str(tmp_path / "sweep.toml"), "sweep.toml") == expected


def test_sweep_file_generator_too_large_for_memory(tmp_path: Path) -> None:
    msg = _bad(tmp_path, GOOD.replace("days = 2", "days = 60")
               .replace("rate_per_hour = 5", "rate_per_hour = 20000"))
    assert msg.replace(str(tmp_path / "sweep.toml"), "sweep.toml") == (
        "sweep.toml:24: workload[0].generator.rate_per_hour: rate_per_hour x 24 x days = "
        "28,800,000 root tasks expected; at most 20,000,000 (the workload is drawn in memory "
        "before the run)")


def test_sweep_file_fleet_count_has_an_upper_bound(tmp_path: Path) -> None:
    msg = _bad(tmp_path, GOOD.replace("standard = 2", "standard = 1000000000"))
    assert msg.replace(str(tmp_path / "sweep.toml"), "sweep.toml") == (
        "sweep.toml:7: fleet[0].standard: expected a value less than or equal to 100000, "
        "got 1000000000")
