"""
Faults injected into real SDK traffic: each SDK's normal exchange is recorded once from the local
fake provider, then replayed offline under one fault at a time, and the test asserts what the
pinned SDK really does with it: how many attempts it makes, how long it asks to sleep between
them (on the virtual clock, so nothing waits), and what it finally returns or raises.

Pinned versions: openai 3.57, anthropic 2.13, google-genai 3.6.1, ollama 0.6.3, litellm 1.110.2.
Where an SDK disagrees with the reference notes, the SDK wins and a comment says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import inspect
import json
import socket
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anthropic
import httpx
import httpx2
import ollama
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors, types as genai_types

import llmcassette
from llmcassette.faults import parse_fault
from tests.servers import serve
from tests.upstreams import EXPECTED, provider_app

# The real waits, taken before any virtual clock replaces them.
REAL_SLEEP = time.sleep
REAL_ASYNC_SLEEP = asyncio.sleep

KEY = "sk-test-faults"
PROMPT = "What is the weather in Paris?"
MODES = ["sync", "async"]

# openai and anthropic back off as min(0.5 * 2**n, 8) * (1 - 0.25 * random()) without a usable
# Retry-After: n = retries already made, so the first wait is in (0.375, 0.5], the second in (0.75, 1].
BACKOFF = [(0.375, 0.5), (0.75, 1.0)]


# -- running a client under a cassette -----------------------------------------------------------


@dataclass
class Replay:
    """One client call under a cassette and a virtual clock."""

    cassette: llmcassette.Cassette
    clock: llmcassette.VirtualClock
    #: What the client produced before it returned or failed (responses, stream chunks or events).
    got: list[Any]
    error: BaseException | None = None

    @property
    def attempts(self) -> list[llmcassette.Attempt]:
        return self.cassette.attempts

    @property
    def faults(self) -> list[list[str]]:
        return [attempt.faults for attempt in self.attempts]

    @property
    def interactions(self) -> list[int | None]:
        return [attempt.interaction for attempt in self.attempts]

    def raised(self, cls: type[BaseException] | tuple[type[BaseException], ...]) -> Any:
        """The error the client raised, checked to be a ``cls``."""
        assert isinstance(self.error, cls), f"expected {cls}, got {self.error!r}"
        return self.error

    def ok(self) -> list[Any]:
        """What the client returned, checked to have succeeded."""
        assert self.error is None, f"the call failed: {self.error!r}"
        return self.got


class Call:
    """An SDK call, sync or async; ``got`` collects what it yields as it goes."""

    def sync(self, got: list[Any]) -> None:
        raise NotImplementedError

    async def run_async(self, got: list[Any]) -> None:
        raise NotImplementedError


def spec(text: str) -> str:
    """A fault spec as the attempt log writes it."""
    return parse_fault(text).spec()


def run(path: Path, call: Call, mode: str, faults: Sequence[str] = ()) -> Replay:
    """Replay ``call`` from the cassette at ``path`` with ``faults``, on a virtual clock."""
    got: list[Any] = []
    if mode == "async":

        async def main() -> Replay:
            with llmcassette.VirtualClock() as clock:
                async with llmcassette.use_cassette(path, faults=faults) as cassette:
                    replay = Replay(cassette, clock, got)
                    try:
                        await call.run_async(got)
                    except Exception as exc:  # the tests look at what the SDK raised
                        replay.error = exc
            return replay

        return asyncio.run(main())
    with llmcassette.VirtualClock() as clock:
        with llmcassette.use_cassette(path, faults=faults) as cassette:
            replay = Replay(cassette, clock, got)
            try:
                call.sync(got)
            except Exception as exc:
                replay.error = exc
    return replay


def assert_backoff(sleeps: Sequence[float]) -> None:
    """The Stainless SDKs' own exponential backoff, jittered downwards."""
    assert len(sleeps) <= len(BACKOFF)
    for sleep, (low, high) in zip(sleeps, BACKOFF, strict=False):
        assert low <= sleep <= high, sleeps


# -- openai --------------------------------------------------------------------------------------


@dataclass
class OpenAICall(Call):
    base_url: str
    stream: bool
    client: dict[str, Any] = field(default_factory=dict)

    def _client_kwargs(self) -> dict[str, Any]:
        return {"api_key": KEY, "base_url": f"{self.base_url}/v1", "max_retries": 2, **self.client}

    def _request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"model": "gpt-test", "messages": [{"role": "user", "content": PROMPT}]}
        if self.stream:
            request["stream"] = True
        return request

    def sync(self, got: list[Any]) -> None:
        with openai.OpenAI(**self._client_kwargs()) as client:
            result = client.chat.completions.create(**self._request())
            if self.stream:
                for chunk in result:
                    got.append(chunk)
            else:
                got.append(result)

    async def run_async(self, got: list[Any]) -> None:
        async with openai.AsyncOpenAI(**self._client_kwargs()) as client:
            result = await client.chat.completions.create(**self._request())
            if self.stream:
                async for chunk in result:
                    got.append(chunk)
            else:
                got.append(result)


def openai_text(got: list[Any]) -> str:
    if got and got[0].object == "chat.completion":
        return str(got[0].choices[0].message.content)
    return "".join(chunk.choices[0].delta.content or "" for chunk in got if chunk.choices)


