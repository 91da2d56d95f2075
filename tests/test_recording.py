"""
From a live exchange to stored interaction: decoding, scrubbing, readable bodies, and chunk
boundaries and timing kept as the client saw them.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings, strategies as st

from llmcassette import CassetteError, _recording
from llmcassette._models import CassetteDocument, Interaction, RecordedResponse, StreamEnd, header_get
from llmcassette._playback import compile_response
from llmcassette._recording import Capture, build_request, build_response, headers_to_map
from llmcassette._scrub import Scrubber
from llmcassette._storage import dumps_cassette, parse_cassette
from tests.arbitrary import STREAMS, URLS

OPENAI_KEY = "sk-proj-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2"
STREAM_EVENTS = [
    b'data: {"id":"chatcmpl-9","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
    b'data: {"id":"chatcmpl-9","choices":[{"index":0,"delta":{"content":"Bonjour"}}]}\n\n',
    b'data: {"id":"chatcmpl-9","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    b"data: [DONE]\n\n",
]
STREAM = b"".join(STREAM_EVENTS)
SSE_HEADERS = [(b"Content-Type", b"text/event-stream; charset=utf-8"), (b"x-request-id", b"req_42")]


class FakeClock:
    """A monotonic clock the test moves by hand, so offsets are exact."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(_recording, "_monotonic", fake)
    yield fake


def capture(
    chunks: list[bytes],
    clock: FakeClock | None = None,
    *,
    error: BaseException | None = None,
    closed: bool = False,
) -> Capture:
    """A finished capture; with a clock, each chunk arrives 50 ms after the one before."""
    start = clock.now if clock else 0.0
    result = Capture(start=start, on_finish=lambda _: None)
    for chunk in chunks:
        if clock:
            clock.now += 0.05
        result.chunk(chunk)
    result.finish(error=error, closed=closed)
    return result


def response(
    chunks: list[bytes],
    headers: list[tuple[bytes, bytes]],
    *,
    scrubber: Scrubber | None = None,
    decode: bool = True,
    error: BaseException | None = None,
    closed: bool = False,
) -> RecordedResponse:
    return build_response(
        status_code=200,
        reason="OK",
        raw_headers=headers,
        capture=capture(chunks, error=error, closed=closed),
        scrubber=scrubber,
        decode_compressed=decode,
    )


# --- capture -------------------------------------------------------------------------------------


def test_capture_times_the_head_and_every_chunk(clock: FakeClock) -> None:
    start = clock.now
    clock.now += 0.2505
    result = Capture(start=start, on_finish=lambda _: None)
    assert result.elapsed_ms == 250.5
    clock.now += 0.1
    result.chunk(b"a")
    clock.now += 0.0004
    result.chunk(b"b")
    assert result.offsets_ms == [350.5, 350.9]
    assert result.chunks == [b"a", b"b"]


def test_capture_finishes_once() -> None:
    finished: list[Capture] = []
    result = Capture(start=0.0, on_finish=finished.append)
    result.finish(error=ConnectionResetError("reset"))
    result.finish(closed=True)
    assert finished == [result]
    assert result.end is StreamEnd.ERROR and isinstance(result.error, ConnectionResetError)


def test_capture_closed_by_the_client() -> None:
    result = Capture(start=0.0, on_finish=lambda _: None)
    result.finish(closed=True)
    assert result.end is StreamEnd.CLOSED and result.error is None


def test_headers_to_map_keeps_order_repeats_and_bytes() -> None:
    raw = [
        (b"Set-Cookie", b"a=1"),
        (b"Content-Type", b"text/plain"),
        (b"Set-Cookie", b"b=2"),
        (b"X-Name", b"\xe9"),
    ]
    assert headers_to_map(raw) == {
        "Set-Cookie": ["a=1", "b=2"],
        "Content-Type": ["text/plain"],
        "X-Name": ["é"],
    }
    assert list(headers_to_map(raw)) == ["Set-Cookie", "Content-Type", "X-Name"]


# --- requests ------------------------------------------------------------------------------------


