"""
The WebSocket fault set under the real realtime SDKs: a session recorded once in-process from the
local upstreams (the openai SDK's Realtime client, google-genai's Live client), then replayed
offline under each fault of ``websocket`` (``WEBSOCKET_FAULTS``), checking what the SDK raises
or yields, and what the attempt log shows of each session.

The realtime clients below do what an application does: (re)start their conversation on every
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
from pathlib import Path
from typing import Any

import openai
import pytest
import websockets
from google import genai
from google.genai import errors as genai_errors, types
from openai.types.websocket_reconnection import ReconnectingEvent, ReconnectingOverrides

import llmcassette
from llmcassette._matrix import WEBSOCKET_FAULTS
from tests.ws.live_upstream import EXPECTED as LIVE_EXPECTED, live_upstream
from tests.ws.realtime_upstream import EXPECTED as REALTIME_EXPECTED, realtime_upstream
from tests.ws.running import tls_contexts

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
    ws_url: str, *, reconnect: bool, connects: int = 2, wait_s: float = HANG_WAIT_S
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
            async with client.realtime.connect(model="gpt-realtime", **options) as connection:
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
    base_url: str, client_tls: ssl.SSLContext, *, connects: int = 2, wait_s: float = HANG_WAIT_S
) -> Outcome:
    """One spoken answer from the Live API; a refused handshake is tried again (``connects`` in all)."""
    outcome = Outcome()
    options = types.HttpOptions(base_url=base_url, async_client_args={"ssl": client_tls})
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


# -- the recordings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    path: Path
    url: str  # what the SDK dials (the upstream is gone when it replays)
    client_tls: ssl.SSLContext | None = None


@pytest.fixture(scope="module")
def realtime_cassette(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    path = tmp_path_factory.mktemp("realtime") / "realtime.yaml"
    with realtime_upstream() as upstream, llmcassette.use_cassette(path, record_mode="once"):
        outcome = asyncio.run(openai_conversation(upstream.ws_url, reconnect=False))
    assert (outcome.text, outcome.audio, outcome.error) == (
        REALTIME_EXPECTED.text,
        REALTIME_EXPECTED.audio,
        None,
    )
    return Recorded(path, upstream.ws_url)


@pytest.fixture(scope="module")
def live_cassette(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    path = tmp_path_factory.mktemp("live") / "live.yaml"
    server_tls, client_tls = tls_contexts()
    with live_upstream(tls=server_tls) as upstream, llmcassette.use_cassette(path, record_mode="once"):
        outcome = asyncio.run(live_conversation(upstream.http_url, client_tls))
    assert (outcome.text, outcome.audio, outcome.error) == (LIVE_EXPECTED.text, LIVE_EXPECTED.audio, None)
    return Recorded(path, upstream.http_url, client_tls)


# -- what each SDK does under each fault ------------------------------------------------------------

Check = Callable[[Outcome], None]


def _answered(outcome: Outcome, expected: Any) -> None:
    assert outcome.error is None, repr(outcome.error)
    assert (outcome.text, outcome.audio) == (expected.text, expected.audio)


def _refused(status: int, error: dict[str, Any], expected: Any = None) -> Check:
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


def _openai_closed(code: int | None) -> Check:
    def check(outcome: Outcome) -> None:
        assert isinstance(outcome.error, websockets.ConnectionClosedError), repr(outcome.error)
        assert (outcome.error.rcvd.code if outcome.error.rcvd else None) == code
        assert outcome.reconnects == []

    return check


def _openai_reconnected(code: int) -> Check:
    # The SDK's policy finds the code recoverable, reconnects, and the new session replays.
    def check(outcome: Outcome) -> None:
        _answered(outcome, REALTIME_EXPECTED)
        assert outcome.reconnects == [code]
        assert outcome.events.count("session.created") == 2

    return check


def _openai_error_event(outcome: Outcome) -> None:
    _answered(outcome, REALTIME_EXPECTED)
    (error,) = outcome.error_events
    assert error.type == "server_error" and error.message.startswith("The server had an error")


def _openai_rate_limits(outcome: Outcome) -> None:
    _answered(outcome, REALTIME_EXPECTED)
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
    "unauthorized": (_refused(401, {"code": "invalid_api_key"}), False),
    "rate_limit": (_refused(429, {"code": "rate_limit_exceeded"}, REALTIME_EXPECTED), False),
    "unavailable": (_refused(503, {"type": "cf_service_unavailable"}, REALTIME_EXPECTED), False),
    "ws_close_1011": (_openai_reconnected(1011), True),
    "ws_close_1013": (_openai_reconnected(1013), True),
    "ws_close_1008": (_openai_closed(1008), True),  # not recoverable: raised even with reconnects on
    "ws_drop": (_openai_reconnected(1006), True),
    "ws_error": (_openai_error_event, False),
    "ws_rate_limits": (_openai_rate_limits, False),
    "ws_stall": (_stalled, False),
    "ws_malformed": (_openai_malformed, False),
    "ws_fragment_1_byte": (lambda outcome: _answered(outcome, REALTIME_EXPECTED), False),
}

GEMINI: dict[str, Check] = {
    "unauthorized": _refused(400, {"status": "INVALID_ARGUMENT"}),  # Gemini: 400 API_KEY_INVALID
    "rate_limit": _refused(429, {"status": "RESOURCE_EXHAUSTED"}, LIVE_EXPECTED),
    "unavailable": _refused(503, {"status": "UNAVAILABLE"}, LIVE_EXPECTED),
    "ws_close_1011": _live_closed(1011, "Internal error encountered."),
    "ws_close_1013": _live_closed(1013, "The service is currently unavailable."),
    "ws_close_1008": _live_closed(1008, "Policy violation"),
    "ws_drop": _live_closed(1006, "abnormal closure"),
    "ws_error": _live_closed(1011, "Internal error encountered."),  # no error event: a 1011 close
    "ws_rate_limits": lambda outcome: _answered(outcome, LIVE_EXPECTED),  # OpenAI's event only
    "ws_stall": _stalled,
    "ws_malformed": _live_malformed,
    "ws_fragment_1_byte": lambda outcome: _answered(outcome, LIVE_EXPECTED),
}


def test_every_case_of_the_set_has_an_expectation_for_each_sdk() -> None:
    assert list(OPENAI) == list(GEMINI) == list(WEBSOCKET_FAULTS)


@pytest.mark.parametrize("case", list(WEBSOCKET_FAULTS))
def test_the_openai_realtime_client_under_each_fault(case: str, realtime_cassette: Recorded) -> None:
    check, reconnect = OPENAI[case]
    spec = WEBSOCKET_FAULTS[case]
    # The recording's host is 127.0.0.1: the provider is named, so errors take OpenAI's shapes.
    with llmcassette.use_cassette(realtime_cassette.path, faults=[spec], provider="openai") as cassette:
        wait_s = STALL_WAIT_S if case == "ws_stall" else HANG_WAIT_S
        outcome = asyncio.run(openai_conversation(realtime_cassette.url, reconnect=reconnect, wait_s=wait_s))
    check(outcome)
    first = cassette.attempts[0]
    assert first.faults == [str(llmcassette.faults.parse_fault(spec))]
    assert not cassette.misses


@pytest.mark.parametrize("case", list(WEBSOCKET_FAULTS))
def test_the_google_genai_live_client_under_each_fault(case: str, live_cassette: Recorded) -> None:
    spec = WEBSOCKET_FAULTS[case]
    assert live_cassette.client_tls is not None
    with llmcassette.use_cassette(live_cassette.path, faults=[spec], provider="gemini"):
        wait_s = STALL_WAIT_S if case == "ws_stall" else HANG_WAIT_S
        outcome = asyncio.run(live_conversation(live_cassette.url, live_cassette.client_tls, wait_s=wait_s))
    GEMINI[case](outcome)


# -- the attempt log --------------------------------------------------------------------------------


def test_the_attempt_log_shows_each_sessions_messages_fault_and_close(realtime_cassette: Recorded) -> None:
    faults = ["ws_close:code=1011,after=5,times=1"]
    with llmcassette.use_cassette(realtime_cassette.path, faults=faults, provider="openai") as cassette:
        outcome = asyncio.run(openai_conversation(realtime_cassette.url, reconnect=True))
    _openai_reconnected(1011)(outcome)
    broken, replayed = cassette.attempts
    assert (broken.interaction, replayed.interaction) == (0, 0)  # the reconnect got the same recording
    assert broken.faults == ["ws_close:times=1,after=5"] and replayed.faults == []
    assert [m.sender for m in broken.messages].count("server") == 5
    assert broken.messages[-1].json_value["type"] == "rate_limits.updated"  # the fifth server message
    assert broken.close is not None
    assert (broken.close.by, broken.close.code, broken.close.reason) == (
        "server",
        1011,
        "Internal server error",
    )
    assert replayed.close is not None and replayed.close.by == "client"
    assert [m.json_value["type"] for m in replayed.messages][-1] == "response.done"


def test_a_provider_close_code_is_not_reconnected(realtime_cassette: Recorded) -> None:
    with llmcassette.use_cassette(
        realtime_cassette.path, faults=["ws_close:code=4000,reason=session expired"]
    ):
        outcome = asyncio.run(openai_conversation(realtime_cassette.url, reconnect=True))
    _openai_closed(4000)(outcome)
    assert isinstance(outcome.error, websockets.ConnectionClosedError)
    assert outcome.error.rcvd is not None and outcome.error.rcvd.reason == "session expired"
