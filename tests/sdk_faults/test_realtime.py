"""
The WebSocket fault set under the real realtime SDKs, in-process: a session recorded once from
the local upstreams (the openai SDK's Realtime client, google-genai's Live client) through the
websockets door, then replayed offline under each fault of ``websocket`` (``WEBSOCKET_FAULTS``),
checking what the SDK raises or yields (see ``_realtime.py``), and what the attempt log shows.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
import websockets

import llmcassette
from llmcassette._matrix import WEBSOCKET_FAULTS
from tests.sdk_faults._realtime import (
    GEMINI,
    HANG_WAIT_S,
    OPENAI,
    STALL_WAIT_S,
    USER_ITEM,
    live_conversation,
    openai_closed,
    openai_conversation,
    openai_reconnected,
)
from tests.ws.live_upstream import EXPECTED as LIVE_EXPECTED, live_upstream
from tests.ws.realtime_upstream import EXPECTED as REALTIME_EXPECTED, realtime_upstream
from tests.ws.running import tls_contexts

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
    openai_reconnected(1011)(outcome)
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
    openai_closed(4000)(outcome)
    assert isinstance(outcome.error, websockets.ConnectionClosedError)
    assert outcome.error.rcvd is not None and outcome.error.rcvd.reason == "session expired"


def test_dispatch_events_raises_the_error_event_without_an_error_handler(realtime_cassette: Recorded) -> None:
    async def dispatch() -> BaseException | None:
        client = openai.AsyncOpenAI(api_key="sk-test", websocket_base_url=realtime_cassette.url + "/v1")
        options: Any = {"close_timeout": 0.2}
        async with client.realtime.connect(
            model="gpt-realtime", websocket_connection_options=options
        ) as connection:

            async def start(event: Any) -> None:
                await connection.session.update(session={"type": "realtime", "output_modalities": ["audio"]})
                await connection.conversation.item.create(item=USER_ITEM)
                await connection.response.create()

            connection.on("session.created", start)

            try:
                async with asyncio.timeout(HANG_WAIT_S):
                    await connection.dispatch_events()
            except openai.OpenAIError as exc:
                return exc
        return None

    with llmcassette.use_cassette(realtime_cassette.path, faults=["ws_error:after=6,message=boom"]):
        raised = asyncio.run(dispatch())
    assert isinstance(raised, openai.OpenAIError)
    assert str(raised).startswith("WebSocket error: ") and "message='boom'" in str(raised)