def test_request_is_scrubbed_and_parsed() -> None:
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"key {OPENAI_KEY}"}]},
        separators=(",", ":"),
    ).encode()
    request = build_request(
        method="POST",
        url="https://api.openai.com/v1/chat/completions?key=abc&trace=1",
        raw_headers=[
            (b"Authorization", f"Bearer {OPENAI_KEY}".encode()),
            (b"OpenAI-Organization", b"org-acme"),
            (b"Content-Type", b"application/json"),
            (b"Content-Length", str(len(body)).encode()),
        ],
        body=body,
        scrubber=Scrubber(),
    )
    assert request.uri == "https://api.openai.com/v1/chat/completions?key=REDACTED&trace=1"
    assert request.headers["Authorization"] == ["Bearer REDACTED"]
    assert request.headers["OpenAI-Organization"] == ["REDACTED"]
    assert request.parsed_body["messages"][0]["content"] == "key REDACTED-openai-key"
    assert request.content == body.replace(OPENAI_KEY.encode(), b"REDACTED-openai-key")
    assert OPENAI_KEY.encode() not in request.content
    # The stored length is the stored body's.
    assert request.headers["Content-Length"] == [str(len(request.content))]


def test_request_without_scrubber_is_kept_as_sent() -> None:
    request = build_request(
        method="POST",
        url="https://h/api/generate?key=abc",
        raw_headers=[(b"authorization", b"Bearer t")],
        body=b"prompt=hello&key=" + OPENAI_KEY.encode(),
        scrubber=None,
    )
    assert request.uri == "https://h/api/generate?key=abc"
    assert request.headers == {"authorization": ["Bearer t"]}
    assert request.body == "prompt=hello&key=" + OPENAI_KEY
    assert "parsed_body" not in request.model_fields_set


def test_binary_request_body() -> None:
    request = build_request(
        method="PUT", url="https://h/f", raw_headers=[], body=b"\x00\xff", scrubber=Scrubber()
    )
    assert request.body == b"\x00\xff" and request.content == b"\x00\xff"


# --- responses -----------------------------------------------------------------------------------


def test_streamed_response_keeps_chunks_and_timing(clock: FakeClock) -> None:
    chunks = [
        STREAM_EVENTS[0][:30],
        STREAM_EVENTS[0][30:] + STREAM_EVENTS[1],
        STREAM_EVENTS[2] + STREAM_EVENTS[3],
    ]
    result = build_response(
        status_code=200,
        reason="OK",
        raw_headers=SSE_HEADERS,
        capture=capture(chunks, clock),
        scrubber=Scrubber(),
        decode_compressed=True,
    )
    assert result.content == STREAM
    assert result.body is not None and result.body.string == STREAM.decode()
    assert result.stream is not None
    assert result.stream.chunks == [len(c) for c in chunks]
    assert result.stream.offsets_ms == [50.0, 100.0, 150.0]
    assert result.stream.end is StreamEnd.COMPLETE
    assert result.elapsed_ms == 0.0
    assert (result.status.code, result.status.message) == (200, "OK")


def test_one_chunk_json_response_has_no_stream_record() -> None:
    body = b'{"id": "msg_1", "content": [{"type": "text", "text": "Hi"}]}'
    result = response([body], [(b"content-type", b"application/json")])
    assert result.stream is None
    assert result.parsed_body == json.loads(body)
    assert result.content == body


@pytest.mark.parametrize(
    ("body", "content_type", "url"),
    [
        pytest.param(b"data: a\n\ndata: b\n\n", b"text/event-stream", None, id="sse"),
        pytest.param(b'{"a":1}\n{"b":2}\n', b"application/x-ndjson", None, id="ndjson"),
        pytest.param(b"data: \xff\x00\r\n\r\ndata: b\r\n\r\n", b"text/event-stream", None, id="binary-sse"),
        pytest.param(b"data: a\n\ndata: b\n\n", None, None, id="sse-without-headers"),
        pytest.param(
            b'[{"a": 1}\r\n,{"b": 2}\r\n]',
            b"application/json",
            "https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent",
            id="gemini-json-array",
        ),
    ],
)
def test_a_stream_read_in_one_piece_keeps_its_one_chunk(
    body: bytes, content_type: bytes | None, url: str | None
) -> None:
    # Left out, the boundaries would be replayed one chunk per event: several events in one read
    # is exactly what replay must reproduce.
    headers = [(b"content-type", content_type)] if content_type else []
    result = build_response(
        status_code=200,
        reason="OK",
        raw_headers=headers,
        capture=capture([body]),
        scrubber=None,
        decode_compressed=True,
        url=url,
    )
    assert result.content == body
    assert result.stream is not None
    assert result.stream.chunks == [len(body)]
    assert result.stream.end is StreamEnd.COMPLETE


