"""
The websockets door: the asyncio and sync clients recorded against a real local upstream, then
replayed offline (no network socket at all) turn by turn, paced on the virtual clock, with misses
explained and the close as recorded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
import websockets.asyncio.client
import websockets.sync.client
from websockets.asyncio.server import ServerConnection

import llmcassette
from llmcassette import NoMatchingInteraction, VirtualClock
from llmcassette._models import CassetteDocument, Interaction, RecordedRequest, RecordedResponse, Status
from llmcassette._storage import load_cassette, save_cassette
from llmcassette._websocket._models import WebSocketClose, WebSocketMessage, WebSocketSession
from tests.ws.running import ReceivedSession, RunningUpstream, run_upstream

AUDIO = bytes(range(256)) * 8
Outcome = list[Any]


async def chatty(connection: ServerConnection, log: ReceivedSession) -> None:
    """Greets, answers each JSON message with an echo and a binary frame, closes on `bye`."""
    await connection.send(json.dumps({"type": "session.created"}))
    async for message in connection:
        if isinstance(message, bytes):
            await connection.send(message[::-1])
            continue
        event = json.loads(message)
        log.received.append(event)
        if event["type"] == "bye":
            await connection.close(4000, "see you")
            return
        if event["type"] == "drop":
            assert connection.transport is not None
            connection.transport.abort()
            return
        await connection.send(json.dumps({"type": "echo", "text": event.get("text")}))
        await connection.send(AUDIO)


async def talk_async(url: str, *, text: str = "hello", ending: str = "bye") -> Outcome:
    seen: Outcome = []
    async with websockets.asyncio.client.connect(url) as ws:
        seen.append(await ws.recv())
        await ws.send(json.dumps({"type": "say", "text": text, "event_id": f"ev_{time.monotonic_ns()}"}))
        seen.append(await ws.recv())
        seen.append(await ws.recv())
        await ws.send(b"\x01\x02\x03")
        seen.append(await ws.recv())
        if ending == "client":
            await ws.close(1000, "client done")
            seen.append(("closed by client", ws.protocol.close_code))
            return seen
        await ws.send(json.dumps({"type": ending}))
        try:
            seen.append(await ws.recv())
        except websockets.ConnectionClosed as exc:
            seen.append(_closed(exc))
    return seen


def talk_sync(url: str, *, text: str = "hello", ending: str = "bye") -> Outcome:
    seen: Outcome = []
    with websockets.sync.client.connect(url) as ws:
        seen.append(ws.recv())
        ws.send(json.dumps({"type": "say", "text": text, "event_id": f"ev_{time.monotonic_ns()}"}))
        seen.append(ws.recv())
        seen.append(ws.recv())
        ws.send(b"\x01\x02\x03")
        seen.append(ws.recv())
        if ending == "client":
            ws.close(1000, "client done")
            seen.append(("closed by client", ws.protocol.close_code))
            return seen
        ws.send(json.dumps({"type": ending}))
        try:
            seen.append(ws.recv())
        except websockets.ConnectionClosed as exc:
            seen.append(_closed(exc))
    return seen


def _closed(exc: websockets.ConnectionClosed) -> tuple[str, int | None, str | None]:
    return ("closed", exc.rcvd.code if exc.rcvd else None, exc.rcvd.reason if exc.rcvd else None)


Talk = Callable[..., Outcome]


def _run_async(url: str, **options: Any) -> Outcome:
    return asyncio.run(talk_async(url, **options))


@pytest.fixture(params=["async", "sync"])
def talk(request: pytest.FixtureRequest) -> Talk:
    """One scenario through the asyncio client and through the sync client."""
    return _run_async if request.param == "async" else talk_sync


@pytest.fixture
def upstream() -> Iterator[RunningUpstream]:
    with run_upstream(chatty) as running:
        yield running


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every internet socket created from now on, by family: replay must create none."""
    created: list[int] = []
    original = socket.socket.__init__

    def init(self: socket.socket, family: int = -1, *args: Any, **kwargs: Any) -> None:
        original(self, family, *args, **kwargs)
        if self.family in (socket.AF_INET, socket.AF_INET6):
            created.append(self.family)

    monkeypatch.setattr(socket.socket, "__init__", init)
    return created


