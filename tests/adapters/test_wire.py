"""The HTTP/1.1 a door writes: a body written in one piece is byte for byte the one written chunk by chunk."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from hypothesis import given, settings, strategies as st

from llmcassette._adapters._wire import (
    WireReader,
    WireRequest,
    encode_body,
    engine_flavor,
    engine_lines,
    engine_request,
    wire_flavor,
)
from llmcassette._attempts import Attempt
from llmcassette._exchange import Playback
from llmcassette._playback import respond

CHUNKS = st.lists(st.binary(min_size=1, max_size=40), max_size=12)


def _chunk_by_chunk(chunks: list[bytes], *, chunked: bool, length: int | None) -> bytes:
    reader = WireReader(b"", iter(chunks), chunked=chunked, broken=lambda exc: exc, length=length)
    return io.BufferedReader(reader).read()


@given(chunks=CHUNKS, chunked=st.booleans())
def test_a_body_in_one_piece_is_the_body_chunk_by_chunk(chunks: list[bytes], chunked: bool) -> None:
    whole = encode_body(chunks, chunked=chunked, length=None)
    assert whole == _chunk_by_chunk(chunks, chunked=chunked, length=None)


@given(chunks=CHUNKS, data=st.data())
def test_a_body_framed_by_its_length_stops_at_the_chunk_that_completes_it(
    chunks: list[bytes], data: st.DataObject
) -> None:
    length = data.draw(st.integers(min_value=0, max_value=sum(map(len, chunks)) + 5))
    assert encode_body(chunks, chunked=False, length=length) == _chunk_by_chunk(
        chunks, chunked=False, length=length
    )


@pytest.mark.parametrize("chunked", [True, False])
def test_no_chunks(chunked: bool) -> None:
    assert encode_body([], chunked=chunked, length=None) == (b"0\r\n\r\n" if chunked else b"")


HOST = (b"Host", b"api.test:8080")
SIZED = (b"Content-Length", b"2")


@pytest.mark.parametrize(
    ("method", "url", "headers", "body"),
    [
        ("GET", "http://api.test:8080/v1/models?q=a b", [HOST, (b"Accept", b"*/*")], b""),
        ("POST", "http://api.test:8080/v1/chat", [HOST, SIZED, (b"X-Key", b"s")], b"{}"),
        ("POST", "http://api.test:8080/v1/chat", [HOST, (b"Transfer-Encoding", b"chunked")], b"{}"),
        ("POST", "http://api.test:8080/v1/chat", [HOST], b""),
        ("POST", "http://api.test:8080/v1/chat", [HOST], b"{}"),
        ("GET", "http://api.test:8080/", [(b"Accept", b"*/*")], b""),
        ("PUT", "https://api.test/%7Euser/ü", [(b"host", b"api.test"), (b"content-length", b"0")], b""),
    ],
)
def test_the_engine_sees_a_wire_request_as_it_would_see_httpxs(
    method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    # A request read off the wire is handed to the engine without building an httpx.Request
    # where that would change nothing the engine reads: method, URL and headers as sent.
    expected = httpx.Request(method, url, headers=headers, content=body)
    seen = engine_request(method, url, headers, body)
    assert (seen.method, str(seen.url), list(seen.headers.raw)) == (
        expected.method,
        str(expected.url),
        list(expected.headers.raw),
    )


def test_a_request_as_clients_write_it_needs_no_httpx_request() -> None:
    get = engine_request("GET", "http://api.test:8080/v1/models", [HOST, (b"Accept", b"*/*")], b"")
    post = engine_request("POST", "http://api.test:8080/v1/chat", [HOST, SIZED], b"{}")
    assert isinstance(get, WireRequest) and isinstance(post, WireRequest)
    # Without a Host header, httpx adds one: then the engine gets httpx's request.
    assert isinstance(engine_request("GET", "http://api.test/", [], b""), httpx.Request)


@given(
    pairs=st.lists(
        st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=12)).filter(
            lambda pair: "\r" not in pair[0] + pair[1] and "\n" not in pair[0] + pair[1]
        ),
        max_size=6,
    ),
    status=st.sampled_from([200, 201, 204, 299, 404, 418, 529]),
)
@settings(deadline=None)
def test_the_wire_flavor_plays_the_head_httpxs_plays(pairs: list[tuple[str, str]], status: int) -> None:
    # The same playback answered in both flavors: the head a door writes of each is the same.
    def lines(flavor: Any) -> Any:
        playback = Playback.recorded(status, tuple(pairs), (b"body",))
        attempt = Attempt(index=0, method="GET", url="http://h/", time_s=0.0)
        try:
            response = respond(
                flavor, playback, attempt=attempt, offsets_ms=None, pacer=None, read_timeout_s=None
            )
        except Exception as exc:  # httpx refuses a name it cannot take: so must the wire flavor
            return type(exc)
        return engine_lines(response, method="GET"), list(response.stream)

    assert lines(wire_flavor()) == lines(engine_flavor())


def _head_length(client: str, url: str) -> str | None:
    # What each client tells of a HEAD answer's Content-Length (the size a GET would get).
    import asyncio
    import http.client
    import urllib.parse
    import urllib.request

    import aiohttp
    import requests
    import urllib3

    if client == "requests":
        return requests.head(url).headers.get("content-length")
    if client == "urllib3":
        return urllib3.PoolManager().request("HEAD", url).headers.get("content-length")  # type: ignore[no-any-return]
    if client == "urllib.request":
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD")) as response:
            return response.headers.get("content-length")  # type: ignore[no-any-return]
    if client == "http.client":
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
        connection.request("HEAD", parts.path)
        try:
            return connection.getresponse().getheader("content-length")
        finally:
            connection.close()

    async def head() -> str | None:
        async with aiohttp.ClientSession() as session:
            async with session.head(url) as response:
                return response.headers.get("content-length")

    return asyncio.run(head())


@pytest.mark.parametrize("client", ["requests", "urllib3", "urllib.request", "http.client", "aiohttp"])
def test_a_head_answer_keeps_its_content_length(tmp_path: Any, client: str) -> None:
    # A HEAD answer's Content-Length frames nothing: it tells the size of what a GET gets (a
    # download's size). The wire writer dropped it with the other framing headers, recording
    # (what the client got live) and replaying alike.
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    import llmcassette
    from tests.servers import serve

    async def sized(request: Any) -> Response:
        return Response(b"x" * 1234, media_type="application/octet-stream")

    path = tmp_path / "head.yaml"
    with serve(Starlette(routes=[Route("/file", sized, methods=["GET", "HEAD"])])) as base:
        live = _head_length(client, base + "/file")
        with llmcassette.use_cassette(path, record_mode="once"):
            recording = _head_length(client, base + "/file")
        with llmcassette.use_cassette(path):
            replayed = _head_length(client, base + "/file")
    assert live == recording == replayed == "1234"
