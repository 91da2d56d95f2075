"""
The profiles' synthesised responses, read by the real SDKs over loopback: error bodies map to the
SDK exceptions (with the provider's code and type), in-stream error events raise what the real
ones raise, and empty streams parse as successful, empty answers. No retries anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import ollama
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors, types as genai_types

from llmcassette._exchange import RequestInfo
from llmcassette.providers import ErrorResponse, Profile, detect_profile, get_profile
from tests.servers import serve

KEY = "sk-llmcassette-test"


@dataclass
class Reply:
    """What the loopback upstream answers next."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    chunks: list[bytes] = field(default_factory=list)

    def error(self, response: ErrorResponse) -> None:
        self.status, self.headers, self.chunks = response.status, response.headers, [response.body]

    def stream(self, profile: Profile, *events: bytes) -> None:
        self.status, self.headers = 200, (("content-type", profile.stream_content_type),)
        self.chunks = [event for event in events if event]


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, Reply]]:
    reply = Reply()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        while (await receive()).get("more_body"):
            pass
        headers = [(k.lower().encode(), v.encode()) for k, v in reply.headers]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        for chunk in reply.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    with serve(app) as base_url:
        yield base_url, reply


# -- OpenAI and the OpenAI-shaped gateways ----------------------------------------------------------

OPENAI_CLASSES = {
    "rate_limit": openai.RateLimitError,
    "unauthorized": openai.AuthenticationError,
    "forbidden": openai.PermissionDeniedError,
    "not_found": openai.NotFoundError,
    "bad_request": openai.BadRequestError,
    "server_error": openai.InternalServerError,
    "bad_gateway": openai.InternalServerError,
    "unavailable": openai.InternalServerError,
}
OPENAI_SHAPED = ["openai", "azure-openai", "openai-compatible", "groq", "openrouter", "ollama-openai"]


def _chat(base_url: str, *, stream: bool) -> Any:
    client = openai.OpenAI(api_key=KEY, base_url=f"{base_url}/v1", max_retries=0)
    with client:
        result = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
        return list(result) if stream else result


@pytest.mark.parametrize("name", OPENAI_SHAPED)
@pytest.mark.parametrize("kind", sorted(OPENAI_CLASSES))
def test_openai_sdk_maps_error_bodies(upstream: tuple[str, Reply], name: str, kind: str) -> None:
    base_url, reply = upstream
    response = get_profile(name).error(kind, retry_after_s=2)
    reply.error(response)
    with pytest.raises(OPENAI_CLASSES[kind]) as caught:
        _chat(base_url, stream=False)
    error = json.loads(response.body).get("error")
    if isinstance(error, dict):  # the SDK keeps the error object as the body, with its code and type
        assert caught.value.body == error
        code = error.get("code")
        assert caught.value.code == (None if code is None else str(code))  # the SDK reads codes as text
        assert error["message"] in caught.value.message
    request_id = response.header("x-request-id")
    assert caught.value.request_id == request_id


def test_openai_rate_limit_carries_code_type_and_headers(upstream: tuple[str, Reply]) -> None:
    base_url, reply = upstream
    reply.error(get_profile("openai").error("rate_limit", retry_after_s=0.25))
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(base_url, stream=False)
    assert (caught.value.code, caught.value.type) == ("rate_limit_exceeded", "requests")
    assert "try again in 250ms" in caught.value.message
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_mistral_error_body_reaches_the_openai_sdk_whole(upstream: tuple[str, Reply]) -> None:
    base_url, reply = upstream
    reply.error(get_profile("mistral").error("rate_limit"))
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(base_url, stream=False)
    # No `error` key: the SDK keeps the whole body, and the status says what happened.
    assert caught.value.body == {
        "object": "error",
        "message": "Rate limit exceeded",
        "type": "rate_limited",
        "param": None,
        "code": "1300",
    }


@pytest.mark.parametrize(
    "name", ["openai", "azure-openai", "openai-compatible", "groq", "openrouter", "mistral"]
)
def test_openai_sdk_raises_the_in_stream_error(upstream: tuple[str, Reply], name: str) -> None:
    base_url, reply = upstream
    profile = get_profile(name)
    first = profile.empty_stream().split(b"\n\n")
    role_chunk = next(block for block in first if b'"role"' in block) + b"\n\n"
    reply.stream(profile, role_chunk, profile.error_event(message="Provider disconnected unexpectedly"))
    with pytest.raises(openai.APIError) as caught:
        _chat(base_url, stream=True)
    assert not isinstance(caught.value, openai.APIStatusError)
    assert caught.value.message == "Provider disconnected unexpectedly"