@pytest.mark.parametrize("ending", ["bye", "client", "drop"])
def test_a_session_is_recorded_and_replays_offline_as_it_was(
    tmp_path: Path, upstream: RunningUpstream, talk: Talk, ending: str, no_network: list[int]
) -> None:
    path = tmp_path / "session.yaml"
    url = upstream.ws_url + "/v1/realtime?model=m"
    no_network.clear()
    with llmcassette.use_cassette(path, record_mode="once"):
        live = talk(url, ending=ending)
    assert no_network, "recording reaches the upstream"
    # The handshake's nonce and its proof change on every connection: not stored.
    assert "sec-websocket-key" not in path.read_text().lower()
    assert "sec-websocket-accept" not in path.read_text().lower()
    session = load_cassette(path).interactions[0].websocket
    assert session is not None
    assert [m.sender for m in session.messages][:5] == ["server", "client", "server", "server", "client"]
    assert session.messages[3].binary == AUDIO
    expected_close = {
        "bye": ("server", 4000, "see you"),
        "client": ("client", 1000, "client done"),
        "drop": ("none", None, None),
    }[ending]
    assert session.close is not None
    assert (session.close.by, session.close.code, session.close.reason) == expected_close

    no_network.clear()
    with llmcassette.use_cassette(path) as cassette:
        replayed = talk(url, ending=ending)
    assert replayed == live
    assert no_network == []
    (attempt,) = cassette.attempts
    assert attempt.interaction == 0 and attempt.status == 101
    assert [m.data for m in attempt.messages][3] == AUDIO
    assert cassette.all_played


def test_replay_needs_no_upstream_at_all(tmp_path: Path, talk: Talk) -> None:
    path = tmp_path / "session.yaml"
    with run_upstream(chatty) as running:
        url = running.ws_url + "/v1/realtime"
        with llmcassette.use_cassette(path, record_mode="once"):
            live = talk(url)
    # The upstream is gone: its port refuses connections now.
    with llmcassette.use_cassette(path):
        assert talk(url) == live


def _session_file(path: Path, messages: list[WebSocketMessage], close: WebSocketClose | None) -> None:
    interaction = Interaction(
        request=RecordedRequest(method="GET", uri="wss://api.example.com/v1/live"),
        response=RecordedResponse(status=Status(code=101, message="Switching Protocols")),
        websocket=WebSocketSession(messages=messages, close=close),
    )
    save_cassette(path, CassetteDocument(interactions=[interaction]))


def test_recorded_pace_plays_the_gaps_on_the_virtual_clock(tmp_path: Path, talk: Talk) -> None:
    path = tmp_path / "paced.yaml"
    messages = [
        WebSocketMessage.capture("server", 0.0, '{"type":"session.created"}'),
        WebSocketMessage.capture("client", 1.0, '{"type":"say","text":"hello"}'),
        WebSocketMessage.capture("server", 2500.0, '{"type":"echo","text":"hello"}'),
        WebSocketMessage.capture("server", 4000.0, AUDIO),
        WebSocketMessage.capture("client", 4001.0, b"\x01\x02\x03"),
        WebSocketMessage.capture("server", 9000.0, b"\x03\x02\x01"),
        WebSocketMessage.capture("client", 9001.0, '{"type":"bye"}'),
    ]
    _session_file(path, messages, WebSocketClose(code=4000, reason="see you", by="server", offset_ms=9100.0))
    started = time.monotonic()
    with VirtualClock() as clock, llmcassette.use_cassette(path, pace="recorded") as cassette:
        seen = talk("wss://api.example.com/v1/live")
    assert time.monotonic() - started < 5
    assert 9.0 <= clock.elapsed_s < 9.5
    assert clock.sleeps == []  # llmcassette's own waits are not the client's sleeps
    assert seen[-1] == ("closed", 4000, "see you")
    offsets = [m.offset_ms for m in cassette.attempts[0].messages if m.sender == "server"]
    assert offsets[1] >= 2500.0


