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
