"""
Real HTTP servers on 127.0.0.1 for tests: uvicorn in a thread, started and stopped by the test.

``serve(app)`` runs any ASGI app; ``stream_app()`` is an upstream whose chunking and timing the
test controls through the query string, so that what a client receives can be compared with what
the server sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a thread cannot own signal handlers
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(app: object) -> Iterator[str]:
    """Run ``app`` on a free loopback port for the duration of the block; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = _Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def sse_events(n: int) -> list[bytes]:
    """``n`` OpenAI-style SSE events, then the ``[DONE]`` terminator."""
    events = []
    for i in range(n):
        payload = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}],
        }
        events.append(b"data: " + json.dumps(payload).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def ndjson_lines(n: int) -> list[bytes]:
    """``n`` Ollama-style NDJSON lines, the last one with ``done: true``."""
    lines = []
    for i in range(n):
        done = i == n - 1
        lines.append(
            json.dumps(
                {"model": "m", "message": {"role": "assistant", "content": f"w{i} "}, "done": done}
            ).encode()
            + b"\n"
        )
    return lines


def _pieces(request: Request, kind: str) -> list[bytes]:
    n = int(request.query_params.get("n", "5"))
    events = sse_events(n) if kind == "sse" else ndjson_lines(n)
    split = request.query_params.get("split")
    if split == "pairs":  # two events per chunk
        events = [b"".join(events[i : i + 2]) for i in range(0, len(events), 2)]
    elif split and split.isdigit():  # fixed-size chunks, cutting through events
        body = b"".join(events)
        size = int(split)
        events = [body[i : i + size] for i in range(0, len(body), size)]
    return events


def _streaming(kind: str, media_type: str):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        pieces = _pieces(request, kind)
        gap_s = float(request.query_params.get("gap_ms", "20")) / 1000
        fail_after = request.query_params.get("fail_after")
        await request.body()

        async def body() -> AsyncIterator[bytes]:
            for index, piece in enumerate(pieces):
                if fail_after is not None and index == int(fail_after):
                    raise ConnectionAbortedError("upstream dropped the stream on purpose")
                if index:
                    await asyncio.sleep(gap_s)
                yield piece

        return StreamingResponse(body(), media_type=media_type, headers={"connection": "close"})

    return endpoint


async def _json(request: Request) -> Response:
    payload = await request.json() if await request.body() else {}
    return JSONResponse({"echo": payload, "path": request.url.path}, headers={"connection": "close"})


def stream_app() -> Starlette:
    """An upstream with controlled chunking: ``/sse`` and ``/ndjson`` take ``n``, ``gap_ms``,
    ``split`` (``pairs`` or a byte size) and ``fail_after``; ``/json`` echoes the request body."""
    return Starlette(
        routes=[
            Route("/sse", _streaming("sse", "text/event-stream"), methods=["GET", "POST"]),
            Route("/ndjson", _streaming("ndjson", "application/x-ndjson"), methods=["GET", "POST"]),
            Route("/json", _json, methods=["GET", "POST"]),
        ]
    )
