"""
The recording proxy, in this process: a Recorder on loopback in front of a local upstream, and
httpx clients that talk to it as any program would.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import example, given, settings, strategies as st

import llmcassette
from llmcassette import StreamEnd, load_cassette
from llmcassette.proxy import PROXY_URL_ENV, CassetteServer, Recorder, RouteTable, parse_route
from tests.arbitrary import STREAM_BODIES, STREAMS
from tests.servers import PlannedUpstream, hang_up_server, serve, sse_events, stream_app
from tests.upstreams import provider_app


@contextlib.contextmanager
def recording(path: Path, routes: RouteTable, **options: Any) -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder(path, routes=routes, **options)
    with recorder as url:
        yield url, recorder


def openai_route(upstream: str) -> RouteTable:
    return RouteTable(routes=[parse_route(f"openai={upstream}")])


def wait_for_recordings(recorder: Recorder, count: int, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while recorder.recorded < count:
        assert time.monotonic() < deadline, f"only {recorder.recorded} of {count} interactions recorded"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def providers() -> Iterator[tuple[str, Any]]:
    """The fake multi-provider upstream, and the app (its `state.requests` logs what it got)."""
    app = provider_app()
    with serve(app) as base:
        yield base, app


CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


def test_a_request_reaches_the_upstream_as_sent_and_is_stored_under_the_upstream_url(
    tmp_path: Path, providers: tuple[str, Any]
) -> None:
    upstream, app = providers
    path = tmp_path / "c.yaml"
    headers = {
        "authorization": "Bearer sk-test-secret-1",
        "x-api-key": "sk-test-secret-2",
        "x-trace": "abc",
        # Per-connection headers, and one that Connection names, stay between client and proxy.
        "connection": "keep-alive, x-hop",
        "x-hop": "1",
    }
    before = len(app.state.requests)
    with recording(path, openai_route(upstream)) as (url, recorder):
        with httpx.Client() as client:
            direct = client.post(f"{upstream}/v1/chat/completions?tag=1", json=CHAT)
            proxied = client.post(f"{url}/openai/v1/chat/completions?tag=1", json=CHAT, headers=headers)
    assert proxied.status_code == 200
    assert proxied.json() == direct.json()
    seen = app.state.requests[before + 1]
    assert (seen.path, seen.query, seen.body) == ("/v1/chat/completions", "tag=1", CHAT)
    # The upstream gets the real key (the proxy only scrubs what it stores), and its own Host.
    assert seen.headers["authorization"] == "Bearer sk-test-secret-1"
    assert seen.headers["x-api-key"] == "sk-test-secret-2"
    assert seen.headers["x-trace"] == "abc"
    assert seen.headers["host"] == upstream.removeprefix("http://")
    assert "x-hop" not in seen.headers
    assert recorder.recorded == 1

    (interaction,) = load_cassette(path).interactions
    assert interaction.request.uri == f"{upstream}/v1/chat/completions?tag=1"
    stored = {name.lower(): values for name, values in interaction.request.headers.items()}
    assert stored["authorization"] == ["Bearer REDACTED"]
    assert stored["x-api-key"] == ["REDACTED"]
    assert b"sk-test" not in path.read_bytes()
    assert interaction.response.parsed_body == direct.json()


def test_a_stream_passes_through_as_it_arrives_and_replays_in_process_chunk_for_chunk(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    app = stream_app()
    with serve(app) as upstream:
        with recording(path, openai_route(upstream)) as (url, _), httpx.Client() as client:
            with client.stream("GET", f"{url}/openai/sse-probe?tag=pass&n=3&gap_ms=50") as response:
                chunks = []
                for chunk in response.iter_raw():
                    if not chunks:
                        # The upstream is still sending: the proxy did not wait for the end.
                        assert "pass" not in app.state.finished
                        first_chunk_at = time.monotonic()
                    chunks.append(chunk)
            assert response.headers["content-type"].startswith("text/event-stream")
            assert time.monotonic() - first_chunk_at > 0.12  # the others came later, as they were sent
    assert b"".join(chunks) == b"".join(sse_events(3))
    assert len(chunks) == 4

    (interaction,) = load_cassette(path).interactions
    stream = interaction.response.stream
    assert stream is not None and stream.offsets_ms is not None
    assert stream.chunks == [len(c) for c in chunks]
    assert stream.end is StreamEnd.COMPLETE
    gaps = [b - a for a, b in zip(stream.offsets_ms, stream.offsets_ms[1:], strict=False)]
    assert all(gap >= 35 for gap in gaps), gaps

    # The upstream is gone: the cassette answers, with the same chunks.
    with llmcassette.use_cassette(path), httpx.Client() as client:
        with client.stream("GET", f"{upstream}/sse-probe?tag=pass&n=3&gap_ms=50") as response:
            assert list(response.iter_raw()) == chunks


def test_a_stream_the_upstream_breaks_is_recorded_marked_and_cut_for_the_client(
    tmp_path: Path, upstream: str, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    received: list[bytes] = []
    with recording(path, openai_route(upstream)) as (url, _), httpx.Client() as client:
        with pytest.raises(httpx.RemoteProtocolError):  # a broken stream, not a clean end
            with client.stream("GET", f"{url}/openai/sse?n=5&gap_ms=5&fail_after=2") as response:
                received.extend(response.iter_raw())
    assert b"".join(received) == b"".join(sse_events(5)[:2])
    # The proxy cut the connection on purpose: the server has no unfinished response to report.
    assert "without completing response" not in capfd.readouterr().err

    (interaction,) = load_cassette(path).interactions
    stream = interaction.response.stream
    assert stream is not None and stream.error is not None
    assert stream.end is StreamEnd.ERROR
    assert stream.error.type == "RemoteProtocolError"
    assert interaction.response.content == b"".join(received)
    # Replay breaks the stream at the same point.
    with llmcassette.use_cassette(path), httpx.Client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            with client.stream("GET", f"{upstream}/sse?n=5&gap_ms=5&fail_after=2") as response:
                assert b"".join(response.iter_raw()) == b"".join(received)


def test_a_stream_the_upstream_resets_is_reset_for_the_client_too(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    first = b"data: a\n\n"
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    partial = head + f"{len(first):x}\r\n".encode() + first + b"\r\n"

    def read(url: str, got_first: threading.Event) -> tuple[list[bytes], BaseException]:
        chunks: list[bytes] = []
        with pytest.raises(httpx.TransportError) as info:
            with httpx.Client() as client, client.stream("GET", url) as response:
                for chunk in response.iter_raw():
                    chunks.append(chunk)
                    got_first.set()  # the upstream resets once the client has the first event
        return chunks, info.value

    direct_first, proxied_first = threading.Event(), threading.Event()
    with hang_up_server("reset", partial=partial, then=direct_first) as upstream:
        direct = read(f"{upstream}/v1/stream", direct_first)
    with hang_up_server("reset", partial=partial, then=proxied_first) as upstream:
        with recording(path, RouteTable(upstream=upstream)) as (url, _):
            proxied = read(f"{url}/v1/stream", proxied_first)
    assert direct[0] == proxied[0] == [first]
    assert type(direct[1]) is type(proxied[1]) is httpx.ReadError
    (interaction,) = load_cassette(path).interactions
    stream = interaction.response.stream
    assert stream is not None and stream.error is not None
    assert (stream.end, stream.error.type) == (StreamEnd.ERROR, "ReadError")
    with CassetteServer([path]) as served:
        replayed = read(f"{served}/v1/stream", threading.Event())
    assert replayed[0] == [first] and type(replayed[1]) is httpx.ReadError


def test_a_client_that_leaves_mid_stream_keeps_what_it_got_and_the_upstream_is_let_go(
    tmp_path: Path, upstream: str
) -> None:
    path = tmp_path / "c.yaml"
    # The whole stream would take 40 * 100 ms.
    with recording(path, openai_route(upstream)) as (url, recorder), httpx.Client() as client:
        start = time.monotonic()
        with client.stream("GET", f"{url}/openai/sse?n=40&gap_ms=100") as response:
            received = []
            for chunk in response.iter_raw():
                received.append(chunk)
                if len(received) == 2:
                    break
        # Leaving the block unread closes the connection; the proxy notices in the silence
        # between two events, without waiting for the upstream's next chunk or its end.
        wait_for_recordings(recorder, 1, timeout_s=3.0)
        assert time.monotonic() - start < 1.5
    (interaction,) = load_cassette(path).interactions
    stream = interaction.response.stream
    assert stream is not None and stream.chunks is not None
    assert stream.end is StreamEnd.CLOSED
    assert 2 <= len(stream.chunks) < 40
    assert interaction.response.content.startswith(b"".join(received))
    assert b"".join(sse_events(40)).startswith(interaction.response.content)


def test_an_unreachable_upstream_gets_a_502_naming_it_and_nothing_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    with socket_that_refuses() as dead:
        with recording(path, RouteTable(upstream=dead)) as (url, recorder):
            response = httpx.post(f"{url}/v1/chat/completions", json=CHAT)
            attempts = list(recorder.cassette.attempts)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "llmcassette_upstream_unreachable"
    # The system's own words for the cause, once, whichever event loop the proxy runs on.
    assert error["message"].startswith(
        f"llmcassette: cannot reach upstream {dead}/v1/chat/completions: ConnectError: Connection refused"
    )
    assert error["message"].count("Connection refused") == 1
    assert [a.error is not None and a.error.startswith("ConnectError") for a in attempts] == [True]
    assert recorder.recorded == 0
    assert not path.exists()


@contextlib.contextmanager
def socket_that_refuses() -> Iterator[str]:
    """A loopback URL where nothing listens (the port stays bound, so nothing else takes it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    ("mode", "error"), [("close", httpx.RemoteProtocolError), ("reset", httpx.ReadError)]
)
def test_an_upstream_that_hangs_up_before_answering_is_recorded_and_the_client_sees_the_hang_up(
    tmp_path: Path, mode: str, error: type[httpx.TransportError]
) -> None:
    path = tmp_path / "c.yaml"
    log: list[str] = []
    with hang_up_server(mode) as dead:
        with pytest.raises(httpx.TransportError) as direct:
            httpx.post(f"{dead}/v1/chat/completions", json=CHAT)
        with recording(path, RouteTable(upstream=dead), log=log.append) as (url, recorder):
            # What the client would see without the proxy: no answer made up in the upstream's place.
            with pytest.raises(httpx.TransportError) as proxied:
                httpx.post(f"{url}/v1/chat/completions", json=CHAT)
            wait_for_recordings(recorder, 1)
    assert type(direct.value) is type(proxied.value) is error
    assert str(proxied.value) == str(direct.value)
    assert any("-> no response, " in line and error.__name__ in line for line in log), log

    (interaction,) = load_cassette(path).interactions
    assert interaction.request.uri == f"{dead}/v1/chat/completions"
    stored = interaction.response
    assert stored.status is None
    assert stored.stream is not None and stored.stream.error is not None
    assert stored.stream.end is StreamEnd.ERROR
    assert stored.stream.error.type == error.__name__

    # Replayed in-process, and through serve, the hang-up comes back the same way.
    with llmcassette.use_cassette(path):
        with pytest.raises(httpx.TransportError) as replayed:
            httpx.post(f"{dead}/v1/chat/completions", json=CHAT)
    assert type(replayed.value) is error
    assert str(replayed.value) == str(direct.value)
    with CassetteServer([path]) as served:
        with pytest.raises(httpx.TransportError) as from_serve:
            httpx.post(f"{served}/v1/chat/completions", json=CHAT)
    assert type(from_serve.value) is error
    assert str(from_serve.value) == str(direct.value)


