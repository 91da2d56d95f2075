"""The Realtime test upstream, driven by the real openai SDK with no cassette, so it is known right."""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

import openai
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.ws.realtime_upstream import EXPECTED, RATE_LIMITS, realtime_upstream

pytestmark = pytest.mark.anyio

USER_ITEM = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello."}]}


def _client(ws_url: str, api_key: str = "sk-test") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=api_key, websocket_base_url=ws_url + "/v1")


@pytest.mark.parametrize("modality", ["audio", "text"])
async def test_a_response_streams_the_deltas_the_sdk_reassembles(modality: Literal["audio", "text"]) -> None:
    with realtime_upstream() as upstream:
        async with _client(upstream.ws_url).realtime.connect(model="gpt-realtime") as connection:
            created = await connection.recv()
            await connection.session.update(session={"type": "realtime", "output_modalities": [modality]})
            await connection.conversation.item.create(item=USER_ITEM)  # type: ignore[arg-type]
            await connection.response.create()
            events, text, audio = [], "", b""
            async for event in connection:
                events.append(event.type)
                if event.type in ("response.output_text.delta", "response.output_audio_transcript.delta"):
                    text += event.delta
                elif event.type == "response.output_audio.delta":
                    audio += base64.b64decode(event.delta)
                elif event.type == "rate_limits.updated":
                    limits = {limit.name: limit.remaining for limit in event.rate_limits}
                elif event.type == "response.done":
                    done = event
                    break
    assert created.type == "session.created"
    assert created.session.model == "gpt-realtime"  # type: ignore[union-attr]
    assert events[:4] == [
        "session.updated",
        "conversation.item.created",
        "response.created",
        "rate_limits.updated",
    ]
    assert text == EXPECTED.text
    assert audio == (EXPECTED.audio if modality == "audio" else b"")
    assert limits == {limit["name"]: limit["remaining"] for limit in RATE_LIMITS}
    assert done.response.status == "completed"
    assert done.response.usage is not None
    assert (done.response.usage.input_tokens, done.response.usage.output_tokens) == (
        EXPECTED.input_tokens,
        EXPECTED.output_tokens,
    )
    session = upstream.sessions[0]
    assert session.path == "/v1/realtime?model=gpt-realtime"
    assert session.headers["authorization"] == "Bearer sk-test"
    assert [event["type"] for event in session.received] == [
        "session.update",
        "conversation.item.create",
        "response.create",
    ]


async def test_bad_input_gets_an_error_event_and_the_session_stays_open() -> None:
    with realtime_upstream() as upstream:
        async with _client(upstream.ws_url).realtime.connect(model="gpt-realtime") as connection:
            await connection.recv()
            no_type: Any = {"type": "session.update", "session": {"instructions": "x"}}
            await connection.send(no_type)
            missing = await connection.recv()
            await connection._connection.send("{not json")
            unparsable = await connection.recv()
            await connection.send({"type": "response.create"})
            after = await connection.recv()
            # Read the response to its end: a client that leaves more than its queue unread (16
            # messages) stops reading the socket, misses the close frame and waits 10 s to close.
            async for event in connection:
                if event.type == "response.done":
                    break
    assert missing.type == "error"
    assert (missing.error.code, missing.error.param) == ("missing_required_parameter", "session.type")
    assert unparsable.type == "error"
    assert unparsable.error.code == "invalid_json"
    assert after.type == "response.created"


async def test_input_audio_is_committed_into_a_user_item() -> None:
    with realtime_upstream() as upstream:
        async with _client(upstream.ws_url).realtime.connect(model="gpt-realtime") as connection:
            await connection.recv()
            await connection.input_audio_buffer.append(audio=base64.b64encode(b"\0\1" * 480).decode())
            await connection.input_audio_buffer.commit()
            committed, item = await connection.recv(), await connection.recv()
    assert committed.type == "input_audio_buffer.committed"
    assert item.type == "conversation.item.created"
    assert item.item.id == committed.item_id


async def test_a_handshake_without_a_key_is_refused_with_openais_error_body() -> None:
    with realtime_upstream() as upstream:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(upstream.ws_url + "/v1/realtime?model=gpt-realtime"):
                pass
        with pytest.raises(InvalidStatus) as no_model:
            async with _client(upstream.ws_url).realtime.connect():
                pass
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"]["type"] == "invalid_request_error"
    assert no_model.value.response.status_code == 400
    assert upstream.refused == ["/v1/realtime?model=gpt-realtime", "/v1/realtime"]
    assert upstream.sessions == []
