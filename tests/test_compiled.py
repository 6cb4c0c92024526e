"""Issue 13: the compiled core (``make compile``, mypyc) is a drop-in for the
pure-Python one. The same generated pools and event scripts run through both, the
compiled core in this process and the pure one (``BYOA_PURE=1``) in a worker
process, and give the same output lines, the same final ledger state, and the
same error where a script stops. Skipped when no compiled core is loaded, unless
``BYOA_REQUIRE_COMPILED=1`` (``make test-compiled``) makes that a failure."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from core_worker import play, receive, send
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_worker import digest

import router.pool
from router import compiled
from router.accounts import Account, InactiveWindow, Plan
from router.strategies import Strategy
from router.testing import account_document, event_scripts, pools

HERE = Path(__file__).resolve().parent

if not compiled.is_compiled(router.pool):
    if os.environ.get("BYOA_REQUIRE_COMPILED", "") not in ("", "0"):
        pytest.fail(f"BYOA_REQUIRE_COMPILED is set but the core is {compiled.status()}",
                    pytrace=False)
    pytest.skip(f"the core is {compiled.status()}", allow_module_level=True)


class PureWorker:
    """A worker script of this folder in a process of its own, on the pure-Python
    core (``BYOA_PURE=1``): ``core_worker.py`` (``play``) or ``sim_worker.py``
    (``digest``), both answering each call's arguments over ``core_worker``'s
    length-prefixed pickles."""

    def __init__(self, script: str) -> None:
        env = {**os.environ, "BYOA_PURE": "1"}
        self.proc = subprocess.Popen([sys.executable, str(HERE / script)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     cwd=HERE)

    def call(self, *args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        send(self.proc.stdin, args)
        result: dict[str, Any] = receive(self.proc.stdout)
        return result

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def pure() -> Iterator[PureWorker]:
    worker = PureWorker("core_worker.py")
    yield worker
    worker.close()


def test_the_worker_runs_the_pure_core_and_this_process_the_compiled_one(
        pure: PureWorker) -> None:
    assert compiled.status() == "compiled (mypyc)"
    theirs = pure.call('{"accounts": []}', [], True, True, False)
    assert theirs["core"] == "pure Python (BYOA_PURE is set)"


@settings(max_examples=2 * settings.default.max_examples)
@given(st.data())
def test_compiled_core_decides_exactly_as_the_pure_one(pure: PureWorker,
                                                       data: st.DataObject) -> None:
    """D1 across builds: every output line (decisions, explanations, outcomes,
    notifications, renewals, errors), every account's final state (fast time,
    flips, periods, pacing) and the stopping error are the same, for every
    strategy, indexed or scanned, explained or not."""
    accounts, policy = data.draw(pools(strategies=list(Strategy)))
    bots = [a.bot_id for a in accounts if a.bot_id is not None]
    script = data.draw(event_scripts([a.id for a in accounts], bots, max_events=60))
    work = (json.dumps(account_document(accounts, policy)), script,
            data.draw(st.booleans()), data.draw(st.booleans()), data.draw(st.booleans()))
    theirs, ours = pure.call(*work), play(*work)
    assert ours["core"] != theirs["core"]
    assert ours["records"] == theirs["records"]
    assert ours["accounts"] == theirs["accounts"]
    assert ours["error"] == theirs["error"]


def test_frozen_classes_copy_and_pickle_when_compiled() -> None:
    """The simulator deep-copies its accounts and the sweeps pickle them: a compiled
    frozen dataclass (InactiveWindow) survives both (within one core)."""
    import pickle

    acc = Account("a", Plan.PRO, inactive_window=InactiveWindow(3600, 7200))
    for twin in (copy.copy(acc), copy.deepcopy(acc), pickle.loads(pickle.dumps(acc))):
        assert twin == acc and twin.inactive_window == InactiveWindow(3600, 7200)


@pytest.fixture(scope="module")
def pure_sim() -> Iterator[PureWorker]:
    worker = PureWorker("sim_worker.py")
    yield worker
    worker.close()


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), std=st.integers(1, 6), pro=st.integers(1, 3),
       rate=st.sampled_from([30.0, 200.0, 900.0]), hours=st.sampled_from([3.0, 8.0, 24.0]),
       strategy=st.sampled_from([s.value for s in Strategy]), incidents=st.booleans())
def test_compiled_simulator_runs_exactly_as_the_pure_one(
        pure_sim: PureWorker, seed: int, std: int, pro: int, rate: float, hours: float,
        strategy: str, incidents: bool) -> None:
    """D1 across builds, for the simulator's loop (``simulations.simloop``, compiled
    with the core): generated scenarios (saturated or not, with bans and captchas or
    not, every strategy, R5 queueing and fallback) give the same per-task columns,
    samples, queue figures, incidents, recoveries and summaries on both."""
    args = (seed, std, pro, rate, hours, strategy, incidents)
    ours, theirs = digest(*args), pure_sim.call(*args)
    assert (ours["loop"], theirs["loop"]) == ("compiled", "pure")
    assert ours["runs"] == theirs["runs"]