@pytest.fixture(scope="module")
def planned_recording(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, PlannedUpstream, Recorder]]:
    """A planned upstream and one record session in front of it, shared by a test's examples."""
    upstream = PlannedUpstream()
    path = tmp_path_factory.mktemp("planned") / "c.yaml"
    with serve(upstream) as base, recording(path, RouteTable(upstream=base)) as (url, recorder):
        yield url, upstream, recorder


def read_raw(url: str, body: bytes) -> tuple[list[bytes], str | None]:
    """The chunks read from ``url`` for a POST of ``body``, and the answer's content type."""
    # No CA bundle to load (verify=False): every server here is plain HTTP on loopback.
    headers = {"content-type": "application/json"}
    with httpx.Client(verify=False) as client:
        with client.stream("POST", url, content=body, headers=headers) as response:
            return list(response.iter_raw()), response.headers.get("content-type")


# The case that was once replayed as [9, 9]: two events read in one chunk of 18 bytes.
@example(
    streams=[("text/event-stream", [b"data: a\n\ndata: b\n\n"]), ("text/event-stream", [b"\xff\n\n"])],
    bodies=[b"{}", b'{"t": "\\ud800"}\n'],
)
@settings(max_examples=8, deadline=None)
@given(
    streams=st.lists(STREAMS, min_size=1, max_size=8), bodies=st.lists(STREAM_BODIES, min_size=8, max_size=8)
)
def test_any_body_in_any_chunking_is_recorded_through_record_and_served_exactly(
    planned_recording: tuple[str, PlannedUpstream, Recorder],
    streams: list[tuple[str | None, list[bytes]]],
    bodies: list[bytes],
) -> None:
    # One record session for the test; each example saves it and serves the file it wrote. Each
    # request carries an arbitrary body too: serve must find the recording by it.
    url, upstream, recorder = planned_recording
    paths = [upstream.plan(content_type, chunks) for content_type, chunks in streams]
    for path, body, (_, chunks) in zip(paths, bodies, streams, strict=False):
        # The proxy passes each chunk on as it came: one chunk stays one chunk.
        assert read_raw(url + path, body)[0] == chunks
    recorder.cassette.save()
    stored = {urlsplit(i.request.uri).path: i for i in load_cassette(recorder.cassette.path).interactions}
    for path, body, (_, chunks) in zip(paths, bodies, streams, strict=False):
        assert stored[path].request.content == body
        assert stored[path].response.content == b"".join(chunks)
        record = stored[path].response.stream
        if record is None:
            assert len(chunks) <= 1  # only a plain body read in one piece has no boundaries
        else:
            assert record.chunks == [len(chunk) for chunk in chunks]
    with CassetteServer([recorder.cassette.path]) as served:
        for path, body, (content_type, chunks) in zip(paths, bodies, streams, strict=False):
            assert read_raw(served + path, body) == (chunks, content_type)


