"""
Fake LLM providers on the real wire formats, for the official SDKs to talk to.

``provider_app()`` serves OpenAI chat completions, Anthropic messages, Gemini ``generateContent``
and ``streamGenerateContent?alt=sse`` (under ``/v1`` and ``/v1beta``) and Ollama ``/api/chat``, as
JSON or streamed the way each provider streams (SSE with or without ``event:`` lines,
CRLF-separated SSE, NDJSON). The answer is always the same: a short text, then one
``get_weather`` tool call, with usage and a finish reason, so a test can compare what an SDK
parsed with :data:`EXPECTED`.

Streamed events are written one at a time with small real pauses between them, so the client
reads them in separate network reads and chunk boundaries are real. Every response carries
``Connection: close``: the SDKs pool connections, and a server that closes a kept-alive connection
makes the next request fail with a spurious connection error.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["EXPECTED", "GAPS_MS", "Expected", "ReceivedRequest", "network_writes", "provider_app"]

#: Pauses between streamed events, in milliseconds, used in turn.
GAPS_MS = (5, 10, 15)

# The answer every provider gives, cut into the pieces that are streamed. The degree sign makes
# the text multi-byte UTF-8, which must survive chunking and storage unchanged.
MULTIBYTE = "°"
TEXT_PIECES = ("Let me check", " the weather", " in Paris", f" ({MULTIBYTE}C).")
TOOL_NAME = "get_weather"
TOOL_ARGS = {"city": "Paris", "unit": "celsius"}
# OpenAI and Anthropic stream tool arguments as fragments of one JSON string, cut mid-token.
ARGS_JSON = json.dumps(TOOL_ARGS)
ARGS_FRAGMENTS = (ARGS_JSON[:3], ARGS_JSON[3:11], ARGS_JSON[11:20], ARGS_JSON[20:])
INPUT_TOKENS = 42
OUTPUT_TOKENS = 17
CREATED = 1767225600


@dataclass(frozen=True)
class Expected:
    """What a correct client parses from any of the providers."""

    text: str
    tool_name: str
    tool_args: dict[str, Any]
    input_tokens: int
    output_tokens: int


EXPECTED = Expected(
    text="".join(TEXT_PIECES),
    tool_name=TOOL_NAME,
    tool_args=TOOL_ARGS,
    input_tokens=INPUT_TOKENS,
    output_tokens=OUTPUT_TOKENS,
)


@dataclass
class ReceivedRequest:
    """A request the upstream answered."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


@dataclass
class _Log:
    requests: list[ReceivedRequest] = field(default_factory=list)


def network_writes(events: list[bytes]) -> list[bytes]:
    """
    Cut a stream's events into writes the way a network does, not event by event: the first two
    events go out together, and the event holding the first multi-byte character is cut inside
    that character. Each write reaches an httpx client as one chunk (one HTTP/1.1 transfer
    chunk), so a replay that re-cut the body per event would deliver different chunks.
    """
    writes = [events[0] + events[1], *events[2:]] if len(events) > 2 else list(events)
    for index, write in enumerate(writes):
        cut = write.find(MULTIBYTE.encode())
        if cut >= 0:
            writes[index : index + 1] = [write[: cut + 1], write[cut + 1 :]]
            break
    return writes


def _stream(events: list[bytes], media_type: str) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        gaps = itertools.cycle(GAPS_MS)
        for index, write in enumerate(network_writes(events)):
            if index:
                await asyncio.sleep(next(gaps) / 1000)
            yield write

    return StreamingResponse(body(), media_type=media_type, headers={"connection": "close"})


def _json(payload: Any, media_type: str = "application/json") -> JSONResponse:
    return JSONResponse(payload, media_type=media_type, headers={"connection": "close"})


def _data(payload: Any, newline: bytes = b"\n") -> bytes:
    # Compact, with non-ASCII text as raw UTF-8, as the providers send it.
    return b"data: " + json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode() + newline * 2


# -- OpenAI chat completions -------------------------------------------------------------------


def _openai_chunk(model: str, choices: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-llmc0001",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_llmc",
        "choices": choices,
        **extra,
    }


