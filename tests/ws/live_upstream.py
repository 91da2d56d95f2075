"""
A local Gemini Live API (``BidiGenerateContent``) on a real ``websockets`` server, for google-genai's
``client.aio.live.connect()`` to talk to.

The SDK always dials ``wss://`` when it has an API key, so the upstream serves TLS with a
certificate for 127.0.0.1 (:func:`tests.ws.running.tls_contexts`); give the SDK the client context:
``genai.Client(api_key=..., http_options=HttpOptions(base_url=upstream.http_url,
async_client_args={"ssl": client_tls}))``. It speaks the message sequence of the real service:

- the handshake path is ``/ws/google.ai.generativelanguage.<version>.GenerativeService.
  BidiGenerateContent``; another path is refused with 404; a missing ``x-goog-api-key`` gets the
  session closed with 1008, as the service closes it;
- field names are taken in ``lowerCamelCase`` or ``snake_case``, as by the service's proto3 JSON
  parser (the SDK sends ``client_content``, ``realtime_input``);
- the first message must be ``setup``, answered with ``setupComplete``;
- ``clientContent`` with ``turnComplete`` and ``realtimeInput`` with ``text`` or ``audioStreamEnd``
  are answered with one model turn: per piece of :data:`EXPECTED` text, ``serverContent.modelTurn``
  with a ``text`` part (``TEXT`` modality) or an ``inlineData`` PCM part (``AUDIO``, with an
  ``outputTranscription`` when the setup asked for it), then ``generationComplete``, then
  ``turnComplete`` with ``usageMetadata``; ``realtimeInput`` audio chunks are taken silently;
- after ``go_away_after_turns`` turns a ``goAway`` message;
- a message the service does not know closes the session with 1007 and Google's reason text: the
  Live API has no error event, it reports bad input in the close frame.

Like the service, it sends every message as a binary frame holding JSON.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request

from tests.ws.running import ReceivedSession, RunningUpstream, run_upstream

__all__ = ["EXPECTED", "Expected", "live_upstream"]

TEXT_PIECES = ("Hello", " from the", " live", " upstream (°C).")
# 24 kHz mono PCM16, as the service sends it.
AUDIO_MIME = "audio/pcm;rate=24000"
AUDIO_PIECES = tuple(bytes((i * 11 + k) % 256 for k in range(960)) for i in range(len(TEXT_PIECES)))
PROMPT_TOKENS = 12
RESPONSE_TOKENS = 34
PATH = re.compile(
    r"/ws/google\.ai\.generativelanguage\.v\w+\.GenerativeService\.BidiGenerateContent(Constrained)?"
)
INVALID_ARGUMENT = "Request contains an invalid argument."


@dataclass(frozen=True)
class Expected:
    """What a correct client reassembles from one model turn."""

    text: str
    audio: bytes
    prompt_tokens: int
    response_tokens: int


EXPECTED = Expected(
    text="".join(TEXT_PIECES),
    audio=b"".join(AUDIO_PIECES),
    prompt_tokens=PROMPT_TOKENS,
    response_tokens=RESPONSE_TOKENS,
)


def _camel(value: Any) -> Any:
    """Proto3 JSON field names: the service takes ``turn_complete`` as well as ``turnComplete``."""
    if isinstance(value, dict):
        return {re.sub(r"_([a-z])", lambda m: m[1].upper(), key): _camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


def _gate(request: Request) -> tuple[int, dict[str, str], bytes] | None:
    path = request.path.partition("?")[0]
    if PATH.fullmatch(path):
        return None
    error = {"error": {"code": 404, "message": f"Method not found: {path}", "status": "NOT_FOUND"}}
    return 404, {}, json.dumps(error).encode()


class _Session:
    """The server side of one connection."""

    def __init__(
        self,
        connection: ServerConnection,
        log: ReceivedSession,
        gap_s: float,
        go_away_after_turns: int | None,
    ) -> None:
        self.connection = connection
        self.log = log
        self.gap_s = gap_s
        self.go_away_after_turns = go_away_after_turns
        self.turns = 0
        self.setup: dict[str, Any] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        self.log.sent.append(message)
        await self.connection.send(json.dumps(message).encode())
        if self.gap_s:
            await asyncio.sleep(self.gap_s)

    async def refuse(self, reason: str, code: int = 1007) -> None:
        # A close frame holds at most 123 bytes of reason; the service cuts longer ones.
        await self.connection.close(code, reason.encode()[:123].decode(errors="ignore"))

    async def run(self) -> None:
        if "x-goog-api-key" not in self.log.headers and "key=" not in self.log.path:
            await self.refuse(
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
                1008,
            )
            return
        async for raw in self.connection:
            try:
                message = json.loads(raw)
            except ValueError:
                self.log.received.append(raw)
                await self.refuse(f"Invalid JSON payload received. {INVALID_ARGUMENT}")
                return
            self.log.received.append(message)
            if not isinstance(message, dict) or len(message) != 1:
                await self.refuse(INVALID_ARGUMENT)
                return
            if not await self.answer(*next(iter(_camel(message).items()))):
                return

    async def answer(self, kind: str, body: Any) -> bool:
        """Answer one client message; False when the session was closed for it."""
        if self.setup is None and kind != "setup":
            await self.refuse(INVALID_ARGUMENT)
            return False
        if kind == "setup":
            self.setup = body if isinstance(body, dict) else {}
            await self.send({"setupComplete": {}})
        elif kind == "clientContent":
            if body.get("turnComplete"):
                await self.model_turn()
        elif kind == "realtimeInput":
            if "text" in body or body.get("audioStreamEnd"):
                await self.model_turn()
        elif kind == "toolResponse":
            await self.model_turn()
        else:
            await self.refuse(f'Invalid JSON payload received. Unknown name "{kind}": Cannot find field.')
            return False
        return True

    async def model_turn(self) -> None:
        assert self.setup is not None
        config = self.setup.get("generationConfig") or {}
        modalities = config.get("responseModalities") or ["AUDIO"]
        audio = "AUDIO" in modalities
        for piece, sound in zip(TEXT_PIECES, AUDIO_PIECES, strict=True):
            if audio:
                blob = {"mimeType": AUDIO_MIME, "data": base64.b64encode(sound).decode()}
                await self.send({"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}})
                if "outputAudioTranscription" in self.setup:
                    await self.send({"serverContent": {"outputTranscription": {"text": piece}}})
            else:
                await self.send({"serverContent": {"modelTurn": {"parts": [{"text": piece}]}}})
        await self.send({"serverContent": {"generationComplete": True}})
        modality = "AUDIO" if audio else "TEXT"
        usage = {
            "promptTokenCount": PROMPT_TOKENS,
            "responseTokenCount": RESPONSE_TOKENS,
            "totalTokenCount": PROMPT_TOKENS + RESPONSE_TOKENS,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": PROMPT_TOKENS}],
            "responseTokensDetails": [{"modality": modality, "tokenCount": RESPONSE_TOKENS}],
        }
        await self.send({"serverContent": {"turnComplete": True}, "usageMetadata": usage})
        self.turns += 1
        if self.go_away_after_turns is not None and self.turns >= self.go_away_after_turns:
            await self.send({"goAway": {"timeLeft": "50s"}})


@contextlib.contextmanager
def live_upstream(
    *, tls: ssl.SSLContext | None, gap_ms: float = 0.0, go_away_after_turns: int | None = None
) -> Iterator[RunningUpstream]:
    """Run the Live upstream on loopback while the block runs (``tls`` from ``tls_contexts()``)."""

    async def handle(connection: ServerConnection, log: ReceivedSession) -> None:
        await _Session(connection, log, gap_ms / 1000, go_away_after_turns).run()

    with run_upstream(handle, gate=_gate, tls=tls) as upstream:
        yield upstream
