"""The Live API test upstream, driven by the real google-genai SDK with no cassette, so it is known right."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import websockets
from google import genai
from google.genai import errors, types
from websockets.asyncio.client import connect

from tests.ws.live_upstream import EXPECTED, live_upstream
from tests.ws.running import RunningUpstream, tls_contexts

pytestmark = pytest.mark.anyio

MODEL = "gemini-live-2.5-flash"


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    return tls_contexts()


@pytest.fixture
def upstream(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> Iterator[RunningUpstream]:
    with live_upstream(tls=tls[0], go_away_after_turns=2) as running:
        yield running


def _client(upstream: RunningUpstream, client_tls: ssl.SSLContext) -> genai.Client:
    options = types.HttpOptions(base_url=upstream.http_url, async_client_args={"ssl": client_tls})
    return genai.Client(api_key="test-key", http_options=options)


async def test_an_audio_turn_streams_inline_audio_and_its_transcription(
    upstream: RunningUpstream, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        output_audio_transcription=types.AudioTranscriptionConfig(),
    )
    async with _client(upstream, tls[1]).aio.live.connect(model=MODEL, config=config) as session:
        await session.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="Hi")]))
        audio, transcript, usage = b"", "", None
        async for message in session.receive():
            audio += message.data or b""
            content = message.server_content
            if content and content.output_transcription:
                transcript += content.output_transcription.text or ""
            usage = message.usage_metadata or usage
    assert audio == EXPECTED.audio
    assert transcript == EXPECTED.text
    assert usage is not None
    assert (usage.prompt_token_count, usage.response_token_count) == (
        EXPECTED.prompt_tokens,
        EXPECTED.response_tokens,
    )
    received = upstream.sessions[0]
    assert received.path.endswith(".GenerativeService.BidiGenerateContent")
    assert received.headers["x-goog-api-key"] == "test-key"
    assert [next(iter(message)) for message in received.received] == ["setup", "client_content"]
    assert received.received[0]["setup"]["model"] == f"models/{MODEL}"


async def test_text_turns_from_realtime_input_and_a_go_away(
    upstream: RunningUpstream, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    config = types.LiveConnectConfig(response_modalities=[types.Modality.TEXT])
    async with _client(upstream, tls[1]).aio.live.connect(model=MODEL, config=config) as session:
        texts = []
        for prompt in ("one", "two"):
            await session.send_realtime_input(text=prompt)
            texts.append("".join([message.text or "" async for message in session.receive()]))
        go_away = await anext(aiter(session.receive()))
    assert texts == [EXPECTED.text, EXPECTED.text]
    assert go_away.go_away is not None
    assert go_away.go_away.time_left == "50s"


async def test_an_unknown_message_closes_with_1007_which_the_sdk_raises_as_an_api_error(
    upstream: RunningUpstream, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    async with _client(upstream, tls[1]).aio.live.connect(model=MODEL) as session:
        await session._ws.send('{"bogus": {}}')
        with pytest.raises(errors.APIError) as raised:
            async for _ in session.receive():
                pass
    assert raised.value.code == 1007
    assert 'Unknown name "bogus"' in str(raised.value)


async def test_a_session_without_a_key_is_closed_with_1008(
    upstream: RunningUpstream, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    async with connect(upstream.ws_url + path, ssl=tls[1]) as connection:
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await connection.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(upstream.ws_url + "/ws/elsewhere", ssl=tls[1]):
            pass
    assert refused.value.response.status_code == 404
