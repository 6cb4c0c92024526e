"""Request bodies are checked once, before routing (router.proxy.body): what cannot
be echoed back or would fail later is a 400 with a message, never a charged 500."""

from __future__ import annotations

import pytest

from router.proxy.body import MAX_DEPTH, BodyError, decode_body

IMAGINE = b'{"model":"midjourney","task_type":"imagine","input":{"prompt":"a cat --fast"}}'


def test_a_goapi_body_decodes() -> None:
    assert decode_body(IMAGINE)["input"]["prompt"] == "a cat --fast"


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "request body is empty; expected a JSON object"),
    (b"  \n", "request body is empty; expected a JSON object"),
    (b"\xff\xfe{}", "request body is not UTF-8 text"),
    (b"\xef\xbb\xbf{}", "request body is not valid JSON: Unexpected UTF-8 BOM (decode using "
     "utf-8-sig) (line 1, column 1)"),
    (b'{"input": {"seed": NaN}}', "request body is not valid JSON: NaN is not a JSON number"),
    (b'{"input": {"seed": -Infinity}}',
     "request body is not valid JSON: -Infinity is not a JSON number"),
    (b'{"input": {"aspect_ratio": 1e400}}', "input.aspect_ratio: the number 1e400 is out of "
     "range; numbers must be finite (at most about 1.8e308)"),
    (b'{"a": [{"b": 0.5}, {"b": -1E+999}]}', "a[1].b: the number -1E+999 is out of range; "
     "numbers must be finite (at most about 1.8e308)"),
    (b"1e400", "request body: the number 1e400 is out of range; numbers must be finite "
     "(at most about 1.8e308)"),
    (b'{"input": {"seed": ' + b"9" * 5000 + b"}}",
     "request body has an integer of 5000 digits; at most 20 are accepted"),
    (b'{"input": {"prompt": "a cat \\ud800"}}',
     "input.prompt: contains a lone surrogate (\\ud800), which is not text"),
    (b'{"model": "\\udfff"}', "model: contains a lone surrogate (\\udfff), which is not text"),
    (b'{"input": {"bot_id": ["\\ud800"]}}',
     "input.bot_id[0]: contains a lone surrogate (\\ud800), which is not text"),
    (b'{"\\ud800": 1}', "request body: contains a lone surrogate (\\ud800), which is not text"),
    (b"[" * 2000 + b"]" * 2000, f"request body is nested more than {MAX_DEPTH} levels deep"),
    (b"[" * 100_000, f"request body is nested more than {MAX_DEPTH} levels deep"),
    (b"{\"a\": " * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1),
     f"request body is nested more than {MAX_DEPTH} levels deep"),
    (b'{"model": "midjourney",}',
     "request body is not valid JSON: Expecting property name enclosed in double quotes "
     "(line 1, column 24)"),
])
def test_bad_bodies_say_what_is_wrong(raw: bytes, message: str) -> None:
    with pytest.raises(BodyError) as err:
        decode_body(raw)
    assert str(err.value) == message


def test_large_and_tiny_finite_numbers_are_accepted() -> None:
    assert decode_body(b'{"a": 1.5e308, "b": 1e-400, "c": -0.0}') == {
        "a": 1.5e308, "b": 0.0, "c": -0.0}


def test_nesting_up_to_the_limit_is_accepted() -> None:
    raw = b'{"a": ' * (MAX_DEPTH - 1) + b"[1]" + b"}" * (MAX_DEPTH - 1)
    assert decode_body(raw) is not None
