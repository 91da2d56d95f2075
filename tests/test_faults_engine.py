"""
Faults injected by the engine into real recordings, seen by real httpx and httpx2 clients.

A local upstream (OpenAI-compatible chat completions, plain and streamed, beside the generic
``/sse`` and ``/ndjson`` streams of ``tests.servers``) is recorded once for the module; every test
then replays that cassette with faults, for httpx and httpx2, sync and async, and checks what the
client receives: the status, headers and bytes, where in the stream an error strikes and which
library's exception class it is, how long it takes (on a virtual clock or a tiny real timeout),
which calls a schedule picks, and that a seeded scenario gives the same bytes, chunks and attempt
log every run.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import llmcassette
from llmcassette import VirtualClock
from llmcassette.faults import Disconnect, RateLimit, Rechunk, parse_fault
from llmcassette.providers import get_profile
from tests.servers import Client, Received, ndjson_lines, serve, sse_events, stream_app

CHAT = "/v1/chat/completions"
PAIRS = "/sse?n=4&split=pairs&gap_ms=10"
NDJSON = "/ndjson?n=3&gap_ms=10"
ASK: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
STREAM_ASK: dict[str, Any] = {**ASK, "stream": True}
ANSWER: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"}}],
}
#: The recorded chat stream: four content events, then ``data: [DONE]``, one chunk each.
EVENTS = sse_events(4)
#: The recorded ``/sse`` stream: the same kind of events, two to a chunk.
PAIR_CHUNKS = [EVENTS[0] + EVENTS[1], EVENTS[2] + EVENTS[3], EVENTS[4]]
LINES = ndjson_lines(3)
#: The profile the chat endpoint is detected as (a chat completions path on an unknown host).
COMPAT = get_profile("openai-compatible")
#: httpx's default read timeout, which the clients here keep unless a test sets its own.
DEFAULT_TIMEOUT_S = 5.0


# -- the upstream, recorded once --------------------------------------------------------------------


async def _chat(request: Request) -> Response:
    payload = await request.json()
    if not payload.get("stream"):
        return JSONResponse(ANSWER, headers={"connection": "close"})

    async def body() -> Any:
        for index, event in enumerate(EVENTS):
            if index:
                await asyncio.sleep(0.01)  # apart, so each event is read (and recorded) as a chunk
            yield event

    return StreamingResponse(body(), media_type="text/event-stream", headers={"connection": "close"})


@dataclass(frozen=True)
class Tape:
    """The module's cassette: interaction 0 is the chat JSON, 1 the chat stream, 2 ``/sse``, 3 ``/ndjson``."""

    path: Path
    base: str

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Tape:
    path = tmp_path_factory.mktemp("engine") / "engine.yaml"
    app = stream_app()
    app.router.routes.append(Route(CHAT, _chat, methods=["POST"]))

    async def record(base: str) -> None:
        recorder = Client("httpx", False)
        with llmcassette.use_cassette(path, record_mode="once"):
            await recorder.send("POST", base + CHAT, json=ASK)
            await recorder.stream("POST", base + CHAT, json=STREAM_ASK)
            await recorder.stream("GET", base + PAIRS)
            await recorder.stream("GET", base + NDJSON)

    with serve(app) as base:
        asyncio.run(record(base))
    # The server is gone now: a replay that reached the network would fail to connect.
    chunks = [i.response.stream.chunks for i in llmcassette.load_cassette(path).interactions[1:]]
    expected = [[len(c) for c in EVENTS], [len(c) for c in PAIR_CHUNKS], [len(c) for c in LINES]]
    assert chunks == expected, "the recording did not keep the upstream's chunks apart"
    return Tape(path, base)


# -- helpers ----------------------------------------------------------------------------------------


class _TimedLibrary:
    """A library module whose clients are built with a given timeout (the helper uses the default)."""

    def __init__(self, module: ModuleType, timeout: float | None) -> None:
        self._module = module
        self._timeout = timeout

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def Client(self, **kwargs: Any) -> Any:
        return self._module.Client(timeout=self._timeout, **kwargs)

    def AsyncClient(self, **kwargs: Any) -> Any:
        return self._module.AsyncClient(timeout=self._timeout, **kwargs)


def with_timeout(client: Client, seconds: float | None) -> Client:
    """The same kind of client, with ``seconds`` as every timeout (read included)."""
    timed = Client(client.library, client.is_async)
    timed.lib = _TimedLibrary(client.lib, seconds)  # type: ignore[assignment]
    return timed


def other_library(client: Client) -> ModuleType:
    return Client("httpx2" if client.library == "httpx" else "httpx", False).lib


