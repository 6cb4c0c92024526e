"""Validation at the boundary: one wording for every validation message
(``file:line: field: what was expected``). Files are read by ``router.io.files``."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from router.errors import InputError
from router.io.locate import PathKey, format_path, nearest_line, toml_lines

M = TypeVar("M", bound=BaseModel)

#: A UTF-8 byte order mark, which TOML does not allow (tomllib says "Invalid statement").
_BOM = "\ufeff"
_BOM_TOML = ("not valid TOML: Unexpected UTF-8 BOM (column 1); save the file as UTF-8 "
             "without a byte order mark")


def refuse_toml_bom(text: str, source: str) -> None:
    """Before ``tomllib.loads``: a TOML file that starts with a byte order mark is
    said as such (``InputError`` at line 1), not as tomllib's "Invalid statement"."""
    if text.startswith(_BOM):
        raise InputError(_BOM_TOML, source=source, line=1)


def describe_error(err: Mapping[str, Any], unknown_field: str) -> str:
    """A pydantic error, said for people: what was expected and what was given.

    ``unknown_field`` is the text for a field the format does not have.
    """
    kind = err.get("type")
    ctx = err.get("ctx") or {}
    expected = ctx.get("expected")
    if expected:
        return f"expected one of {expected}, got {err.get('input')!r}"
    msg = str(err.get("msg", "invalid value"))
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return unknown_field
    if kind == "missing":
        return "required field is missing"
    if msg.startswith("Input should be "):
        rest = msg.removeprefix("Input should be ")
        what = rest if rest.startswith(("a ", "an ")) else f"a value {rest}"
        return f"expected {what}, got {err.get('input')!r}"
    return f"{msg[0].lower()}{msg[1:]}, got {err.get('input')!r}"


def validation_error(exc: ValidationError, lines: dict[PathKey, int], source: str,
                     unknown_field: str, top_level: str = "(top level)") -> InputError:
    """Every problem of a pydantic ``ValidationError`` as one ``InputError``, a line
    each: ``file:line: field: what was expected``."""
    problems = []
    for err in exc.errors():
        path: PathKey = tuple(
            p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function"))
        )
        line = nearest_line(lines, path)
        where = f"{source}:{line}" if line else source
        field = format_path(path) or top_level
        problems.append(f"{where}: {field}: {describe_error(err, unknown_field)}")
    return InputError("\n".join(problems))


def parse_toml_model(text: str, model: type[M], source: str, unknown_field: str,
                     top_level: str = "(top level)") -> M:
    """Parse a TOML document and validate it against ``model``; every problem is
    reported with its line (``InputError``)."""
    refuse_toml_bom(text, source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", source=source) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, toml_lines(text), source, unknown_field, top_level) from None
