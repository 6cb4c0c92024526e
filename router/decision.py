"""Typed results: a routing ``Decision`` (X1) and the outcomes of ledger events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from router.accounts import Mode, Setting, Status
from router.errors import RouteError


@dataclass(slots=True)
class Notification:
    """An account notification (GoAPI's notification webhook types)."""

    type: str  # mj_bot_no_fasthour | backups_activated | no_active_mj_bot | account_recovered
    at: float
    account_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type}
        if self.account_id is not None:
            d["account_id"] = self.account_id
        return d


@dataclass(slots=True)
class Renewal:
    """L4: one account renewed at ``at``; ``expired_ms`` of fast time was wasted."""

    account_id: str
    at: float
    expired_ms: int


@dataclass(slots=True)
class Recovery:
    """H1: a timed status ended; the account is ``active`` again from ``at``."""

    account_id: str
    at: float
    status_was: Status


class Rejections(dict[str, str]):
    """X1's per-account ``rejections`` map (a plain ``dict`` in id order) that may
    carry ``text``: exactly ``json.dumps`` of its contents, assembled from pieces
    encoded once (``router.io.replay`` writes it as is). ``None``: not known. The
    map is built once per decision and never changed afterwards."""

    __slots__ = ("text",)

    def __init__(self) -> None:
        super().__init__()
        self.text: str | None = None


@dataclass(slots=True, init=False)
class Decision:
    """Where a task goes and why (X1). ``error`` is set when it goes nowhere.

    The ``__init__`` is written out, not generated (issue 13): compiled by mypyc,
    a generated dataclass ``__init__`` stays interpreted Python, run once per
    decision; this one, with the same parameters and defaults, is native code.
    ``dataclasses.fields``, ``replace``, ``==`` and ``repr`` work as before."""

    task_id: str
    pool: str = "private"
    account_id: str | None = None
    requested_mode: Mode | None = None
    mode_source: str | None = None
    effective_mode: Mode | None = None
    fallback: bool = False
    error: RouteError | None = None
    explanation: str | None = None
    rejections: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    task_type: str = ""
    pinned: bool = False
    reserved_ms: int = 0

    def __init__(self, task_id: str, pool: str = "private", account_id: str | None = None,
                 requested_mode: Mode | None = None, mode_source: str | None = None,
                 effective_mode: Mode | None = None, fallback: bool = False,
                 error: RouteError | None = None, explanation: str | None = None,
                 rejections: dict[str, str] | None = None, notes: list[str] | None = None,
                 task_type: str = "", pinned: bool = False, reserved_ms: int = 0) -> None:
        self.task_id = task_id
        self.pool = pool
        self.account_id = account_id
        self.requested_mode = requested_mode
        self.mode_source = mode_source
        self.effective_mode = effective_mode
        self.fallback = fallback
        self.error = error
        self.explanation = explanation
        self.rejections = {} if rejections is None else rejections
        self.notes = [] if notes is None else notes
        self.task_type = task_type
        self.pinned = pinned
        self.reserved_ms = reserved_ms

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def retryable(self) -> bool:
        return self.error is not None and self.error.retryable


@dataclass(slots=True, init=False)
class Outcome:
    """What a completion, failure or cancellation did to its account (L1-L3).
    Its ``__init__`` is written out for the reason ``Decision``'s is (issue 13)."""

    task_id: str
    account_id: str
    charged_ms: int
    overdraft_ms: int
    fast_ms: int
    setting: Setting
    status: Status
    flipped: bool = False

    def __init__(self, task_id: str, account_id: str, charged_ms: int, overdraft_ms: int,
                 fast_ms: int, setting: Setting, status: Status, flipped: bool = False) -> None:
        self.task_id = task_id
        self.account_id = account_id
        self.charged_ms = charged_ms
        self.overdraft_ms = overdraft_ms
        self.fast_ms = fast_ms
        self.setting = setting
        self.status = status
        self.flipped = flipped
