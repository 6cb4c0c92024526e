"""Every routing option reaches the ``Pool`` that runs, through every entry point.

For each field of ``router.Policy`` (iterated with ``dataclasses.fields``, so a new
option is covered without touching this file) a non-default value is given through
each way in: the accounts file (``byoa replay`` and ``byoa simulate --accounts F
--trace T``), a scenario file's ``[policy]`` and ``[[variants]]``, a sweep file's
``[[policy]]``, and ``byoa plan --policies``. The ``Pool`` constructor is watched,
and the policy it was given must carry the value. The same for the rest of a run's
description: each ``[simulation]`` and ``[execution]`` field of a scenario, and a
sweep's and ``simulate --trace``'s horizon and seed, reach the ``Simulation``.
"""

from __future__ import annotations

import dataclasses
import enum
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from router.cli import main
from router.ledger import Policy
from router.pool import Pool

POLICY_FIELDS = [f.name for f in dataclasses.fields(Policy)]
START = "2026-11-02T00:00:00Z"
IMAGINE = {"model": "midjourney", "task_type": "imagine",
           "input": {"prompt": "a cat", "process_mode": "fast"}}


def _default(name: str) -> Any:
    return getattr(Policy(), name)


def _other(name: str) -> Any:
    """A valid value of option ``name`` that differs from its default."""
    value = _default(name)
    if isinstance(value, bool):
        return not value
    if isinstance(value, enum.Enum):
        members = list(type(value))
        return members[(members.index(value) + 1) % len(members)]
    if isinstance(value, int):
        return value + 7
    if isinstance(value, float):
        return value + 1.5
    if isinstance(value, dict):
        key = next(iter(value))
        return {**value, key: value[key] + 11.0}
    raise AssertionError(f"no non-default value for Policy.{name} ({value!r}): extend _other")


def _plain(value: Any) -> Any:
    """The value as it is written in a file (enums by their value)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _toml(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise AssertionError(f"cannot write {value!r} as TOML")


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Pool]]:
    """Every ``Pool`` built while the test runs (in this process)."""
    built: list[Pool] = []
    init = Pool.__init__

    def watch(self: Pool, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(Pool, "__init__", watch)
    yield built


def _accounts_file(tmp: Path, name: str, value: Any) -> Path:
    p = tmp / "accounts.json"
    p.write_text(json.dumps({"policy": {name: _plain(value)},
                             "accounts": [{"id": "a1", "plan": "pro"}]}), encoding="utf-8")
    return p


def _events(tmp: Path) -> Path:
    p = tmp / "trace.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"op": "submit", "at": START, "task_id": "t1",
                             "request": IMAGINE}) + "\n")
    return p


def _the_policy(pools: list[Pool]) -> Policy:
    assert pools, "no Pool was built"
    policies = {id(p.policy) for p in pools}
    assert len(policies) == 1, "expected one routing policy in the run"
    return pools[0].policy


@pytest.mark.parametrize("name", POLICY_FIELDS)
def test_accounts_file_policy_reaches_the_replay_pool(
        name: str, tmp_path: Path, pools: list[Pool], capsys: pytest.CaptureFixture[str]
) -> None:
    value = _other(name)
    accounts = _accounts_file(tmp_path, name, value)
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"op": "tick", "at": START}) + "\n", encoding="utf-8")
    assert main(["replay", "--accounts", str(accounts), "--events", str(events)]) == 0
    capsys.readouterr()
    assert getattr(_the_policy(pools), name) == value


@pytest.mark.parametrize("name", POLICY_FIELDS)
def test_accounts_file_policy_reaches_the_simulated_pool(
        name: str, tmp_path: Path, pools: list[Pool], capsys: pytest.CaptureFixture[str]
) -> None:
    value = _other(name)
    accounts = _accounts_file(tmp_path, name, value)
    code = main(["simulate", "--accounts", str(accounts), "--trace", str(_events(tmp_path)),
                 "--days", "1", "--out", str(tmp_path / "out"), "--no-plots",
                 "--no-progress"])
    capsys.readouterr()
    assert code == 0
    assert getattr(_the_policy(pools), name) == value


SCENARIO = """\
[simulation]
start = "2026-11-02T00:00:00Z"
days = 0.05

[[fleet.groups]]
plan = "pro"

