"""
A local upstream whose wire format changes between two "releases", for drift runs to notice.

Version 1 is what the cassettes were recorded from. Version 2 changes one thing per provider
format, each a kind of drift a real provider has shipped:

- OpenAI chat (stream): a new field in every chunk, and the ``[DONE]`` terminator vanished;
- OpenAI chat (JSON): a rate-limit header renamed;
- OpenAI Responses: a new event type;
- Anthropic: a new event type, and a changed error body;
- Gemini: a new field in stream chunks;
- Ollama: a new field in NDJSON lines.

It logs every request's headers and body, counts requests in flight, and can answer the first
requests with 429 and ``retry-after-ms``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["Seen", "Upstream"]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def _sse(payloads: list[Any], *, events: list[str] | None = None, done: bool = False) -> list[bytes]:
    out = []
    for i, payload in enumerate(payloads):
        head = f"event: {events[i]}\n" if events else ""
        out.append(f"{head}data: {json.dumps(payload)}\n\n".encode())
    if done:
        out.append(b"data: [DONE]\n\n")
    return out


@dataclass
class Upstream:
    version: int = 1
    seen: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    #: Answer this many requests with 429 before answering normally.
    busy: int = 0
    #: Hold each answer this long, so that concurrency can be observed.
    hold_s: float = 0.0

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1beta/models/{rest:path}", self._gemini, methods=["POST"]),
                Route("/api/chat", self._ollama, methods=["POST"]),
            ]
        )

    async def _enter(self, request: Request) -> Any:
        body = await request.json()
        self.seen.append(Seen(request.method, request.url.path, dict(request.headers), body))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(self.hold_s)
        self.in_flight -= 1
        return body

    def _busy(self) -> Response | None:
        if self.busy <= 0:
            return None
        self.busy -= 1
        return JSONResponse(
            {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
            status_code=429,
            headers={"retry-after-ms": "20"},
        )

    @staticmethod
    def _stream(pieces: list[bytes], media_type: str = "text/event-stream") -> StreamingResponse:
        async def body() -> Any:
            for piece in pieces:
                yield piece
                await asyncio.sleep(0.002)

        return StreamingResponse(body(), media_type=media_type)

    async def _chat(self, request: Request) -> Response:
        body = await self._enter(request)
        if (busy := self._busy()) is not None:
            return busy
        if not body.get("stream"):
            header = "x-ratelimit-remaining-requests" if self.version == 1 else "x-ratelimit-remaining"
            answer = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            }
            return JSONResponse(answer, headers={header: "99"})
        chunks = []
        for text, finish in (("Hi", None), (".", "stop")):
            chunk: dict[str, Any] = {
                "id": "chatcmpl-2",
                "object": "chat.completion.chunk",
                "model": body["model"],
                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
            }
            if self.version == 2:
                chunk["obfuscation"] = "x1y2"
            chunks.append(chunk)
        return self._stream(_sse(chunks, done=self.version == 1))

    async def _responses(self, request: Request) -> Response:
        await self._enter(request)
        types = ["response.created", "response.output_text.delta", "response.completed"]
        if self.version == 2:
            types.insert(2, "response.output_text.annotation.added")
        payloads = [{"type": kind, "sequence_number": i} for i, kind in enumerate(types)]
        return self._stream(_sse(payloads, events=types))

    async def _messages(self, request: Request) -> Response:
        body = await self._enter(request)
        if body.get("model") == "no-such-model":
            error: dict[str, Any] = {
                "type": "error",
                "error": {"type": "not_found_error", "message": "model"},
            }
            if self.version == 2:
                error["request_id"] = "req_1"
            return JSONResponse(error, status_code=404)
        types = ["message_start", "content_block_start", "content_block_delta", "content_block_stop"]
        if self.version == 2:
            types.insert(3, "content_block_signal")
        types += ["message_delta", "message_stop"]
        payloads = [{"type": kind} for kind in types]
        return self._stream(_sse(payloads, events=types))

    async def _gemini(self, request: Request) -> Response:
        await self._enter(request)
        chunks = []
        for text, finish in (("Hi", None), (".", "STOP")):
            candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
            if finish:
                candidate["finishReason"] = finish
            chunk: dict[str, Any] = {"candidates": [candidate]}
            if self.version == 2:
                chunk["responseId"] = "r-1"
            chunks.append(chunk)
        return self._stream([f"data: {json.dumps(c)}\r\n\r\n".encode() for c in chunks])

    async def _ollama(self, request: Request) -> Response:
        body = await self._enter(request)
        lines = []
        for text, done in (("Hi", False), (".", True)):
            line: dict[str, Any] = {
                "model": body["model"],
                "message": {"role": "assistant", "content": text},
                "done": done,
            }
            if self.version == 2:
                line["thinking"] = ""
            lines.append((json.dumps(line) + "\n").encode())
        return self._stream(lines, media_type="application/x-ndjson")
