"""``MemoryStore``: the in-process default, a thin wrapper over ``router.Pool``,
with ``MemoryRecords`` for the proxy's task records and secrets.

A single process needs no leases: when it dies, its state dies with it, so
``maintain`` has nothing to expire or adopt, every task may start, and there is
nobody to hand tasks over to.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from router.accounts import Account, Setting, Status
from router.decision import Decision, Notification, Outcome, Recovery, Renewal
from router.errors import NotInFlight, UnknownAccount
from router.ledger import Policy
from router.pool import Pool
from router.stores.base import Adoption


class MemoryRecords:
    """``RecordStore`` in this process; ``known`` says whether an account exists."""

    def __init__(self, known: Callable[[str], bool]) -> None:
        self.known = known
        self._secrets: dict[str, dict[str, str]] = {}
        self._records: dict[str, str] = {}

    def keeps_secrets(self) -> bool:
        return True  # in this process's memory only, never written anywhere

    def set_secret(self, account_id: str, name: str, value: str) -> None:
        if not self.known(account_id):
            raise UnknownAccount(f"no account {account_id!r} in the pool", "L5")
        self._secrets.setdefault(account_id, {})[name] = value

    def secret_names(self, account_id: str) -> list[str]:
        return sorted(self._secrets.get(account_id, {}))

    def put_record(self, task_id: str, data: str) -> None:
        self._records[task_id] = data

    def put_records(self, records: dict[str, str], *, carry: bool = False) -> None:
        self._records.update(records)

    def flush_records(self) -> None:
        pass  # nothing is ever carried in memory

    def get_record(self, task_id: str) -> str | None:
        return self._records.get(task_id)


class MemoryStore:
    """All state in this process; every call goes straight to the ``Pool``."""

    def __init__(self, accounts: Iterable[Account], policy: Policy | None = None, *,
                 start_at: float | None = None, explain: bool = True) -> None:
        self.pool = Pool(accounts, policy, explain=explain)
        self.records = MemoryRecords(lambda acc_id: acc_id in self.pool.accounts)
        if start_at is not None:
            self.pool.advance(start_at)

    @property
    def policy(self) -> Policy:
        return self.pool.policy

    def submit(self, task_id: str, body: Any, now: float, *,
               estimated_gpu_seconds: float | None = None) -> Decision:
        return self.pool.submit(task_id, body, now, estimated_gpu_seconds=estimated_gpu_seconds)

    def submit_many(self, items: list[tuple[str, Any, float | None]],
                    now: float) -> list[Decision]:
        return [self.submit(t, b, now, estimated_gpu_seconds=e) for t, b, e in items]

    def routed(self, task_id: str) -> bool:
        return task_id in self.pool.ledger.parents

    def complete(self, task_id: str, gpu_seconds: float, now: float) -> Outcome:
        return self.pool.complete(task_id, gpu_seconds, now)

    def complete_many(self, items: list[tuple[str, float]],
                      now: float) -> list[Outcome | NotInFlight]:
        out: list[Outcome | NotInFlight] = []
        for task_id, gpu in items:
            try:
                out.append(self.complete(task_id, gpu, now))
            except NotInFlight as exc:
                out.append(exc)
        return out

    def fail(self, task_id: str, now: float) -> Outcome:
        return self.pool.fail(task_id, now)

    def cancel(self, task_id: str, now: float) -> Outcome:
        return self.pool.cancel(task_id, now)

    def set_status(self, account_id: str, status: Status, now: float) -> Account:
        return copy.copy(self.pool.set_status(account_id, status, now))

    def set_setting(self, account_id: str, setting: Setting, now: float) -> Account:
        return copy.copy(self.pool.set_setting(account_id, setting, now))

    def set_status_until(self, account_id: str, status: Status, now: float,
                         until: float) -> Account:
        return copy.copy(self.pool.set_status(account_id, status, now, until))  # H1

    def fail_fast_exhausted(self, task_id: str, now: float) -> tuple[Outcome, Decision | None]:
        return self.pool.fail_fast_exhausted(task_id, now)  # H4

    def drain_recoveries(self) -> list[Recovery]:
        return self.pool.drain_recoveries()

    def pending_recoveries(self) -> dict[str, float]:
        return dict(self.pool.ledger.pending_recovery)

    def advance(self, now: float) -> None:
        self.pool.advance(now)

    def accounts(self) -> list[Account]:
        return [copy.copy(a) for a in self.pool.accounts.values()]

    def drain(self) -> tuple[list[Notification], list[Renewal]]:
        return self.pool.drain()

    def maintain(self, now: float) -> list[str]:
        self.pool.advance(now)  # L6/H1: renewals and recoveries due, without traffic
        return []

    def keeps_secrets(self) -> bool:
        return self.records.keeps_secrets()

    def take_adopted(self) -> list[Adoption]:
        return []

    def start_many(self, items: list[tuple[str, str, str, float]]) -> list[bool]:
        return [True] * len(items)

    def hand_over(self, task_ids: list[str]) -> int:
        return 0

    def end_public(self, items: list[tuple[str, str]]) -> list[bool]:
        return [False] * len(items)  # one process: no leases to drop

    def set_secret(self, account_id: str, name: str, value: str) -> None:
        self.records.set_secret(account_id, name, value)

    def secret_names(self, account_id: str) -> list[str]:
        return self.records.secret_names(account_id)

    def put_record(self, task_id: str, data: str) -> None:
        self.records.put_record(task_id, data)

    def put_records(self, records: dict[str, str], *, carry: bool = False) -> None:
        self.records.put_records(records)

    def flush_records(self) -> None:
        pass

    def get_record(self, task_id: str) -> str | None:
        return self.records.get_record(task_id)

    def close(self) -> None:
        return None
