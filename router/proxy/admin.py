"""``AccountAdmin``: the account endpoints (list; set status, setting, secrets; L5;
a timed status, H1).

The store's part of each runs as a store call (``StoreCalls``); the
notifications it causes are sent from the event loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from router.accounts import Account, Setting, Status
from router.proxy.edge import ApiError
from router.proxy.notices import Notifier
from router.proxy.storecalls import StoreCalls
from router.proxy.tasks import account_view, health_view
from router.stores.base import HealthStore, Store
from router.stores.secrets import ENV_SECRET_KEY
from router.timeutil import format_time, parse_time

#: H1: the statuses that may end at a time (``until``)
TIMED_STATUSES = (Status.DISABLED, Status.BANNED, Status.CAPTCHA_REQUIRED)


class AccountAdmin:
    """Account views (secrets by name only) and user changes."""

    def __init__(self, store: Store, notifier: Notifier, changed: Callable[[], None],
                 calls: StoreCalls | None = None) -> None:
        self.store = store
        self.calls = calls or StoreCalls(remote=False)
        self.notifier = notifier
        self.changed = changed  # capacity may have changed: wake the line

    async def accounts(self) -> list[dict[str, Any]]:
        return await self.calls.call(self._views, time.time())

    def _views(self, now: float) -> list[dict[str, Any]]:
        recovers = self._recoveries()
        return [self._view(a, recovers, now) for a in self.store.accounts()]

    def _recoveries(self) -> dict[str, float]:
        return self.store.pending_recoveries() if isinstance(self.store, HealthStore) else {}

    def _view(self, a: Account, recovers: Mapping[str, float], now: float) -> dict[str, Any]:
        view = account_view(a, self.store.secret_names(a.id))
        view.update(health_view(a, recovers.get(a.id), now))
        return view

    async def set_account(self, account_id: str, status: Status | None,
                          setting: Setting | None, secrets: Mapping[str, str], *,
                          until: str | None = None) -> dict[str, Any]:
        now = time.time()
        ends = None if until is None else self._until(status, until, now)  # before any change
        view, bot_id = await self.calls.call(self._change, account_id, status, setting,
                                             secrets, now, ends)
        if status is not None:
            self.notifier.status_set(account_id, status, bot_id, now)
        self.changed()
        return view

    def _change(self, account_id: str, status: Status | None, setting: Setting | None,
                secrets: Mapping[str, str], now: float, ends: float | None
                ) -> tuple[dict[str, Any], int | None]:
        """In a store call: the change, and the account as it is now."""
        if secrets and not self.store.keeps_secrets():  # checked before any change
            raise ApiError("invalid_request", "this proxy keeps no secrets: its Redis would "
                           f"hold them readable; start every process with ${ENV_SECRET_KEY} "
                           "set (`byoa accounts new-key` makes one)")
        bot_id: int | None = None
        if status is not None:
            if ends is not None:
                assert isinstance(self.store, HealthStore)  # checked by _until
                bot_id = self.store.set_status_until(account_id, status, now, ends).bot_id
            else:
                bot_id = self.store.set_status(account_id, status, now).bot_id
        if setting is not None:
            self.store.set_setting(account_id, setting, now)
        for name, value in secrets.items():
            self.store.set_secret(account_id, name, value)
        recovers = self._recoveries()
        for a in self.store.accounts():
            if a.id == account_id:
                return self._view(a, recovers, now), bot_id
        raise KeyError(account_id)

    def _until(self, status: Status | None, until: str, now: float) -> float:
        """H1: ``until`` as epoch seconds, or a 400 that says what was expected."""
        allowed = ", ".join(s.value for s in TIMED_STATUSES)
        if status is None or status not in TIMED_STATUSES:
            raise ApiError("invalid_request", f"until: give it together with status {allowed} "
                           "(the account becomes active again at that time, H1)")
        try:
            ends = parse_time(until)
        except ValueError as exc:
            raise ApiError("invalid_request", f"until: {exc}") from None
        if ends <= now:
            raise ApiError("invalid_request", f"until: {format_time(ends)} is not in the "
                           f"future (the proxy's clock says {format_time(now)}, H1)")
        if not isinstance(self.store, HealthStore):
            raise ApiError("invalid_request", "until: this proxy's store does not keep timed "
                           "statuses (H1); set the status without until and set it back "
                           "later")
        return ends
