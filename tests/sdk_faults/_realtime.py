"""
The realtime clients and what they must see under each WebSocket fault, shared by the in-process
(``test_realtime.py``) and the ``serve`` (``test_realtime_serve.py``) runs of the fault set.

The clients do what an application does: (re)start their conversation on every
``session.created`` (OpenAI) or connection (Gemini), so a client that reconnects after a
recoverable close replays the whole exchange and gets the recording.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openai
import websockets
from google import genai
from google.genai import errors as genai_errors, types
from openai.types.websocket_reconnection import ReconnectingEvent, ReconnectingOverrides

from tests.ws.live_upstream import EXPECTED as LIVE_EXPECTED
from tests.ws.realtime_upstream import EXPECTED as REALTIME_EXPECTED

# A forever stall is seen as the client's own wait running out: this is that wait. Other cases
# wait longer, only so that a hang fails the test instead of holding it.
STALL_WAIT_S = 1.5
HANG_WAIT_S = 60.0
USER_ITEM: Any = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_text", "text": "Say hello."}],
}


@dataclass
class Outcome:
    """What a realtime client got from one conversation."""

    events: list[str] = field(default_factory=list)  # server event types (OpenAI) or message kinds (Gemini)
    text: str = ""
    audio: bytes = b""
    error: BaseException | None = None
    reconnects: list[int] = field(default_factory=list)  # the close codes the SDK reconnected after
    error_events: list[Any] = field(default_factory=list)
    rate_limits: list[Any] = field(default_factory=list)


# -- the clients ------------------------------------------------------------------------------------


async def openai_conversation(
    ws_url: str,
    *,
    reconnect: bool,
    connects: int = 2,
    wait_s: float = HANG_WAIT_S,
    headers: dict[str, str] | None = None,
) -> Outcome:
    """One spoken answer from the Realtime API, reconnecting on recoverable closes when asked;
    ``connects`` handshakes at most (a refused handshake is tried again, as an app retries it)."""
    outcome = Outcome()

    def on_reconnecting(event: ReconnectingEvent) -> ReconnectingOverrides | None:
        outcome.reconnects.append(event.close_code)
        return None

    client = openai.AsyncOpenAI(api_key="sk-test", websocket_base_url=ws_url + "/v1")
    # A websockets client that stops reading with messages unread misses the server's close frame
    # and waits its close timeout (10 s by default) to close, against the real service too: a
    # client that gives up mid-answer (a malformed message) closes sooner with a shorter one.
    options: dict[str, Any] = {"websocket_connection_options": {"close_timeout": 0.2}}
    if reconnect:
        options.update(on_reconnecting=on_reconnecting, initial_delay=0.001)
    for attempt in range(connects):
        try:
            connect = client.realtime.connect(model="gpt-realtime", extra_headers=headers or {}, **options)
            async with connect as connection:
                async with asyncio.timeout(wait_s):
                    await _openai_events(connection, outcome)
                    return outcome
        except websockets.InvalidStatus as exc:
            outcome.error = exc
            if attempt + 1 == connects:
                return outcome
        except (Exception, TimeoutError) as exc:  # what the SDK raised is the outcome
            outcome.error = exc
            return outcome
    return outcome


async def _openai_events(connection: Any, outcome: Outcome) -> None:
    async for event in connection:
        outcome.events.append(event.type)
        if event.type == "session.created":  # a new session (after a reconnect too): start over
            outcome.text, outcome.audio = "", b""
            await connection.session.update(session={"type": "realtime", "output_modalities": ["audio"]})
            await connection.conversation.item.create(item=USER_ITEM)
            await connection.response.create()
        elif event.type == "response.output_audio_transcript.delta":
            outcome.text += event.delta
        elif event.type == "response.output_audio.delta":
            outcome.audio += base64.b64decode(event.delta)
        elif event.type == "error":
            outcome.error_events.append(event.error)
        elif event.type == "rate_limits.updated":
            outcome.rate_limits.append(
                {limit.name: (limit.remaining, limit.reset_seconds) for limit in event.rate_limits}
            )
        elif event.type == "response.done":
            return


async def live_conversation(
    base_url: str,
    client_tls: ssl.SSLContext,
    *,
    connects: int = 2,
    wait_s: float = HANG_WAIT_S,
    headers: dict[str, str] | None = None,
) -> Outcome:
    """One spoken answer from the Live API; a refused handshake is tried again (``connects`` in all).
    ``headers`` go with every handshake (the SDK's ``http_options.headers``)."""
    outcome = Outcome()
    options = types.HttpOptions(base_url=base_url, headers=headers, async_client_args={"ssl": client_tls})
    client = genai.Client(api_key="test-key", http_options=options)
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        output_audio_transcription=types.AudioTranscriptionConfig(),
    )
    for attempt in range(connects):
        try:
            async with asyncio.timeout(wait_s):
                async with client.aio.live.connect(model="gemini-live-2.5-flash", config=config) as session:
                    await session.send_client_content(
                        turns=types.Content(role="user", parts=[types.Part(text="Hi")])
                    )
                    async for message in session.receive():
                        content = message.server_content
                        outcome.events.append(next(iter(message.model_dump(exclude_none=True)), ""))
                        outcome.audio += message.data or b""
                        if content and content.output_transcription:
                            outcome.text += content.output_transcription.text or ""
                    return outcome
        except websockets.InvalidStatus as exc:
            outcome.error = exc
            if attempt + 1 == connects:
                return outcome
        except (Exception, TimeoutError) as exc:
            outcome.error = exc
            return outcome
    return outcome