[workload.generator]
rate_per_hour = 10
"""


@pytest.mark.parametrize("name", POLICY_FIELDS)
def test_scenario_policy_reaches_the_pool(
        name: str, tmp_path: Path, pools: list[Pool], capsys: pytest.CaptureFixture[str]
) -> None:
    value = _other(name)
    p = tmp_path / "s.toml"
    p.write_text(SCENARIO + f"\n[policy]\n{name} = {_toml(value)}\n", encoding="utf-8")
    code = main(["simulate", str(p), "--out", str(tmp_path / "out"), "--no-plots",
                 "--no-progress"])
    capsys.readouterr()
    assert code == 0
    assert getattr(_the_policy(pools), name) == value


@pytest.mark.parametrize("name", POLICY_FIELDS)
def test_scenario_variant_policy_reaches_the_pool(
        name: str, tmp_path: Path, pools: list[Pool], capsys: pytest.CaptureFixture[str]
) -> None:
    value = _other(name)
    p = tmp_path / "s.toml"
    p.write_text(SCENARIO + f'\n[[variants]]\nname = "base"\n\n[[variants]]\nname = "v"\n'
                 f"{name} = {_toml(value)}\n", encoding="utf-8")
    code = main(["simulate", str(p), "--out", str(tmp_path / "out"), "--no-plots",
                 "--no-progress"])
    capsys.readouterr()
    assert code == 0
    assert len(pools) == 2
    assert getattr(pools[0].policy, name) == _default(name)
    assert getattr(pools[1].policy, name) == value


SWEEP = """\
days = 0.05
seeds = 1
root_seed = 5
start = "2026-11-02T00:00:00Z"

[[fleet]]
name = "one pro"
pro = 1

[[workload]]
name = "gen"
[workload.generator]
rate_per_hour = 10
"""


def _sweep_seed() -> int:
    from simulations.sweep import derive_seed

    return derive_seed(5, 0)


@pytest.mark.parametrize("name", POLICY_FIELDS)
def test_sweep_policy_reaches_the_pool(
        name: str, tmp_path: Path, pools: list[Pool], capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "sweep.toml"
    if name == "seed":
        # A sweep's router seed is each replicate's seed (root_seed, seeds): not a
        # [[policy]] option, so that every policy sees the same random numbers.
        value: Any = _sweep_seed()
        p.write_text(SWEEP + '\n[[policy]]\nname = "p"\n', encoding="utf-8")
    else:
        value = _other(name)
        p.write_text(SWEEP + f'\n[[policy]]\nname = "p"\n{name} = {_toml(value)}\n',
                     encoding="utf-8")
    code = main(["sweep", str(p), "--workers", "1", "--out", str(tmp_path / "out"),
                 "--no-progress"])
    capsys.readouterr()
    assert code == 0
    assert getattr(_the_policy(pools), name) == value


def _plan_presets() -> list[str]:
    from simulations.capacity_cli import PLAN_POLICIES

    return list(PLAN_POLICIES)


@pytest.mark.parametrize("preset", _plan_presets())
def test_plan_policy_presets_reach_the_pool(
        preset: str, tmp_path: Path, pools: list[Pool], capsys: pytest.CaptureFixture[str]
) -> None:
    from simulations.capacity_cli import PLAN_POLICIES
    from simulations.sweep import derive_seed

    gen = tmp_path / "gen.toml"
    gen.write_text("rate_per_hour = 2\n", encoding="utf-8")
    code = main(["plan", "--generator", str(gen), "--days", "0.1", "--plans", "pro",
                 "--max-accounts", "1", "--seeds", "1", "--root-seed", "3",
                 "--max-simulated", "1", "--policies", preset, "--allow-rejections",
                 "--max-downgraded", "100", "--p95-fast-wait", "1e9", "--workers", "1",
                 "--out", str(tmp_path / "out"), "--no-progress"])
    capsys.readouterr()
    assert code == 0
    expected = dataclasses.replace(PLAN_POLICIES[preset].policy, seed=derive_seed(3, 0))
    assert _the_policy(pools) == expected
    assert any(getattr(expected, f) != _default(f) for f in POLICY_FIELDS if f != "seed") \
        or preset == "documented"


# ------------------------------------------------------------------ the run spec
# The scenario's [simulation] and [execution] tables are the rest of a RunSpec: each
# field, set to a non-default value in the file, reaches the simulation that runs.

def _sim_other(model: Any, name: str) -> Any:
    value = getattr(model, name)
    if value is None:
        return 0.5 if name == "failure_rate" else "2026-12-07T00:00:00Z"
    if isinstance(value, dict):
        key = next(iter(value))
        inner = value[key]
        if isinstance(inner, dict):
            k2 = next(iter(inner))
            return {key: {**inner, k2: inner[k2] + 1}}
        return {key: inner + 11.0}
    return _other_scalar(value)


def _other_scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 7
    if isinstance(value, float):
        return value + 1.5
    raise AssertionError(f"no non-default value for {value!r}: extend _sim_other")


@pytest.fixture
def simulations_built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The arguments of every ``Simulation`` built while the test runs."""
    from simulations.harness import Simulation

    built: list[dict[str, Any]] = []
    init = Simulation.__init__

    def watch(self: Simulation, accounts: Any, policy: Any, workload: Any, execution: Any,
              options: Any, seed: int = 0) -> None:
        built.append({"execution": execution, "options": options, "seed": seed})
        init(self, accounts, policy, workload, execution, options, seed)

    monkeypatch.setattr(Simulation, "__init__", watch)
    yield built


def _simulation_fields() -> list[str]:
    from simulations.scenario import SimulationModel

    return list(SimulationModel.model_fields)


