"""
The profile registry, the generic profile, the wire helpers, and what every profile (and every
variant ``refine`` hands out) must do: answer every error kind, and read back its own error
event and empty stream.
"""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given, strategies as st

from llmcassette._exceptions import ConfigError
from llmcassette._exchange import RequestInfo
from llmcassette._framing import Framing, split_events
from llmcassette.providers import ERROR_KINDS, GENERIC, PROFILES, Profile, detect_profile, get_profile
from llmcassette.providers._base import kind_for_status
from llmcassette.providers._wire import error_message, flat_ints, rfc3339, stable_token

#: One request per profile and variant, so that every wire shape is exercised.
VARIANT_URLS = {
    "openai": "https://api.openai.com/v1/chat/completions",
    "openai-responses": "https://api.openai.com/v1/responses",
    "azure-openai": "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21",
    "azure-openai/responses": "https://r.openai.azure.com/openai/v1/responses",
    "anthropic": "https://api.anthropic.com/v1/messages",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/models/m:streamGenerateContent?alt=sse",
    "gemini/array": "https://generativelanguage.googleapis.com/v1beta/models/m:streamGenerateContent",
    "gemini/vertex": "https://aiplatform.googleapis.com/v1/projects/p/locations/l/publishers/google/models/m:generateContent",
    "bedrock": "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse-stream",
    "bedrock/invoke": "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/invoke-with-response-stream",
    "ollama": "http://localhost:11434/api/chat",
    "ollama/generate": "http://localhost:11434/api/generate",
    "groq": "https://api.groq.com/openai/v1/chat/completions",
    "mistral": "https://api.mistral.ai/v1/chat/completions",
    "openrouter": "https://openrouter.ai/api/v1/chat/completions",
    "ollama-openai": "http://localhost:11434/v1/chat/completions",
    "openai-compatible": "http://localhost:8000/v1/chat/completions",
    "generic": "https://example.com/predict",
}


def _variant(key: str) -> Profile:
    profile = detect_profile(RequestInfo("POST", VARIANT_URLS[key]))
    assert profile.name == key.split("/")[0]
    return profile


VARIANTS = sorted(VARIANT_URLS)


# == registry =====================================================================================


def test_every_profile_is_registered_once_and_found_by_name() -> None:
    names = [profile.name for profile in PROFILES]
    assert len(names) == len(set(names))
    assert "generic" not in names
    for profile in [*PROFILES, GENERIC]:
        assert get_profile(profile.name) is profile


def test_unknown_profile_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        get_profile("opneai")
    message = str(caught.value)
    assert message.startswith("llmcassette: unknown provider profile 'opneai'")
    assert all(profile.name in message for profile in PROFILES)


def test_override_picks_by_name_and_still_refines() -> None:
    request = RequestInfo("POST", "http://127.0.0.1:9000/v1beta/models/m:streamGenerateContent")
    profile = detect_profile(request, override="gemini")
    assert (profile.name, profile.framing) == ("gemini", Framing.JSON_ARRAY)
    assert detect_profile(RequestInfo("POST", "https://api.openai.com/v1/x"), override="generic") is GENERIC


def test_unknown_upstream_is_generic() -> None:
    assert detect_profile(RequestInfo("POST", "https://example.com/v2/generate")) is GENERIC


# == the generic profile ==========================================================================


@pytest.mark.parametrize(
    ("url", "headers", "body", "streaming"),
    [
        ("https://example.com/x", {}, b'{"stream": true}', True),
        ("https://example.com/x", {}, b'{"stream": false}', False),
        ("https://example.com/x?stream=true", {}, b"", True),
        ("https://example.com/x", {"accept": "text/event-stream"}, b"", True),
        ("https://example.com/x", {"accept": "application/json"}, b"{}", False),
        ("https://example.com/x", {}, b"not json", False),
    ],
)
def test_generic_streaming(url: str, headers: dict[str, str], body: bytes, streaming: bool) -> None:
    assert GENERIC.is_streaming(RequestInfo("POST", url, headers, body)) is streaming


@pytest.mark.parametrize("kind", sorted(ERROR_KINDS))
def test_generic_error_is_json_with_the_kinds_status(kind: str) -> None:
    response = GENERIC.error(kind)
    assert response.status == ERROR_KINDS[kind]
    assert json.loads(response.body)["error"]["message"]
    assert response.header("content-type") == "application/json"


def test_generic_summary_sniffs_sse_and_ndjson() -> None:
    sse = b': keep-alive\n\ndata: {"a": 1}\n\ndata: {"error": {"message": "boom"}}\n\n'
    assert (GENERIC.summarize(sse, streaming=True).events, GENERIC.summarize(sse, streaming=True).error) == (
        2,
        "boom",
    )
    ndjson = b'{"a": 1}\n{"error": "bad"}\n'
    summary = GENERIC.summarize(ndjson, streaming=True)
    assert (summary.events, summary.error) == (2, "bad")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "bad_request"),
        (401, "unauthorized"),
        (404, "not_found"),
        (418, "bad_request"),
        (429, "rate_limit"),
        (500, "server_error"),
        (504, "server_error"),
        (529, "overloaded"),
    ],
)
def test_status_kinds(status: int, kind: str) -> None:
    assert kind_for_status(status) == kind


# == what every profile does ======================================================================


@pytest.mark.parametrize("key", VARIANTS)
@pytest.mark.parametrize("kind", sorted(ERROR_KINDS))
def test_every_kind_has_an_error_response(key: str, kind: str) -> None:
    profile = _variant(key)
    response = profile.error(kind, retry_after_s=3, now_s=1_800_000_000)
    assert 400 <= response.status <= 599
    assert "json" in (response.header("content-type") or "")
    summary = profile.summarize(response.body, streaming=False, status=response.status)
    assert summary.error and summary.error in _strings(json.loads(response.body))
    # The same inputs give the same bytes: replays are deterministic.
    assert profile.error(kind, retry_after_s=3, now_s=1_800_000_000) == response


