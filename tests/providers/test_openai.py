"""The OpenAI profiles: Chat Completions, the Responses API and Azure OpenAI, on data written here."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, strategies as st

from llmcassette._exchange import RequestInfo
from llmcassette._framing import Framing, parse_sse_event, split_events
from llmcassette.providers import ToolCall, detect_profile, get_profile
from llmcassette.providers.openai import go_duration

OPENAI = get_profile("openai")
RESPONSES = get_profile("openai-responses")
AZURE = get_profile("azure-openai")


def _data(value: Any) -> bytes:
    return b"data: " + json.dumps(value).encode() + b"\n\n"


def _chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0, **extra: Any) -> bytes:
    return _data(
        {
            "object": "chat.completion.chunk",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
            **extra,
        }
    )


def _named(kind: str, **fields: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


# == detection ====================================================================================


@pytest.mark.parametrize(
    ("method", "url", "name", "streaming", "body"),
    [
        ("POST", "https://api.openai.com/v1/chat/completions", "openai", True, {"stream": True}),
        ("POST", "https://api.openai.com/v1/chat/completions", "openai", False, {"model": "m"}),
        ("POST", "https://api.openai.com/v1/embeddings", "openai", False, {}),
        ("POST", "https://api.openai.com/v1/responses", "openai-responses", True, {"stream": True}),
        (
            "GET",
            "https://api.openai.com/v1/responses/resp_1?starting_after=3&stream=true",
            "openai-responses",
            True,
            None,
        ),
        ("GET", "https://api.openai.com/v1/responses/resp_1", "openai-responses", False, None),
        ("POST", "http://localhost:11434/v1/responses", "openai-responses", False, {}),
        (
            "POST",
            "https://r.openai.azure.com/openai/deployments/gpt/chat/completions?api-version=2024-10-21",
            "azure-openai",
            True,
            {"stream": True},
        ),
        (
            "POST",
            "https://r.cognitiveservices.azure.com/openai/deployments/gpt/chat/completions",
            "azure-openai",
            False,
            {},
        ),
        (
            "POST",
            "https://gateway.example.com/openai/deployments/gpt/chat/completions",
            "azure-openai",
            False,
            {},
        ),
        ("POST", "https://r.openai.azure.com/openai/v1/responses", "azure-openai", True, {"stream": True}),
    ],
)
def test_detection(method: str, url: str, name: str, streaming: bool, body: Any) -> None:
    request = RequestInfo(method, url, body=json.dumps(body).encode() if body is not None else b"")
    profile = detect_profile(request)
    assert (profile.name, profile.is_streaming(request)) == (name, streaming)


def test_azure_responses_variant_has_responses_wire_and_azure_errors() -> None:
    variant = detect_profile(RequestInfo("POST", "https://r.openai.azure.com/openai/v1/responses"))
    assert variant.terminator is None and AZURE.terminator == b"data: [DONE]\n\n"
    assert b"event: response.completed" in variant.empty_stream()
    assert json.loads(variant.error("rate_limit").body)["error"]["code"] == "429"


# == errors =======================================================================================


@pytest.mark.parametrize(
    ("kind", "status", "type_", "code"),
    [
        ("rate_limit", 429, "requests", "rate_limit_exceeded"),
        ("unauthorized", 401, "invalid_request_error", "invalid_api_key"),
        ("forbidden", 403, "request_forbidden", "unsupported_country_region_territory"),
        ("not_found", 404, "invalid_request_error", "model_not_found"),
        ("bad_request", 400, "invalid_request_error", None),
        ("server_error", 500, "server_error", None),
        ("bad_gateway", 502, "cf_bad_gateway", 502),
        ("unavailable", 503, "cf_service_unavailable", 503),
        ("overloaded", 503, "server_error", None),
    ],
)
def test_openai_error_bodies(kind: str, status: int, type_: str, code: Any) -> None:
    response = OPENAI.error(kind)
    error = json.loads(response.body)["error"]
    assert response.status == status
    assert (error["type"], error["code"], error["param"]) == (type_, code, None)
    assert (response.header("x-request-id") or "").startswith("req_")


def test_openai_rate_limit_message_and_headers() -> None:
    response = OPENAI.error("rate_limit", retry_after_s=90)
    assert "Please try again in 1m30s." in json.loads(response.body)["error"]["message"]
    headers = dict(response.headers)
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "120ms"


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.12, "120ms"), (1, "1s"), (1.5, "1.5s"), (360, "6m0s"), (62.25, "1m2.25s")]
)
def test_go_durations(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("rate_limit", "429"),
        ("unauthorized", "401"),
        ("not_found", "DeploymentNotFound"),
        ("forbidden", "PermissionDenied"),
    ],
)
def test_azure_codes_are_strings(kind: str, code: str) -> None:
    response = AZURE.error(kind, retry_after_s=86400)
    error = json.loads(response.body)["error"]
    assert error["code"] == code
    assert response.header("apim-request-id") == response.header("x-request-id")
    if kind == "rate_limit":
        assert "retry after 86400 seconds" in error["message"]
        assert dict(response.headers)["x-ratelimit-remaining-tokens"] == "0"


# == stream shapes ================================================================================


def test_chat_error_event_is_a_data_event_with_an_error_object() -> None:
    event = parse_sse_event(OPENAI.error_event(message="Boom.").decode())
    assert event.event is None
    assert json.loads(event.data or "")["error"] == {
        "message": "Boom.",
        "type": "server_error",
        "param": None,
        "code": None,
    }


def test_responses_error_event() -> None:
    event = parse_sse_event(RESPONSES.error_event(kind="rate_limit").decode())
    data = json.loads(event.data or "")
    assert event.event == "error"
    assert (data["type"], data["code"], data["param"], data["sequence_number"]) == (
        "error",
        "rate_limit_exceeded",
        None,
        0,
    )


def test_empty_streams() -> None:
    chat = split_events(OPENAI.empty_stream(), Framing.SSE)
    assert chat[-1] == b"data: [DONE]\n\n" and OPENAI.is_terminator(chat[-1])
    responses = [
        parse_sse_event(e.decode()).event for e in split_events(RESPONSES.empty_stream(), Framing.SSE)
    ]
    assert responses == ["response.created", "response.in_progress", "response.completed"]
    azure = json.loads(
        parse_sse_event(split_events(AZURE.empty_stream(), Framing.SSE)[0].decode()).data or ""
    )
    assert azure["choices"] == [] and azure["prompt_filter_results"]


def test_responses_terminator_events() -> None:
    assert RESPONSES.is_terminator(_named("response.completed", response={}))
    assert RESPONSES.is_terminator(_named("response.failed", response={}))
    assert not RESPONSES.is_terminator(_named("response.output_text.delta", delta="x"))


# == chat summaries ===============================================================================


def test_chat_stream_with_parallel_tool_calls_and_usage_chunk() -> None:
    body = b"".join(
        [
            _chunk({"role": "assistant", "content": None}),
            _chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "weather", "arguments": ""},
                        }
                    ]
                }
            ),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
            _chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "stock", "arguments": ""},
                        }
                    ]
                }
            ),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]}),
            _chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"ticker": "X"}'}}]}),
            _chunk({}, "tool_calls"),
            _data(
                {
                    "choices": [],
                    "usage": {
                        "prompt_tokens": 9,
                        "completion_tokens": 4,
                        "total_tokens": 13,
                        "completion_tokens_details": {"reasoning_tokens": 0},
                    },
                }
            ),
            b"data: [DONE]\n\n",
        ]
    )
    summary = OPENAI.summarize(body, streaming=True)
    assert summary.tool_calls == [
        ToolCall("weather", '{"city": "Paris"}', "call_a"),
        ToolCall("stock", '{"ticker": "X"}', "call_b"),
    ]
    assert (summary.finish_reason, summary.events, summary.text) == ("tool_calls", 9, "")
    assert summary.usage == {
        "prompt_tokens": 9,
        "completion_tokens": 4,
        "total_tokens": 13,
        "completion_tokens_details.reasoning_tokens": 0,
    }


def test_chat_stream_reads_only_the_first_choice_and_survives_damage() -> None:
    body = b"".join(
        [
            b": comment\n\n",
            _chunk({"content": "Hel"}),
            _chunk({"content": "nope"}, index=1),
            b"data: {not json\n\n",
            _chunk({"reasoning_content": "hmm", "content": "lo"}),
            _chunk({"content": " there"}),  # no [DONE], no finish: a truncated stream
        ]
    )
    summary = OPENAI.summarize(body, streaming=True)
    assert (summary.text, summary.reasoning, summary.finish_reason, summary.events) == (
        "Hello there",
        "hmm",
        None,
        5,
    )


def test_chat_stream_in_band_error() -> None:
    body = _chunk({"content": "a"}) + OPENAI.error_event(message="Server went away.")
    summary = OPENAI.summarize(body, streaming=True)
    assert (summary.text, summary.error) == ("a", "Server went away.")


def test_chat_json_with_tool_calls_and_legacy_function_call() -> None:
    value = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
                    ],
                    "function_call": {"name": "old", "arguments": "{}"},
                },
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    summary = OPENAI.summarize(json.dumps(value).encode(), streaming=False)
    assert summary.tool_calls == [ToolCall("f", '{"a":1}', "c1"), ToolCall("old", "{}")]
    assert (summary.finish_reason, summary.usage["total_tokens"], summary.events) == ("tool_calls", 3, 0)


def test_streaming_request_answered_with_json_is_read_as_json() -> None:
    value = {"choices": [{"index": 0, "message": {"content": "plain"}, "finish_reason": "stop"}]}
    assert OPENAI.summarize(json.dumps(value).encode(), streaming=True).text == "plain"


@given(
    st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=20),
    st.lists(st.text(max_size=6), max_size=10),
)
def test_chat_stream_reassembles_any_split(text_pieces: list[str], argument_pieces: list[str]) -> None:
    events = [_chunk({"content": piece}) for piece in text_pieces]
    events.append(
        _chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": ""}}]})
    )
    events += [
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}) for piece in argument_pieces
    ]
    summary = OPENAI.summarize(b"".join(events) + b"data: [DONE]\n\n", streaming=True)
    assert summary.text == "".join(text_pieces)
    assert summary.tool_calls == [ToolCall("f", "".join(argument_pieces), "c")]


# == Responses summaries ==========================================================================


def test_responses_stream_with_reasoning_text_and_a_function_call() -> None:
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "lookup", "arguments": ""}
    body = b"".join(
        [
            _named("response.created", response={"status": "in_progress"}, sequence_number=0),
            _named("response.reasoning_summary_text.delta", delta="Thinking", output_index=0),
            _named("response.output_text.delta", delta="Let me look.", output_index=1),
            _named("response.output_item.added", item=item, output_index=2),
            _named("response.function_call_arguments.delta", delta='{"q":', output_index=2, item_id="fc_1"),
            _named("response.function_call_arguments.delta", delta='"x"}', output_index=2, item_id="fc_1"),
            _named("response.output_item.done", item={**item, "arguments": '{"q":"x"}'}, output_index=2),
            _named(
                "response.completed",
                response={
                    "status": "completed",
                    "usage": {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12},
                },
            ),
        ]
    )
    summary = RESPONSES.summarize(body, streaming=True)
    assert (summary.text, summary.reasoning) == ("Let me look.", "Thinking")
    assert summary.tool_calls == [ToolCall("lookup", '{"q":"x"}', "call_1")]
    assert (summary.finish_reason, summary.usage["total_tokens"], summary.events) == ("completed", 12, 8)


def test_responses_incomplete_failed_and_error_events() -> None:
    incomplete = _named(
        "response.incomplete",
        response={"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}},
    )
    assert RESPONSES.summarize(incomplete, streaming=True).finish_reason == "max_output_tokens"
    failed = _named(
        "response.failed",
        response={"status": "failed", "error": {"code": "server_error", "message": "It failed."}},
    )
    assert RESPONSES.summarize(failed, streaming=True).error == "It failed."
    assert RESPONSES.summarize(RESPONSES.error_event(message="Oops."), streaming=True).error == "Oops."


def test_responses_call_arguments_from_done_when_no_deltas() -> None:
    item = {
        "type": "function_call",
        "id": "fc",
        "call_id": "call",
        "name": "f",
        "arguments": '{"whole":true}',
    }
    body = _named("response.output_item.added", item={**item, "arguments": ""}, output_index=0) + _named(
        "response.output_item.done", item=item, output_index=0
    )
    assert RESPONSES.summarize(body, streaming=True).tool_calls == [ToolCall("f", '{"whole":true}', "call")]


def test_responses_json() -> None:
    value = {
        "object": "response",
        "status": "completed",
        "output": [
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "why"}]},
            {
                "type": "message",
                "content": [{"type": "output_text", "text": "Hi"}, {"type": "refusal", "refusal": "no"}],
            },
            {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "call_9"},
            {"type": "custom_tool_call", "name": "g", "input": "raw", "call_id": "call_10"},
        ],
        "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        "error": None,
    }
    for profile in (RESPONSES, OPENAI):  # the chat profile recognises a Responses object too
        summary = profile.summarize(json.dumps(value).encode(), streaming=False)
        assert (summary.text, summary.reasoning, summary.finish_reason, summary.error) == (
            "Hi",
            "why",
            "completed",
            None,
        )
        assert summary.tool_calls == [ToolCall("f", "{}", "call_9"), ToolCall("g", "raw", "call_10")]
