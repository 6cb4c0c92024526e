"""``byoa serve``: run the reference proxy (one process; start several on one Redis).

SIGTERM drains the process gracefully (``TaskService.drain``): new submits get
``503 shutting_down``, running tasks get ``--drain-seconds`` to finish, the rest
are handed over to the other processes on the same Redis, then it exits. A
second SIGTERM (or SIGINT) exits at once.

``--redis embedded`` starts a private ``redis-server`` (router.stores.embedded) for
this process's lifetime, loads ``--accounts`` into it and prints its URL, so that a
second ``byoa serve --redis URL`` can join without installing anything.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import time
from types import FrameType
from typing import Any

from router.command import Command
from router.errors import InputError
from router.proxy.options import check_exhausted, check_options, listen
from router.stores.base import Store
from router.stores.secrets import ENV_SECRET_KEY, box_from_env
from router.stores.url import DEFAULT_TIMEOUT, redact_url
from router.timeutil import parse_time

ENV_KEY = "BYOA_API_KEY"
EMBEDDED = "embedded"


def start_embedded(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    """Replace ``--redis embedded`` by the URL of a private server that ``stack`` stops,
    and load ``--accounts`` (if given) into it."""
    from router.stores.embedded import embedded_redis, find_redis_server
    from router.stores.redis_store import connect, load_into_redis

    binary = find_redis_server()
    args.redis = stack.enter_context(embedded_redis(binary))
    print(f"byoa serve: embedded redis-server at {args.redis} "
          f"({binary.describe()}); stopped when this process exits", flush=True)
    if args.accounts:
        from router.io.loading import load_accounts

        accounts, policy = load_accounts(args.accounts)
        client = connect(args.redis)
        n = load_into_redis(client, accounts, policy, time.time(), prefix=args.prefix)
        client.close()
        print(f"byoa serve: loaded {n} accounts from {args.accounts}; another process "
              f"joins with: byoa serve --redis {args.redis} --port PORT", flush=True)
        args.accounts = None
    else:
        print(f"byoa serve: no accounts yet: byoa accounts load FILE --redis {args.redis}",
              flush=True)


def build_store(args: argparse.Namespace) -> Store:
    if args.redis and args.accounts:
        raise InputError("give either --redis (shared state) or --accounts (one process), "
                         "not both", field="--redis/--accounts")
    if args.redis:
        import redis

        from router.stores.cluster import client_for
        from router.stores.redis_store import RedisStore

        client = client_for(args.redis, timeout=args.redis_timeout)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise InputError(f"cannot reach Redis at {redact_url(args.redis)}: {exc}",
                             field="--redis") from None
        box = box_from_env()
        if box is None:
            print(f"byoa serve: no ${ENV_SECRET_KEY}: account secrets (discord_token) will "
                  "be refused rather than kept readable in Redis", flush=True)
        return RedisStore(client, prefix=args.prefix, lease_seconds=args.lease,
                          explain=args.explain, secret_box=box)
    if args.accounts:
        from router.io.loading import load_accounts
        from router.stores.memory import MemoryStore

        accounts, policy = load_accounts(args.accounts)
        return MemoryStore(accounts, policy, start_at=time.time(), explain=args.explain)
    raise InputError("say where the accounts are: --redis URL (after `byoa accounts load`) "
                     "or --accounts FILE", field="--redis/--accounts")


def cmd_serve(args: argparse.Namespace) -> int:
    api_key = args.api_key or os.environ.get(ENV_KEY, "")
    if not api_key:
        raise InputError(f"an API key is required: --api-key KEY or ${ENV_KEY}",
                         field="--api-key")
    check_options(args, EMBEDDED)
    exhausted = fast_exhausted(args.upstream_fast_exhausted)
    # bound first: a port in use is said before anything starts (exit 2)
    sockets = listen(args.host, args.port)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # uvicorn re-raises SIGTERM once it has shut down; as an exception it unwinds
    # this stack, so an embedded redis-server and its directory go too
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with contextlib.ExitStack() as stack:
        for sock in sockets:
            stack.callback(sock.close)
        if args.redis == EMBEDDED:
            start_embedded(args, stack)
        return _serve(args, api_key, sockets, exhausted)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _serve(args: argparse.Namespace, api_key: str, sockets: list[socket.socket],
           exhausted: dict[str, float]) -> int:
    store = build_store(args)
    try:
        if exhausted:  # H4: accounts of this store (known once it is loaded)
            check_exhausted(exhausted, (a.id for a in store.accounts()))
        _run(args, api_key, sockets, exhausted, store)
    finally:
        store.close()
    return 0


def _run(args: argparse.Namespace, api_key: str, sockets: list[socket.socket],
         exhausted: dict[str, float], store: Store) -> None:
    import uvicorn

    from router.proxy.app import create_app
    from router.proxy.service import ProxyConfig, TaskService
    from router.proxy.upstream import SimulatedUpstream

    queue = None
    calls = epoch = None
    if args.redis:
        from router.proxy.queue import RedisQueue
        from router.proxy.storecalls import redis_calls
        from router.proxy.storeepoch import StoreEpoch
        from router.stores.redis_store import RedisStore

        assert isinstance(store, RedisStore)
        queue = RedisQueue(store.r, prefix=args.prefix, claim_seconds=args.lease)
        epoch = StoreEpoch(store)  # an emptied or reloaded store is reported
        calls = redis_calls(store, epoch)  # every Redis round trip on one worker thread
    config = ProxyConfig(api_key=api_key, max_body_bytes=args.max_body,
                         start_delay=args.start_delay, notify_url=args.notify_url,
                         notify_secret=os.environ.get("BYOA_NOTIFY_SECRET", ""),
                         maintain_interval=maintain_interval(args.lease),
                         webhook_backoff=args.webhook_backoff)
    upstream = SimulatedUpstream(speedup=args.speedup, seed=args.seed, fail_rate=args.fail_rate,
                                 fast_exhausted=exhausted)
    service = TaskService(store, upstream, config, queue, calls, epoch)
    app = create_app(service)
    print(f"byoa serve: http://{args.host}:{args.port} "
          f"({'redis ' + redact_url(args.redis) if args.redis else 'in-memory ' + args.accounts})",
          flush=True)
    server = _draining_server(uvicorn.Config(app, host=args.host, port=args.port,
                                             log_level=args.log_level.lower(),
                                             access_log=args.access_log,
                                             timeout_graceful_shutdown=CLOSE_SECONDS),
                              service, args.drain_seconds)
    server.run(sockets=sockets)  # bound by cmd_serve (router.proxy.options.listen)


def fast_exhausted(values: list[str] | None) -> dict[str, float]:
    """``--upstream-fast-exhausted ACCOUNT[@TIME]`` (repeatable): account id -> the time
    from which the simulated Midjourney has no fast time for it (H4)."""
    out: dict[str, float] = {}
    for value in values or []:
        account, at, when = value.rpartition("@") if "@" in value else (value, "", "")
        if not account:
            raise InputError(f"expected ACCOUNT or ACCOUNT@TIME, got {value!r}",
                             field="--upstream-fast-exhausted")
        try:
            out[account] = parse_time(when) if at else float("-inf")
        except ValueError as exc:
            raise InputError(str(exc), field="--upstream-fast-exhausted") from None
    return out


#: after the drain, how long uvicorn waits for client connections to close (a
#: keep-alive client that keeps its connection open must not hold the exit)
CLOSE_SECONDS = 2


def maintain_interval(lease: float) -> float:
    """How often leases are renewed and dead processes' tasks adopted: a third of
    the lease, between 0.05 and 5 s. Adoption takes at most lease + this."""
    return max(min(lease / 3, 5.0), 0.05)


def _draining_server(config: Any, service: Any, drain_seconds: float) -> Any:
    """A uvicorn server whose first SIGTERM drains ``service`` before it exits."""
    import asyncio

    import uvicorn

    class DrainingServer(uvicorn.Server):
        draining = False
        loop: asyncio.AbstractEventLoop | None = None
        drain_task: asyncio.Future[None] | None = None

        async def serve(self, sockets: Any = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().serve(sockets)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if sig != signal.SIGTERM or self.draining or self.loop is None:
                super().handle_exit(sig, frame)
                return
            self.draining = True
            self._captured_signals.append(sig)  # re-raised after shutdown (exit stack)
            self.loop.call_soon_threadsafe(self._start_drain)

        def _start_drain(self) -> None:
            self.drain_task = asyncio.ensure_future(self._drain())

        async def _drain(self) -> None:
            try:
                await service.drain(drain_seconds)
            except Exception:
                logging.getLogger(__name__).exception("draining failed; exiting")
            self.should_exit = True

    return DrainingServer(config)


def setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--redis", help="Redis URL: shared state for several processes "
                   "(redis://HOST:PORT/DB, or redis+cluster://HOST:PORT for a Redis Cluster "
                   "through any of its nodes); "
                   "'embedded' starts a private redis-server for this process's lifetime "
                   "(loads --accounts into it and prints its URL for others to join)")
    p.add_argument("--prefix", default="byoa", help="Redis key prefix (default byoa)")
    p.add_argument("--redis-timeout", type=float, default=DEFAULT_TIMEOUT,
                   help="seconds a Redis command may take before the request gets 503 "
                   f"store_unavailable with Retry-After (default {DEFAULT_TIMEOUT:g})")
    p.add_argument("--accounts", help="accounts file for a single in-memory process "
                   "(or to load into --redis embedded)")
    p.add_argument("--api-key", help=f"the x-api-key clients must send (default ${ENV_KEY})")
    p.add_argument("--lease", type=float, default=30.0,
                   help="reservation lease in seconds (default 30): a process that dies "
                   "has its tasks adopted by another one within the lease plus a third "
                   "of it (at most 5 s)")
    p.add_argument("--drain-seconds", type=float, default=10.0,
                   help="on SIGTERM, seconds running tasks get to finish before the "
                   "rest are handed over to the other processes (default 10)")
    p.add_argument("--speedup", type=float, default=60.0,
                   help="simulated Midjourney seconds per real second (default 60)")
    p.add_argument("--start-delay", type=float, default=0.05,
                   help="real seconds a routed task stays pending before it starts (default 0.05)")
    p.add_argument("--fail-rate", type=float, default=0.0,
                   help="share of simulated tasks that fail (default 0)")
    p.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    p.add_argument("--upstream-fast-exhausted", action="append", metavar="ACCOUNT[@TIME]",
                   help="the simulated Midjourney has no fast time left on ACCOUNT (from "
                   "the ISO time TIME on; default: from the start), whatever the proxy's "
                   "books say: its fast and turbo jobs there are refused at once, and the "
                   "proxy re-routes them under the same task id (H4: not charged, the "
                   "account's fast time set to 0 and flipped to relax, mj_bot_no_fasthour "
                   "and task_rerouted notifications). Repeat for several accounts"),
    p.add_argument("--max-body", type=int, default=64 * 1024,
                   help="largest request body in bytes (default 65536)")
    p.add_argument("--notify-url", help="account notification webhook URL "
                   "(secret from $BYOA_NOTIFY_SECRET)")
    p.add_argument("--webhook-backoff", type=float, default=0.5,
                   help="first retry delay of a webhook in seconds, doubling (default 0.5)")
    p.add_argument("--explain", action="store_true",
                   help="compute per-account explanations for every decision (slower)")
    p.add_argument("--log-level", default="warning", help="log level (default warning)")
    p.add_argument("--access-log", action="store_true", help="uvicorn access log")
    p.set_defaults(func=cmd_serve)


COMMAND = Command("the reference proxy: GoAPI-shaped HTTP API with the router", setup,
                  order=70)