def test_ollama_openai_in_stream_error_ends_the_stream_silently(upstream: tuple[str, Reply]) -> None:
    base_url, reply = upstream
    profile = get_profile("ollama-openai")
    body = profile.empty_stream()
    role_chunk = body.split(b"\n\n")[0] + b"\n\n"
    reply.stream(profile, role_chunk, profile.error_event())
    chunks = _chat(base_url, stream=True)
    assert len(chunks) == 1 and chunks[0].choices[0].delta.role == "assistant"


@pytest.mark.parametrize("name", OPENAI_SHAPED)
def test_openai_empty_stream_is_a_successful_empty_answer(upstream: tuple[str, Reply], name: str) -> None:
    base_url, reply = upstream
    profile = get_profile(name)
    reply.stream(profile, profile.empty_stream())
    chunks = _chat(base_url, stream=True)
    deltas = [c.choices[0].delta.content for c in chunks if c.choices]
    assert "".join(d or "" for d in deltas) == ""
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def _responses_request() -> RequestInfo:
    return RequestInfo("POST", "https://api.openai.com/v1/responses", body=b'{"stream": true}')


def test_responses_empty_stream_completes(upstream: tuple[str, Reply]) -> None:
    base_url, reply = upstream
    profile = detect_profile(_responses_request())
    reply.stream(profile, profile.empty_stream())
    with openai.OpenAI(api_key=KEY, base_url=f"{base_url}/v1", max_retries=0) as client:
        with client.responses.stream(model="m", input="hi") as stream:
            final = stream.get_final_response()
    assert (final.status, final.output, final.output_text) == ("completed", [], "")


def test_responses_error_event_is_yielded_and_fails_the_helper(upstream: tuple[str, Reply]) -> None:
    base_url, reply = upstream
    profile = detect_profile(_responses_request())
    created = profile.empty_stream().split(b"\n\n")[0] + b"\n\n"
    reply.stream(profile, created, profile.error_event(kind="rate_limit", message="Slow down."))
    with openai.OpenAI(api_key=KEY, base_url=f"{base_url}/v1", max_retries=0) as client:
        events = list(client.responses.create(model="m", input="hi", stream=True))
        assert [e.type for e in events] == ["response.created", "error"]
        assert (events[1].code, events[1].message) == ("rate_limit_exceeded", "Slow down.")
        with client.responses.stream(model="m", input="hi") as stream, pytest.raises(RuntimeError):
            stream.get_final_response()


# -- Anthropic ------------------------------------------------------------------------------------

ANTHROPIC_CLASSES = {
    "rate_limit": anthropic.RateLimitError,
    "unauthorized": anthropic.AuthenticationError,
    "forbidden": anthropic.PermissionDeniedError,
    "not_found": anthropic.NotFoundError,
    "bad_request": anthropic.BadRequestError,
    "server_error": anthropic.InternalServerError,
    "unavailable": anthropic.ServiceUnavailableError,
    "overloaded": anthropic.OverloadedError,
}


def _anthropic(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=base_url, max_retries=0)


@pytest.mark.parametrize("kind", sorted(ANTHROPIC_CLASSES))
def test_anthropic_sdk_maps_error_bodies(upstream: tuple[str, Reply], kind: str) -> None:
    base_url, reply = upstream
    response = get_profile("anthropic").error(kind)
    reply.error(response)
    with _anthropic(base_url) as client, pytest.raises(ANTHROPIC_CLASSES[kind]) as caught:
        client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    body = json.loads(response.body)
    assert caught.value.status_code == response.status == (529 if kind == "overloaded" else response.status)
    assert caught.value.type == body["error"]["type"]
    assert caught.value.request_id == body["request_id"] == response.header("request-id")


