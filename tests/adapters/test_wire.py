"""The HTTP/1.1 a door writes: a body written in one piece is byte for byte the one written chunk by chunk."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, strategies as st

from llmcassette._adapters._wire import WireReader, encode_body

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
