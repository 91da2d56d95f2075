"""The Bedrock Runtime profile: eventstream frames, Converse and InvokeModel streams, AWS errors."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer

from llmcassette._exchange import RequestInfo
from llmcassette._framing import Framing, split_events
from llmcassette.providers import ToolCall, detect_profile, get_profile
from llmcassette.providers._events import decode_events, decode_frame
from llmcassette.providers.bedrock import encode_frame, exception_frame

BEDROCK = get_profile("bedrock")
HOST = "https://bedrock-runtime.eu-west-1.amazonaws.com"


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return encode_frame(
        {":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(payload).encode(),
    )


@pytest.mark.parametrize(
    ("path", "streaming"),
    [
        ("/model/anthropic.claude-3-sonnet%3A0/converse-stream", True),
        ("/model/amazon.nova-micro-v1%3A0/converse", False),
        ("/model/m/invoke-with-response-stream", True),
        ("/model/m/invoke", False),
    ],
)
def test_detection(path: str, streaming: bool) -> None:
    request = RequestInfo("POST", HOST + path)
    profile = detect_profile(request)
    assert (profile.name, profile.is_streaming(request), profile.framing) == (
        "bedrock",
        streaming,
        Framing.EVENTSTREAM,
    )


def test_frames_round_trip_with_valid_checksums() -> None:
    frame = encode_frame({":event-type": "chunk", "x": "é"}, b'{"a":1}')
    total, headers_length, prelude_crc = struct.unpack(">III", frame[:12])
    assert total == len(frame) and prelude_crc == zlib.crc32(frame[:8])
    assert struct.unpack(">I", frame[-4:])[0] == zlib.crc32(frame[:-4])
    assert decode_frame(frame) == ({":event-type": "chunk", "x": "é"}, b'{"a":1}')
    assert decode_frame(frame[:-1]) is None


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        ("rate_limit", 429, "ThrottlingException"),
        ("unauthorized", 403, "UnrecognizedClientException"),
        ("overloaded", 503, "ServiceUnavailableException"),
    ],
)
def test_errors(kind: str, status: int, error_type: str) -> None:
    response = BEDROCK.error(kind)
    assert response.status == status and set(json.loads(response.body)) == {"message"}
    assert (response.header("x-amzn-ErrorType") or "").startswith(error_type + ":")
    assert response.header("x-amzn-RequestId")


def test_converse_stream_summary_and_exception_frame() -> None:
    body = b"".join(
        [
            _event("messageStart", {"role": "assistant"}),
            _event(
                "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Hm"}}}
            ),
            _event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Sure"}}),
            _event(
                "contentBlockStart",
                {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tu_1", "name": "f"}}},
            ),
            _event("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"a":'}}}),
            _event("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": "1}"}}}),
            _event("messageStop", {"stopReason": "tool_use"}),
            _event(
                "metadata",
                {
                    "usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7},
                    "metrics": {"latencyMs": 9},
                },
            ),
        ]
    )
    summary = BEDROCK.summarize(body, streaming=True)
    assert (summary.text, summary.reasoning, summary.finish_reason, summary.events) == (
        "Sure",
        "Hm",
        "tool_use",
        8,
    )
    assert summary.tool_calls == [ToolCall("f", '{"a":1}', "tu_1")]
    assert summary.usage == {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}
    first_four = b"".join(split_events(body, Framing.EVENTSTREAM)[:4])
    failed = BEDROCK.summarize(first_four + BEDROCK.error_event(kind="rate_limit"), streaming=True)
    assert failed.error == "Too many requests, please wait before trying again."


def test_invoke_stream_carries_anthropic_events() -> None:
    invoke = detect_profile(RequestInfo("POST", HOST + "/model/m/invoke-with-response-stream"))
    empty = invoke.summarize(invoke.empty_stream(), streaming=True)
    assert (empty.text, empty.finish_reason, empty.events) == ("", "end_turn", 3)
    events = decode_events(invoke.empty_stream(), Framing.EVENTSTREAM)
    assert [event.type for event in events] == [
        "chunk/message_start",
        "chunk/message_delta",
        "chunk/message_stop",
    ]


def test_converse_json() -> None:
    value = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [{"text": "Hi"}, {"toolUse": {"toolUseId": "t", "name": "g", "input": {"b": 2}}}],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3},
    }
    summary = BEDROCK.summarize(json.dumps(value).encode(), streaming=False)
    assert (summary.text, summary.tool_calls, summary.finish_reason) == (
        "Hi",
        [ToolCall("g", '{"b":2}', "t")],
        "tool_use",
    )


@pytest.mark.parametrize(
    ("kind", "exception"),
    [
        ("rate_limit", "throttlingException"),
        ("bad_request", "validationException"),
        ("overloaded", "serviceUnavailableException"),
        ("server_error", "internalServerException"),
    ],
)
def test_exception_frames_are_what_botocore_raises_as_eventstreamerror(kind: str, exception: str) -> None:
    frame = get_profile("bedrock").error_event(kind=kind)
    assert frame == exception_frame(exception, kind=kind)
    buffer = EventStreamBuffer()
    buffer.add_data(frame + exception_frame("modelStreamErrorException", "The model failed."))
    first, second = (message.to_response_dict() for message in buffer)
    assert first["headers"][":exception-type"] == exception and first["status_code"] == 400
    assert json.loads(second["body"]) == {"message": "The model failed."}
