"""The Gemini profile (Gemini API and Vertex AI), on data written here."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmcassette._exchange import RequestInfo
from llmcassette._framing import Framing, split_events
from llmcassette.providers import ToolCall, detect_profile, get_profile
from llmcassette.providers.gemini import retry_delay

API = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
VERTEX = "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/models/gemini"


def _profile(url: str) -> Any:
    return detect_profile(RequestInfo("POST", url))


def _chunk(parts: list[dict[str, Any]], finish: str | None = None, total: int = 1) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": {"promptTokenCount": 1, "totalTokenCount": total}}


def _sse(*chunks: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)


# == detection and variants =======================================================================


@pytest.mark.parametrize(
    ("url", "body", "streaming", "framing"),
    [
        (f"{API}:streamGenerateContent?alt=sse", {}, True, Framing.SSE),
        (f"{API}:streamGenerateContent", {}, True, Framing.JSON_ARRAY),
        (f"{API}:generateContent", {"stream": True}, False, Framing.SSE),  # the path decides, not the body
        (f"{VERTEX}:streamGenerateContent?alt=sse", {}, True, Framing.SSE),
        (f"{VERTEX}:streamGenerateContent", {}, True, Framing.JSON_ARRAY),
        (
            "http://127.0.0.1:8080/v1beta/models/m:streamGenerateContent?alt=sse",
            {},
            True,
            Framing.SSE,
        ),  # a proxy
        ("https://generativelanguage.googleapis.com/v1beta/models", None, False, Framing.SSE),
    ],
)
def test_detection(url: str, body: Any, streaming: bool, framing: Framing) -> None:
    request = RequestInfo("POST", url, body=json.dumps(body).encode() if body is not None else b"")
    profile = detect_profile(request)
    assert (profile.name, profile.is_streaming(request), profile.framing) == ("gemini", streaming, framing)
    assert profile.terminator is None


@pytest.mark.parametrize(
    "url",
    [
        "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
        "https://aiplatform.googleapis.com/v1/projects/p/locations/l/endpoints/openapi/chat/completions",
    ],
)
def test_google_openai_endpoints_are_openai_shaped(url: str) -> None:
    assert _profile(url).name == "openai-compatible"


# == errors =======================================================================================


def test_rate_limit_puts_the_delay_in_retry_info() -> None:
    response = get_profile("gemini").error("rate_limit", retry_after_s=22.5)
    error = json.loads(response.body)["error"]
    assert (response.status, error["code"], error["status"]) == (429, 429, "RESOURCE_EXHAUSTED")
    types = [d["@type"].rsplit(".", 1)[1] for d in error["details"]]
    assert types == ["QuotaFailure", "Help", "RetryInfo"]
    assert error["details"][2]["retryDelay"] == "22.5s" and "Please retry in 22.5s." in error["message"]
    assert response.headers == (("content-type", "application/json; charset=UTF-8"),)  # no rate-limit headers


def test_bad_api_key_is_400_on_the_gemini_api_and_401_on_vertex() -> None:
    api = get_profile("gemini").error("unauthorized")
    error = json.loads(api.body)["error"]
    assert (api.status, error["status"], error["details"][0]["reason"]) == (
        400,
        "INVALID_ARGUMENT",
        "API_KEY_INVALID",
    )
    vertex = _profile(f"{VERTEX}:generateContent").error("unauthorized")
    assert (vertex.status, json.loads(vertex.body)["error"]["status"]) == (401, "UNAUTHENTICATED")
    assert get_profile("gemini").error("unauthorized", status=401).status == 401  # an explicit status wins


@pytest.mark.parametrize(
    ("kind", "status", "rpc"),
    [
        ("overloaded", 503, "UNAVAILABLE"),
        ("not_found", 404, "NOT_FOUND"),
        ("forbidden", 403, "PERMISSION_DENIED"),
        ("server_error", 500, "INTERNAL"),
    ],
)
def test_rpc_statuses(kind: str, status: int, rpc: str) -> None:
    error = json.loads(get_profile("gemini").error(kind).body)["error"]
    assert (error["code"], error["status"]) == (status, rpc)


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "1s"), (22, "22s"), (3.957525, "3.958s"), (0.5, "0.5s")]
)
def test_retry_delays(seconds: float | None, text: str) -> None:
    assert retry_delay(seconds) == text


# == stream shapes ================================================================================


def test_sse_error_event_is_one_crlf_data_line() -> None:
    event = get_profile("gemini").error_event(kind="overloaded")
    assert event.startswith(b"data: ") and event.endswith(b"}\r\n\r\n") and event.count(b"\n") == 2
    assert json.loads(event[6:]) == {
        "error": {
            "code": 503,
            "message": "The model is overloaded. Please try again later.",
            "status": "UNAVAILABLE",
        }
    }


def test_array_error_event_closes_the_array() -> None:
    profile = _profile(f"{API}:streamGenerateContent")
    started = b"[" + json.dumps(_chunk([{"text": "Hi"}])).encode()
    body = started + profile.error_event(message="Backend failed.")
    parsed = json.loads(body)
    assert parsed[1]["error"]["message"] == "Backend failed."
    summary = profile.summarize(body, streaming=True)
    assert (summary.text, summary.error, summary.events) == ("Hi", "Backend failed.", 2)


@pytest.mark.parametrize("url", [f"{API}:streamGenerateContent?alt=sse", f"{API}:streamGenerateContent"])
def test_empty_stream_never_writes_comments_or_event_lines(url: str) -> None:
    profile = _profile(url)
    body = profile.empty_stream()
    assert not any(line.startswith((b":", b"event:")) for line in body.splitlines())
    if profile.framing is Framing.JSON_ARRAY:
        chunks = json.loads(body)
    else:
        chunks = [json.loads(e.strip()[6:]) for e in split_events(body, Framing.SSE)]
    assert chunks[0]["candidates"][0] == {"content": {"role": "model"}, "finishReason": "STOP", "index": 0}


# == summaries ====================================================================================


def test_stream_with_thoughts_and_a_function_call() -> None:
    body = _sse(
        _chunk([{"text": "Planning", "thought": True}], total=5),
        _chunk(
            [
                {"text": "Calling."},
                {"functionCall": {"name": "lookup", "args": {"q": "é"}}, "thoughtSignature": "sig"},
            ],
            total=9,
        ),
        _chunk([{"text": ""}], finish="STOP", total=12),
    )
    summary = get_profile("gemini").summarize(body, streaming=True)
    assert (summary.text, summary.reasoning, summary.finish_reason, summary.events) == (
        "Calling.",
        "Planning",
        "STOP",
        3,
    )
    assert summary.tool_calls == [ToolCall("lookup", '{"q":"é"}', None)]
    assert summary.usage == {"promptTokenCount": 1, "totalTokenCount": 12}  # running totals: the last counts


def test_truncated_array_stream_keeps_whole_elements() -> None:
    profile = _profile(f"{API}:streamGenerateContent")
    body = (
        b"["
        + json.dumps(_chunk([{"text": "One"}]), indent=2).encode()
        + b"\n,\r\n"
        + json.dumps(_chunk([{"text": " two"}])).encode()[:-9]
    )
    summary = profile.summarize(body, streaming=True)
    assert (summary.text, summary.events) == ("One", 2)


def test_blocked_prompt_and_array_error_bodies() -> None:
    blocked = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
    }
    summary = get_profile("gemini").summarize(json.dumps(blocked).encode(), streaming=False)
    assert (summary.finish_reason, summary.text, summary.error) == ("SAFETY", "", None)
    error = [{"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED"}}]
    assert (
        get_profile("gemini").summarize(json.dumps(error).encode(), streaming=False, status=429).error
        == "Quota exceeded."
    )
