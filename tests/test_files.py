"""Files at the edges (router.io.files): a command never truncates or replaces one of
its inputs, never hangs on a FIFO or grows without bound on a device, and says what
is wrong with a bad input or output path (file, what was expected; exit 2)."""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from router.cli import main
from router.errors import InputError
from router.io import files
from router.io.files import atomic_output

REPO = Path(__file__).resolve().parent.parent
ACCOUNTS = REPO / "examples" / "accounts.json"
EVENTS = REPO / "examples" / "events.jsonl"


def byoa(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copy(ACCOUNTS, tmp_path / "accounts.json")
    shutil.copy(EVENTS, tmp_path / "events.jsonl")
    return tmp_path


def test_replay_refuses_to_write_over_its_events_file(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ev = work / "events.jsonl"
    before = ev.read_bytes()
    code, err = byoa(["replay", "--accounts", str(work / "accounts.json"), "--events", str(ev),
                      "--out", str(ev)], capsys)
    assert (code, err) == (2, f"byoa replay: {ev}: is also an input ({ev}); "
                              "write the output elsewhere\n")
    assert ev.read_bytes() == before


def test_replay_refuses_to_write_over_its_accounts_file_by_another_name(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    acc = work / "accounts.json"
    link = work / "same.json"
    link.symlink_to(acc)
    before = acc.read_bytes()
    code, err = byoa(["replay", "--accounts", str(acc), "--events", str(work / "events.jsonl"),
                      "--out", str(link)], capsys)
    assert code == 2 and "is also an input" in err
    assert acc.read_bytes() == before


def test_a_missing_events_file_leaves_an_existing_output_untouched(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = work / "out.jsonl"
    out.write_text("yesterday's results\n")
    code, err = byoa(["replay", "--accounts", str(work / "accounts.json"),
                      "--events", str(work / "nope.jsonl"), "--out", str(out)], capsys)
    assert (code, err) == (2, f"byoa replay: {work / 'nope.jsonl'}: no such file\n")
    assert out.read_text() == "yesterday's results\n"


def test_a_bad_event_midway_leaves_the_old_output_and_no_temporary_file(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ev = work / "events.jsonl"
    ev.write_text(ev.read_text() + '{"op": "launch"}\n')
    out = work / "out.jsonl"
    out.write_text("old\n")
    code, err = byoa(["replay", "--accounts", str(work / "accounts.json"), "--events", str(ev),
                      "--out", str(out)], capsys)
    assert code == 2 and err.startswith(f"byoa replay: {ev}:14: op: ")
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in work.iterdir()) == ["accounts.json", "events.jsonl",
                                                      "out.jsonl"]


def test_a_good_replay_replaces_the_output_whole(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = work / "out.jsonl"
    out.write_text("old\n" * 1000)
    code, _ = byoa(["replay", "--accounts", str(work / "accounts.json"),
                    "--events", str(work / "events.jsonl"), "--out", str(out)], capsys)
    assert code == 0
    assert out.read_bytes() == (REPO / "tests" / "data" / "worked_example.out.jsonl").read_bytes()


@pytest.mark.parametrize(("out", "message"), [
    ("missing/out.jsonl", "{w}/missing/out.jsonl: the folder {w}/missing does not exist"),
    (".", "{w}: is a directory, expected a file name"),
    ("accounts.json/out.jsonl", "{w}/accounts.json/out.jsonl: {w}/accounts.json is not a folder"),
])
def test_bad_output_paths_get_a_message(work: Path, out: str, message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    target = os.path.normpath(work / out)
    code, err = byoa(["replay", "--accounts", str(work / "accounts.json"),
                      "--events", str(work / "events.jsonl"), "--out", target], capsys)
    assert (code, err) == (2, "byoa replay: " + message.format(w=work) + "\n")


def test_a_full_disk_is_a_message_and_the_target_is_untouched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")

    def full(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "replace", full)
    with pytest.raises(InputError) as err, atomic_output(target) as fh:
        fh.write("new")
    assert str(err.value) == f"{target}: cannot write: No space left on device"
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("option", ["--accounts", "--events"])
def test_a_fifo_is_refused_at_once(work: Path, option: str) -> None:
    fifo = work / "pipe"
    os.mkfifo(fifo)
    argv = {"--accounts": str(work / "accounts.json"), "--events": str(work / "events.jsonl")}
    argv[option] = str(fifo)
    cmd = [sys.executable, "-m", "router.cli", "replay", *[x for kv in argv.items() for x in kv]]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == (f"byoa replay: {fifo}: is not a regular file (a FIFO, socket or "
                           "device?), expected a file\n")


def test_a_fifo_request_is_refused_at_once(work: Path) -> None:
    fifo = work / "body.json"
    os.mkfifo(fifo)
    cmd = [sys.executable, "-m", "router.cli", "route", "--accounts",
           str(work / "accounts.json"), "--request", str(fifo)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (
        2, f"byoa route: {fifo}: is not a regular file (a FIFO, socket or device?), "
           "expected a file\n")


def test_dev_zero_does_not_grow_without_bound(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = byoa(["replay", "--accounts", "/dev/zero", "--events", str(EVENTS)], capsys)
    assert (code, err) == (2, "byoa replay: /dev/zero: is not a regular file (a FIFO, socket "
                              "or device?), expected a file\n")


def test_a_directory_is_not_an_accounts_file(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, err = byoa(["replay", "--accounts", str(tmp_path), "--events", str(EVENTS)], capsys)
    assert (code, err) == (2, f"byoa replay: {tmp_path}: is a directory, expected a file\n")


def test_files_over_the_size_limit_are_refused(
        work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BYOA_MAX_INPUT_BYTES", "100")
    acc = work / "accounts.json"
    code, err = byoa(["replay", "--accounts", str(acc), "--events", str(EVENTS)], capsys)
    size = acc.stat().st_size
    assert (code, err) == (2, f"byoa replay: {acc}: is {size:,} bytes, more than the input "
                              "limit of 100 bytes (set $BYOA_MAX_INPUT_BYTES to raise it)\n")


def test_a_gzip_that_inflates_past_the_limit_is_refused(
        work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    bomb = work / "events.jsonl.gz"
    with gzip.open(bomb, "wb") as fh:
        fh.write(b" " * 2_000_000)
    assert bomb.stat().st_size < 100_000
    monkeypatch.setenv("BYOA_MAX_INPUT_BYTES", "100000")
    code, err = byoa(["replay", "--accounts", str(work / "accounts.json"),
                      "--events", str(bomb)], capsys)
    assert (code, err) == (2, f"byoa replay: {bomb}: inflates to more than the input limit "
                              "of 100,000 bytes (set $BYOA_MAX_INPUT_BYTES to raise it)\n")


def test_a_bad_size_limit_is_named(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BYOA_MAX_INPUT_BYTES", "lots")
    code, err = byoa(["replay", "--accounts", str(ACCOUNTS), "--events", str(EVENTS)], capsys)
    assert (code, err) == (2, "byoa replay: $BYOA_MAX_INPUT_BYTES: expected a whole number of "
                              "bytes, got 'lots'\n")


@pytest.mark.parametrize("argv", [
    ["simulate", "simulations/scenarios/default.toml", "--no-progress", "--no-plots"],
    ["sweep", "examples/sweeps/policies_small.toml", "--no-progress"],
    ["plan", "--trace", "data/mj2022-week1.events.jsonl.gz", "--no-progress"],
])
def test_output_folders_that_cannot_be_are_refused_before_the_run(
        argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(REPO)
    a_file = tmp_path / "results"
    a_file.write_text("not a folder")
    code, err = byoa([*argv, "--out", str(a_file)], capsys)
    assert (code, err) == (2, f"byoa {argv[0]}: {a_file}: is a file, expected a folder for "
                              "the outputs\n")
    code, err = byoa([*argv, "--out", str(a_file / "run")], capsys)
    assert (code, err) == (2, f"byoa {argv[0]}: {a_file / 'run'}: cannot create the folder: "
                              "Not a directory\n")
    assert a_file.read_text() == "not a folder"


def test_simulate_refuses_its_own_scenario_as_the_output_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.toml"
    shutil.copy(REPO / "simulations" / "scenarios" / "default.toml", scenario)
    code, err = byoa(["simulate", str(scenario), "--out", str(scenario)], capsys)
    assert (code, err) == (2, f"byoa simulate: {scenario}: is also an input ({scenario}); "
                              "write the outputs elsewhere\n")
