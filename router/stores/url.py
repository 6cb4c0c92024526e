"""Redis URLs as people may see them: the password never printed.

``redis://user:secret@host:6379/0`` is shown as ``redis://user:***@host:6379/0`` in
banners, messages and logs; the real URL is used only to connect.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

#: Seconds a connect or a command to Redis may take before the caller gets an error
#: (``--redis-timeout``; ``byoa serve`` answers 503 ``store_unavailable`` with
#: ``Retry-After`` instead of waiting).
DEFAULT_TIMEOUT = 2.0


def redact_url(url: str) -> str:
    """``url`` with any password (and a lone user name used as one) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, sep, _password = userinfo.partition(":")
    shown = f"{user}:***" if sep else "***"
    return urlunsplit(parts._replace(netloc=f"{shown}@{host}"))


#: The URL schemes a store can be reached with (``redis+cluster://``: a Redis Cluster).
SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://")


def check_redis_url(url: str) -> None:
    """Raise ``InputError`` (field ``--redis``) when ``url`` cannot name a Redis server
    or cluster; the message shows the URL with its password hidden."""
    from redis.connection import parse_url

    from router.errors import InputError

    if not url.lower().startswith(SCHEMES):
        raise InputError(f"expected a {', '.join(SCHEMES[:-1])} or {SCHEMES[-1]} URL, "
                         f"got {redact_url(url)!r}", field="--redis")
    cluster = SCHEMES[-1]
    node = "redis://" + url[len(cluster):] if url.startswith(cluster) else url
    try:
        parse_url(node)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise InputError(f"cannot use {redact_url(url)!r}: {exc}", field="--redis") from None
