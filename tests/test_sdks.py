"""
The official SDKs, recorded through llmcassette against a local fake provider, then replayed with
the provider gone.

For each SDK (openai, anthropic, google-genai on httpx2; ollama on httpx; google-genai's async
client on aiohttp, and on httpx2 where aiohttp is not installed), JSON and streamed, sync and
async: what the SDK parses on replay must equal what it parsed live, the transport must hand it
the same chunks with the same boundaries as live, and the cassette must hold no key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import anthropic
import httpx
import httpx2
import ollama
import openai
import pytest
from google import genai
from google.genai import types as genai_types

import llmcassette
from tests.sdk_faults._clients import genai_without_aiohttp
from tests.servers import serve
from tests.upstreams import EXPECTED, ReceivedRequest, provider_app

# Every SDK gets a dummy key starting with this, so one search of the file proves none was stored.
KEY_PREFIX = "sk-test"
PROMPT = "What is the weather in Paris?"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
    "required": ["city"],
}


@dataclass(frozen=True)
class Outcome:
    """What a client makes of a response, in terms common to every provider."""

    text: str
    tool_calls: list[tuple[str, dict[str, Any]]]
    input_tokens: int | None
    output_tokens: int | None
    finish: str | None


# -- openai ------------------------------------------------------------------------------------

_OPENAI_TOOLS: Any = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather now", "parameters": WEATHER_SCHEMA},
    }
]


def _openai_kwargs(stream: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": PROMPT}],
        "tools": _OPENAI_TOOLS,
    }
    if stream:
        kwargs.update(stream=True, stream_options={"include_usage": True})
    return kwargs


def _openai_client_kwargs(base_url: str) -> dict[str, Any]:
    # No retries: a failure must reach the test, not be hidden by a second attempt.
    return {"api_key": f"{KEY_PREFIX}-openai", "base_url": f"{base_url}/v1", "max_retries": 0}


def _openai_sync(base_url: str, stream: bool) -> list[Any]:
    with openai.OpenAI(**_openai_client_kwargs(base_url)) as client:
        result = client.chat.completions.create(**_openai_kwargs(stream))
        return list(result) if stream else [result]


async def _openai_async(base_url: str, stream: bool) -> list[Any]:
    async with openai.AsyncOpenAI(**_openai_client_kwargs(base_url)) as client:
        result = await client.chat.completions.create(**_openai_kwargs(stream))
        return [chunk async for chunk in result] if stream else [result]


def _openai_outcome(results: list[Any]) -> Outcome:
    if results and results[0].object == "chat.completion":
        (completion,) = results
        message = completion.choices[0].message
        return Outcome(
            text=message.content,
            tool_calls=[(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls],
            input_tokens=completion.usage.prompt_tokens,
            output_tokens=completion.usage.completion_tokens,
            finish=completion.choices[0].finish_reason,
        )
    text: list[str] = []
    calls: dict[int, list[str]] = {}
    finish = usage = None
    for chunk in results:
        if not chunk.choices:  # the usage chunk has no choices
            usage = chunk.usage
            continue
        choice = chunk.choices[0]
        text.append(choice.delta.content or "")
        for call in choice.delta.tool_calls or []:
            # The first fragment of a call names it; the others carry argument fragments.
            parts = calls.setdefault(call.index, [call.function.name or "", ""])
            parts[1] += call.function.arguments or ""
        finish = choice.finish_reason or finish
    return Outcome(
        text="".join(text),
        tool_calls=[(name, json.loads(args)) for name, args in (calls[i] for i in sorted(calls))],
        input_tokens=usage.prompt_tokens if usage else None,
        output_tokens=usage.completion_tokens if usage else None,
        finish=finish,
    )


# -- anthropic ---------------------------------------------------------------------------------

_ANTHROPIC_TOOLS: Any = [
    {"name": "get_weather", "description": "Weather now", "input_schema": WEATHER_SCHEMA}
]


def _anthropic_kwargs() -> dict[str, Any]:
    return {
        "model": "claude-test",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": PROMPT}],
        "tools": _ANTHROPIC_TOOLS,
    }


def _anthropic_client_kwargs(base_url: str) -> dict[str, Any]:
    return {"api_key": f"{KEY_PREFIX}-anthropic", "base_url": base_url, "max_retries": 0}


def _anthropic_sync(base_url: str, stream: bool) -> list[Any]:
    with anthropic.Anthropic(**_anthropic_client_kwargs(base_url)) as client:
        if not stream:
            return [client.messages.create(**_anthropic_kwargs())]
        # The SDK's own stream helper assembles text blocks and tool input from the deltas.
        with client.messages.stream(**_anthropic_kwargs()) as events:
            return [events.get_final_message()]


async def _anthropic_async(base_url: str, stream: bool) -> list[Any]:
    async with anthropic.AsyncAnthropic(**_anthropic_client_kwargs(base_url)) as client:
        if not stream:
            return [await client.messages.create(**_anthropic_kwargs())]
        async with client.messages.stream(**_anthropic_kwargs()) as events:
            return [await events.get_final_message()]


def _anthropic_outcome(results: list[Any]) -> Outcome:
    (message,) = results
    return Outcome(
        text="".join(block.text for block in message.content if block.type == "text"),
        tool_calls=[(block.name, block.input) for block in message.content if block.type == "tool_use"],
        input_tokens=message.usage.input_tokens,
        output_tokens=message.usage.output_tokens,
        finish=message.stop_reason,
    )


# -- google-genai ------------------------------------------------------------------------------

_GENAI_CONFIG = genai_types.GenerateContentConfig(
    tools=[
        genai_types.Tool(
            function_declarations=[
                genai_types.FunctionDeclaration(
                    name="get_weather", description="Weather now", parameters_json_schema=WEATHER_SCHEMA
                )
            ]
        )
    ]
)


def _genai_client(base_url: str) -> genai.Client:
    # google-genai has no retries unless asked for them.
    return genai.Client(
        api_key=f"{KEY_PREFIX}-gemini", http_options=genai_types.HttpOptions(base_url=base_url)
    )


def _genai_sync(base_url: str, stream: bool) -> list[Any]:
    with _genai_client(base_url) as client:
        kwargs: dict[str, Any] = {"model": "gemini-test", "contents": PROMPT, "config": _GENAI_CONFIG}
        if stream:
            return list(client.models.generate_content_stream(**kwargs))
        return [client.models.generate_content(**kwargs)]


async def _genai_async(base_url: str, stream: bool) -> list[Any]:
    async with _genai_client(base_url).aio as client:
        kwargs: dict[str, Any] = {"model": "gemini-test", "contents": PROMPT, "config": _GENAI_CONFIG}
        if stream:
            return [chunk async for chunk in await client.models.generate_content_stream(**kwargs)]
        return [await client.models.generate_content(**kwargs)]


def _genai_outcome(results: list[Any]) -> Outcome:
    text: list[str] = []
    calls: list[tuple[str, dict[str, Any]]] = []
    for response in results:
        for part in response.candidates[0].content.parts:
            if part.text is not None:
                text.append(part.text)
            if part.function_call is not None:
                calls.append((part.function_call.name, part.function_call.args))
    # Usage is cumulative on every chunk: the last one holds the totals.
    last = results[-1]
    finish = last.candidates[0].finish_reason
    return Outcome(
        text="".join(text),
        tool_calls=calls,
        input_tokens=last.usage_metadata.prompt_token_count,
        output_tokens=last.usage_metadata.candidates_token_count,
        finish=finish.value if finish is not None else None,
    )


# -- ollama ------------------------------------------------------------------------------------

_OLLAMA_TOOLS: Any = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather now", "parameters": WEATHER_SCHEMA},
    }
]


def _ollama_client_kwargs(base_url: str) -> dict[str, Any]:
    # A local Ollama needs no key; Ollama cloud takes a bearer token, which must not be stored.
    return {"host": base_url, "headers": {"Authorization": f"Bearer {KEY_PREFIX}-ollama"}}


def _ollama_kwargs(stream: bool) -> dict[str, Any]:
    return {
        "model": "llama-test",
        "messages": [{"role": "user", "content": PROMPT}],
        "tools": _OLLAMA_TOOLS,
        "stream": stream,
    }


def _ollama_sync(base_url: str, stream: bool) -> list[Any]:
    with ollama.Client(**_ollama_client_kwargs(base_url)) as client:
        result = client.chat(**_ollama_kwargs(stream))
        return list(result) if stream else [result]


async def _ollama_async(base_url: str, stream: bool) -> list[Any]:
    async with ollama.AsyncClient(**_ollama_client_kwargs(base_url)) as client:
        result = await client.chat(**_ollama_kwargs(stream))
        return [part async for part in result] if stream else [result]


def _ollama_outcome(results: list[Any]) -> Outcome:
    calls = [
        (call.function.name, dict(call.function.arguments))
        for part in results
        for call in part.message.tool_calls or []
    ]
    last = results[-1]
    return Outcome(
        text="".join(part.message.content or "" for part in results),
        tool_calls=calls,
        input_tokens=last.prompt_eval_count,
        output_tokens=last.eval_count,
        finish=last.done_reason,
    )


# -- the matrix --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sdk:
    name: str
    #: The HTTP library the SDK's default client runs on.
    library: str
    call_sync: Callable[[str, bool], list[Any]]
    call_async: Callable[[str, bool], Awaitable[list[Any]]]
    outcome: Callable[[list[Any]], Outcome]
    #: The finish reason the fake provider's answer means, in the SDK's words.
    finish: str
    #: What ends one event of the provider's stream.
    event_end: bytes
    #: The HTTP library the SDK's default async client runs on, if not ``library``.
    async_library: str | None = None


#: google-genai's async client where aiohttp is not installed (see `genai_without_aiohttp`).
GENAI_HTTPX2 = "async-httpx2"


SDKS = [
    Sdk("openai", "httpx2", _openai_sync, _openai_async, _openai_outcome, "tool_calls", b"\n\n"),
    Sdk("anthropic", "httpx2", _anthropic_sync, _anthropic_async, _anthropic_outcome, "tool_use", b"\n\n"),
    # Its async client sends through aiohttp whenever aiohttp is installed (litellm brings it).
    Sdk("genai", "httpx2", _genai_sync, _genai_async, _genai_outcome, "STOP", b"\r\n\r\n", "aiohttp"),
    Sdk("ollama", "httpx", _ollama_sync, _ollama_async, _ollama_outcome, "stop", b"\n"),
]

_TRANSPORTS = {
    "httpx": (httpx.HTTPTransport, httpx.AsyncHTTPTransport),
    "httpx2": (httpx2.HTTPTransport, httpx2.AsyncHTTPTransport),
}


@contextlib.contextmanager
def transport_calls() -> Iterator[Counter[str]]:
    """
    Count, per library, the requests that reach the standard transports' handlers (aiohttp's: the
    connections its connector makes, one per request under a cassette, which closes each one it
    answers). Entered inside a cassette, it wraps llmcassette's interception, so it sees replayed
    requests as well as recorded ones, and tells which library the SDK really sent them through.
    """
    counts: Counter[str] = Counter()
    saved: list[tuple[type, str, Any]] = []

    async def counting_connections(self: Any, *args: Any) -> Any:
        counts["aiohttp"] += 1
        return await inner_connect(self, *args)

    inner_connect = aiohttp.TCPConnector.__dict__["_create_connection"]
    saved.append((aiohttp.TCPConnector, "_create_connection", inner_connect))
    aiohttp.TCPConnector._create_connection = counting_connections  # type: ignore[method-assign]

    def counting_sync(library: str, inner: Any) -> Any:
        def handle_request(self: Any, request: Any) -> Any:
            counts[library] += 1
            return inner(self, request)

        return handle_request

    def counting_async(library: str, inner: Any) -> Any:
        async def handle_async_request(self: Any, request: Any) -> Any:
            counts[library] += 1
            return await inner(self, request)

        return handle_async_request

    for library, (sync_cls, async_cls) in _TRANSPORTS.items():
        for owner, attribute, wrap in (
            (sync_cls, "handle_request", counting_sync),
            (async_cls, "handle_async_request", counting_async),
        ):
            inner = owner.__dict__[attribute]
            saved.append((owner, attribute, inner))
            setattr(owner, attribute, wrap(library, inner))
    try:
        yield counts
    finally:
        for owner, attribute, inner in saved:
            setattr(owner, attribute, inner)


@dataclass
class Run:
    """One SDK call under a cassette."""

    outcome: Outcome
    cassette: llmcassette.Cassette
    #: Requests per HTTP library, counted at the standard transports.
    calls: Counter[str]


def _run(sdk: Sdk, mode: str, stream: bool, base_url: str, path: Path, record_mode: str) -> Run:
    """Call the SDK once under a cassette at ``path``."""
    if mode == GENAI_HTTPX2:
        with genai_without_aiohttp():
            return _run(sdk, "async", stream, base_url, path, record_mode)
    if mode == "async":

        async def main() -> Run:
            async with llmcassette.use_cassette(path, record_mode=record_mode) as cassette:
                with transport_calls() as calls:
                    results = await sdk.call_async(base_url, stream)
            return Run(sdk.outcome(results), cassette, calls)

        return asyncio.run(main())
    with llmcassette.use_cassette(path, record_mode=record_mode) as cassette, transport_calls() as calls:
        results = sdk.call_sync(base_url, stream)
    return Run(sdk.outcome(results), cassette, calls)


@dataclass(frozen=True)
class Case:
    sdk: Sdk
    stream: bool
    mode: str

    @property
    def id(self) -> str:
        return f"{self.sdk.name}-{'stream' if self.stream else 'json'}-{self.mode}"

    @property
    def library(self) -> str:
        """The HTTP library the SDK's client sends through in this mode."""
        if self.mode == GENAI_HTTPX2:
            return "httpx2"
        if self.mode == "async" and self.sdk.async_library is not None:
            return self.sdk.async_library
        return self.sdk.library