def test_a_path_under_no_route_gets_a_404_listing_the_routes(tmp_path: Path, upstream: str) -> None:
    with recording(tmp_path / "c.yaml", openai_route(upstream)) as (url, recorder):
        response = httpx.get(f"{url}/nowhere/v1/models")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "llmcassette_no_route"
    assert error["message"].startswith("llmcassette: no route takes /nowhere/v1/models;")
    assert f"/openai/... -> {upstream}/..." in error["message"]
    assert recorder.cassette.attempts == []


def test_a_compressed_body_reaches_the_client_as_sent_and_is_stored_decoded(
    tmp_path: Path, upstream: str
) -> None:
    path = tmp_path / "c.yaml"
    with recording(path, openai_route(upstream)) as (url, _), httpx.Client() as client:
        with client.stream("GET", f"{upstream}/gzip") as direct:
            direct_bytes = b"".join(direct.iter_raw())
        with client.stream("GET", f"{url}/openai/gzip") as proxied:
            proxied_bytes = b"".join(proxied.iter_raw())
        assert proxied.headers["content-encoding"] == "gzip"
    assert proxied_bytes == direct_bytes
    payload = json.loads(gzip.decompress(direct_bytes))

    (interaction,) = load_cassette(path).interactions
    assert interaction.response.parsed_body == payload
    assert "content-encoding" not in {name.lower() for name in interaction.response.headers}
    with llmcassette.use_cassette(path):
        assert httpx.get(f"{upstream}/gzip").json() == payload


