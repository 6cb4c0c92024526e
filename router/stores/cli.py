"""``byoa accounts load|list|set``: account definitions in Redis, from the command line."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import TYPE_CHECKING

from router.accounts import MS_PER_HOUR, MS_PER_SECOND, Setting, Status
from router.command import Command
from router.errors import InputError, UnknownAccount
from router.stores.secrets import ENV_SECRET_KEY, new_key
from router.stores.url import check_redis_url, redact_url

if TYPE_CHECKING:  # imported by the actions when they run: ``byoa --help`` needs none of it
    import redis

    from router.stores.redis_store import RedisStore

ENV_URL = "BYOA_REDIS_URL"


def _client(args: argparse.Namespace) -> redis.Redis:
    import redis

    from router.stores.cluster import client_for

    check_redis_url(args.redis)
    client = client_for(args.redis)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise InputError(f"cannot reach Redis at {redact_url(args.redis)}: {exc}",
                         field="--redis") from None
    return client


def cmd_load(args: argparse.Namespace) -> int:
    from router.io.loading import load_accounts
    from router.stores.redis_store import load_into_redis

    accounts, policy = load_accounts(args.file)
    n = load_into_redis(_client(args), accounts, policy, time.time(), prefix=args.prefix,
                        replace=args.replace)
    print(f"loaded {n} accounts from {args.file} into {redact_url(args.redis)} "
          f"(prefix {args.prefix!r})")
    return 0


def _store(args: argparse.Namespace) -> RedisStore:
    from router.stores.redis_store import RedisStore

    return RedisStore(_client(args), prefix=args.prefix)


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    rows = []
    for acc in store.accounts():
        rows.append({
            "id": acc.id, "plan": acc.plan.value, "status": acc.status.value,
            "setting": acc.setting.value, "backup": acc.backup,
            "fast_hours_remaining": acc.fast_ms / MS_PER_HOUR,
            "unreserved_fast_seconds": acc.unreserved_ms / MS_PER_SECOND,
            "in_flight": acc.in_flight, "max_in_flight": acc.max_in_flight,
            "secrets": store.secret_names(acc.id),
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'id':<12} {'plan':<9} {'status':<21} {'setting':<8} {'fast h':>9} "
          f"{'in flight':>10}")
    for r in rows:
        flight = f"{r['in_flight']}/{r['max_in_flight']}"
        print(f"{r['id']:<12} {r['plan']:<9} {r['status']:<21} {r['setting']:<8} "
              f"{r['fast_hours_remaining']:>9.4f} {flight:>10}")
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    if args.status is None and args.setting is None:
        raise InputError("say what to change: --status and/or --setting", field="byoa accounts set")
    store = _store(args)
    now = time.time()
    try:
        if args.status is not None:
            acc = store.set_status(args.id, Status(args.status), now)
        if args.setting is not None:
            acc = store.set_setting(args.id, Setting(args.setting), now)
    except UnknownAccount as exc:
        raise InputError(exc.message, field="ID") from None
    print(f"{acc.id}: status {acc.status.value}, setting {acc.setting.value}, "
          f"{acc.fast_ms / MS_PER_HOUR:.4f} h fast left")
    return 0


def cmd_new_key(args: argparse.Namespace) -> int:
    print(new_key())
    return 0


def setup(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="accounts_command", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--redis", default=os.environ.get(ENV_URL, "redis://127.0.0.1:6379/0"),
                       help=f"Redis URL (default ${ENV_URL} or redis://127.0.0.1:6379/0); "
                       "redis+cluster://HOST:PORT for a Redis Cluster")
        p.add_argument("--prefix", default="byoa", help="key prefix (default byoa)")

    p = sub.add_parser("load", help="load an accounts file into Redis (once)")
    p.add_argument("file", help="accounts file (.json, .toml, .yaml)")
    p.add_argument("--replace", action="store_true",
                   help="delete the pool under the prefix first (in-flight state is lost)")
    common(p)
    p.set_defaults(func=cmd_load)
    p = sub.add_parser("list", help="accounts with fast time left and load")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    common(p)
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("set", help="change an account's status and/or setting (L5)")
    p.add_argument("id", help="account id")
    p.add_argument("--status", choices=[s.value for s in Status])
    p.add_argument("--setting", choices=[s.value for s in Setting])
    common(p)
    p.set_defaults(func=cmd_set)
    p = sub.add_parser("new-key", help=f"print a fresh key for ${ENV_SECRET_KEY} (seals "
                       "account secrets in Redis)")
    p.set_defaults(func=cmd_new_key)


COMMAND = Command("account state shared in Redis: load, list, set", setup, order=60)