def _modes(sdk: Sdk) -> list[str]:
    return ["sync", "async", GENAI_HTTPX2] if sdk.name == "genai" else ["sync", "async"]


CASES = [Case(sdk, stream, mode) for sdk in SDKS for stream in (False, True) for mode in _modes(sdk)]


@dataclass
class Session:
    """A case recorded against the live fake provider, then replayed with the provider stopped."""

    case: Case
    path: Path
    #: What the provider received while recording.
    received: list[ReceivedRequest]
    live: Run
    replay: Run


def _refuses_connections(base_url: str) -> bool:
    address = urlsplit(base_url)
    assert address.hostname is not None and address.port is not None
    with socket.socket() as sock:
        return sock.connect_ex((address.hostname, address.port)) != 0


def _record_and_replay(case: Case, directory: Path) -> Session:
    path = directory / "cassette.yaml"
    app = provider_app()
    with serve(app) as base_url:
        live = _run(case.sdk, case.mode, case.stream, base_url, path, record_mode="once")
    # The provider is gone: whatever the SDK gets from now on comes from the cassette.
    assert _refuses_connections(base_url)
    replay = _run(case.sdk, case.mode, case.stream, base_url, path, record_mode="none")
    return Session(case, path, list(app.state.requests), live, replay)


# Each case is recorded and replayed once per process, then examined by several tests, whatever
# order they run in.
_SESSIONS: dict[str, Session] = {}


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def session(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Session:
    case: Case = request.param
    if case.id not in _SESSIONS:
        _SESSIONS[case.id] = _record_and_replay(case, tmp_path_factory.mktemp(case.id))
    return _SESSIONS[case.id]


def _recorded_chunks(interaction: llmcassette.Interaction) -> list[int]:
    stream = interaction.response.stream
    if stream is not None and stream.chunks is not None:
        return stream.chunks
    # A body that arrived in one piece keeps no stream record.
    return [len(interaction.response.content)]


# -- the tests ---------------------------------------------------------------------------------


def test_replay_parses_as_the_live_response_did(session: Session) -> None:
    # Live, the SDK really parsed the fake provider's answer: text, tool call, usage, finish.
    assert session.live.outcome == Outcome(
        text=EXPECTED.text,
        tool_calls=[(EXPECTED.tool_name, EXPECTED.tool_args)],
        input_tokens=EXPECTED.input_tokens,
        output_tokens=EXPECTED.output_tokens,
        finish=session.case.sdk.finish,
    )
    assert session.replay.outcome == session.live.outcome


def test_replay_plays_exactly_the_recorded_interactions(session: Session) -> None:
    live, replay = session.live.cassette, session.replay.cassette
    # Recording: one request, sent to the provider and recorded.
    assert len(session.received) == 1
    assert [a.recorded for a in live.attempts] == [True]
    assert len(live.new_interactions) == 1
    # Replay: every recorded interaction played once, in order, and nothing recorded or missed.
    interactions = replay.interactions
    assert len(interactions) == 1
    assert [a.interaction for a in replay.attempts] == list(range(len(interactions)))
    assert not any(a.recorded for a in replay.attempts)
    assert replay.play_counts == [1] * len(interactions)
    assert replay.misses == []
    assert replay.new_interactions == []


def test_sdk_traffic_goes_through_its_http_library(session: Session) -> None:
    # openai 3.x, anthropic 2.x and google-genai 3.x run on httpx2, ollama on httpx, google-genai's
    # async client on aiohttp (on httpx2 without it): each is intercepted, and nothing else
    # carries the traffic.
    library = session.case.library
    assert session.live.calls == Counter({library: 1})
    assert session.replay.calls == Counter({library: 1})


def test_replay_delivers_the_recorded_chunks(session: Session) -> None:
    # The async openai SDK drains the stream again after [DONE]: a second read must find nothing.
    interactions = session.replay.cassette.interactions
    for index, interaction in enumerate(interactions):
        recorded = _recorded_chunks(interaction)
        live_chunks = session.live.cassette.attempts[index].chunks
        replay_chunks = session.replay.cassette.attempts[index].chunks
        # Same boundaries live, in the file, and on replay; same bytes.
        assert [len(c) for c in live_chunks] == recorded
        assert [len(c) for c in replay_chunks] == recorded
        assert b"".join(replay_chunks) == b"".join(live_chunks) == interaction.response.content
        if session.case.stream:
            # Several network reads, so the boundaries compared are real ones; and they are not
            # event boundaries (one chunk holds two events, one ends inside an event), so a replay
            # that cut the body per event instead of as recorded would fail above.
            end = session.case.sdk.event_end
            assert len(recorded) > 1
            assert any(chunk.count(end) >= 2 for chunk in replay_chunks)
            assert any(not chunk.endswith(end) for chunk in replay_chunks)
        else:
            assert len(recorded) == 1


def test_cassette_holds_no_key(session: Session) -> None:
    # The SDK sent its key to the provider, the cassette does not hold it, and replay (checked
    # above) matched all the same.
    (received,) = session.received
    assert any(KEY_PREFIX in value for value in received.headers.values())
    assert KEY_PREFIX.encode() not in session.path.read_bytes()
    assert session.replay.cassette.misses == []
