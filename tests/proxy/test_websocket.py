"""
WebSocket sessions through the proxy door: ``record`` relays an upgrade to the upstream its route
gives and records the session; ``serve`` replays it offline, turn by turn, with faults chosen as
for HTTP (``--fault`` and the handshake's ``X-Llmcassette-Fault``). The client is the real openai
SDK's Realtime client (``client.realtime.connect()``, on ``websockets``); the upstream is the local
Realtime API of ``tests/ws``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import openai
import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from llmcassette import load_cassette
from llmcassette.proxy import CassetteServer, Recorder, RouteTable
from tests.websocket.test_server import UPSTREAM_SERVER, greet, handshake_headers, named, recorded_headers
from tests.ws.realtime_upstream import EXPECTED, realtime_upstream
from tests.ws.running import run_upstream

_WEBSOCKETS_MAJOR = int(version("websockets").split(".")[0])
USER_ITEM: Any = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_text", "text": "Say hello."}],
}


async def _talk(base_url: str, *, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """One Realtime session as a user's program has it: what the SDK yielded, or what it raised."""
    client = openai.AsyncOpenAI(api_key="sk-proxy-test-key-0123456789", websocket_base_url=base_url + "/v1")
    seen: dict[str, Any] = {"events": [], "text": "", "audio": b"", "usage": None, "error": None}
    try:
        async with client.realtime.connect(model="gpt-realtime", extra_headers=headers or {}) as connection:
            await connection.session.update(session={"type": "realtime", "output_modalities": ["audio"]})
            await connection.conversation.item.create(item=USER_ITEM)
            await connection.response.create()
            async for event in connection:
                seen["events"].append(event.type)
                if event.type == "response.output_audio_transcript.delta":
                    seen["text"] += event.delta
                elif event.type == "response.output_audio.delta":
                    seen["audio"] += base64.b64decode(event.delta)
                elif event.type == "response.done":
                    usage = event.response.usage
                    seen["usage"] = (usage.input_tokens, usage.output_tokens) if usage else None
                    break
    except Exception as exc:  # what the SDK raises is part of what the client saw
        seen["error"] = exc
    return seen


def _ws(url: str) -> str:
    return "ws" + url.removeprefix("http")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    """A session recorded through the proxy: the cassette, what the SDK saw live, the upstream's URL."""
    path = tmp_path_factory.mktemp("ws") / "realtime.yaml"
    with realtime_upstream() as upstream:
        lines: list[str] = []
        with Recorder(path, routes=RouteTable(upstream=upstream.http_url), log=lines.append) as url:
            live = asyncio.run(_talk(_ws(url)))
        assert [session.path for session in upstream.sessions] == ["/v1/realtime?model=gpt-realtime"]
    assert live["error"] is None, live["error"]
    assert lines == [
        f"WS ws://127.0.0.1:{upstream.port}/v1/realtime?model=gpt-realtime -> 101, 3 client and "
        f"{len(live['events'])} server messages, closed by client (1000)"
    ]
    return path, live, upstream.ws_url


def test_record_relays_the_session_to_the_routes_upstream_and_stores_it(
    recorded: tuple[Path, dict[str, Any], str],
) -> None:
    path, live, upstream = recorded
    assert live["text"] == EXPECTED.text and live["audio"] == EXPECTED.audio
    assert live["usage"] == (EXPECTED.input_tokens, EXPECTED.output_tokens)
    (interaction,) = load_cassette(path).interactions
    assert interaction.request.uri == f"{upstream}/v1/realtime?model=gpt-realtime"  # the upstream's, not ours
    assert "sk-proxy-test-key" not in path.read_text()  # the key is scrubbed from the handshake
    assert interaction.response.status is not None and interaction.response.status.code == 101
    session = interaction.websocket
    assert session is not None
    sent = [m.json_value["type"] for m in session.messages if m.sender == "client"]
    assert sent == ["session.update", "conversation.item.create", "response.create"]
    got = [m.json_value["type"] for m in session.messages if m.sender == "server"]
    assert got == live["events"] and got[0] == "session.created"
    offsets = [m.offset_ms for m in session.messages]
    assert offsets == sorted(offsets)
    assert session.close is not None and (session.close.by, session.close.code) == ("client", 1000)