def openai_finish(got: list[Any]) -> str | None:
    if got and got[0].object == "chat.completion":
        return str(got[0].choices[0].finish_reason)
    return next((c.choices[0].finish_reason for c in got if c.choices and c.choices[0].finish_reason), None)


# -- anthropic -----------------------------------------------------------------------------------


@dataclass
class AnthropicCall(Call):
    base_url: str
    stream: bool
    client: dict[str, Any] = field(default_factory=dict)

    def _client_kwargs(self) -> dict[str, Any]:
        return {"api_key": KEY, "base_url": self.base_url, "max_retries": 2, **self.client}

    def _request(self) -> dict[str, Any]:
        return {
            "model": "claude-test",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": PROMPT}],
            "stream": self.stream,
        }

    def sync(self, got: list[Any]) -> None:
        with anthropic.Anthropic(**self._client_kwargs()) as client:
            result = client.messages.create(**self._request())
            if self.stream:
                for event in result:
                    got.append(event)
            else:
                got.append(result)

    async def run_async(self, got: list[Any]) -> None:
        async with anthropic.AsyncAnthropic(**self._client_kwargs()) as client:
            result = await client.messages.create(**self._request())
            if self.stream:
                async for event in result:
                    got.append(event)
            else:
                got.append(result)


def anthropic_text(got: list[Any]) -> str:
    if got and got[0].type == "message":
        return "".join(block.text for block in got[0].content if block.type == "text")
    return "".join(
        event.delta.text
        for event in got
        if event.type == "content_block_delta" and event.delta.type == "text_delta"
    )


# -- google-genai --------------------------------------------------------------------------------


@dataclass
class GenaiCall(Call):
    base_url: str
    stream: bool
    retry: genai_types.HttpRetryOptions | None = None

    def _client(self) -> genai.Client:
        # The async client is left as it comes: with aiohttp installed (litellm brings it) it would
        # send through aiohttp, and llmcassette must keep it on httpx2 while a cassette is active.
        options = genai_types.HttpOptions(base_url=self.base_url, retry_options=self.retry)
        return genai.Client(api_key=KEY, http_options=options)

    def _request(self) -> dict[str, Any]:
        return {"model": "gemini-test", "contents": PROMPT}

    def sync(self, got: list[Any]) -> None:
        with self._client() as client:
            if self.stream:
                for chunk in client.models.generate_content_stream(**self._request()):
                    got.append(chunk)
            else:
                got.append(client.models.generate_content(**self._request()))

    async def run_async(self, got: list[Any]) -> None:
        async with self._client().aio as client:
            if self.stream:
                async for chunk in await client.models.generate_content_stream(**self._request()):
                    got.append(chunk)
            else:
                got.append(await client.models.generate_content(**self._request()))


def genai_text(got: list[Any]) -> str:
    return "".join(part.text or "" for response in got for part in response.candidates[0].content.parts)


# -- ollama --------------------------------------------------------------------------------------


@dataclass
class OllamaCall(Call):
    base_url: str
    stream: bool

    def _request(self) -> dict[str, Any]:
        return {
            "model": "llama-test",
            "messages": [{"role": "user", "content": PROMPT}],
            "stream": self.stream,
        }

    def sync(self, got: list[Any]) -> None:
        with ollama.Client(host=self.base_url) as client:
            result = client.chat(**self._request())
            if self.stream:
                for part in result:
                    got.append(part)
            else:
                got.append(result)

    async def run_async(self, got: list[Any]) -> None:
        async with ollama.AsyncClient(host=self.base_url) as client:
            result = await client.chat(**self._request())
            if self.stream:
                async for part in result:
                    got.append(part)
            else:
                got.append(result)


def ollama_text(got: list[Any]) -> str:
    return "".join(part.message.content or "" for part in got)


# -- litellm -------------------------------------------------------------------------------------


@dataclass
class LitellmCall(Call):
    base_url: str
    stream: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def _request(self) -> dict[str, Any]:
        return {
            "model": "openai/gpt-test",
            "messages": [{"role": "user", "content": PROMPT}],
            "api_base": f"{self.base_url}/v1",
            "api_key": KEY,
            "stream": self.stream,
            **self.options,
        }

    def sync(self, got: list[Any]) -> None:
        import litellm

        # litellm's sync path calls asyncio.get_event_loop() to dispatch its logging hooks, which
        # creates a loop for the thread and never closes it (a ResourceWarning, an error here, when
        # it is collected). Give it a loop of ours for the call, and close it after.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            result = litellm.completion(**self._request())
            if self.stream:
                got.extend(result)
            else:
                got.append(result)
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    async def run_async(self, got: list[Any]) -> None:
        import litellm

        result = await litellm.acompletion(**self._request())
        if self.stream:
            async for chunk in result:
                got.append(chunk)
        else:
            got.append(result)


