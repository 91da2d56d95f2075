"""
Regenerate the demo's bundled cassette by recording the demo conversation, for real, against a
scripted OpenAI-compatible server on 127.0.0.1::

    python -m llmcassette._demo.make_cassette [OUTPUT]

The server streams the way hosted providers and the proxies in front of them do: a pause before
the response head, a longer one before the first token, several events in one network chunk, an
event cut in two, and the finish reason, usage and ``[DONE]`` arriving together at the end. What
the cassette holds is what the client received over the socket, chunk by chunk, with its timing.
Nothing else is sent anywhere: the server listens on loopback only.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .._api import use_cassette
from . import CASSETTE
from .client import DEFAULT_BASE_URL, ChatClient, ChatResult
from .scenario import converse

__all__ = ["make_cassette", "upstream_app"]

_CREATED = 1764000000
_FINGERPRINT = "fp_demo"
_HEAD_DELAY_S = 0.12  # time to the response head
_FIRST_TOKEN_MS = 180  # time from the head to the first token


def _sse(stream_id: str, model: str, choices: list[dict[str, Any]], usage: Any = None) -> bytes:
    chunk = {
        "id": stream_id,
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": model,
        "system_fingerprint": _FINGERPRINT,
        "choices": choices,
        "usage": usage,
    }
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def _delta(delta: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
    return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]


def _tool_arguments(fragment: str) -> dict[str, Any]:
    return {"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}


def _stream_pieces(model: str) -> list[tuple[int, bytes]]:
    """The streamed reply as (pause in ms, bytes) pieces, each written to the socket at once."""
    sid = "chatcmpl-demo7f3a9c"
    words = ["Let me", " check", " the", " current", " weather", " in Paris."]
    first_call = {
        "tool_calls": [
            {
                "index": 0,
                "id": "call_Qm2xR4vTz8",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ]
    }
    usage = {"prompt_tokens": 87, "completion_tokens": 28, "total_tokens": 115}
    e = [
        _sse(sid, model, _delta({"role": "assistant", "content": ""})),
        *(_sse(sid, model, _delta({"content": word})) for word in words),
        _sse(sid, model, _delta(first_call)),
        *(
            _sse(sid, model, _delta(_tool_arguments(part)))
            for part in ['{"city"', ': "Paris"', ', "unit"', ': "celsius"}']
        ),
        _sse(sid, model, _delta({}, "tool_calls")),
        _sse(sid, model, [], usage),
        b"data: [DONE]\n\n",
    ]
    cut = len(e[6]) // 2
    return [
        (_FIRST_TOKEN_MS, e[0] + e[1]),
        (40, e[2]),
        (35, e[3] + e[4]),
        (45, e[5]),
        (30, e[6][:cut]),
        (25, e[6][cut:]),
        (60, e[7]),
        (25, e[8]),
        (25, e[9] + e[10]),
        (30, e[11]),
        (35, e[12] + e[13] + e[14]),
    ]


def _completion(payload: dict[str, Any]) -> dict[str, Any]:
    # The answer follows from the tool result in the request, as a model's would.
    weather = {}
    for message in payload.get("messages", []):
        if message.get("role") == "tool":
            weather = json.loads(message["content"])
    text = (
        f"It's {weather.get('temperature')} degrees {str(weather.get('unit', '')).capitalize()} "
        f"and {weather.get('conditions')} in {weather.get('city')} right now."
    )
    return {
        "id": "chatcmpl-demo81b2e4",
        "object": "chat.completion",
        "created": _CREATED + 1,
        "model": payload.get("model", ""),
        "system_fingerprint": _FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 134, "completion_tokens": 16, "total_tokens": 150},
    }


async def _chat_completions(request: Request) -> Response:
    payload = await request.json()
    await asyncio.sleep(_HEAD_DELAY_S)
    if not payload.get("stream"):
        return JSONResponse(_completion(payload), headers={"x-request-id": "req_demo_json"})
    pieces = _stream_pieces(str(payload.get("model", "")))

    async def body() -> AsyncIterator[bytes]:
        for pause_ms, piece in pieces:
            await asyncio.sleep(pause_ms / 1000)
            yield piece

    headers = {"cache-control": "no-cache", "x-request-id": "req_demo_stream"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


def upstream_app() -> Starlette:
    """The scripted OpenAI-compatible server: ``POST /v1/chat/completions``, streamed or not."""
    return Starlette(routes=[Route("/v1/chat/completions", _chat_completions, methods=["POST"])])


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a thread cannot own signal handlers
        pass


@contextmanager
def _serving(base_url: str) -> Iterator[None]:
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    config = uvicorn.Config(upstream_app(), host=host, port=parts.port or 80, log_level="warning")
    server = _Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit(f"llmcassette: the demo server could not listen on {host}:{parts.port}.")
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def _run(path: Path, base_url: str, record_mode: str) -> list[ChatResult]:
    # The key only shows that scrubbing works: the cassette stores "Bearer REDACTED".
    async with (
        use_cassette(path, record_mode=record_mode),
        ChatClient(base_url, api_key="demo-key") as client,
    ):
        return await converse(client)


def make_cassette(path: Path = CASSETTE, *, base_url: str = DEFAULT_BASE_URL) -> list[ChatResult]:
    """Record the demo conversation into ``path`` (replacing it), then check that it replays."""
    host = urlsplit(base_url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the demo server only runs on loopback, not {host!r}")
    path.unlink(missing_ok=True)
    with _serving(base_url):
        live = asyncio.run(_run(path, base_url, "once"))
    replayed = asyncio.run(_run(path, base_url, "none"))
    if replayed != live:
        raise AssertionError("the recorded cassette does not replay what the live server sent")
    return live


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else CASSETTE
    turns = make_cassette(path)
    print(f"Recorded {len(turns)} replies to {path}; replaying it gives the same results.")


if __name__ == "__main__":
    main(sys.argv[1:])
