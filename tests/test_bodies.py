"""
Stored body forms: every body must come back byte for byte, in the most readable form possible.
"""

from __future__ import annotations

import gzip
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from llmcassette import _bodies
from llmcassette._bodies import (
    DEFAULT_JSON_FORMAT,
    JSON_FORMATS,
    StoredBody,
    dump_json,
    is_text,
    load_body,
    store_body,
)
from llmcassette._yaml import dump_yaml, load_yaml

OPENAI_REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hi in French: « salut » ?"}],
    "stream": True,
    "stream_options": {"include_usage": True},
    "temperature": 0.2,
}


def through_yaml(stored: StoredBody) -> StoredBody:
    """The stored form after a trip through a cassette file, as a response body is written."""
    if stored.is_parsed:
        data: dict[str, Any] = {"parsed_body": stored.parsed}
        if stored.json_format:
            data["json_format"] = stored.json_format
    else:
        data = {"body": {"string": stored.string}}
        if stored.line_endings:
            data["body"]["line_endings"] = stored.line_endings
    back = load_yaml(dump_yaml({"interactions": [{"response": data}]}))["interactions"][0]["response"]
    if "parsed_body" in back:
        return StoredBody(parsed=back["parsed_body"], is_parsed=True, json_format=back.get("json_format"))
    return StoredBody(string=back["body"]["string"], line_endings=back["body"].get("line_endings"))


# --- choosing the form ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "json_format"),
    [
        pytest.param(json.dumps(OPENAI_REQUEST).encode(), None, id="json-dumps-defaults-need-no-name"),
        pytest.param(
            json.dumps(OPENAI_REQUEST, separators=(",", ":")).encode(), "compact-ascii", id="compact"
        ),
        pytest.param(
            json.dumps(OPENAI_REQUEST, separators=(",", ":"), ensure_ascii=False).encode(),
            "compact",
            id="compact-raw-utf8",
        ),
        pytest.param(json.dumps(OPENAI_REQUEST, indent=2).encode(), "indent2-ascii", id="indent2-escaped"),
        pytest.param(
            json.dumps(OPENAI_REQUEST, indent=2, ensure_ascii=False).encode() + b"\n",
            "indent2+nl",
            id="indent2-nl",
        ),
        pytest.param(b'{"a": 1}\n', "spaced+nl", id="spaced-nl"),
        pytest.param(b"[]", "compact", id="empty-array"),
    ],
)
def test_json_is_stored_parsed(content: bytes, json_format: str | None) -> None:
    stored = store_body(content, content_type="application/json")
    assert stored.is_parsed
    assert stored.json_format == json_format
    assert dump_json(stored.parsed, stored.json_format) == content
    assert load_body(stored) == content


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param(b'data: {"a":1}\n\ndata: [DONE]\n\n', "text/event-stream", id="sse"),
        pytest.param(b'{"done":false}\n{"done":true}\n', "application/x-ndjson", id="ndjson"),
        pytest.param(b'{"done":true}\n', "application/x-ndjson", id="one-line-ndjson"),
        pytest.param(b'{"a":1}', "text/plain", id="json-text-under-a-text-type"),
        pytest.param(b'{"a":  1}', "application/json", id="unusual-spacing"),
        pytest.param(b' {"a":1}', "application/json", id="leading-space"),
        pytest.param(b'{"a":1,"a":2}', "application/json", id="duplicate-keys"),
        pytest.param(b'{"a":1e5}', "application/json", id="exponent-spelling"),
        pytest.param(b'{"a":', "application/json", id="truncated-json"),
        pytest.param(json.dumps({"a": [1]}, indent=4).encode(), "application/json", id="indent4"),
        pytest.param(b'{"a": "\\ud800"}', "application/json", id="lone-surrogate-escape"),
        pytest.param(b"[" * 101 + b"]" * 101, "application/json", id="deeper-than-yaml-likes"),
        pytest.param(b"[" * 50_000, None, id="recursion-bomb"),
        pytest.param("Grüße\n\ttab\r".encode(), None, id="plain-text"),
    ],
)
def test_text_is_stored_as_a_string(content: bytes, content_type: str | None) -> None:
    stored = store_body(content, content_type=content_type)
    assert not stored.is_parsed
    assert stored.string == content.decode("utf-8")
    assert stored.line_endings is None
    assert load_body(through_yaml(stored)) == content


