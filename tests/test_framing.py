"""
Stream framings: detecting them, cutting bodies into events, decoding SSE events.

The provider streams below are written for these tests in each provider's wire format (see the
provider notes in the design reference); they are short, but keep the quirks that matter: named
events and pings (Anthropic), CRLF line endings (Gemini), keep-alive comments (OpenRouter), one
JSON object per line (Ollama), a progressively written JSON array (Gemini without ``alt=sse``)
and binary frames (Bedrock).
"""

from __future__ import annotations

import json
import struct
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from llmcassette._framing import (
    Framing,
    SSEEvent,
    detect_framing,
    event_ends,
    parse_sse_event,
    split_events,
)

OPENAI_CHAT = (
    b'data: {"id":"chatcmpl-7","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-7","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"content":"Hello"},"finish_reason":null}]}\n\n'
    b'data: {"id":"chatcmpl-7","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"chatcmpl-7","object":"chat.completion.chunk","choices":[],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}\n\n'
    b"data: [DONE]\n\n"
)

ANTHROPIC_MESSAGES = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant",'
    b'"content":[],"usage":{"input_tokens":12,"output_tokens":1}}}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Bonjour"}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":0}\n\n'
    b"event: message_delta\n"
    b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}\n\n'
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n\n'
)

GEMINI_SSE_CRLF = (
    b'data: {"candidates": [{"content": {"parts": [{"text": "Line one\\n"}],"role": "model"},'
    b'"index": 0}],"usageMetadata": {"promptTokenCount": 4,"totalTokenCount": 6}}\r\n\r\n'
    b'data: {"candidates": [{"content": {"parts": [{"text": "line two"}],"role": "model"},'
    b'"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 4,'
    b'"totalTokenCount": 9}}\r\n\r\n'
)

GEMINI_JSON_ARRAY = (
    b'[{"candidates": [{"content": {"parts": [{"text": "a {brace} and a \\"quote\\""}]}}]}\n'
    b',\r\n{"candidates": [{"content": {"parts": [{"text": "b ]["}]},"finishReason": "STOP"}]}\n'
    b"]"
)

OLLAMA_NDJSON = (
    b'{"model":"llama3.2","created_at":"2026-01-05T10:00:00.1Z","message":{"role":"assistant",'
    b'"content":"Hi"},"done":false}\n'
    b'{"model":"llama3.2","created_at":"2026-01-05T10:00:00.2Z","message":{"role":"assistant",'
    b'"content":" there"},"done":false}\n'
    b'{"model":"llama3.2","created_at":"2026-01-05T10:00:00.3Z","message":{"role":"assistant",'
    b'"content":""},"done":true,"done_reason":"stop","eval_count":2}\n'
)

OPENROUTER_WITH_COMMENTS = (
    b": OPENROUTER PROCESSING\n\n"
    b": OPENROUTER PROCESSING\n\n"
    b'data: {"id":"gen-1","choices":[{"index":0,"delta":{"content":"ok"}}]}\n\n'
    b"data: [DONE]\n\n"
)


