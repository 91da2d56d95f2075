"""
A local server that speaks bedrock-runtime on the real wire: ``converse`` (JSON),
``converse-stream`` and ``invoke-with-response-stream`` (AWS eventstream frames, written one at a
time with small pauses so each arrives in its own read). It logs each request's headers.

The model id makes it fail the way Bedrock fails, so that a test can see what botocore raises
live: ``throttled`` answers 429 ``ThrottlingException``, ``invalid`` 400
``ValidationException``; on a stream,
``exception.<type>.<n>`` sends an exception frame after n events, ``badcrc.<n>`` breaks frame
n's checksum, ``truncate.<n>`` ends cleanly after n frames, ``disconnect.<n>`` drops the
connection after n frames and ``stall.<n>`` goes silent for a second after n frames. The model
``leaky`` answers with ``LEAKED_KEY`` in its text, as a model that echoes a prompt does.
``invoke`` (``invoke_model``) answers JSON with its length, or, for the model ``chunked``, in
pieces with no length.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import llmcassette
from llmcassette._eventstream import frames_data, store_frames
from llmcassette.providers.bedrock import encode_frame, exception_frame

__all__ = [
    "CONVERSE_EVENTS",
    "INVOKE_ANSWER",
    "LEAKED_KEY",
    "bedrock_app",
    "bedrock_client",
    "event_frame",
    "write_stream_cassette",
]

#: A key-shaped string the model ``leaky`` puts in its answer (scrubbing must replace it).
LEAKED_KEY = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0" * 2

_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"

CONVERSE_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " there."}}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("messageStop", {"stopReason": "end_turn"}),
    (
        "metadata",
        {"usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}, "metrics": {"latencyMs": 9}},
    ),
]


def bedrock_client(base: str | None, **config: Any) -> Any:
    """A boto3 ``bedrock-runtime`` client of ``base``: example keys, standard retries (four attempts)."""
    import boto3  # (imported by the botocore tests only: this module serves the proxy's tests too)
    import botocore.config

    # (botocore counts `max_attempts` as retries)
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=base,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 3}, **config),
    )


def event_frame(kind: str, payload: dict[str, Any]) -> bytes:
    # Bedrock writes compact JSON, and pads each event with a `p` field.
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return encode_frame(headers, json.dumps({**payload, "p": "abcdefgh"}, separators=(",", ":")).encode())


def write_stream_cassette(path: Path, *streams: list[bytes]) -> Path:
    """A cassette of ConverseStream calls answered with these frames, stored as llmcassette stores them."""
    interactions = []
    for frames in streams:
        stored = store_frames(b"".join(frames))
        assert stored is not None
        interactions.append(
            {
                "request": {
                    "method": "POST",
                    "uri": "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku/converse-stream",
                    "parsed_body": {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
                },
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {"content-type": ["application/vnd.amazon.eventstream"]},
                    "eventstream": frames_data(stored),
                    "stream": {"chunks": [len(frame) for frame in frames]},
                },
            }
        )
    llmcassette.save_cassette(
        path, llmcassette.CassetteDocument.model_validate({"interactions": interactions})
    )
    return path


def _throttled() -> Response:
    return JSONResponse(
        {"message": "Too many requests, please wait before trying again."},
        status_code=429,
        headers={"x-amzn-ErrorType": "ThrottlingException" + _NAMESPACE},
    )


def _invalid() -> Response:
    return JSONResponse(
        {"message": "The provided model identifier is invalid."},
        status_code=400,
        headers={"x-amzn-ErrorType": "ValidationException" + _NAMESPACE},
    )


#: What ``invoke`` answers: an Anthropic messages answer, as InvokeModel passes it through.
INVOKE_ANSWER = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "content": [{"type": "text", "text": "Hi there. " * 40}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 80},
}


def _frames(frames: list[bytes], model: str = "") -> Response:
    kind, _, rest = model.partition(".")
    drop_after: int | None = None
    stall_after: int | None = None
    if kind == "throttled":
        return _throttled()
    if kind == "exception":
        exception, _, count = rest.partition(".")
        frames = [*frames[: int(count)], exception_frame(exception, "Injected live.")]
    elif kind == "badcrc":
        index = int(rest) - 1
        broken = frames[index][:-4] + bytes(b ^ 0xFF for b in frames[index][-4:])
        frames = [*frames[:index], broken, *frames[index + 1 :]]
    elif kind == "truncate":
        frames = frames[: int(rest)]
    elif kind == "disconnect":
        drop_after = int(rest)
    elif kind == "stall":
        stall_after = int(rest)

    async def body() -> Any:
        for number, frame in enumerate(frames):
            if number == drop_after:
                # uvicorn closes the connection without the last chunk of the chunked body.
                raise ConnectionAbortedError("upstream dropped the stream on purpose")
            if number == stall_after:
                await asyncio.sleep(1.0)  # longer than the test client's read timeout
            yield frame
            await asyncio.sleep(0.005)

    return StreamingResponse(body(), media_type="application/vnd.amazon.eventstream")


def bedrock_app(seen: list[dict[str, str]]) -> Starlette:
    async def converse(request: Request) -> Response:
        seen.append(dict(request.headers))
        await request.body()
        if request.path_params["model"] == "throttled":
            return _throttled()
        if request.path_params["model"] == "invalid":
            return _invalid()
        answer = {
            "output": {"message": {"role": "assistant", "content": [{"text": "Hi there."}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
            "metrics": {"latencyMs": 9},
        }
        return JSONResponse(answer)

    async def converse_stream(request: Request) -> Response:
        seen.append(dict(request.headers))
        await request.body()
        events = CONVERSE_EVENTS
        if request.path_params["model"] == "leaky":
            events = [
                *events[:2],
                ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": LEAKED_KEY}}),
            ]
            events += CONVERSE_EVENTS[2:]
        frames = [event_frame(kind, payload) for kind, payload in events]
        return _frames(frames, request.path_params["model"])

    async def invoke_stream(request: Request) -> Response:
        seen.append(dict(request.headers))
        await request.body()
        pieces = [
            {"type": "message_start", "message": {"role": "assistant", "usage": {"input_tokens": 3}}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi there."}},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
            {"type": "message_stop"},
        ]
        if request.path_params["model"] == "leaky":
            leak = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": LEAKED_KEY},
            }
            pieces.insert(2, leak)
        frames = [
            event_frame(
                "chunk", {"bytes": base64.b64encode(json.dumps(p, separators=(",", ":")).encode()).decode()}
            )
            for p in pieces
        ]
        return _frames(frames, request.path_params["model"])

    async def invoke(request: Request) -> Response:
        seen.append(dict(request.headers))
        await request.body()
        if request.path_params["model"] == "invalid":
            return _invalid()
        body = json.dumps(INVOKE_ANSWER).encode()
        if request.path_params["model"] != "chunked":
            return Response(body, media_type="application/json")

        async def pieces() -> Any:
            for start in range(0, len(body), 150):
                yield body[start : start + 150]
                await asyncio.sleep(0.005)

        return StreamingResponse(pieces(), media_type="application/json")

    return Starlette(
        routes=[
            Route("/model/{model}/invoke", invoke, methods=["POST"]),
            Route("/model/{model}/converse", converse, methods=["POST"]),
            Route("/model/{model}/converse-stream", converse_stream, methods=["POST"]),
            Route("/model/{model}/invoke-with-response-stream", invoke_stream, methods=["POST"]),
        ]
    )
