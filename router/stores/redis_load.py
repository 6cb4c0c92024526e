"""``byoa accounts load``: write an accounts file's accounts into Redis once."""

from __future__ import annotations

from collections.abc import Iterable

import redis

from router.accounts import Account
from router.errors import InputError
from router.ledger import Ledger, Policy
from router.stores.codec import account_to_hash, policy_to_json
from router.stores.redis_keys import Keys, new_epoch
from router.stores.redis_pipe import pipeline


def load_into_redis(client: redis.Redis, accounts: Iterable[Account], policy: Policy,
                    now: float, *, prefix: str = "byoa", replace: bool = False) -> int:
    """Write the accounts and the policy under ``prefix``; how many accounts.

    The ledger's own ``start`` fixes what depends on the start time (default
    ``renews_at``, the first billing period) and evaluates B1 (L6). Refuses to
    overwrite a loaded pool unless ``replace`` (which deletes every key under
    the prefix first). A new epoch key marks this loading: a proxy process that
    finds it missing or changed knows the store was emptied or replaced.
    """
    accs = list(accounts)
    for acc in accs:
        if not acc.id:  # "" is the public pool's pseudo-account (P1 leases)
            raise InputError("an account id is empty; give every account an id",
                             field="accounts[].id")
        if "{" in acc.id or "}" in acc.id:
            raise InputError(f"account id {acc.id!r} contains '{{' or '}}', which Redis "
                             "uses for hash tags; rename the account", field="accounts[].id")
    keys = Keys(prefix)
    if client.exists(keys.accounts) and not replace:
        raise InputError(f"accounts are already loaded under the prefix {prefix!r}; "
                         "use `byoa accounts set` to change them, or --replace to start over")
    ledger = Ledger(accs, policy)
    ledger.start(now)
    if replace:
        _delete_prefix(client, prefix)
    epoch = new_epoch()
    pipe = pipeline(client)
    for acc in accs:
        h = account_to_hash(acc)
        h["dormant"] = "1" if acc.backup and not ledger.backups_active else "0"  # B1
        # the change counter mirrors sync on (``Mirror.sync``), from a value of this
        # loading's own: a mirror of an earlier loading never takes it for one it read
        h["ver"] = str(int(epoch[:12], 16))
        pipe.hset(keys.acc(acc.id), mapping=dict(h))
    pipe.set(keys.policy, policy_to_json(policy))
    if ledger.backups_active:
        pipe.set(keys.backups, "1")
    if accs:
        pipe.rpush(keys.accounts, *[a.id for a in accs])
    pipe.set(keys.epoch, epoch)
    pipe.execute()
    return len(accs)


def _delete_prefix(client: redis.Redis, prefix: str) -> None:
    batch: list[str] = []
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(str(key))
        if len(batch) >= 500:
            client.delete(*batch)
            batch = []
    if batch:
        client.delete(*batch)
