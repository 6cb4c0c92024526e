"""GoAPI's response envelope: ``{code, data: {task...}, message}`` and its errors.

Router errors (E1) keep their stable code in ``data.error.raw_message`` and in
``data.error.detail.error_code``; ``data.error.code`` and the top-level ``code``
carry the HTTP status, as GoAPI's do.
"""

from __future__ import annotations

from typing import Any

from router.errors import RouteError

#: HTTP status per router error code (E1); pool_saturated never reaches a client
#: (the proxy queues the task instead, R5).
HTTP_STATUS: dict[str, int] = {
    "invalid_request": 400,
    "no_relax_capacity": 409,
    "pool_saturated": 503,
    "parent_not_found": 404,
    "pinned_account_unavailable": 409,
    "pinned_account_cannot_run": 409,
    "account_not_found": 404,
    "no_active_account": 503,
    "not_in_flight": 409,
    "unknown_account": 404,
}


def empty_error() -> dict[str, Any]:
    return {"code": 0, "raw_message": "", "message": "", "detail": None}


def route_error(err: RouteError) -> dict[str, Any]:
    """``data.error`` for a router rejection."""
    return {
        "code": HTTP_STATUS.get(err.code, 400),
        "raw_message": err.code,
        "message": err.message,
        "detail": {"error_code": err.code, "rule": err.rule, "retryable": err.retryable},
    }


def envelope(code: int, data: Any, message: str) -> dict[str, Any]:
    return {"code": code, "data": data, "message": message}


def error_envelope(status: int, error_code: str, message: str) -> dict[str, Any]:
    """An HTTP-level error (auth, body, unknown task): the envelope with
    ``data.error`` filled and no task."""
    return envelope(status, {"error": {"code": status, "raw_message": error_code,
                                       "message": message, "detail": None}},
                    message)
