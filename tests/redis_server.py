"""A real ``redis-server`` for the tests: a free loopback port, a temp dir, stopped after.

Nothing is persisted (no RDB, no AOF); only 127.0.0.1 is bound.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def redis_server() -> Iterator[str]:
    """Start ``redis-server`` and yield its URL (``redis://127.0.0.1:PORT/0``)."""
    exe = shutil.which("redis-server")
    assert exe, "redis-server is not installed (.ci/run installs the Debian package)"
    with tempfile.TemporaryDirectory(prefix="byoa-redis-") as tmp:
        port = free_port()
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
             "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = redis.Redis.from_url(url)
            for _ in range(500):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.01)
            else:
                raise RuntimeError(f"redis-server did not start on port {port}")
            client.close()
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)
