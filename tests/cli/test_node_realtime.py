"""
WebSocket sessions from another language: node's own WebSocket client (``tests/node/realtime.mjs
plain``) recorded through ``llmcassette record`` from the local Realtime upstream, replayed by
``llmcassette serve`` with the upstream gone, to it and to the node openai SDK's
``OpenAIRealtimeWebSocket`` (``realtime.mjs sdk``), and compared with what the Python openai SDK's
Realtime client gets from the same recording in-process; then faults chosen by the handshake's
``x-llmcassette-fault`` header, as an HTTP client chooses them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

import llmcassette
from llmcassette._storage import save_cassette
from llmcassette.proxy import RouteTable
from tests.cli.test_serve import ServeProcess
from tests.node_clients import NODE_DIR, install
from tests.ws.realtime_upstream import EXPECTED, realtime_upstream

REALTIME = NODE_DIR / "realtime.mjs"
RUN_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def node() -> list[str]:
    """The node command, with the flag that gives Node 20 its global WebSocket (22 has it by default)."""
    executable = install()
    version = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True).stdout
    major = int(version.strip().lstrip("v").split(".")[0])
    return [executable, "--experimental-websocket"] if major < 22 else [executable]


def run_node(node: list[str], mode: str, env: dict[str, str], **options: str) -> dict[str, Any]:
    done = subprocess.run(
        [*node, str(REALTIME), mode],
        env={**env, **options},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@dataclass
class NodeSession:
    path: Path
    upstream: str
    live: dict[str, Any]


@pytest.fixture(scope="module")
def recorded(node: list[str], tmp_path_factory: pytest.TempPathFactory) -> NodeSession:
    path = tmp_path_factory.mktemp("node-ws") / "realtime.yaml"
    with realtime_upstream() as upstream:
        # The proxy exports OPENAI_BASE_URL=<proxy>/v1 to the command; the upstream is given bare.
        done = subprocess.run(
            [sys.executable, "-m", "llmcassette", "record", "-o", str(path), "--upstream", upstream.http_url]
            + ["--", *node, str(REALTIME), "plain"],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        assert done.returncode == 0, done.stderr
        assert [session.path for session in upstream.sessions] == ["/v1/realtime?model=gpt-realtime"]
        return NodeSession(path, upstream.ws_url, json.loads(done.stdout))


@pytest.fixture(scope="module")
def served(recorded: NodeSession) -> Iterator[ServeProcess]:
    server = ServeProcess(str(recorded.path), "--port", "0")
    try:
        yield server
    finally:
        server.stop()


def environment(server: ServeProcess) -> dict[str, str]:
    return {**os.environ, **RouteTable().environment(server.url)}


def test_node_records_a_realtime_session_through_record(recorded: NodeSession) -> None:
    live = recorded.live
    assert live["errors"] == []
    assert live["text"] == EXPECTED.text and live["audio_bytes"] == len(EXPECTED.audio)
    assert live["usage"] == [EXPECTED.input_tokens, EXPECTED.output_tokens]
    assert live["close"] == {"code": 1000, "reason": "done", "clean": True}
    (interaction,) = llmcassette.load_cassette(recorded.path).interactions
    assert interaction.request.uri == f"{recorded.upstream}/v1/realtime?model=gpt-realtime"
    assert interaction.websocket is not None and interaction.websocket.close is not None
    assert interaction.websocket.close.by == "client"
    assert b"sk-node-realtime-test" not in recorded.path.read_bytes()


def test_serve_replays_it_to_node_as_recorded(
    node: list[str], recorded: NodeSession, served: ServeProcess
) -> None:
    replayed = run_node(node, "plain", environment(served))
    (line,) = served.lines(1)
    assert replayed == recorded.live
    assert line.startswith(
        "WS /openai/v1/realtime?model=gpt-realtime -> 101, from realtime.yaml, 3 client and "
    )


def test_the_node_openai_sdk_replays_the_session_through_serve(
    node: list[str], recorded: NodeSession, tmp_path: Path
) -> None:
    # OpenAIRealtimeWebSocket offers the `realtime` and `openai-insecure-api-key.KEY` subprotocols
    # and node's WebSocket wants one of them chosen, as the real service chooses `realtime` (the
    # local upstream chooses none): the recording says so, as one made from the service would.
    document = llmcassette.load_cassette(recorded.path)
    session = document.interactions[0].websocket
    assert session is not None
    session.subprotocol = "realtime"
    path = tmp_path / "realtime.yaml"
    save_cassette(path, document)
    server = ServeProcess(str(path), "--port", "0")
    try:
        replayed = run_node(node, "sdk", environment(server))
        (line,) = server.lines(1)
    finally:
        server.stop()
    assert replayed == recorded.live
    assert " -> 101, from realtime.yaml, 3 client and " in line


async def _python(url: str) -> dict[str, Any]:
    # The Python openai SDK, as realtime.mjs reads its session.
    client = openai.AsyncOpenAI(api_key="sk-python-test", websocket_base_url=url)
    seen: dict[str, Any] = {"events": [], "text": "", "audio_bytes": 0, "usage": None}
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await connection.session.update(session={"type": "realtime", "output_modalities": ["audio"]})
        await connection.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Say hello."}],
            }
        )
        await connection.response.create()
        async for event in connection:
            seen["events"].append(event.type)
            if event.type == "response.output_audio_transcript.delta":
                seen["text"] += event.delta
            elif event.type == "response.output_audio.delta":
                seen["audio_bytes"] += len(base64.b64decode(event.delta))
            elif event.type == "response.done":
                usage = event.response.usage
                seen["usage"] = [usage.input_tokens, usage.output_tokens] if usage else None
                break
    return seen


def test_the_python_sdk_gets_what_node_got_from_the_node_recording(recorded: NodeSession) -> None:
    # In-process, the upstream gone: the Python SDK's messages match the ones node sent.
    with llmcassette.use_cassette(recorded.path) as cassette:
        python = asyncio.run(_python(recorded.upstream + "/v1"))
    assert cassette.misses == []
    node = recorded.live
    assert python == {key: node[key] for key in ("events", "text", "audio_bytes", "usage")}


@pytest.mark.parametrize(
    ("fault", "close"),
    [
        pytest.param(
            "ws_close:code=1013,after=3",
            {"code": 1013, "reason": "Try again later", "clean": True},
            id="close",
        ),
        pytest.param("ws_drop:after=3", {"code": 1006, "reason": "", "clean": False}, id="drop"),
    ],
)
def test_node_gets_the_fault_its_handshake_header_asks_serve_for(
    node: list[str], recorded: NodeSession, served: ServeProcess, fault: str, close: dict[str, Any]
) -> None:
    broken = run_node(node, "plain", environment(served), CLIENT_FAULT=fault)
    (line,) = served.lines(1)
    assert broken["close"] == close
    got = broken["events"]
    # A drop ends the stream after the messages sent before it: node reads all three.
    assert got == recorded.live["events"][:3]
    assert broken["usage"] is None
    assert f"[fault {fault.split(':')[0]}:" in line