def test_serve_replays_the_session_offline_as_it_was_recorded(
    recorded: tuple[Path, dict[str, Any], str],
) -> None:
    path, live, _ = recorded
    lines: list[str] = []
    with CassetteServer([path], log=lines.append) as url:
        replayed = asyncio.run(_talk(_ws(url)))
        again = asyncio.run(_talk(_ws(url)))  # the last recording answers again, as for HTTP
    assert replayed == live and again == live
    assert lines[0].startswith("WS /v1/realtime?model=gpt-realtime -> 101, ")
    assert lines[0].endswith("closed by client (1000)") and "-> 101, from realtime.yaml, 3 client" in lines[0]


def test_serve_answers_a_session_no_cassette_holds_with_a_404_naming_the_closest(
    recorded: tuple[Path, dict[str, Any], str],
) -> None:
    path, _, _ = recorded

    async def refused_by(url: str) -> InvalidStatus:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url):
                pass
        return refused.value

    with CassetteServer([path]) as url:
        refused = asyncio.run(refused_by(_ws(url) + "/v1/other"))
    assert refused.response.status_code == 404
    error = json.loads(refused.response.body)["error"]
    assert error["type"] == "llmcassette_no_match"
    assert error["message"].startswith("llmcassette: ")


def test_record_answers_an_upgrade_no_route_takes_with_a_404(tmp_path: Path) -> None:
    async def refused_by(url: str) -> InvalidStatus:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url):
                pass
        return refused.value

    with Recorder(tmp_path / "c.yaml") as url:
        refused = asyncio.run(refused_by(_ws(url) + "/nowhere/v1/realtime"))
    assert refused.response.status_code == 404
    assert json.loads(refused.response.body)["error"]["type"] == "llmcassette_no_route"
    assert not (tmp_path / "c.yaml").exists()


def test_stopping_record_ends_an_open_session_and_keeps_it_without_a_close(tmp_path: Path) -> None:
    path = tmp_path / "open.yaml"

    async def talk(recorder: Recorder) -> type[BaseException]:
        headers = {"Authorization": "Bearer sk-proxy-test-key-0123456789"}
        async with connect(
            _ws(recorder.url) + "/v1/realtime?model=gpt-realtime", additional_headers=headers
        ) as socket:
            created = json.loads(await socket.recv())
            assert created["type"] == "session.created"
            await socket.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
            assert json.loads(await socket.recv())["type"] == "session.updated"
            await asyncio.to_thread(recorder.stop)  # the session is still open
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.recv()
            return type(closed.value)

    with realtime_upstream() as upstream:
        recorder = Recorder(path, routes=RouteTable(upstream=upstream.http_url), stop_timeout_s=1)
        recorder.start()
        try:
            ended = asyncio.run(talk(recorder))
        finally:
            recorder.stop()
    assert ended is websockets.ConnectionClosedError  # cut, without a close frame
    (interaction,) = load_cassette(path).interactions
    session = interaction.websocket
    assert session is not None and session.close is None
    kinds = [(m.sender, m.json_value["type"]) for m in session.messages]
    assert kinds == [
        ("server", "session.created"),
        ("client", "session.update"),
        ("server", "session.updated"),
    ]


def test_serve_refuses_a_handshake_whose_fault_header_does_not_parse(
    recorded: tuple[Path, dict[str, Any], str],
) -> None:
    path, _, _ = recorded

    async def refused_by(url: str) -> InvalidStatus:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers={"X-Llmcassette-Fault": "no_such_fault"}):
                pass
        return refused.value

    lines: list[str] = []
    with CassetteServer([path], log=lines.append) as url:
        refused = asyncio.run(refused_by(_ws(url) + "/v1/realtime?model=gpt-realtime"))
    assert refused.response.status_code == 400
    error = json.loads(refused.response.body)["error"]
    assert error["type"] == "llmcassette_bad_fault"
    assert error["message"].startswith(
        "llmcassette: the x-llmcassette-fault header 'no_such_fault' is not valid: "
    )
    assert lines == ["WS /v1/realtime?model=gpt-realtime -> 400, bad x-llmcassette-fault header"]


