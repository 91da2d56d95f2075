"""
Normalised snapshots: hand-written streams of every provider with their exact JSONL, the whole
real corpus against the provider profiles' summaries, and the syrupy extension end to end.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest

import llmcassette
from llmcassette import (
    Attempt,
    CassetteDocument,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    load_cassette,
    save_cassette,
)
from llmcassette._exchange import RequestInfo
from llmcassette._models import ResponseBody, Status, header_get
from llmcassette._snapshot import LLMStreamSnapshotExtension, normalize, normalize_events
from llmcassette.providers import detect_profile
from llmcassette.providers.bedrock import encode_frame
from tests.corpus import corpus_path, decoded, ndjson_lines, params, sse_messages

pytest_plugins = ["pytester"]

CHAT_URL = "https://api.openai.com/v1/chat/completions"


def sse(*values: Any, named: bool = False, newline: str = "\n") -> bytes:
    """SSE events, one per value (a string is sent as it is: `[DONE]`, broken JSON)."""
    out = ""
    for value in values:
        data = value if isinstance(value, str) else json.dumps(value)
        head = f"event: {value['type']}{newline}" if named and isinstance(value, dict) else ""
        out += f"{head}data: {data}{newline}{newline}"
    return out.encode()


def jsonl(body: bytes, url: str, **kwargs: Any) -> str:
    return "".join(json.dumps(e, sort_keys=True) + "\n" for e in normalize_events(body, url=url, **kwargs))


def lines(*events: dict[str, Any]) -> str:
    return "".join(json.dumps(e, sort_keys=True) + "\n" for e in events)


def text(value: str) -> dict[str, Any]:
    return {"type": "text_delta", "text": value}


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    volatile = {"id": "chatcmpl-AbC123xyz", "created": 1712345678, "system_fingerprint": "fp_9f3e2a1b0c"}
    return {**volatile, "object": "chat.completion.chunk", "choices": [choice], **extra}


def test_openai_chat_stream() -> None:
    call = {"index": 0, "id": "call_Xy12AbCdEf", "type": "function", "function": {"name": "get_weather"}}
    body = sse(
        chunk({"role": "assistant", "content": ""}, obfuscation="pAdDiNg12"),
        chunk({"content": "Héllo"}, obfuscation="q"),
        chunk({"tool_calls": [{**call, "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({}, "tool_calls"),
        {"id": "chatcmpl-AbC123xyz", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9}},
        "[DONE]",
    )
    assert normalize_events(body, url=CHAT_URL)[0] == text("Héllo")
    assert jsonl(body, CHAT_URL) == lines(
        text("Héllo"),
        {"type": "tool_call_delta", "index": 0, "name": "get_weather", "arguments": ""},
        {"type": "tool_call_delta", "index": 0, "arguments": '{"city":'},
        {"type": "tool_call_delta", "index": 0, "arguments": '"Paris"}'},
        {"type": "usage", "prompt_tokens": 5, "completion_tokens": 9},
        {"type": "finish", "reason": "tool_calls"},
    )


def test_openai_chat_json_answer_reads_like_its_stream() -> None:
    body = json.dumps(
        {
            "id": "chatcmpl-AbC123xyz",
            "created": 1712345678,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": 3,
                "completion_tokens": 1,
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        },
        indent=2,
    ).encode()
    assert jsonl(body, CHAT_URL) == lines(
        text("Hi"),
        {
            "type": "usage",
            "prompt_tokens": 3,
            "completion_tokens": 1,
            "completion_tokens_details.reasoning_tokens": 0,
        },
        {"type": "finish", "reason": "stop"},
    )


def test_openai_responses_stream() -> None:
    response = {
        "id": "resp_0a1b2c3d4e",
        "object": "response",
        "created_at": 1712345678,
        "status": "in_progress",
    }
    item = {
        "type": "function_call",
        "id": "fc_123abc",
        "call_id": "call_Qq9",
        "name": "lookup",
        "arguments": "",
    }
    body = sse(
        {"type": "response.created", "sequence_number": 0, "response": response},
        {"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "Think."},
        {"type": "response.output_text.delta", "output_index": 1, "delta": "Sure", "obfuscation": "zz"},
        {"type": "response.output_item.added", "output_index": 2, "item": item},
        {"type": "response.function_call_arguments.delta", "output_index": 2, "delta": '{"q":1}'},
        {"type": "response.function_call_arguments.done", "output_index": 2, "arguments": '{"q":1}'},
        {"type": "response.something_new", "output_index": 3},
        {
            "type": "response.completed",
            "response": {**response, "status": "completed", "usage": {"input_tokens": 7, "output_tokens": 4}},
        },
        named=True,
    )
    assert jsonl(body, "https://api.openai.com/v1/responses") == lines(
        {"type": "reasoning_delta", "text": "Think."},
        text("Sure"),
        {"type": "tool_call_delta", "index": 0, "name": "lookup", "arguments": ""},
        {"type": "tool_call_delta", "index": 0, "arguments": '{"q":1}'},
        {"type": "usage", "input_tokens": 7, "output_tokens": 4},
        {"type": "finish", "reason": "completed"},
    )


def test_anthropic_stream() -> None:
    message = {
        "id": "msg_01AbCdEf",
        "type": "message",
        "content": [],
        "usage": {"input_tokens": 12, "output_tokens": 1},
    }
    tool = {"type": "tool_use", "id": "toolu_01Xyz", "name": "get_weather", "input": {}}
    body = sse(
        {"type": "message_start", "message": message},
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm"}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "EqQBCkgI"},
        },
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Let me check."}},
        {"type": "content_block_start", "index": 2, "content_block": tool},
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"city"'},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": ':"Oslo"}'},
        },
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}},
        {"type": "message_stop"},
        named=True,
    )
    assert jsonl(body, "https://api.anthropic.com/v1/messages") == lines(
        {"type": "reasoning_delta", "text": "Hmm"},
        text("Let me check."),
        {"type": "tool_call_delta", "index": 0, "name": "get_weather", "arguments": ""},
        {"type": "tool_call_delta", "index": 0, "arguments": '{"city"'},
        {"type": "tool_call_delta", "index": 0, "arguments": ':"Oslo"}'},
        {"type": "usage", "input_tokens": 12, "output_tokens": 30},
        {"type": "finish", "reason": "tool_use"},
    )


def test_anthropic_in_stream_error() -> None:
    body = sse(
        {"type": "message_start", "message": {"id": "msg_01AbCdEf", "usage": {"input_tokens": 1}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Par"}},
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        named=True,
    )
    assert jsonl(body, "https://api.anthropic.com/v1/messages") == lines(
        text("Par"), {"type": "error", "message": "Overloaded"}, {"type": "usage", "input_tokens": 1}
    )


GEMINI_CHUNKS = [
    {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "Plan", "thought": True}, {"text": "Bon"}]}}
        ],
        "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 6},
        "responseId": "aBcDeFgHiJkL",
    },
    {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"text": "jour"}, {"functionCall": {"name": "f", "args": {"a": 1}}}],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "aBcDeFgHiJkL",
    },
]
GEMINI_EXPECTED = lines(
    {"type": "reasoning_delta", "text": "Plan"},
    text("Bon"),
    text("jour"),
    {"type": "tool_call_delta", "index": 0, "name": "f", "arguments": '{"a":1}'},
    {"type": "usage", "promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7},
    {"type": "finish", "reason": "STOP"},
)
GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent"


def test_gemini_sse_with_crlf() -> None:
    assert jsonl(sse(*GEMINI_CHUNKS, newline="\r\n"), GEMINI_URL + "?alt=sse") == GEMINI_EXPECTED


def test_gemini_json_array_whole_and_cut_short() -> None:
    body = b"[" + b"\n,\r\n".join(json.dumps(c).encode() for c in GEMINI_CHUNKS) + b"\n]"
    assert jsonl(body, GEMINI_URL) == GEMINI_EXPECTED
    # Cut inside the second element: the first still counts, the partial one is not an event.
    cut = body[: body.index(b'"jour"')]
    assert jsonl(cut, GEMINI_URL) == lines(
        {"type": "reasoning_delta", "text": "Plan"},
        text("Bon"),
        {"type": "error", "message": "malformed event 2: its data is not JSON"},
        {"type": "usage", "promptTokenCount": 4, "totalTokenCount": 6},
    )


def test_ollama_chat_and_generate_ndjson() -> None:
    head = {"model": "llama3.2", "created_at": "2026-01-01T00:00:00.123456Z"}
    call = {"function": {"name": "add", "arguments": {"a": 1, "b": 2}}}
    chat = [
        {**head, "message": {"role": "assistant", "content": "", "thinking": "sum"}, "done": False},
        {**head, "message": {"role": "assistant", "content": "", "tool_calls": [call]}, "done": False},
        {**head, "message": {"role": "assistant", "content": "3"}, "done": False},
        {**head, "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"}
        | {"total_duration": 123456789, "prompt_eval_count": 8, "eval_count": 2},
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in chat)
    assert jsonl(body, "http://localhost:11434/api/chat") == lines(
        {"type": "reasoning_delta", "text": "sum"},
        {"type": "tool_call_delta", "index": 0, "name": "add", "arguments": '{"a":1,"b":2}'},
        text("3"),
        {"type": "usage", "prompt_eval_count": 8, "eval_count": 2},
        {"type": "finish", "reason": "stop"},
    )
    generate = [{**head, "response": "Hi", "done": False}, {**head, "response": "", "done": True}]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in generate)
    assert jsonl(body, "http://localhost:11434/api/generate") == lines(
        text("Hi"), {"type": "finish", "reason": "stop"}
    )


def test_openai_compatible_gateway_with_keepalives_and_in_band_error() -> None:
    body = (
        b": OPENROUTER PROCESSING\n\n"
        + sse(chunk({"content": "Par"}), chunk({"content": "tial"}))
        + b": OPENROUTER PROCESSING\n\n"
        + sse(
            {
                "id": "gen-1712345678-AbCd",
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
                "error": {"code": 502, "message": "Upstream error from Groq"},
            },
            {
                "id": "gen-1",
                "choices": [{"index": 0, "delta": {}}],
                "x_groq": {"usage": {"prompt_tokens": 2}},
            },
        )
    )
    assert jsonl(body, "https://openrouter.ai/api/v1/chat/completions") == lines(
        text("Par"),
        text("tial"),
        {"type": "error", "message": "Upstream error from Groq"},
        {"type": "usage", "prompt_tokens": 2},
        {"type": "finish", "reason": "error"},
    )


def test_malformed_and_unknown_events_do_not_crash() -> None:
    body = sse(
        chunk({"content": "A"}), '{"id": "chatcmpl-AbC", "choi', {"novel": True}, 42, chunk({"content": "B"})
    )
    assert jsonl(body, "http://127.0.0.1:8000/v1/chat/completions") == lines(
        text("A"), {"type": "error", "message": "malformed event 2: its data is not JSON"}, text("B")
    )


def test_http_errors_and_odd_bodies() -> None:
    error = json.dumps({"error": {"message": "Invalid key", "type": "invalid_request_error"}}).encode()
    assert normalize_events(error, url=CHAT_URL, status=401) == [
        {"type": "error", "status": 401, "message": "Invalid key"}
    ]
    assert normalize_events(b"", url=CHAT_URL) == []
    assert normalize_events(b"<html>oops</html>", url=CHAT_URL) == [
        {"type": "error", "message": "malformed event 1: its data is not JSON"}
    ]
    # A recorded gzip body reads as what it holds.
    assert normalize_events(gzip.compress(sse(chunk({"content": "z"}))), url=CHAT_URL) == [text("z")]


BEDROCK_URL = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m"


def frame(event_type: str, payload: Any, *, exception: bool = False) -> bytes:
    header = ":exception-type" if exception else ":event-type"
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return encode_frame({header: event_type, ":message-type": "exception" if exception else "event"}, data)


def test_bedrock_converse_stream_and_its_exception_frames() -> None:
    tool = {"toolUse": {"toolUseId": "tooluse_Ab12Cd34", "name": "f"}}
    body = (
        frame("messageStart", {"role": "assistant"})
        + frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Hm"}}})
        + frame("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Sure"}})
        + frame("contentBlockStart", {"contentBlockIndex": 2, "start": tool})
        + frame("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"a":1}'}}})
        + frame("messageStop", {"stopReason": "tool_use"})
        + frame("metadata", {"usage": {"inputTokens": 3, "outputTokens": 4}, "metrics": {"latencyMs": 9}})
        + frame("throttlingException", {"message": "Too many requests"}, exception=True)
        + frame("internalServerException", b"", exception=True)  # no payload: its type says it all
        + frame("messageStop", {"stopReason": "end_turn"})[:-2]  # cut short
    )
    assert jsonl(body, BEDROCK_URL + "/converse-stream") == lines(
        {"type": "reasoning_delta", "text": "Hm"},
        text("Sure"),
        {"type": "tool_call_delta", "index": 0, "name": "f", "arguments": ""},
        {"type": "tool_call_delta", "index": 0, "arguments": '{"a":1}'},
        {"type": "error", "message": "Too many requests"},
        {"type": "error", "message": "internalServerException"},
        {"type": "error", "message": "malformed event 10: its data is not JSON"},
        {"type": "usage", "inputTokens": 3, "outputTokens": 4},
        {"type": "finish", "reason": "tool_use"},
    )


def test_bedrock_invoke_chunks_read_as_the_events_they_carry() -> None:
    carried = [
        {"type": "message_start", "message": {"id": "msg_bdrk_01AbCd", "usage": {"input_tokens": 5}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
    ]
    body = b"".join(
        frame("chunk", {"bytes": base64.b64encode(json.dumps(event).encode()).decode()}) for event in carried
    )
    assert jsonl(body, BEDROCK_URL + "/invoke-with-response-stream") == lines(
        text("Hi"),
        {"type": "usage", "input_tokens": 5, "output_tokens": 1},
        {"type": "finish", "reason": "end_turn"},
    )


# -- targets -------------------------------------------------------------------------------------

STREAM = sse(chunk({"content": "Hello"}), chunk({"content": " world"}), chunk({}, "stop"), "[DONE]")
REQUEST_BODY = b'{"model": "gpt-4o", "stream": true}'


@pytest.fixture
def cassette_path(tmp_path: Path) -> Path:
    request = RecordedRequest(method="POST", uri=CHAT_URL, body=REQUEST_BODY.decode())
    response = RecordedResponse(
        status=Status(code=200),
        headers={"content-type": ["text/event-stream"]},
        body=ResponseBody(string=STREAM.decode()),
    )
    path = tmp_path / "chat.yaml"
    save_cassette(path, CassetteDocument(interactions=[Interaction(request=request, response=response)]))
    return path


EXPECTED = lines(text("Hello"), text(" world"), {"type": "finish", "reason": "stop"})


def test_normalize_an_interaction_an_attempt_and_a_string(cassette_path: Path) -> None:
    interaction = load_cassette(cassette_path).interactions[0]
    assert normalize(interaction) == EXPECTED
    attempt = Attempt(index=0, method="POST", url=CHAT_URL, status=200, chunks=[STREAM[:7], STREAM[7:]])
    assert normalize(attempt) == EXPECTED
    assert normalize(EXPECTED) == EXPECTED
    failed = Attempt(
        index=1, method="POST", url=CHAT_URL, error="ConnectError: [Errno 111] Connection refused"
    )
    assert normalize(failed) == lines(
        {"type": "error", "message": "ConnectError: [Errno 111] Connection refused"}
    )


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_normalize_a_response_a_client_returned(cassette_path: Path, module: Any) -> None:
    with llmcassette.use_cassette(cassette_path, allow_playback_repeats=True), module.Client() as client:
        response = client.post(CHAT_URL, content=REQUEST_BODY)
        assert normalize(response) == EXPECTED
        header = {"exchange": 0, "method": "POST", "path": "/v1/chat/completions", "status": 200}
        assert normalize([response]) == lines(header) + EXPECTED
        with client.stream("POST", CHAT_URL, content=REQUEST_BODY) as streamed:
            for _ in streamed.iter_lines():
                pass
            with pytest.raises(TypeError) as info:
                normalize(streamed)
    assert str(info.value) == (
        f"llmcassette: cannot snapshot this {module.__name__}.Response: its body was streamed and not "
        "read. Call `response.read()` before iterating it, or snapshot what the client received, "
        "`llm_cassette.attempts[-1]`."
    )


def test_normalize_a_cassette_after_faults(cassette_path: Path) -> None:
    header = {"method": "POST", "path": "/v1/chat/completions", "status": 200}
    assert normalize(llmcassette.Cassette(cassette_path)) == lines({"exchange": 0, **header}) + EXPECTED
    faults = ["rate_limit:times=1,retry_after_ms=1", "error_event:after=1,nth=2"]
    with llmcassette.use_cassette(cassette_path, faults=faults) as cassette, httpx.Client() as client:
        statuses = [client.post(CHAT_URL, content=REQUEST_BODY).status_code for _ in range(3)]
    assert statuses == [429, 200, 200]
    snapshot = normalize(cassette).splitlines()
    assert json.loads(snapshot[0]) == {
        "exchange": 0,
        **header,
        "status": 429,
        "faults": [cassette.attempts[0].faults[0]],
    }
    assert json.loads(snapshot[1])["status"] == 429
    assert json.loads(snapshot[2]) == {"exchange": 1, **header, "faults": ["error_event:nth=2,after=1"]}
    assert json.loads(snapshot[3]) == text("Hello")
    assert json.loads(snapshot[4]) == {
        "type": "error",
        "message": "The server had an error while processing your request. Sorry about that!",
    }
    assert "\n".join(snapshot[5:]) + "\n" == lines({"exchange": 2, **header}) + EXPECTED


# -- the real corpus ------------------------------------------------------------------------------

VOLATILE_KEYS = {
    "id",
    "created",
    "created_at",
    "system_fingerprint",
    "obfuscation",
    "responseId",
    "request_id",
}


def _volatile_values(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in VOLATILE_KEYS and isinstance(item, str | int) and len(str(item)) >= 6:
                found.add(str(item))
            _volatile_values(item, found)
    elif isinstance(value, list):
        for item in value:
            _volatile_values(item, found)


def _recorded_values(ctype: str, body: bytes) -> list[Any]:
    # Decoded with the tests' own readers (tests/corpus.py), not the library's.
    if "event-stream" in ctype:
        return [json.loads(m.data) for m in sse_messages(body) if m.data and m.data.strip() != "[DONE]"]
    if "ndjson" in ctype:
        return [json.loads(line) for line in ndjson_lines(body) if line.strip()]
    try:
        return [json.loads(body)]
    except ValueError:
        return []  # eventstream frames: binary, checked for text only


@pytest.mark.parametrize("rel", params())
def test_corpus_text_matches_the_profile_summary_and_hides_volatile_ids(rel: str) -> None:
    for number, interaction in enumerate(load_cassette(corpus_path(rel)).interactions):
        request, response = interaction.request, interaction.response
        headers = {key.lower(): values[0] for key, values in request.headers.items() if values}
        info = RequestInfo(request.method, request.uri, headers, request.content)
        profile = detect_profile(info)
        summary = profile.summarize(
            response.content, streaming=profile.is_streaming(info), status=response.status.code
        )
        events = normalize_events(
            response.content,
            url=request.uri,
            method=request.method,
            content_type=header_get(response.headers, "content-type"),
            status=response.status.code,
        )
        where = f"{rel} interaction {number} ({profile.name})"
        assert "".join(e["text"] for e in events if e["type"] == "text_delta") == summary.text, where
        assert bool([e for e in events if e["type"] == "error"]) == bool(summary.error), where
        calls: dict[int, str] = {}
        for event in events:
            if event["type"] == "tool_call_delta":
                calls[event["index"]] = calls.get(event["index"], "") + event["arguments"]
        assert list(calls.values()) == [call.arguments for call in summary.tool_calls], where
        snapshot = normalize(interaction)
        found: set[str] = set()
        ctype = (header_get(response.headers, "content-type") or "").lower()
        for value in _recorded_values(ctype, decoded(response.headers, response.content)):
            _volatile_values(value, found)
        leaked = sorted(value for value in found if value in snapshot)
        assert not leaked, f"{where}: {leaked}"


# -- the syrupy extension -------------------------------------------------------------------------

INNER_TEST = """
import json
from llmcassette import Attempt
from llmcassette._snapshot import LLMStreamSnapshotExtension