def test_instant_pace_sends_each_turn_at_once(tmp_path: Path, talk: Talk) -> None:
    path = tmp_path / "instant.yaml"
    messages = [
        WebSocketMessage.capture("server", 0.0, '{"type":"session.created"}'),
        WebSocketMessage.capture("client", 1.0, '{"type":"say","text":"hello"}'),
        WebSocketMessage.capture("server", 60_000.0, '{"type":"echo","text":"hello"}'),
        WebSocketMessage.capture("server", 60_000.0, AUDIO),
        WebSocketMessage.capture("client", 60_001.0, b"\x01\x02\x03"),
        WebSocketMessage.capture("server", 60_002.0, b"\x03\x02\x01"),
        WebSocketMessage.capture("client", 60_003.0, '{"type":"bye"}'),
    ]
    _session_file(path, messages, WebSocketClose(code=1011, reason="oops", by="server", offset_ms=60_004.0))
    started = time.monotonic()
    with llmcassette.use_cassette(path):
        seen = talk("wss://api.example.com/v1/live")
    assert time.monotonic() - started < 5
    assert seen[1] == '{"type":"echo","text":"hello"}'
    assert seen[-1] == ("closed", 1011, "oops")


def test_a_client_message_that_does_not_fit_fails_with_a_diff(tmp_path: Path, talk: Talk) -> None:
    path = tmp_path / "session.yaml"
    with run_upstream(chatty) as running:
        url = running.ws_url + "/v1/realtime"
        with llmcassette.use_cassette(path, record_mode="once"):
            talk(url, text="hello")
    with pytest.raises(NoMatchingInteraction) as info, llmcassette.use_cassette(path) as cassette:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            talk(url, text="goodbye")
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    message = str(info.value)
    assert message.startswith(f"llmcassette: the WebSocket session with {url} (recorded interaction #0 in")
    assert "got client message 0 that does not fit the recording" in message
    assert '- message differs: `text` is "goodbye", recorded "hello"' in message
    assert "event_id" not in message.split("Recorded here:")[0]  # a volatile field is not a difference
    assert cassette.attempts[0].error == "client message does not fit the recording"


def test_a_mismatch_can_be_expected(tmp_path: Path) -> None:
    path = tmp_path / "expected.yaml"
    messages = [
        WebSocketMessage.capture("client", 1.0, '{"type":"say","text":"hello"}'),
        WebSocketMessage.capture("server", 2.0, '{"type":"echo"}'),
    ]
    _session_file(path, messages, None)

    async def main() -> None:
        async with websockets.asyncio.client.connect("wss://api.example.com/v1/live") as ws:
            await ws.send('{"type":"say","text":"other"}')
            with pytest.raises(websockets.ConnectionClosedError):
                await ws.recv()

    with llmcassette.use_cassette(path) as cassette, cassette.expect_miss() as missed:
        asyncio.run(main())
    assert '`text` is "other", recorded "hello"' in str(missed.value)


def test_a_session_the_cassette_lacks_fails_at_connect_in_mode_none(tmp_path: Path, talk: Talk) -> None:
    path = tmp_path / "other.yaml"
    _session_file(path, [], None)
    with pytest.raises(NoMatchingInteraction) as info, llmcassette.use_cassette(path):
        talk("wss://api.example.com/v1/other")
    message = str(info.value)
    assert message.startswith(
        "llmcassette: no recorded WebSocket session matches wss://api.example.com/v1/other"
    )
    assert "- #0 wss://api.example.com/v1/live" in message
    assert "record_mode='new_episodes'" in message


def test_each_recorded_session_plays_once(tmp_path: Path) -> None:
    path = tmp_path / "once.yaml"
    _session_file(
        path,
        [WebSocketMessage.capture("server", 0.0, "hi")],
        WebSocketClose(by="server", code=1000, reason="", offset_ms=1.0),
    )

    async def main() -> str:
        async with websockets.asyncio.client.connect("wss://api.example.com/v1/live") as ws:
            return str(await ws.recv())

    with pytest.raises(NoMatchingInteraction) as info, llmcassette.use_cassette(path):
        assert asyncio.run(main()) == "hi"
        asyncio.run(main())
    assert "already been played: each recorded session plays once" in str(info.value)