@pytest.mark.parametrize(
    ("finish", "end", "error"),
    [
        pytest.param({"closed": True}, StreamEnd.CLOSED, None, id="closed-by-client"),
        pytest.param(
            {"error": ConnectionResetError("peer reset")},
            StreamEnd.ERROR,
            ("ConnectionResetError", "peer reset"),
            id="upstream-error",
        ),
    ],
)
def test_unfinished_stream_is_recorded_even_with_one_chunk(
    finish: dict[str, Any], end: StreamEnd, error: tuple[str, str] | None
) -> None:
    result = response([STREAM_EVENTS[0]], SSE_HEADERS, **finish)
    assert result.stream is not None
    assert result.stream.end is end
    assert result.stream.chunks == [len(STREAM_EVENTS[0])]
    got = result.stream.error
    assert ((got.type, got.message) if got else None) == error


def test_empty_response() -> None:
    result = response([], [(b"content-length", b"0")])
    assert result.stream is None and result.content == b""
    assert result.body is not None and result.body.string == ""


# --- compression ---------------------------------------------------------------------------------


def compress_in_pieces(data: bytes, compressor: Any, sizes: list[int]) -> list[bytes]:
    """Compressed chunks as a server flushing after each piece of the stream would send them."""
    out, position = [], 0
    for size in sizes:
        out.append(
            compressor.compress(data[position : position + size]) + compressor.flush(zlib.Z_SYNC_FLUSH)
        )
        position += size
    out[-1] += compressor.flush()
    return out


@pytest.mark.parametrize(
    ("encoding", "compressor"),
    [
        pytest.param(b"gzip", lambda: zlib.compressobj(wbits=zlib.MAX_WBITS | 16), id="gzip"),
        pytest.param(b"x-gzip", lambda: zlib.compressobj(wbits=zlib.MAX_WBITS | 16), id="x-gzip"),
        pytest.param(b"deflate", lambda: zlib.compressobj(), id="deflate"),
    ],
)
def test_compressed_stream_is_stored_decoded_per_chunk(
    encoding: bytes, compressor: Callable[[], Any]
) -> None:
    sizes = [len(e) for e in STREAM_EVENTS]
    chunks = compress_in_pieces(STREAM, compressor(), sizes)
    total = sum(len(c) for c in chunks)
    headers = [(b"Content-Type", b"text/event-stream"), (b"Content-Encoding", encoding)]
    result = response(chunks, [*headers, (b"Content-Length", str(total).encode())])
    assert result.content == STREAM
    # Each chunk holds the events that arrived with it, readable in the cassette.
    assert result.stream is not None and result.stream.chunks == sizes
    assert header_get(result.headers, "content-encoding") is None
    assert result.headers["Content-Length"] == [str(len(STREAM))]


def test_undecodable_body_is_kept_compressed_with_its_header() -> None:
    # A valid gzip header, then a deflate block of the reserved type, which no decoder accepts.
    chunks = [gzip.compress(STREAM, mtime=0)[:10], b"\xff" * 8]
    result = response(chunks, [(b"Content-Encoding", b"gzip"), (b"Content-Length", b"18")])
    assert header_get(result.headers, "content-encoding") == "gzip"
    assert result.headers["Content-Length"] == ["18"]
    assert result.content == b"".join(chunks)


@pytest.mark.parametrize(
    ("encoding", "decode"),
    [
        pytest.param(b"gzip", False, id="decoding-off"),
        pytest.param(b"br", True, id="unknown-encoding"),
        pytest.param(b"gzip, br", True, id="stacked-encodings"),
    ],
)
def test_compressed_body_kept_as_is(encoding: bytes, decode: bool) -> None:
    data = gzip.compress(b'{"a": 1}', mtime=0)
    result = response([data], [(b"Content-Encoding", encoding)], decode=decode)
    assert result.content == data
    assert header_get(result.headers, "content-encoding") == encoding.decode()


# --- scrubbing -----------------------------------------------------------------------------------


def test_key_split_across_chunks_is_replaced_whole() -> None:
    body = f'data: {{"echo": "{OPENAI_KEY}"}}\n\ndata: [DONE]\n\n'.encode()
    cut = body.index(OPENAI_KEY.encode()) + 10  # in the middle of the key
    headers = [
        *SSE_HEADERS,
        (b"Content-Length", str(len(body)).encode()),
        (b"Set-Cookie", b"__cf_bm=x; path=/"),
    ]
    result = response([body[:cut], body[cut:]], headers, scrubber=Scrubber())
    assert result.content == body.replace(OPENAI_KEY.encode(), b"REDACTED-openai-key")
    assert result.stream is not None and result.stream.chunks is not None
    first = result.content[: result.stream.chunks[0]]
    assert first.endswith(b"REDACTED-openai-key")
    assert sum(result.stream.chunks) == len(result.content)
    assert result.headers["Content-Length"] == [str(len(result.content))]
    assert result.headers["Set-Cookie"] == ["__cf_bm=REDACTED; path=/"]


