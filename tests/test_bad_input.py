"""Bad input: every kind gives exit code 2 (files) or an error line (events), with a
message naming the file, line and field and what was expected; never a traceback."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from router.cli import main

OK_ACCOUNTS = {"accounts": [{"id": "a1", "plan": "standard", "bot_id": 7}]}
AT = "2026-11-24T10:00:00Z"


def _imagine(**inp: Any) -> dict[str, Any]:
    return {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x", **inp}}


def _write_events(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def _replay(capsys: pytest.CaptureFixture[str], accounts: Path, events: Path
            ) -> tuple[int, list[dict[str, Any]], str]:
    code = main(["replay", "--accounts", str(accounts), "--events", str(events)])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err and "Traceback" not in cap.out
    return code, [json.loads(x) for x in cap.out.splitlines()], cap.err


@pytest.fixture
def ok_accounts(tmp_path: Path) -> Path:
    p = tmp_path / "ok.json"
    p.write_text(json.dumps(OK_ACCOUNTS))
    return p


@pytest.fixture
def tick(tmp_path: Path) -> Path:
    return _write_events(tmp_path / "tick.jsonl", [{"op": "tick", "at": AT}])


def _bad_accounts(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, text: str,
                  tick: Path) -> list[str]:
    f = tmp_path / name
    f.write_text(text)
    code, out, err = _replay(capsys, f, tick)
    assert code == 2 and out == []
    lines = err.splitlines()
    assert lines[0].startswith(f"byoa replay: {f}:")
    return [ln.removeprefix("byoa replay: ").replace(str(f), name) for ln in lines]


# ------------------------------------------------------------ accounts files
def test_bad_input_malformed_json_accounts(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                           tick: Path) -> None:
    got = _bad_accounts(capsys, tmp_path, "a.json",
                        '{"accounts": [\n  {"id": "a1", "plan": "pro"\n]}', tick)
    assert got == ["a.json:3: not valid JSON: Expecting ',' delimiter (column 1)"]


def test_bad_input_malformed_toml_accounts(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                           tick: Path) -> None:
    got = _bad_accounts(capsys, tmp_path, "a.toml", '[[accounts]]\nid = "a1"\nplan = pro\n', tick)
    assert got == ["a.toml:3: not valid TOML: Invalid value (column 8)"]


def test_bad_input_malformed_yaml_accounts(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                           tick: Path) -> None:
    got = _bad_accounts(capsys, tmp_path, "a.yaml",
                        "accounts:\n  - id: a1\n   plan: pro\n", tick)
    assert got == ["a.yaml:3: not valid YAML: expected <block end>, but found "
                   "'<block mapping start>'"]


def test_bad_input_accounts_not_an_object(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          tick: Path) -> None:
    got = _bad_accounts(capsys, tmp_path, "a.json", "[]", tick)
    assert got == ["a.json:1: expected an object with an 'accounts' list"]
    got = _bad_accounts(capsys, tmp_path, "b.json", "{}", tick)
    assert got == ["b.json:1: accounts: required field is missing"]


def test_bad_input_unknown_missing_and_mistyped_fields_all_reported_at_once(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, tick: Path) -> None:
    text = ('{"accounts": [\n'
            '  {"id": "a1", "plan": "pro", "colour": "red"},\n'
            '  {"plan": "pro"},\n'
            '  {"id": "a3", "plan": "pro",\n'
            '   "max_in_flight": "13",\n'
            '   "backup": "yes"}\n'
            ']}\n')
    got = _bad_accounts(capsys, tmp_path, "a.json", text, tick)
    assert sorted(got) == sorted([
        "a.json:2: accounts[0].colour: unknown field (not in the contract's accounts format)",
        "a.json:3: accounts[1].id: required field is missing",
        "a.json:5: accounts[2].max_in_flight: expected a valid integer, got '13'",
        "a.json:6: accounts[2].backup: expected a valid boolean, got 'yes'",
    ])


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("plan", "gold", "expected one of 'basic', 'standard', 'pro' or 'mega', got 'gold'"),
    ("setting", "slow", "expected one of 'fast', 'turbo' or 'relax', got 'slow'"),
    ("status", "asleep", "expected one of 'active', 'disabled', 'banned', "
     "'captcha_required' or 'subscription_expired', got 'asleep'"),
    ("fast_hours_remaining", -1, "expected a value greater than or equal to 0, got -1"),
    ("weight", -0.5, "expected a value greater than or equal to 0, got -0.5"),
    ("max_in_flight", -1, "expected a value greater than or equal to 0, got -1"),
    ("bot_id", 0, "expected a value greater than 0, got 0"),
    ("renews_at", "soon", "expected an ISO-8601 UTC time such as 2026-12-01T08:00:00Z, "
     "got 'soon'"),
])
def test_bad_input_unknown_enum_or_out_of_range_account_value(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, tick: Path,
        field: str, value: Any, expected: str) -> None:
    base: dict[str, Any] = {"id": "a1", "plan": "pro"}
    text = '{"accounts": [\n' + json.dumps({**base, field: value}) + "\n]}"
    got = _bad_accounts(capsys, tmp_path, "a.json", text, tick)
    assert got == [f"a.json:2: accounts[0].{field}: {expected}"]


def test_bad_input_non_finite_hours(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                    tick: Path) -> None:
    text = '{"accounts": [\n{"id": "a1", "plan": "pro", "fast_hours_remaining": Infinity}]}'
    got = _bad_accounts(capsys, tmp_path, "a.json", text, tick)
    assert got == ["a.json:2: accounts[0].fast_hours_remaining: expected a finite number, "
                   "got inf"]


def test_bad_input_unknown_strategy_and_estimate(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path, tick: Path) -> None:
    text = ('{"policy": {\n"strategy": "fastest"},\n'
            '"accounts": [{"id": "a1", "plan": "pro"}]}')
    got = _bad_accounts(capsys, tmp_path, "a.json", text, tick)
    assert got == ["a.json:2: policy.strategy: expected one of 'least_loaded', 'round_robin', "
                   "'weighted', 'p2c', 'fill_first' or 'expiring_first', got 'fastest'"]
    text = ('{"policy": {"estimates": {\n"imagin": 30}},\n'
            '"accounts": [{"id": "a1", "plan": "pro"}]}')
    got = _bad_accounts(capsys, tmp_path, "b.json", text, tick)
    assert got == ["b.json:2: policy.estimates.imagin: unknown task type; expected one of "
                   "imagine, blend, reroll, variation, inpaint, outpaint, pan, upscale, "
                   "describe, seed (R9)"]
    text = '{"policy": {"estimates": {\n"imagine": -3}},\n"accounts": [{"id": "a", "plan": "pro"}]}'
    got = _bad_accounts(capsys, tmp_path, "c.json", text, tick)
    assert got == ["c.json:2: policy.estimates.imagine: expected seconds >= 0, got -3.0"]


def test_bad_input_duplicate_account_ids_and_bot_ids(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path, tick: Path) -> None:
    text = ('{"accounts": [\n{"id": "a1", "plan": "pro", "bot_id": 3},\n'
            '{"id": "a1", "plan": "pro",\n "bot_id": 3}]}')
    got = _bad_accounts(capsys, tmp_path, "a.json", text, tick)
    assert got == [
        "a.json:3: accounts[1].id: duplicate account id 'a1' (first at accounts[0]); "
        "ids must be unique",
        "a.json:4: accounts[1].bot_id: duplicate bot_id 3 (also accounts[0]); "
        "bot ids must be unique (R7)",
    ]


def test_bad_input_toml_and_yaml_name_the_line(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path, tick: Path) -> None:
    toml = ('[policy]\nstrategy = "least_loaded"\n\n[[accounts]]\nid = "a1"\nplan = "pro"\n\n'
            '[[accounts]]\nid = "a2"\nplan = "gold"\ncolour = 3\n')
    got = _bad_accounts(capsys, tmp_path, "a.toml", toml, tick)
    assert got == [
        "a.toml:10: accounts[1].plan: expected one of 'basic', 'standard', 'pro' or 'mega', "
        "got 'gold'",
        "a.toml:11: accounts[1].colour: unknown field (not in the contract's accounts format)",
    ]
    yaml = ("accounts:\n  - id: a1\n    plan: pro\n  - id: a2\n    plan: pro\n"
            "    inactive_window: {start: '25:00', end: '10:00'}\n")
    got = _bad_accounts(capsys, tmp_path, "a.yaml", yaml, tick)
    assert got == ["a.yaml:6: accounts[1].inactive_window.start: expected a UTC clock time "
                   "HH:MM such as 02:00, got '25:00'"]


def test_bad_input_missing_accounts_file(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         tick: Path) -> None:
    code, _, err = _replay(capsys, tmp_path / "nope.json", tick)
    assert code == 2 and err == f"byoa replay: {tmp_path / 'nope.json'}: no such file\n"


# ------------------------------------------------------ event lines: stop, exit 2
@pytest.mark.parametrize(("line", "expected"), [
    ("not json", "not valid JSON: Expecting value (column 1)"),
    ('{"op": "submit", ', "not valid JSON: Expecting property name enclosed in double quotes "
     "(column 18)"),
    ("[1, 2]", "expected a JSON object per line, got list"),
    ({"at": AT}, "op: required field is missing"),
    ({"op": "reboot", "at": AT}, "op: unknown op 'reboot'; expected one of submit, complete, "
     "fail, cancel, set_status, set_setting, tick"),
    ({"op": ["tick"], "at": AT}, "op: unknown op ['tick']; expected one of submit, complete, "
     "fail, cancel, set_status, set_setting, tick"),
    ({"op": "tick"}, "at: required field is missing"),
    ({"op": "tick", "at": "yesterday"},
     "at: expected an ISO-8601 UTC time such as 2026-12-01T08:00:00Z, got 'yesterday'"),
    ({"op": "tick", "at": AT, "task_id": "t"},
     "task_id: unknown field for a tick event; expected only op, at"),
    ({"op": "complete", "at": AT, "task_id": "t1"},
     "gpu_seconds: required field is missing (a complete event needs it)"),
    ({"op": "complete", "at": AT, "task_id": "t1", "gpu_seconds": "5"},
     "gpu_seconds: expected a finite number of seconds >= 0, got '5'"),
    ({"op": "complete", "at": AT, "task_id": "t1", "gpu_seconds": -1},
     "gpu_seconds: expected a finite number of seconds >= 0, got -1"),
    ('{"op": "complete", "at": "' + AT + '", "task_id": "t1", "gpu_seconds": NaN}',
     "gpu_seconds: expected a finite number of seconds >= 0, got nan"),
    ({"op": "fail", "at": AT, "task_id": 5}, "task_id: expected a non-empty string, got 5"),
    ({"op": "submit", "at": AT, "task_id": "t1", "request": "imagine"},
     "request: expected a GoAPI request object, got str"),
    ({"op": "submit", "at": AT, "task_id": "t1", "request": _imagine(),
      "estimated_gpu_seconds": -2}, "estimated_gpu_seconds: expected a finite number of "
     "seconds >= 0, got -2"),
    ({"op": "submit", "at": AT, "task_id": "t1", "request": _imagine(), "priority": 1},
     "priority: unknown field for a submit event; expected only op, at, "
     "estimated_gpu_seconds, request, task_id"),
    ({"op": "set_status", "at": AT, "account_id": "a1", "status": "asleep"},
     "status: expected one of active, disabled, banned, captcha_required, "
     "subscription_expired, got 'asleep'"),
    ({"op": "set_status", "at": AT, "account_id": "a1", "status": ["banned"]},
     "status: expected one of active, disabled, banned, captcha_required, "
     "subscription_expired, got ['banned']"),
    ({"op": "set_setting", "at": AT, "account_id": "a1", "setting": "slow"},
     "setting: expected one of fast, turbo, relax, got 'slow'"),
    ({"op": "set_setting", "at": AT, "account_id": "a1"},
     "setting: required field is missing (a set_setting event needs it)"),
])
def test_bad_input_unreadable_event_line_stops_with_exit_2(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, ok_accounts: Path,
        line: Any, expected: str) -> None:
    events = _write_events(tmp_path / "e.jsonl", [{"op": "tick", "at": AT}, line])
    code, out, err = _replay(capsys, ok_accounts, events)
    assert code == 2
    assert [r["event"] for r in out] == [1]  # lines before the bad one were written
    assert err == f"byoa replay: {events}:2: {expected}\n"


def test_bad_input_time_going_backwards(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        ok_accounts: Path) -> None:
    events = _write_events(tmp_path / "e.jsonl", [
        {"op": "tick", "at": AT}, {"op": "tick", "at": "2026-11-24T09:59:59Z"}])
    code, _, err = _replay(capsys, ok_accounts, events)
    assert code == 2
    assert err == (f"byoa replay: {events}:2: at: time went backwards: 2026-11-24T09:59:59Z is "
                   "earlier than the line before (2026-11-24T10:00:00Z); events must be in "
                   "time order (L6)\n")


def test_bad_input_duplicate_task_id(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                     ok_accounts: Path) -> None:
    sub = {"op": "submit", "at": AT, "task_id": "t1", "request": _imagine()}
    bad = {**sub, "request": {"model": "x"}}  # a rejected submit still takes its id
    events = _write_events(tmp_path / "e.jsonl", [bad, sub])
    code, out, err = _replay(capsys, ok_accounts, events)
    assert code == 2 and len(out) == 1
    assert err == (f"byoa replay: {events}:2: task_id: duplicate task_id 't1' "
                   "(already submitted earlier)\n")


def test_bad_input_missing_events_file(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                       ok_accounts: Path) -> None:
    code, _, err = _replay(capsys, ok_accounts, tmp_path / "none.jsonl")
    assert code == 2 and err == f"byoa replay: {tmp_path / 'none.jsonl'}: no such file\n"


def test_bad_input_gz_trace_is_read_and_a_corrupt_gz_is_exit_2(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, ok_accounts: Path) -> None:
    gz = tmp_path / "e.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(json.dumps({"op": "submit", "at": AT, "task_id": "t1",
                             "request": _imagine()}) + "\n")
        fh.write("oops\n")
    code, out, err = _replay(capsys, ok_accounts, gz)
    assert code == 2 and out[0]["account_id"] == "a1"
    assert err == f"byoa replay: {gz}:2: not valid JSON: Expecting value (column 1)\n"
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"op": "tick", "at": "' + AT.encode() + b'"}\n')[:-12])
    code, _, err = _replay(capsys, ok_accounts, broken)
    assert code == 2 and err.startswith(f"byoa replay: {broken}: cannot read the file:")


# ------------------------------------------------------ event lines: error lines
def _error_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, accounts: Path,
                lines: list[Any]) -> list[dict[str, Any]]:
    events = _write_events(tmp_path / "e.jsonl", [*lines, {"op": "tick", "at": AT}])
    code, out, err = _replay(capsys, accounts, events)
    assert code == 0 and err == ""
    assert out[-1]["op"] == "tick" and out[-1]["error"] is None  # the run went on
    return out[:-1]


@pytest.mark.parametrize(("request_body", "message"), [
    (_imagine(process_mode="ultra"),
     "input.process_mode: 'ultra' is not one of fast, relax, turbo (M1)"),
    (_imagine(process_mode=3),
     "input.process_mode: expected a string, one of fast, relax, turbo, got 3 (M1)"),
    ({"model": "midjourney", "task_type": "zoom", "input": {"prompt": "x"}},
     "task_type: 'zoom' is not one of blend, describe, imagine; inpaint, outpaint, pan, "
     "reroll, seed, upscale, variation (M0)"),
    ({"model": "midjourney", "task_type": "upscale", "input": {"index": "1"}},
     "input.origin_task_id: an upscale needs the parent's task id, got None (M0)"),
    ({"model": "midjourney", "task_type": "variation", "input": {"origin_task_id": " "}},
     "input.origin_task_id: a variation needs the parent's task id, got ' ' (M0)"),
    ({**_imagine(), "config": {"service_mode": "shared"}},
     "config.service_mode: 'shared' is not one of '', 'private', 'public' (M0)"),
    (_imagine(bot_id="7"), "input.bot_id: expected an integer, got '7' (M0)"),
])
def test_bad_input_invalid_request_is_an_error_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, ok_accounts: Path,
        request_body: dict[str, Any], message: str) -> None:
    (rec,) = _error_line(capsys, tmp_path, ok_accounts, [
        {"op": "submit", "at": AT, "task_id": "t1", "request": request_body}])
    assert rec["error"] == {"code": "invalid_request", "message": message, "retryable": False}
    assert rec["account_id"] is None and rec["effective_mode"] is None


@pytest.mark.parametrize("op", ["complete", "fail", "cancel"])
def test_bad_input_finishing_an_unknown_task_is_not_in_flight(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, ok_accounts: Path, op: str) -> None:
    line: dict[str, Any] = {"op": op, "at": AT, "task_id": "t9"}
    if op == "complete":
        line["gpu_seconds"] = 1
    (rec,) = _error_line(capsys, tmp_path, ok_accounts, [line])
    assert rec == {"event": 1, "op": op, "task_id": "t9", "notifications": [], "renewals": [],
                   "error": {"code": "not_in_flight", "retryable": False,
                             "message": f"task t9 is not in flight (never submitted); "
                                        f"nothing to {op}"}}


def test_bad_input_finishing_twice_is_not_in_flight(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, ok_accounts: Path) -> None:
    recs = _error_line(capsys, tmp_path, ok_accounts, [
        {"op": "submit", "at": AT, "task_id": "t1", "request": _imagine()},
        {"op": "fail", "at": AT, "task_id": "t1"},
        {"op": "cancel", "at": AT, "task_id": "t1"}])
    assert recs[2]["error"]["message"] == ("task t1 is not in flight (already finished); "
                                           "nothing to cancel")


def test_bad_input_unknown_account_is_an_error_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, ok_accounts: Path) -> None:
    (rec,) = _error_line(capsys, tmp_path, ok_accounts, [
        {"op": "set_setting", "at": AT, "account_id": "zz", "setting": "relax"}])
    assert rec["error"] == {"code": "unknown_account", "retryable": False,
                            "message": "no account 'zz' in the pool; set_setting ignored (L5)"}


def test_bad_input_child_without_origin_task_id_via_route(
        capsys: pytest.CaptureFixture[str], ok_accounts: Path) -> None:
    body = json.dumps({"model": "midjourney", "task_type": "upscale", "input": {}})
    code = main(["route", "--accounts", str(ok_accounts), "--request", body, "--at", AT])
    cap = capsys.readouterr()
    assert code == 0 and "Traceback" not in cap.err
    out = json.loads(cap.out)
    assert out["error"]["code"] == "invalid_request"
    assert out["error"]["message"].startswith("input.origin_task_id: an upscale needs")


def test_bad_input_route_request_not_json(capsys: pytest.CaptureFixture[str],
                                          ok_accounts: Path, tmp_path: Path) -> None:
    req = tmp_path / "r.json"
    req.write_text('{"model": "midjourney",\n "task_type": }')
    code = main(["route", "--accounts", str(ok_accounts), "--request", str(req), "--at", AT])
    cap = capsys.readouterr()
    assert code == 2
    assert cap.err == f"byoa route: {req}:2: not valid JSON: Expecting value (column 15)\n"
    code = main(["route", "--accounts", str(ok_accounts), "--request", "{}", "--at", "noon"])
    cap = capsys.readouterr()
    assert code == 2 and cap.err == ("byoa route: --at: expected an ISO-8601 UTC time such as "
                                     "2026-12-01T08:00:00Z, got 'noon'\n")


def test_bad_input_through_the_real_entry_point_has_no_traceback(tmp_path: Path) -> None:
    accounts = tmp_path / "a.json"
    accounts.write_text('{"accounts": [{"id": "a1", "plan": "gold"}]}')
    events = _write_events(tmp_path / "e.jsonl", [{"op": "tick", "at": AT}])
    proc = subprocess.run([sys.executable, "-m", "router.cli", "replay", "--accounts",
                           str(accounts), "--events", str(events)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"byoa replay: {accounts}:1: accounts[0].plan: expected one of "
                           "'basic', 'standard', 'pro' or 'mega', got 'gold'\n")


# ------------------------------------------------- health and pacing (H1-H4)
@pytest.mark.parametrize(("field", "value", "expected"), [
    ("max_jobs_per_day", 0, "expected a value greater than 0, got 0"),
    ("max_jobs_per_day", -1, "expected a value greater than 0, got -1"),
    ("max_jobs_per_day", 1.5, "expected a valid integer, got 1.5"),
    ("max_jobs_per_day", True, "expected a valid integer, got True"),
    ("max_jobs_per_day", "3", "expected a valid integer, got '3'"),
    ("min_gap_seconds", -1, "expected a value greater than or equal to 0, got -1"),
    ("min_gap_seconds", "10", "expected a valid number, got '10'"),
    ("min_gap_seconds", True, "expected a valid number, got True"),
])
def test_bad_input_H2_H3_account_fields(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        tick: Path, field: str, value: Any,
                                        expected: str) -> None:
    text = '{"accounts": [\n' + json.dumps({"id": "a1", "plan": "pro", field: value}) + "\n]}"
    got = _bad_accounts(capsys, tmp_path, "a.json", text, tick)
    assert got == [f"a.json:2: accounts[0].{field}: {expected}"]


def test_bad_input_H3_non_finite_gap(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                     tick: Path) -> None:
    text = '{"accounts": [\n{"id": "a1", "plan": "pro", "min_gap_seconds": Infinity}]}'
    got = _bad_accounts(capsys, tmp_path, "a.json", text, tick)
    assert got == ["a.json:2: accounts[0].min_gap_seconds: expected a finite number, got inf"]


_SET = {"op": "set_status", "at": AT, "account_id": "a1"}


@pytest.mark.parametrize(("line", "expected"), [
    ({**_SET, "status": "active", "until": "2026-11-24T11:00:00Z"},
     "until: expected no until with status 'active'; until is allowed only with disabled, "
     "banned, captcha_required (H1)"),
    ({**_SET, "status": "subscription_expired", "until": "2026-11-24T11:00:00Z"},
     "until: expected no until with status 'subscription_expired'; until is allowed only "
     "with disabled, banned, captcha_required (H1)"),
    ({**_SET, "status": "banned", "until": AT},
     "until: expected a time later than at (2026-11-24T10:00:00Z), got "
     "'2026-11-24T10:00:00Z' (H1)"),
    ({**_SET, "status": "banned", "until": "tomorrow"},
     "until: expected an ISO-8601 UTC time such as 2026-12-01T08:00:00Z, got 'tomorrow' (H1)"),
    ({**_SET, "status": "banned", "until": 5},
     "until: expected an ISO-8601 UTC time such as 2026-12-01T08:00:00Z, got 5 (H1)"),
    ({"op": "fail", "at": AT, "task_id": "t1", "reason": "timeout"},
     "reason: expected fast_exhausted or no reason, got 'timeout' (H4)"),
    ({"op": "fail", "at": AT, "task_id": "t1", "reason": None},
     "reason: expected fast_exhausted or no reason, got None (H4)"),
    ({"op": "cancel", "at": AT, "task_id": "t1", "reason": "fast_exhausted"},
     "reason: unknown field for a cancel event; expected only op, at, task_id"),
])
def test_bad_input_H1_H4_event_fields_stop_with_exit_2(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, ok_accounts: Path,
        line: dict[str, Any], expected: str) -> None:
    events = _write_events(tmp_path / "e.jsonl", [{"op": "tick", "at": AT}, line])
    code, out, err = _replay(capsys, ok_accounts, events)
    assert code == 2
    assert [r["event"] for r in out] == [1]
    assert err == f"byoa replay: {events}:2: {expected}\n"


# ------------------------------------------- finite but too large (router.io.limits)
@pytest.mark.parametrize(("text", "expected"), [
    ('{"accounts": [\n{"id": "a1", "plan": "pro", "fast_hours_remaining": 1e308}]}',
     "a.json:2: accounts[0].fast_hours_remaining: expected a value less than or equal to "
     "1000000, got 1e+308"),
    ('{"accounts": [\n{"id": "a1", "plan": "pro", "renews_at": "9999-12-31T00:00:00Z"}]}',
     "a.json:2: accounts[0].renews_at: expected a time before 9000-01-01T00:00:00Z, "
     "got '9999-12-31T00:00:00Z'"),
    ('{"accounts": [\n{"id": "a1", "plan": "pro", "weight": 1e308}]}',
     "a.json:2: accounts[0].weight: expected a value less than or equal to 1000000, "
     "got 1e+308"),
    ('{"accounts": [\n{"id": "a1", "plan": "pro", "min_gap_seconds": 1e300}]}',
     "a.json:2: accounts[0].min_gap_seconds: expected a value less than or equal to "
     "1000000000, got 1e+300"),
    ('{"policy": {"estimates": {\n"imagine": 1e308}},\n"accounts": [{"id": "a", "plan": "pro"}]}',
     "a.json:2: policy.estimates.imagine: expected seconds <= 1,000,000,000, got 1e+308"),
])
def test_bad_input_huge_account_values(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                       tick: Path, text: str, expected: str) -> None:
    """Finite values too large to turn into milliseconds or renewals: exit 2, no
    OverflowError (docs/formats.md, "Limits")."""
    assert _bad_accounts(capsys, tmp_path, "a.json", text, tick) == [expected]


def test_bad_input_huge_hours_in_toml(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      tick: Path) -> None:
    toml = '[[accounts]]\nid = "a1"\nplan = "pro"\nfast_hours_remaining = 1e308\n'
    assert _bad_accounts(capsys, tmp_path, "a.toml", toml, tick) == [
        "a.toml:4: accounts[0].fast_hours_remaining: expected a value less than or equal to "
        "1000000, got 1e+308"]


@pytest.mark.parametrize(("line", "expected"), [
    ({"op": "tick", "at": "9999-12-31T23:59:59Z"},
     "at: expected a time before 9000-01-01T00:00:00Z, got '9999-12-31T23:59:59Z'"),
    ({"op": "complete", "at": AT, "task_id": "t1", "gpu_seconds": 1e308},
     "gpu_seconds: expected seconds <= 1,000,000,000, got 1e+308"),
    ({"op": "submit", "at": AT, "task_id": "t1", "request": _imagine(),
      "estimated_gpu_seconds": 1e308},
     "estimated_gpu_seconds: expected seconds <= 1,000,000,000, got 1e+308"),
    ({"op": "set_status", "at": AT, "account_id": "a1", "status": "disabled",
      "until": "9500-01-01T00:00:00Z"},
     "until: expected a time before 9000-01-01T00:00:00Z, got '9500-01-01T00:00:00Z' (H1)"),
])
def test_bad_input_event_values_too_large(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          ok_accounts: Path, line: Any, expected: str) -> None:
    """The line is refused before it is applied: no 7 MB renewal line, no OverflowError."""
    events = _write_events(tmp_path / "e.jsonl", [{"op": "tick", "at": AT}, line])
    code, out, err = _replay(capsys, ok_accounts, events)
    assert code == 2 and [r["event"] for r in out] == [1]
    assert err == f"byoa replay: {events}:2: {expected}\n"


def test_bad_input_route_at_too_late(capsys: pytest.CaptureFixture[str],
                                     ok_accounts: Path) -> None:
    code = main(["route", "--accounts", str(ok_accounts), "--request", json.dumps(_imagine()),
                 "--at", "9999-01-01T00:00:00Z"])
    cap = capsys.readouterr()
    assert code == 2 and cap.out == ""
    assert cap.err == ("byoa route: --at: expected a time before 9000-01-01T00:00:00Z, "
                       "got '9999-01-01T00:00:00Z'\n")


def test_bad_input_toml_with_a_bom_names_the_bom(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path, tick: Path) -> None:
    """tomllib alone says 'Invalid statement (column 1)' for a byte order mark."""
    got = _bad_accounts(capsys, tmp_path, "a.toml",
                        '\ufeff[[accounts]]\nid = "a1"\nplan = "pro"\n', tick)
    assert got == ["a.toml:1: not valid TOML: Unexpected UTF-8 BOM (column 1); save the file "
                   "as UTF-8 without a byte order mark"]


@pytest.mark.parametrize(("entry", "expected"), [
    ({"id": "a\u0000", "plan": "pro"},
     "accounts[0].id: expected an account id without control characters, got 'a\\x00'"),
    ({"id": "a1 ", "plan": "pro"},
     "accounts[0].id: expected an account id without spaces at the start or end, got 'a1 '"),
    ({"id": "a1", "plan": "pro", "inactive_window": "02:00-10:00"},
     'accounts[0].inactive_window: expected start and end as UTC clock times HH:MM, such as '
     '{"start": "02:00", "end": "10:00"}, got \'02:00-10:00\''),
])
def test_bad_input_account_that_could_never_be_used_or_told_apart(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, tick: Path,
        entry: dict[str, Any], expected: str) -> None:
    """'a1 ' beside 'a1' looked like one account; a control character hides in an id;
    the window's message named the internal class WindowModel. (``max_in_flight`` 0
    stays allowed: an account with no room, never routed to, R1.)"""
    text = '{"accounts": [\n' + json.dumps(entry) + "\n]}"
    assert _bad_accounts(capsys, tmp_path, "a.json", text, tick) == [f"a.json:2: {expected}"]


def test_bad_input_yaml_boolean_id_says_to_quote_it(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path, tick: Path) -> None:
    got = _bad_accounts(capsys, tmp_path, "a.yaml", "accounts:\n  - id: no\n    plan: pro\n",
                        tick)
    assert got == ["a.yaml:2: accounts[0].id: expected a string, got False (in YAML, put ids "
                   "such as no, yes, on or off in quotes)"]


def test_replay_reads_events_from_stdin(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                        ok_accounts: Path) -> None:
    """``--events -`` is standard input, as ``route --request -`` is (it used to say
    '-: no such file'); its lines are named ``<stdin>:N``."""
    import io

    good = [{"op": "tick", "at": AT}, {"op": "submit", "at": AT, "task_id": "t1",
                                       "request": _imagine()}]
    events = _write_events(tmp_path / "e.jsonl", good)
    code, from_file, _ = _replay(capsys, ok_accounts, events)
    assert code == 0
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(events.read_bytes())))
    code, from_stdin, err = _replay(capsys, ok_accounts, Path("-"))
    assert code == 0 and err == "" and from_stdin == from_file
    bad = json.dumps({"op": "tick", "at": "yesterday"}) + "\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(bad.encode())))
    code, _, err = _replay(capsys, ok_accounts, Path("-"))
    assert code == 2
    assert err == ("byoa replay: <stdin>:1: at: expected an ISO-8601 UTC time such as "
                   "2026-12-01T08:00:00Z, got 'yesterday'\n")


def test_bad_input_time_before_1970(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                    ok_accounts: Path) -> None:
    """Year 1 used to replay with renewals printed as '1-01-31T00:00:00Z'."""
    events = _write_events(tmp_path / "e.jsonl", [{"op": "tick", "at": "0001-01-01T00:00:00Z"}])
    code, out, err = _replay(capsys, ok_accounts, events)
    assert code == 2 and out == []
    assert err == (f"byoa replay: {events}:1: at: expected a time from 1970-01-01T00:00:00Z on, "
                   "got '0001-01-01T00:00:00Z'\n")
