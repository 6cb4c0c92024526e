"""M0/M1: validate a GoAPI unified request body and extract what routing needs.

The body itself is never modified; fields the router does not use pass through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from router.accounts import CHILD_TASK_TYPES, ROOT_TASK_TYPES, Mode
from router.errors import InvalidRequest
from router.modes import ModeError, ResolvedMode, prompt_modes, resolve_mode

_SERVICE_MODES: Final = ("", "private", "public")
_TASK_TYPES: Final = ROOT_TASK_TYPES | CHILD_TASK_TYPES
#: task type -> whether it is a child (M5): validity and kind in one lookup
_IS_CHILD: Final[dict[str, bool]] = {t: t in CHILD_TASK_TYPES for t in _TASK_TYPES}
_TASK_TYPES_TEXT: Final = (", ".join(sorted(ROOT_TASK_TYPES)) + "; "
                    + ", ".join(sorted(CHILD_TASK_TYPES)))


@dataclass(slots=True, init=False)
class ParsedRequest:
    """What the router reads from a valid request body; never changed once made.

    One is built per submitted body: a plain class with its ``__init__`` written
    out, which mypyc compiles to native code, with native field reads (a named
    tuple or a generated dataclass ``__init__`` would stay interpreted Python,
    issue 13). Equal when every field is equal."""

    task_type: str
    is_child: bool
    public: bool
    prompt: str | None
    origin_task_id: str | None
    bot_id: int | None  # R7: None and 0 pin nothing
    resolved: ResolvedMode | None  # roots only; children inherit (M5)
    ignored_mode: str | None  # M5: what a child sent and we ignored
    body: Mapping[str, Any]

    def __init__(self, task_type: str, is_child: bool, public: bool, prompt: str | None,
                 origin_task_id: str | None, bot_id: int | None,
                 resolved: ResolvedMode | None, ignored_mode: str | None,
                 body: Mapping[str, Any]) -> None:
        self.task_type = task_type
        self.is_child = is_child
        self.public = public
        self.prompt = prompt
        self.origin_task_id = origin_task_id
        self.bot_id = bot_id
        self.resolved = resolved
        self.ignored_mode = ignored_mode
        self.body = body


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, "M0")


def _object(value: object, expected: str) -> dict[str, Any]:
    """``value`` as a dict, or M0's error (``expected``, then what it is). A dict is
    read through native dict operations when compiled (issue 13); any other mapping
    is read from a dict copy (the same ``get`` results)."""
    if type(value) is dict:
        return value
    if isinstance(value, Mapping):
        return dict(value)
    raise _invalid(f"{expected}, got {type(value).__name__} (M0)")


def parse_request(body: object) -> ParsedRequest:
    """Check M0 and M1 in that order; raise ``InvalidRequest`` naming the field."""
    fields = _object(body, "request: expected a JSON object")
    model = fields.get("model")
    if not isinstance(model, str) or model != "midjourney":  # a str: compared natively
        raise _invalid(f"model: expected 'midjourney', got {model!r} (M0)")
    task_type = fields.get("task_type")
    if not isinstance(task_type, str) or (is_child := _IS_CHILD.get(task_type)) is None:
        raise _invalid(f"task_type: {task_type!r} is not one of {_TASK_TYPES_TEXT} (M0)")
    inp = _object(fields.get("input"), "input: expected an object")
    config = fields.get("config")
    service_mode: object = ""
    if config is not None:
        if type(config) is not dict and not isinstance(config, Mapping):
            raise _invalid(f"config: expected an object, got {type(config).__name__} (M0)")
        service_mode = config.get("service_mode", "")
        if service_mode is None:
            service_mode = ""
    if service_mode not in _SERVICE_MODES:
        raise _invalid(
            f"config.service_mode: {service_mode!r} is not one of '', 'private', 'public' (M0)"
        )
    if config is not None:
        _check_webhook(config.get("webhook_config"))
    bot_raw = inp.get("bot_id")
    bot_id: int | None = None
    if bot_raw is not None:
        if isinstance(bot_raw, bool) or not isinstance(bot_raw, int):
            raise _invalid(f"input.bot_id: expected an integer, got {bot_raw!r} (M0)")
        bot_id = bot_raw or None
    prompt_raw = inp.get("prompt")
    if prompt_raw is not None and not isinstance(prompt_raw, str):
        raise _invalid(f"input.prompt: expected a string, got {prompt_raw!r} (M0)")
    prompt: str | None = prompt_raw
    if is_child:
        origin = inp.get("origin_task_id")
        if not isinstance(origin, str) or not origin.strip():
            raise _invalid(
                f"input.origin_task_id: {'an' if task_type[0] in 'aeiou' else 'a'} "
                f"{task_type} needs the parent's task id, "
                f"got {origin!r} (M0)"
            )
        ignored = _ignored_mode(inp.get("process_mode"), prompt)
        return ParsedRequest(task_type, True, service_mode == "public", prompt,
                             origin, None, None, ignored, fields)
    if task_type == "imagine" and (prompt is None or not prompt.strip()):
        raise _invalid("input.prompt: an imagine needs a non-blank prompt (M0)")
    try:
        resolved = resolve_mode(inp.get("process_mode"), prompt)
    except ModeError as exc:
        raise InvalidRequest(str(exc), "M1") from None
    return ParsedRequest(task_type, False, service_mode == "public", prompt,
                         None, bot_id, resolved, None, fields)


def http_url(value: str) -> bool:
    """Whether ``value`` is an ``http://`` or ``https://`` URL with a host (and no
    blank or control character): where a webhook can be sent."""
    if any(c <= " " or c == "\x7f" for c in value):
        return False
    try:
        parts = urlsplit(value)
        return (parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
                and parts.port != 0)
    except ValueError:  # a port that is not a number from 0 to 65535, a bad IPv6 host
        return False


def _check_webhook(webhook: object) -> None:
    """M0: ``config.webhook_config``, when given and not null, is an object whose
    ``endpoint`` is empty, null or an http(s) URL, and whose ``secret`` is a string
    or null (the secret is never echoed)."""
    if webhook is None:
        return
    if not isinstance(webhook, Mapping):
        raise _invalid(
            f"config.webhook_config: expected an object, got {type(webhook).__name__} (M0)")
    endpoint = webhook.get("endpoint")
    if endpoint not in (None, "") and not (isinstance(endpoint, str) and http_url(endpoint)):
        raise _invalid(
            f"config.webhook_config.endpoint: expected an http(s) URL, got {endpoint!r} (M0)")
    secret = webhook.get("secret")
    if secret is not None and not isinstance(secret, str):
        raise _invalid("config.webhook_config.secret: expected a string, got "
                       f"{type(secret).__name__} (M0)")


def child_request(task_type: str, origin_task_id: str) -> ParsedRequest:
    """``parse_request`` of the bare child body ``{"model": "midjourney", "task_type":
    task_type, "input": {"origin_task_id": origin_task_id}}``, built without parsing it
    (the simulator's follow-ups). Anything else, or an invalid body, goes through
    ``parse_request`` (same result, same errors)."""
    body = {"model": "midjourney", "task_type": task_type,
            "input": {"origin_task_id": origin_task_id}}
    if task_type not in CHILD_TASK_TYPES or not origin_task_id.strip():
        return parse_request(body)
    return ParsedRequest(task_type, True, False, None, origin_task_id, None, None, None, body)


def _ignored_mode(process_mode: object, prompt: str | None) -> str | None:
    """M5: describe a mode a child sent (and that is ignored), if any."""
    seen: list[str] = []
    if process_mode not in (None, "") and not (
        isinstance(process_mode, str) and not process_mode.strip()
    ):
        seen.append(f"process_mode={process_mode!r}")
    flags: list[Mode] = prompt_modes(prompt or "")
    seen.extend(f"--{m.value}" for m in flags)
    return ", ".join(seen) if seen else None