def assert_exact_error(client: Client, error: BaseException | None, name: str) -> None:
    """``error`` is exactly ``name`` of the client's library, and nothing of the other library."""
    assert type(error) is getattr(client.lib, name), f"{type(error)!r} is not {client.library}.{name}"
    assert not isinstance(error, other_library(client).HTTPError)


def chat_stream(client: Client, tape: Tape, **kwargs: Any) -> Any:
    return client.stream("POST", tape.url(CHAT), json=STREAM_ASK, **kwargs)


def virtual_marks(clock: VirtualClock) -> tuple[list[float], Any]:
    """A list that gets the virtual time each chunk arrives at, and the ``on_chunk`` that fills it."""
    marks: list[float] = []
    return marks, lambda index, chunk: marks.append(round(clock.elapsed_s, 6))


def outcome(received: Received) -> tuple[Any, ...]:
    error = received.error
    return (
        received.status,
        received.headers,
        received.chunks,
        (type(error).__name__, str(error)) if error is not None else None,
    )


def log_of(cassette: llmcassette.Cassette) -> list[tuple[Any, ...]]:
    return [
        (a.index, a.interaction, a.faults, a.provider, a.status, a.chunks, a.error, a.time_s)
        for a in cassette.attempts
    ]


# -- replacing faults: they answer without consuming the recording -----------------------------------


@pytest.mark.anyio
async def test_rate_limit_twice_then_the_recording(client: Client, tape: Tape) -> None:
    with llmcassette.use_cassette(tape.path, faults=["rate_limit:times=2"]) as cassette:
        answers = [await client.send("POST", tape.url(CHAT), json=ASK) for _ in range(3)]

    expected = COMPAT.error("rate_limit", retry_after_s=1.0)
    for limited in answers[:2]:
        assert limited.status == 429
        assert limited.body == expected.body
        assert json.loads(limited.body)["error"]["code"] == "rate_limit_exceeded"
        assert limited.header("retry-after") == "1"
        assert limited.header("content-length") == str(len(expected.body))
        for name, value in expected.headers:  # content type, request id, x-ratelimit-*
            assert limited.header(name) == value, name
        assert limited.header("x-ratelimit-remaining-requests") == "0"
    assert answers[2].status == 200 and json.loads(answers[2].body) == ANSWER
    assert [(a.interaction, a.status, a.faults, a.provider) for a in cassette.attempts] == [
        (None, 429, ["rate_limit:times=2"], "openai-compatible"),
        (None, 429, ["rate_limit:times=2"], "openai-compatible"),
        (0, 200, [], "openai-compatible"),
    ]
    assert cassette.play_counts == [1, 0, 0, 0]


@pytest.mark.anyio
async def test_a_status_fault_answers_a_stream_request_with_json(client: Client, tape: Tape) -> None:
    with llmcassette.use_cassette(tape.path, faults=["server_error:nth=1"]) as cassette:
        failed = await chat_stream(client, tape)
        streamed = await chat_stream(client, tape)
    assert failed.status == 500 and failed.header("content-type") == COMPAT.error_content_type
    assert failed.body == COMPAT.error("server_error").body
    assert streamed.chunks == EVENTS
    assert [a.interaction for a in cassette.attempts] == [None, 1]


#: What the async transports (httpcore on anyio) say live where the sync ones say the socket's text.
_ASYNC_SAYS = {
    "[Errno 111] Connection refused": "All connection attempts failed",
    "timed out": "",
    "[Errno 104] Connection reset by peer": "",
}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("spec", "error", "message", "virtual_s"),
    [
        ("connect_error:nth=1", "ConnectError", "[Errno 111] Connection refused", 0.0),
        ("connect_timeout:nth=1,delay_ms=250", "ConnectTimeout", "timed out", 0.25),
        ("read_timeout:nth=1", "ReadTimeout", "timed out", DEFAULT_TIMEOUT_S),  # the client's read timeout
        ("read_timeout:nth=1,delay_ms=1500,message=no head", "ReadTimeout", "no head", 1.5),
    ],
)
async def test_connection_faults_raise_the_library_class_and_are_logged(
    client: Client, tape: Tape, spec: str, error: str, message: str, virtual_s: float
) -> None:
    # The client gets its transport's words (`tests/test_network_texts.py` has them live); the
    # attempt log the sync transport's, whichever asked.
    start = time.monotonic()
    with VirtualClock() as clock:
        with llmcassette.use_cassette(tape.path, faults=[spec]) as cassette:
            with pytest.raises(client.lib.TransportError) as info:
                await client.send("POST", tape.url(CHAT), json=ASK)
            waited = clock.elapsed_s
            after = await client.send("POST", tape.url(CHAT), json=ASK)
    assert time.monotonic() - start < 1.0  # the wait was virtual
    assert_exact_error(client, info.value, error)
    assert str(info.value) == (_ASYNC_SAYS.get(message, message) if client.is_async else message)
    assert waited == pytest.approx(virtual_s)
    assert clock.sleeps == []  # llmcassette's own wait is not a client sleep
    assert json.loads(after.body) == ANSWER  # the recording was not consumed by the failure
    first, second = cassette.attempts
    assert (first.interaction, first.status, first.error) == (None, None, f"{error}: {message}")
    assert first.faults == [parse_fault(spec).spec()] and first.provider == "openai-compatible"
    assert (second.interaction, second.status, second.faults, second.error) == (0, 200, [], None)


