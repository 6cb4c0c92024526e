"""``byoa``: the command-line entry point (docs/formats.md, "Commands").

Exit codes: 0 when the whole input was processed (error lines included),
1 on a runtime failure, 2 on bad input that stops the run, with a message on
stderr naming the file, line and field. Never a traceback for a user mistake.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from router.errors import InputError
from router.events import read_events
from router.loading import load_accounts
from router.pool import Pool
from router.replay import decision_fields, replay_events, write_records
from router.timeutil import parse_time

#: Subcommands that live in other packages register here: name -> (help, setup).
EXTRA_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {}


def _read_request(spec: str) -> Any:
    """``--request``: a file path, ``-`` for standard input, or inline JSON."""
    if spec == "-":
        text, source = sys.stdin.read(), "<stdin>"
    elif spec.lstrip().startswith("{"):
        text, source = spec, "--request"
    else:
        try:
            text, source = Path(spec).read_text(encoding="utf-8"), spec
        except FileNotFoundError:
            raise InputError("no such file", source=spec) from None
        except OSError as exc:
            raise InputError(f"cannot read the file: {exc}", source=spec) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg} (column {exc.colno})",
                         source=source, line=exc.lineno) from None


def cmd_route(args: argparse.Namespace) -> int:
    accounts, policy = load_accounts(args.accounts)
    body = _read_request(args.request)
    try:
        at = parse_time(args.at) if args.at else time.time()
    except ValueError as exc:
        raise InputError(str(exc), field="--at") from None
    pool = Pool(accounts, policy)
    d = pool.route(body, args.task_id, at)
    fields = decision_fields(d)
    fields["error"] = d.error.as_dict() if d.error else None
    if args.explain:
        print(_explain_text(fields))
    else:
        print(json.dumps(fields))
    return 0


def _explain_text(f: dict[str, Any]) -> str:
    lines = [f"task {f['task_id']}: "]
    if f["error"]:
        e = f["error"]
        lines[0] += f"REJECTED {e['code']}" + (" (retryable)" if e["retryable"] else "")
        lines.append(f"  why:       {e['message']}")
    elif f["pool"] == "public":
        lines[0] += "GoAPI public pool (P1)"
    else:
        lines[0] += f"-> {f['account_id']} as {f['effective_mode']}"
        if f["fallback"]:
            lines[0] += " (fallback to relax)"
    if f["requested_mode"]:
        lines.append(f"  requested: {f['requested_mode']} (from {f['mode_source']})")
    if f["explanation"]:
        lines.append(f"  decision:  {f['explanation']}")
    for acc, rule in f["rejections"].items():
        lines.append(f"  excluded:  {acc} by {rule}")
    return "\n".join(lines)


def cmd_replay(args: argparse.Namespace) -> int:
    accounts, policy = load_accounts(args.accounts)
    pool = Pool(accounts, policy)
    events = read_events(args.events)
    records = replay_events(pool, events, source=str(args.events))
    with contextlib.ExitStack() as stack:
        out: TextIO = sys.stdout
        if args.out:
            out = stack.enter_context(open(args.out, "w", encoding="utf-8"))
        if args.explain:
            for rec in records:
                out.write(_record_text(rec) + "\n")
        else:
            write_records(records, out)
    return 0


def _record_text(rec: dict[str, Any]) -> str:
    """One replay output record, for people (``byoa replay --explain``)."""
    head = f"#{rec['event']:<3} {rec['op']:<11}"
    err = rec["error"]
    if rec["op"] == "submit":
        if err:
            line = f"{head} {rec['task_id']}: REJECTED {err['code']}: {err['message']}"
        elif rec["pool"] == "public":
            line = f"{head} {rec['task_id']}: GoAPI public pool as {rec['effective_mode']} (P1)"
        else:
            fb = "  [fallback]" if rec["fallback"] else ""
            line = (f"{head} {rec['task_id']}: {rec['requested_mode']} ({rec['mode_source']})"
                    f" -> {rec['account_id']} as {rec['effective_mode']}{fb}")
        if rec.get("explanation"):
            line += f"\n      why: {rec['explanation']}"
    elif err:
        line = f"{head} {rec.get('task_id') or rec.get('account_id')}: {err['code']}: " \
               f"{err['message']}"
    elif rec["op"] in ("complete", "fail", "cancel"):
        line = (f"{head} {rec['task_id']} on {rec['account_id']}: charged "
                f"{rec['charged_seconds']:g} s, {rec['fast_hours_remaining']:.4f} h fast left, "
                f"setting {rec['setting']}")
    elif rec["op"] in ("set_status", "set_setting"):
        line = (f"{head} {rec['account_id']}: status {rec['status']}, setting {rec['setting']}, "
                f"{rec['fast_hours_remaining']:.4f} h fast left")
    else:
        line = f"{head} clock moves on"
    for r in rec["renewals"]:
        line += (f"\n      renewal: {r['account_id']} at {r['at']}, "
                 f"{r['expired_hours']:.4f} h expired")
    for n in rec["notifications"]:
        who = f" ({n['account_id']})" if "account_id" in n else ""
        line += f"\n      notify:  {n['type']}{who}"
    return line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="byoa",
        description="Route Midjourney work across your own connected accounts (GoAPI BYOA rules).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("route", help="one decision for one GoAPI request body")
    p.add_argument("--accounts", required=True, help="accounts file (.json, .toml, .yaml)")
    p.add_argument("--request", required=True,
                   help="request body: a JSON file, '-' for stdin, or inline JSON")
    p.add_argument("--at", help="routing time, ISO-8601 UTC (default: now)")
    p.add_argument("--task-id", default="task-1", help="task id to report (default task-1)")
    p.add_argument("--explain", action="store_true", help="print the decision for people")
    p.set_defaults(func=cmd_route)
    p = sub.add_parser("replay", help="an event script through the router and ledger")
    p.add_argument("--accounts", required=True, help="accounts file (.json, .toml, .yaml)")
    p.add_argument("--events", required=True, help="event script, JSON Lines (.gz ok)")
    p.add_argument("--out", help="write the output here instead of stdout")
    p.add_argument("--explain", action="store_true",
                   help="print the decisions for people instead of JSON Lines")
    p.set_defaults(func=cmd_replay)
    for name, (help_text, setup) in EXTRA_COMMANDS.items():
        setup(sub.add_parser(name, help=help_text))
    return parser


#: Optional command modules: module -> (commands it registers, extra that brings them).
_EXTRA_MODULES: dict[str, tuple[tuple[str, ...], str]] = {
    "simulations.cli": (("simulate",), "sim"),
    "simulations.capacity_cli": (("sweep", "plan"), "sim,dask"),
    "router.stores.cli": (("accounts",), "redis"),
    "router.proxy.cli": (("serve",), "proxy"),
}


def _missing_extra(command: str, extra: str, missing: str | None) -> None:
    """Register ``command`` as a stub that says which extra to install."""

    def setup(parser: argparse.ArgumentParser) -> None:
        def run(args: argparse.Namespace) -> int:
            print(f"byoa {command}: needs the optional dependencies of byoa-router[{extra}] "
                  f"(missing module: {missing}); install them with "
                  f"pip install 'byoa-router[{extra}]'", file=sys.stderr)
            return 1

        parser.set_defaults(func=run, stub=True)

    EXTRA_COMMANDS.setdefault(command, (f"(needs the '{extra}' extra)", setup))


def _load_extras() -> None:
    """Import optional command modules (they register in EXTRA_COMMANDS)."""
    import importlib

    for module, (commands, extra) in _EXTRA_MODULES.items():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.split(".")[0] in ("router", "simulations"):
                raise
            for command in commands:
                _missing_extra(command, extra, exc.name)


def main(argv: Sequence[str] | None = None) -> int:
    _load_extras()
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "stub", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        code: int = args.func(args)
        return code
    except InputError as exc:
        print(f"byoa {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print(f"byoa {args.command}: interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # Run the importable ``router.cli`` (where extra commands register), not this
    # ``__main__`` copy of it, so ``python -m router.cli serve`` works too.
    from router.cli import main as _main

    sys.exit(_main())