@pytest.mark.parametrize(
    ("fault", "code", "events"),
    [
        pytest.param("ws_close:code=1011,after=3", 1011, 3, id="close-1011"),
        pytest.param("ws_close:code=4000,reason=provider says no,after=1", 4000, 1, id="close-4000"),
        pytest.param("ws_drop:after=2", 1006, 2, id="drop"),
    ],
)
def test_serve_breaks_a_session_as_the_handshakes_fault_header_says(
    recorded: tuple[Path, dict[str, Any], str], fault: str, code: int, events: int
) -> None:
    path, live, _ = recorded
    lines: list[str] = []
    with CassetteServer([path], log=lines.append) as url:
        broken = asyncio.run(_talk(_ws(url), headers={"X-Llmcassette-Fault": fault}))
        whole = asyncio.run(_talk(_ws(url)))  # the header chose it for its own session only
    error = broken["error"]
    assert isinstance(error, websockets.ConnectionClosedError), error
    # The events before the cut reached the client (`after` counts server messages), a drop's
    # too: it ends the stream after them, it does not reset it. Before websockets 14 the asyncio
    # client drops the messages it had not read when the close came.
    got = broken["events"]
    if _WEBSOCKETS_MAJOR >= 14:
        assert got == live["events"][:events]
    else:
        assert got == live["events"][: len(got)] and len(got) <= events
    if code == 1006:
        assert error.rcvd is None  # no close frame: the connection just ended
    else:
        assert error.rcvd is not None and error.rcvd.code == code
    assert whole == live
    ended = "dropped without a close frame" if code == 1006 else f"closed by server ({code})"
    # How many client messages arrived before the cut depends on the client's timing: not counted.
    assert f" and {events} server messages, {ended} [fault {fault.split(':')[0]}:" in lines[0]
    assert "[fault" not in lines[1]


def test_serve_refuses_a_handshake_with_a_status_fault_and_the_providers_error(
    recorded: tuple[Path, dict[str, Any], str],
) -> None:
    path, _, _ = recorded
    with CassetteServer([path], faults=["rate_limit:times=1,retry_after=2"]) as url:
        refused = asyncio.run(_talk(_ws(url)))
        then = asyncio.run(_talk(_ws(url)))
    error = refused["error"]
    assert isinstance(error, InvalidStatus), error
    assert error.response.status_code == 429
    assert error.response.headers["retry-after"] == "2"
    # The upstream was recorded at 127.0.0.1: the generic OpenAI-compatible error body.
    assert json.loads(error.response.body)["error"]["type"] == "rate_limit"
    assert then["error"] is None and then["text"] == EXPECTED.text


def test_serve_fragments_messages_into_continuation_frames_the_sdk_reassembles(
    recorded: tuple[Path, dict[str, Any], str],
) -> None:
    path, live, _ = recorded
    with CassetteServer([path], faults=["ws_fragment:size=7"]) as url:
        fragmented = asyncio.run(_talk(_ws(url)))
    assert fragmented == live


def test_record_and_serve_answer_the_handshake_with_the_upstreams_date_and_server_once(
    tmp_path: Path,
) -> None:
    # Before: `record` sent the client two `Date` headers (websockets' and the upstream's), and
    # `serve` a fresh `Date` of its own and no `Server`.
    path = tmp_path / "session.yaml"
    with run_upstream(greet, server_header=UPSTREAM_SERVER) as upstream:
        with Recorder(path, routes=RouteTable(upstream=upstream.http_url)) as url:
            live = handshake_headers(_ws(url) + "/v1/realtime")
    recorded = recorded_headers(path)
    assert recorded["server"] == [UPSTREAM_SERVER] and len(recorded["date"]) == 1
    assert named(live, "date") == recorded["date"] and named(live, "server") == [UPSTREAM_SERVER]
    with CassetteServer([path]) as url:
        replayed = handshake_headers(_ws(url) + "/v1/realtime")
    assert named(replayed, "date") == recorded["date"] and named(replayed, "server") == [UPSTREAM_SERVER]
