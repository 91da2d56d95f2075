"""
The aiohttp door: a ``ClientSession`` recorded from a real local upstream, replayed with no
socket opened, chunk for chunk through every reading style, with aiohttp's own failures.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import selectors
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings

import llmcassette
from llmcassette import VirtualClock
from tests.adapters.test_http_client import forbid_sockets
from tests.arbitrary import STREAM_BODIES, STREAMS
from tests.servers import PlannedUpstream, hang_up_server, serve, stream_app, unanswered_url

#: What a sock_read and a connect timeout raise: aiohttp 3.10 gave each a class of its own, where
#: 3.8 and 3.9 raise ServerTimeoutError for both.
SOCKET_TIMEOUT: type[Exception] = getattr(aiohttp, "SocketTimeoutError", aiohttp.ServerTimeoutError)
CONNECT_TIMEOUT: type[Exception] = getattr(aiohttp, "ConnectionTimeoutError", aiohttp.ServerTimeoutError)
# What a default session gets for a connection that never comes: its `sock_connect` timer's error
# (aiohttp 3.10 on), or, timed by `total` alone (3.9 and before), the total timer's.
_DEFAULT_TIMED_BY_TOTAL = aiohttp.client.DEFAULT_TIMEOUT.sock_connect is None
DEFAULT_CONNECT_TIMEOUT = asyncio.TimeoutError if _DEFAULT_TIMED_BY_TOTAL else CONNECT_TIMEOUT

SSE = "/sse?n=4&gap_ms=15"
NDJSON = "/ndjson?n=3&gap_ms=15"

Read = Callable[[aiohttp.ClientResponse], Awaitable[Any]]


async def _chunks(response: aiohttp.ClientResponse) -> list[bytes]:
    return [chunk async for chunk in response.content.iter_any()]


async def _session_calls(base: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.post(base + SSE, json={"stream": True}) as response:
            sse = await _chunks(response)
        async with session.post(base + "/json", json={"a": 1}) as response:
            answer = await response.json()
        async with session.post(base + NDJSON, json={}) as response:
            lines = [line async for line in response.content]
    return {"sse": sse, "json": answer, "ndjson": lines}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    path = tmp_path_factory.mktemp("aiohttp") / "aiohttp.yaml"
    with serve(stream_app()) as base:
        with llmcassette.use_cassette(path, record_mode="once"):
            live = asyncio.run(_session_calls(base))
        yield path, base, live


@pytest.fixture
def cassette(recorded: tuple[Path, str, dict[str, Any]], tmp_path: Path) -> Path:
    return Path(shutil.copy(recorded[0], tmp_path / "aiohttp.yaml"))


def test_recorded_as_it_arrived_and_replayed_with_no_socket(
    recorded: tuple[Path, str, dict[str, Any]], cassette: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, base, live = recorded
    assert len(live["sse"]) == 5  # four events and [DONE], each written on its own
    document = llmcassette.load_cassette(cassette)
    stream = document.interactions[0].response.stream
    assert stream is not None and stream.chunks == [len(c) for c in live["sse"]]
    forbid_sockets(monkeypatch)
    with llmcassette.use_cassette(cassette) as replay:
        assert asyncio.run(_session_calls(base)) == live
    assert [a.interaction for a in replay.attempts] == [0, 1, 2]


def test_an_answer_read_to_its_end_is_recorded_whole(recorded: tuple[Path, str, dict[str, Any]]) -> None:
    # The JSON answer came in one piece and the client read it all: stored as httpx stores it,
    # with no stream record, and not as a stream the client closed before its end (which the door
    # made of it when aiohttp closed the connection before the door had seen the body end).
    path = recorded[0]
    answer = llmcassette.load_cassette(path).interactions[1].response
    assert answer.stream is None


def test_the_virtual_clock_sees_no_wait_the_client_did_not_make(
    recorded: tuple[Path, str, dict[str, Any]], cassette: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The door yields to the loop while the client reads each fed chunk; those yields are its own,
    # not the client's, so a test asserting a client's backoff (litellm's async client, which
    # sends through aiohttp) sees only the client's waits.
    _, base, live = recorded
    forbid_sockets(monkeypatch)
    with VirtualClock() as clock, llmcassette.use_cassette(cassette):
        assert asyncio.run(_session_calls(base)) == live
    assert clock.sleeps == []


async def _iter_chunked(response: aiohttp.ClientResponse) -> bytes:
    return b"".join([chunk async for chunk in response.content.iter_chunked(7)])


async def _readline(response: aiohttp.ClientResponse) -> bytes:
    lines = []
    while line := await response.content.readline():
        lines.append(line)
    return b"".join(lines)


async def _read_n(response: aiohttp.ClientResponse) -> bytes:
    return await response.content.read(10) + await response.content.read()


async def _read(response: aiohttp.ClientResponse) -> bytes:
    return await response.read()


@pytest.mark.parametrize("read", [_iter_chunked, _readline, _read_n, _read])
def test_every_reading_style_gets_the_recorded_bytes(
    recorded: tuple[Path, str, dict[str, Any]], cassette: Path, monkeypatch: pytest.MonkeyPatch, read: Read
) -> None:
    _, base, live = recorded
    forbid_sockets(monkeypatch)

    async def call() -> Any:
        async with aiohttp.ClientSession() as session:
            async with session.post(base + SSE, json={"stream": True}) as response:
                return await read(response)

    with llmcassette.use_cassette(cassette):
        assert asyncio.run(call()) == b"".join(live["sse"])


def _one(base: str, path: str, **session: Any) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        async with aiohttp.ClientSession(**session) as client:
            async with client.post(
                base + path, json={"stream": True} if path == SSE else {"a": 1}
            ) as response:
                response.raise_for_status()
                return await _chunks(response)

    return call


@pytest.mark.parametrize(
    ("fault", "path", "error"),
    [
        ("connect_error", "/json", aiohttp.ClientConnectorError),
        ("disconnect:after=2", SSE, aiohttp.ClientPayloadError),
        ("rate_limit", "/json", aiohttp.ClientResponseError),
        # (a default session, timed by `total` alone: see the test of a session timed so)
        ("read_timeout", "/json", asyncio.TimeoutError),
        ("connect_timeout", "/json", DEFAULT_CONNECT_TIMEOUT),
    ],
)
def test_faults_raise_what_aiohttp_raises(
    recorded: tuple[Path, str, dict[str, Any]],
    cassette: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    path: str,
    error: type[Exception],
) -> None:
    base = recorded[1]
    forbid_sockets(monkeypatch)
    with VirtualClock(), llmcassette.use_cassette(cassette, faults=[fault]) as replay:
        with pytest.raises(error):
            asyncio.run(_one(base, path)())
    assert replay.attempts[0].faults == [fault]


def test_a_stall_longer_than_the_sock_read_timeout_times_out(
    recorded: tuple[Path, str, dict[str, Any]], cassette: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = recorded[1]
    forbid_sockets(monkeypatch)
    timeout = aiohttp.ClientTimeout(sock_read=5)
    with VirtualClock(), llmcassette.use_cassette(cassette, faults=["stall:after=2"]):
        with pytest.raises(SOCKET_TIMEOUT):
            asyncio.run(_one(base, SSE, timeout=timeout)())


@pytest.mark.parametrize("mode", ["close", "reset"])
def test_an_upstream_that_hangs_up_before_answering_is_recorded_and_replayed_as_aiohttp_sees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    path = tmp_path / "hung-up.yaml"

    async def post(url: str) -> BaseException:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError) as info:
                async with session.post(url, json={"q": 1}) as response:
                    await response.read()
        return info.value

    with hang_up_server(mode) as base:
        url = base + "/v1/chat/completions"
        direct = asyncio.run(post(url))
        with llmcassette.use_cassette(path, record_mode="once") as recording:
            live = asyncio.run(post(url))
    expected = aiohttp.ServerDisconnectedError if mode == "close" else aiohttp.ClientOSError
    assert type(direct) is type(live) is expected
    assert str(live) == str(direct)
    assert recording.attempts[0].recorded
    (interaction,) = llmcassette.load_cassette(path).interactions
    assert interaction.response.status is None

    forbid_sockets(monkeypatch)
    with llmcassette.use_cassette(path):
        replayed = asyncio.run(post(url))
    assert type(replayed) is expected
    assert str(replayed) == str(direct)


def test_a_request_that_goes_through_httpx_is_recorded_once(tmp_path: Path) -> None:
    # A transport built on aiohttp under an httpx client (as litellm's is) answers at the httpx
    # door; its own aiohttp request passes the aiohttp door, so nothing is recorded twice.
    import httpx

    class AiohttpTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            async with aiohttp.ClientSession() as session:
                async with session.post(str(request.url), data=request.content) as response:
                    return httpx.Response(response.status, content=await response.read())

    async def call(base: str) -> Any:
        async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
            return (await client.post(base + "/json", json={"a": 1})).json()

    path = tmp_path / "nested.yaml"
    with serve(stream_app()) as base:
        with llmcassette.use_cassette(path, record_mode="once") as recording:
            assert asyncio.run(call(base)) == {"echo": {"a": 1}, "path": "/json"}
    assert len(recording.attempts) == 1
    assert json.loads(llmcassette.load_cassette(path).interactions[0].request.content) == {"a": 1}


@pytest.fixture(scope="module")
def planned() -> Iterator[tuple[str, PlannedUpstream]]:
    upstream = PlannedUpstream()
    with serve(upstream) as base:
        yield base, upstream


@settings(max_examples=20, deadline=None)
@given(stream=STREAMS, body=STREAM_BODIES)
def test_any_body_in_any_chunking_is_recorded_and_replayed_exactly_through_aiohttp(
    planned: tuple[str, PlannedUpstream], stream: tuple[str | None, list[bytes]], body: bytes
) -> None:
    base, upstream = planned
    content_type, chunks = stream
    url = base + upstream.plan(content_type, chunks)

    async def read() -> list[bytes]:
        async with aiohttp.ClientSession() as session, session.post(url, data=body) as response:
            return await _chunks(response)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        with llmcassette.use_cassette(path, record_mode="once"):
            live = asyncio.run(read())
        with llmcassette.use_cassette(path):
            assert asyncio.run(read()) == live
    # Each chunk reached the client as one read, while recording as in replay.
    assert live == chunks


def test_a_replay_under_a_virtual_clock_records_no_sleeps_of_its_own(
    recorded: tuple[Path, str, dict[str, Any]], cassette: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The door waits for the client to take each chunk before feeding the next: a wait of its
    # own, which is neither the client's sleep nor virtual time.
    _, base, live = recorded
    forbid_sockets(monkeypatch)
    with VirtualClock() as clock, llmcassette.use_cassette(cassette, faults=["rechunk:mode=fixed,size=1"]):
        assert asyncio.run(_one(base, SSE)()) == [bytes([b]) for b in b"".join(live["sse"])]
    assert clock.sleeps == []
    assert clock.elapsed_s == 0.0


def test_a_session_closed_with_a_response_left_unread_closes_at_once(
    recorded: tuple[Path, str, dict[str, Any]], cassette: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Closing a session waits for each connection it still holds to report itself lost, as a
    # socket's transport does once closed. google-genai's async client closes its session with
    # the stream of a failed call unread (its generator raised on an in-stream error event).
    _, base, _ = recorded
    forbid_sockets(monkeypatch)

    async def leave_unread() -> int:
        async with aiohttp.ClientSession() as session:
            response = await session.post(base + SSE, json={"stream": True})
        response.close()  # (after the session: only to spare aiohttp's warning when it is collected)
        return response.status

    with llmcassette.use_cassette(cassette) as replay:
        assert asyncio.run(asyncio.wait_for(leave_unread(), timeout=5)) == 200
    assert [a.interaction for a in replay.attempts] == [0]


class _CountingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Counts the event loop's turns: each one selects once."""

    turns = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self.turns += 1
        return super().select(timeout)


