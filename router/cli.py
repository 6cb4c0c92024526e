"""``byoa``: the command-line entry point (docs/formats.md, "Commands").

The subcommands are the ``byoa.commands`` entry points (pyproject.toml): one table,
name -> ``module:Command``. ``route`` and ``replay`` are defined here; the others
live with their packages and are loaded from that table, never imported by name.

Exit codes: 0 when the whole input was processed (error lines included),
1 on a runtime failure, 2 on bad input that stops the run, with a message on
stderr naming the file, line and field. Never a traceback for a user mistake.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from typing import IO, Any

from router.command import GROUP, Command
from router.errors import InputError
from router.io.events import read_events
from router.io.files import (
    STDIN,
    atomic_output,
    check_output,
    max_input_bytes,
    read_text,
    source_name,
)
from router.io.limits import parse_bounded_time
from router.io.replay import decision_fields, replay_events, write_records
from router.pool import Pool


def _read_request(spec: str) -> Any:
    """``--request``: a file path, ``-`` for standard input, or inline JSON."""
    if spec == "-":
        text, source = sys.stdin.read(max_input_bytes() + 1), STDIN
        if len(text) > max_input_bytes():
            raise InputError(f"more than the input limit of {max_input_bytes():,} bytes",
                             source=source)
    elif spec.lstrip().startswith("{"):
        text, source = spec, "--request"
    else:
        text, source = read_text(spec), spec
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg} (column {exc.colno})",
                         source=source, line=exc.lineno) from None


def cmd_route(args: argparse.Namespace) -> int:
    from router.io.loading import load_accounts  # pydantic: only for the commands that load

    accounts, policy = load_accounts(args.accounts)
    body = _read_request(args.request)
    try:
        at = parse_bounded_time(args.at) if args.at else time.time()
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
    if args.out:
        check_output(args.out, (args.accounts, args.events))
    from router.io.loading import load_accounts

    accounts, policy = load_accounts(args.accounts)
    pool = Pool(accounts, policy)
    events = read_events(args.events)
    records = replay_events(pool, events, source=source_name(args.events))
    with contextlib.ExitStack() as stack:
        out: IO[str] = sys.stdout
        if args.out:
            out = stack.enter_context(atomic_output(args.out, (args.accounts, args.events)))
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
    again = rec.get("reroute")
    if again is not None:  # H4: the new decision for the same task
        if again["error"]:
            line += f"\n      reroute: REJECTED {again['error']['code']} (H4)"
        else:
            fb = "  [fallback]" if again["fallback"] else ""
            line += (f"\n      reroute: -> {again['account_id']} as {again['effective_mode']}"
                     f"{fb} (H4)")
        if again.get("explanation"):
            line += f"\n      why: {again['explanation']}"
    for r in rec.get("recoveries", ()):
        line += f"\n      recovered: {r['account_id']} at {r['at']} (was {r['status_was']}, H1)"
    for r in rec["renewals"]:
        line += (f"\n      renewal: {r['account_id']} at {r['at']}, "
                 f"{r['expired_hours']:.4f} h expired")
    for n in rec["notifications"]:
        who = f" ({n['account_id']})" if "account_id" in n else ""
        line += f"\n      notify:  {n['type']}{who}"
    return line


def _setup_route(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accounts", required=True, help="accounts file (.json, .toml, .yaml)")
    p.add_argument("--request", required=True,
                   help="request body: a JSON file, '-' for stdin, or inline JSON")
    p.add_argument("--at", help="routing time, ISO-8601 UTC (default: now)")
    p.add_argument("--task-id", default="task-1", help="task id to report (default task-1)")
    p.add_argument("--explain", action="store_true", help="print the decision for people")
    p.set_defaults(func=cmd_route)


def _setup_replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accounts", required=True, help="accounts file (.json, .toml, .yaml)")
    p.add_argument("--events", required=True,
                   help="event script, JSON Lines (.gz ok), or '-' for stdin")
    p.add_argument("--out", help="write the output here instead of stdout")
    p.add_argument("--explain", action="store_true",
                   help="print the decisions for people instead of JSON Lines")
    p.set_defaults(func=cmd_replay)


ROUTE = Command("one decision for one GoAPI request body", _setup_route, order=10)
REPLAY = Command("an event script through the router and ledger", _setup_replay, order=20)


def _needs_extra(name: str, extras: list[str], missing: str | None, order: int) -> Command:
    """A stand-in for a command whose optional dependencies are not installed: it
    says which extra brings them."""
    extra = ",".join(extras)

    def setup(parser: argparse.ArgumentParser) -> None:
        def run(args: argparse.Namespace) -> int:
            print(f"byoa {name}: needs the optional dependencies of byoa-router[{extra}] "
                  f"(missing: {missing}); install them with "
                  f"pip install 'byoa-router[{extra}]'", file=sys.stderr)
            return 1

        parser.set_defaults(func=run, stub=True)

    return Command(f"(needs the '{extra}' extra)", setup, order)


#: A requirement of one extra in the installed metadata: name, its own extras, the extra
#: (a requirement with another condition too, e.g. a platform, is not checked).
_REQUIREMENT = re.compile(r'^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?[^;]*;'
                          r'\s*extra\s*==\s*"([^"]+)"\s*$')
_DIST = "byoa-router"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _by_extra() -> dict[str, list[tuple[str, list[str]]]]:
    """Each extra's requirements (name, extras asked of it), as pyproject.toml lists
    them, read from the installed metadata (empty when not installed)."""
    try:
        reqs = metadata.requires(_DIST) or []
    except metadata.PackageNotFoundError:
        return {}
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for req in reqs:
        m = _REQUIREMENT.match(req)
        if m:
            subs = [e.strip() for e in (m.group(2) or "").split(",") if e.strip()]
            out.setdefault(m.group(3), []).append((m.group(1), subs))
    return out


def missing_requirement(extras: Sequence[str],
                        by_extra: dict[str, list[tuple[str, list[str]]]]) -> str | None:
    """The first distribution that ``extras`` need (pyproject.toml's lists, followed
    through ``byoa-router[...]``) and that is not installed, or None. Asked before
    a command's module is imported: the modules import their heavy dependencies
    only when the command runs, so ``byoa --help`` stays quick."""
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        for name, subs in by_extra.get(extra, []):
            if _canonical(name) == _DIST:
                todo.extend(subs)
                continue
            try:
                metadata.distribution(name)
            except metadata.PackageNotFoundError:
                return name
    return None


def load_command(ep: metadata.EntryPoint,
                 by_extra: dict[str, list[tuple[str, list[str]]]] | None = None) -> Command:
    """The command an entry point names, or a stand-in when its extra is missing."""
    missing = missing_requirement(ep.extras, _by_extra() if by_extra is None else by_extra)
    if missing is not None:
        return _needs_extra(ep.name, list(ep.extras), missing, order=1000)
    try:
        command = ep.load()
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] in ("router", "simulations"):
            raise
        return _needs_extra(ep.name, list(ep.extras), exc.name, order=1000)
    if not isinstance(command, Command):
        raise TypeError(f"entry point {ep.name} = {ep.value} is not a router.command.Command")
    return command


def commands() -> dict[str, Command]:
    """Every ``byoa`` subcommand, in help order."""
    by_extra = _by_extra()
    found = {ep.name: load_command(ep, by_extra)
             for ep in metadata.entry_points(group=GROUP)}
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="byoa",
        description="Route Midjourney work across your own connected accounts (GoAPI BYOA rules).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in commands().items():
        command.setup(sub.add_parser(name, help=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
    sys.exit(main())
