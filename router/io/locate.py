"""Line numbers for fields of a parsed JSON, YAML or TOML document.

Validation errors name the file, the line and the field (``accounts[2].plan``).
The parsers of the standard library do not keep positions, so this module
rebuilds a map from a field path to its 1-based line.
"""

from __future__ import annotations

import json
import json.scanner
import re
from typing import Any

import yaml

PathKey = tuple[str | int, ...]


def _line_at(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def json_lines(text: str) -> dict[PathKey, int]:
    """Map every object key path of a JSON document to its line."""
    spans: list[tuple[int, int, dict[str, Any]]] = []
    decoder = json.JSONDecoder()
    orig: Any = getattr(json.decoder, "JSONObject")  # noqa: B009 - untyped internal

    def parse_object(s_and_end: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        obj, end = orig(s_and_end, *args, **kwargs)
        spans.append((s_and_end[1], end, obj))
        return obj, end

    setattr(decoder, "parse_object", parse_object)  # noqa: B010 - pure-Python scanner hook
    make: Any = getattr(json.scanner, "py_make_scanner")  # noqa: B009
    setattr(decoder, "scan_once", make(decoder))  # noqa: B010
    try:
        root = decoder.decode(text)
    except json.JSONDecodeError:
        return {}
    by_id = {id(obj): (start, end) for start, end, obj in spans}
    out: dict[PathKey, int] = {}

    def walk(node: Any, path: PathKey) -> None:
        if isinstance(node, dict):
            start, end = by_id.get(id(node), (0, len(text)))
            out.setdefault(path, _line_at(text, max(start - 1, 0)))
            for key, value in node.items():
                m = re.search(r'"' + re.escape(json.dumps(key)[1:-1]) + r'"\s*:', text[start:end])
                out[(*path, key)] = _line_at(text, start + m.start()) if m else out[path]
                walk(value, (*path, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, (*path, i))
                if ((*path, i)) not in out:
                    out[(*path, i)] = out.get(path, 1)

    walk(root, ())
    return out


def yaml_lines(text: str) -> dict[PathKey, int]:
    """Map every key path of a YAML document to its line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    out: dict[PathKey, int] = {}

    def walk(n: Any, path: PathKey) -> None:
        out.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                out[(*path, str(k.value))] = k.start_mark.line + 1
                walk(v, (*path, str(k.value)))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*path, i))

    if node is not None:
        walk(node, ())
    return out


def toml_lines(text: str) -> dict[PathKey, int]:
    """Best-effort map for TOML: ``[[accounts]]`` tables and ``key =`` lines."""
    out: dict[PathKey, int] = {}
    table: PathKey = ()
    counters: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[["):
            name = line.strip("[] ")
            counters[name] = counters.get(name, -1) + 1
            table = (*tuple(name.split(".")), counters[name])
            out.setdefault(table, lineno)
        elif line.startswith("["):
            name = line.strip("[] ")
            parts = name.split(".")
            if parts[0] in counters and len(parts) > 1:
                table = (parts[0], counters[parts[0]], *parts[1:])
            else:
                table = tuple(parts)
            out.setdefault(table, lineno)
        else:
            m = re.match(r'^"?([A-Za-z0-9_\-]+)"?\s*=', line)
            if m:
                out.setdefault((*table, m.group(1)), lineno)
    return out


def nearest_line(lines: dict[PathKey, int], path: PathKey) -> int | None:
    """The line of ``path``, or of its nearest known ancestor."""
    p = tuple(path)
    while True:
        if p in lines:
            return lines[p]
        if not p:
            return None
        p = p[:-1]


def format_path(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
