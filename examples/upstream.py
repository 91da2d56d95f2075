"""
A small OpenAI-compatible upstream for the examples' record scripts.

The record scripts need something real to record: a starlette app served by uvicorn on 127.0.0.1,
answering ``POST /v1/chat/completions`` in OpenAI's shapes, as JSON or, when the request says
``"stream": true``, as server-sent events that arrive one event per chunk. Only ``record.py``
scripts use it; the tests replay the cassettes and never start a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["chat_app", "completion", "serve", "sse_events"]

# A fixed creation time and id keep re-recorded cassettes identical when nothing else changed.
_CREATED = 1_750_000_000
_ID = "chatcmpl-example"
# A pause between events, so that each event is recorded as a chunk of its own, as a real
# provider sends them.
_GAP_S = 0.01


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # only the main thread may own signal handlers
        pass


@contextlib.contextmanager
def serve(app: Starlette, *, port: int) -> Iterator[str]:
    """
    Serve ``app`` on ``127.0.0.1:port`` in a background thread; yields the base URL.

    The port is fixed rather than free: the recorded URLs must be the ones the tests replay.
    """
    server = _ThreadServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the upstream did not start on 127.0.0.1:{port} (is the port in use?)")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def completion(text: str, *, model: str) -> dict[str, Any]:
    """A non-streamed chat completion whose answer is ``text``."""
    words = len(text.split())  # a stand-in for a token count
    return {
        "id": _ID,
        "object": "chat.completion",
        "created": _CREATED,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": words, "total_tokens": 12 + words},
    }


def _event(payload: dict[str, Any]) -> bytes:
    # Providers send UTF-8 as it is (no \\u escapes), which is what makes byte-level rechunking
    # able to cut through a character.
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


def sse_events(deltas: Sequence[str], *, model: str) -> list[bytes]:
    """
    A streamed chat completion, event by event: the role chunk, one chunk per text delta, the
    finish chunk, then the ``[DONE]`` terminator.
    """

    def chunk(delta: dict[str, str], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return _event(
            {
                "id": _ID,
                "object": "chat.completion.chunk",
                "created": _CREATED,
                "model": model,
                "choices": [choice],
            }
        )

    return [
        chunk({"role": "assistant", "content": ""}),
        *(chunk({"content": delta}) for delta in deltas),
        chunk({}, "stop"),
        b"data: [DONE]\n\n",
    ]


def chat_app(deltas: Sequence[str]) -> Starlette:
    """An upstream whose every chat completion answers the text ``"".join(deltas)``."""

    async def chat(request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model", "unknown"))
        if not body.get("stream"):
            return JSONResponse(completion("".join(deltas), model=model))
        events = sse_events(deltas, model=model)

        async def stream() -> AsyncIterator[bytes]:
            for index, event in enumerate(events):
                if index:
                    await asyncio.sleep(_GAP_S)
                yield event

        return StreamingResponse(stream(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
