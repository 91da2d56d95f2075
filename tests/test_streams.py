"""
Streaming fidelity: chunk boundaries, pass-through while recording, pacing, and streams that end
badly (upstream failure, client closing early). Unit tests of the stream classes first, then the
same properties end to end against a real local server, for httpx and httpx2, sync and async.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from hypothesis import example, given, settings, strategies as st
from starlette.applications import Starlette

import llmcassette
from llmcassette._flavors import get_flavor
from llmcassette._streams import Pacer, PlainReplayStream, RecordingStream, ReplayStream, stream_class
from tests.arbitrary import STREAM_BODIES, STREAMS
from tests.servers import Client, PlannedUpstream, hang_up_server, ndjson_lines, serve, sse_events, stream_app


@pytest.fixture(scope="module")
def app() -> Starlette:
    return stream_app()


@pytest.fixture(scope="module")
def upstream(app: Starlette) -> Iterator[str]:
    with serve(app) as base:
        yield base


# -- unit: replay and pacing ------------------------------------------------------------------------


async def _timed(stream: Any, is_async: bool) -> tuple[list[bytes], list[float]]:
    """The chunks a stream yields and when, in seconds after the call."""
    start = time.monotonic()
    chunks: list[bytes] = []
    times: list[float] = []
    if is_async:
        async for chunk in stream:
            chunks.append(chunk)
            times.append(time.monotonic() - start)
    else:
        for chunk in stream:
            chunks.append(chunk)
            times.append(time.monotonic() - start)
    return chunks, times


@pytest.mark.anyio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("speed", [1.0, 2.0])
async def test_replay_stream_yields_chunks_at_their_offsets(is_async: bool, speed: float) -> None:
    stream = ReplayStream(
        [b"a", b"", b"bc", b"d"],
        offsets_ms=[10.0, 20.0, 60.0, 60.0],
        pacer=Pacer(speed, time.monotonic()),
    )
    chunks, times = await _timed(stream, is_async)
    assert chunks == [b"a", b"bc", b"d"]  # an empty chunk is never handed to the client
    assert stream.delivered() == [b"a", b"", b"bc", b"d"]
    for arrived, offset_ms in zip(times, [10.0, 60.0, 60.0], strict=True):
        target = offset_ms / 1000 / speed
        assert target - 0.05 <= arrived <= target + 0.25, (arrived, target)


@pytest.mark.anyio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_replay_stream_ignores_offsets_without_pacer(is_async: bool) -> None:
    stream = ReplayStream([b"a", b"b"], offsets_ms=[500.0, 900.0])
    chunks, times = await _timed(stream, is_async)
    assert chunks == [b"a", b"b"]
    assert times[-1] < 0.4  # (offsets of 0.5 s and 0.9 s, ignored)


@pytest.mark.anyio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_pacer_does_not_wait_for_moments_already_past(is_async: bool) -> None:
    # The request started 100 ms ago: chunks due before now come at once, later ones on time.
    pacer = Pacer(1.0, time.monotonic() - 0.1)
    stream = ReplayStream([b"late", b"later", b"due"], offsets_ms=[20.0, 90.0, 140.0], pacer=pacer)
    chunks, times = await _timed(stream, is_async)
    assert chunks == [b"late", b"later", b"due"]
    assert times[1] < 0.06  # (0.09 s if the pacer ignored the 0.1 s already past)
    assert 0.038 <= times[2] <= 0.12


@pytest.mark.anyio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_replay_stream_raises_recorded_error_after_chunks(is_async: bool) -> None:
    stream = ReplayStream([b"one", b"two"], error=lambda is_async: httpx2.RemoteProtocolError("cut"))
    with pytest.raises(httpx2.RemoteProtocolError, match="cut"):
        if is_async:
            async for chunk in stream:
                assert chunk
        else:
            for chunk in stream:
                assert chunk
    assert stream.delivered() == [b"one", b"two"]


def test_replay_stream_logs_what_was_handed_over_while_and_after_it_is_read() -> None:
    # The lean loop (no waits) counts nothing per chunk: what it handed over is read off its
    # iterator, during the read, after the client stops early, and on a second read.
    stream = ReplayStream([b"a", b"b", b"c", b"d"])
    reader = iter(stream)
    assert stream.delivered() == []
    assert next(reader) == b"a"
    assert stream.delivered() == [b"a"]
    assert next(reader) == b"b"
    reader.close()  # the client closes the response after two chunks
    assert stream.delivered() == [b"a", b"b"]
    assert list(stream) == [b"c", b"d"]  # a second read carries on where the first stopped
    assert stream.delivered() == [b"a", b"b", b"c", b"d"]
    assert list(stream) == []
    assert stream.delivered() == [b"a", b"b", b"c", b"d"]


@pytest.mark.parametrize("read", ["whole", "stopped early", "taken at once"])
def test_a_plain_replay_stream_plays_and_logs_as_one_made_by_the_constructor(read: str) -> None:
    # `plain` sets only the chunks and leaves every other attribute to the class's defaults:
    # each way of reading it must hand over, log and end as the constructor's stream does.
    chunks = (b"a", b"b", b"c")
    for plain in (ReplayStream.plain(chunks), PlainReplayStream.plain(chunks)):
        _read_and_compare(read, chunks, [plain, ReplayStream(chunks)])


def _read_and_compare(read: str, chunks: tuple[bytes, ...], streams: list[ReplayStream]) -> None:
    for stream in streams:
        assert stream.instant
        if read == "whole":
            assert list(stream) == [b"a", b"b", b"c"]
        elif read == "stopped early":
            reader = iter(stream)
            assert next(reader) == b"a"
            reader.close()
        else:
            assert stream.take_all() == chunks
    plain, made = streams
    assert plain.delivered() == made.delivered()
    assert list(plain) == list(made)  # a second read carries on where the first stopped
    assert plain.delivered() == made.delivered() == [b"a", b"b", b"c"]
    assert list(plain) == list(made) == []
    # Nothing a plain stream played is kept on the class it defaults to.
    for kind in (ReplayStream, PlainReplayStream):
        assert kind._handed == () and kind._next == 0 and kind._running is None


def _kinds(chunks: tuple[bytes, ...]) -> list[ReplayStream]:
    return [ReplayStream(chunks), ReplayStream.plain(chunks), PlainReplayStream.plain(chunks)]


@pytest.mark.parametrize("kind", range(3), ids=["constructed", "plain", "plain class"])
def test_every_later_reader_finds_the_stream_where_a_read_left_it(kind: int) -> None:
    # A plain stream's first read notes what it handed over without counting it off its
    # iterator (see `PlainReplayStream`): the attempt log, a second read, a door taking the rest
    # at once and an async read must each find the stream as the constructor's would be.
    stream = _kinds((b"a", b"b", b"c"))[kind]
    assert list(stream) == [b"a", b"b", b"c"]
    assert stream.delivered() == [b"a", b"b", b"c"]
    assert stream.take_all() == ()  # nothing left to take, and nothing handed over twice
    assert stream.delivered() == [b"a", b"b", b"c"]

    async def read_async() -> list[bytes]:
        return [chunk async for chunk in stream]

    stream = _kinds((b"a", b"b", b"c"))[kind]
    reader = iter(stream)
    assert next(reader) == b"a"
    assert stream.take_all() is None  # a read is under way: nothing is taken from under it
    assert next(reader) == b"b"
    reader.close()
    assert stream.take_all() == (b"c",)
    assert stream.delivered() == [b"a", b"b", b"c"]
    assert list(stream) == [] and asyncio.run(read_async()) == []

    stream = _kinds((b"a", b"b", b"c"))[kind]
    assert list(stream) == [b"a", b"b", b"c"]
    assert asyncio.run(read_async()) == []
    assert stream.delivered() == [b"a", b"b", b"c"]


@pytest.mark.parametrize("kind", range(3), ids=["constructed", "plain", "plain class"])
def test_a_read_an_error_is_thrown_into_notes_what_went_before_it(kind: int) -> None:
    stream = _kinds((b"a", b"b", b"c"))[kind]
    reader = iter(stream)
    assert next(reader) == b"a"
    with pytest.raises(RuntimeError, match="client gave up"):
        reader.throw(RuntimeError("client gave up"))
    assert stream.delivered() == [b"a"]
    assert list(stream) == [b"b", b"c"]
    assert stream.delivered() == [b"a", b"b", b"c"]


def test_a_read_under_way_is_seen_as_far_as_it_went_from_another_thread() -> None:
    stream = PlainReplayStream.plain((b"a", b"b", b"c"))
    reader = iter(stream)
    assert next(reader) == b"a"
    seen: list[list[bytes]] = []
    looker = threading.Thread(target=lambda: seen.append(stream.delivered()))
    looker.start()
    looker.join()
    assert seen == [[b"a"]]
    assert list(reader) == [b"b", b"c"]
    looker = threading.Thread(target=lambda: seen.append(stream.delivered()))
    looker.start()
    looker.join()
    assert seen == [[b"a"], [b"a", b"b", b"c"]]


def test_replay_stream_without_waits_logs_empty_chunks_it_does_not_hand_over() -> None:
    stream = ReplayStream([b"a", b"", b"b"])
    assert list(stream) == [b"a", b"b"]
    assert stream.delivered() == [b"a", b"", b"b"]


class Sink:
    """Records what a RecordingStream reports."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.finishes: list[dict[str, Any]] = []

    def chunk(self, data: bytes) -> None:
        self.chunks.append(data)

    def finish(self, *, error: BaseException | None = None, closed: bool = False) -> None:
        self.finishes.append({"error": error, "closed": closed})


