"""
The WebSocket fault set through the proxy door: a Realtime session recorded by ``record`` from the
local upstream, replayed offline by ``serve``, each fault chosen per connection by the handshake's
``X-Llmcassette-Fault`` header (the openai SDK sends it on every handshake, reconnects included),
and the SDK seeing what it sees in-process. google-genai's Live client dials ``wss://`` whenever
it has an API key: its run through ``record`` and ``serve`` listening with TLS is in
``tests/cli/test_tls.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from llmcassette._matrix import WEBSOCKET_FAULTS
from llmcassette.proxy import CassetteServer, Recorder, RouteTable
from tests.sdk_faults._realtime import (
    HANG_WAIT_S,
    OPENAI,
    STALL_WAIT_S,
    Check,
    answered,
    openai_closed,
    openai_conversation,
    refused,
)
from tests.ws.realtime_upstream import EXPECTED, realtime_upstream

# A recording from 127.0.0.1 is no provider's: a refused handshake carries the generic error body.
SERVE: dict[str, tuple[Check, bool]] = {
    **OPENAI,
    "unauthorized": (refused(401, {"type": "unauthorized"}), False),
    "rate_limit": (refused(429, {"type": "rate_limit"}, EXPECTED), False),
    "unavailable": (refused(503, {"type": "unavailable"}, EXPECTED), False),
}


def _ws(url: str) -> str:
    return "ws" + url.removeprefix("http")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "realtime.yaml"
    with (
        realtime_upstream() as upstream,
        Recorder(path, routes=RouteTable(upstream=upstream.http_url)) as url,
    ):
        outcome = asyncio.run(openai_conversation(_ws(url), reconnect=False))
    answered(outcome, EXPECTED)
    return path


@pytest.mark.parametrize("case", list(WEBSOCKET_FAULTS))
def test_the_openai_realtime_client_under_each_fault_through_serve(case: str, recorded: Path) -> None:
    check, reconnect = SERVE[case]
    lines: list[str] = []
    with CassetteServer([recorded], log=lines.append) as url:
        wait_s = STALL_WAIT_S if case == "ws_stall" else HANG_WAIT_S
        headers = {"X-Llmcassette-Fault": WEBSOCKET_FAULTS[case]}
        outcome = asyncio.run(
            openai_conversation(_ws(url), reconnect=reconnect, wait_s=wait_s, headers=headers)
        )
    check(outcome)
    assert lines and all(line.startswith("WS /v1/realtime?model=gpt-realtime -> ") for line in lines)


def test_serve_fault_flags_act_on_sessions_too(recorded: Path) -> None:
    with CassetteServer([recorded], faults=["ws_close:code=1013,times=1"]) as url:
        outcome = asyncio.run(openai_conversation(_ws(url), reconnect=True))
    OPENAI["ws_close_1013"][0](outcome)


def test_a_stall_for_ever_on_serve_ends_after_stall_max_s_with_a_drop(recorded: Path) -> None:
    # As an HTTP stall on serve: a client that never gives up does not hold the server for ever.
    lines: list[str] = []
    with CassetteServer([recorded], stall_max_s=0.2, log=lines.append) as url:
        headers = {"X-Llmcassette-Fault": "ws_stall:after=4"}
        outcome = asyncio.run(openai_conversation(_ws(url), reconnect=False, wait_s=10.0, headers=headers))
    openai_closed(None)(outcome)  # dropped without a close frame, not the client's own wait
    assert outcome.events[-1] == "response.created"  # the fourth server message