def test_concurrent_streams_are_each_relayed_and_recorded_whole(tmp_path: Path, upstream: str) -> None:
    path = tmp_path / "c.yaml"
    sizes = list(range(1, 21))

    async def one(client: httpx.AsyncClient, url: str, n: int) -> bytes:
        async with client.stream("GET", f"{url}/openai/sse?n={n}&gap_ms=5") as response:
            return b"".join([chunk async for chunk in response.aiter_raw()])

    async def main(url: str) -> list[bytes]:
        async with httpx.AsyncClient(timeout=10) as client:
            return await asyncio.gather(*(one(client, url, n) for n in sizes))

    with recording(path, openai_route(upstream)) as (url, _):
        bodies = asyncio.run(main(url))
    assert bodies == [b"".join(sse_events(n)) for n in sizes]
    stored = {i.request.uri: i.response.content for i in load_cassette(path).interactions}
    assert stored == {f"{upstream}/sse?n={n}&gap_ms=5": b"".join(sse_events(n)) for n in sizes}


def test_new_episodes_replays_what_the_cassette_has_and_records_only_the_rest(
    tmp_path: Path, providers: tuple[str, Any]
) -> None:
    upstream, app = providers
    path = tmp_path / "c.yaml"
    first = {**CHAT, "messages": [{"role": "user", "content": "first"}]}
    second = {**CHAT, "messages": [{"role": "user", "content": "second"}]}
    with recording(path, openai_route(upstream)) as (url, _):
        recorded = httpx.post(f"{url}/openai/v1/chat/completions", json=first).json()
    before = len(app.state.requests)
    with recording(path, openai_route(upstream)) as (url, recorder):
        assert httpx.post(f"{url}/openai/v1/chat/completions", json=first).json() == recorded
        assert httpx.post(f"{url}/openai/v1/chat/completions", json=second).status_code == 200
    # Only the new request reached the upstream; the file holds both.
    assert [r.body for r in app.state.requests[before:]] == [second]
    assert [a.recorded for a in recorder.cassette.attempts] == [False, True]
    assert [i.request.parsed_body for i in load_cassette(path).interactions] == [first, second]


