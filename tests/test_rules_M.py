"""M rules: the requested mode (M0-M5) and ``apply_mode``, one test per rule ID."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from _util import T0, acc, child, imagine, pool

from router.accounts import Mode
from router.modes import apply_mode, prompt_modes, resolve_mode

GOAPI_DOC_EXAMPLE: dict[str, Any] = {  # GoAPI Imagine page, "Body Params" (tests/data/)
    "model": "midjourney",
    "task_type": "imagine",
    "input": {
        "prompt": "flying night city",
        "aspect_ratio": "16:9",
        "process_mode": "fast",
        "skip_prompt_check": False,
        "bot_id": 0,
    },
    "config": {"service_mode": "", "webhook_config": {"endpoint": "", "secret": ""}},
}


# ----------------------------------------------------------------------- M0
def test_M0_goapi_doc_example_routes_as_is_and_is_not_modified() -> None:
    p = pool(acc("a1"))
    body = copy.deepcopy(GOAPI_DOC_EXAMPLE)
    d = p.submit("t1", body, T0)
    assert d.error is None
    assert (d.account_id, d.requested_mode, d.mode_source) == ("a1", Mode.FAST, "process_mode")
    assert body == GOAPI_DOC_EXAMPLE  # pass-through fields untouched


@pytest.mark.parametrize(("body", "field"), [
    ({"model": "dalle", "task_type": "imagine", "input": {"prompt": "x"}}, "model"),
    ({"task_type": "imagine", "input": {"prompt": "x"}}, "model"),
    ({"model": "midjourney", "task_type": "paint", "input": {"prompt": "x"}}, "task_type"),
    ({"model": "midjourney", "input": {"prompt": "x"}}, "task_type"),
    ({"model": "midjourney", "task_type": "imagine", "input": "x"}, "input"),
    ({"model": "midjourney", "task_type": "imagine"}, "input"),
    ({**imagine(), "config": {"service_mode": "shared"}}, "config.service_mode"),
    ({**imagine(), "config": []}, "config"),
    (imagine(bot_id="7"), "input.bot_id"),
    (imagine(bot_id=True), "input.bot_id"),
    (imagine(bot_id=1.5), "input.bot_id"),
    (imagine(""), "input.prompt"),
    (imagine("   "), "input.prompt"),
    ({"model": "midjourney", "task_type": "imagine", "input": {}}, "input.prompt"),
    (imagine(123), "input.prompt"),
    ({"model": "midjourney", "task_type": "upscale", "input": {"index": "1"}},
     "input.origin_task_id"),
    (child("  "), "input.origin_task_id"),
    (child(5), "input.origin_task_id"),  # type: ignore[arg-type]
    ([1, 2], "request"),
])
def test_M0_invalid_request_names_the_field(body: Any, field: str) -> None:
    p = pool(acc("a1"))
    d = p.submit("t1", body, T0)
    assert d.error is not None
    assert d.error.code == "invalid_request"
    assert d.error.rule == "M0"
    assert not d.error.retryable
    assert d.error.message.startswith(f"{field}:"), d.error.message
    assert d.account_id is None and d.effective_mode is None
    assert p.account("a1").in_flight == 0  # a rejected submit reserves nothing


def test_M0_describe_and_blend_need_no_prompt() -> None:
    p = pool(acc("a1"))
    for i, tt in enumerate(("describe", "blend")):
        d = p.submit(f"t{i}", {"model": "midjourney", "task_type": tt, "input": {}}, T0)
        assert d.error is None and d.mode_source == "default"


def _hook(webhook: Any) -> dict[str, Any]:
    return {**imagine(), "config": {"webhook_config": webhook}}


@pytest.mark.parametrize(("webhook", "message"), [
    ("str", "config.webhook_config: expected an object, got str (M0)"),
    ([], "config.webhook_config: expected an object, got list (M0)"),
    ({"endpoint": 5}, "config.webhook_config.endpoint: expected an http(s) URL, got 5 (M0)"),
    ({"endpoint": "gopher://x"},
     "config.webhook_config.endpoint: expected an http(s) URL, got 'gopher://x' (M0)"),
    ({"endpoint": "file:///etc/passwd"},
     "config.webhook_config.endpoint: expected an http(s) URL, got 'file:///etc/passwd' (M0)"),
    ({"endpoint": "not a url"},
     "config.webhook_config.endpoint: expected an http(s) URL, got 'not a url' (M0)"),
    ({"endpoint": "http://"},
     "config.webhook_config.endpoint: expected an http(s) URL, got 'http://' (M0)"),
    ({"endpoint": "http://hooks.example:port/x"},
     "config.webhook_config.endpoint: expected an http(s) URL, got "
     "'http://hooks.example:port/x' (M0)"),
    ({"endpoint": "http://hooks.example:70000/x"},
     "config.webhook_config.endpoint: expected an http(s) URL, got "
     "'http://hooks.example:70000/x' (M0)"),
    ({"endpoint": "https://hooks.example/x", "secret": 12345},
     "config.webhook_config.secret: expected a string, got int (M0)"),
])
def test_M0_a_webhook_config_must_name_an_http_endpoint(webhook: Any, message: str) -> None:
    p = pool(acc("a1"))
    d = p.submit("t1", _hook(webhook), T0)
    assert d.error is not None and d.error.code == "invalid_request"
    assert (d.error.rule, d.error.message) == ("M0", message)
    assert p.account("a1").in_flight == 0


@pytest.mark.parametrize("webhook", [
    None, {}, {"endpoint": "", "secret": ""}, {"endpoint": None, "secret": None},
    {"endpoint": "http://127.0.0.1:9/hook", "secret": "s"},
    {"endpoint": "HTTPS://hooks.example/x?a=1"}, {"endpoint": "http://[::1]:8080/"},
])
def test_M0_empty_null_and_http_webhook_configs_are_valid(webhook: Any) -> None:
    d = pool(acc("a1")).submit("t1", _hook(webhook), T0)
    assert d.error is None and d.account_id == "a1"


def test_M0_service_mode_null_and_empty_are_private() -> None:
    p = pool(acc("a1"))
    for i, sm in enumerate((None, "", "private")):
        d = p.submit(f"t{i}", {**imagine(), "config": {"service_mode": sm}}, T0)
        assert d.error is None and d.pool == "private" and d.account_id == "a1"


# ----------------------------------------------------------------------- M1
@pytest.mark.parametrize(("value", "mode"), [
    ("fast", Mode.FAST), ("FAST", Mode.FAST), ("  Turbo\t", Mode.TURBO),
    ("relax", Mode.RELAX), (" ReLaX ", Mode.RELAX),
])
def test_M1_process_mode_any_case_blanks_ignored(value: str, mode: Mode) -> None:
    r = resolve_mode(value, "a cat --relax" if mode is not Mode.RELAX else "a cat --fast")
    assert (r.mode, r.source) == (mode, "process_mode")


@pytest.mark.parametrize("value", ["superfast", "fast relax", "--fast", 1, True, ["fast"], {}])
def test_M1_other_process_mode_is_invalid_request_listing_allowed(value: object) -> None:
    p = pool(acc("a1"))
    d = p.submit("t1", imagine(process_mode=value), T0)
    assert d.error is not None and d.error.code == "invalid_request"
    assert d.error.rule == "M1"
    assert "input.process_mode" in d.error.message
    assert "fast, relax, turbo" in d.error.message


@pytest.mark.parametrize("value", [None, "", "   "])
def test_M1_empty_absent_or_null_process_mode_defers_to_prompt(value: object) -> None:
    r = resolve_mode(value, "a cat --turbo")
    assert (r.mode, r.source) == (Mode.TURBO, "prompt")


# ----------------------------------------------------------------------- M2
@pytest.mark.parametrize(("prompt", "mode"), [
    ("a cat --fast", Mode.FAST),
    ("--turbo a cat", Mode.TURBO),
    ("a cat --FAST", Mode.FAST),
    ("a cat --Relax", Mode.RELAX),
    ("a cat \u2014fast", Mode.FAST),  # Midjourney's em-dash form
    ("a cat \u2014TURBO --ar 16:9", Mode.TURBO),
    ("a\tcat\n--fast\t--ar 1:1", Mode.FAST),  # any whitespace delimits
])
def test_M2_prompt_flag_em_dash_case_whitespace(prompt: str, mode: Mode) -> None:
    r = resolve_mode(None, prompt)
    assert (r.mode, r.source, r.conflict) == (mode, "prompt", ())


@pytest.mark.parametrize("prompt", [
    "a cat --fastest", "a--fast", "a cat --fast,", "---fast", "a cat -fast", "a cat fast",
    "a cat --fast-ish", "a cat x\u2014fast", "a cat \u2013fast",  # en dash is not em dash
    "a cat --fasT1",
])
def test_M2_look_alike_tokens_are_not_mode_parameters(prompt: str) -> None:
    assert prompt_modes(prompt) == []
    r = resolve_mode(None, prompt)
    assert (r.mode, r.source) == (Mode.RELAX, "default")


def test_M2_conflicting_flags_last_wins_and_the_decision_notes_it() -> None:
    r = resolve_mode("", "a --fast b --relax c \u2014turbo")
    assert r.mode is Mode.TURBO and r.source == "prompt"
    assert r.conflict == (Mode.FAST, Mode.RELAX, Mode.TURBO)
    p = pool(acc("a1"))
    d = p.submit("t1", imagine("a --turbo b --relax"), T0)
    assert d.requested_mode is Mode.RELAX and d.mode_source == "prompt"
    assert any("M2" in n and "last one wins" in n for n in d.notes)


def test_M2_repeated_same_flag_is_not_a_conflict() -> None:
    r = resolve_mode(None, "--fast a --FAST")
    assert r.mode is Mode.FAST and r.conflict == ()
    p = pool(acc("a1"))
    assert p.submit("t1", imagine("--fast a --fast"), T0).notes == []


# ----------------------------------------------------------------------- M3
def test_M3_no_process_mode_no_flag_is_relax_from_default() -> None:
    p = pool(acc("a1"))
    d = p.submit("t1", imagine("a quiet harbor --ar 16:9"), T0)
    assert (d.requested_mode, d.mode_source, d.effective_mode) == (
        Mode.RELAX, "default", Mode.RELAX)


# ----------------------------------------------------------------------- M4
def test_M4_process_mode_overrides_the_prompt() -> None:
    p = pool(acc("a1"))
    d = p.submit("t1", imagine("a cat --relax", process_mode="fast"), T0)
    assert (d.requested_mode, d.mode_source, d.effective_mode) == (
        Mode.FAST, "process_mode", Mode.FAST)
    assert d.notes == []  # not a conflict: M1 simply wins


@pytest.mark.parametrize(("prompt", "mode", "expected"), [
    ("a cat --fast --ar 16:9", "relax", "a cat --ar 16:9 --relax"),
    ("a cat", Mode.TURBO, "a cat --turbo"),
    ("--relax a \u2014FAST cat --turbo", "fast", "a cat --fast"),
    ("a cat --fastest a--fast", "relax", "a cat --fastest a--fast --relax"),
    ("", "fast", "--fast"),
    ("--fast", "relax", "--relax"),
    ("  a  cat  ", "fast", "a  cat --fast"),
])
def test_M4_apply_mode_leaves_exactly_one_mode_parameter(prompt: str, mode: str,
                                                         expected: str) -> None:
    out = apply_mode(prompt, mode)
    assert out == expected
    assert prompt_modes(out) == [Mode(mode)]


def test_M4_apply_mode_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError):
        apply_mode("a cat", "superfast")


# ----------------------------------------------------------------------- M5
def test_M5_child_inherits_the_parents_requested_mode() -> None:
    p = pool(acc("a1"), acc("a2"))
    parent = p.submit("t1", imagine("a cat --turbo"), T0)
    d = p.submit("t2", child("t1"), T0 + 1)
    assert d.error is None
    assert (d.requested_mode, d.mode_source) == (Mode.TURBO, "parent")
    assert d.account_id == parent.account_id and d.effective_mode is Mode.TURBO
    grandchild = p.submit("t3", child("t2", "variation"), T0 + 2)
    assert (grandchild.requested_mode, grandchild.mode_source) == (Mode.TURBO, "parent")


def test_M5_mode_sent_on_a_child_is_ignored_and_noted() -> None:
    p = pool(acc("a1"))
    p.submit("t1", imagine("a cat"), T0)  # relax by default (M3)
    d = p.submit("t2", child("t1", process_mode="fast", prompt="x --turbo"), T0 + 1)
    assert (d.requested_mode, d.effective_mode, d.mode_source) == (
        Mode.RELAX, Mode.RELAX, "parent")
    assert any("M5" in n and "process_mode='fast'" in n and "--turbo" in n for n in d.notes)


def test_M5_invalid_process_mode_on_a_child_is_ignored_not_rejected() -> None:
    p = pool(acc("a1"))
    p.submit("t1", imagine("a cat --fast"), T0)
    d = p.submit("t2", child("t1", process_mode="superfast"), T0 + 1)
    assert d.error is None and d.requested_mode is Mode.FAST
    assert any("M5" in n for n in d.notes)


def test_M5_parent_is_any_accepted_task_whatever_happened_since() -> None:
    p = pool(acc("a1"))
    p.submit("t1", imagine("a --fast"), T0)
    p.fail("t1", T0 + 10)
    d = p.submit("t2", child("t1"), T0 + 20)
    assert d.error is None and d.account_id == "a1" and d.requested_mode is Mode.FAST


def test_M5_a_rejected_task_is_not_a_parent() -> None:
    p = pool(acc("b1", "basic", setting="relax"))
    rejected = p.submit("t1", imagine("a cat"), T0)
    assert rejected.error is not None and rejected.error.code == "no_relax_capacity"
    d = p.submit("t2", child("t1"), T0 + 1)
    assert d.error is not None and d.error.code == "parent_not_found"
