"""E1: the error-code table, and one exception type per routing error code.

``ERROR_CODES`` is the only table of error codes: each code's rule, the HTTP
status the proxy answers with, and whether a retry can succeed. The routing
codes (``router=True``) are the E1 codes that decisions and event lines carry;
the others are the proxy's own answers at its HTTP edge (authentication,
bodies, task look-ups, the waiting line, task failures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One row of the error table."""

    code: str
    rule: str  # the rule that defines the code ("" for the proxy's HTTP-edge codes)
    http_status: int  # what ``byoa serve`` answers with
    retryable: bool = False
    router: bool = True  # an E1 code of decisions and event lines

    def __reduce__(self) -> tuple[type[ErrorCode], tuple[str, str, int, bool, bool]]:
        # Compiled (mypyc), a frozen class refuses the field assignments that copy
        # and pickle make by default: they rebuild it from its fields (issue 13).
        return (ErrorCode, (self.code, self.rule, self.http_status, self.retryable,
                            self.router))


ERROR_CODES: dict[str, ErrorCode] = {e.code: e for e in (
    # E1: decisions (router.engine) and event lines (router.io.replay)
    ErrorCode("invalid_request", "M0", 400),
    ErrorCode("no_relax_capacity", "R4", 409),
    ErrorCode("pool_saturated", "R5", 503, retryable=True),
    ErrorCode("parent_not_found", "R7", 404),
    ErrorCode("pinned_account_unavailable", "R7", 409),
    ErrorCode("pinned_account_cannot_run", "R7", 409),
    ErrorCode("account_not_found", "R7", 404),
    ErrorCode("no_active_account", "E1", 503),
    ErrorCode("not_in_flight", "L1", 409),
    ErrorCode("unknown_account", "L5", 404),
    # the proxy's HTTP edge
    ErrorCode("unauthorized", "", 401, router=False),
    ErrorCode("body_too_large", "", 413, router=False),
    ErrorCode("invalid_json", "", 400, router=False),
    ErrorCode("not_found", "", 404, router=False),
    ErrorCode("method_not_allowed", "", 405, router=False),
    ErrorCode("http_error", "", 400, router=False),  # any other status Starlette raises
    ErrorCode("internal_error", "", 500, router=False),
    ErrorCode("task_not_found", "", 404, router=False),
    ErrorCode("not_pending", "", 400, router=False),
    ErrorCode("not_owned", "", 409, retryable=True, router=False),
    ErrorCode("queue_full", "R5", 503, retryable=True, router=False),
    ErrorCode("store_unavailable", "", 503, retryable=True, router=False),
    ErrorCode("shutting_down", "", 503, retryable=True, router=False),
    # a task's ``data.error`` after it was accepted
    ErrorCode("upstream_failed", "", 500, router=False),
    ErrorCode("proxy_error", "", 500, router=False),
    ErrorCode("cancelled", "", 499, router=False),
)}


def http_status(code: str) -> int:
    """The HTTP status ``byoa serve`` answers with for ``code``."""
    return ERROR_CODES[code].http_status


def code_for_status(status: int) -> str:
    """The proxy's code for an HTTP error its web framework raised (no such path or method)."""
    for code in ("not_found", "method_not_allowed"):
        if ERROR_CODES[code].http_status == status:
            return code
    return "http_error"


@dataclass(frozen=True, slots=True)
class RouteError:
    """An error as data: what a decision or an event line carries (E1)."""

    code: str
    rule: str
    message: str
    retryable: bool = False

    def __reduce__(self) -> tuple[type[RouteError], tuple[str, str, str, bool]]:
        # Compiled (mypyc), a frozen class refuses the field assignments that copy
        # and pickle make by default: they rebuild it from its fields (issue 13).
        return (RouteError, (self.code, self.rule, self.message, self.retryable))

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


class RouterError(Exception):
    """Base class: ``code``, ``rule``, human ``message`` and ``retryable`` (E1)."""

    code: ClassVar[str] = "router_error"
    retryable: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.retryable = ERROR_CODES[cls.code].retryable  # a code outside the table fails here

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule

    def as_error(self) -> RouteError:
        return RouteError(self.code, self.rule, self.message, self.retryable)


class InvalidRequest(RouterError):
    code = "invalid_request"


class NoRelaxCapacity(RouterError):
    code = "no_relax_capacity"


class PoolSaturated(RouterError):
    code = "pool_saturated"


class ParentNotFound(RouterError):
    code = "parent_not_found"


class PinnedAccountUnavailable(RouterError):
    code = "pinned_account_unavailable"


class PinnedAccountCannotRun(RouterError):
    code = "pinned_account_cannot_run"


class AccountNotFound(RouterError):
    code = "account_not_found"


class NoActiveAccount(RouterError):
    code = "no_active_account"


class NotInFlight(RouterError):
    code = "not_in_flight"


class UnknownAccount(RouterError):
    code = "unknown_account"


ERROR_TYPES: dict[str, type[RouterError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        NoRelaxCapacity,
        PoolSaturated,
        ParentNotFound,
        PinnedAccountUnavailable,
        PinnedAccountCannotRun,
        AccountNotFound,
        NoActiveAccount,
        NotInFlight,
        UnknownAccount,
    )
}


def make_error(code: str, rule: str, message: str) -> RouteError:
    """Build the data form of the error with ``code`` (retryable per E1)."""
    return ERROR_TYPES[code](message, rule).as_error()


class InputError(Exception):
    """Bad input that stops a run (exit code 2): names file, line and field."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None,
                 field: str | None = None) -> None:
        self.source = source
        self.line = line
        self.field = field
        self.detail = message
        where = source
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        prefix = f"{where}: " if where else ""
        fpart = f"{field}: " if field else ""
        super().__init__(f"{prefix}{fpart}{message}")
