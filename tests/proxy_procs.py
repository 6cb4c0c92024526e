"""Start real ``byoa serve`` processes on loopback ports for the proxy tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from redis_server import free_port

API_KEY = "test-key-0123456789"


class Proxy:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: str) -> None:
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, leases are left behind."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()


def start_proxy(args: list[str], log_dir: str, name: str = "proxy") -> Proxy:
    port = free_port()
    log = os.path.join(log_dir, f"{name}-{port}.log")
    byoa = os.path.join(os.path.dirname(sys.executable), "byoa")  # the installed entry point
    cmd = [byoa, "serve", "--port", str(port),
           "--api-key", API_KEY, "--log-level", "warning", *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    proxy = Proxy(proc, port, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"byoa serve exited: {proxy.output()}")
        try:
            if httpx.get(f"{proxy.url}/openapi.json", timeout=1).status_code == 200:
                return proxy
        except httpx.HTTPError:
            time.sleep(0.05)
    proxy.stop()
    raise RuntimeError(f"byoa serve did not come up: {proxy.output()}")


@contextmanager
def proxies(arg_sets: list[list[str]], log_dir: str) -> Iterator[list[Proxy]]:
    started: list[Proxy] = []
    try:
        for i, args in enumerate(arg_sets):
            started.append(start_proxy(args, log_dir, f"proxy{i}"))
        yield started
    finally:
        for p in started:
            p.stop()