def test_anthropic_in_stream_overload_is_a_status_error_on_200(upstream: tuple[str, Reply]) -> None:
    base_url, reply = upstream
    profile = get_profile("anthropic")
    start = profile.empty_stream().split(b"\n\n")[0] + b"\n\n"
    reply.stream(profile, start, profile.error_event(kind="overloaded"))
    with _anthropic(base_url) as client, pytest.raises(anthropic.APIStatusError) as caught:
        list(
            client.messages.create(
                model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
    assert not isinstance(caught.value, anthropic.OverloadedError)
    assert (caught.value.status_code, caught.value.type) == (200, "overloaded_error")


def test_anthropic_empty_stream_is_a_finished_empty_message(upstream: tuple[str, Reply]) -> None:
    base_url, reply = upstream
    profile = get_profile("anthropic")
    reply.stream(profile, profile.empty_stream())
    with _anthropic(base_url) as client:
        with client.messages.stream(
            model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        ) as s:
            message = s.get_final_message()
    assert (message.content, message.stop_reason) == ([], "end_turn")


# -- google-genai ---------------------------------------------------------------------------------

GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta/models/m:streamGenerateContent?alt=sse"


def _genai(base_url: str) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=genai_types.HttpOptions(base_url=base_url))


@pytest.mark.parametrize(
    ("kind", "cls", "code", "status"),
    [
        ("rate_limit", genai_errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
        ("unauthorized", genai_errors.ClientError, 400, "INVALID_ARGUMENT"),
        ("not_found", genai_errors.ClientError, 404, "NOT_FOUND"),
        ("overloaded", genai_errors.ServerError, 503, "UNAVAILABLE"),
        ("server_error", genai_errors.ServerError, 500, "INTERNAL"),
    ],
)
def test_genai_maps_error_bodies(
    upstream: tuple[str, Reply], kind: str, cls: type, code: int, status: str
) -> None:
    base_url, reply = upstream
    reply.error(get_profile("gemini").error(kind, retry_after_s=7))
    with _genai(base_url) as client, pytest.raises(cls) as caught:
        client.models.generate_content(model="m", contents="hi")
    assert (caught.value.code, caught.value.status) == (code, status)
    if kind == "rate_limit":
        details = caught.value.details["error"]["details"]
        assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in details


def test_genai_raises_the_in_stream_error(upstream: tuple[str, Reply]) -> None:
    base_url, reply = upstream
    profile = detect_profile(RequestInfo("POST", GEMINI_URL))
    first = (
        b'data: {"candidates": [{"content": {"parts": [{"text": "Hi"}],"role": "model"},"index": 0}]}\r\n\r\n'
    )
    reply.stream(profile, first, profile.error_event(kind="overloaded"))
    seen = []
    with _genai(base_url) as client, pytest.raises(genai_errors.ServerError) as caught:
        for chunk in client.models.generate_content_stream(model="m", contents="hi"):
            seen.append(chunk.text)
    assert seen == ["Hi"]
    assert (caught.value.code, caught.value.status) == (503, "UNAVAILABLE")


def test_genai_empty_stream_is_an_empty_finished_answer(upstream: tuple[str, Reply]) -> None:
    base_url, reply = upstream
    profile = detect_profile(RequestInfo("POST", GEMINI_URL))
    reply.stream(profile, profile.empty_stream())
    with _genai(base_url) as client:
        chunks = list(client.models.generate_content_stream(model="m", contents="hi"))
    assert len(chunks) == 1
    assert chunks[0].text is None
    assert chunks[0].candidates[0].finish_reason == genai_types.FinishReason.STOP


# -- ollama ---------------------------------------------------------------------------------------


def test_ollama_in_stream_error_line_raises_with_status_minus_one(upstream: tuple[str, Reply]) -> None:
    base_url, reply = upstream
    profile = get_profile("ollama")
    reply.stream(profile, profile.error_event())
    with ollama.Client(host=base_url) as client, pytest.raises(ollama.ResponseError) as caught:
        list(client.chat(model="m", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert (caught.value.status_code, caught.value.error) == (
        -1,
        "an error was encountered while running the model",
    )


@pytest.mark.parametrize("kind", ["overloaded", "not_found", "unauthorized"])
def test_ollama_error_bodies(upstream: tuple[str, Reply], kind: str) -> None:
    base_url, reply = upstream
    response = get_profile("ollama").error(kind)
    reply.error(response)
    with ollama.Client(host=base_url) as client, pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="m", messages=[{"role": "user", "content": "hi"}])
    assert (caught.value.status_code, caught.value.error) == (
        response.status,
        json.loads(response.body)["error"],
    )


@pytest.mark.parametrize("path", ["/api/chat", "/api/generate"])
def test_ollama_empty_stream_is_one_done_part(upstream: tuple[str, Reply], path: str) -> None:
    base_url, reply = upstream
    profile = detect_profile(RequestInfo("POST", f"http://localhost:11434{path}"))
    reply.stream(profile, profile.empty_stream())
    with ollama.Client(host=base_url) as client:
        if path == "/api/chat":
            parts = list(client.chat(model="m", messages=[{"role": "user", "content": "hi"}], stream=True))
            assert parts[0].message.content == ""
        else:
            parts = list(client.generate(model="m", prompt="hi", stream=True))
            assert parts[0].response == ""
    assert [(p.done, p.done_reason) for p in parts] == [(True, "stop")]


# -- Bedrock (botocore's own eventstream decoder) ---------------------------------------------------


@pytest.mark.parametrize("kind", ["overloaded", "rate_limit", "server_error"])
def test_bedrock_frames_decode_with_botocore(kind: str) -> None:
    eventstream = pytest.importorskip("botocore.eventstream")
    profile = get_profile("bedrock")
    buffer = eventstream.EventStreamBuffer()
    buffer.add_data(profile.empty_stream() + profile.error_event(kind=kind))
    messages = list(buffer)
    assert [m.headers.get(":event-type") for m in messages[:3]] == ["messageStart", "messageStop", "metadata"]
    assert messages[3].headers[":message-type"] == "exception"
    assert json.loads(messages[3].payload)["message"]