@contextlib.contextmanager
def counting_transports(counts: Counter[str]) -> Iterator[None]:
    """
    Count the requests each transport class handles. Entered inside a cassette, it wraps
    llmcassette's interception, so it tells which transport a client really sent through.
    """
    from litellm.llms.custom_httpx.aiohttp_transport import LiteLLMAiohttpTransport

    targets: list[tuple[str, type, str]] = [
        ("httpx", httpx.HTTPTransport, "handle_request"),
        ("httpx2", httpx2.HTTPTransport, "handle_request"),
        ("httpx async", httpx.AsyncHTTPTransport, "handle_async_request"),
        ("httpx2 async", httpx2.AsyncHTTPTransport, "handle_async_request"),
        ("litellm aiohttp", LiteLLMAiohttpTransport, "handle_async_request"),
    ]
    saved: list[tuple[type, str, Any]] = []

    def counting(name: str, inner: Any) -> Any:
        if inspect.iscoroutinefunction(inner):

            async def handle_async(self: Any, request: Any) -> Any:
                counts[name] += 1
                return await inner(self, request)

            return handle_async

        def handle(self: Any, request: Any) -> Any:
            counts[name] += 1
            return inner(self, request)

        return handle

    for name, owner, attribute in targets:
        inner = owner.__dict__[attribute]
        saved.append((owner, attribute, inner))
        setattr(owner, attribute, counting(name, inner))
    try:
        yield
    finally:
        for owner, attribute, inner in saved:
            setattr(owner, attribute, inner)


@dataclass
class Probed(Call):
    """Another call, with the requests counted per transport while it runs."""

    inner: Call
    counts: Counter[str] = field(default_factory=Counter)

    def sync(self, got: list[Any]) -> None:
        with counting_transports(self.counts):
            self.inner.sync(got)

    async def run_async(self, got: list[Any]) -> None:
        with counting_transports(self.counts):
            await self.inner.run_async(got)


# -- the recordings ------------------------------------------------------------------------------


def refuses_connections(base_url: str) -> bool:
    address = urlsplit(base_url)
    assert address.hostname is not None and address.port is not None
    with socket.socket() as sock:
        return sock.connect_ex((address.hostname, address.port)) != 0


@dataclass
class Tape:
    """Cassettes recorded live from the fake provider, which is stopped since."""

    base_url: str
    directory: Path

    def path(self, sdk: str, stream: bool) -> Path:
        return self.directory / f"{sdk}-{'stream' if stream else 'json'}.yaml"


def _record(tape: Tape, sdk: str, call: Call) -> None:
    # On the real clock: the upstream's own loop sleeps while it serves.
    path = tape.path(sdk, bool(getattr(call, "stream", False)))
    with llmcassette.use_cassette(path, record_mode="once") as cassette:
        call.sync([])
    assert [a.recorded for a in cassette.attempts] == [True]
    assert cassette.attempts[0].status == 200


@pytest.fixture(scope="session")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tape]:
    """The four SDKs' exchanges, JSON and streamed, recorded once per session."""
    directory = tmp_path_factory.mktemp("sdk-faults")
    with serve(provider_app()) as base_url:
        tape = Tape(base_url, directory)
        for stream in (False, True):
            # No retries while recording: a failure must show, not be retried away.
            _record(tape, "openai", OpenAICall(base_url, stream, {"max_retries": 0}))
            _record(tape, "anthropic", AnthropicCall(base_url, stream, {"max_retries": 0}))
            _record(tape, "genai", GenaiCall(base_url, stream))
            _record(tape, "ollama", OllamaCall(base_url, stream))
    # From here on, whatever a client gets comes from the cassettes.
    assert refuses_connections(base_url)
    yield tape


@pytest.fixture(scope="session")
def litellm_tape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tape]:
    """litellm's exchange (through its OpenAI provider), recorded once with the sync client."""
    # litellm's async transport is patched only when its module is imported before a cassette is entered.
    import litellm.llms.custom_httpx.aiohttp_transport  # noqa: F401

    directory = tmp_path_factory.mktemp("sdk-faults-litellm")
    with serve(provider_app()) as base_url:
        tape = Tape(base_url, directory)
        for stream in (False, True):
            _record(tape, "litellm", LitellmCall(base_url, stream, {"num_retries": 0}))
    assert refuses_connections(base_url)
    yield tape


# == openai ======================================================================================


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("mode", MODES)
def test_openai_rate_limit_waits_retry_after_ms_then_replays(tape: Tape, mode: str, stream: bool) -> None:
    fault = "rate_limit:times=2,retry_after_ms=250"
    replay = run(tape.path("openai", stream), OpenAICall(tape.base_url, stream), mode, [fault])
    assert openai_text(replay.ok()) == EXPECTED.text
    # Two 429s answered by the fault, then the recording (not consumed by the 429s) on the third.
    assert replay.faults == [[spec(fault)], [spec(fault)], []]
    assert replay.interactions == [None, None, 0]
    assert [a.status for a in replay.attempts] == [429, 429, 200]
    # retry-after-ms is honoured exactly, with no jitter.
    assert replay.clock.sleeps == [0.25, 0.25]
    assert replay.attempts[2].time_s == pytest.approx(0.5)
    # Every attempt carries its retry count; replay matching ignores it.
    assert [a.headers["x-stainless-retry-count"] for a in replay.attempts] == ["0", "1", "2"]


@pytest.mark.parametrize("mode", MODES)
def test_openai_x_should_retry_false_stops_a_500(tape: Tape, mode: str) -> None:
    fault = "server_error:should_retry=false"
    replay = run(tape.path("openai", False), OpenAICall(tape.base_url, False), mode, [fault])
    error = replay.raised(openai.InternalServerError)
    assert error.status_code == 500
    assert error.response.headers["x-should-retry"] == "false"
    # x-should-retry is read before the status, which alone would have been retried.
    assert replay.faults == [[spec(fault)]]
    assert replay.interactions == [None]
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_openai_x_should_retry_true_retries_a_400(tape: Tape, mode: str) -> None:
    fault = "bad_request:should_retry=true,times=1"
    replay = run(tape.path("openai", False), OpenAICall(tape.base_url, False), mode, [fault])
    assert openai_text(replay.ok()) == EXPECTED.text
    assert replay.faults == [[spec(fault)], []]
    assert replay.interactions == [None, 0]
    # No Retry-After on a 400: the SDK's own backoff.
    assert len(replay.clock.sleeps) == 1
    assert_backoff(replay.clock.sleeps)


