"""The Ollama native API profile, on data written here."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmcassette._exchange import RequestInfo
from llmcassette.providers import ToolCall, detect_profile, get_profile

OLLAMA = get_profile("ollama")


def _lines(*values: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(v).encode() + b"\n" for v in values)


@pytest.mark.parametrize(
    ("method", "url", "body", "name", "streaming"),
    [
        ("POST", "http://localhost:11434/api/chat", {"model": "m"}, "ollama", True),  # streaming by default
        ("POST", "http://127.0.0.1:11434/api/chat", {"model": "m", "stream": False}, "ollama", False),
        ("POST", "http://localhost:11434/api/generate", {"model": "m", "stream": True}, "ollama", True),
        ("POST", "http://localhost:11434/api/embed", {"model": "m"}, "ollama", False),
        ("GET", "http://localhost:11434/api/tags", None, "ollama", False),
        ("POST", "https://ollama.com/api/chat", {"model": "m"}, "ollama", True),
        ("POST", "http://gpu-box:8080/api/chat", {"model": "m"}, "ollama", True),  # behind a proxy
        ("POST", "http://localhost:11434/v1/chat/completions", {"stream": True}, "ollama-openai", True),
        ("POST", "https://ollama.com/v1/chat/completions", {}, "ollama-openai", False),
        ("POST", "https://openrouter.ai/api/v1/chat/completions", {}, "openrouter", False),
    ],
)
def test_detection(method: str, url: str, body: Any, name: str, streaming: bool) -> None:
    request = RequestInfo(method, url, body=json.dumps(body).encode() if body is not None else b"")
    profile = detect_profile(request)
    assert (profile.name, profile.is_streaming(request)) == (name, streaming)


@pytest.mark.parametrize(
    ("kind", "status", "text"),
    [
        ("overloaded", 503, "server busy, please try again.  maximum pending requests exceeded"),
        ("not_found", 404, 'model "llmcassette-model" not found, try pulling it first'),
        ("bad_request", 400, "model is required"),
        ("rate_limit", 429, "too many requests, please try again later"),
    ],
)
def test_error_bodies(kind: str, status: int, text: str) -> None:
    response = OLLAMA.error(kind)
    assert (response.status, json.loads(response.body)) == (status, {"error": text})
    assert response.headers == (("content-type", "application/json; charset=utf-8"),)


def test_error_event_and_empty_streams() -> None:
    assert OLLAMA.error_event() == b'{"error":"an error was encountered while running the model"}\n'
    assert OLLAMA.error_event(message="out of memory") == b'{"error":"out of memory"}\n'
    chat = json.loads(OLLAMA.empty_stream())
    assert chat["message"] == {"role": "assistant", "content": ""} and chat["done"] is True
    generate = detect_profile(RequestInfo("POST", "http://localhost:11434/api/generate"))
    line = json.loads(generate.empty_stream())
    assert line["response"] == "" and "message" not in line
    assert OLLAMA.is_terminator(OLLAMA.empty_stream()) and not OLLAMA.is_terminator(b'{"done": false}\n')
    assert OLLAMA.terminator is None and OLLAMA.stream_content_type == "application/x-ndjson"


def test_chat_stream_with_thinking_tool_calls_and_counts() -> None:
    call = {"function": {"name": "weather", "arguments": {"city": "Lyon"}}}
    body = _lines(
        {"message": {"role": "assistant", "content": "", "thinking": "Hm."}, "done": False},
        {"message": {"role": "assistant", "content": "Sure"}, "done": False},
        {"message": {"role": "assistant", "content": "", "tool_calls": [call]}, "done": False},
        {
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 7,
            "eval_count": 3,
            "eval_duration": 123456,
        },
    )
    summary = OLLAMA.summarize(body, streaming=True)
    assert (summary.text, summary.reasoning, summary.finish_reason, summary.events) == (
        "Sure",
        "Hm.",
        "stop",
        4,
    )
    assert summary.tool_calls == [ToolCall("weather", '{"city":"Lyon"}', None)]
    assert summary.usage == {"prompt_eval_count": 7, "eval_count": 3}


def test_generate_stream_and_mid_stream_error() -> None:
    generate = detect_profile(RequestInfo("POST", "http://localhost:11434/api/generate"))
    body = _lines({"response": "A", "done": False}, {"response": "B", "done": False}) + generate.error_event()
    summary = generate.summarize(body, streaming=True)
    assert (summary.text, summary.error, summary.finish_reason) == (
        "AB",
        "an error was encountered while running the model",
        None,
    )


def test_blank_and_broken_lines_are_skipped() -> None:
    body = b'{"message": {"content": "x"}, "done": false}\n\n{broken\n'
    summary = OLLAMA.summarize(body, streaming=True)
    assert (summary.text, summary.events) == ("x", 2)


def test_json_answer() -> None:
    value = {
        "message": {"role": "assistant", "content": "Hello"},
        "done": True,
        "done_reason": "length",
        "eval_count": 2,
    }
    summary = OLLAMA.summarize(json.dumps(value).encode(), streaming=False)
    assert (summary.text, summary.finish_reason, summary.usage, summary.events) == (
        "Hello",
        "length",
        {"eval_count": 2},
        0,
    )
