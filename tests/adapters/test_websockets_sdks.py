"""
The real SDKs through the websockets door: the openai SDK's Realtime client (async and sync) and
google-genai's Live client, each recorded in-process against a local upstream that speaks its
provider's event sequence, then replayed offline with the upstream gone, the SDK yielding the
same events.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from pathlib import Path
from typing import Any

import openai
import pytest
import websockets
from google import genai
from google.genai import types

import llmcassette
from llmcassette import NoMatchingInteraction
from llmcassette._storage import load_cassette
from tests.ws.live_upstream import EXPECTED as LIVE_EXPECTED, live_upstream
from tests.ws.realtime_upstream import EXPECTED as REALTIME_EXPECTED, realtime_upstream
from tests.ws.running import tls_contexts

USER_ITEM: Any = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_text", "text": "Say hello."}],
}
Result = tuple[list[str], str, bytes, tuple[int, int] | None]


async def realtime_async(ws_url: str) -> Result:
    client = openai.AsyncOpenAI(api_key="sk-test-secret", websocket_base_url=ws_url + "/v1")
    events: list[str] = []
    text, audio, usage = "", b"", None
    async with client.realtime.connect(model="gpt-realtime") as connection:
        events.append((await connection.recv()).type)
        await connection.session.update(session={"type": "realtime", "output_modalities": ["audio"]})
        await connection.conversation.item.create(item=USER_ITEM)
        await connection.response.create()
        async for event in connection:
            events.append(event.type)
            if event.type == "response.output_audio_transcript.delta":
                text += event.delta
            elif event.type == "response.output_audio.delta":
                audio += base64.b64decode(event.delta)
            elif event.type == "response.done":
                assert event.response.usage is not None
                usage = (event.response.usage.input_tokens or 0, event.response.usage.output_tokens or 0)
                break
    return events, text, audio, usage


def realtime_sync(ws_url: str) -> Result:
    client = openai.OpenAI(api_key="sk-test-secret", websocket_base_url=ws_url + "/v1")
    events: list[str] = []
    text, audio, usage = "", b"", None
    with client.realtime.connect(model="gpt-realtime") as connection:
        events.append(connection.recv().type)
        connection.session.update(session={"type": "realtime", "output_modalities": ["audio"]})
        connection.conversation.item.create(item=USER_ITEM)
        connection.response.create()
        for event in connection:
            events.append(event.type)
            if event.type == "response.output_audio_transcript.delta":
                text += event.delta
            elif event.type == "response.output_audio.delta":
                audio += base64.b64decode(event.delta)
            elif event.type == "response.done":
                assert event.response.usage is not None
                usage = (event.response.usage.input_tokens or 0, event.response.usage.output_tokens or 0)
                break
    return events, text, audio, usage


# openai 3.57's sync Realtime client calls websockets 17's `connect()` the way 17.1 deprecated.
@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning")
@pytest.mark.parametrize("kind", ["async", "sync"])
def test_the_openai_realtime_client_records_and_replays_offline(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "realtime.yaml"

    def run(ws_url: str) -> Result:
        return asyncio.run(realtime_async(ws_url)) if kind == "async" else realtime_sync(ws_url)

    with realtime_upstream() as upstream:
        ws_url = upstream.ws_url
        with llmcassette.use_cassette(path, record_mode="once"):
            live = run(ws_url)
    assert live[1] == REALTIME_EXPECTED.text and live[2] == REALTIME_EXPECTED.audio
    assert live[3] == (REALTIME_EXPECTED.input_tokens, REALTIME_EXPECTED.output_tokens)
    text = path.read_text()
    assert "sk-test-secret" not in text
    (interaction,) = load_cassette(path).interactions
    assert interaction.request.uri == ws_url + "/v1/realtime?model=gpt-realtime"
    assert interaction.websocket is not None
    sent = [m.json_value["type"] for m in interaction.websocket.messages if m.sender == "client"]
    assert sent == ["session.update", "conversation.item.create", "response.create"]

    with llmcassette.use_cassette(path) as cassette:
        replayed = run(ws_url)
    assert replayed == live
    assert cassette.attempts[0].interaction == 0 and not cassette.misses


def test_the_openai_realtime_client_sees_a_changed_session_as_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "realtime.yaml"
    with realtime_upstream() as upstream:
        with llmcassette.use_cassette(path, record_mode="once"):
            asyncio.run(realtime_async(upstream.ws_url))

    async def changed(ws_url: str) -> None:
        client = openai.AsyncOpenAI(api_key="sk-test", websocket_base_url=ws_url + "/v1")
        async with client.realtime.connect(model="gpt-realtime") as connection:
            await connection.recv()
            await connection.session.update(session={"type": "realtime", "output_modalities": ["text"]})
            async for _ in connection:
                pass

    # The SDK raises the close it got (1008), carrying the miss's explanation; the miss itself
    # fails the test even when the client swallows the close.
    with pytest.raises(websockets.ConnectionClosedError) as info, llmcassette.use_cassette(path):
        asyncio.run(changed(upstream.ws_url))
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert notes.startswith("llmcassette: the WebSocket session with ")
    assert '`session.output_modalities[0]` is "text", recorded "audio"' in notes

    async def swallowed(ws_url: str) -> None:
        with contextlib.suppress(websockets.ConnectionClosedError):
            await changed(ws_url)

    with pytest.raises(NoMatchingInteraction), llmcassette.use_cassette(path):
        asyncio.run(swallowed(upstream.ws_url))


async def live_turn(base_url: str, client_tls: ssl.SSLContext) -> tuple[bytes, str, tuple[Any, Any] | None]:
    options = types.HttpOptions(base_url=base_url, async_client_args={"ssl": client_tls})
    client = genai.Client(api_key="test-key-secret", http_options=options)
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        output_audio_transcription=types.AudioTranscriptionConfig(),
    )
    audio, transcript, usage = b"", "", None
    async with client.aio.live.connect(model="gemini-live-2.5-flash", config=config) as session:
        await session.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="Hi")]))
        async for message in session.receive():
            audio += message.data or b""
            content = message.server_content
            if content and content.output_transcription:
                transcript += content.output_transcription.text or ""
            if message.usage_metadata is not None:
                usage = (
                    message.usage_metadata.prompt_token_count,
                    message.usage_metadata.response_token_count,
                )
    return audio, transcript, usage


def test_the_google_genai_live_client_records_and_replays_offline(tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    server_tls, client_tls = tls_contexts()
    with live_upstream(tls=server_tls) as upstream:
        base_url = upstream.http_url
        with llmcassette.use_cassette(path, record_mode="once"):
            live = asyncio.run(live_turn(base_url, client_tls))
    assert live == (
        LIVE_EXPECTED.audio,
        LIVE_EXPECTED.text,
        (LIVE_EXPECTED.prompt_tokens, LIVE_EXPECTED.response_tokens),
    )
    assert "test-key-secret" not in path.read_text()
    (interaction,) = load_cassette(path).interactions
    assert interaction.request.uri.startswith(upstream.ws_url + "/ws/")
    assert interaction.websocket is not None
    # The Live API sends JSON in binary frames: kept as binary, byte for byte.
    assert all(m.is_binary for m in interaction.websocket.messages if m.sender == "server")

    with llmcassette.use_cassette(path) as cassette:
        replayed = asyncio.run(live_turn(base_url, client_tls))
    assert replayed == live
    assert cassette.attempts[0].interaction == 0 and not cassette.misses


def test_the_openai_beta_realtime_client_goes_through_the_door_too(tmp_path: Path) -> None:
    path = tmp_path / "beta.yaml"

    async def first_event(ws_url: str) -> bytes:
        client = openai.AsyncOpenAI(api_key="sk-test-secret", websocket_base_url=ws_url + "/v1")
        async with client.beta.realtime.connect(model="gpt-realtime") as connection:
            return await connection.recv_bytes()

    with realtime_upstream() as upstream:
        ws_url = upstream.ws_url
        with llmcassette.use_cassette(path, record_mode="once"):
            live = asyncio.run(first_event(ws_url))
    (interaction,) = load_cassette(path).interactions
    assert interaction.request.headers["OpenAI-Beta"] == ["realtime=v1"]
    with llmcassette.use_cassette(path) as cassette:
        assert asyncio.run(first_event(ws_url)) == live
    assert cassette.attempts[0].interaction == 0