@pytest.mark.parametrize("mode", MODES)
def test_openai_unauthorized_is_not_retried(tape: Tape, mode: str) -> None:
    replay = run(tape.path("openai", False), OpenAICall(tape.base_url, False), mode, ["unauthorized"])
    error = replay.raised(openai.AuthenticationError)
    assert error.status_code == 401
    assert error.code == "invalid_api_key"
    assert replay.faults == [["unauthorized"]]
    assert replay.interactions == [None]
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_openai_gives_up_on_retry_after_over_two_minutes(tape: Tape, mode: str) -> None:
    # openai >= 2.52 refuses a Retry-After above 120 s instead of sleeping it (Azure sends 86400).
    fault = "rate_limit:retry_after=86400"
    replay = run(tape.path("openai", False), OpenAICall(tape.base_url, False), mode, [fault])
    error = replay.raised(openai.RateLimitError)
    assert error.response.headers["retry-after"] == "86400"
    assert replay.faults == [[spec(fault)]]
    assert replay.interactions == [None]
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_openai_honours_retry_after_as_http_date(tape: Tape, mode: str) -> None:
    fault = "rate_limit:times=2,retry_after_date=5"
    replay = run(tape.path("openai", False), OpenAICall(tape.base_url, False), mode, [fault])
    assert openai_text(replay.ok()) == EXPECTED.text
    assert replay.faults == [[spec(fault)], [spec(fault)], []]
    assert replay.interactions == [None, None, 0]
    # Each 429 says "retry at <now + 5 s>" as an HTTP-date; the SDK subtracts time.time(), which the
    # virtual clock drives (from a whole second), so both waits are exactly 5 s, not backoff-sized.
    assert replay.clock.sleeps == [5.0, 5.0]
    assert [a.time_s for a in replay.attempts] == [0.0, 5.0, 10.0]
    # What the SDK was given was a date, not a number of seconds.
    call = OpenAICall(tape.base_url, False, {"max_retries": 0})
    error = run(tape.path("openai", False), call, mode, [fault]).raised(openai.RateLimitError)
    assert email.utils.parsedate_tz(error.response.headers["retry-after"]) is not None


@pytest.mark.parametrize("mode", MODES)
def test_openai_unavailable_three_times_raises(tape: Tape, mode: str) -> None:
    replay = run(tape.path("openai", False), OpenAICall(tape.base_url, False), mode, ["unavailable"])
    error = replay.raised(openai.InternalServerError)
    assert error.status_code == 503
    assert replay.faults == [["unavailable"]] * 3
    assert replay.interactions == [None, None, None]
    # The provider's 503 carries no Retry-After: exponential backoff, twice.
    assert len(replay.clock.sleeps) == 2
    assert_backoff(replay.clock.sleeps)


@pytest.mark.parametrize("mode", MODES)
def test_openai_in_stream_error_event_raises_after_the_chunks_before_it(tape: Tape, mode: str) -> None:
    fault = "error_event:after=3,message=The server had an error mid-stream"
    replay = run(tape.path("openai", True), OpenAICall(tape.base_url, True), mode, [fault])
    error = replay.raised(openai.APIError)
    # A data event with an `error` key: APIError with its message, and no status (the HTTP status was 200).
    assert not isinstance(error, openai.APIStatusError)
    assert error.message == "The server had an error mid-stream"
    assert isinstance(error.body, dict)
    assert error.body["message"] == "The server had an error mid-stream"
    assert error.body["type"] == "server_error"
    # The three events before the error reached the caller first: role, then two text pieces.
    assert len(replay.got) == 3
    assert openai_text(replay.got) == "Let me check the weather"
    # Not retried: retries only cover getting the response head.
    assert replay.faults == [[spec(fault)]]
    assert replay.interactions == [0]
    assert replay.attempts[0].status == 200
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_openai_malformed_chunk_raises_json_decode_error(tape: Tape, mode: str) -> None:
    fault = "malformed_chunk:event=3"
    replay = run(tape.path("openai", True), OpenAICall(tape.base_url, True), mode, [fault])
    # A bare JSONDecodeError, not an OpenAIError.
    replay.raised(json.JSONDecodeError)
    assert not isinstance(replay.error, openai.OpenAIError)
    assert len(replay.got) == 2
    assert replay.faults == [[spec(fault)]]
    assert replay.interactions == [0]
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_openai_truncated_stream_just_ends(tape: Tape, mode: str) -> None:
    full = run(tape.path("openai", True), OpenAICall(tape.base_url, True), mode)
    replay = run(tape.path("openai", True), OpenAICall(tape.base_url, True), mode, ["truncate:after=4"])
    # No [DONE], no error: the caller gets a shorter stream and must notice the missing finish itself.
    assert len(replay.ok()) == 4 < len(full.ok())
    assert openai_finish(replay.got) is None
    assert openai_finish(full.got) == "tool_calls"
    assert b"[DONE]" not in b"".join(replay.attempts[0].chunks)
    assert replay.faults == [["truncate:after=4"]]
    assert replay.interactions == [0]
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("how", ["fin", "reset"])
@pytest.mark.parametrize("mode", MODES)
def test_openai_disconnect_mid_stream_is_a_connection_error(tape: Tape, mode: str, how: str) -> None:
    fault = f"disconnect:after=3,mode={how}"
    replay = run(tape.path("openai", True), OpenAICall(tape.base_url, True), mode, [fault])
    # openai 3.x wraps the transport error (2.x let the raw httpx error through).
    error = replay.raised(openai.APIConnectionError)
    assert not isinstance(error, openai.APITimeoutError)
    expected_cause = httpx2.RemoteProtocolError if how == "fin" else httpx2.ReadError
    assert isinstance(error.__cause__, expected_cause)
    assert len(replay.got) == 3
    # Past the response head nothing is retried.
    assert replay.faults == [[spec(fault)]]
    assert replay.interactions == [0]
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_openai_stall_longer_than_the_read_timeout_times_out(tape: Tape, mode: str) -> None:
    fault = "stall:after=3,seconds=30"
    call = OpenAICall(tape.base_url, True, {"timeout": 2.0})
    replay = run(tape.path("openai", True), call, mode, [fault])
    replay.raised(openai.APITimeoutError)
    assert len(replay.got) == 3
    assert replay.faults == [[spec(fault)]]
    assert replay.interactions == [0]
    assert replay.attempts[0].error is not None and replay.attempts[0].error.startswith("ReadTimeout")
    # Not retried, and the client waited its read timeout (virtually), not the whole stall.
    assert replay.clock.sleeps == []
    assert replay.clock.elapsed_s == pytest.approx(2.0)


