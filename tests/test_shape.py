"""Structural shapes of recorded interactions: key paths and types, event types, header names."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from hypothesis import given, settings

from llmcassette._demo import CASSETTE
from llmcassette._models import CassetteDocument
from llmcassette._shape import (
    MAX_DEPTH,
    InteractionShape,
    document_shapes,
    interaction_shape,
    json_fields,
    normalise_path,
    type_union,
)
from llmcassette._shape_diff import diff_shapes
from llmcassette._storage import load_cassette
from llmcassette.providers.bedrock import encode_frame
from tests import corpus
from tests.arbitrary import BODIES, CONTENT_TYPES, STATUSES, URLS, one_interaction


@pytest.mark.parametrize(
    ("url", "path"),
    [
        pytest.param("https://api.openai.com/v1/chat/completions", "/v1/chat/completions", id="plain"),
        pytest.param("http://127.0.0.1:11434/api/chat", "/api/chat", id="ollama"),
        pytest.param(
            "https://api.openai.com/v1/responses/resp_0850765c843cca5300699cc47d93c0819089?stream=true",
            "/v1/responses/{id}",
            id="response-id",
        ),
        pytest.param(
            "https://api.anthropic.com/v1/messages/batches/123e4567-e89b-12d3-a456-426614174000",
            "/v1/messages/batches/{id}",
            id="uuid",
        ),
        pytest.param(
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            "/v1beta/models/{name}:streamGenerateContent",
            id="gemini-model-keeps-method",
        ),
        pytest.param(
            "https://aiplatform.googleapis.com/v1beta1/projects/p-1/locations/global/publishers/google/models/g:x",
            "/v1beta1/projects/{name}/locations/{name}/publishers/google/models/{name}:x",
            id="vertex",
        ),
        pytest.param(
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-micro-v1%3A0/converse-stream",
            "/model/{name}/converse-stream",
            id="bedrock",
        ),
        pytest.param(
            "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-02-01",
            "/openai/deployments/{name}/chat/completions",
            id="azure",
        ),
        pytest.param("*", "*", id="wildcard"),
    ],
)
def test_normalise_path(url: str, path: str) -> None:
    assert normalise_path(url) == path


def test_json_fields_keep_types_not_values() -> None:
    value = {
        "id": "chatcmpl-1",
        "created": 17,
        "choices": [
            {"delta": {"content": "Hi"}, "logprob": -0.5, "finish_reason": None},
            {"delta": {"content": None}, "logprob": 0, "finish_reason": "stop", "extra": [True]},
        ],
        "usage": {},
    }
    fields = {path: type_union(frozenset(types)) for path, types in json_fields(value).items()}
    assert fields == {
        "": "object",
        "id": "str",
        "created": "number",
        "choices": "array",
        "choices[]": "object",
        "choices[].delta": "object",
        "choices[].delta.content": "null|str",
        "choices[].logprob": "number",  # an int and a float are both numbers
        "choices[].finish_reason": "null|str",
        "choices[].extra": "array",
        "choices[].extra[]": "bool",
        "usage": "object",
    }


def test_content_objects_are_not_looked_into() -> None:
    value = {
        "content": [{"type": "tool_use", "input": {"city": "Paris"}}],
        "input": [{"role": "user"}],  # the Responses API's input list is structure
        "tools": [{"parameters": {"properties": {"q": {"type": "string"}}}}],
    }
    paths = set(json_fields(value))
    assert "content[].input" in paths and "content[].input.city" not in paths
    assert "input[].role" in paths
    assert "tools[].parameters" in paths and not any(p.startswith("tools[].parameters.") for p in paths)


def _document(
    response: dict[str, Any], uri: str = "https://api.openai.com/v1/chat/completions"
) -> CassetteDocument:
    return CassetteDocument.model_validate(
        {"interactions": [{"request": {"method": "post", "uri": uri, "body": None}, "response": response}]}
    )


def _stream_shape(
    body: bytes, content_type: str, uri: str = "https://api.openai.com/v1/chat/completions"
) -> InteractionShape:
    response = {
        "status": {"code": 200},
        "headers": {"content-type": [content_type]},
        "body": {"string": body},
    }
    (shape,) = document_shapes(_document(response, uri), path="s.yaml")
    return shape


def test_sse_events_are_named_and_keep_alives_left_out() -> None:
    body = (
        b": keep-alive\n\n"
        b"event: ping\n\n"  # no data: a client sees no event, so neither does the shape
        b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n'
        b'data: {"object":"chat.completion.chunk"}\n\n'
        b'data: {"candidates":[]}\n\n'
        b"data: not json\n\n"
        b"data: [DONE]\n\n"
    )
    shape = _stream_shape(body, "text/event-stream")
    assert shape.event_types == ("message_start", "chat.completion.chunk", "(untyped)", "[DONE]")
    assert shape.last_event == "[DONE]"
    assert shape.event_fields["(untyped)"] == {"": {"object", "text"}, "candidates": {"array"}}
    assert "[DONE]" not in shape.event_fields


def test_ndjson_and_json_array_events() -> None:
    ndjson = b'{"message":{"content":"a"},"done":false}\n{"done":true,"eval_count":3}\n'
    shape = _stream_shape(ndjson, "application/x-ndjson", "http://127.0.0.1:11434/api/chat")
    assert shape.event_types == ("(untyped)",)
    assert shape.event_fields["(untyped)"]["eval_count"] == {"number"}
    # A JSON array cut inside its second element: that element is not JSON, typed as text like
    # any other event that is not JSON.
    array = b'[{"candidates":[]}\n,\r\n{"candidates":[],"usa'
    uri = "https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent"
    shape = _stream_shape(array, "application/json", uri)
    assert shape.framing == "json-array"
    assert shape.event_fields["(untyped)"][""] == {"object", "text"}


def test_eventstream_frames_are_named_by_their_event_type() -> None:
    inner = base64.b64encode(json.dumps({"type": "message_start", "message": {}}).encode()).decode()
    body = (
        encode_frame({":event-type": "messageStart", ":message-type": "event"}, b'{"role":"assistant"}')
        + encode_frame(
            {":event-type": "chunk", ":message-type": "event"}, json.dumps({"bytes": inner}).encode()
        )
        + encode_frame(
            {":exception-type": "throttlingException", ":message-type": "exception"}, b'{"message":"x"}'
        )
    )
    shape = _stream_shape(body, "application/vnd.amazon.eventstream")
    assert shape.event_types == ("messageStart", "chunk/message_start", "throttlingException")
    assert set(shape.event_fields["chunk/message_start"]) == {"", "type", "message"}


def test_the_demo_stream_shape() -> None:
    first, second = document_shapes(load_cassette(CASSETTE), path=CASSETTE)
    assert first.key == ("POST", "/v1/chat/completions")
    assert (first.status, first.media_type, first.framing) == (200, "text/event-stream", "sse")
    assert first.event_types == ("chat.completion.chunk", "[DONE]")
    assert first.last_event == "[DONE]"
    chunk = first.event_fields["chat.completion.chunk"]
    assert chunk["choices[].delta.content"] == {"str"}
    assert chunk["choices[].finish_reason"] == {"null", "str"}
    assert chunk["usage"] == {"null", "object"}
    assert "[DONE]" not in first.event_fields
    # Transport headers depend on how the body travelled, not on the API.
    assert first.headers == {"server", "cache-control", "x-request-id", "content-type"}
    assert first.request_fields["stream_options.include_usage"] == {"bool"}
    assert first.body_fields == {}
    assert second.framing == "none" and second.event_types == ()
    assert second.body_fields["choices[].message.content"] == {"str"}


def test_gzip_bodies_are_read_decoded() -> None:
    body = gzip.compress(b'{"id": "x", "choices": []}')
    document = _document(
        {
            "status": {"code": 200},
            "headers": {"Content-Encoding": ["gzip"], "Content-Type": ["application/json"]},
            "body": {"string": body},
        }
    )
    (shape,) = document_shapes(document, path="g.yaml")
    assert shape.method == "POST"
    assert set(shape.body_fields) == {"", "id", "choices"}
    assert shape.headers == {"content-type"}


def test_a_text_body_and_a_cut_stream() -> None:
    text = _document({"status": {"code": 502}, "headers": {}, "body": {"string": "Bad gateway"}})
    (shape,) = document_shapes(text, path="t.yaml")
    assert shape.body_fields == {"": {"text"}}
    cut = _document(
        {
            "status": {"code": 200},
            "headers": {"content-type": ["text/event-stream"]},
            "body": {"string": 'data: {"object":"chat.completion.chunk"}\n\n'},
            "stream": {"end": "error", "error": {"type": "ReadError", "message": "reset"}},
        }
    )
    shape = interaction_shape(cut.interactions[0], index=0, path=CASSETTE)
    assert shape.stream_end == "error (ReadError)"
    assert shape.last_event == "chat.completion.chunk"


def test_ignored_headers_are_left_out() -> None:
    (shape,) = document_shapes(load_cassette(CASSETTE), path=CASSETTE, ignore_headers=frozenset({"server"}))[
        :1
    ]
    assert "server" not in shape.headers and "x-request-id" in shape.headers


@pytest.mark.parametrize("rel", corpus.params())
def test_every_corpus_stream_has_named_events(rel: str) -> None:
    path = corpus.corpus_path(rel)
    shapes = document_shapes(load_cassette(path), path=path)
    for shape in shapes:
        if shape.framing == "none":
            assert not shape.event_types
            continue
        assert shape.event_types, shape
        assert shape.last_event in shape.event_types
        # Every event type but the bare `[DONE]` marker has fields, at least its top level.
        assert set(shape.event_fields) == set(shape.event_types) - {"[DONE]"}


def test_deep_values_stop_at_the_depth_limit() -> None:
    value: Any = "leaf"
    for _ in range(MAX_DEPTH + 50):
        value = {"a": value}
    fields = json_fields(value)
    assert len(fields) == MAX_DEPTH + 1  # the root, then one path per level up to the limit
    assert max(fields, key=len).count(".") == MAX_DEPTH - 1


@settings(max_examples=200, deadline=None)
@given(BODIES, CONTENT_TYPES, URLS, STATUSES)
def test_any_body_has_a_shape_equal_to_itself(
    body: bytes, content_type: str | None, url: str, status: int | None
) -> None:
    shapes = document_shapes(one_interaction(body, content_type, url, status), path="any.yaml")
    assert not diff_shapes(shapes, shapes).changed
