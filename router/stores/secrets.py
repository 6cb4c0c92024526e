"""Account secrets at rest: sealed with a key the operator provides.

A Discord token written through ``POST /api/v1/accounts/{id}`` is stored in Redis
only as a Fernet token (``cryptography.fernet``: AES-128-CBC with an HMAC-SHA256 over
it, a timestamp and a version byte; PyCA's maintained, audited recipe, so no mode,
padding or MAC is chosen here). The key comes from ``$BYOA_SECRET_KEY`` (make one with
``byoa accounts new-key``); every process that shares the Redis needs the same key.
Without it a Redis-backed proxy refuses secrets rather than keep them readable.
"""

from __future__ import annotations

import os

from cryptography.fernet import Fernet, InvalidToken

from router.errors import InputError

ENV_SECRET_KEY = "BYOA_SECRET_KEY"
#: Prefix of a sealed value, so a reader can tell what it holds.
SEALED = "fernet:"


class SecretBox:
    """Seals and opens secret values with one Fernet key."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise InputError("expected a Fernet key (32 bytes, URL-safe base64; "
                             "`byoa accounts new-key` makes one)",
                             field=f"${ENV_SECRET_KEY}") from None

    def seal(self, value: str) -> str:
        return SEALED + self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        """The value back (what an upstream that logs in to Discord would need)."""
        if not sealed.startswith(SEALED):
            raise ValueError("not a sealed secret")
        try:
            return self._fernet.decrypt(sealed.removeprefix(SEALED).encode("ascii")).decode()
        except InvalidToken:
            raise ValueError("sealed with another key, or altered") from None


def new_key() -> str:
    """A fresh random key for ``$BYOA_SECRET_KEY``."""
    return Fernet.generate_key().decode("ascii")


def box_from_env() -> SecretBox | None:
    """The box for ``$BYOA_SECRET_KEY``, or ``None`` when it is not set."""
    key = os.environ.get(ENV_SECRET_KEY, "")
    return SecretBox(key) if key else None
