"""The OpenAI-compatible gateways (Groq, Mistral, OpenRouter, Ollama's /v1) and the catch-all."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmcassette._exchange import RequestInfo
from llmcassette._framing import Framing, parse_sse_event, split_events
from llmcassette.providers import ToolCall, detect_profile, get_profile

GROQ = get_profile("groq")
MISTRAL = get_profile("mistral")
OPENROUTER = get_profile("openrouter")
OLLAMA_OPENAI = get_profile("ollama-openai")
COMPATIBLE = get_profile("openai-compatible")


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://api.groq.com/openai/v1/chat/completions", "groq"),
        ("https://api.groq.com/openai/v1/models", "groq"),
        ("https://api.mistral.ai/v1/chat/completions#stream", "mistral"),
        ("https://codestral.mistral.ai/v1/fim/completions", "mistral"),
        ("https://openrouter.ai/api/v1/chat/completions", "openrouter"),
        ("http://localhost:11434/v1/chat/completions", "ollama-openai"),
        ("http://localhost:8000/v1/chat/completions", "openai-compatible"),  # vLLM
        ("http://litellm.internal:4000/chat/completions", "openai-compatible"),  # LiteLLM proxy
        ("http://localhost:8000/v1/completions", "openai-compatible"),
        ("http://localhost:8000/v1/embeddings", "generic"),
    ],
)
def test_detection(url: str, name: str) -> None:
    assert detect_profile(RequestInfo("POST", url)).name == name


# == Groq =========================================================================================


def test_groq_errors_headers_and_event() -> None:
    response = GROQ.error("rate_limit", retry_after_s=2.43)
    error = json.loads(response.body)["error"]
    assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded") and "param" not in error
    assert "Please try again in 2.43s." in error["message"]
    headers = dict(response.headers)
    assert headers["x-ratelimit-limit-requests"] == "14400" and headers["x-ratelimit-reset-tokens"] == "2.43s"
    assert headers["x-request-id"].startswith("req_01")
    event = parse_sse_event(GROQ.error_event(kind="bad_request").decode())
    assert event.event == "error"
    assert json.loads(event.data or "")["error"]["status_code"] == 400
    assert json.loads(GROQ.error("overloaded").body)["error"]["code"] == "service_unavailable"


def test_groq_usage_from_x_groq() -> None:
    chunk = {
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "x_groq": {
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "queue_time": 0.01}
        },
    }
    body = b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
    assert GROQ.summarize(body, streaming=True).usage == {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
    }


# == Mistral ======================================================================================


def test_mistral_error_shapes() -> None:
    rate = MISTRAL.error("rate_limit")
    assert json.loads(rate.body) == {
        "object": "error",
        "message": "Rate limit exceeded",
        "type": "rate_limited",
        "param": None,
        "code": "1300",
    }
    assert dict(rate.headers)["x-ratelimit-remaining-req-10-second"] == "0"
    unauthorized = json.loads(MISTRAL.error("unauthorized").body)
    assert unauthorized["message"] == "Unauthorized" and len(unauthorized["request_id"]) == 32
    overloaded = MISTRAL.error("overloaded")
    assert (overloaded.status, json.loads(overloaded.body)["code"]) == (429, "3505")
    assert MISTRAL.error("overloaded").header("mistral-correlation-id")


def test_mistral_content_parts_and_whole_tool_calls() -> None:
    chunks = [
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "content": [{"type": "thinking", "thinking": [{"type": "text", "text": "Think"}]}]
                    },
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {"content": [{"type": "text", "text": "Answer"}]}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "id": "abc123xyz",
                                "function": {"name": "f", "arguments": '{"x": 1}'},
                                "index": 0,
                            }
                        ]
                    },
                    "finish_reason": "tool_calls",
                }
            ]
        },
    ]
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    summary = MISTRAL.summarize(body, streaming=True)
    assert (summary.text, summary.reasoning) == ("Answer", "Think")
    assert summary.tool_calls == [ToolCall("f", '{"x": 1}', "abc123xyz")]


def test_tool_calls_without_an_index_are_told_apart_by_id() -> None:
    chunks = [
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{"}}]},
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"function": {"arguments": "}"}}]}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{}"}}]},
                }
            ]
        },
    ]
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    assert COMPATIBLE.summarize(body, streaming=True).tool_calls == [
        ToolCall("f", "{}", "a"),
        ToolCall("g", "{}", "b"),
    ]


# == OpenRouter ===================================================================================


@pytest.mark.parametrize("kind", ["rate_limit", "unauthorized", "bad_gateway", "forbidden"])
def test_openrouter_errors_have_integer_codes(kind: str) -> None:
    response = OPENROUTER.error(kind)
    error = json.loads(response.body)["error"]
    assert error["code"] == response.status
    if kind in ("rate_limit", "bad_gateway"):
        assert error["message"] == "Provider returned error" and error["metadata"]["raw"]
    assert OPENROUTER.rate_limit_headers() == ()


def test_openrouter_stream_shapes() -> None:
    event = json.loads(
        parse_sse_event(OPENROUTER.error_event(message="Provider disconnected").decode()).data or ""
    )
    assert event["error"] == {"code": 500, "message": "Provider disconnected"}
    assert event["choices"][0]["finish_reason"] == "error"
    empty = OPENROUTER.empty_stream()
    assert empty.startswith(b": OPENROUTER PROCESSING\n\n")
    summary = OPENROUTER.summarize(empty + b"", streaming=True)
    assert summary.events == 3  # the comment is not an event


# == Ollama's OpenAI endpoint =====================================================================


@pytest.mark.parametrize(
    ("kind", "type_"),
    [
        ("bad_request", "invalid_request_error"),
        ("not_found", "not_found_error"),
        ("server_error", "api_error"),
        ("rate_limit", "api_error"),
    ],
)
def test_ollama_openai_errors(kind: str, type_: str) -> None:
    error = json.loads(OLLAMA_OPENAI.error(kind).body)["error"]
    assert (error["type"], error["param"], error["code"]) == (type_, None, None)
    assert OLLAMA_OPENAI.error(kind).headers == (("content-type", "application/json; charset=utf-8"),)


def test_ollama_openai_mid_stream_error_is_a_bare_json_line() -> None:
    event = OLLAMA_OPENAI.error_event()
    assert event.startswith(b'{"error":') and event.endswith(b"}\n") and b"data:" not in event
    body = OLLAMA_OPENAI.empty_stream().replace(b"data: [DONE]\n\n", b"") + event
    assert not any(parse_sse_event(e.decode()).data for e in split_events(event, Framing.SSE))
    assert OLLAMA_OPENAI.summarize(body, streaming=True).error is None  # what an SSE client makes of it


def test_catch_all_speaks_openai() -> None:
    error: dict[str, Any] = json.loads(COMPATIBLE.error("not_found").body)["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "model_not_found")
    assert COMPATIBLE.terminator == b"data: [DONE]\n\n"