@pytest.mark.anyio
async def test_read_timeout_without_a_clock_waits_for_the_clients_real_timeout(
    client: Client, tape: Tape
) -> None:
    timed = with_timeout(client, 0.05)
    with llmcassette.use_cassette(tape.path, faults=["read_timeout:nth=1"]):
        start = time.monotonic()
        with pytest.raises(client.lib.ReadTimeout):
            await timed.send("POST", tape.url(CHAT), json=ASK)
        took = time.monotonic() - start
    assert 0.05 <= took < 1.0


# -- stream faults, at the point a real failure strikes -------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        (
            "fin",
            "RemoteProtocolError",
            "peer closed connection without sending complete message body (incomplete chunked read)",
        ),
        ("reset", "ReadError", "[Errno 104] Connection reset by peer"),
    ],
)
async def test_disconnect_delivers_n_events_then_the_library_error(
    client: Client, tape: Tape, mode: str, error: str, message: str
) -> None:
    spec = f"disconnect:after=2,mode={mode}"
    with llmcassette.use_cassette(tape.path, faults=[spec]) as cassette:
        received = await chat_stream(client, tape)
    assert received.status == 200
    assert received.chunks == EVENTS[:2]
    assert_exact_error(client, received.error, error)
    assert str(received.error) == (_ASYNC_SAYS.get(message, message) if client.is_async else message)
    attempt = cassette.attempts[0]
    assert (attempt.interaction, attempt.status, attempt.chunks) == (1, 200, EVENTS[:2])
    assert attempt.faults == [parse_fault(spec).spec()]
    assert attempt.error == f"{error}: {message}"


@pytest.mark.anyio
async def test_disconnect_cuts_a_recorded_chunk_at_the_event_boundary(client: Client, tape: Tape) -> None:
    # Two events to a recorded chunk: after three events the second chunk is cut after its first event.
    with llmcassette.use_cassette(tape.path, faults=["disconnect:after=3"]) as cassette:
        received = await client.stream("GET", tape.url(PAIRS))
    assert received.chunks == [PAIR_CHUNKS[0], EVENTS[2]]
    assert_exact_error(client, received.error, "RemoteProtocolError")
    assert cassette.attempts[0].provider == "generic"


@pytest.mark.anyio
async def test_disconnect_on_ndjson_resets_after_the_first_line(client: Client, tape: Tape) -> None:
    with llmcassette.use_cassette(tape.path, faults=["disconnect:after=1,mode=reset"]):
        received = await client.stream("GET", tape.url(NDJSON))
    assert received.chunks == LINES[:1]
    assert_exact_error(client, received.error, "ReadError")


@pytest.mark.anyio
async def test_disconnect_of_a_json_body_keeps_its_content_length(client: Client, tape: Tape) -> None:
    body = llmcassette.load_cassette(tape.path).interactions[0].response.content
    half = len(body) // 2
    with llmcassette.use_cassette(tape.path, faults=["disconnect"]) as cassette:
        with pytest.raises(client.lib.TransportError) as info:
            await client.send("POST", tape.url(CHAT), json=ASK)
    assert_exact_error(client, info.value, "RemoteProtocolError")
    assert str(info.value) == (
        f"peer closed connection without sending complete message body (received {half} bytes, "
        f"expected {len(body)})"
    )
    assert cassette.attempts[0].chunks == [body[:half]]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("timeout", "spec"),
    [
        (None, "stall:after=2"),  # for ever, against httpx's default read timeout
        (30.0, "stall:after=2,seconds=60"),
        (2.0, "stall:after=2,seconds=2"),  # exactly the timeout: the client gives up first
    ],
)
async def test_stall_past_the_read_timeout_raises_it_after_n_events_on_the_virtual_clock(
    client: Client, tape: Tape, timeout: float | None, spec: str
) -> None:
    timed = client if timeout is None else with_timeout(client, timeout)
    start = time.monotonic()
    with VirtualClock() as clock:
        marks, on_chunk = virtual_marks(clock)
        with llmcassette.use_cassette(tape.path, faults=[spec]) as cassette:
            received = await chat_stream(timed, tape, on_chunk=on_chunk)
    assert time.monotonic() - start < 1.0
    assert received.chunks == EVENTS[:2] and marks == [0.0, 0.0]
    assert_exact_error(client, received.error, "ReadTimeout")
    assert clock.elapsed_s == pytest.approx(timeout or DEFAULT_TIMEOUT_S)
    assert clock.sleeps == []
    assert cassette.attempts[0].error == "ReadTimeout: timed out"  # (a plain-HTTP read's words)