def eventstream_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS eventstream message: prelude, prelude CRC, string headers, payload, message CRC."""
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def bedrock_chunk(text: str) -> bytes:
    payload = json.dumps({"bytes": text, "p": "abcd"}).encode()
    return eventstream_frame({":event-type": "chunk", ":message-type": "event"}, payload)


BEDROCK_FRAMES = [bedrock_chunk("first"), bedrock_chunk("second, longer"), bedrock_chunk("3")]


# --- detection -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "url", "expected"),
    [
        pytest.param("text/event-stream; charset=utf-8", OPENAI_CHAT, None, Framing.SSE, id="sse-header"),
        pytest.param("Text/Event-Stream", b"", None, Framing.SSE, id="sse-header-any-case"),
        pytest.param("application/x-ndjson", OLLAMA_NDJSON, None, Framing.NDJSON, id="ndjson-header"),
        pytest.param("application/jsonl", b"{}\n", None, Framing.NDJSON, id="jsonl-header"),
        pytest.param(
            "application/vnd.amazon.eventstream",
            b"".join(BEDROCK_FRAMES),
            None,
            Framing.EVENTSTREAM,
            id="bedrock",
        ),
        pytest.param(
            "application/json; charset=UTF-8",
            GEMINI_JSON_ARRAY,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            Framing.JSON_ARRAY,
            id="gemini-array-by-url",
        ),
        pytest.param(
            "application/json",
            GEMINI_JSON_ARRAY,
            "https://example.test/v1beta/models/m:streamGenerateContent?alt=sse",
            Framing.NONE,
            id="gemini-alt-sse-url-is-not-an-array",
        ),
        pytest.param("application/json", GEMINI_JSON_ARRAY, None, Framing.NONE, id="json-array-without-url"),
        pytest.param("application/json", b'{"id": "chatcmpl-1"}', None, Framing.NONE, id="plain-json"),
        pytest.param(
            "application/json", b'{"a":1}\n{"b":2}\n', None, Framing.NDJSON, id="json-lines-sniffed"
        ),
        pytest.param(None, OPENAI_CHAT, None, Framing.SSE, id="sniff-sse"),
        pytest.param(None, ANTHROPIC_MESSAGES, None, Framing.SSE, id="sniff-event-line"),
        pytest.param(None, OPENROUTER_WITH_COMMENTS, None, Framing.SSE, id="sniff-comment-first"),
        pytest.param(None, b"\xef\xbb\xbfdata: x\n\n", None, Framing.SSE, id="sniff-after-bom"),
        pytest.param(None, b"\r\n\r\nid: 1\n\n", None, Framing.SSE, id="sniff-after-blank-lines"),
        pytest.param("text/plain", b"retry: 100\n\n", None, Framing.SSE, id="sniff-text-plain"),
        pytest.param(None, OLLAMA_NDJSON, None, Framing.NDJSON, id="sniff-ndjson"),
        pytest.param(None, b"".join(BEDROCK_FRAMES), None, Framing.EVENTSTREAM, id="sniff-eventstream"),
        pytest.param(
            "application/octet-stream", b"".join(BEDROCK_FRAMES), None, Framing.NONE, id="typed-binary"
        ),
        pytest.param(
            "text/html", b"data: looks like sse\n\n", None, Framing.NONE, id="html-is-never-sniffed"
        ),
        pytest.param(None, b"", None, Framing.NONE, id="empty"),
        pytest.param(None, b"hello world", None, Framing.NONE, id="plain-text"),
        pytest.param(None, b"{not json\n", None, Framing.NONE, id="one-brace-line"),
        pytest.param(None, b'{"a":1}\r{"b":2}\r', None, Framing.NDJSON, id="json-lines-cr"),
        pytest.param(None, b'  {"a":1}', None, Framing.NONE, id="one-json-line-indented"),
    ],
)
def test_detect_framing(content_type: str | None, body: bytes, url: str | None, expected: Framing) -> None:
    assert detect_framing(content_type, body, url=url) is expected


# --- provider streams ----------------------------------------------------------------------------


def test_openai_chat_stream_splits_into_its_data_events() -> None:
    events = split_events(OPENAI_CHAT, Framing.SSE)
    assert len(events) == 5
    assert all(event.endswith(b"\n\n") for event in events)
    parsed = [parse_sse_event(event.decode()) for event in events]
    assert [p.event for p in parsed] == [None] * 5
    assert parsed[-1].data == "[DONE]"
    # The usage chunk has no choices: it must still be its own event, not glued to [DONE].
    assert json.loads(parsed[3].data or "")["choices"] == []


def test_anthropic_stream_keeps_event_names_and_pings() -> None:
    parsed = [parse_sse_event(e.decode()) for e in split_events(ANTHROPIC_MESSAGES, Framing.SSE)]
    assert [p.event for p in parsed] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    for p in parsed:
        assert json.loads(p.data or "")["type"] == p.event


def test_gemini_crlf_stream_ends_events_at_crlf_blank_lines() -> None:
    events = split_events(GEMINI_SSE_CRLF, Framing.SSE)
    assert len(events) == 2
    assert all(event.endswith(b"}\r\n\r\n") for event in events)
    # The text "Line one\n" is an escape inside JSON, not a line break of the stream.
    first = json.loads(parse_sse_event(events[0].decode()).data or "")
    assert first["candidates"][0]["content"]["parts"][0]["text"] == "Line one\n"


def test_openrouter_comments_are_events_of_their_own() -> None:
    parsed = [parse_sse_event(e.decode()) for e in split_events(OPENROUTER_WITH_COMMENTS, Framing.SSE)]
    assert [p.comments for p in parsed] == [("OPENROUTER PROCESSING",), ("OPENROUTER PROCESSING",), (), ()]
    assert [p.data for p in parsed] == [None, None, parsed[2].data, "[DONE]"]


def test_ollama_ndjson_is_one_event_per_line() -> None:
    events = split_events(OLLAMA_NDJSON, Framing.NDJSON)
    assert [json.loads(e)["done"] for e in events] == [False, False, True]
    assert all(e.endswith(b"}\n") for e in events)


def test_gemini_json_array_separators_travel_with_the_next_element() -> None:
    events = split_events(GEMINI_JSON_ARRAY, Framing.JSON_ARRAY)
    assert len(events) == 3
    assert events[0].startswith(b"[{") and events[0].endswith(b"}")
    assert events[1].startswith(b"\n,\r\n{") and events[1].endswith(b"}")
    assert events[2] == b"\n]"
    # Each element parses on its own once its separator is stripped.
    assert (
        json.loads(events[0][1:])["candidates"][0]["content"]["parts"][0]["text"] == 'a {brace} and a "quote"'
    )
    assert json.loads(events[1].lstrip(b"\n,\r"))["candidates"][0]["finishReason"] == "STOP"


def test_bedrock_eventstream_is_cut_at_frame_lengths() -> None:
    body = b"".join(BEDROCK_FRAMES)
    assert split_events(body, Framing.EVENTSTREAM) == BEDROCK_FRAMES


def test_bedrock_truncated_frame_is_a_last_partial_event() -> None:
    body = b"".join(BEDROCK_FRAMES)[:-5]
    events = split_events(body, Framing.EVENTSTREAM)
    assert events[:2] == BEDROCK_FRAMES[:2]
    assert events[2] == BEDROCK_FRAMES[2][:-5]


# --- SSE line endings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"data: a\n\ndata: b\n\n", [b"data: a\n\n", b"data: b\n\n"], id="lf"),
        pytest.param(b"data: a\r\n\r\ndata: b\r\n\r\n", [b"data: a\r\n\r\n", b"data: b\r\n\r\n"], id="crlf"),
        pytest.param(b"data: a\r\rdata: b\r\r", [b"data: a\r\r", b"data: b\r\r"], id="cr"),
        pytest.param(
            b"data: a\r\ndata: b\r\n\r\n", [b"data: a\r\ndata: b\r\n\r\n"], id="crlf-is-one-line-end"
        ),
        pytest.param(b"data: a\r\n\rdata: b", [b"data: a\r\n\r", b"data: b"], id="crlf-then-cr"),
        pytest.param(b"data: a\n\r\ndata: b", [b"data: a\n\r\n", b"data: b"], id="lf-then-crlf"),
        pytest.param(b"data: a\r\r\ndata: b", [b"data: a\r\r\n", b"data: b"], id="cr-then-crlf"),
        pytest.param(
            b"data: a\n\n\n\ndata: b\n\n", [b"data: a\n\n\n\n", b"data: b\n\n"], id="extra-blank-lines"
        ),
        pytest.param(b"data: a\n\ndata: par", [b"data: a\n\n", b"data: par"], id="partial-last-event"),
        pytest.param(b"data: a\r\n", [b"data: a\r\n"], id="no-blank-line-yet"),
        pytest.param(b"data: a\r", [b"data: a\r"], id="cut-inside-crlf"),
        pytest.param(b"", [], id="empty"),
    ],
)
def test_sse_event_ends(body: bytes, expected: list[bytes]) -> None:
    assert split_events(body, Framing.SSE) == expected


@pytest.mark.parametrize("framing", list(Framing))
def test_no_events_in_an_empty_body(framing: Framing) -> None:
    assert event_ends(b"", framing) == []


def test_framing_none_is_one_event() -> None:
    assert split_events(b"data: a\n\ndata: b\n\n", Framing.NONE) == [b"data: a\n\ndata: b\n\n"]


# --- decoding one SSE event ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        pytest.param("data: hi\n\n", SSEEvent(data="hi"), id="data"),
        pytest.param("data:hi", SSEEvent(data="hi"), id="no-space"),
        pytest.param("data:  two spaces", SSEEvent(data=" two spaces"), id="only-one-space-removed"),
        pytest.param("data: a\ndata: b\n", SSEEvent(data="a\nb"), id="multi-line-data"),
        pytest.param("data: a\r\ndata: b\rdata: c", SSEEvent(data="a\nb\nc"), id="mixed-line-ends"),
        pytest.param("data\n", SSEEvent(data=""), id="field-without-colon"),
        pytest.param(
            "event: delta\nid: 42\nretry: 1500\ndata: {}\n",
            SSEEvent(event="delta", data="{}", id="42", retry=1500),
            id="all-fields",
        ),
        pytest.param("retry: soon\n", SSEEvent(), id="retry-not-a-number"),
        pytest.param("retry: \u00b2\n", SSEEvent(), id="retry-superscript-digit"),
        pytest.param(
            ": OPENROUTER PROCESSING\n\n", SSEEvent(comments=("OPENROUTER PROCESSING",)), id="comment"
        ),
        pytest.param("x-custom: 1\ndata: y\n", SSEEvent(data="y"), id="unknown-field-ignored"),
        pytest.param("\ufeffdata: first\n\n", SSEEvent(data="first"), id="bom-at-stream-start"),
        pytest.param("event: a\nevent: b\n", SSEEvent(event="b"), id="last-event-name-wins"),
        pytest.param("", SSEEvent(), id="empty"),
    ],
)
def test_parse_sse_event(block: str, expected: SSEEvent) -> None:
    assert parse_sse_event(block) == expected


# --- properties ----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300) | st.text('ab:{}[]"\\\r\n ,', max_size=200).map(str.encode))
def test_events_always_join_back_to_the_body(body: bytes) -> None:
    for framing in Framing:
        ends = event_ends(body, framing)
        assert b"".join(split_events(body, framing)) == body
        if body:
            assert ends[-1] == len(body)
            # Strictly increasing: no event is empty, none overlaps the next.
            assert all(a < b for a, b in zip([0, *ends], ends, strict=False))


_LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r"])
_VALUE = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20)
_FIELD_LINE = st.one_of(
    st.tuples(st.sampled_from(["data", "event", "id"]), _VALUE).map(lambda t: f"{t[0]}: {t[1]}"),
    _VALUE.map(lambda v: ":" + v),
)


def _terminate(lines: list[str], ends: list[str]) -> str:
    # A CR followed by an LF is one line end, whatever the writer meant: never generate that pair
    # across two terminators, or the expected boundaries would be wrong, not the splitter.
    text = ""
    previous = ""
    for line, end in zip(lines, ends, strict=True):
        if previous == "\r" and end.startswith("\n") and not line:
            end = "\r\n"
        text += line + end
        previous = end
    return text


@st.composite
def sse_events(draw: st.DrawFn) -> str:
    lines = draw(st.lists(_FIELD_LINE, min_size=1, max_size=4))
    blanks = draw(st.integers(min_value=1, max_value=3))
    ends = draw(st.lists(_LINE_ENDS, min_size=len(lines) + blanks, max_size=len(lines) + blanks))
    return _terminate(lines + [""] * blanks, ends)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(sse_events(), min_size=1, max_size=6),
    tail=st.sampled_from(["", "data: partial", "event: x\r\n"]),
    bom=st.booleans(),
)
def test_generated_sse_events_split_exactly_at_their_ends(events: list[str], tail: str, bom: bool) -> None:
    if bom:
        events = ["\ufeff" + events[0], *events[1:]]
    body = ("".join(events) + tail).encode()
    expected = [e.encode() for e in events] + ([tail.encode()] if tail else [])
    assert split_events(body, Framing.SSE) == expected
    for text in events:
        lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
        data = [line[len("data: ") :] for line in lines if line.startswith("data: ")]
        assert parse_sse_event(text).data == ("\n".join(data) if data else None)


# Text with braces, brackets, quotes and backslashes: what could fool a naive depth counter.
_JSON_TEXT = st.text(st.sampled_from('ab{}[]"\\,:\n') | st.characters(codec="utf-8"), max_size=12)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | _JSON_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_JSON_TEXT, inner, max_size=3),
    max_leaves=4,
)
_JSON_OBJECTS = st.dictionaries(_JSON_TEXT, _JSON_VALUES, max_size=3)


@settings(max_examples=200, deadline=None)
@given(objects=st.lists(_JSON_OBJECTS, min_size=1, max_size=4))
def test_generated_ndjson_splits_per_object(objects: list[dict[str, object]]) -> None:
    lines = [json.dumps(o, ensure_ascii=False).encode() + b"\n" for o in objects]
    assert split_events(b"".join(lines), Framing.NDJSON) == lines


@settings(max_examples=200, deadline=None)
@given(
    objects=st.lists(_JSON_OBJECTS, min_size=1, max_size=4),
    separator=st.sampled_from([",", ",\r\n", "\n,\r\n", ", "]),
    ascii_only=st.booleans(),
)
def test_generated_json_array_splits_per_element(
    objects: list[dict[str, object]], separator: str, ascii_only: bool
) -> None:
    elements = [json.dumps(o, ensure_ascii=ascii_only) for o in objects]
    body = ("[" + separator.join(elements) + "\n]").encode()
    expected = ["[" + elements[0]] + [separator + e for e in elements[1:]] + ["\n]"]
    assert split_events(body, Framing.JSON_ARRAY) == [e.encode() for e in expected]


@settings(max_examples=200, deadline=None)
@given(payloads=st.lists(st.binary(max_size=40), min_size=1, max_size=5), cut=st.integers(0, 30))
def test_generated_eventstream_splits_per_frame(payloads: list[bytes], cut: int) -> None:
    frames = [eventstream_frame({":event-type": "chunk"}, p) for p in payloads]
    body = b"".join(frames)
    assert split_events(body, Framing.EVENTSTREAM) == frames
    # A stream cut mid-frame keeps its whole frames and ends with what arrived of the next.
    cut_body = body[: max(len(body) - cut, 0)]
    assert b"".join(split_events(cut_body, Framing.EVENTSTREAM)) == cut_body