class Inner:
    """A live stream stand-in: yields its chunks, then optionally fails; remembers being closed."""

    def __init__(self, chunks: list[bytes], fail: Exception | None = None) -> None:
        self.chunks = chunks
        self.fail = fail
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.fail is not None:
            raise self.fail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.fail is not None:
            raise self.fail

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


async def _consume(stream: RecordingStream, is_async: bool, stop_after: int | None = None) -> list[bytes]:
    got: list[bytes] = []
    if is_async:
        iterator = stream.__aiter__()
        async for chunk in iterator:
            got.append(chunk)
            if stop_after is not None and len(got) == stop_after:
                break
        await iterator.aclose()  # type: ignore[attr-defined]
    else:
        sync_iterator = iter(stream)
        for chunk in sync_iterator:
            got.append(chunk)
            if stop_after is not None and len(got) == stop_after:
                break
        sync_iterator.close()  # type: ignore[attr-defined]
    return got


@pytest.mark.anyio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_recording_stream_passes_chunks_and_reports_completion(is_async: bool) -> None:
    sink = Sink()
    got = await _consume(RecordingStream(Inner([b"a", b"bb"]), sink), is_async)
    assert got == sink.chunks == [b"a", b"bb"]
    assert sink.finishes == [{"error": None, "closed": False}]


