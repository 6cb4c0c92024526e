"""The store protocols: what an embedding (the proxy) needs from a store.

``Store`` has two parts:

* ``AccountStore``: account state and the rules that change it (route and
  reserve, complete, fail, cancel, renew, flip, user changes, leases). Every
  method takes ``now`` (epoch seconds, the routing clock, L6) where the rules
  need time. Completion, failure and cancellation raise
  ``router.errors.NotInFlight`` for a task that is not in flight, so a
  duplicate delivery changes nothing (it charges once, L1).
* ``RecordStore``: what the proxy keeps beside it, for every process to read:
  its task records (JSON) and the accounts' write-only secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from router.accounts import Account, Mode, Setting, Status
from router.decision import Decision, Notification, Outcome, Recovery, Renewal
from router.errors import NotInFlight
from router.ledger import Policy

#: The account id under which a store leases public-pool tasks (P1): ``start_many``
#: takes it, an ``Adoption`` names it. No account has an empty id.
PUBLIC = ""


@dataclass(slots=True)
class Adoption:
    """A task of a stopped process that this process took over (its lease lapsed).

    ``job`` None: it had not started upstream; its reservation was released and
    it is to be routed again under the same id. Otherwise it had started: this
    process now owns the reservation and follows ``job`` (charged once, L1).
    ``account_id`` is ``PUBLIC`` ("") for a task on GoAPI's public pool (P1): it
    held a lease only, and is never charged."""

    task_id: str
    account_id: str
    body: Any
    created_at: float
    job: str | None
    started_at: float | None
    mode: Mode


class AccountStore(Protocol):
    """Shared or local account state with atomic reservations."""

    @property
    def policy(self) -> Policy: ...

    def submit(self, task_id: str, body: Any, now: float, *,
               estimated_gpu_seconds: float | None = None) -> Decision:
        """Route ``body`` (router.engine) and reserve its slot atomically."""
        ...

    def submit_many(self, items: list[tuple[str, Any, float | None]],
                    now: float) -> list[Decision]:
        """``submit`` for (task id, body, estimate) in order, as one step where the
        store can (one round trip to Redis); the same decisions as one by one."""
        ...

    def routed(self, task_id: str) -> bool:
        """True once ``task_id`` was accepted (routed to an account or the public pool)."""
        ...

    def complete(self, task_id: str, gpu_seconds: float, now: float) -> Outcome:
        """L1-L3: charge once; a second delivery raises ``NotInFlight``."""
        ...

    def complete_many(self, items: list[tuple[str, float]],
                      now: float) -> list[Outcome | NotInFlight]:
        """``complete`` for (task id, gpu seconds) in order; errors as values."""
        ...

    def fail(self, task_id: str, now: float) -> Outcome: ...

    def cancel(self, task_id: str, now: float) -> Outcome: ...

    def set_status(self, account_id: str, status: Status, now: float) -> Account: ...

    def set_setting(self, account_id: str, setting: Setting, now: float) -> Account: ...

    def advance(self, now: float) -> None:
        """L6: renewals (L4) and backup activation (B1) due at ``now``, once."""
        ...

    def accounts(self) -> list[Account]:
        """A fresh snapshot (copies) of every account, in file order."""
        ...

    def drain(self) -> tuple[list[Notification], list[Renewal]]:
        """Notifications and renewals this store produced since the last drain."""
        ...

    def maintain(self, now: float) -> list[str]:
        """Renew this process's leases and adopt dead processes' tasks; their ids."""
        ...

    def take_adopted(self) -> list[Adoption]:
        """The tasks adopted by ``maintain`` since the last call."""
        ...

    def start_many(self, items: list[tuple[str, str, str, float]]) -> list[bool]:
        """Record (task id, account id, upstream job reference, started at) before
        each task starts: True where this process still owns the task (False: it
        was adopted by another process meanwhile and must not run here)."""
        ...

    def hand_over(self, task_ids: list[str]) -> int:
        """Give up this process's reservations of ``task_ids`` (public-pool tasks'
        leases too) for another process to adopt now (graceful shutdown); how many
        were handed over."""
        ...

    def end_public(self, items: list[tuple[str, str]]) -> list[bool]:
        """P1: public-pool tasks that ended here, as (task id, final state:
        ``completed``, ``failed`` or ``cancelled``): their leases are dropped, so
        nobody adopts them; nothing is charged (they are not ours). True where the
        task was still leased. ``start_many`` takes a public task with the
        account id ``PUBLIC``."""
        ...

    def close(self) -> None: ...


class RecordStore(Protocol):
    """The proxy's task records and the accounts' secrets."""

    def keeps_secrets(self) -> bool:
        """Whether ``set_secret`` can keep a secret safely here (sealed at rest)."""
        ...

    def set_secret(self, account_id: str, name: str, value: str) -> None:
        """Store a write-only account secret (e.g. a Discord token)."""
        ...

    def secret_names(self, account_id: str) -> list[str]:
        """Which secrets an account has (never their values)."""
        ...

    def put_record(self, task_id: str, data: str) -> None:
        """Keep an embedding's task record (JSON) where every process can read it."""
        ...

    def put_records(self, records: dict[str, str], *, carry: bool = False) -> None:
        """``put_record`` for several tasks at once (one round trip to Redis). With
        ``carry``, a store that can may send them with its next command on this
        thread instead (in the same round trip, ahead of it); ``flush_records``
        sends what is still carried."""
        ...

    def flush_records(self) -> None:
        """Send the records this thread carries now, if any (``put_records``)."""
        ...

    def get_record(self, task_id: str) -> str | None: ...


@runtime_checkable
class HealthStore(Protocol):
    """H1 and H4 for an embedding, where a store implements them (``MemoryStore``,
    ``RedisStore``).

    A separate protocol so that a store without them still is a ``Store``; the
    proxy checks ``isinstance(store, HealthStore)`` and says so when it is not."""

    def set_status_until(self, account_id: str, status: Status, now: float,
                         until: float) -> Account:
        """H1: ``set_status`` with a return to ``active`` at ``until`` (``account_recovered``
        among the next drain's notifications); raises ``ValueError`` for a status other
        than disabled, banned or captcha_required, or ``until`` not after ``now``."""
        ...

    def fail_fast_exhausted(self, task_id: str, now: float) -> tuple[Outcome, Decision | None]:
        """H4: ``fail`` with ``reason: fast_exhausted``: no charge, fast time to 0, the L3
        flip, and the new decision for the same task id (reserved when accepted; None
        for a task that ran as relax: an ordinary fail). Raises ``NotInFlight``."""
        ...

    def drain_recoveries(self) -> list[Recovery]:
        """H1: the recoveries since the last call, in time order."""
        ...

    def pending_recoveries(self) -> dict[str, float]:
        """H1: account id -> the time it becomes active again, for the accounts with a
        timed status."""
        ...


class Store(AccountStore, RecordStore, Protocol):
    """Both parts: what ``byoa serve`` runs on (``MemoryStore``, ``RedisStore``)."""
