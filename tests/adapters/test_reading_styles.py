"""
Chunk fidelity through every reading style of every library the in-process doors serve:
requests, urllib3, ``urllib.request`` (``http.client``) and aiohttp.

Each style reads a stream live (recording) and then from the cassette (replay, no socket
opened), and must get the same pieces both times. The upstream withholds each chunk until the
client has seen the ones before it, so a style that takes what has arrived (``iter_content()``,
``read_chunked()``, ``read1()``, ``iter_any()``, ``readline()`` ...) proves the recording
passed every chunk on as it came: had the door buffered the stream, the client would have seen
nothing and the upstream would have waited in vain.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import urllib3

import llmcassette
from tests.adapters.gated import GatedUpstream
from tests.adapters.test_http_client import forbid_sockets

CHUNKS = [
    json.dumps(
        {"model": "m", "message": {"role": "assistant", "content": f"word{i} " * (i + 1)}, "done": i == 4}
    ).encode()
    + b"\n"
    for i in range(5)
]
PATH = "/api/chat"
BODY = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}

JSON = {"Content-Type": "application/json"}

Saw = Callable[[bytes], None]


def _collect(pieces: Iterable[bytes], saw: Saw) -> list[bytes]:
    out = []
    for piece in pieces:
        if piece:
            saw(piece)
            out.append(piece)
    return out


async def _acollect(pieces: AsyncIterator[bytes], saw: Saw) -> list[bytes]:
    out = []
    async for piece in pieces:
        if piece:
            saw(piece)
            out.append(piece)
    return out


# -- the styles ------------------------------------------------------------------------------------


def _requests(read: Callable[[requests.Response], Iterable[bytes]]) -> Callable[[str, Saw], list[bytes]]:
    def run(url: str, saw: Saw) -> list[bytes]:
        with requests.post(url, json=BODY, stream=True, timeout=10) as response:
            return _collect(read(response), saw)

    return run


def _urllib3(read: Callable[[Any], Iterable[bytes]]) -> Callable[[str, Saw], list[bytes]]:
    def run(url: str, saw: Saw) -> list[bytes]:
        with urllib3.PoolManager() as pool:
            # `body=`, not `json=`: urllib3 1.26 has no `json=`.
            response = pool.request(
                "POST", url, body=json.dumps(BODY).encode(), headers=JSON, preload_content=False, timeout=10.0
            )
            try:
                return _collect(read(response), saw)
            finally:
                response.release_conn()

    return run


def _urllib(read: Callable[[Any], Iterable[bytes]]) -> Callable[[str, Saw], list[bytes]]:
    def run(url: str, saw: Saw) -> list[bytes]:
        request = urllib.request.Request(
            url, data=json.dumps(BODY).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return _collect(read(response), saw)

    return run


def _aiohttp(
    read: Callable[[aiohttp.ClientResponse], AsyncIterator[bytes]],
) -> Callable[[str, Saw], list[bytes]]:
    def run(url: str, saw: Saw) -> list[bytes]:
        async def main() -> list[bytes]:
            async with aiohttp.ClientSession() as session, session.post(url, json=BODY) as response:
                return await _acollect(read(response), saw)

        return asyncio.run(main())

    return run


def _sized(read: Callable[[int], bytes], size: int) -> Iterator[bytes]:
    while piece := read(size):
        yield piece


def _into(readinto: Callable[[bytearray], int], size: int) -> Iterator[bytes]:
    buffer = bytearray(size)
    while count := readinto(buffer):
        yield bytes(buffer[:count])


def _whole(read: Callable[[], bytes]) -> Iterator[bytes]:
    yield read()


async def _aiter(pieces: Any) -> AsyncIterator[bytes]:
    async for piece in pieces:
        yield piece


async def _genai_readline(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    # google-genai's style that vcrpy's aiohttp stub loops on for ever: `response.content` taken
    # anew for each line, which must be the same stream, reading on where the last line ended.
    while line := await response.content.readline():
        yield line


async def _iter_chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    async for data, _end_of_http_chunk in response.content.iter_chunks():
        yield data


async def _aread(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    yield await response.read()


async def _readany(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    while piece := await response.content.readany():
        yield piece


async def _read_nowait(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    # Polls what has arrived, never waiting in the reader: a pause of its own between polls.
    while not response.content.at_eof():
        if piece := response.content.read_nowait():
            yield piece
        else:
            await asyncio.sleep(0.001)


async def _wait_eof(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    await response.content.wait_eof()
    yield response.content.read_nowait()


@dataclass(frozen=True)
class Style:
    """A way of reading a response body, and what it promises."""

    id: str
    read: Callable[[str, Saw], list[bytes]]
    #: It takes what has arrived, never waiting for more: the upstream may withhold the next chunk.
    arrival: bool = False
    #: It hands over the recorded chunks as they are.
    boundaries: bool = False


STYLES = [
    # requests
    Style("requests-iter_content(None)", _requests(lambda r: r.iter_content(None)), True, True),
    Style("requests-iter_content(7)", _requests(lambda r: r.iter_content(7))),
    Style("requests-iter_lines", _requests(lambda r: (line + b"\n" for line in r.iter_lines()))),
    Style("requests-raw.read(10)", _requests(lambda r: _sized(r.raw.read, 10))),
    Style("requests-raw.readinto", _requests(lambda r: _into(r.raw.readinto, 16))),
    Style("requests-raw.stream(5)", _requests(lambda r: r.raw.stream(5))),
    Style("requests-raw.read_chunked", _requests(lambda r: r.raw.read_chunked()), True, True),
    Style("requests-content", _requests(lambda r: _whole(lambda: r.content))),
    # urllib3
    Style("urllib3-stream(None)", _urllib3(lambda r: r.stream(None)), True, True),
    Style("urllib3-stream(6)", _urllib3(lambda r: r.stream(6))),
    Style("urllib3-read_chunked", _urllib3(lambda r: r.read_chunked()), True, True),
    Style("urllib3-read(8)", _urllib3(lambda r: _sized(r.read, 8))),
    Style("urllib3-readinto", _urllib3(lambda r: _into(r.readinto, 13))),
    # urllib.request (http.client)
    Style("urllib-read(n)", _urllib(lambda r: _sized(r.read, 9))),
    Style("urllib-readline", _urllib(lambda r: iter(r.readline, b"")), True, True),
    Style("urllib-read1", _urllib(lambda r: iter(r.read1, b"")), True, True),
    Style("urllib-readinto", _urllib(lambda r: _into(r.readinto, 11))),
    Style("urllib-read()", _urllib(lambda r: _whole(r.read))),
    # aiohttp
    Style("aiohttp-iter_chunked(7)", _aiohttp(lambda r: _aiter(r.content.iter_chunked(7)))),
    Style("aiohttp-iter_any", _aiohttp(lambda r: _aiter(r.content.iter_any())), True, True),
    Style("aiohttp-iter_chunks", _aiohttp(_iter_chunks), True, True),
    Style("aiohttp-readany", _aiohttp(_readany), True, True),
    Style("aiohttp-readline(genai)", _aiohttp(_genai_readline), True, True),
    Style("aiohttp-async_for_line", _aiohttp(lambda r: _aiter(r.content)), True, True),
    Style("aiohttp-read()", _aiohttp(_aread)),
    Style("aiohttp-read_nowait", _aiohttp(_read_nowait), True, True),
    Style("aiohttp-wait_eof", _aiohttp(_wait_eof)),
]


@pytest.mark.parametrize("style", STYLES, ids=[s.id for s in STYLES])
def test_a_reading_style_gets_the_same_pieces_live_and_replayed(
    style: Style, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A style that waits for a size of its own cannot be held back chunk by chunk: the upstream
    # then only pauses briefly between chunks (which a busy machine may merge into one read:
    # the client gets the chunks the recording stores either way).
    upstream = GatedUpstream(CHUNKS, "application/x-ndjson", patience_s=3.0 if style.arrival else 0.02)
    path = tmp_path / "styles.yaml"
    with upstream.running() as base:
        with llmcassette.use_cassette(path, record_mode="once"):
            live = style.read(base + PATH, upstream.saw)
    assert b"".join(live) == b"".join(CHUNKS)
    stream = llmcassette.load_cassette(path).interactions[0].response.stream
    assert stream is not None and stream.chunks is not None
    assert stream.offsets_ms is not None and stream.offsets_ms == sorted(stream.offsets_ms)
    if style.arrival:
        # Held back chunk by chunk, each chunk was its own read, passed on at once and stored.
        assert upstream.late == [], "the recording held a chunk back from the client"
        assert stream.chunks == [len(c) for c in CHUNKS]
    if style.boundaries:
        assert live == CHUNKS

    forbid_sockets(monkeypatch)
    with llmcassette.use_cassette(path) as replay:
        replayed = style.read(base + PATH, lambda data: None)
    assert replayed == live
    assert b"".join(replay.attempts[0].chunks) == b"".join(CHUNKS)
    assert [len(c) for c in replay.attempts[0].chunks] == stream.chunks
