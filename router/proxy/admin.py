"""``AccountAdmin``: the account endpoints (list; set status, setting, secrets; L5).

The store's part of each runs on the store's thread (``StoreCalls``); the
notifications it causes are sent from the event loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from router.accounts import Setting, Status
from router.proxy.edge import ApiError
from router.proxy.notices import Notifier
from router.proxy.storecalls import StoreCalls
from router.proxy.tasks import account_view
from router.stores.base import Store
from router.stores.secrets import ENV_SECRET_KEY


class AccountAdmin:
    """Account views (secrets by name only) and user changes."""

    def __init__(self, store: Store, notifier: Notifier, changed: Callable[[], None],
                 calls: StoreCalls | None = None) -> None:
        self.store = store
        self.calls = calls or StoreCalls(remote=False)
        self.notifier = notifier
        self.changed = changed  # capacity may have changed: wake the line

    async def accounts(self) -> list[dict[str, Any]]:
        return await self.calls.call(self._views)

    def _views(self) -> list[dict[str, Any]]:
        return [account_view(a, self.store.secret_names(a.id)) for a in self.store.accounts()]

    async def set_account(self, account_id: str, status: Status | None,
                          setting: Setting | None,
                          secrets: Mapping[str, str]) -> dict[str, Any]:
        now = time.time()
        view, bot_id = await self.calls.call(self._change, account_id, status, setting,
                                             secrets, now)
        if status is not None:
            self.notifier.status_set(account_id, status, bot_id, now)
        self.changed()
        return view

    def _change(self, account_id: str, status: Status | None, setting: Setting | None,
                secrets: Mapping[str, str], now: float) -> tuple[dict[str, Any], int | None]:
        """On the store thread: the change, and the account as it is now."""
        if secrets and not self.store.keeps_secrets():  # checked before any change
            raise ApiError("invalid_request", "this proxy keeps no secrets: its Redis would "
                           f"hold them readable; start every process with ${ENV_SECRET_KEY} "
                           "set (`byoa accounts new-key` makes one)")
        bot_id: int | None = None
        if status is not None:
            bot_id = self.store.set_status(account_id, status, now).bot_id
        if setting is not None:
            self.store.set_setting(account_id, setting, now)
        for name, value in secrets.items():
            self.store.set_secret(account_id, name, value)
        for a in self.store.accounts():
            if a.id == account_id:
                return account_view(a, self.store.secret_names(a.id)), bot_id
        raise KeyError(account_id)
