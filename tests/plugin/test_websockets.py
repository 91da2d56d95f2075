"""The pytest plugin's marker and fixture cover WebSocket sessions too, sync and async."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

# Imported before the inner runs, which forget the modules first imported inside them.
import websockets.asyncio.client
import websockets.sync.client  # noqa: F401
from websockets.asyncio.server import ServerConnection

from tests.ws.running import ReceivedSession, run_upstream

pytest_plugins = ["pytester"]

Run = Callable[..., pytest.RunResult]


async def greeter(connection: ServerConnection, log: ReceivedSession) -> None:
    async for message in connection:
        event = json.loads(message)
        await connection.send(json.dumps({"type": "hello", "to": event["name"]}))
        await connection.close(1000, "bye")


TESTS = """
import json, pytest
import websockets.sync.client
from websockets.asyncio.client import connect as aconnect

@pytest.mark.llm_cassette
def test_sync(llm_cassette):
    # Looked up when called: before websockets 17 an earlier reference is not covered (README).
    with websockets.sync.client.connect("{url}/v1/greet") as ws:
        ws.send(json.dumps({{"name": "sync"}}))
        assert json.loads(ws.recv()) == {{"type": "hello", "to": "sync"}}
    assert llm_cassette.attempts[0].messages[0].sender == "client"

@pytest.mark.anyio
async def test_async(llm_cassette):  # the fixture alone is enough
    async with aconnect("{url}/v1/greet") as ws:
        await ws.send(json.dumps({{"name": "async"}}))
        assert json.loads(await ws.recv()) == {{"type": "hello", "to": "async"}}
    assert len(llm_cassette.attempts) == 1

@pytest.fixture
def anyio_backend():
    return "asyncio"
"""


def test_the_marker_and_the_fixture_record_then_replay_sessions(pytester: pytest.Pytester, run: Run) -> None:
    with run_upstream(greeter) as upstream:
        url = upstream.ws_url
        pytester.makepyfile(test_greet=TESTS.format(url=url))
        run("--record-mode=once").assert_outcomes(passed=2)
        assert len(upstream.sessions) == 2
    folder = pytester.path / "cassettes" / "test_greet"
    assert sorted(p.name for p in folder.iterdir()) == ["test_async.yaml", "test_sync.yaml"]
    assert "websocket:" in (folder / "test_sync.yaml").read_text()
    # The upstream is gone: the sessions replay from the cassettes.
    run().assert_outcomes(passed=2)