@pytest.mark.anyio
async def test_stall_without_a_clock_times_out_in_real_time(client: Client, tape: Tape) -> None:
    timed = with_timeout(client, 0.05)
    with llmcassette.use_cassette(tape.path, faults=["stall:after=1,seconds=30"]):
        start = time.monotonic()
        received = await chat_stream(timed, tape)
        took = time.monotonic() - start
    assert received.chunks == EVENTS[:1]
    assert_exact_error(client, received.error, "ReadTimeout")
    assert 0.05 <= took < 1.0


@pytest.mark.anyio
async def test_stall_shorter_than_the_timeout_is_a_pause(client: Client, tape: Tape) -> None:
    with VirtualClock() as clock:
        marks, on_chunk = virtual_marks(clock)
        with llmcassette.use_cassette(tape.path, faults=["stall:after=2,seconds=1.5"]):
            received = await chat_stream(client, tape, on_chunk=on_chunk)
    assert received.chunks == EVENTS and received.error is None
    assert marks == [0.0, 0.0, 1.5, 1.5, 1.5]
    assert clock.sleeps == []

    timed = with_timeout(client, 1.0)
    with llmcassette.use_cassette(tape.path, faults=["stall:after=2,seconds=0.05"]):
        received = await chat_stream(timed, tape)
    assert received.chunks == EVENTS and received.error is None
    assert received.times[2] - received.times[1] >= 0.045  # the pause was real


@pytest.mark.anyio
async def test_stall_past_the_last_event_comes_after_the_whole_body(client: Client, tape: Tape) -> None:
    with VirtualClock() as clock:
        with llmcassette.use_cassette(tape.path, faults=["stall:after=9"]):
            received = await chat_stream(client, tape)
    assert received.chunks == EVENTS  # terminator included
    assert_exact_error(client, received.error, "ReadTimeout")
    assert clock.elapsed_s == pytest.approx(DEFAULT_TIMEOUT_S)


@pytest.mark.anyio
async def test_slow_delays_the_head_and_every_later_chunk_on_the_virtual_clock(
    client: Client, tape: Tape
) -> None:
    start = time.monotonic()
    with VirtualClock() as clock:
        marks, on_chunk = virtual_marks(clock)
        with llmcassette.use_cassette(tape.path, faults=["slow:ttfb_ms=300,gap_ms=100"]):
            received = await chat_stream(client, tape, on_chunk=on_chunk)
    assert time.monotonic() - start < 1.0
    assert received.chunks == EVENTS and received.error is None
    assert marks == pytest.approx([0.3, 0.4, 0.5, 0.6, 0.7])
    assert clock.sleeps == []


@pytest.mark.anyio
async def test_slow_gap_as_long_as_the_read_timeout_raises_it(client: Client, tape: Tape) -> None:
    with VirtualClock() as clock:
        with llmcassette.use_cassette(tape.path, faults=["slow:gap_ms=2500"]):
            received = await chat_stream(with_timeout(client, 2.0), tape)
    assert received.chunks == EVENTS[:1]
    assert_exact_error(client, received.error, "ReadTimeout")
    assert clock.elapsed_s == pytest.approx(2.0)


@pytest.mark.anyio
async def test_slow_head_later_than_the_read_timeout_raises_it(client: Client, tape: Tape) -> None:
    with VirtualClock() as clock:
        with llmcassette.use_cassette(tape.path, faults=["slow:ttfb_ms=10000"]) as cassette:
            with pytest.raises(client.lib.ReadTimeout):
                await chat_stream(with_timeout(client, 2.0), tape)
    assert clock.elapsed_s == pytest.approx(2.0)
    attempt = cassette.attempts[0]
    assert (attempt.status, attempt.error) == (None, "ReadTimeout: timed out")