def _openai_delta(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def _openai_usage() -> dict[str, Any]:
    return {
        "prompt_tokens": INPUT_TOKENS,
        "completion_tokens": OUTPUT_TOKENS,
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
    }


def _openai_events(model: str, include_usage: bool) -> list[bytes]:
    chunks = [_openai_chunk(model, [_openai_delta({"role": "assistant", "content": "", "refusal": None})])]
    chunks += [_openai_chunk(model, [_openai_delta({"content": piece})]) for piece in TEXT_PIECES]
    opener = {
        "index": 0,
        "id": "call_llmc0001",
        "type": "function",
        "function": {"name": TOOL_NAME, "arguments": ""},
    }
    chunks.append(_openai_chunk(model, [_openai_delta({"tool_calls": [opener]})]))
    for fragment in ARGS_FRAGMENTS:
        call = {"index": 0, "function": {"arguments": fragment}}
        chunks.append(_openai_chunk(model, [_openai_delta({"tool_calls": [call]})]))
    chunks.append(_openai_chunk(model, [_openai_delta({}, "tool_calls")]))
    if include_usage:
        # The usage arrives alone, after the finish chunk, with no choices at all.
        chunks.append(_openai_chunk(model, [], usage=_openai_usage()))
    return [_data(chunk) for chunk in chunks] + [b"data: [DONE]\n\n"]


async def _openai_chat(request: Request) -> Response:
    body = await request.json()
    model = body["model"]
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return _stream(_openai_events(model, include_usage), "text/event-stream")
    message = {
        "role": "assistant",
        "content": "".join(TEXT_PIECES),
        "refusal": None,
        "tool_calls": [
            {
                "id": "call_llmc0001",
                "type": "function",
                "function": {"name": TOOL_NAME, "arguments": ARGS_JSON},
            }
        ],
    }
    return _json(
        {
            "id": "chatcmpl-llmc0001",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_llmc",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}],
            "usage": _openai_usage(),
        }
    )


# -- Anthropic messages ------------------------------------------------------------------------


def _anthropic_event(payload: dict[str, Any]) -> bytes:
    return f"event: {payload['type']}\n".encode() + _data(payload)


def _anthropic_message(model: str, content: list[Any], stop_reason: str | None, output_tokens: int) -> Any:
    return {
        "id": "msg_llmc0001",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": INPUT_TOKENS,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        },
    }


def _anthropic_events(model: str) -> list[bytes]:
    tool_block = {"type": "tool_use", "id": "toolu_llmc0001", "name": TOOL_NAME, "input": {}}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": _anthropic_message(model, [], None, 1)},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        for piece in TEXT_PIECES
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": tool_block},
    ]
    # The first input fragment is empty, as the real API sends it.
    events += [
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": f}}
        for f in ("", *ARGS_FRAGMENTS)
    ]
    events += [
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": OUTPUT_TOKENS},
        },
        {"type": "message_stop"},
    ]
    return [_anthropic_event(event) for event in events]


async def _anthropic_messages(request: Request) -> Response:
    body = await request.json()
    model = body["model"]
    if body.get("stream"):
        return _stream(_anthropic_events(model), "text/event-stream; charset=utf-8")
    content = [
        {"type": "text", "text": "".join(TEXT_PIECES)},
        {"type": "tool_use", "id": "toolu_llmc0001", "name": TOOL_NAME, "input": TOOL_ARGS},
    ]
    return _json(_anthropic_message(model, content, "tool_use", OUTPUT_TOKENS))


# -- Gemini ------------------------------------------------------------------------------------


def _gemini_chunk(model: str, parts: list[Any], finish: bool, output_tokens: int) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    return {
        "candidates": [candidate],
        # Repeated on every chunk and cumulative, as Gemini sends it.
        "usageMetadata": {
            "promptTokenCount": INPUT_TOKENS,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": INPUT_TOKENS + output_tokens,
        },
        "modelVersion": model,
        "responseId": "llmc-gemini-0001",
    }


