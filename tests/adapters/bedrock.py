"""
A local server that speaks bedrock-runtime on the real wire: ``converse`` (JSON),
``converse-stream`` and ``invoke-with-response-stream`` (AWS eventstream frames, written one at a
time with small pauses so each arrives in its own read). It logs each request's headers.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from llmcassette.providers.bedrock import encode_frame

__all__ = ["CONVERSE_EVENTS", "bedrock_app", "event_frame"]

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


def event_frame(kind: str, payload: dict[str, Any]) -> bytes:
    # Bedrock writes compact JSON, and pads each event with a `p` field.
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return encode_frame(headers, json.dumps({**payload, "p": "abcdefgh"}, separators=(",", ":")).encode())


def _frames(frames: list[bytes]) -> StreamingResponse:
    async def body() -> Any:
        for frame in frames:
            yield frame
            await asyncio.sleep(0.005)

    return StreamingResponse(body(), media_type="application/vnd.amazon.eventstream")


def bedrock_app(seen: list[dict[str, str]]) -> Starlette:
    async def converse(request: Request) -> Response:
        seen.append(dict(request.headers))
        await request.body()
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
        return _frames([event_frame(kind, payload) for kind, payload in CONVERSE_EVENTS])

    async def invoke_stream(request: Request) -> Response:
        seen.append(dict(request.headers))
        await request.body()
        pieces = [
            {"type": "message_start", "message": {"role": "assistant", "usage": {"input_tokens": 3}}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi there."}},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
            {"type": "message_stop"},
        ]
        frames = [
            event_frame(
                "chunk", {"bytes": base64.b64encode(json.dumps(p, separators=(",", ":")).encode()).decode()}
            )
            for p in pieces
        ]
        return _frames(frames)

    return Starlette(
        routes=[
            Route("/model/{model}/converse", converse, methods=["POST"]),
            Route("/model/{model}/converse-stream", converse_stream, methods=["POST"]),
            Route("/model/{model}/invoke-with-response-stream", invoke_stream, methods=["POST"]),
        ]
    )