@pytest.mark.anyio
@pytest.mark.parametrize(("spec", "kept"), [("truncate:after=2", 2), ("truncate:after=9", 4)])
async def test_truncate_ends_cleanly_without_the_terminator(
    client: Client, tape: Tape, spec: str, kept: int
) -> None:
    with llmcassette.use_cassette(tape.path, faults=[spec]) as cassette:
        received = await chat_stream(client, tape)
    assert received.status == 200 and received.error is None
    assert received.chunks == EVENTS[:kept]
    assert b"[DONE]" not in received.body
    assert cassette.attempts[0].error is None


@pytest.mark.anyio
async def test_truncate_halves_a_json_body_and_its_content_length(client: Client, tape: Tape) -> None:
    body = llmcassette.load_cassette(tape.path).interactions[0].response.content
    with llmcassette.use_cassette(tape.path, faults=["truncate"]):
        received = await client.send("POST", tape.url(CHAT), json=ASK)
    assert received.body == body[: len(body) // 2]
    assert received.header("content-length") == str(len(body) // 2)


@pytest.mark.anyio
async def test_malformed_chunk_cuts_one_events_json_and_keeps_its_framing(client: Client, tape: Tape) -> None:
    with llmcassette.use_cassette(tape.path, faults=["malformed_chunk:event=2"]):
        received = await chat_stream(client, tape)
    assert received.error is None
    assert [received.chunks[0], *received.chunks[2:]] == [EVENTS[0], *EVENTS[2:]]
    broken = received.chunks[1]
    original = EVENTS[1][len(b"data: ") : -2]
    assert broken == b"data: " + original[: len(original) // 2] + b"\n\n"
    with pytest.raises(ValueError):
        json.loads(broken[len(b"data: ") : -2])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("spec", "kept", "kind", "message"),
    [
        ("error_event:after=1", 1, "server_error", None),
        ("error_event:after=3,kind=overloaded,message=busy", 3, "overloaded", "busy"),
    ],
)
async def test_error_event_replaces_the_rest_of_the_stream(
    client: Client, tape: Tape, spec: str, kept: int, kind: str, message: str | None
) -> None:
    with llmcassette.use_cassette(tape.path, faults=[spec]):
        received = await chat_stream(client, tape)
    assert received.status == 200 and received.error is None
    assert received.chunks == [*EVENTS[:kept], COMPAT.error_event(message=message, kind=kind)]
    error = json.loads(received.chunks[-1][len(b"data: ") :])["error"]
    assert error["message"] == (
        message or "The server had an error while processing your request. Sorry about that!"
    )
    assert b"[DONE]" not in received.body


@pytest.mark.anyio
async def test_rechunk_moves_boundaries_and_keeps_the_bytes(client: Client, tape: Tape) -> None:
    body = b"".join(EVENTS)
    with llmcassette.use_cassette(tape.path, faults=["rechunk", "rechunk:size=100"]):
        one_byte = await chat_stream(client, tape)
    # Both fire: a hundred-byte cut of one-byte chunks is a hundred-byte cut.
    assert one_byte.chunks == [body[i : i + 100] for i in range(0, len(body), 100)]

    with llmcassette.use_cassette(tape.path, faults=["rechunk"]):
        one_byte = await chat_stream(client, tape)
    assert one_byte.chunks == [body[i : i + 1] for i in range(len(body))]

    with llmcassette.use_cassette(tape.path, faults=["rechunk:mode=random,seed=3,min_size=5,max_size=30"]):
        randomly = await chat_stream(client, tape)
    assert randomly.body == body and randomly.error is None
    assert all(5 <= len(c) <= 30 for c in randomly.chunks[:-1]) and len(randomly.chunks[-1]) <= 30

    with llmcassette.use_cassette(tape.path, faults=["rechunk:mode=event"]):
        per_event = await client.stream("GET", tape.url(PAIRS))
    assert per_event.chunks == EVENTS


@pytest.mark.anyio
async def test_empty_stream_is_the_providers_empty_200(client: Client, tape: Tape) -> None:
    with llmcassette.use_cassette(tape.path, faults=["empty_stream"]) as cassette:
        streamed = await chat_stream(client, tape)
        plain = await client.send("POST", tape.url(CHAT), json=ASK)
    assert streamed.status == 200 and streamed.error is None
    assert streamed.body == COMPAT.empty_stream()
    assert len(streamed.chunks) == 3 and streamed.chunks[-1] == b"data: [DONE]\n\n"  # one chunk per event
    finish = json.loads(streamed.chunks[1][len(b"data: ") :])["choices"][0]
    assert (finish["delta"], finish["finish_reason"]) == ({}, "stop")  # finished, having said nothing
    assert (plain.status, plain.body, plain.header("content-length")) == (200, b"", "0")
    assert [a.interaction for a in cassette.attempts] == [1, 0]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "spec", ["disconnect:times=1", "truncate:times=1", "empty_stream:times=1", "stall:times=1"]
)
async def test_a_broken_stream_leaves_the_recording_for_the_retry(
    client: Client, tape: Tape, spec: str
) -> None:
    with VirtualClock():
        with llmcassette.use_cassette(tape.path, faults=[spec]) as cassette:
            broken = await chat_stream(client, tape)
            retried = await chat_stream(client, tape)
    assert broken.chunks != EVENTS or broken.error is not None
    assert retried.chunks == EVENTS and retried.error is None
    assert [(a.interaction, len(a.faults)) for a in cassette.attempts] == [(1, 1), (1, 0)]


@pytest.mark.anyio
async def test_a_stream_delivered_differently_consumes_the_recording(client: Client, tape: Tape) -> None:
    with pytest.raises(llmcassette.NoMatchingInteraction, match="already been played"):
        with llmcassette.use_cassette(tape.path, faults=["rechunk:times=1"]) as cassette:
            assert (await chat_stream(client, tape)).body == b"".join(EVENTS)
            await chat_stream(client, tape)
    assert [a.interaction for a in cassette.attempts] == [1, None]


# -- schedules, end to end --------------------------------------------------------------------------


async def statuses(client: Client, tape: Tape, faults: Sequence[Any], calls: int) -> tuple[str, Any]:
    """Send the chat JSON ``calls`` times: ``x`` for each 500, ``.`` for each recorded answer."""
    with llmcassette.use_cassette(tape.path, faults=faults, allow_playback_repeats=True) as cassette:
        codes = [(await client.send("POST", tape.url(CHAT), json=ASK)).status for _ in range(calls)]
    assert set(codes) <= {200, 500}
    return "".join("x" if code == 500 else "." for code in codes), cassette


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("server_error:times=2", "xx...."),
        ("server_error:nth=3", "..x..."),
        ("server_error:every=2", ".x.x.x"),
        ("server_error:every=2,times=4", ".x.x.."),
        ("server_error:probability=0", "......"),
        ("server_error:probability=1,nth=5", "....x."),
    ],
)
async def test_schedules_pick_the_calls_they_say(client: Client, tape: Tape, spec: str, pattern: str) -> None:
    got, cassette = await statuses(client, tape, [spec], len(pattern))
    assert got == pattern
    logged = parse_fault(spec).spec()
    assert [a.faults for a in cassette.attempts] == [[logged] if c == "x" else [] for c in pattern]
    assert [a.interaction for a in cassette.attempts] == [None if c == "x" else 0 for c in pattern]


