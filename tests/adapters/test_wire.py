"""The HTTP/1.1 a door writes: a body written in one piece is byte for byte the one written chunk by chunk."""

from __future__ import annotations

import io

import httpx
import pytest
from hypothesis import given, strategies as st

from llmcassette._adapters._wire import WireReader, WireRequest, encode_body, engine_request

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
