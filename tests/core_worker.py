"""Plays router workloads for ``test_compiled.py`` (not a test module).

Imported, ``play`` runs a workload in this process. Run as a script (the test
starts it with ``BYOA_PURE=1``, so its core is the pure-Python one), it reads
workloads from stdin and writes each one's ``play`` result to stdout, both pickled
and preceded by their length (4 bytes, big-endian). Only plain data crosses: a
pickled router object does not load in a process running the other core (mypyc
pickles a native object's fields as a dict, the pure slotted class expects a
tuple), so the accounts go as an accounts file and come back as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import struct
import sys
from typing import Any, BinaryIO

from _util import events

from router import compiled
from router.errors import InputError, RouterError
from router.io.loading import parse_accounts
from router.io.replay import replay_events
from router.pool import Pool

#: An accounts file (JSON text), an event script, ``indexed``, ``explain`` and the
#: policy's ``upgrade_relax_when_expiring``.
Workload = tuple[str, list[dict[str, Any]], bool, bool, bool]


def play(accounts_file: str, script: list[dict[str, Any]], indexed: bool, explain: bool,
         upgrade: bool) -> dict[str, Any]:
    """The output lines of ``script`` (``byoa replay``'s), every account's final
    state (ledger, periods, pacing) and the error that stopped the script, if one
    did, as JSON text; and which core ran."""
    accounts, policy = parse_accounts(accounts_file)
    policy.upgrade_relax_when_expiring = upgrade
    pool = Pool(accounts, policy, indexed=indexed, explain=explain)
    records: list[dict[str, Any]] = []
    error = None
    try:
        records.extend(replay_events(pool, events(script)))
    except (RouterError, InputError, ValueError) as exc:  # the same on both sides
        error = [type(exc).__name__, str(exc)]
    state = [dataclasses.asdict(a) for a in pool.accounts.values()]
    return {"records": json.dumps(records), "accounts": json.dumps(state),
            "error": json.dumps(error), "core": compiled.status()}


def send(stream: BinaryIO, obj: object) -> None:
    data = pickle.dumps(obj)
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def receive(stream: BinaryIO) -> Any:
    head = stream.read(4)
    if len(head) < 4:
        raise EOFError
    return pickle.loads(stream.read(struct.unpack(">I", head)[0]))


def main() -> None:
    while True:
        try:
            work: Workload = receive(sys.stdin.buffer)
        except EOFError:
            return
        send(sys.stdout.buffer, play(*work))


if __name__ == "__main__":
    main()