def test_cut_stream_keeps_the_announced_length_minus_what_scrubbing_removed() -> None:
    body = f'data: {{"k": "{OPENAI_KEY}"}}\n\n'.encode()
    announced = len(body) + 500  # the upstream promised more than it sent
    headers = [(b"content-type", b"text/event-stream"), (b"content-length", str(announced).encode())]
    result = response([body], headers, scrubber=Scrubber(), error=ConnectionResetError("cut"))
    removed = len(OPENAI_KEY) - len("REDACTED-openai-key")
    assert result.headers["content-length"] == [str(announced - removed)]


# --- property ------------------------------------------------------------------------------------


@st.composite
def live_streams(draw: st.DrawFn) -> tuple[list[bytes], bytes]:
    events = draw(
        st.lists(
            st.sampled_from(
                STREAM_EVENTS[:3] + [f'data: {{"k": "{OPENAI_KEY}"}}\n\n'.encode(), b": ping\n\n"]
            ),
            min_size=1,
            max_size=6,
        )
    )
    body = b"".join(events)
    cuts = sorted(set(draw(st.lists(st.integers(1, len(body) - 1), max_size=6))))
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)], body


@settings(max_examples=100, deadline=None)
@given(stream=live_streams(), compressed=st.booleans())
def test_any_recorded_stream_adds_up(stream: tuple[list[bytes], bytes], compressed: bool) -> None:
    chunks, body = stream
    headers = list(SSE_HEADERS)
    if compressed:
        chunks = compress_in_pieces(
            body, zlib.compressobj(wbits=zlib.MAX_WBITS | 16), [len(c) for c in chunks]
        )
        headers.append((b"Content-Encoding", b"gzip"))
    headers.append((b"Content-Length", str(sum(len(c) for c in chunks)).encode()))
    result = response(chunks, headers, scrubber=Scrubber())
    assert result.content == body.replace(OPENAI_KEY.encode(), b"REDACTED-openai-key")
    assert OPENAI_KEY.encode() not in result.content
    assert result.headers["Content-Length"] == [str(len(result.content))]
    if result.stream is not None:
        assert result.stream.chunks is not None and sum(result.stream.chunks) == len(result.content)
        assert len(result.stream.chunks) == len(chunks) == len(result.stream.offsets_ms or [])


@settings(max_examples=200, deadline=None)
@given(stream=STREAMS, url=URLS, vcrpy_compatible=st.booleans(), suffix=st.sampled_from([".yaml", ".json"]))
def test_any_body_in_any_chunking_survives_record_save_load_and_replay(
    stream: tuple[str | None, list[bytes]], url: str, vcrpy_compatible: bool, suffix: str
) -> None:
    # Without I/O: what the engine stores, the file it writes, and the chunks replay compiles.
    content_type, chunks = stream
    headers = [(b"content-type", content_type.encode())] if content_type else []
    request = build_request(method="POST", url=url, raw_headers=[], body=b"{}", scrubber=None)
    recorded = build_response(
        status_code=200,
        reason="OK",
        raw_headers=headers,
        capture=capture(chunks),
        scrubber=None,
        decode_compressed=True,
        url=url,
    )
    document = CassetteDocument(interactions=[Interaction(request=request, response=recorded)])
    path = Path(f"c{suffix}")
    try:
        text = dumps_cassette(document, json_file=suffix == ".json", vcrpy_compatible=vcrpy_compatible)
    except TypeError:
        assume(False)  # bytes a JSON file cannot hold: refused in words by save_cassette
    (loaded,) = parse_cassette(text.encode(), path=path).interactions
    assert loaded.response.content == b"".join(chunks)
    compiled = compile_response(
        loaded.response, method=loaded.request.method, uri=loaded.request.uri, path=path, index=0
    )
    assert compiled.playback is not None
    assert list(compiled.playback.chunks) == chunks


@pytest.mark.parametrize("status", [99, 600, 999])
def test_a_status_a_cassette_cannot_hold_is_refused_in_words(status: int) -> None:
    # A cassette refuses such a status when it loads; recording says so instead of a pydantic error.
    with pytest.raises(CassetteError, match=rf"^llmcassette: the upstream answered with status {status}, "):
        build_response(
            status_code=status,
            reason="Weird",
            raw_headers=[],
            capture=capture([b"ok"]),
            scrubber=None,
            decode_compressed=False,
        )
