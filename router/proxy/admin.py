"""``AccountAdmin``: the account endpoints (list; set status, setting, secrets; L5)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from router.accounts import Setting, Status
from router.proxy.edge import ApiError
from router.proxy.notices import Notifier
from router.proxy.tasks import account_view
from router.stores.base import Store
from router.stores.secrets import ENV_SECRET_KEY


class AccountAdmin:
    """Account views (secrets by name only) and user changes."""

    def __init__(self, store: Store, notifier: Notifier, changed: Callable[[], None]) -> None:
        self.store = store
        self.notifier = notifier
        self.changed = changed  # capacity may have changed: wake the line

    def accounts(self) -> list[dict[str, Any]]:
        return [account_view(a, self.store.secret_names(a.id)) for a in self.store.accounts()]

    def set_account(self, account_id: str, status: Status | None, setting: Setting | None,
                    secrets: Mapping[str, str]) -> dict[str, Any]:
        if secrets and not self.store.keeps_secrets():  # checked before any change
            raise ApiError("invalid_request", "this proxy keeps no secrets: its Redis would "
                           f"hold them readable; start every process with ${ENV_SECRET_KEY} "
                           "set (`byoa accounts new-key` makes one)")
        now = time.time()
        if status is not None:
            acc = self.store.set_status(account_id, status, now)
            self.notifier.status_set(account_id, status, acc.bot_id, now)
        if setting is not None:
            self.store.set_setting(account_id, setting, now)
        for name, value in secrets.items():
            self.store.set_secret(account_id, name, value)
        self.notifier.drain()
        self.changed()
        for a in self.store.accounts():
            if a.id == account_id:
                return account_view(a, self.store.secret_names(a.id))
        raise KeyError(account_id)