@pytest.mark.anyio
async def test_probability_with_a_seed_picks_the_same_calls_every_run(client: Client, tape: Tape) -> None:
    first, _ = await statuses(client, tape, ["server_error:probability=0.5,seed=7"], 16)
    again, _ = await statuses(client, tape, ["server_error:probability=0.5,seed=7"], 16)
    other, _ = await statuses(client, tape, ["server_error:probability=0.5,seed=8"], 16)
    assert first == again
    assert 0 < first.count("x") < 16
    assert first != other
    fault = parse_fault("server_error:probability=0.5,seed=7")
    assert first == "".join("x" if fault.fires_on(call) else "." for call in range(1, 17))


@pytest.mark.anyio
async def test_path_filter_counts_only_the_calls_it_lets_through(client: Client, tape: Tape) -> None:
    faults = ["rate_limit:path=/ndjson,nth=2"]
    with llmcassette.use_cassette(tape.path, faults=faults, allow_playback_repeats=True) as cassette:
        got = [
            (await client.stream("GET", tape.url(NDJSON))).status,
            (await client.send("POST", tape.url(CHAT), json=ASK)).status,
            (await client.send("POST", tape.url(CHAT), json=ASK)).status,
            (await client.stream("GET", tape.url(NDJSON))).status,
            (await client.stream("GET", tape.url(NDJSON))).status,
        ]
    assert got == [200, 200, 200, 429, 200]
    assert [a.provider for a in cassette.attempts] == [
        "generic",
        "openai-compatible",
        "openai-compatible",
        "generic",
        "generic",
    ]

    got_glob, _ = await statuses(client, tape, ["server_error:path=/v1/*"], 1)
    got_other, _ = await statuses(client, tape, ["server_error:path=/v2/*"], 1)
    assert (got_glob, got_other) == ("x", ".")


