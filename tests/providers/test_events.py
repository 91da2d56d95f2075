"""
The decoder of recorded bodies: every framing read back into named, parsed events, damaged
bodies included, and every stream of the real corpus read the way the tests' own decoders
(``tests.corpus``, written apart from the library) read it.
"""

from __future__ import annotations

import base64
import gzip
import json
import struct
from typing import Any

import pytest
from hypothesis import given, strategies as st

from llmcassette._framing import Framing
from llmcassette._storage import load_cassette
from llmcassette.providers._events import (
    DONE,
    NOT_JSON,
    Event,
    decode_body,
    decode_events,
    decode_frame,
    parse_json,
)
from llmcassette.providers.bedrock import encode_frame
from tests import corpus


def _frame(event_type: str, payload: Any, *, exception: bool = False) -> bytes:
    kind = "exception" if exception else "event"
    header = ":exception-type" if exception else ":event-type"
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return encode_frame({header: event_type, ":message-type": kind}, data)


def _chunk(carried: bytes | str) -> bytes:
    text = carried if isinstance(carried, str) else base64.b64encode(carried).decode()
    return _frame("chunk", {"bytes": text})


# == SSE ==========================================================================================


def test_sse_events_are_named_by_their_field_then_their_json() -> None:
    body = (
        b": OPENROUTER PROCESSING\n\n"
        b'event: message_start\ndata: {"type":"message_start"}\n\n'
        b'event: error\r\ndata: {"error":{"message":"x"}}\r\n\r\n'
        b'data: {"type":"response.created","object":"response"}\n\n'
        b'data: {"object":"chat.completion.chunk"}\n\n'
        b'data: {"candidates":[]}\n\n'
        b"data: [1, 2]\n\n"
        b"data: not json\n\n"
        b"data:  [DONE] \n\n"
    )
    assert decode_events(body, Framing.SSE) == [
        Event("message_start", {"type": "message_start"}, "message_start"),
        Event("error", {"error": {"message": "x"}}, "error"),
        Event("response.created", {"type": "response.created", "object": "response"}),
        Event("chat.completion.chunk", {"object": "chat.completion.chunk"}),
        Event("(untyped)", {"candidates": []}),
        Event("(untyped)", [1, 2]),
        Event("(untyped)", NOT_JSON),
        Event("[DONE]", DONE),
    ]


def test_sse_events_without_data_are_not_events() -> None:
    # A browser dispatches nothing for a block without data: a named one is no event either.
    body = b"event: ping\n\n: keep-alive\n\nid: 7\n\ndata: {}\n\n\n\n"
    assert decode_events(body, Framing.SSE) == [Event("(untyped)", {})]


def test_sse_data_lines_join_and_a_cut_tail_still_counts() -> None:
    body = b'data: {"a":\ndata: 1}\n\ndata: {"b": 2'
    assert [event.value for event in decode_events(body, Framing.SSE)] == [{"a": 1}, NOT_JSON]


# == NDJSON, JSON array, a plain body =============================================================


def test_ndjson_lines_each_an_event() -> None:
    body = b'{"message":{"content":"a"},"done":false}\r\n\n  \n{"done":true}\nnot json\n{"cut": '
    assert [event.value for event in decode_events(body, Framing.NDJSON)] == [
        {"message": {"content": "a"}, "done": False},
        {"done": True},
        NOT_JSON,
        NOT_JSON,
    ]


def test_json_array_elements_whole_and_cut_short() -> None:
    body = b'[{"candidates":[]}\n,\r\n{"text":"]},["}\n,\r\n{"type":"x"}\n]'
    events = decode_events(body, Framing.JSON_ARRAY)
    assert events == [
        Event("(untyped)", {"candidates": []}),
        Event("(untyped)", {"text": "]},["}),
        Event("x", {"type": "x"}),
    ]
    # Cut inside the third element: the two that arrived whole still read, the third does not.
    cut = body[: body.index(b'"type"')]
    assert [event.value for event in decode_events(cut, Framing.JSON_ARRAY)] == [
        {"candidates": []},
        {"text": "]},["},
        NOT_JSON,
    ]
    assert decode_events(b"[]", Framing.JSON_ARRAY) == []


@pytest.mark.parametrize(
    ("body", "values"),
    [
        pytest.param(b'{"id": 1}', [{"id": 1}], id="object"),
        pytest.param(b'  [{"a": 1}, 2]\n', [{"a": 1}, 2], id="array-is-its-elements"),
        pytest.param(b"<html>\n</html>", [NOT_JSON], id="not-json"),
        pytest.param(b" \r\n", [], id="blank"),
    ],
)
def test_a_plain_body(body: bytes, values: list[Any]) -> None:
    assert [event.value for event in decode_events(body, Framing.NONE)] == values


# == AWS eventstream ==============================================================================