def test_in_once_mode_an_existing_cassette_answers_and_a_miss_gets_a_404(
    tmp_path: Path, providers: tuple[str, Any]
) -> None:
    upstream, app = providers
    path = tmp_path / "c.yaml"
    with recording(path, openai_route(upstream)) as (url, _):
        recorded = httpx.post(f"{url}/openai/v1/chat/completions", json=CHAT).json()
    before = len(app.state.requests)
    other = {**CHAT, "model": "gpt-other"}
    with recording(path, openai_route(upstream), record_mode="once") as (url, recorder):
        assert httpx.post(f"{url}/openai/v1/chat/completions", json=CHAT).json() == recorded
        missed = httpx.post(f"{url}/openai/v1/chat/completions", json=other)
    assert len(app.state.requests) == before  # the file exists: `once` sends nothing upstream
    assert missed.status_code == 404
    error = missed.json()["error"]
    assert error["type"] == "llmcassette_no_match"
    assert error["message"].startswith(
        f"llmcassette: no recorded interaction matches POST {upstream}/v1/chat/completions"
    )
    assert len(recorder.cassette.misses) == 1


def test_without_scrubbing_the_key_is_stored_as_sent(tmp_path: Path, providers: tuple[str, Any]) -> None:
    upstream, _ = providers
    path = tmp_path / "c.yaml"
    with recording(path, openai_route(upstream), scrub=False) as (url, _):
        httpx.post(
            f"{url}/openai/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer sk-test-9"}
        )
    assert b"Bearer sk-test-9" in path.read_bytes()


def test_the_environment_points_every_sdk_at_the_proxy(tmp_path: Path, upstream: str) -> None:
    with recording(tmp_path / "c.yaml", openai_route(upstream)) as (url, recorder):
        env = recorder.environment()
    assert env[PROXY_URL_ENV] == url
    assert env["OPENAI_BASE_URL"] == f"{url}/openai/v1"
    assert env["ANTHROPIC_BASE_URL"] == f"{url}/anthropic"
    assert env["GOOGLE_GEMINI_BASE_URL"] == f"{url}/gemini"
    assert env["OLLAMA_HOST"] == f"{url}/ollama"


def test_stopping_mid_stream_saves_what_was_recorded_and_cuts_the_client(
    tmp_path: Path, upstream: str, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    recorder = Recorder(path, routes=openai_route(upstream), stop_timeout_s=1)
    url = recorder.start()
    received: list[bytes] = []
    errors: list[Exception] = []
    two_chunks = threading.Event()

    def read() -> None:
        try:
            with httpx.stream("GET", f"{url}/openai/sse?n=100&gap_ms=50", timeout=10) as response:
                for chunk in response.iter_raw():
                    received.append(chunk)
                    if len(received) == 2:
                        two_chunks.set()
        except httpx.TransportError as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert two_chunks.wait(timeout=5)
    finally:
        recorder.stop()  # waits a second for the stream, then cuts it
        reader.join(timeout=10)
    assert [type(e) for e in errors] == [httpx.RemoteProtocolError]
    (interaction,) = load_cassette(path).interactions
    stream = interaction.response.stream
    assert stream is not None and stream.end is StreamEnd.CLOSED
    assert interaction.response.content == b"".join(received)
    assert "Traceback" not in capfd.readouterr().err
