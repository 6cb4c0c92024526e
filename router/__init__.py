"""byoa-router: GoAPI's BYOA routing rules for Midjourney account pools.

The public API, re-exported and nothing else. See ``docs/rules.md`` for the rule
IDs (M, R, S, L, B, T, H, P, X, E, D) that the docstrings and explanations cite.
The core (modes, rules, strategies, engine, ledger, pool) does no I/O; the file
edges are in ``router.io``; the shells are ``router.stores``, ``router.proxy`` and
the ``simulations`` package.

The core may be compiled with mypyc (``make compile``, see ``router.compiled``);
``BYOA_PURE=1`` loads it from the ``.py`` sources all the same.
"""

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
from router.io.loading import load_accounts, load_pool, parse_accounts
from router.ledger import Ledger, Policy
from router.modes import apply_mode, resolve_mode
from router.pool import Pool
from router.strategies import Strategy

__all__ = [
    "Account", "Decision", "InactiveWindow", "InputError", "Ledger", "Mode", "Notification",
    "Outcome", "Plan", "Policy", "Pool", "Renewal", "RouteError", "RouterError", "Setting",
    "Status", "Strategy", "apply_mode", "load_accounts", "load_pool", "parse_accounts",
    "resolve_mode",
]