@pytest.mark.anyio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_recording_stream_reports_upstream_error_and_reraises(is_async: bool) -> None:
    sink = Sink()
    failure = httpx.ReadError("gone")
    with pytest.raises(httpx.ReadError) as info:
        await _consume(RecordingStream(Inner([b"a"], fail=failure), sink), is_async)
    assert info.value is failure
    assert sink.chunks == [b"a"]
    assert sink.finishes == [{"error": failure, "closed": False}]


@pytest.mark.anyio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_recording_stream_reports_early_close(is_async: bool) -> None:
    sink = Sink()
    inner = Inner([b"a", b"b", b"c"])
    stream = RecordingStream(inner, sink)
    got = await _consume(stream, is_async, stop_after=1)
    if is_async:
        await stream.aclose()
    else:
        stream.close()
    assert got == sink.chunks == [b"a"]
    assert inner.closed
    assert sink.finishes[0] == {"error": None, "closed": True}


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
def test_stream_classes_belong_to_the_library(library: str) -> None:
    flavor = get_flavor(library)
    assert flavor is not None
    replay = stream_class(ReplayStream, flavor)([b"x"])
    assert isinstance(replay, flavor.module.SyncByteStream)
    assert isinstance(replay, flavor.module.AsyncByteStream)
    other = httpx2 if library == "httpx" else httpx
    assert not isinstance(replay, other.SyncByteStream)
    assert stream_class(ReplayStream, flavor) is stream_class(ReplayStream, flavor)


# -- end to end: boundaries ---------------------------------------------------------------------------


def expected_pieces(kind: str, n: int, split: str | None) -> list[bytes]:
    """What the upstream sends, piece by piece (mirrors the server's `split` parameter)."""
    events = sse_events(n) if kind == "sse" else ndjson_lines(n)
    if split == "pairs":
        return [b"".join(events[i : i + 2]) for i in range(0, len(events), 2)]
    if split is not None:
        body, size = b"".join(events), int(split)
        return [body[i : i + size] for i in range(0, len(body), size)]
    return events