@pytest.mark.parametrize("mode", MODES)
def test_openai_stall_shorter_than_the_read_timeout_is_a_pause(tape: Tape, mode: str) -> None:
    fault = "stall:after=3,seconds=1"
    call = OpenAICall(tape.base_url, True, {"timeout": 2.0})
    replay = run(tape.path("openai", True), call, mode, [fault])
    assert openai_text(replay.ok()) == EXPECTED.text
    assert replay.interactions == [0]
    assert replay.clock.sleeps == []
    assert replay.clock.elapsed_s == pytest.approx(1.0)


@pytest.mark.parametrize("fault", ["rechunk", "rechunk:mode=adversarial"])
@pytest.mark.parametrize("mode", MODES)
def test_openai_rechunked_stream_parses_the_same(tape: Tape, mode: str, fault: str) -> None:
    plain = run(tape.path("openai", True), OpenAICall(tape.base_url, True), mode)
    replay = run(tape.path("openai", True), OpenAICall(tape.base_url, True), mode, [fault])
    assert [c.model_dump() for c in replay.ok()] == [c.model_dump() for c in plain.ok()]
    assert openai_text(replay.got) == EXPECTED.text
    (attempt,) = replay.attempts
    (recorded,) = plain.attempts
    # Same bytes, other boundaries.
    assert b"".join(attempt.chunks) == b"".join(recorded.chunks)
    assert len(attempt.chunks) > len(recorded.chunks)
    if fault == "rechunk":
        assert {len(chunk) for chunk in attempt.chunks} == {1}
    assert attempt.faults == [spec(fault)]
    assert attempt.interaction == 0


@pytest.mark.parametrize("mode", MODES)
def test_openai_empty_stream_is_a_quiet_success(tape: Tape, mode: str) -> None:
    replay = run(tape.path("openai", True), OpenAICall(tape.base_url, True), mode, ["empty_stream"])
    # The provider's empty answer: a role chunk and a finish chunk, no text, no tool call, no error.
    assert openai_text(replay.ok()) == ""
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in replay.got)
    assert openai_finish(replay.got) == "stop"
    assert b"".join(replay.attempts[0].chunks).endswith(b"data: [DONE]\n\n")
    assert replay.faults == [["empty_stream"]]
    assert replay.interactions == [0]
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("mode", MODES)
def test_openai_connect_error_is_retried(tape: Tape, mode: str, stream: bool) -> None:
    fault = "connect_error:times=2"
    replay = run(tape.path("openai", stream), OpenAICall(tape.base_url, stream), mode, [fault])
    assert openai_text(replay.ok()) == EXPECTED.text
    assert replay.faults == [[spec(fault)], [spec(fault)], []]
    assert replay.interactions == [None, None, 0]
    assert [a.status for a in replay.attempts] == [None, None, 200]
    assert all((a.error or "").startswith("ConnectError") for a in replay.attempts[:2])
    assert len(replay.clock.sleeps) == 2
    assert_backoff(replay.clock.sleeps)


@dataclass
class Lingering(Call):
    """Another call, then a real pause before the cassette and the clock are left."""

    inner: Call
    seconds: float

    def sync(self, got: list[Any]) -> None:
        self.inner.sync(got)
        REAL_SLEEP(self.seconds)

    async def run_async(self, got: list[Any]) -> None:
        await self.inner.run_async(got)
        await REAL_ASYNC_SLEEP(self.seconds)