def _strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


@pytest.mark.parametrize("key", VARIANTS)
def test_status_override_and_message(key: str) -> None:
    profile = _variant(key)
    response = profile.error("status", status=418, message="I am a teapot.")
    assert response.status == 418
    assert profile.summarize(response.body, streaming=False, status=418).error == "I am a teapot."
    unknown = profile.error("no-such-kind")
    assert unknown.status >= 500


@pytest.mark.parametrize("key", VARIANTS)
def test_rate_limit_headers_come_with_a_429(key: str) -> None:
    profile = _variant(key)
    response = profile.error("rate_limit", now_s=1_800_000_000)
    headers = dict(response.headers)
    for name, value in profile.rate_limit_headers(now_s=1_800_000_000):
        assert headers[name] == value
    assert not any(name.lower().startswith("retry-after") for name in headers)  # the fault's to set
    assert not any(
        name.startswith(("x-ratelimit", "anthropic-ratelimit"))
        for name, _ in profile.error("server_error").headers
    )


@pytest.mark.parametrize("key", VARIANTS)
def test_error_event_reads_back_as_the_streams_error(key: str) -> None:
    profile = _variant(key)
    if key == "generic":
        event = profile.error_event(message="It broke.")
    else:
        event = profile.error_event(message="It broke.", kind="overloaded")
    first = split_events(profile.empty_stream(), profile.framing)[:1]  # the stream has begun
    body = b"".join(first).removesuffix(b"\n]")
    summary = profile.summarize(body + event, streaming=True)
    if key == "ollama-openai":  # a bare JSON line inside SSE: Ollama's quirk, clients skip it
        assert event.startswith(b'{"error"') and summary.error is None
    else:
        assert summary.error == "It broke."
    if profile.framing is Framing.SSE and key != "ollama-openai":
        assert event.endswith((b"\n\n", b"\r\n\r\n"))


@pytest.mark.parametrize("key", VARIANTS)
def test_empty_stream_is_complete_and_says_nothing(key: str) -> None:
    profile = _variant(key)
    body = profile.empty_stream()
    summary = profile.summarize(body, streaming=True)
    assert (summary.text, summary.tool_calls, summary.error, summary.reasoning) == ("", [], None, "")
    if key == "generic":
        assert body == b""
        return
    events = [e for e in split_events(body, profile.framing) if e.strip(b" \r\n[],")]
    assert events and summary.events >= 1
    if profile.terminator is not None:
        assert body.endswith(profile.terminator)
    if key.startswith(("openai", "azure", "anthropic", "groq", "mistral", "openrouter", "ollama")):
        assert summary.finish_reason in ("stop", "end_turn", "completed")
        assert any(profile.is_terminator(e) for e in events), (
            "the empty stream ends the way a complete one does"
        )


@pytest.mark.parametrize("key", VARIANTS)
def test_body_framing_reads_the_profiles_own_stream_and_tells_a_plain_answer(key: str) -> None:
    profile = _variant(key)
    if key != "generic":  # the generic empty stream is no body at all
        assert profile.body_framing(profile.empty_stream()) is profile.framing
    plain = profile.body_framing(b'{"id": "x", "choices": []}')
    # Ollama reads one JSON line as NDJSON: one line or many, it reads the same.
    assert plain is (Framing.NDJSON if key.startswith("ollama/") or key == "ollama" else Framing.NONE)


@pytest.mark.parametrize("key", VARIANTS)
def test_describe(key: str) -> None:
    description = _variant(key).describe()
    assert description["name"] == key.split("/")[0]
    assert description["framing"] in {f.value for f in Framing}


# == wire helpers =================================================================================


def test_flat_ints_flattens_and_keeps_only_counts() -> None:
    usage = {"a": 1, "b": {"c": 2, "d": 0.5, "e": [1]}, "f": True, "g": "x", "h": None}
    assert flat_ints(usage) == {"a": 1, "b.c": 2}
    assert flat_ints(None) == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"error": {"message": "m", "type": "t"}}, "m"),
        ({"error": "plain"}, "plain"),
        ({"error": {"code": 5}}, '{"code":5}'),
        ({"message": "aws style"}, "aws style"),
        ({"detail": "Unauthorized"}, "Unauthorized"),
        ([{"error": {"message": "in a list"}}], "in a list"),
        ({"choices": []}, None),
        ("text", None),
    ],
)
def test_error_message_shapes(value: object, message: str | None) -> None:
    assert error_message(value) == message


def test_stable_tokens_and_instants() -> None:
    assert stable_token("a", 1) == stable_token("a", 1) != stable_token("a", 2)
    assert len(stable_token("x", length=10, alphabet="ab")) == 10
    assert rfc3339(1_767_225_601.9) == "2026-01-01T00:00:01Z"


def test_gzip_bodies_are_summarized_decoded() -> None:
    body = gzip.compress(json.dumps({"choices": [{"index": 0, "message": {"content": "hi"}}]}).encode())
    assert get_profile("openai").summarize(body, streaming=False).text == "hi"


@given(st.lists(st.text(max_size=12), max_size=12))
def test_generic_counts_every_data_event(pieces: list[str]) -> None:
    body = b"".join(b"data: " + json.dumps({"t": p}).encode() + b"\n\n" for p in pieces)
    assert GENERIC.summarize(body, streaming=True).events == len(pieces)