def load(path: Path) -> llmcassette.CassetteDocument:
    return llmcassette.load_cassette(path)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sse", "ndjson"])
@pytest.mark.parametrize(
    "split", [None, "pairs", "100", "100000"], ids=["events", "pairs", "100-bytes", "one-chunk"]
)
async def test_replay_reproduces_live_bytes_and_boundaries(
    client: Client, upstream: str, tmp_path: Path, kind: str, split: str | None
) -> None:
    path = tmp_path / "stream.yaml"
    url = f"{upstream}/{kind}?n=3&gap_ms=30" + (f"&split={split}" if split else "")
    with llmcassette.use_cassette(path, record_mode="once") as cassette:
        live = await client.stream("POST", url, json={"stream": True})
    # The upstream's pieces, sent with gaps, reach the client one chunk each.
    assert live.chunks == expected_pieces(kind, 3, split)
    assert live.error is None
    assert cassette.attempts[0].recorded and cassette.attempts[0].chunks == live.chunks

    stored = load(path).interactions[0].response
    assert stored.stream is not None
    assert stored.stream.chunks == [len(c) for c in live.chunks]
    assert stored.stream.end is llmcassette.StreamEnd.COMPLETE
    assert stored.content == live.body

    with llmcassette.use_cassette(path) as cassette:
        replayed = await client.stream("POST", url, json={"stream": True})
    assert replayed.chunks == live.chunks
    assert replayed.status == live.status == 200
    assert replayed.header("content-type") == live.header("content-type")
    assert cassette.attempts[0].interaction == 0 and not cassette.attempts[0].recorded
    assert cassette.attempts[0].chunks == live.chunks


@pytest.mark.anyio
@pytest.mark.parametrize("path_query", ["/json", "/sse?n=3&gap_ms=5"], ids=["json", "sse"])
async def test_non_streaming_requests_replay_the_same_response(
    client: Client, upstream: str, tmp_path: Path, path_query: str
) -> None:
    path = tmp_path / "plain.yaml"
    payload = {"model": "m", "messages": [{"role": "user", "content": "héllo"}]}
    with llmcassette.use_cassette(path, record_mode="once") as recording:
        live = await client.send("POST", upstream + path_query, json=payload)
    with llmcassette.use_cassette(path) as replaying:
        replayed = await client.send("POST", upstream + path_query, json=payload)
    assert replayed.body == live.body
    assert replayed.status == live.status == 200
    assert replayed.header("content-type") == live.header("content-type")
    assert replaying.attempts[0].chunks == recording.attempts[0].chunks
    if path_query == "/json":
        assert live.body.startswith(b'{"echo":{"model":"m"')


@pytest.fixture(scope="module")
def planned() -> Iterator[tuple[str, PlannedUpstream]]:
    upstream = PlannedUpstream()
    with serve(upstream) as base:
        yield base, upstream


def read_raw(library: str, url: str, body: bytes) -> list[bytes]:
    """The chunks a client of ``library`` reads from ``url``, as its transport hands them over."""
    lib = importlib.import_module(library)
    headers = {"content-type": "application/json"}
    with (
        lib.Client(verify=False) as http,
        http.stream("POST", url, content=body, headers=headers) as response,
    ):
        return list(response.iter_raw())


# The case that was once replayed as [9, 9]: two events read in one chunk of 18 bytes.
@example(
    stream=("text/event-stream", [b"data: a\n\ndata: b\n\n"]),
    body=b"{}",
    library="httpx",
    vcrpy_compatible=False,
)
@example(
    stream=("application/x-ndjson", [b'{"a":1}\n{"b":2}\n']),
    body=b'{"t": "\\ud800"}',
    library="httpx2",
    vcrpy_compatible=True,
)
@settings(max_examples=60, deadline=None)
@given(
    stream=STREAMS,
    body=STREAM_BODIES,
    library=st.sampled_from(["httpx", "httpx2"]),
    vcrpy_compatible=st.booleans(),
)
def test_any_body_in_any_chunking_is_recorded_saved_loaded_and_replayed_exactly(
    planned: tuple[str, PlannedUpstream],
    stream: tuple[str | None, list[bytes]],
    body: bytes,
    library: str,
    vcrpy_compatible: bool,
) -> None:
    # The request carries an arbitrary body too: replay must find the recording by it.
    base, upstream = planned
    content_type, chunks = stream
    url = base + upstream.plan(content_type, chunks)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        with llmcassette.use_cassette(path, record_mode="once", vcrpy_compatible=vcrpy_compatible):
            live = read_raw(library, url, body)
        # Each planned chunk reached the client as one chunk: one chunk stays one chunk.
        assert live == chunks
        (interaction,) = llmcassette.load_cassette(path).interactions
        assert interaction.request.content == body
        stored = interaction.response
        assert stored.content == b"".join(chunks)
        if stored.stream is None:
            assert len(chunks) <= 1  # only a plain body read in one piece has no boundaries
        else:
            assert stored.stream.chunks == [len(chunk) for chunk in chunks]
        with llmcassette.use_cassette(path):
            assert read_raw(library, url, body) == chunks