WORDS = {words!r}

def sse(text):
    chunk = {{"id": "chatcmpl-1", "choices": [{{"index": 0, "delta": {{"content": text}}}}]}}
    return ("data: " + json.dumps(chunk) + "\\n\\n").encode()

def test_chat(snapshot):
    chunks = [sse(word) for word in WORDS] + [b"data: [DONE]\\n\\n"]
    attempt = Attempt(index=0, method="POST", url="https://api.openai.com/v1/chat/completions",
                      status=200, chunks=chunks)
    assert attempt == snapshot.with_defaults(extension_class=LLMStreamSnapshotExtension)
"""


def test_syrupy_round_trip(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_stream=INNER_TEST.format(words=["Hello", " world"]))
    first = pytester.runpytest("-p", "syrupy", "-p", "no:cacheprovider")
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["*Snapshot 'test_chat' does not exist!*"])

    written = pytester.runpytest("-p", "syrupy", "-p", "no:cacheprovider", "--snapshot-update")
    written.assert_outcomes(passed=1)
    path = pytester.path / "__snapshots__" / "test_stream" / "test_chat.events.jsonl"
    assert path.read_text(encoding="utf-8") == lines(text("Hello"), text(" world"))

    pytester.runpytest("-p", "syrupy", "-p", "no:cacheprovider").assert_outcomes(passed=1)

    pytester.makepyfile(test_stream=INNER_TEST.format(words=["Hello", " there"]))
    changed = pytester.runpytest("-p", "syrupy", "-p", "no:cacheprovider")
    changed.assert_outcomes(failed=1)
    # The failure section only: under CI pytest repeats the message in the short summary.
    output = changed.stdout.str().split("short test summary info")[0]
    # One changed event is one changed line, shown as such, with the unchanged line around it.
    assert '- {"text": " world", "type": "text_delta"}' in output
    assert '+ {"text": " there", "type": "text_delta"}' in output
    assert output.count('"type": "text_delta"}') == 3, output


def test_extension_serialize_accepts_every_target(cassette_path: Path) -> None:
    extension = LLMStreamSnapshotExtension()
    assert extension.serialize(load_cassette(cassette_path).interactions[0]) == EXPECTED
    assert extension.serialize(EXPECTED) == EXPECTED
    assert LLMStreamSnapshotExtension.file_extension == "events.jsonl"
