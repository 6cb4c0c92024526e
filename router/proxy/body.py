"""Request bodies: bytes to JSON values that can be routed, stored and echoed back.

The one place where a body is checked before anything is routed: a value that the
proxy could route and charge but not echo in its answer (``NaN``, a number too
large for a float such as ``1e400``, a lone surrogate such as ``"\\ud800"``), or
that would blow up a later step (a 5,000-digit integer, nesting hundreds of levels
deep), is refused here with a 400 and changes nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

#: Deepest nesting of objects and arrays accepted (GoAPI bodies need four levels).
MAX_DEPTH = 32
#: Longest integer literal accepted, in digits.
MAX_INT_DIGITS = 20


class BodyError(ValueError):
    """A body that is not acceptable JSON; the message is for the client."""


def _reject_constant(name: str) -> Any:
    raise BodyError(f"request body is not valid JSON: {name} is not a JSON number")


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise BodyError(f"request body has an integer of {digits} digits; "
                        f"at most {MAX_INT_DIGITS} are accepted")
    return int(text)


class _OutOfRange(BodyError):
    """A number too large for a float: Python reads ``1e400`` as infinity, which JSON
    cannot hold (the answer could not echo it), so it is refused like ``Infinity``."""

    def __init__(self, text: str, where: str = "") -> None:
        super().__init__(f"{where or 'request body'}: the number {text} is out of range; "
                         "numbers must be finite (at most about 1.8e308)")
        self.text = text


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRange(text)
    return value


def _where_out_of_range(text: str) -> str:
    """The path of the first number out of range in ``text`` (read again with such
    numbers kept as markers; only for the message, after the first reading failed)."""
    marker = object()
    try:
        root = json.loads(text, parse_float=lambda t: t if math.isfinite(float(t)) else marker,
                          parse_int=_parse_int)
    except Exception:  # e.g. nested too deep after the number: no path then
        return ""
    return next((where for node, _depth, where in _values(root) if node is marker), "")


#: ``json.loads(text, parse_constant=..., parse_int=..., parse_float=...)`` with one
#: decoder for the process (``json.loads`` with arguments builds a new decoder for
#: every body).
_DECODE = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int,
                           parse_float=_parse_float).decode


def _check_text(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise BodyError(f"{where or 'request body'}: contains a lone surrogate "
                        f"(\\u{ord(bad):04x}), which is not text") from None


def _values(root: Any) -> Iterator[tuple[Any, int, str]]:
    """Every value in ``root`` with its depth and path (``input.seeds[1]``; ``""``: the
    body itself), in body order, without recursion; an object's keys come as text at
    the object's path, each before its value."""
    stack: list[tuple[Any, int, str]] = [(root, 1, "")]
    while stack:
        node, depth, where = stack.pop()
        yield node, depth, where
        if isinstance(node, dict | list):
            children: list[tuple[Any, int, str]] = []
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, value in items:
                if isinstance(key, str):
                    children.append((key, depth + 1, where))
                path = f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]"
                children.append((value, depth + 1, path.lstrip(".")))
            stack.extend(reversed(children))


def _check_tree(root: Any) -> None:
    """Depth and text of every value (the first problem in the body is named)."""
    for node, depth, where in _values(root):
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise BodyError(f"request body is nested more than {MAX_DEPTH} levels deep")
        elif isinstance(node, str):
            _check_text(node, where)


def decode_body(raw: bytes) -> Any:
    """The JSON value of a request body, or :class:`BodyError` saying what is wrong."""
    if not raw.strip():
        raise BodyError("request body is empty; expected a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("request body is not UTF-8 text") from None
    try:
        if text.startswith("\ufeff"):  # as ``json.loads`` says it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)",
                                       text, 0)
        value = _DECODE(text)
    except json.JSONDecodeError as exc:
        raise BodyError(f"request body is not valid JSON: {exc.msg} "
                        f"(line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise BodyError(f"request body is nested more than {MAX_DEPTH} levels deep") from None
    except _OutOfRange as exc:
        raise _OutOfRange(exc.text, _where_out_of_range(text)) from None
    # Only a backslash-u escape makes a lone surrogate (strict UTF-8 cannot hold
    # one), and no value nests deeper than the body has brackets: a body with
    # neither (every usual one) needs no walk.
    if b"\\u" in raw or raw.count(b"{") + raw.count(b"[") > MAX_DEPTH:
        _check_tree(value)
    return value