# -- end to end: pass-through while recording ------------------------------------------------------


@pytest.mark.anyio
async def test_recording_hands_each_chunk_over_as_it_arrives(
    client: Client, app: Starlette, upstream: str, tmp_path: Path
) -> None:
    tag = f"{client}-{time.monotonic_ns()}"
    finished: dict[str, float] = app.state.finished
    server_done_at_first_chunk: list[bool] = []

    def on_chunk(index: int, chunk: bytes) -> None:
        if index == 0:
            server_done_at_first_chunk.append(tag in finished)

    with llmcassette.use_cassette(tmp_path / "live.yaml", record_mode="once") as cassette:
        live = await client.stream("GET", f"{upstream}/sse-probe?tag={tag}&n=4&gap_ms=60", on_chunk=on_chunk)
    # Five events 60 ms apart; a client descheduled for longer than a gap on a loaded machine reads
    # two in one go, so the count is a floor, and the recording must hold what the client read.
    assert len(live.chunks) >= 2
    # The first event reached the client while the server was still sending the others...
    assert server_done_at_first_chunk == [False]
    assert tag in finished
    # ...well before the last one: 4 gaps of 60 ms separate them.
    assert live.times[-1] - live.times[0] >= 0.2
    offsets = cassette.new_interactions[0].response.stream.offsets_ms  # type: ignore[union-attr]
    assert offsets is not None and len(offsets) == len(live.chunks)
    assert offsets == sorted(offsets)
    assert offsets[-1] - offsets[0] >= 200


# -- end to end: pace --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paced_cassette(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[float]]:
    """An SSE stream recorded once with 50 ms between events, and its recorded offsets (seconds)."""
    path = tmp_path_factory.mktemp("pace") / "paced.yaml"
    url = f"{upstream}/sse?n=4&gap_ms=50"
    with llmcassette.use_cassette(path, record_mode="once"), httpx.Client(verify=False) as http:
        with http.stream("GET", url) as response:
            assert len(list(response.iter_raw())) == 5
    stream = load(path).interactions[0].response.stream
    assert stream is not None and stream.offsets_ms is not None
    return path, url, [offset / 1000 for offset in stream.offsets_ms]


@pytest.mark.anyio
async def test_instant_replay_does_not_wait(
    client: Client, paced_cassette: tuple[Path, str, list[float]]
) -> None:
    path, url, offsets = paced_cassette
    # On the virtual clock, which the cassette's own waits advance (a paced replay's would add
    # up to the recorded offsets) rather than on the wall clock, which a loaded machine moves.
    with llmcassette.VirtualClock() as clock, llmcassette.use_cassette(path, pace="instant"):
        replayed = await client.stream("GET", url)
    assert len(replayed.chunks) == 5
    assert clock.elapsed_s == 0


@pytest.mark.anyio
@pytest.mark.parametrize(("pace", "speed"), [("recorded", 1.0), (2.0, 2.0)], ids=["recorded", "2x"])
async def test_paced_replay_follows_recorded_offsets(
    client: Client, paced_cassette: tuple[Path, str, list[float]], pace: str | float, speed: float
) -> None:
    path, url, offsets = paced_cassette
    with llmcassette.use_cassette(path, pace=pace):
        replayed = await client.stream("GET", url)
    assert len(replayed.chunks) == 5
    for arrived, offset in zip(replayed.times, offsets, strict=True):
        target = offset / speed
        # Never early (the clock starts before the request reaches the cassette), and late only
        # by scheduling noise.
        assert target - 0.002 <= arrived <= target + 0.25, (arrived, target)
    if speed > 1:
        assert replayed.times[-1] < 0.8 * offsets[-1]


