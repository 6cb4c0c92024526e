"""E1: one exception type per error code, each with its rule and ``retryable``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class RouteError:
    """An error as data: what a decision or an event line carries (E1)."""

    code: str
    rule: str
    message: str
    retryable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


class RouterError(Exception):
    """Base class: ``code``, ``rule``, human ``message`` and ``retryable`` (E1)."""

    code: ClassVar[str] = "router_error"
    retryable: ClassVar[bool] = False

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
    retryable = True


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