def test_eventstream_frames_are_named_by_their_headers() -> None:
    body = (
        _frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})
        + _frame("metadata", b"")
        + _frame("throttlingException", {"message": "Too many requests"}, exception=True)
        + _frame("messageStop", b"not json")
    )
    assert decode_events(body, Framing.EVENTSTREAM) == [
        Event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}, "contentBlockDelta"),
        Event("metadata", {}, "metadata"),
        Event("throttlingException", {"message": "Too many requests"}, "throttlingException", True),
        Event("messageStop", NOT_JSON, "messageStop"),
    ]


def test_chunk_frames_are_the_events_they_carry() -> None:
    body = (
        _chunk(b'{"type":"message_start","message":{}}')
        + _chunk(b'{"outputText":"Hi"}')
        + _chunk("not base64!")
        + _chunk(b"not json")
        + _frame("chunk", {"no": "bytes"})
    )
    assert decode_events(body, Framing.EVENTSTREAM) == [
        Event("chunk/message_start", {"type": "message_start", "message": {}}, "chunk"),
        Event("chunk", {"outputText": "Hi"}, "chunk"),
        Event("chunk", NOT_JSON, "chunk"),
        Event("chunk", NOT_JSON, "chunk"),
        Event("chunk", {"no": "bytes"}, "chunk"),
    ]


def test_a_cut_or_damaged_frame_is_not_json() -> None:
    whole = _frame("messageStart", {"role": "assistant"})
    events = decode_events(whole + whole[:-3], Framing.EVENTSTREAM)
    assert [(event.type, event.value) for event in events] == [
        ("messageStart", {"role": "assistant"}),
        ("(cut frame)", NOT_JSON),
    ]
    # Headers that claim a name longer than the frame: read as damaged, never an IndexError.
    damaged = struct.pack(">II", 20, 1) + b"\0\0\0\0" + bytes([200]) + b"abc" + b"\0\0\0\0"
    assert decode_frame(damaged) is None
    assert decode_events(damaged, Framing.EVENTSTREAM) == [Event("(cut frame)", NOT_JSON)]


# == parsing and content encoding =================================================================


def test_parse_json_never_raises() -> None:
    assert parse_json(b'{"a": [1]}') == {"a": [1]}
    assert parse_json("null") is None
    assert parse_json(None) is NOT_JSON
    assert parse_json(b"\xff\xfe{") is NOT_JSON
    assert parse_json("[" * 100_000 + "]" * 100_000) is NOT_JSON  # deeper than the parser goes


def test_gzip_bodies_are_read_decoded() -> None:
    body = b'data: {"a": 1}\n\n'
    assert decode_body(gzip.compress(body)) == body
    assert decode_body(b"\x1f\x8b broken") == b"\x1f\x8b broken"
    assert decode_body(body) is body


@given(st.binary(max_size=200), st.sampled_from(list(Framing)))
def test_any_bytes_decode_into_named_events(body: bytes, framing: Framing) -> None:
    for event in decode_events(body, framing):
        assert event.type
        if event.value is not NOT_JSON and event.value is not DONE:
            json.dumps(event.value)  # a parsed value, nothing else


# == the real corpus ==============================================================================


def _reference(ctype: str, body: bytes) -> list[tuple[str | None, Any]] | None:
    """(name, payload) of each event, by the tests' own decoders; None for a plain body."""
    if "text/event-stream" in ctype:
        data = [(m.event, m.data) for m in corpus.sse_messages(body) if m.data is not None]
        return [(name, DONE if text.strip() == "[DONE]" else json.loads(text)) for name, text in data]
    if "ndjson" in ctype:
        return [(None, json.loads(line)) for line in corpus.ndjson_lines(body) if line.strip()]
    if "eventstream" in ctype:
        out = []
        for frame in corpus.eventstream_frames(body):
            payload = json.loads(frame.payload)
            if frame.headers[":event-type"] == "chunk":
                payload = json.loads(base64.b64decode(payload["bytes"]))
            out.append((frame.headers[":event-type"], payload))
        return out
    if body.lstrip()[:1] == b"[":
        return [(None, element) for element in json.loads(body)]  # Gemini's array, parsed whole
    return None


@pytest.mark.parametrize("rel", corpus.params())
def test_every_corpus_stream_decodes_as_the_reference_reads_it(rel: str) -> None:
    for number, interaction in enumerate(load_cassette(corpus.corpus_path(rel)).interactions):
        response = interaction.response
        ctype = (corpus.header(response.headers, "content-type") or "").lower()
        body = corpus.decoded(response.headers, response.content)
        expected = _reference(ctype, body)
        if expected is None or response.status.code >= 400:
            continue
        framing = {"event-stream": Framing.SSE, "ndjson": Framing.NDJSON, "eventstream": Framing.EVENTSTREAM}
        chosen = next((f for key, f in framing.items() if key in ctype), Framing.JSON_ARRAY)
        events = decode_events(decode_body(response.content), chosen)
        assert [(event.name, event.value) for event in events] == expected, f"{rel} interaction {number}"
        for event in events:
            if event.name == "chunk":  # a chunk is named by the type of the event it carries, if any
                assert event.type == ("chunk/" + event.value["type"] if "type" in event.value else "chunk")