@pytest.mark.anyio
async def test_paced_replay_waits_for_the_response_head(
    client: Client, upstream: str, tmp_path: Path
) -> None:
    path = tmp_path / "slow.yaml"
    url = f"{upstream}/slow-head?delay_ms=100"
    with llmcassette.use_cassette(path, record_mode="once"):
        live = await client.send("GET", url)
    elapsed_ms = load(path).interactions[0].response.elapsed_ms
    assert elapsed_ms is not None and elapsed_ms >= 100

    with llmcassette.use_cassette(path, pace="recorded"):
        paced = await client.send("GET", url)
    with llmcassette.use_cassette(path):
        instant = await client.send("GET", url)
    assert paced.body == instant.body == live.body
    assert elapsed_ms / 1000 - 0.002 <= paced.times[0] <= elapsed_ms / 1000 + 0.25
    assert instant.times[0] < 0.08  # (the recorded head took at least 0.1 s)


# -- end to end: streams that end badly --------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sse", "ndjson"])
async def test_upstream_failure_mid_stream_is_recorded_and_replayed(
    client: Client, upstream: str, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "broken.yaml"
    url = f"{upstream}/{kind}?n=4&gap_ms=15&fail_after=2"
    with llmcassette.use_cassette(path, record_mode="once") as cassette:
        live = await client.stream("GET", url)
    expected_body = b"".join(expected_pieces(kind, 4, None)[:2])
    # The client got the two pieces, then its own library's error.
    assert live.body == expected_body
    assert type(live.error) is client.lib.RemoteProtocolError
    assert cassette.attempts[0].error is not None
    assert cassette.attempts[0].error.startswith("RemoteProtocolError: ")

    stored = load(path).interactions[0].response
    assert stored.content == expected_body
    assert stored.stream is not None
    assert stored.stream.end is llmcassette.StreamEnd.ERROR
    assert stored.stream.chunks == [len(c) for c in live.chunks]
    assert stored.stream.error is not None
    assert stored.stream.error.type == "RemoteProtocolError"
    assert stored.stream.error.message == str(live.error)
    assert "end: error" in path.read_text()

    with llmcassette.use_cassette(path) as cassette:
        replayed = await client.stream("GET", url)
    assert replayed.chunks == live.chunks
    assert type(replayed.error) is client.lib.RemoteProtocolError
    assert str(replayed.error) == str(live.error)
    assert replayed.error.request.url == url  # the client attached its request, as when live
    assert cassette.attempts[0].error == f"RemoteProtocolError: {live.error}"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["close", "reset"])