@pytest.mark.anyio
async def test_provider_filter_and_provider_override(client: Client, tape: Tape) -> None:
    faults = ["rate_limit:provider=openai-compatible"]
    with llmcassette.use_cassette(tape.path, faults=faults) as cassette:
        chat = await client.send("POST", tape.url(CHAT), json=ASK)
        lines = await client.stream("GET", tape.url(NDJSON))
    assert (chat.status, lines.status, lines.chunks) == (429, 200, LINES)
    assert [a.provider for a in cassette.attempts] == ["openai-compatible", "generic"]

    openai = get_profile("openai")
    with llmcassette.use_cassette(
        tape.path, faults=["rate_limit:provider=openai"], provider="openai"
    ) as forced:
        lines = await client.stream("GET", tape.url(NDJSON))
    assert lines.status == 429 and lines.body == openai.error("rate_limit", retry_after_s=1.0).body
    assert forced.attempts[0].provider == "openai"


@pytest.mark.anyio
async def test_stream_filter_tells_streamed_requests_apart(client: Client, tape: Tape) -> None:
    with llmcassette.use_cassette(tape.path, faults=["server_error:stream=true"]):
        plain = await client.send("POST", tape.url(CHAT), json=ASK)
        streamed = await chat_stream(client, tape)
    assert (plain.status, streamed.status) == (200, 500)
    with llmcassette.use_cassette(tape.path, faults=["server_error:stream=false"]):
        plain = await client.send("POST", tape.url(CHAT), json=ASK)
        streamed = await chat_stream(client, tape)
    assert (plain.status, streamed.status, streamed.chunks) == (500, 200, EVENTS)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "faults",
    [["rate_limit:times=1", "disconnect:after=1"], ["disconnect:after=1", "rate_limit:times=1"]],
    ids=["replacing-first", "stream-first"],
)
async def test_a_replacing_fault_and_a_stream_fault_combined(
    client: Client, tape: Tape, faults: list[str]
) -> None:
    with llmcassette.use_cassette(tape.path, faults=faults) as cassette:
        limited = await chat_stream(client, tape)
        cut = await chat_stream(client, tape)
    assert limited.status == 429 and limited.error is None
    assert cut.status == 200 and cut.chunks == EVENTS[:1]
    assert_exact_error(client, cut.error, "RemoteProtocolError")
    assert [(a.interaction, a.faults) for a in cassette.attempts] == [
        (None, ["rate_limit:times=1"]),
        (1, ["disconnect:after=1"]),
    ]


@pytest.mark.anyio
async def test_two_stream_faults_apply_in_order(client: Client, tape: Tape) -> None:
    with llmcassette.use_cassette(tape.path, faults=["truncate:after=3", "rechunk:size=50"]) as cassette:
        received = await chat_stream(client, tape)
    body = b"".join(EVENTS[:3])
    assert received.chunks == [body[i : i + 50] for i in range(0, len(body), 50)]
    assert cassette.attempts[0].faults == ["truncate:after=3", "rechunk:size=50"]


FORMS: dict[str, list[Any]] = {
    "spec": [
        "rate_limit:times=1,retry_after_ms=250",
        "disconnect:after=2,mode=reset",
        "rechunk:mode=random,seed=4",
    ],
    "model": [
        RateLimit(times=1, retry_after_ms=250),
        Disconnect(after=2, mode="reset"),
        Rechunk(mode="random", seed=4),
    ],
    "mapping": [
        {"name": "rate_limit", "times": 1, "retry_after_ms": 250},
        {"name": "disconnect", "after": 2, "mode": "reset"},
        {"name": "rechunk", "mode": "random", "seed": 4},
    ],
}


async def scenario(client: Client, tape: Tape, faults: Sequence[Any], calls: int = 2) -> tuple[Any, ...]:
    """Stream the chat ``calls`` times on a virtual clock; what the client got, and the attempt log."""
    with VirtualClock(start_s=1_700_000_000.0):
        with llmcassette.use_cassette(tape.path, faults=faults, allow_playback_repeats=True) as cassette:
            outcomes = []
            for _ in range(calls):
                outcomes.append(outcome(await chat_stream(client, tape)))
                time.sleep(0.5)  # virtual: gives every attempt its own time
    return outcomes, log_of(cassette)


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["model", "mapping"])
async def test_a_fault_as_a_model_a_mapping_or_a_spec_string_behaves_the_same(
    client: Client, tape: Tape, form: str
) -> None:
    expected = await scenario(client, tape, FORMS["spec"])
    assert await scenario(client, tape, FORMS[form]) == expected
    (limited, cut), log = expected
    assert limited[0] == 429 and ("retry-after-ms", "250") in limited[1]
    assert b"".join(cut[2]) == EVENTS[0] + EVENTS[1] and cut[3][0] == "ReadError"
    specs = [parse_fault(spec).spec() for spec in FORMS["spec"]]
    assert [entry[2] for entry in log] == [specs[:1], specs[1:]]


