"""The Anthropic Messages profile, on data written here."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, strategies as st

from llmcassette._exchange import RequestInfo
from llmcassette._framing import Framing, parse_sse_event, split_events
from llmcassette.providers import ToolCall, detect_profile, get_profile

ANTHROPIC = get_profile("anthropic")


def _event(kind: str, **fields: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


def _start(input_tokens: int = 10) -> bytes:
    message = {
        "id": "msg_1",
        "role": "assistant",
        "content": [],
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }
    return _event("message_start", message=message)


@pytest.mark.parametrize(
    ("url", "headers", "body", "streaming"),
    [
        ("https://api.anthropic.com/v1/messages", {}, {"stream": True}, True),
        ("https://api.anthropic.com/v1/messages?beta=true", {}, {"stream": False}, False),
        ("https://api.anthropic.com/v1/messages/count_tokens", {}, {}, False),
        ("http://127.0.0.1:4000/v1/messages", {}, {"stream": True}, True),  # a proxy
        ("http://127.0.0.1:4000/custom", {"anthropic-version": "2023-06-01"}, {}, False),
        (
            "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude:streamRawPredict",
            {},
            {},
            True,
        ),
    ],
)
def test_detection(url: str, headers: dict[str, str], body: Any, streaming: bool) -> None:
    request = RequestInfo("POST", url, headers, json.dumps(body).encode())
    profile = detect_profile(request)
    assert (profile.name, profile.is_streaming(request)) == ("anthropic", streaming)


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        ("rate_limit", 429, "rate_limit_error"),
        ("unauthorized", 401, "authentication_error"),
        ("forbidden", 403, "permission_error"),
        ("not_found", 404, "not_found_error"),
        ("bad_request", 400, "invalid_request_error"),
        ("server_error", 500, "api_error"),
        ("bad_gateway", 502, "api_error"),
        ("unavailable", 503, "api_error"),
        ("overloaded", 529, "overloaded_error"),
    ],
)
def test_error_bodies(kind: str, status: int, error_type: str) -> None:
    response = ANTHROPIC.error(kind)
    body = json.loads(response.body)
    assert response.status == status
    assert body["type"] == "error" and body["error"]["type"] == error_type
    assert body["request_id"].startswith("req_011C") and response.header("request-id") == body["request_id"]


def test_rate_limit_headers_reset_in_rfc3339_from_the_clock() -> None:
    headers = dict(ANTHROPIC.error("rate_limit", now_s=1_800_000_000).headers)
    families = ("requests", "tokens", "input-tokens", "output-tokens")
    assert {
        f"anthropic-ratelimit-{f}-{part}" for f in families for part in ("limit", "remaining", "reset")
    } <= set(headers)
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert headers["anthropic-ratelimit-tokens-reset"] == "2027-01-15T08:01:00Z"
    fixed = dict(ANTHROPIC.rate_limit_headers())  # no clock: a fixed instant, same bytes every run
    assert fixed == dict(ANTHROPIC.rate_limit_headers())


def test_error_event_and_empty_stream() -> None:
    event = parse_sse_event(ANTHROPIC.error_event(kind="overloaded").decode())
    assert event.event == "error"
    assert json.loads(event.data or "") == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    events = [parse_sse_event(e.decode()) for e in split_events(ANTHROPIC.empty_stream(), Framing.SSE)]
    assert [e.event for e in events] == ["message_start", "message_delta", "message_stop"]
    assert all(json.loads(e.data or "")["type"] == e.event for e in events)
    assert ANTHROPIC.is_terminator(split_events(ANTHROPIC.empty_stream(), Framing.SSE)[-1])


def test_stream_with_thinking_text_tools_and_server_tools() -> None:
    body = b"".join(
        [
            _start(),
            _event(
                "content_block_start",
                index=0,
                content_block={"type": "thinking", "thinking": "", "signature": ""},
            ),
            _event(
                "content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "Let me see."}
            ),
            _event("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "sig"}),
            _event("ping"),
            _event("content_block_start", index=1, content_block={"type": "text", "text": ""}),
            _event("content_block_delta", index=1, delta={"type": "text_delta", "text": "Checking"}),
            _event(
                "content_block_start",
                index=2,
                content_block={"type": "server_tool_use", "id": "srv", "name": "bash", "input": {}},
            ),
            _event(
                "content_block_delta",
                index=2,
                delta={"type": "input_json_delta", "partial_json": '{"cmd":"ls"}'},
            ),
            _event(
                "content_block_start",
                index=3,
                content_block={"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}},
            ),
            _event("content_block_delta", index=3, delta={"type": "input_json_delta", "partial_json": ""}),
            _event(
                "content_block_delta",
                index=3,
                delta={"type": "input_json_delta", "partial_json": '{"city": '},
            ),
            _event(
                "content_block_delta", index=3, delta={"type": "input_json_delta", "partial_json": '"Oslo"}'}
            ),
            _event(
                "content_block_start",
                index=4,
                content_block={"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
            ),
            _event("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 42}),
            _event("message_stop"),
        ]
    )
    summary = ANTHROPIC.summarize(body, streaming=True)
    assert (summary.text, summary.reasoning, summary.finish_reason) == ("Checking", "Let me see.", "tool_use")
    assert summary.tool_calls == [
        ToolCall("weather", '{"city": "Oslo"}', "toolu_1"),
        ToolCall("now", "{}", "toolu_2"),
    ]
    assert summary.usage == {"input_tokens": 10, "output_tokens": 42}
    assert summary.events == 16


def test_stream_error_event_and_truncation() -> None:
    body = _start() + _event("content_block_start", index=0, content_block={"type": "text", "text": ""})
    body += _event("content_block_delta", index=0, delta={"type": "text_delta", "text": "Half"})
    summary = ANTHROPIC.summarize(body + ANTHROPIC.error_event(kind="overloaded"), streaming=True)
    assert (summary.text, summary.error, summary.finish_reason) == ("Half", "Overloaded", None)


def test_json_message() -> None:
    value = {
        "type": "message",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "Sure."},
            {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"a": [1, 2]}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "output_tokens": 4, "cache_creation": {"ephemeral_5m_input_tokens": 0}},
    }
    summary = ANTHROPIC.summarize(json.dumps(value).encode(), streaming=False)
    assert (summary.text, summary.reasoning, summary.finish_reason) == ("Sure.", "hmm", "tool_use")
    assert summary.tool_calls == [ToolCall("f", '{"a":[1,2]}', "toolu_9")]
    assert summary.usage == {
        "input_tokens": 3,
        "output_tokens": 4,
        "cache_creation.ephemeral_5m_input_tokens": 0,
    }


@given(st.lists(st.text(max_size=10), max_size=15))
def test_tool_input_fragments_reassemble(fragments: list[str]) -> None:
    body = _start() + _event(
        "content_block_start",
        index=0,
        content_block={"type": "tool_use", "id": "t", "name": "f", "input": {}},
    )
    body += b"".join(
        _event("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": f})
        for f in fragments
    )
    arguments = ANTHROPIC.summarize(body, streaming=True).tool_calls[0].arguments
    assert arguments == ("".join(fragments) or "{}")
