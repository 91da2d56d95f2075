"""
A local OpenAI Realtime API (GA, ``/v1/realtime``) on a real ``websockets`` server, for the openai
SDK's ``client.realtime.connect()`` to talk to.

Point the SDK at it with ``AsyncOpenAI(api_key=..., websocket_base_url=upstream.ws_url + "/v1")``
(or ``base_url=upstream.http_url + "/v1"``). It speaks the event sequence of the real service:

- the handshake needs ``Authorization: Bearer ...`` and a ``model`` query parameter, else it is
  refused with 401 or 400 and OpenAI's JSON error body, as the real service refuses it;
- ``session.created`` on connect; ``session.update`` answered with ``session.updated`` (the
  session merged), or an ``error`` event when ``session.type`` is missing;
- ``conversation.item.create`` answered with ``conversation.item.created``;
- ``input_audio_buffer.append`` taken silently, ``input_audio_buffer.commit`` answered with
  ``input_audio_buffer.committed`` and the user's audio item;
- ``response.create`` answered with ``response.created``, ``rate_limits.updated``, the output item
  and content part, then per piece of :data:`EXPECTED` text either ``response.output_text.delta``
  or ``response.output_audio_transcript.delta`` and ``response.output_audio.delta`` (base64 PCM16),
  the ``.done`` events, and ``response.done`` with usage;
- anything else (unknown type, text that is not JSON) gets an ``error`` event and the session stays
  open, as on the real service.

Ids are counters (``event_0001``, ``resp_0001``, ...), so two sessions with the same client events
send the same bytes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request

from tests.ws.running import ReceivedSession, RunningUpstream, run_upstream

__all__ = ["EXPECTED", "Expected", "realtime_upstream"]

TEXT_PIECES = ("Hello", " from the", " realtime", " upstream (°C).")
# 24 kHz mono PCM16, as the service sends: each piece is 480 samples (20 ms), a recognisable ramp.
AUDIO_PIECES = tuple(bytes((i * 7 + k) % 256 for k in range(960)) for i in range(len(TEXT_PIECES)))
INPUT_TOKENS = 21
OUTPUT_TEXT_TOKENS = 9
OUTPUT_AUDIO_TOKENS = 40
EXPIRES_AT = 1767229200
RATE_LIMITS = (
    {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
    {"name": "tokens", "limit": 40000, "remaining": 39_000, "reset_seconds": 1.5},
)
PATH = "/v1/realtime"


@dataclass(frozen=True)
class Expected:
    """What a correct client reassembles from one response."""

    text: str
    audio: bytes
    input_tokens: int
    output_tokens: int


EXPECTED = Expected(
    text="".join(TEXT_PIECES),
    audio=b"".join(AUDIO_PIECES),
    input_tokens=INPUT_TOKENS,
    output_tokens=OUTPUT_TEXT_TOKENS + OUTPUT_AUDIO_TOKENS,
)


def _openai_error(message: str, kind: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"message": message, "type": kind, "param": param, "code": code}


def _gate(request: Request) -> tuple[int, dict[str, str], bytes] | None:
    url = urlsplit(request.path)
    if url.path != PATH:
        error = _openai_error(f"Invalid URL (GET {url.path})", "invalid_request_error", None)
        return 404, {}, json.dumps({"error": error}).encode()
    authorization = request.headers.get("Authorization", "")
    if not authorization.startswith("Bearer ") or authorization == "Bearer ":
        error = _openai_error(
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
        )
        return 401, {}, json.dumps({"error": error}).encode()
    if not parse_qs(url.query).get("model") and "call_id" not in parse_qs(url.query):
        error = _openai_error(
            "Missing required parameter: 'model'.", "invalid_request_error", "missing_model", "model"
        )
        return 400, {}, json.dumps({"error": error}).encode()
    return None


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = (
            _merge(merged[key], value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else value
        )
    return merged


class _Session:
    """The server side of one connection: its state and the counters its ids come from."""

    def __init__(self, connection: ServerConnection, log: ReceivedSession, model: str, gap_s: float) -> None:
        self.connection = connection
        self.log = log
        self.gap_s = gap_s
        self.counters: dict[str, int] = {}
        self.items: list[str] = []
        self.session: dict[str, Any] = {
            "type": "realtime",
            "object": "realtime.session",
            "id": "sess_0001",
            "model": model,
            "output_modalities": ["audio"],
            "instructions": "You are a helpful assistant.",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "expires_at": EXPIRES_AT,
            "include": None,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": 200,
                        "idle_timeout_ms": None,
                        "create_response": True,
                        "interrupt_response": True,
                    },
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
            },
        }

    def next_id(self, prefix: str) -> str:
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return f"{prefix}_{self.counters[prefix]:04d}"

    async def send(self, event_type: str, **fields: Any) -> None:
        event = {"type": event_type, "event_id": self.next_id("event"), **fields}
        self.log.sent.append(event)
        await self.connection.send(json.dumps(event))
        if self.gap_s:
            await asyncio.sleep(self.gap_s)

    async def error(self, message: str, code: str | None, param: str | None, event_id: str | None) -> None:
        error = _openai_error(message, "invalid_request_error", code, param)
        await self.send("error", error={**error, "event_id": event_id})

    async def run(self) -> None:
        await self.send("session.created", session=self.session)
        async for message in self.connection:
            try:
                event = json.loads(message)
            except ValueError:
                self.log.received.append(message)
                await self.error(
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
                    "sent was not valid JSON.)",
                    "invalid_json",
                    None,
                    None,
                )
                continue
            self.log.received.append(event)
            await self.answer(event if isinstance(event, dict) else {})

    async def answer(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        client_event_id = event.get("event_id")
        if kind == "session.update":
            update = event.get("session")
            if not isinstance(update, dict) or "type" not in update:
                await self.error(
                    "Missing required parameter: 'session.type'.",
                    "missing_required_parameter",
                    "session.type",
                    client_event_id,
                )
                return
            self.session = _merge(self.session, update)
            await self.send("session.updated", session=self.session)
        elif kind == "conversation.item.create":
            item = dict(event.get("item") or {})
            item.setdefault("id", self.next_id("item"))
            item.update(object="realtime.item", status="completed")
            await self.send(
                "conversation.item.created",
                previous_item_id=self.items[-1] if self.items else None,
                item=item,
            )
            self.items.append(item["id"])
        elif kind == "input_audio_buffer.append":
            pass
        elif kind == "input_audio_buffer.commit":
            item_id = self.next_id("item")
            previous = self.items[-1] if self.items else None
            await self.send("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
            item = {
                "id": item_id,
                "object": "realtime.item",
                "type": "message",
                "status": "completed",
                "role": "user",
                "content": [{"type": "input_audio", "transcript": None}],
            }
            await self.send("conversation.item.created", previous_item_id=previous, item=item)
            self.items.append(item_id)
        elif kind == "response.create":
            await self.respond(event.get("response") or {})
        else:
            await self.error(
                f"Invalid value: '{kind}'. Supported values are: 'session.update', "
                "'conversation.item.create', 'input_audio_buffer.append', 'input_audio_buffer.commit', "
                "and 'response.create'.",
                "invalid_value",
                "type",
                client_event_id,
            )

    async def respond(self, options: dict[str, Any]) -> None:
        modalities = options.get("output_modalities") or self.session["output_modalities"]
        audio = "audio" in modalities
        response_id, item_id = self.next_id("resp"), self.next_id("item")
        output_audio = self.session["audio"]["output"]
        response: dict[str, Any] = {
            "object": "realtime.response",
            "id": response_id,
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": "conv_0001",
            "output_modalities": modalities,
            "max_output_tokens": "inf",
            "audio": {"output": {"format": output_audio["format"], "voice": output_audio["voice"]}},
            "usage": None,
            "metadata": None,
        }
        await self.send("response.created", response=response)
        await self.send("rate_limits.updated", rate_limits=list(RATE_LIMITS))
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        await self.send("response.output_item.added", response_id=response_id, output_index=0, item=item)
        where = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        text = EXPECTED.text
        part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        await self.send("response.content_part.added", **where, part=part)
        for piece, sound in zip(TEXT_PIECES, AUDIO_PIECES, strict=True):
            if audio:
                await self.send("response.output_audio_transcript.delta", **where, delta=piece)
                await self.send(
                    "response.output_audio.delta", **where, delta=base64.b64encode(sound).decode()
                )
            else:
                await self.send("response.output_text.delta", **where, delta=piece)
        if audio:
            await self.send("response.output_audio.done", **where)
            await self.send("response.output_audio_transcript.done", **where, transcript=text)
            part, content = (
                {"type": "audio", "transcript": text},
                {"type": "output_audio", "transcript": text},
            )
        else:
            await self.send("response.output_text.done", **where, text=text)
            part, content = {"type": "text", "text": text}, {"type": "output_text", "text": text}
        await self.send("response.content_part.done", **where, part=part)
        item = {**item, "status": "completed", "content": [content]}
        await self.send("response.output_item.done", response_id=response_id, output_index=0, item=item)
        self.items.append(item_id)
        audio_tokens = OUTPUT_AUDIO_TOKENS if audio else 0
        text_tokens = EXPECTED.output_tokens - audio_tokens
        usage = {
            "total_tokens": INPUT_TOKENS + text_tokens + audio_tokens,
            "input_tokens": INPUT_TOKENS,
            "output_tokens": text_tokens + audio_tokens,
            "input_token_details": {
                "text_tokens": INPUT_TOKENS,
                "audio_tokens": 0,
                "image_tokens": 0,
                "cached_tokens": 0,
            },
            "output_token_details": {"text_tokens": text_tokens, "audio_tokens": audio_tokens},
        }
        await self.send(
            "response.done", response={**response, "status": "completed", "output": [item], "usage": usage}
        )


@contextlib.contextmanager
def realtime_upstream(*, gap_ms: float = 0.0, tls: ssl.SSLContext | None = None) -> Iterator[RunningUpstream]:
    """Run the Realtime upstream on loopback while the block runs; ``gap_ms`` pauses after each event."""

    async def handle(connection: ServerConnection, log: ReceivedSession) -> None:
        query = parse_qs(urlsplit(log.path).query)
        await _Session(connection, log, query.get("model", [""])[0], gap_ms / 1000).run()

    with run_upstream(handle, gate=_gate, tls=tls) as upstream:
        yield upstream