def _gemini_events(model: str) -> list[bytes]:
    chunks = [
        _gemini_chunk(model, [{"text": piece}], False, (index + 1) * 3)
        for index, piece in enumerate(TEXT_PIECES)
    ]
    # Function calls arrive whole, in the last chunk, with the finish reason and the final usage.
    call = {"functionCall": {"name": TOOL_NAME, "args": TOOL_ARGS}}
    chunks.append(_gemini_chunk(model, [call], True, OUTPUT_TOKENS))
    # Data-only SSE with CRLF separators and no terminator.
    return [_data(chunk, b"\r\n") for chunk in chunks]


async def _gemini(request: Request) -> Response:
    model, _, method = request.path_params["target"].partition(":")
    if method == "streamGenerateContent" and request.query_params.get("alt") == "sse":
        return _stream(_gemini_events(model), "text/event-stream")
    if method == "generateContent":
        parts = [{"text": "".join(TEXT_PIECES)}, {"functionCall": {"name": TOOL_NAME, "args": TOOL_ARGS}}]
        return _json(_gemini_chunk(model, parts, True, OUTPUT_TOKENS), "application/json; charset=UTF-8")
    error = {"code": 404, "message": f"method {method!r} is not served here", "status": "NOT_FOUND"}
    return JSONResponse({"error": error}, status_code=404, headers={"connection": "close"})


# -- Ollama ------------------------------------------------------------------------------------


def _ollama_line(model: str, index: int, message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "created_at": f"2026-01-01T00:00:00.{index:06d}Z",
        "message": {"role": "assistant", **message},
        **extra,
    }


def _ollama_done(model: str, index: int, message: dict[str, Any]) -> dict[str, Any]:
    return _ollama_line(
        model,
        index,
        message,
        done=True,
        done_reason="stop",
        total_duration=123456789,
        load_duration=1234567,
        prompt_eval_count=INPUT_TOKENS,
        prompt_eval_duration=2345678,
        eval_count=OUTPUT_TOKENS,
        eval_duration=3456789,
    )


def _ollama_tool_calls() -> list[Any]:
    # Whole calls, with the arguments as an object rather than a JSON string.
    return [{"function": {"name": TOOL_NAME, "arguments": TOOL_ARGS}}]


def _ollama_lines(model: str) -> list[bytes]:
    lines = [_ollama_line(model, i, {"content": piece}, done=False) for i, piece in enumerate(TEXT_PIECES)]
    lines.append(
        _ollama_line(model, len(lines), {"content": "", "tool_calls": _ollama_tool_calls()}, done=False)
    )
    lines.append(_ollama_done(model, len(lines), {"content": ""}))
    return [json.dumps(line, ensure_ascii=False).encode() + b"\n" for line in lines]


async def _ollama_chat(request: Request) -> Response:
    body = await request.json()
    model = body["model"]
    # Ollama streams unless told not to.
    if body.get("stream", True):
        return _stream(_ollama_lines(model), "application/x-ndjson")
    message = {"content": "".join(TEXT_PIECES), "tool_calls": _ollama_tool_calls()}
    return _json(_ollama_done(model, 0, message))


# -- the app -----------------------------------------------------------------------------------


def provider_app() -> Starlette:
    """
    One upstream for the four providers. ``app.state.requests`` lists the
    :class:`ReceivedRequest` it answered, in order.
    """
    log = _Log()

    def logged(endpoint: Any) -> Any:
        async def wrapper(request: Request) -> Response:
            raw = await request.body()
            log.requests.append(
                ReceivedRequest(
                    method=request.method,
                    path=request.url.path,
                    query=request.url.query,
                    headers=dict(request.headers),
                    body=json.loads(raw) if raw else None,
                )
            )
            response: Response = await endpoint(request)
            return response

        return wrapper

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", logged(_openai_chat), methods=["POST"]),
            Route("/v1/messages", logged(_anthropic_messages), methods=["POST"]),
            # google-genai 3.x defaults to the v1 API; v1beta is the other version Gemini serves.
            Route("/v1/models/{target:path}", logged(_gemini), methods=["POST"]),
            Route("/v1beta/models/{target:path}", logged(_gemini), methods=["POST"]),
            Route("/api/chat", logged(_ollama_chat), methods=["POST"]),
        ]
    )
    app.state.requests = log.requests
    return app
