"""
Real clients of the libraries beyond httpx, each against a real local server: an Ollama client
on requests (NDJSON stream), an OpenAI-compatible client on aiohttp (SSE stream), a chat client
on ``urllib.request`` (JSON), boto3's bedrock-runtime ``converse``, and a gateway client that
checks the server with httpx and chats with requests, both in one cassette.

Each is recorded from its server, which is then stopped; replayed offline with every way of
opening a connection made to fail (no socket is opened); and run under the standard fault matrix
on the virtual clock, where each client must recover or fail with its own error as it is written
to, with the attempt log showing what it did.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import llmcassette
from llmcassette import VirtualClock
from llmcassette._matrix import STANDARD_FAULTS
from llmcassette.faults import parse_fault
from tests.adapters.bedrock import bedrock_app
from tests.adapters.clients import (
    Answer,
    BedrockClient,
    ChatError,
    ChatStatusError,
    ChatStreamError,
    GatewayClient,
    OllamaClient,
    OpenAICompatibleClient,
    UrllibChatClient,
)
from tests.recordings import CASSETTES
from tests.servers import serve
from tests.upstreams import EXPECTED, TOOL_NAME, provider_app

PROMPT = "What is the weather in Paris?"
WEATHER = Answer(EXPECTED.text, [TOOL_NAME])


@dataclass(frozen=True)
class Flow:
    id: str
    #: Which upstream it is recorded from: "providers" or "bedrock".
    upstream: str
    run: Callable[[str], Answer]
    answer: Answer


def _aiohttp_chat(base: str) -> Answer:
    return asyncio.run(OpenAICompatibleClient(base).achat(PROMPT))


FLOWS = [
    Flow("requests-ollama-ndjson", "providers", lambda base: OllamaClient(base).chat(PROMPT), WEATHER),
    Flow("aiohttp-openai-sse", "providers", _aiohttp_chat, WEATHER),
    Flow("urllib-openai-json", "providers", lambda base: UrllibChatClient(base).chat(PROMPT), WEATHER),
    Flow(
        "boto3-bedrock-converse",
        "bedrock",
        lambda base: BedrockClient(base).chat(PROMPT),
        Answer("Hi there."),
    ),
    Flow("httpx-and-requests-gateway", "providers", lambda base: GatewayClient(base).chat(PROMPT), WEATHER),
]
FLOW_IDS = [flow.id for flow in FLOWS]


def _providers() -> Any:
    app = provider_app()

    async def tags(request: Request) -> JSONResponse:
        return JSONResponse({"models": [{"name": "llama3"}]}, headers={"connection": "close"})

    app.router.routes.append(Route("/api/tags", tags, methods=["GET"]))
    return app


@dataclass(frozen=True)
class Recording:
    path: Path
    base: str


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recording]:
    """Every flow recorded from its upstream; the upstreams are stopped afterwards."""
    folder = tmp_path_factory.mktemp("clients")
    found: dict[str, Recording] = {}
    for upstream, app in (("providers", _providers()), ("bedrock", bedrock_app([]))):
        with serve(app) as base:
            for flow in FLOWS:
                if flow.upstream != upstream:
                    continue
                path = folder / f"{flow.id}.yaml"
                with llmcassette.use_cassette(path, record_mode="once") as cassette:
                    assert flow.run(base) == flow.answer
                assert cassette.attempts and all(a.recorded for a in cassette.attempts)
                found[flow.id] = Recording(path, base)
    return found


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every way of opening a connection fails the test: a socket's, and an event loop's."""
    opened: list[str] = []

    def connect(self: socket.socket, *args: object) -> None:
        opened.append(f"socket.connect{args}")
        raise AssertionError(f"a socket was opened during replay: {args}")

    async def create_connection(self: asyncio.AbstractEventLoop, *args: object, **kwargs: object) -> Any:
        opened.append(f"loop.create_connection{args}")
        raise AssertionError(f"the event loop opened a connection during replay: {args}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", create_connection)
    yield opened
    assert opened == []


@pytest.mark.parametrize("flow", FLOWS, ids=FLOW_IDS)
def test_recorded_then_replayed_offline(
    flow: Flow, recordings: dict[str, Recording], no_network: list[str]
) -> None:
    recording = recordings[flow.id]
    with llmcassette.use_cassette(recording.path) as replay:
        assert flow.run(recording.base) == flow.answer
    assert replay.attempts and not any(a.recorded for a in replay.attempts)
    assert [a.interaction for a in replay.attempts] == list(range(len(replay.attempts)))


def test_the_gateway_cassette_holds_the_httpx_and_the_requests_exchange(
    recordings: dict[str, Recording],
) -> None:
    document = llmcassette.load_cassette(recordings["httpx-and-requests-gateway"].path)
    (tags, chat) = document.interactions
    assert tags.request.method == "GET" and tags.request.uri.endswith("/api/tags")
    assert "python-httpx" in str(tags.request.headers)
    assert chat.request.uri.endswith("/api/chat") and "python-requests" in str(chat.request.headers)
    assert chat.response.stream is not None and chat.response.stream.chunks is not None


# -- the standard fault matrix -----------------------------------------------------------------------

#: Transient: each client retries once (the fault fires once) and gets the recording.
RECOVERS = {
    "rate_limit",
    "server_error",
    "overloaded",
    "connect_error",
    "read_timeout",
    "disconnect",
    "stall",
}
#: The same bytes in other chunks: read as recorded, at the first attempt.
PASSES = {"rechunk_1_byte", "rechunk_adversarial"}
#: Not transient: the client's own error, at once, with no retry.
FAILS: dict[str, type[ChatError]] = {
    "unauthorized": ChatStatusError,
    "empty_stream": ChatStreamError,
    "malformed_chunk": ChatStreamError,
    "truncate": ChatStreamError,
    "error_event": ChatStreamError,
}
#: Where a client differs: botocore reads a JSON body cut by `disconnect` without a word, so the
#: Bedrock client finds the answer without output, which it does not retry.
OVERRIDES: dict[tuple[str, str], type[ChatError]] = {
    ("boto3-bedrock-converse", "disconnect"): ChatStreamError,
}


