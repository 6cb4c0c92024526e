"""GoAPI's response envelope: ``{code, data: {task...}, message}`` and its errors.

Router errors (E1) keep their stable code in ``data.error.raw_message`` and in
``data.error.detail.error_code``; ``data.error.code`` and the top-level ``code``
carry the HTTP status, as GoAPI's do. Every status comes from the error table
(``router.errors.ERROR_CODES``).
"""

from __future__ import annotations

from typing import Any

from router.errors import RouteError, http_status


def empty_error() -> dict[str, Any]:
    return {"code": 0, "raw_message": "", "message": "", "detail": None}


def route_error(err: RouteError) -> dict[str, Any]:
    """``data.error`` for a router rejection."""
    return {
        "code": http_status(err.code),
        "raw_message": err.code,
        "message": err.message,
        "detail": {"error_code": err.code, "rule": err.rule, "retryable": err.retryable},
    }


def task_error(code: str, message: str) -> dict[str, Any]:
    """``data.error`` of an accepted task that ended without a result."""
    return {"code": http_status(code), "raw_message": code, "message": message, "detail": None}


def envelope(code: int, data: Any, message: str) -> dict[str, Any]:
    return {"code": code, "data": data, "message": message}


def error_envelope(error_code: str, message: str, *, status: int | None = None) -> dict[str, Any]:
    """An HTTP-level error (auth, body, unknown task): the envelope with
    ``data.error`` filled and no task; ``status`` overrides the table's."""
    code = http_status(error_code) if status is None else status
    return envelope(code, {"error": {"code": code, "raw_message": error_code,
                                     "message": message, "detail": None}},
                    message)