@pytest.mark.parametrize("mode", MODES)
def test_openai_backoff_is_measured_while_a_server_thread_runs(tape: Tape, mode: str) -> None:
    # A server in a thread of its own, as a session fixture or an in-process proxy keeps one, is
    # running while the SDK retries; the pause after the call gives its loop time to sleep. Its
    # sleeps stay real and out of the clock's record: only the SDK's backoff is there.
    fault = "rate_limit:times=2,retry_after_ms=250"
    with serve(provider_app()):
        call = Lingering(OpenAICall(tape.base_url, False), seconds=0.3)
        replay = run(tape.path("openai", False), call, mode, [fault])
    assert openai_text(replay.ok()) == EXPECTED.text
    assert replay.interactions == [None, None, 0]
    assert replay.clock.sleeps == [0.25, 0.25]
    assert replay.clock.elapsed_s == pytest.approx(0.5)


# == anthropic ===================================================================================


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("mode", MODES)
def test_anthropic_overloaded_twice_then_replays(tape: Tape, mode: str, stream: bool) -> None:
    fault = "overloaded:times=2"
    replay = run(tape.path("anthropic", stream), AnthropicCall(tape.base_url, stream), mode, [fault])
    assert anthropic_text(replay.ok()) == EXPECTED.text
    assert replay.faults == [[spec(fault)], [spec(fault)], []]
    assert replay.interactions == [None, None, 0]
    assert [a.status for a in replay.attempts] == [529, 529, 200]
    assert len(replay.clock.sleeps) == 2
    assert_backoff(replay.clock.sleeps)


@pytest.mark.parametrize("mode", MODES)
def test_anthropic_overloaded_three_times_raises_overloaded_error(tape: Tape, mode: str) -> None:
    replay = run(tape.path("anthropic", False), AnthropicCall(tape.base_url, False), mode, ["overloaded"])
    error = replay.raised(anthropic.OverloadedError)
    assert error.status_code == 529
    assert replay.faults == [["overloaded"]] * 3
    assert replay.interactions == [None, None, None]
    assert len(replay.clock.sleeps) == 2
    assert_backoff(replay.clock.sleeps)


@pytest.mark.parametrize("mode", MODES)
def test_anthropic_unavailable_three_times_raises_service_unavailable(tape: Tape, mode: str) -> None:
    # 2.x has its own class for 503 (0.x raised a plain InternalServerError).
    replay = run(tape.path("anthropic", False), AnthropicCall(tape.base_url, False), mode, ["unavailable"])
    error = replay.raised(anthropic.ServiceUnavailableError)
    assert isinstance(error, anthropic.InternalServerError)
    assert error.status_code == 503
    assert replay.faults == [["unavailable"]] * 3
    assert replay.interactions == [None, None, None]
    assert len(replay.clock.sleeps) == 2
    assert_backoff(replay.clock.sleeps)


@pytest.mark.parametrize("mode", MODES)
def test_anthropic_in_stream_overloaded_is_a_status_error_on_200(tape: Tape, mode: str) -> None:
    fault = "error_event:after=3,kind=overloaded"
    replay = run(tape.path("anthropic", True), AnthropicCall(tape.base_url, True), mode, [fault])
    error = replay.raised(anthropic.APIStatusError)
    # The generic class, with the stream's 200: not OverloadedError, and so not retried.
    assert type(error) is anthropic.APIStatusError
    assert error.status_code == 200
    assert error.type == "overloaded_error"
    assert [event.type for event in replay.got] == ["message_start", "content_block_start"]
    assert replay.faults == [[spec(fault)]]
    assert replay.interactions == [0]
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_anthropic_honours_any_retry_after(tape: Tape, mode: str) -> None:
    # anthropic 2.x sleeps any positive Retry-After, uncapped (openai gives up above 120 s, and
    # anthropic 0.x fell back to backoff above 60 s): 90 s here, virtually.
    fault = "rate_limit:times=1,retry_after=90"
    replay = run(tape.path("anthropic", False), AnthropicCall(tape.base_url, False), mode, [fault])
    assert anthropic_text(replay.ok()) == EXPECTED.text
    assert replay.faults == [[spec(fault)], []]
    assert replay.interactions == [None, 0]
    assert replay.clock.sleeps == [90.0]
    assert replay.attempts[1].time_s == pytest.approx(90.0)


@pytest.mark.parametrize("mode", MODES)
def test_anthropic_malformed_chunk_raises_json_decode_error(tape: Tape, mode: str) -> None:
    fault = "malformed_chunk:event=4"
    replay = run(tape.path("anthropic", True), AnthropicCall(tape.base_url, True), mode, [fault])
    replay.raised(json.JSONDecodeError)
    assert not isinstance(replay.error, anthropic.AnthropicError)
    # The ping (event 3) is skipped by the SDK, so two events came through.
    assert [event.type for event in replay.got] == ["message_start", "content_block_start"]
    assert replay.faults == [[spec(fault)]]
    assert replay.interactions == [0]
    assert replay.clock.sleeps == []


# == google-genai ================================================================================

GENAI_RETRY = genai_types.HttpRetryOptions(attempts=3, initial_delay=0.5, max_delay=4.0, jitter=0)


