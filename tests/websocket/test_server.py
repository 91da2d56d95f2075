"""
The server end's handshake answer: the client sees the upstream's `Date` and `Server` once, as the
upstream sent them while recording and as they were recorded on replay, and never the engine's own
beside or instead of them. In-process here; through `record` and `serve` in
tests/proxy/test_websocket.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import websockets.asyncio.client
from websockets.asyncio.server import ServerConnection

import llmcassette
from llmcassette._storage import load_cassette
from tests.ws.running import ReceivedSession, run_upstream

#: A `Server` no library sends by itself, so that where the client's one came from is plain.
UPSTREAM_SERVER = "realtime-upstream/7.1"


async def greet(connection: ServerConnection, log: ReceivedSession) -> None:
    await connection.send(json.dumps({"type": "session.created"}))
    await connection.recv()


def handshake_headers(url: str) -> list[tuple[str, str]]:
    """The `101` answer's headers as the client got them, after one turn of the session."""

    async def main() -> list[tuple[str, str]]:
        async with websockets.asyncio.client.connect(url) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "bye"}))
            assert ws.response is not None
            return list(ws.response.headers.raw_items())

    return asyncio.run(main())


def named(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name]


def recorded_headers(path: Path) -> dict[str, list[str]]:
    (interaction,) = load_cassette(path).interactions
    return {name.lower(): values for name, values in interaction.response.headers.items()}


def test_the_client_sees_the_upstreams_date_and_server_once_recording_and_replaying(tmp_path: Path) -> None:
    # Before: recording sent the engine's Date beside the upstream's (two), and replay sent only
    # the engine's Date and no Server at all.
    path = tmp_path / "session.yaml"
    with run_upstream(greet, server_header=UPSTREAM_SERVER) as upstream:
        with llmcassette.use_cassette(path, record_mode="once"):
            live = handshake_headers(upstream.ws_url + "/v1/realtime")
    recorded = recorded_headers(path)
    assert recorded["server"] == [UPSTREAM_SERVER] and len(recorded["date"]) == 1
    assert named(live, "date") == recorded["date"]
    assert named(live, "server") == [UPSTREAM_SERVER]
    with llmcassette.use_cassette(path):
        replayed = handshake_headers(upstream.ws_url + "/v1/realtime")
    assert named(replayed, "date") == recorded["date"]
    assert named(replayed, "server") == [UPSTREAM_SERVER]


def test_a_recording_without_date_or_server_is_answered_without_them(tmp_path: Path) -> None:
    # The engine adds none of its own: the client sees what the upstream sent, nothing more.
    path = tmp_path / "session.yaml"
    with run_upstream(greet, server_header=UPSTREAM_SERVER) as upstream:
        with llmcassette.use_cassette(path, record_mode="once"):
            handshake_headers(upstream.ws_url + "/v1/realtime")
        text = path.read_text()
    kept = [line for line in text.splitlines() if not line.strip().lower().startswith(("date:", "server:"))]
    path.write_text("\n".join(kept) + "\n")
    assert recorded_headers(path).keys().isdisjoint({"date", "server"})
    with llmcassette.use_cassette(path):
        replayed = handshake_headers(upstream.ws_url + "/v1/realtime")
    assert named(replayed, "date") == [] and named(replayed, "server") == []