async def test_an_upstream_that_hangs_up_before_answering_is_recorded_and_replayed(
    client: Client, tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "hung-up.yaml"
    payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with hang_up_server(mode) as base:
        url = f"{base}/v1/chat/completions"
        with pytest.raises(client.lib.TransportError) as direct:
            await client.send("POST", url, json=payload)
        with llmcassette.use_cassette(path, record_mode="once") as cassette:
            with pytest.raises(client.lib.TransportError) as live:
                await client.send("POST", url, json=payload)
    # Recording changes nothing for the client: the same error, from its own library.
    assert type(live.value) is type(direct.value)
    assert str(live.value) == str(direct.value)
    expected = "RemoteProtocolError" if mode == "close" else "ReadError"
    assert type(live.value).__name__ == expected
    assert cassette.attempts[0].recorded
    assert cassette.attempts[0].status is None
    assert cassette.attempts[0].error == f"{expected}: {live.value}"

    (interaction,) = load(path).interactions
    stored = interaction.response
    assert stored.status is None and stored.failed_before_head
    assert stored.stream is not None and stored.stream.error is not None
    assert stored.stream.end is llmcassette.StreamEnd.ERROR
    assert (stored.stream.error.type, stored.stream.error.message) == (expected, str(live.value))
    assert "status:" not in path.read_text().split("response:")[1]

    # The upstream is gone: the cassette hangs up in its place, the same way.
    with llmcassette.use_cassette(path) as cassette:
        with pytest.raises(client.lib.TransportError) as replayed:
            await client.send("POST", url, json=payload)
    assert type(replayed.value) is type(live.value)
    assert str(replayed.value) == str(live.value)
    assert replayed.value.request.url == url  # the client attached its request, as when live
    assert cassette.attempts[0].interaction == 0 and not cassette.attempts[0].recorded
    assert cassette.attempts[0].error == f"{expected}: {live.value}"


def test_a_connection_never_made_and_a_vcrpy_compatible_file_record_no_hang_up(tmp_path: Path) -> None:
    # A refused connection says nothing about the upstream; vcrpy has no place for a hang-up.
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{refusing.getsockname()[1]}/v1/chat/completions"
        with llmcassette.use_cassette(tmp_path / "refused.yaml", record_mode="once") as cassette:
            with pytest.raises(httpx.ConnectError):
                httpx.post(url, json={})
    assert not cassette.attempts[0].recorded and cassette.interactions == []
    assert not (tmp_path / "refused.yaml").exists()
    with hang_up_server("close") as base:
        path = tmp_path / "vcrpy.yaml"
        with llmcassette.use_cassette(path, record_mode="once", vcrpy_compatible=True) as cassette:
            with pytest.raises(httpx.RemoteProtocolError):
                httpx.post(f"{base}/v1/chat/completions", json={})
    assert cassette.interactions == [] and not path.exists()


@pytest.mark.anyio
async def test_stream_closed_early_by_the_client(client: Client, upstream: str, tmp_path: Path) -> None:
    path = tmp_path / "closed.yaml"
    url = f"{upstream}/sse?n=4&gap_ms=30"
    with llmcassette.use_cassette(path, record_mode="once") as cassette:
        live = await client.stream("GET", url, stop_after=1)
    assert live.chunks == sse_events(4)[:1]
    assert cassette.attempts[0].chunks == live.chunks

    stored = load(path).interactions[0].response
    assert stored.stream is not None
    assert stored.stream.end is llmcassette.StreamEnd.CLOSED
    assert stored.stream.error is None
    assert stored.stream.chunks == [len(live.chunks[0])]
    assert stored.content == live.chunks[0]

    with llmcassette.use_cassette(path):
        replayed = await client.stream("GET", url)
    assert replayed.chunks == live.chunks
    assert replayed.error is None


@pytest.mark.anyio
async def test_stream_left_open_at_exit_is_stored_as_closed(
    client: Client, upstream: str, tmp_path: Path
) -> None:
    # The client takes one chunk and is still holding the response when the cassette exits.
    path = tmp_path / "open.yaml"
    url = f"{upstream}/sse?n=3&gap_ms=30"
    if client.is_async:
        async with client.lib.AsyncClient(verify=False) as http:
            with llmcassette.use_cassette(path, record_mode="once"):
                response = await http.send(http.build_request("GET", url), stream=True)
                first = await response.aiter_raw().__anext__()
            await response.aclose()
    else:
        with client.lib.Client(verify=False) as http:
            with llmcassette.use_cassette(path, record_mode="once"):
                response = http.send(http.build_request("GET", url), stream=True)
                first = next(response.iter_raw())
            response.close()
    stored = load(path).interactions[0].response
    assert stored.stream is not None
    assert stored.stream.end is llmcassette.StreamEnd.CLOSED
    assert stored.content == first == sse_events(3)[0]


def test_a_replay_that_waits_for_nothing_is_taken_whole_and_logged() -> None:
    stream = ReplayStream([b"a", b"b", b"c"])
    assert stream.take_all(most=2) is None  # more than asked for: nothing taken
    taken = stream.take_all()
    assert taken is not None and list(taken) == [b"a", b"b", b"c"]
    assert stream.delivered() == [b"a", b"b", b"c"]
    assert list(stream) == []


@pytest.mark.parametrize(
    "options",
    [
        {"pacer": Pacer(1.0, 0.0), "offsets_ms": [0.0, 0.0]},
        {"delays_ms": [0.0, 5.0]},
        {"end_stall_ms": 5.0},
        {"error": lambda: httpx2.RemoteProtocolError("cut")},
    ],
    ids=["paced", "delayed", "stalls", "fails"],
)
def test_a_replay_that_waits_or_fails_is_not_taken_whole(options: dict[str, Any]) -> None:
    stream = ReplayStream([b"a", b"b"], **options)
    assert stream.take_all() is None
    assert stream.delivered() == []


def test_a_replay_with_an_empty_chunk_is_not_taken_whole() -> None:
    # An empty chunk is never handed over; written framed, it would end the body.
    stream = ReplayStream([b"a", b"", b"b"])
    assert stream.take_all() is None