def _execution_fields() -> list[str]:
    from simulations.scenario import ExecutionModel

    return list(ExecutionModel.model_fields)


#: Where each [simulation] field lands in the harness's inputs.
SIMULATION_SEEN: dict[str, Any] = {
    "start": lambda run: run["options"].start,
    "days": lambda run: (run["options"].horizon_end - run["options"].start) / 86_400.0,
    "seed": lambda run: run["seed"],
    "drain": lambda run: run["options"].drain,
    "sample_minutes": lambda run: run["options"].sample_s / 60.0,
    "retry_seconds": lambda run: run["options"].retry_s,
}


def test_every_simulation_field_has_a_place_in_the_harness() -> None:
    assert set(SIMULATION_SEEN) == set(_simulation_fields())


SIM_SCENARIO = """\
[[fleet.groups]]
plan = "pro"

[workload.generator]
rate_per_hour = 10
"""


def _run_scenario_text(tmp: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp / "s.toml"
    p.write_text(text, encoding="utf-8")
    code = main(["simulate", str(p), "--out", str(tmp / "out"), "--no-plots", "--no-progress"])
    capsys.readouterr()
    assert code == 0


@pytest.mark.parametrize("name", _simulation_fields())
def test_scenario_simulation_field_reaches_the_run(
        name: str, tmp_path: Path, simulations_built: list[dict[str, Any]],
        capsys: pytest.CaptureFixture[str]) -> None:
    from router.timeutil import parse_time
    from simulations.scenario import SimulationModel

    value = _sim_other(SimulationModel(), name)
    days = "" if name == "days" else "days = 0.05\n"
    _run_scenario_text(tmp_path, f"[simulation]\n{days}{name} = {_toml(value)}\n"
                       + SIM_SCENARIO, capsys)
    (run,) = simulations_built
    expected = parse_time(value) if name == "start" else value
    assert SIMULATION_SEEN[name](run) == pytest.approx(expected)


@pytest.mark.parametrize("name", _execution_fields())
def test_scenario_execution_field_reaches_the_run(
        name: str, tmp_path: Path, simulations_built: list[dict[str, Any]],
        capsys: pytest.CaptureFixture[str]) -> None:
    from simulations.scenario import ExecutionModel

    value = _sim_other(ExecutionModel(), name)
    _run_scenario_text(tmp_path, "[simulation]\ndays = 0.05\n\n" + SIM_SCENARIO
                       + f"\n[execution]\n{name} = {_toml(value)}\n", capsys)
    (run,) = simulations_built
    got = getattr(run["execution"], name)
    if isinstance(value, dict):  # overrides merge into the defaults
        got = {k: got[k] for k in value}
    assert got == value


def test_sweep_run_options_reach_the_run(
        tmp_path: Path, simulations_built: list[dict[str, Any]],
        capsys: pytest.CaptureFixture[str]) -> None:
    from router.timeutil import parse_time
    from simulations.sweep import derive_seed

    p = tmp_path / "sweep.toml"
    p.write_text(SWEEP.replace("days = 0.05", "days = 0.07")
                 .replace("2026-11-02T00:00:00Z", "2026-12-07T00:00:00Z"), encoding="utf-8")
    assert main(["sweep", str(p), "--workers", "1", "--out", str(tmp_path / "out"),
                 "--no-progress"]) == 0
    capsys.readouterr()
    (run,) = simulations_built
    assert run["options"].start == parse_time("2026-12-07T00:00:00Z")
    assert run["options"].horizon_end - run["options"].start == pytest.approx(0.07 * 86_400)
    assert run["seed"] == derive_seed(5, 0)


def test_simulate_trace_options_reach_the_run(
        tmp_path: Path, simulations_built: list[dict[str, Any]],
        capsys: pytest.CaptureFixture[str]) -> None:
    from router.timeutil import parse_time

    accounts = _accounts_file(tmp_path, "seed", 0)
    assert main(["simulate", "--accounts", str(accounts), "--trace", str(_events(tmp_path)),
                 "--days", "0.5", "--seed", "9", "--out", str(tmp_path / "out"),
                 "--no-plots", "--no-progress"]) == 0
    capsys.readouterr()
    (run,) = simulations_built
    assert run["options"].start == parse_time(START)  # the trace's first task
    assert run["options"].horizon_end - run["options"].start == pytest.approx(0.5 * 86_400)
    assert run["seed"] == 9


def test_policy_models_have_exactly_the_policy_fields() -> None:
    """The file formats' policy models are built from the dataclass, not copied."""
    from router.io.loading import PolicyModel
    from simulations.scenario import VariantModel
    from simulations.sweepfile import SweepPolicyModel

    fields = set(POLICY_FIELDS)
    assert set(PolicyModel.model_fields) == fields
    assert set(VariantModel.model_fields) == fields | {"name"}
    assert set(SweepPolicyModel.model_fields) == (fields - {"seed"}) | {"name"}