# -- what each SDK does under each fault ------------------------------------------------------------

Check = Callable[[Outcome], None]


def answered(outcome: Outcome, expected: Any) -> None:
    assert outcome.error is None, repr(outcome.error)
    assert (outcome.text, outcome.audio) == (expected.text, expected.audio)


def refused(status: int, error: dict[str, Any], expected: Any = None) -> Check:
    # The handshake's HTTP answer, with the provider's error body; the SDKs raise websockets'
    # InvalidStatus as it is. A refusal does not use up the recording: with ``expected``, the
    # client's second handshake gets it.
    def check(outcome: Outcome) -> None:
        assert isinstance(outcome.error, websockets.InvalidStatus)
        assert outcome.error.response.status_code == status
        body = json.loads(outcome.error.response.body)["error"]
        assert {key: body[key] for key in error} == error
        if expected is not None:
            assert (outcome.text, outcome.audio) == (expected.text, expected.audio)
        else:
            assert (outcome.text, outcome.audio) == ("", b"")

    return check


def openai_closed(code: int | None) -> Check:
    def check(outcome: Outcome) -> None:
        assert isinstance(outcome.error, websockets.ConnectionClosedError), repr(outcome.error)
        assert (outcome.error.rcvd.code if outcome.error.rcvd else None) == code
        assert outcome.reconnects == []

    return check


def openai_reconnected(code: int) -> Check:
    # The SDK's policy finds the code recoverable, reconnects, and the new session replays.
    def check(outcome: Outcome) -> None:
        answered(outcome, REALTIME_EXPECTED)
        assert outcome.reconnects == [code]
        assert outcome.events.count("session.created") == 2

    return check


def _openai_error_event(outcome: Outcome) -> None:
    answered(outcome, REALTIME_EXPECTED)
    (error,) = outcome.error_events
    assert error.type == "server_error" and error.message.startswith("The server had an error")


def _openai_rate_limits(outcome: Outcome) -> None:
    answered(outcome, REALTIME_EXPECTED)
    # The recorded event, then the fault's: nothing left, 20 s to wait.
    assert outcome.rate_limits[-1] == {"requests": (0, 20.0), "tokens": (0, 20.0)}
    assert len(outcome.rate_limits) == 2


def _stalled(outcome: Outcome) -> None:
    assert isinstance(outcome.error, TimeoutError)
    assert outcome.events  # what came before the silence arrived


def _openai_malformed(outcome: Outcome) -> None:
    assert isinstance(outcome.error, json.JSONDecodeError)


def _live_closed(code: int, reason: str) -> Check:
    def check(outcome: Outcome) -> None:
        assert isinstance(outcome.error, genai_errors.APIError), repr(outcome.error)
        assert outcome.error.code == code
        assert reason in str(outcome.error)
        assert outcome.events  # the turn had begun

    return check


def _live_malformed(outcome: Outcome) -> None:
    assert isinstance(outcome.error, ValueError)
    assert str(outcome.error).startswith("Failed to parse response: b'")


OPENAI: dict[str, tuple[Check, bool]] = {  # case -> (check, whether the client reconnects)
    "unauthorized": (refused(401, {"code": "invalid_api_key"}), False),
    "rate_limit": (refused(429, {"code": "rate_limit_exceeded"}, REALTIME_EXPECTED), False),
    "unavailable": (refused(503, {"type": "cf_service_unavailable"}, REALTIME_EXPECTED), False),
    "ws_close_1011": (openai_reconnected(1011), True),
    "ws_close_1013": (openai_reconnected(1013), True),
    "ws_close_1008": (openai_closed(1008), True),  # not recoverable: raised even with reconnects on
    "ws_drop": (openai_reconnected(1006), True),
    "ws_error": (_openai_error_event, False),
    "ws_rate_limits": (_openai_rate_limits, False),
    "ws_stall": (_stalled, False),
    "ws_malformed": (_openai_malformed, False),
    "ws_fragment_1_byte": (lambda outcome: answered(outcome, REALTIME_EXPECTED), False),
}

GEMINI: dict[str, Check] = {
    "unauthorized": refused(400, {"status": "INVALID_ARGUMENT"}),  # Gemini: 400 API_KEY_INVALID
    "rate_limit": refused(429, {"status": "RESOURCE_EXHAUSTED"}, LIVE_EXPECTED),
    "unavailable": refused(503, {"status": "UNAVAILABLE"}, LIVE_EXPECTED),
    "ws_close_1011": _live_closed(1011, "Internal error encountered."),
    "ws_close_1013": _live_closed(1013, "The service is currently unavailable."),
    "ws_close_1008": _live_closed(1008, "Policy violation"),
    "ws_drop": _live_closed(1006, "abnormal closure"),
    "ws_error": _live_closed(1011, "Internal error encountered."),  # no error event: a 1011 close
    "ws_rate_limits": lambda outcome: answered(outcome, LIVE_EXPECTED),  # OpenAI's event only
    "ws_stall": _stalled,
    "ws_malformed": _live_malformed,
    "ws_fragment_1_byte": lambda outcome: answered(outcome, LIVE_EXPECTED),
}
