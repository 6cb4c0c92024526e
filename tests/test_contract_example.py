"""The contract's worked example (examples/, walked through in examples/README.md):
every field exact except the free-worded ``explanation`` and error ``message`` texts,
and those byte for byte against the recorded transcript."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from router.cli import main

REPO = Path(__file__).resolve().parent.parent


def _compare(expected: list[dict[str, object]], got: list[dict[str, object]]) -> None:
    assert len(got) == len(expected)
    for e, g in zip(expected, got, strict=True):
        assert set(g) == set(e), f"event {e['event']}: fields differ"
        for key, value in e.items():
            if key == "explanation":
                assert (g[key] is None) == (value is None), f"event {e['event']}: {key}"
            elif key == "error" and isinstance(value, dict):
                err = g[key]
                assert isinstance(err, dict)
                assert err["code"] == value["code"] and err["retryable"] == value["retryable"]
                assert isinstance(err["message"], str) and err["message"]
            else:
                assert g[key] == value, f"event {e['event']}: {key}: {g[key]!r} != {value!r}"


def test_worked_example_matches_expected(example_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    code = main(["replay", "--accounts", str(example_dir / "accounts.json"),
                 "--events", str(example_dir / "events.jsonl"), "--out", str(out)])
    assert code == 0
    expected = [json.loads(x) for x in (example_dir / "expected.jsonl").read_text().splitlines()]
    got = [json.loads(x) for x in out.read_text().splitlines()]
    _compare(expected, got)


def test_replay_output_is_byte_identical_to_the_recorded_transcript(example_dir: Path) -> None:
    """The whole output, our explanation and message wording included, is the one
    recorded in tests/data/worked_example.out.jsonl (and shown in the README): a
    refactoring that changes a byte of it fails here."""
    cmd = [sys.executable, "-m", "router.cli", "replay",
           "--accounts", str(example_dir / "accounts.json"),
           "--events", str(example_dir / "events.jsonl")]
    got = subprocess.run(cmd, capture_output=True, check=True).stdout
    assert got == (REPO / "tests" / "data" / "worked_example.out.jsonl").read_bytes()


def test_replay_is_deterministic_byte_for_byte_D1(example_dir: Path) -> None:
    cmd = [sys.executable, "-m", "router.cli", "replay",
           "--accounts", str(example_dir / "accounts.json"),
           "--events", str(example_dir / "events.jsonl")]
    first = subprocess.run(cmd, capture_output=True, check=True).stdout
    second = subprocess.run(cmd, capture_output=True, check=True).stdout
    assert first == second and first.count(b"\n") == 13
