"""The error-code table (``router.errors.ERROR_CODES``) is the only one.

Every exception type and every HTTP status come from it; the documented table
(docs/formats.md) agrees with it; and no other module of the shipped packages
declares a collection of error codes of its own.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO

from router.errors import ERROR_CODES, ERROR_TYPES, RouterError, http_status, make_error
from router.proxy.envelope import error_envelope, route_error

#: The simulator numbers the codes of its decisions for numpy arrays; that index is
#: the simulator's (checked against the table below), not a second table.
INDEXES = {"simulations/harness.py"}


def test_every_routing_code_has_one_exception_type() -> None:
    assert set(ERROR_TYPES) == {c for c, e in ERROR_CODES.items() if e.router}
    for code, cls in ERROR_TYPES.items():
        assert issubclass(cls, RouterError) and cls.code == code
        assert cls.retryable is ERROR_CODES[code].retryable
        assert make_error(code, "R1", "m").retryable is ERROR_CODES[code].retryable


def test_http_statuses_come_from_the_table() -> None:
    for code, spec in ERROR_CODES.items():
        assert http_status(code) == spec.http_status
        env = error_envelope(code, "m")
        assert env["code"] == env["data"]["error"]["code"] == spec.http_status
        if spec.router:
            err = make_error(code, spec.rule, "m")
            assert route_error(err)["code"] == spec.http_status
            assert route_error(err)["detail"] == {"error_code": code, "rule": spec.rule,
                                                  "retryable": spec.retryable}


def test_documented_table_matches() -> None:
    text = (REPO / "docs" / "formats.md").read_text(encoding="utf-8")
    text = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| .* \| (true|false) \|$", text, re.MULTILINE)
    assert {code: flag == "true" for code, flag in rows} == {
        c: e.retryable for c, e in ERROR_CODES.items() if e.router}


def test_the_simulators_index_covers_the_decision_codes() -> None:
    from simulations.harness import ERROR_CODES as SIM_INDEX

    decision_codes = {c for c, e in ERROR_CODES.items() if e.router} - {
        "not_in_flight", "unknown_account"}  # event-line codes, never a decision
    assert set(SIM_INDEX) - {""} == decision_codes


def _declared_code_collections(path: Path) -> list[int]:
    """Line numbers of literals (dict, set, tuple, list) holding two or more codes."""
    codes = set(ERROR_CODES)
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Dict):
            elts = [k for k in node.keys if k is not None] + list(node.values)
        elif isinstance(node, ast.Set | ast.Tuple | ast.List):
            elts = list(node.elts)
        else:
            continue
        found = {e.value for e in elts if isinstance(e, ast.Constant) and e.value in codes}
        if len(found) >= 2:
            lines.append(node.lineno)
    return lines


def test_no_other_module_declares_error_codes() -> None:
    copies = {}
    for pkg in ("router", "simulations"):
        for path in sorted((REPO / pkg).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel == "router/errors.py" or rel in INDEXES:
                continue
            found = _declared_code_collections(path)
            if found:
                copies[rel] = found
    assert copies == {}