# -- determinism ------------------------------------------------------------------------------------

SEEDED = [
    "rate_limit:probability=0.5,seed=11,retry_after_date=30",
    "rechunk:mode=random,seed=5,min_size=4,max_size=64",
]


@pytest.mark.anyio
async def test_same_cassette_faults_and_seed_give_the_same_bytes_chunks_and_log(
    client: Client, tape: Tape
) -> None:
    first = await scenario(client, tape, SEEDED, calls=10)
    assert await scenario(client, tape, SEEDED, calls=10) == first
    # ... whichever library and mode the client uses.
    assert await scenario(Client("httpx", False), tape, SEEDED, calls=10) == first

    outcomes, log = first
    codes = [o[0] for o in outcomes]
    assert 429 in codes and 200 in codes
    streams = [o[2] for o in outcomes if o[0] == 200]
    assert all(b"".join(chunks) == b"".join(EVENTS) for chunks in streams)
    assert all(4 <= len(c) <= 64 for chunks in streams for c in chunks[:-1])
    assert len({tuple(chunks) for chunks in streams}) == len(streams)  # each call its own cut
    for (status, headers, _, _), entry in zip(outcomes, log, strict=True):
        time_s = entry[-1]
        if status == 429:  # an HTTP-date thirty seconds after the virtual now
            expected = email.utils.formatdate(1_700_000_000.0 + time_s + 30, usegmt=True)
            assert ("retry-after", expected) in headers
    assert [entry[-1] for entry in log] == [0.5 * i for i in range(10)]

    reseeded = await scenario(client, tape, [SEEDED[0], SEEDED[1].replace("seed=5", "seed=6")], calls=10)
    assert [o[0] for o in reseeded[0]] == codes  # the rate limit draw is unchanged
    assert [o[2] for o in reseeded[0]] != [o[2] for o in outcomes]


def _arrivals(body_chunks: list[bytes], marks: list[float]) -> list[tuple[int, float]]:
    """Each chunk's end as a byte position in the body, with the time it arrived."""
    ends, position = [], 0
    for chunk, mark in zip(body_chunks, marks, strict=True):
        position += len(chunk)
        ends.append((position, mark))
    return ends


@pytest.mark.anyio
@pytest.mark.parametrize(
    "spec", ["disconnect:after=2", "truncate:after=3", "rechunk:mode=fixed,size=7", "stall:after=1,seconds=1"]
)
async def test_at_the_recorded_pace_a_stream_fault_keeps_the_times_the_bytes_arrived_at(
    client: Client, tape: Tape, spec: str
) -> None:
    # Before, a fault that changed the number of chunks (a cut, a re-split) played them all at
    # once after the head: the recorded pace was dropped. A byte now arrives when it did when
    # recorded (a stall's silence added), whatever chunk it travels in. Twenty times slower than
    # recorded, so that the replay's own real time (which the pace does not wait again) stays
    # small beside the gaps, on a loaded machine too.
    pace = 0.05
    with VirtualClock() as clock:
        marks, on_chunk = virtual_marks(clock)
        with llmcassette.use_cassette(tape.path, pace=pace):
            paced = await chat_stream(client, tape, on_chunk=on_chunk)
    recorded_at = dict(_arrivals(paced.chunks, marks))
    assert paced.chunks == EVENTS and marks[-1] > marks[0] + 0.6  # the events came 10 ms apart
    with VirtualClock() as clock:
        marks, on_chunk = virtual_marks(clock)
        with llmcassette.use_cassette(tape.path, pace=pace, faults=[spec]):
            faulted = await chat_stream(client, tape, on_chunk=on_chunk)
    assert b"".join(EVENTS).startswith(b"".join(faulted.chunks))
    stalled = 1.0 if spec.startswith("stall") else 0.0
    for end, mark in _arrivals(faulted.chunks, marks):
        # The time of the recorded chunk its last byte came in.
        due = next(at for position, at in sorted(recorded_at.items()) if position >= end)
        if spec.startswith("stall") and end > len(EVENTS[0]):
            due += stalled
        assert mark == pytest.approx(due, abs=0.05), (end, marks)