@pytest.mark.parametrize(
    ("content", "flagged"),
    [
        pytest.param(b'data: {"a": 1}\r\n\r\ndata: {"b": 2}\r\n\r\n', True, id="gemini-crlf-sse"),
        pytest.param("Grüße\r\n\ttab".encode(), True, id="crlf-text"),
        pytest.param(b"a\r\nb\nc", False, id="mixed-crlf-and-lf"),
        pytest.param(b"a\r\nb\rc", False, id="mixed-crlf-and-cr"),
        pytest.param(b"a\nb", False, id="lf-only"),
    ],
)
def test_all_crlf_text_is_stored_with_lf_and_flagged(content: bytes, flagged: bool) -> None:
    # YAML can show LF text line by line; CRLF would force one escaped line.
    stored = store_body(content, content_type="text/event-stream")
    assert (stored.line_endings == "crlf") is flagged
    if flagged:
        assert isinstance(stored.string, str) and "\r" not in stored.string
    assert load_body(stored) == content
    assert load_body(through_yaml(stored)) == content


def test_json_exactly_at_the_depth_limit_is_still_parsed() -> None:
    content = b"[" * 100 + b"]" * 100
    stored = store_body(content)
    assert stored.is_parsed
    assert load_body(through_yaml(stored)) == content


def test_surrogate_pair_escapes_are_parsed() -> None:
    # A pair is one character (an emoji), which any file holds; only half a pair is refused.
    stored = store_body(b'{"e": "\\ud83d\\ude00"}')
    assert stored.is_parsed and stored.parsed == {"e": "\U0001f600"}
    assert load_body(through_yaml(stored)) == b'{"e": "\\ud83d\\ude00"}'


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(gzip.compress(b'{"a": 1}', mtime=0), id="gzip"),
        pytest.param(b"\x00\x00\x00\x1f\x00\x00\x00\x00", id="nul-bytes"),
        pytest.param(b"\xff\xfe", id="invalid-utf8"),
        pytest.param(b"text with a \x1b escape", id="control-character"),
        pytest.param(b"\x7f", id="delete"),
    ],
)
def test_binary_is_stored_as_bytes(content: bytes) -> None:
    stored = store_body(content)
    assert stored.string == content and isinstance(stored.string, bytes)
    assert "!!binary" in dump_yaml({"string": stored.string})
    assert load_body(through_yaml(stored)) == content


def test_empty_body_is_an_empty_string() -> None:
    assert store_body(b"") == StoredBody(string="")
    assert load_body(StoredBody()) == b""


def test_non_finite_numbers_survive_as_json() -> None:
    content = b'{"a": NaN, "b": Infinity, "c": -Infinity}'
    back = through_yaml(store_body(content))
    assert back.is_parsed and math.isnan(back.parsed["a"])
    assert load_body(back) == content


# --- the format table ----------------------------------------------------------------------------


def test_format_names_are_complete() -> None:
    bases = {"compact", "spaced", "indent2"}
    expected = {b + a + n for b in bases for a in ("", "-ascii") for n in ("", "+nl")}
    assert set(JSON_FORMATS) == expected
    assert DEFAULT_JSON_FORMAT in JSON_FORMATS


@pytest.mark.parametrize("name", sorted(JSON_FORMATS))
def test_every_format_is_recognised(name: str) -> None:
    content = dump_json(OPENAI_REQUEST, name)
    fmt = JSON_FORMATS[name]
    assert content.endswith(b"\n") is fmt.newline
    assert content.isascii() is fmt.ensure_ascii
    stored = store_body(content, content_type="application/json")
    assert stored.is_parsed and load_body(stored) == content


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"plain", True, id="ascii"),
        pytest.param("été\t\r\n".encode(), True, id="utf8-with-whitespace"),
        pytest.param(b"", True, id="empty"),
        pytest.param(b"\x00", False, id="nul"),
        pytest.param(b"a\x0cb", False, id="form-feed"),
        pytest.param(b"\xc3", False, id="cut-utf8"),
    ],
)
def test_is_text(content: bytes, expected: bool) -> None:
    assert is_text(content) is expected