@pytest.mark.parametrize("mode", MODES)
def test_genai_does_not_retry_by_default(tape: Tape, mode: str) -> None:
    replay = run(tape.path("genai", False), GenaiCall(tape.base_url, False), mode, ["rate_limit"])
    error = replay.raised(genai_errors.ClientError)
    assert error.code == 429
    assert error.status == "RESOURCE_EXHAUSTED"
    assert replay.faults == [["rate_limit"]]
    assert replay.interactions == [None]
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_genai_retry_options_follow_its_backoff_not_retry_after(tape: Tape, mode: str) -> None:
    fault = "rate_limit:times=2,retry_after=30"
    call = GenaiCall(tape.base_url, False, retry=GENAI_RETRY)
    replay = run(tape.path("genai", False), call, mode, [fault])
    assert genai_text(replay.ok()) == EXPECTED.text
    assert replay.faults == [[spec(fault)], [spec(fault)], []]
    assert replay.interactions == [None, None, 0]
    # initial_delay * 2**n with no jitter; the 30 s Retry-After (and RetryInfo in the body) ignored.
    assert replay.clock.sleeps == [0.5, 1.0]


@pytest.mark.parametrize("mode", MODES)
def test_genai_retry_options_give_up_after_their_attempts(tape: Tape, mode: str) -> None:
    call = GenaiCall(tape.base_url, False, retry=GENAI_RETRY)
    replay = run(tape.path("genai", False), call, mode, ["unavailable"])
    error = replay.raised(genai_errors.ServerError)
    assert error.code == 503
    assert replay.faults == [["unavailable"]] * 3
    assert replay.interactions == [None, None, None]
    assert replay.clock.sleeps == [0.5, 1.0]


@pytest.mark.parametrize("mode", MODES)
def test_genai_unavailable_raises_server_error(tape: Tape, mode: str) -> None:
    replay = run(tape.path("genai", False), GenaiCall(tape.base_url, False), mode, ["unavailable"])
    error = replay.raised(genai_errors.ServerError)
    assert error.code == 503
    assert error.status == "UNAVAILABLE"
    assert replay.faults == [["unavailable"]]
    assert replay.interactions == [None]
    assert replay.clock.sleeps == []


