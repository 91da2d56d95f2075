"""Transcripts: what each recorded interaction amounts to, for `llmcassette inspect`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from llmcassette._demo import CASSETTE
from llmcassette._exceptions import CassetteFormatError
from llmcassette._inspect import render_html, render_json, render_text
from llmcassette._models import CassetteDocument
from llmcassette._storage import load_cassette
from llmcassette._transcript import GapStats, gap_stats, transcribe
from llmcassette.providers.bedrock import encode_frame
from tests import corpus
from tests.arbitrary import BODIES, CONTENT_TYPES, STATUSES, URLS, one_interaction

SSE = (
    'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    'data: {"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}\n\n'
    "data: [DONE]\n\n"
)


def _document(*interactions: dict[str, Any]) -> CassetteDocument:
    return CassetteDocument.model_validate({"interactions": list(interactions)})


def _interaction(
    *,
    uri: str = "https://api.openai.com/v1/chat/completions",
    request: Any = None,
    status: int = 200,
    content_type: str = "text/event-stream",
    body: str = SSE,
    **response: Any,
) -> dict[str, Any]:
    request_body = request if request is not None else {"model": "gpt-4o", "messages": [], "stream": True}
    return {
        "request": {"method": "POST", "uri": uri, "parsed_body": request_body},
        "response": {
            "status": {"code": status, "message": ""},
            "headers": {"content-type": [content_type]},
            "body": {"string": body},
            **response,
        },
    }


def _one(**kwargs: Any) -> Any:
    (transcript,) = transcribe(_document(_interaction(**kwargs)), path="test.yaml")
    return transcript


def test_the_demo_stream_reads_as_the_client_saw_it() -> None:
    first, second = transcribe(load_cassette(CASSETTE), path=CASSETTE)
    assert (first.index, first.method, first.provider, first.model) == (
        0,
        "POST",
        "openai-compatible",
        "demo-model",
    )
    assert first.stream_requested and not second.stream_requested
    assert first.text == "Let me check the current weather in Paris."
    assert [(call.name, json.loads(call.arguments)) for call in first.tool_calls] == [
        ("get_weather", {"city": "Paris", "unit": "celsius"})
    ]
    assert first.finish_reason == "tool_calls"
    assert first.usage == {"prompt_tokens": 87, "completion_tokens": 28, "total_tokens": 115}
    assert first.last_input is not None and first.last_input.startswith("user: What's the weather")
    assert second.last_input is not None and second.last_input.startswith("tool: ")
    assert first.stream is not None and second.stream is None
    assert (first.stream.chunks, first.stream.events, first.stream.end) == (11, 15, "complete")
    recorded = load_cassette(CASSETTE).interactions[0].response
    assert recorded.stream is not None and recorded.stream.offsets_ms is not None
    assert first.stream.first_chunk_ms == recorded.stream.offsets_ms[0]
    assert first.stream.last_chunk_ms == recorded.stream.offsets_ms[-1]
    assert first.stream.bytes == len(recorded.content)


def test_gap_stats_use_real_gaps() -> None:
    assert gap_stats([0.0, 10.0, 30.0, 60.0, 100.0]) == GapStats(10.0, 25.0, 40.0, 40.0)
    # Nearest rank: with 20 gaps of 1..20 ms, p95 is the 19th smallest, not an interpolation.
    offsets = [float(sum(range(1, n + 1))) for n in range(21)]
    assert gap_stats(offsets) == GapStats(1.0, 10.5, 19.0, 20.0)
    assert gap_stats([5.0]) is None
    assert gap_stats([]) is None


def test_a_cut_stream_says_how_it_ended() -> None:
    transcript = _one(
        body=SSE.split("data: [DONE]")[0],
        stream={
            "chunks": [58, 84],
            "offsets_ms": [12.5, 40.0],
            "end": "error",
            "error": {"type": "RemoteProtocolError", "message": "peer closed connection"},
        },
    )
    assert transcript.stream is not None
    assert transcript.stream.end == "error"
    assert transcript.stream.error == "RemoteProtocolError: peer closed connection"
    assert transcript.stream.gaps == GapStats(27.5, 27.5, 27.5, 27.5)
    assert transcript.text == "Hello"


def test_an_error_response_has_its_message_and_no_stream() -> None:
    body = json.dumps({"error": {"message": "Rate limit reached", "type": "rate_limit"}})
    transcript = _one(status=429, content_type="application/json", body=body)
    assert transcript.status == 429
    assert transcript.error == "Rate limit reached"
    assert transcript.stream is None
    assert transcript.text == ""


@pytest.mark.parametrize(
    ("uri", "model"),
    [
        pytest.param(
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent",
            "gemini-2.0-flash",
            id="gemini",
        ),
        pytest.param(
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-micro-v1%3A0/converse",
            "us.amazon.nova-micro-v1:0",
            id="bedrock-escaped-colon",
        ),
        pytest.param(
            "https://x.openai.azure.com/openai/deployments/my-gpt/chat/completions?api-version=1",
            "my-gpt",
            id="azure",
        ),
    ],
)
def test_the_model_comes_from_the_url_when_the_body_has_none(uri: str, model: str) -> None:
    transcript = _one(uri=uri, request={"contents": []}, content_type="application/json", body="{}")
    assert transcript.model == model


@pytest.mark.parametrize(
    ("request_body", "expected"),
    [
        pytest.param({"messages": [{"role": "user", "content": "Hi"}]}, "user: Hi", id="chat"),
        pytest.param(
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "A"}, {"type": "image"}]}]},
            "user: A [image]",
            id="parts",
        ),
        pytest.param(
            {"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f"}}]}]},
            "user: [functionResponse]",
            id="gemini-tool-result",
        ),
        pytest.param({"input": "Tell me"}, "user: Tell me", id="responses-string"),
        pytest.param({"prompt": "Why?"}, "prompt: Why?", id="ollama-generate"),
        pytest.param({"model": "m"}, None, id="none"),
    ],
)
def test_the_last_input_is_shown_with_its_role(request_body: dict[str, Any], expected: str | None) -> None:
    assert _one(request=request_body, content_type="application/json", body="{}").last_input == expected


def test_a_body_that_cannot_be_rebuilt_names_the_interaction_and_field() -> None:
    broken = _interaction()
    broken["response"] = {"status": {"code": 200}, "parsed_body": {"a": 1}, "json_format": "fancy"}
    with pytest.raises(CassetteFormatError) as raised:
        transcribe(_document(_interaction(), broken), path="broken.yaml")
    assert raised.value.interaction == 1
    assert raised.value.field == "response.json_format"
    message = str(raised.value)
    assert message.startswith("llmcassette: cassette 'broken.yaml' is not valid: interaction 1")
    assert "'fancy'" in message


@pytest.mark.parametrize("rel", corpus.params())
def test_every_corpus_cassette_has_a_transcript(rel: str) -> None:
    path = corpus.corpus_path(rel)
    document = load_cassette(path)
    transcripts = transcribe(document, path=path)
    assert [t.index for t in transcripts] == list(range(len(document.interactions)))
    kinds = corpus.manifest_responses(corpus.manifest()[rel]["kinds"])
    for transcript, (status, kind) in zip(transcripts, kinds, strict=True):
        assert transcript.status == status
        streamed = kind in ("SSE", "NDJSON", "AWS eventstream", "gzip JSON-array stream")
        assert (transcript.stream is not None) == (streamed and status < 400), transcript
        if transcript.stream is not None:
            assert transcript.stream.events > 0
        # Every answer says something: text, a tool call, an error, or at least a finish reason.
        assert transcript.text or transcript.tool_calls or transcript.error or transcript.finish_reason


def test_a_response_without_a_known_provider_is_read_by_its_shape(tmp_path: Path) -> None:
    # A response saved on its own has no request: no profile applies, the body's shape still does.
    path = tmp_path / "bare.json"
    message = {"content": "Hi", "tool_calls": [{"function": {"name": "f", "arguments": '{"a":1}'}}]}
    body = {
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": {"total_tokens": 4},
    }
    path.write_text(json.dumps({"status": 200, "headers": {}, "body": body}))
    (transcript,) = transcribe(load_cassette(path), path=path)
    assert (transcript.method, transcript.url, transcript.provider) == ("*", "*", "generic")
    assert transcript.text == "Hi"
    assert [(call.name, call.arguments) for call in transcript.tool_calls] == [("f", '{"a":1}')]
    assert (transcript.finish_reason, transcript.usage) == ("tool_calls", {"total_tokens": 4})
    assert transcript.stream is None


def test_an_unknown_upstream_stream_is_read_by_its_shape() -> None:
    stream = 'data: {"message":{"content":"Hel"}}\n\ndata: {"message":{"content":"lo"},"done":true}\n\n'
    transcript = _one(uri="http://127.0.0.1:9/custom/generate", request={}, body=stream)
    assert transcript.provider == "generic"
    assert (transcript.text, transcript.finish_reason) == ("Hello", "stop")
    assert transcript.stream is not None and transcript.stream.events == 2


def test_an_unknown_upstream_eventstream_is_read_by_its_frames() -> None:
    # Read by the same decoder as a snapshot of it: frames, not one blob of binary.
    def frame(event_type: str, payload: dict[str, Any]) -> bytes:
        headers = {":event-type": event_type, ":message-type": "event"}
        return encode_frame(headers, json.dumps(payload).encode())

    body = (
        frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Bon"}})
        + frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "jour"}})
        + frame("messageStop", {"stopReason": "end_turn"})
    )
    transcript = _one(
        uri="http://127.0.0.1:9/custom/stream",
        request={},
        content_type="application/vnd.amazon.eventstream",
        body=body,
    )
    assert transcript.provider == "generic"
    assert (transcript.text, transcript.finish_reason) == ("Bonjour", "end_turn")
    assert transcript.stream is not None and transcript.stream.events == 3


@settings(max_examples=200, deadline=None)
@given(BODIES, CONTENT_TYPES, URLS, STATUSES)
def test_any_body_has_a_transcript(
    body: bytes, content_type: str | None, url: str, status: int | None
) -> None:
    transcripts = transcribe(one_interaction(body, content_type, url, status), path="any.yaml")
    assert render_text(transcripts, cassette="any.yaml")[2] == f"#0 POST {url}"
    assert (
        json.loads(render_json(transcripts, cassette="any.yaml"))["interactions"][0]["response"]["status"]
        == status
    )
    assert render_html(transcripts, cassette="any.yaml").count("<section>") == 1
