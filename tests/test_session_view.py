"""A recorded WebSocket session read for the tools: event types, payloads summarised, the snapshot."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from websockets.asyncio.client import connect

import llmcassette
from llmcassette._session_view import event_type, session_events, session_of, summarised
from llmcassette._snapshot import normalize
from llmcassette._storage import load_cassette
from tests.sessions import AUDIO, realtime_session, write_session


def test_event_types_of_realtime_live_text_and_binary_messages() -> None:
    assert event_type({"type": "session.created", "event_id": "e"}) == "session.created"
    assert event_type({"serverContent": {"turnComplete": True}}) == "serverContent"
    assert event_type({"setupComplete": {}, "usageMetadata": {}}) == "setupComplete+usageMetadata"
    assert event_type([1, 2]) == "(array)"
    assert event_type("x", kind="text") == "(text)"
    assert event_type(b"x", kind="binary") == "(binary)"


def test_base64_payloads_are_summarised_and_words_are_not() -> None:
    value = {"delta": AUDIO, "parts": [{"inlineData": {"data": AUDIO}}], "text": "Hello " * 100}
    shown = summarised(value)
    assert shown["delta"] == "<base64: 4.8 kB>"
    assert shown["parts"][0]["inlineData"]["data"] == "<base64: 4.8 kB>"
    assert shown["text"] == value["text"]  # long, but words: kept


def test_a_loaded_session_reads_as_the_file_holds_it(tmp_path: Path) -> None:
    path = write_session(tmp_path / "rt.yaml", realtime_session(deltas=1))
    interaction = load_cassette(path).interactions[0]
    session = session_of(interaction)
    assert session is not None
    assert session["messages"][0] == {
        "from": "server",
        "offset_ms": 80.0,
        "json": {"type": "session.created", "event_id": "event_1", "session": {"id": "sess_1"}},
    }
    assert session_of(load_cassette(path).interactions[0].model_copy(update={"websocket": None})) is None


def test_a_snapshot_of_a_session_is_its_event_sequence_runs_counted(tmp_path: Path) -> None:
    five = load_cassette(write_session(tmp_path / "a.yaml", realtime_session(deltas=5)))
    assert normalize(five.interactions[0]).splitlines() == [
        '{"event": "session.created", "from": "server"}',
        '{"event": "session.update", "from": "client"}',
        '{"event": "response.create", "from": "client"}',
        '{"event": "response.output_text.delta", "from": "server"}',
        '{"count": 5, "event": "response.output_audio.delta", "from": "server"}',
        '{"event": "(text)", "from": "server"}',
        '{"event": "(binary)", "from": "client"}',
        '{"event": "response.done", "from": "server"}',
        '{"by": "client", "close": 1000}',
    ]
    # A whole cassette: the exchange's head line, then the sequence; ids and times never appear.
    text = normalize(five)
    assert text.startswith('{"exchange": 0, "method": "GET", "path": "/v1/realtime", "status": 101}\n')
    assert "event_" not in text and "80.0" not in text
    dropped = realtime_session(close={"code": None, "reason": None, "by": "none", "offset_ms": 255.0})
    assert session_events(dropped)[-1] == {"close": None, "by": "none"}
    still_open = realtime_session()
    del still_open["close"]
    assert "close" not in session_events(still_open)[-1]


def test_a_snapshot_of_a_replayed_sessions_attempt_is_what_crossed(tmp_path: Path) -> None:
    path = write_session(tmp_path / "rt.yaml", realtime_session(deltas=3))
    recorded = normalize(load_cassette(path).interactions[0])

    async def talk() -> None:
        async with connect("wss://api.openai.com/v1/realtime?model=gpt-realtime") as socket:
            await socket.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
            await socket.send(json.dumps({"type": "response.create"}))
            async for message in socket:
                if message == "not JSON":  # the client's turn again, as recorded
                    await socket.send(b"\x00\x01\x02\x03")
                if "response.done" in str(message):
                    break  # the recording's client closes now

    with llmcassette.use_cassette(path) as cassette:
        asyncio.run(talk())
    assert normalize(cassette.attempts[-1]) == recorded
    assert normalize(cassette).startswith(
        '{"exchange": 0, "method": "GET", "path": "/v1/realtime", "status": 101}\n'
    )