def test_the_matrix_table_covers_the_standard_set() -> None:
    assert RECOVERS | PASSES | set(FAILS) == set(STANDARD_FAULTS)
    assert not RECOVERS & PASSES and not (RECOVERS | PASSES) & set(FAILS)


def _check(
    flow: Flow, fault: str, spec: str, outcome: Answer | ChatError, replay: Any, clock: VirtualClock
) -> None:
    """What ``flow``'s client must have done under the standard matrix's ``fault``."""
    checks: list[list[str]] = [[]] if flow.id == "httpx-and-requests-gateway" else []
    faults = [a.faults for a in replay.attempts]
    failure = OVERRIDES.get((flow.id, fault), FAILS.get(fault))
    if failure is not None:
        assert type(outcome) is failure, f"{flow.id} under {fault}: {outcome!r}"
        assert faults == [*checks, [spec]]  # no retry
        assert clock.sleeps == []
    elif fault in PASSES:
        assert outcome == flow.answer
        assert faults == [*checks, [spec]]
        assert clock.sleeps == []
    else:
        assert outcome == flow.answer, f"{flow.id} did not recover from {fault}: {outcome!r}"
        assert faults == [*checks, [spec], []]  # the retry got the recording
        assert _expected_sleeps(flow, fault, clock.sleeps), clock.sleeps
        # The retry came after the waits, and after the client's 30 s read timeout for a stall
        # (`read_timeout` is `delay_ms=0`: no silence), all on the virtual clock.
        waited_s = sum(clock.sleeps) + (30.0 if fault == "stall" else 0.0)
        assert replay.attempts[-1].time_s == pytest.approx(waited_s, abs=0.05)
    assert not any(a.recorded for a in replay.attempts)


def _expected_sleeps(flow: Flow, fault: str, sleeps: list[float]) -> bool:
    if flow.upstream == "bedrock":
        # botocore's standard mode: rand(0, 1) * 1 s before retrying a throttle, * 50 ms otherwise.
        return len(sleeps) == 1 and 0 <= sleeps[0] <= (1.0 if fault == "rate_limit" else 0.05)
    # The clients' own: the 429's `retry-after: 1`, else backoff from 0.5 s.
    return sleeps == ([1.0] if fault == "rate_limit" else [0.5])


@pytest.mark.parametrize("fault", list(STANDARD_FAULTS))
@pytest.mark.parametrize("flow", FLOWS, ids=FLOW_IDS)
def test_each_client_under_the_standard_fault_matrix(
    flow: Flow, fault: str, recordings: dict[str, Recording], no_network: list[str]
) -> None:
    recording = recordings[flow.id]
    model = parse_fault(STANDARD_FAULTS[fault])
    if flow.id == "httpx-and-requests-gateway":
        model = model.model_copy(update={"path": "/api/chat"})  # the chat, after the httpx check
    spec = model.spec()
    outcome: Answer | ChatError
    with VirtualClock() as clock, llmcassette.use_cassette(recording.path, faults=[spec]) as replay:
        try:
            outcome = flow.run(recording.base)
        except ChatError as exc:
            outcome = exc
    _check(flow, fault, spec, outcome, replay, clock)


# -- the same through the pytest plugin ---------------------------------------------------------------

#: Where the test's recording (:data:`OLLAMA_RECORDING`) was recorded (the fake providers on a fixed
#: loopback port). To record it again::
#:
#:     pytest tests/adapters/test_clients.py --record-mode=rewrite \
#:         -k "test_ollama_client_under_the_matrix_marker and rechunk_1_byte"
#:
#: (a stream fault leaves a recording alone). Without ``--record-mode`` nothing listens there.
OLLAMA_URL = "http://127.0.0.1:48161"
#: The project's recordings live in its top-level ``cassettes/`` (see ``tests/recordings.py``).
OLLAMA_RECORDING = CASSETTES / "adapters" / "test_clients" / "test_ollama_client_under_the_matrix_marker.yaml"


@pytest.fixture
def ollama_when_recording(request: pytest.FixtureRequest) -> Iterator[None]:
    """The fake providers on the recorded address while recording; else no network at all."""
    if request.config.getoption("--record-mode", default=None) in (None, "none"):
        request.getfixturevalue("no_network")
        yield
        return
    with serve(_providers(), port=int(OLLAMA_URL.rsplit(":", 1)[1])):
        yield


@pytest.mark.llm_fault_matrix("standard")
@pytest.mark.llm_cassette(str(OLLAMA_RECORDING))
def test_ollama_client_under_the_matrix_marker(
    ollama_when_recording: None,
    llm_fault: Any,
    llm_cassette: llmcassette.Cassette,
    llm_clock: VirtualClock,
) -> None:
    # The plugin's own matrix: one case per standard fault, each on the virtual clock, all
    # replaying the test's one recording (OLLAMA_RECORDING).
    flow = FLOWS[0]
    outcome: Answer | ChatError
    try:
        outcome = flow.run(OLLAMA_URL)
    except ChatError as exc:
        outcome = exc
    if llm_cassette.attempts[0].recorded:
        assert outcome == flow.answer  # recording (see OLLAMA_URL): the fault left it alone
        return
    fault = next(key for key, spec in STANDARD_FAULTS.items() if parse_fault(spec) == llm_fault)
    _check(flow, fault, llm_fault.spec(), outcome, llm_cassette, llm_clock)
