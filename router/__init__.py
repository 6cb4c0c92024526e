"""byoa-router: GoAPI's BYOA routing rules for Midjourney account pools.

The public API. See ``docs/rules.md`` for the rule IDs
(M, R, S, L, B, T, P, X, E, D) that the docstrings and explanations cite.
"""

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
from router.loading import load_accounts, parse_accounts
from router.modes import apply_mode, resolve_mode
from router.pool import Pool
from router.strategies import Strategy


def load_pool(path: str, **kwargs: bool) -> Pool:
    """Load an accounts file (JSON/TOML/YAML) into a ready ``Pool``."""
    accounts, policy = load_accounts(path)
    return Pool(accounts, policy, **kwargs)


__all__ = [
    "Account", "Decision", "InactiveWindow", "InputError", "Ledger", "Mode", "Notification",
    "Outcome", "Plan", "Policy", "Pool", "Renewal", "RouteError", "RouterError", "Setting",
    "Status", "Strategy", "apply_mode", "load_accounts", "load_pool", "parse_accounts",
    "resolve_mode",
]