@pytest.mark.parametrize("pace", ["instant", "recorded"])
def test_a_response_the_client_abandons_costs_no_turns_of_the_loop_while_it_waits(
    recorded: tuple[Path, str, dict[str, Any]], cassette: Path, monkeypatch: pytest.MonkeyPatch, pace: str
) -> None:
    # A client that stops reading part way (a `break` out of its loop) and neither reads on nor
    # closes: the door waits for it to want the next chunk, as a socket would hold it, without
    # waking the loop meanwhile (at recorded pace, once the next chunks' times have come, 15 ms
    # apart); once the cassette is gone and the session closes, nothing of it is left running.
    _, base, live = recorded
    forbid_sockets(monkeypatch)
    selector = _CountingSelector()

    async def abandon() -> tuple[bytes, int, int]:
        with llmcassette.use_cassette(cassette, pace=pace):
            session = aiohttp.ClientSession()
            response = await session.post(base + SSE, json={"stream": True})
            first = await response.content.readany()
            await asyncio.sleep(0.1)  # (the door feeds what the client has room for, then waits)
            turns = selector.turns
            await asyncio.sleep(0.2)
            waiting = selector.turns - turns
        turns = selector.turns
        await asyncio.sleep(0.2)
        after = selector.turns - turns
        await asyncio.wait_for(session.close(), timeout=5)
        response.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        return first, waiting, after

    with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(selector)) as runner:
        first, waiting, after = runner.run(abandon())
    assert first == live["sse"][0]
    # The sleep's own turns (and one spare): not one a millisecond, as the door's polling took.
    assert waiting <= 3, waiting
    assert after <= 3, after