@pytest.mark.parametrize(
    ("kind", "error_class", "code"),
    [
        ("server_error", genai_errors.ServerError, 500),
        ("overloaded", genai_errors.ServerError, 503),
        ("rate_limit", genai_errors.ClientError, 429),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_genai_in_stream_error_raises_by_code(
    tape: Tape, mode: str, kind: str, error_class: type[genai_errors.APIError], code: int
) -> None:
    fault = f"error_event:after=2,kind={kind}"
    replay = run(tape.path("genai", True), GenaiCall(tape.base_url, True), mode, [fault])
    error = replay.raised(error_class)
    assert error.code == code
    # The two chunks before the error came through; the stream is not retried.
    assert genai_text(replay.got) == "Let me check the weather"
    assert replay.faults == [[spec(fault)]]
    assert replay.interactions == [0]
    assert replay.attempts[0].status == 200
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_genai_malformed_chunk_raises_unknown_api_response_error(tape: Tape, mode: str) -> None:
    fault = "malformed_chunk:event=2"
    replay = run(tape.path("genai", True), GenaiCall(tape.base_url, True), mode, [fault])
    error = replay.raised(genai_errors.UnknownApiResponseError)
    assert "Failed to parse response as JSON" in str(error)
    assert genai_text(replay.got) == "Let me check"
    assert replay.faults == [[spec(fault)]]
    assert replay.interactions == [0]
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_genai_rechunked_stream_parses_the_same(tape: Tape, mode: str) -> None:
    # Gemini separates events with CRLF: the adversarial cuts fall between CR and LF.
    plain = run(tape.path("genai", True), GenaiCall(tape.base_url, True), mode)
    replay = run(tape.path("genai", True), GenaiCall(tape.base_url, True), mode, ["rechunk:mode=adversarial"])
    assert [c.model_dump() for c in replay.ok()] == [c.model_dump() for c in plain.ok()]
    assert genai_text(replay.got) == EXPECTED.text
    (attempt,) = replay.attempts
    assert b"".join(attempt.chunks) == b"".join(plain.attempts[0].chunks)
    assert len(attempt.chunks) > len(plain.attempts[0].chunks)
    assert attempt.faults == [spec("rechunk:mode=adversarial")]
    assert attempt.interaction == 0
    assert replay.clock.sleeps == []


# == ollama ======================================================================================


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("mode", MODES)
def test_ollama_rate_limit_is_not_retried(tape: Tape, mode: str, stream: bool) -> None:
    replay = run(tape.path("ollama", stream), OllamaCall(tape.base_url, stream), mode, ["rate_limit"])
    error = replay.raised(ollama.ResponseError)
    assert error.status_code == 429
    assert replay.faults == [["rate_limit"]]
    assert replay.interactions == [None]
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_ollama_in_stream_error_has_status_minus_one(tape: Tape, mode: str) -> None:
    fault = "error_event:after=2,message=an error was encountered while running the model"
    replay = run(tape.path("ollama", True), OllamaCall(tape.base_url, True), mode, [fault])
    error = replay.raised(ollama.ResponseError)
    assert error.status_code == -1
    assert error.error == "an error was encountered while running the model"
    assert ollama_text(replay.got) == "Let me check the weather"
    assert replay.faults == [[spec(fault)]]
    assert replay.interactions == [0]
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_ollama_malformed_line_raises_json_decode_error(tape: Tape, mode: str) -> None:
    fault = "malformed_chunk:event=2"
    replay = run(tape.path("ollama", True), OllamaCall(tape.base_url, True), mode, [fault])
    replay.raised(json.JSONDecodeError)
    assert ollama_text(replay.got) == "Let me check"
    assert replay.faults == [[spec(fault)]]
    assert replay.interactions == [0]
    assert replay.clock.sleeps == []


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("mode", MODES)
def test_ollama_connect_error(tape: Tape, mode: str, stream: bool) -> None:
    replay = run(tape.path("ollama", stream), OllamaCall(tape.base_url, stream), mode, ["connect_error"])
    if stream:
        # ollama-python maps ConnectError only on its non-streaming path; a streamed call gets the
        # raw httpx error (the reference only describes the non-streaming mapping).
        replay.raised(httpx.ConnectError)
    else:
        replay.raised(ConnectionError)
        assert not isinstance(replay.error, httpx.HTTPError)
    assert replay.faults == [["connect_error"]]
    assert replay.interactions == [None]
    assert replay.clock.sleeps == []


# == litellm =====================================================================================


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("mode", MODES)
def test_litellm_replays_offline_through_its_own_transport(
    litellm_tape: Tape, mode: str, stream: bool
) -> None:
    # The upstream is stopped: only an intercepted request can succeed.
    assert refuses_connections(litellm_tape.base_url)
    call = Probed(LitellmCall(litellm_tape.base_url, stream))
    replay = run(litellm_tape.path("litellm", stream), call, mode)
    if stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in replay.ok() if chunk.choices)
    else:
        text = replay.ok()[0].choices[0].message.content
    assert text == EXPECTED.text
    assert replay.interactions == [0]
    assert replay.faults == [[]]
    assert not any(a.recorded for a in replay.attempts)
    assert replay.clock.sleeps == []
    # Sync litellm sends through httpx's standard transport; async through its own aiohttp
    # transport, which llmcassette patches as well (when litellm was imported before the cassette).
    assert call.counts == Counter({"httpx" if mode == "sync" else "litellm aiohttp": 1})


@pytest.mark.parametrize("mode", MODES)
def test_litellm_passes_num_retries_to_the_openai_sdk(litellm_tape: Tape, mode: str) -> None:
    # num_retries=3 becomes the SDK's max_retries (its default is 2): 3 retries inside the SDK,
    # each after the retry-after-ms it was given, and the fourth attempt gets the recording.
    fault = "rate_limit:times=3,retry_after_ms=250"
    call = LitellmCall(litellm_tape.base_url, options={"num_retries": 3})
    replay = run(litellm_tape.path("litellm", False), call, mode, [fault])
    (response,) = replay.ok()
    assert response.choices[0].message.content == EXPECTED.text
    assert replay.faults == [[spec(fault)]] * 3 + [[]]
    assert replay.interactions == [None, None, None, 0]
    assert [a.headers.get("x-stainless-retry-count") for a in replay.attempts] == ["0", "1", "2", "3"]
    assert replay.clock.sleeps == [0.25, 0.25, 0.25]


@pytest.mark.parametrize("mode", MODES)
def test_litellm_wrapper_retries_after_the_sdk_gives_up(litellm_tape: Tape, mode: str) -> None:
    # num_retries=1: the SDK makes 2 attempts (both 429), then litellm's wrapper calls again with
    # the SDK's retries off, and that third attempt gets the recording.
    fault = "rate_limit:times=2,retry_after_ms=250"
    call = LitellmCall(litellm_tape.base_url, options={"num_retries": 1})
    replay = run(litellm_tape.path("litellm", False), call, mode, [fault])
    (response,) = replay.ok()
    assert response.choices[0].message.content == EXPECTED.text
    assert replay.interactions == [None, None, 0]
    assert [a.headers.get("x-stainless-retry-count") for a in replay.attempts] == ["0", "1", "0"]
    assert replay.clock.sleeps == [0.25]


@pytest.mark.parametrize("mode", MODES)
def test_litellm_rate_limit_exhausts_both_retry_layers(litellm_tape: Tape, mode: str) -> None:
    from litellm.exceptions import RateLimitError

    fault = "rate_limit:retry_after_ms=250"
    call = LitellmCall(litellm_tape.base_url, options={"num_retries": 2})
    replay = run(litellm_tape.path("litellm", False), call, mode, [fault])
    error = replay.raised(RateLimitError)
    assert isinstance(error, openai.RateLimitError)
    # 3 attempts by the SDK (max_retries=2), then 2 by litellm's wrapper (stop_after_attempt(2)).
    assert replay.faults == [[spec(fault)]] * 5
    assert replay.interactions == [None] * 5
    # The wrapper waits differently sync and async: completion_with_retries uses tenacity's
    # constant retry (no wait, slept as 0), acompletion switches a RateLimitError to
    # exponential_backoff_retry (wait_exponential: 1 s before its second attempt).
    wrapper_wait = 0.0 if mode == "sync" else 1.0
    assert replay.clock.sleeps == [0.25, 0.25, wrapper_wait]


@pytest.mark.parametrize("mode", MODES)
def test_litellm_num_retries_zero_makes_one_attempt(litellm_tape: Tape, mode: str) -> None:
    from litellm.exceptions import RateLimitError

    fault = "rate_limit:times=1"
    call = LitellmCall(litellm_tape.base_url, options={"num_retries": 0})
    replay = run(litellm_tape.path("litellm", False), call, mode, [fault])
    replay.raised(RateLimitError)
    assert replay.faults == [[spec(fault)]]
    assert replay.interactions == [None]
    assert replay.clock.sleeps == []