def test_a_session_still_open_at_save_is_stored_without_a_close(
    tmp_path: Path, upstream: RunningUpstream
) -> None:
    path = tmp_path / "open.yaml"

    async def main() -> None:
        async with llmcassette.use_cassette(path, record_mode="once"):
            ws = await websockets.asyncio.client.connect(upstream.ws_url + "/v1/realtime")
            await ws.recv()
            await ws.send('{"type":"say","text":"hello"}')
            await ws.recv()
            await ws.recv()
        await ws.close()

    asyncio.run(main())
    session = load_cassette(path).interactions[0].websocket
    assert session is not None and session.close is None
    assert [m.sender for m in session.messages] == ["server", "client", "server", "server"]

    async def replay() -> Any:
        async with llmcassette.use_cassette(path):
            async with websockets.asyncio.client.connect(upstream.ws_url + "/v1/realtime") as ws:
                await ws.recv()
                await ws.send('{"type":"say","text":"hello"}')
                await ws.recv()
                return await ws.recv()

    assert asyncio.run(replay()) == AUDIO


def test_a_refused_handshake_is_recorded_and_replayed_as_the_http_answer(tmp_path: Path) -> None:
    path = tmp_path / "refused.yaml"

    def gate(request: Any) -> tuple[int, dict[str, str], bytes] | None:
        return 401, {"x-request-id": "req_1"}, b'{"error":{"message":"bad key","code":"invalid_api_key"}}'

    async def main(url: str) -> Any:
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.asyncio.client.connect(url)
        return info.value.response

    with run_upstream(chatty, gate=gate) as running:
        url = running.ws_url + "/v1/realtime"
        with llmcassette.use_cassette(path, record_mode="once"):
            live = asyncio.run(main(url))
    interaction = load_cassette(path).interactions[0]
    assert interaction.websocket is None and interaction.response.status is not None
    assert interaction.response.status.code == 401
    assert interaction.request.headers["Upgrade"] == ["websocket"]
    with llmcassette.use_cassette(path) as cassette:
        replayed = asyncio.run(main(url))
    assert (replayed.status_code, replayed.body) == (live.status_code, live.body)
    assert replayed.headers["x-request-id"] == "req_1"
    assert cassette.attempts[0].status == 401


def test_the_door_is_open_only_while_a_cassette_is(tmp_path: Path) -> None:
    connect = websockets.asyncio.client.connect
    opener = "open_tcp_connection" if "open_tcp_connection" in connect.__dict__ else "create_connection"
    original = connect.__dict__[opener]
    _session_file(tmp_path / "c.yaml", [], None)
    with llmcassette.use_cassette(tmp_path / "c.yaml"):
        assert connect.__dict__[opener] is not original
    assert connect.__dict__[opener] is original


IMPORT_CHECK = """
import sys
import llmcassette

def opener():
    import websockets.sync.client as module
    owner = getattr(module, "reconnect", None)
    if owner is not None and "open_connection" in owner.__dict__:
        return owner.__dict__["open_connection"]
    return module.connect

with llmcassette.use_cassette(sys.argv[1]):
    assert "websockets" not in sys.modules, "llmcassette imported websockets"
    from websockets.sync.client import connect
    assert hasattr(opener(), "__wrapped__"), "imported inside the cassette but not patched"
assert not hasattr(opener(), "__wrapped__"), "still patched after the cassette"
print("ok")
"""


def test_websockets_imported_inside_a_cassette_is_patched_and_never_imported_by_llmcassette(
    tmp_path: Path,
) -> None:
    _session_file(tmp_path / "c.yaml", [], None)
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK, str(tmp_path / "c.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("mode", ["new_episodes", "all"])
def test_record_modes_apply_to_sessions_as_to_requests(
    tmp_path: Path, upstream: RunningUpstream, mode: str
) -> None:
    path = tmp_path / "modes.yaml"
    first, second = upstream.ws_url + "/v1/first", upstream.ws_url + "/v1/second"
    with llmcassette.use_cassette(path, record_mode="once"):
        talk_sync(first)
    assert len(upstream.sessions) == 1
    with llmcassette.use_cassette(path, record_mode=mode) as cassette:
        talk_sync(first)
        talk_sync(second)
    # new_episodes replays what the cassette has and records the rest; all records everything.
    assert len(upstream.sessions) == (2 if mode == "new_episodes" else 3)
    assert [a.recorded for a in cassette.attempts] == (
        [False, True] if mode == "new_episodes" else [True, True]
    )
    uris = [i.request.uri for i in load_cassette(path).interactions]
    assert uris == ([first, second] if mode == "new_episodes" else [first, first, second])