def test_a_client_slower_than_its_read_timeout_between_reads_gets_the_rest(
    recorded: tuple[Path, str, dict[str, Any]], cassette: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `sock_read` times the server, not the client: live, the rest of the stream arrives (and its
    # end stops the timer) while the client dwells on the first chunk. In replay the door holds
    # the rest until the client reads on, so that is not the server's silence either.
    _, base, live = recorded

    async def dwell() -> list[bytes]:
        timeout = aiohttp.ClientTimeout(sock_read=0.2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(base + SSE, json={"stream": True}) as response:
                chunks = [await response.content.readany()]
                await asyncio.sleep(0.4)
                return chunks + await _chunks(response)

    forbid_sockets(monkeypatch)
    for pace in ("instant", "recorded"):
        with llmcassette.use_cassette(cassette, pace=pace):
            assert asyncio.run(dwell()) == live["sse"], pace


async def _readchunk(response: aiohttp.ClientResponse) -> bytes:
    parts = []
    while True:
        data, _ = await response.content.readchunk()
        if not data:
            return b"".join(parts)
        parts.append(data)


async def _nowait_then_any(response: aiohttp.ClientResponse) -> bytes:
    parts = []
    while True:
        parts.append(response.content.read_nowait())
        data = await response.content.readany()
        if not data:
            return b"".join(parts)
        parts.append(data)


def test_fifty_streams_at_once_on_one_session_each_read_its_own_way(
    recorded: tuple[Path, str, dict[str, Any]], cassette: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, base, live = recorded
    forbid_sockets(monkeypatch)
    styles = [_iter_chunked, _readline, _read_n, _read, _readchunk, _nowait_then_any]

    async def many() -> list[bytes]:
        async with aiohttp.ClientSession() as session:

            async def one(read: Read) -> bytes:
                async with session.post(base + SSE, json={"stream": True}) as response:
                    return await read(response)  # type: ignore[no-any-return]

            return await asyncio.gather(*(one(styles[i % len(styles)]) for i in range(50)))

    with llmcassette.use_cassette(cassette, allow_playback_repeats=True) as replay:
        assert asyncio.run(asyncio.wait_for(many(), timeout=20)) == [b"".join(live["sse"])] * 50
    assert [a.interaction for a in replay.attempts] == [0] * 50


@pytest.mark.parametrize("pace", ["instant", "recorded"])
@pytest.mark.parametrize("leave", ["cancel", "release", "close"])
def test_a_stream_left_part_way_leaves_the_session_usable(
    recorded: tuple[Path, str, dict[str, Any]],
    cassette: Path,
    monkeypatch: pytest.MonkeyPatch,
    leave: str,
    pace: str,
) -> None:
    _, base, live = recorded
    forbid_sockets(monkeypatch)

    async def left() -> tuple[bytes, Any]:
        async with aiohttp.ClientSession() as session:
            response = await session.post(base + SSE, json={"stream": True})
            first = await response.content.readany()
            if leave == "cancel":
                reading = asyncio.ensure_future(response.content.read())
                await asyncio.sleep(0)
                reading.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await reading
                response.close()
            elif leave == "release":
                response.release()
            else:
                response.close()
            async with session.post(base + "/json", json={"a": 1}) as again:
                return first, await again.json()

    with llmcassette.use_cassette(cassette, pace=pace):
        first, answer = asyncio.run(asyncio.wait_for(left(), timeout=5))
    assert first == live["sse"][0] and answer == live["json"]


@pytest.mark.parametrize("pace", ["instant", "recorded"])
def test_a_stream_read_on_after_its_cassette_exited_ends_without_a_hang(
    recorded: tuple[Path, str, dict[str, Any]], cassette: Path, monkeypatch: pytest.MonkeyPatch, pace: str
) -> None:
    _, base, live = recorded
    forbid_sockets(monkeypatch)

    async def outlive() -> bytes:
        async with aiohttp.ClientSession() as session:
            with llmcassette.use_cassette(cassette, pace=pace):
                response = await session.post(base + SSE, json={"stream": True})
                first = await response.content.readany()
            async with response:
                rest = await response.content.read()
            return first + rest

    assert asyncio.run(asyncio.wait_for(outlive(), timeout=5)) == b"".join(live["sse"])


def test_a_total_timeout_longer_than_the_replay_does_not_fire(
    recorded: tuple[Path, str, dict[str, Any]], cassette: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, base, live = recorded
    forbid_sockets(monkeypatch)

    async def timed() -> dict[str, Any]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            async with session.post(base + SSE, json={"stream": True}) as response:
                sse = await _chunks(response)
            async with session.post(base + "/json", json={"a": 1}) as response:
                answer = await response.json()
            async with session.post(base + NDJSON, json={}) as response:
                lines = [line async for line in response.content]
        return {"sse": sse, "json": answer, "ndjson": lines}

    for pace in ("instant", "recorded"):
        with llmcassette.use_cassette(cassette, pace=pace):
            assert asyncio.run(timed()) == live, pace


@pytest.mark.parametrize("decode_compressed", [True, False])
@pytest.mark.parametrize("decompress", [True, False])
def test_a_gzip_encoded_answer_is_replayed_as_aiohttp_decodes_it_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decompress: bool, decode_compressed: bool
) -> None:
    # Stored decoded (decode_compressed, the default), the client gets the text it read live,
    # without the encoding header; stored as sent, exactly what it got live.
    path = tmp_path / "gzip.yaml"

    async def fetch(base: str) -> tuple[bytes, str | None]:
        async with aiohttp.ClientSession(auto_decompress=decompress) as session:
            async with session.get(base + "/gzip") as response:
                return await response.read(), response.headers.get("Content-Encoding")

    with serve(stream_app()) as base:
        with llmcassette.use_cassette(path, record_mode="once", decode_compressed=decode_compressed):
            asyncio.run(fetch(base))
            live = asyncio.run(fetch(base))
        forbid_sockets(monkeypatch)
        with llmcassette.use_cassette(path, allow_playback_repeats=True):
            replayed = asyncio.run(fetch(base))
    if decode_compressed:
        assert replayed[0] == (live[0] if decompress else gzip.decompress(live[0]))
    else:
        assert replayed == live


def test_a_total_timeout_shorter_than_the_recorded_pace_fires_as_live(
    recorded: tuple[Path, str, dict[str, Any]], cassette: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, base, _ = recorded
    forbid_sockets(monkeypatch)

    async def timed() -> list[bytes]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.03)) as session:
            async with session.post(base + SSE, json={"stream": True}) as response:
                return await _chunks(response)

    with llmcassette.use_cassette(cassette, pace="recorded"):
        with pytest.raises(asyncio.TimeoutError):
            asyncio.run(asyncio.wait_for(timed(), timeout=5))


async def _timed_out(call: Callable[[], Awaitable[Any]]) -> type[BaseException]:
    try:
        await asyncio.wait_for(call(), timeout=10)
    except Exception as exc:
        return type(exc)
    raise AssertionError("the call did not time out")


@pytest.mark.parametrize(
    ("fault", "live_path"),
    [
        pytest.param("stall:after=2", "/sse?n=4&gap_ms=1500", id="stall-mid-body"),
        pytest.param("read_timeout", "/slow-head?delay_ms=1500", id="read-timeout-before-head"),
    ],
)
def test_a_session_timed_by_total_alone_times_out_as_live(
    recorded: tuple[Path, str, dict[str, Any]],
    cassette: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    live_path: str,
) -> None:
    # aiohttp's own default (`total` 300 s, no `sock_read`): a silent server ends the call with
    # its total timer's asyncio.TimeoutError, not the SocketTimeoutError of a `sock_read` timer,
    # which is a ClientError (a retry on ClientError caught it in replay and never live).
    base = recorded[1]
    timeout = aiohttp.ClientTimeout(total=0.5)
    with serve(stream_app()) as live_base:
        live = asyncio.run(
            _timed_out(lambda: _read_all(live_base + live_path, timeout))  # type: ignore[arg-type]
        )
    forbid_sockets(monkeypatch)
    with VirtualClock(), llmcassette.use_cassette(cassette, faults=[fault]):
        replayed = asyncio.run(_timed_out(_one(base, SSE, timeout=timeout)))
    assert live is asyncio.TimeoutError
    assert replayed is live
    # A `sock_read` shorter than the total is what times out, as before.
    both = aiohttp.ClientTimeout(total=60, sock_read=5)
    with VirtualClock(), llmcassette.use_cassette(cassette, faults=[fault]):
        assert asyncio.run(_timed_out(_one(base, SSE, timeout=both))) is SOCKET_TIMEOUT


@pytest.mark.parametrize(
    ("timeout", "raised"),
    [
        (aiohttp.ClientTimeout(total=0.2), asyncio.TimeoutError),  # aiohttp's default session's kind
        (aiohttp.ClientTimeout(total=5, sock_connect=0.2), CONNECT_TIMEOUT),
        (aiohttp.ClientTimeout(connect=0.2), CONNECT_TIMEOUT),
    ],
)
def test_a_connect_timeout_ends_the_call_with_the_timer_that_comes_due_first_as_live(
    recorded: tuple[Path, str, dict[str, Any]],
    cassette: Path,
    monkeypatch: pytest.MonkeyPatch,
    timeout: aiohttp.ClientTimeout,
    raised: type[BaseException],
) -> None:
    # A session timed by `total` alone got ConnectionTimeoutError, a ClientError, where its total
    # timer ends the call live with asyncio.TimeoutError; and at once, not after the timer.
    with unanswered_url() as url:
        live = asyncio.run(_timed_out(lambda: _read_all(url, timeout)))  # type: ignore[arg-type]
    forbid_sockets(monkeypatch)
    with VirtualClock() as clock, llmcassette.use_cassette(cassette, faults=["connect_timeout"]):
        replayed = asyncio.run(_timed_out(_one(recorded[1], SSE, timeout=timeout)))
    assert live is raised
    assert replayed is live
    assert clock.elapsed_s == pytest.approx(0.2)


async def _read_all(url: str, timeout: aiohttp.ClientTimeout) -> bytes:
    async with aiohttp.ClientSession(timeout=timeout) as client:
        async with client.get(url) as response:
            return await response.read()


def test_a_connection_pooled_before_the_cassette_is_not_used_under_it(tmp_path: Path) -> None:
    # A session made (and used) before the cassette, as a fixture's is: its keep-alive
    # connection to the upstream sat in the connector's pool, and the request made under the
    # cassette went out on it to the upstream, neither replayed nor logged, in record mode 'none'.
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    seen: list[str] = []

    async def hello(request: Request) -> JSONResponse:  # keeps the connection alive
        seen.append(request.url.query)
        return JSONResponse({"query": request.url.query, "call": len(seen)})

    async def get(client: aiohttp.ClientSession, url: str) -> Any:
        async with client.get(url) as response:
            return await response.json()

    async def session_across_the_cassette(base: str) -> tuple[Any, list[Any]]:
        async with aiohttp.ClientSession() as client:
            await get(client, base + "/hello?at=before")  # its connection stays in the pool
            with llmcassette.use_cassette(path) as replay:
                answered = await get(client, base + "/hello?at=in")
            await get(client, base + "/hello?at=after")  # the upstream again
        return answered, replay.attempts

    async def record(base: str) -> Any:
        async with aiohttp.ClientSession() as client:
            return await get(client, base + "/hello?at=in")

    path = tmp_path / "pooled.yaml"
    with serve(Starlette(routes=[Route("/hello", hello)])) as base:
        with llmcassette.use_cassette(path, record_mode="once"):
            recorded_answer = asyncio.run(record(base))
        answered, attempts = asyncio.run(session_across_the_cassette(base))
    assert answered == recorded_answer
    assert [attempt.interaction for attempt in attempts] == [0]
    assert seen == ["at=in", "at=before", "at=after"]


def test_a_vcrpy_recording_of_a_json_request_replays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # vcrpy's aiohttp stub stores what was given as `json=` as the request body itself, a mapping:
    # the whole cassette was refused ("field `request.body`: Input should be a valid string").
    path = tmp_path / "vcrpy.yaml"
    path.write_text(
        "interactions:\n"
        "- request:\n"
        "    body:\n"
        "      model: m\n"
        "      messages: [{role: user, content: caf\u00e9}]\n"
        "    headers: {}\n"
        "    method: POST\n"
        "    uri: http://127.0.0.1:9/v1/chat\n"
        "  response:\n"
        "    body: {string: '{\"ok\": true}'}\n"
        "    headers: {Content-Type: [application/json]}\n"
        "    status: {code: 200, message: OK}\n"
        "    url: http://127.0.0.1:9/v1/chat\n"
        "version: 1\n",
        encoding="utf-8",
    )

    async def call() -> Any:
        async with aiohttp.ClientSession() as client:
            body = {"model": "m", "messages": [{"role": "user", "content": "caf\u00e9"}]}
            async with client.post("http://127.0.0.1:9/v1/chat", json=body) as response:
                return await response.json()

    forbid_sockets(monkeypatch)
    with llmcassette.use_cassette(path) as replay:
        assert asyncio.run(call()) == {"ok": True}
    assert [attempt.interaction for attempt in replay.attempts] == [0]
