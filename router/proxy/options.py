"""``byoa serve``'s options checked before anything starts: a value that would
silently do something else (a port above 65535, a fail rate of 2, a NaN speed-up, a
zero lease, a notification URL that is not http(s)) stops it with exit code 2 and a
message naming the option; and the listening sockets, bound before the banner so
that a port in use is said plainly, never after "listening"."""

from __future__ import annotations

import argparse
import errno
import math
import socket
from collections.abc import Iterable

from router.errors import InputError
from router.requests import http_url
from router.stores.url import check_redis_url

#: ``--log-level`` values: the levels both ``logging`` and uvicorn know.
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

#: Pending connections the kernel keeps for a listening socket (uvicorn's default).
BACKLOG = 2048


def _positive(value: float, field: str, what: str) -> None:
    """``value`` > 0 and finite (NaN compares false, so it fails too)."""
    if not value > 0:
        raise InputError(f"expected {what} > 0, got {value}", field=field)
    if not math.isfinite(value):
        raise InputError(f"expected {what} > 0 and finite, got {value}", field=field)


def _not_negative(value: float, field: str) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise InputError(f"expected seconds >= 0 (finite), got {value}", field=field)


def check_options(args: argparse.Namespace, embedded: str) -> None:
    """Every option's value on its own (``InputError`` names the first bad one);
    ``embedded`` is ``--redis``'s value for a private server."""
    if not 1 <= args.port <= 65535:
        raise InputError(f"expected an integer 1-65535, got {args.port}", field="--port")
    if args.log_level.lower() not in LOG_LEVELS:
        raise InputError(f"expected one of {', '.join(LOG_LEVELS)}, got {args.log_level!r}",
                         field="--log-level")
    if args.redis and args.redis != embedded:
        check_redis_url(args.redis)
    _positive(args.speedup, "--speedup", "a speed-up")
    _positive(args.redis_timeout, "--redis-timeout", "seconds")
    _positive(args.lease, "--lease", "seconds")
    for field, value in (("--start-delay", args.start_delay),
                         ("--drain-seconds", args.drain_seconds),
                         ("--webhook-backoff", args.webhook_backoff)):
        _not_negative(value, field)
    if not 0 <= args.fail_rate <= 1:
        raise InputError(f"expected a share between 0 and 1, got {args.fail_rate}",
                         field="--fail-rate")
    if args.max_body < 1:
        raise InputError(f"expected a number of bytes >= 1, got {args.max_body}",
                         field="--max-body")
    if args.notify_url is not None and not http_url(args.notify_url):
        raise InputError(f"expected an http(s) URL, got {args.notify_url!r}",
                         field="--notify-url")


def check_exhausted(named: Iterable[str], known: Iterable[str]) -> None:
    """``--upstream-fast-exhausted`` names accounts of the store (H4)."""
    ids = list(known)
    missing = sorted(set(named) - set(ids))
    if missing:
        shown = ", ".join(ids[:5]) + (f", ... ({len(ids)} in all)" if len(ids) > 5 else "")
        raise InputError(f"no account {', '.join(repr(m) for m in missing)} in the store "
                         f"(its accounts: {shown or 'none'})", field="--upstream-fast-exhausted")


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen(host: str, port: int) -> list[socket.socket]:
    """Sockets listening on every address ``host`` resolves to (as asyncio's
    ``create_server(host=..., port=...)`` would bind them), or ``InputError``:
    ``cannot listen on HOST:PORT: address already in use``."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"cannot listen on {_where(host, port)}: {_reason(exc)}") from None
    socks: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _name, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            try:
                sock = socket.socket(family, kind, proto)
            except OSError:  # a family this machine lacks (e.g. no IPv6): as asyncio
                continue
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise InputError(f"cannot listen on {_where(host, port)}: "
                                 f"{_reason(exc)}") from None
            sock.listen(BACKLOG)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    if not socks:
        raise InputError(f"cannot listen on {_where(host, port)}: no usable address")
    return socks


def _reason(exc: OSError) -> str:
    """``[Errno 98] Address already in use`` as ``address already in use``."""
    if exc.errno == errno.EADDRINUSE:
        return "address already in use"
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]
