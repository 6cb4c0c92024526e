"""The HTTP edge of ``byoa serve``: the API key, bodies read with a size limit,
account updates validated without echoing a secret.

Every failure is an ``ApiError`` whose HTTP status comes from the error table
(``router.errors.ERROR_CODES``).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from router.accounts import Setting, Status
from router.proxy.body import BodyError, decode_body
from router.proxy.schema import AccountUpdate


class ApiError(Exception):
    """An answer at the HTTP edge; its status comes from the error table."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def check_key(request: Request, api_key: str) -> None:
    given = request.headers.get("x-api-key", "")
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                               api_key.encode("utf-8")):
        raise ApiError("unauthorized", "missing or wrong x-api-key header")


async def read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError("body_too_large",
                       f"request body is {int(declared)} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError("body_too_large",
                           f"request body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    try:
        return decode_body(b"".join(chunks))
    except BodyError as exc:
        raise ApiError("invalid_json", str(exc)) from None


def parse_update(raw: Any) -> AccountUpdate:
    """Validate an account update without ever echoing a secret value."""
    if not isinstance(raw, Mapping):
        raise ApiError("invalid_request", "expected a JSON object with status, setting "
                       "and/or discord_token")
    unknown = sorted(set(raw) - {"status", "setting", "discord_token", "until"})
    if unknown:
        raise ApiError("invalid_request", f"unknown field(s) {', '.join(unknown)}; "
                       "allowed: status, until, setting, discord_token")
    status, setting, token = raw.get("status"), raw.get("setting"), raw.get("discord_token")
    if status is not None and (not isinstance(status, str)
                               or status not in {s.value for s in Status}):
        raise ApiError("invalid_request", "status: expected one of "
                       f"{', '.join(s.value for s in Status)}")
    if setting is not None and (not isinstance(setting, str)
                                or setting not in {s.value for s in Setting}):
        raise ApiError("invalid_request", "setting: expected one of "
                       f"{', '.join(s.value for s in Setting)}")
    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise ApiError("invalid_request", "discord_token: expected a non-empty string")
    if status is None and setting is None and token is None:
        raise ApiError("invalid_request", "nothing to change: give status, setting "
                       "and/or discord_token")
    until = raw.get("until")  # H1: checked against the status and the clock by AccountAdmin
    if until is not None and not isinstance(until, str):
        raise ApiError("invalid_request", "until: expected an ISO-8601 UTC time such as "
                       "2026-12-01T08:00:00Z")
    return AccountUpdate(status=Status(status) if status else None,
                         setting=Setting(setting) if setting else None, discord_token=token,
                         until=until)
