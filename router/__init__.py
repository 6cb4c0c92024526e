"""byoa-router: GoAPI's BYOA routing rules for Midjourney account pools.

The public API, re-exported and nothing else. See ``docs/rules.md`` for the rule
IDs (M, R, S, L, B, T, H, P, X, E, D) that the docstrings and explanations cite.
The core (modes, rules, strategies, engine, ledger, pool) does no I/O; the file
edges are in ``router.io``; the shells are ``router.stores``, ``router.proxy`` and
the ``simulations`` package.

The core may be compiled with mypyc (``make compile``, see ``router.compiled``);
``BYOA_PURE=1`` loads it from the ``.py`` sources all the same.
"""

from typing import TYPE_CHECKING, Any

# First: with BYOA_PURE set, it makes the core load from its sources.
from router import compiled as _compiled  # noqa: F401
from router.accounts import (
    Account,
    InactiveWindow,
    Mode,
    Plan,
    Setting,
    Status,
)
from router.decision import Decision, Notification, Outcome, Renewal
from router.errors import InputError, RouteError, RouterError
from router.ledger import Ledger, Policy
from router.modes import apply_mode, resolve_mode
from router.pool import Pool
from router.strategies import Strategy

if TYPE_CHECKING:
    from router.io.loading import load_accounts, load_pool, parse_accounts

_LOADING = ("load_accounts", "load_pool", "parse_accounts")


def __getattr__(name: str) -> Any:
    """The accounts-file loader (pydantic, PyYAML) is imported when first asked for,
    so that a command that never reads an accounts file (``byoa --help``) does
    not pay for it."""
    if name in _LOADING:
        from router.io import loading

        return getattr(loading, name)
    raise AttributeError(f"module 'router' has no attribute {name!r}")

__all__ = [
    "Account", "Decision", "InactiveWindow", "InputError", "Ledger", "Mode", "Notification",
    "Outcome", "Plan", "Policy", "Pool", "Renewal", "RouteError", "RouterError", "Setting",
    "Status", "Strategy", "apply_mode", "load_accounts", "load_pool", "parse_accounts",
    "resolve_mode",
]