# --- round trip properties -----------------------------------------------------------------------

# JSON values as providers send them: no lone surrogates (hypothesis' text never has them).
_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
)
_JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)
_JSON_CONTAINERS = st.lists(_JSON_VALUES, max_size=4) | st.dictionaries(
    st.text(max_size=6), _JSON_VALUES, max_size=4
)

_SSE_LINES = st.lists(
    st.sampled_from(
        ['data: {"x": 1}', "event: ping", ": keep-alive", "data: [DONE]", "", "  indented", "trail  "]
    ),
    max_size=6,
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "escapes", "text", "sse"]))
    if kind == "bytes":
        return draw(st.binary(max_size=120))
    if kind == "escapes":
        # JSON escapes can spell what a str cannot be written as: half a surrogate pair.
        pieces = st.sampled_from(["\\ud800", "\\udfff", "\\ud83d\\ude00", "\\u00e9", "a", '\\"'])
        return ('{"s": "' + "".join(draw(st.lists(pieces, max_size=4))) + '"}').encode()
    if kind == "json":
        return dump_json(draw(_JSON_CONTAINERS), draw(st.sampled_from(sorted(JSON_FORMATS))))
    if kind == "text":
        return draw(st.text(max_size=80)).encode("utf-8")
    line_end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return "".join(line + line_end for line in draw(_SSE_LINES)).encode()


@settings(max_examples=200, deadline=None)
@given(content=bodies(), content_type=st.sampled_from([None, "application/json", "text/event-stream"]))
def test_any_body_survives_a_cassette_file(content: bytes, content_type: str | None) -> None:
    stored = store_body(content, content_type=content_type)
    assert load_body(stored) == content
    assert load_body(through_yaml(stored)) == content


@settings(max_examples=200, deadline=None)
@given(value=_JSON_CONTAINERS, name=st.sampled_from(sorted(JSON_FORMATS)))
def test_json_in_any_known_format_is_stored_parsed(value: Any, name: str) -> None:
    content = dump_json(value, name)
    stored = store_body(content, content_type="application/json")
    assert stored.is_parsed
    assert stored.json_format != DEFAULT_JSON_FORMAT  # the default is written as no name at all
    assert load_body(through_yaml(stored)) == content


@settings(max_examples=200, deadline=None)
@given(value=_JSON_CONTAINERS, name=st.sampled_from(sorted(JSON_FORMATS)), odd=st.booleans())
def test_a_format_writes_what_json_dumps_writes_with_its_options(value: Any, name: str, odd: bool) -> None:
    # `dump_json` keeps one C encoder per format (see `_bodies._encoder`): the text is json.dumps's.
    if odd:  # keys that are not text, and floats JSON has no spelling for
        value = {1: value, 2.5: math.nan, None: -math.inf, False: -0.0, "é\u2028": "\x00"}
    fmt = JSON_FORMATS[name]
    text = json.dumps(value, separators=fmt.separators, indent=fmt.indent, ensure_ascii=fmt.ensure_ascii)
    assert dump_json(value, name) == (text + "\n" * fmt.newline).encode()
    with pytest.raises(TypeError, match="not JSON serializable"):
        dump_json([value, object()], name)


def test_a_c_encoder_that_takes_other_arguments_leaves_the_encoders_own_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `json.encoder.c_make_encoder` is CPython's own: a Python whose C encoder is made otherwise
    # gets json.dumps's text through the encoder's own `encode`, not an error.
    def other_arguments(*args: Any) -> Any:
        raise TypeError("make_encoder() takes other arguments")

    monkeypatch.setattr(_bodies, "c_make_encoder", other_arguments)
    monkeypatch.setattr(_bodies, "_ENCODERS", {})
    value = {"a": [1, 2.5, "é"], "b": None}
    for name, fmt in JSON_FORMATS.items():
        text = json.dumps(value, separators=fmt.separators, indent=fmt.indent, ensure_ascii=fmt.ensure_ascii)
        assert dump_json(value, name) == (text + "\n" * fmt.newline).encode()
