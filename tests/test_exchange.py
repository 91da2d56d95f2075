"""
The plain data faults work on: ``replace_span`` (a byte edit that keeps the chunk boundaries
outside the edited span), ``Playback`` (its body, headers and ``with_body``) and ``RequestInfo``.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, strategies as st

from llmcassette._exchange import Ending, Playback, RequestInfo, replace_span

# -- replace_span -----------------------------------------------------------------------------------

CHUNKS = [b"abc", b"def", b"ghi"]


@pytest.mark.parametrize(
    ("start", "end", "new", "expected"),
    [
        (4, 5, b"X", [b"abc", b"dXf", b"ghi"]),  # inside one chunk
        (3, 6, b"X", [b"abc", b"X", b"ghi"]),  # exactly one chunk
        (3, 6, b"", [b"abc", b"ghi"]),  # a chunk deleted
        (1, 7, b"X", [b"aX", b"hi"]),  # across chunks: the middle one goes, the ends keep their rest
        (0, 9, b"XY", [b"XY"]),  # everything
        (3, 3, b"X", [b"abc", b"Xdef", b"ghi"]),  # an insertion at a boundary joins the next chunk
        (0, 0, b"X", [b"Xabc", b"def", b"ghi"]),
        (9, 9, b"X", [b"abc", b"def", b"ghi", b"X"]),  # at the end: a chunk of its own
        (2, 4, b"", [b"ab", b"ef", b"ghi"]),
    ],
)
def test_replace_span_examples(start: int, end: int, new: bytes, expected: list[bytes]) -> None:
    original = list(CHUNKS)
    assert replace_span(CHUNKS, start, end, new) == expected
    assert replace_span(tuple(CHUNKS), start, end, new) == expected
    assert original == CHUNKS  # the input is not changed


def test_replace_span_of_an_empty_body_is_the_new_bytes() -> None:
    assert replace_span([], 0, 0, b"new") == [b"new"]


def cut_points(chunks: list[bytes]) -> set[int]:
    """Where one chunk ends and another begins, inside the body."""
    total = sum(len(c) for c in chunks)
    ends = set(itertools.accumulate(len(c) for c in chunks))
    return {p for p in ends if 0 < p < total}


@given(chunks=st.lists(st.binary(max_size=6), max_size=8), data=st.data())
def test_replace_span_is_the_byte_edit_and_keeps_the_boundaries_outside_the_span(
    chunks: list[bytes], data: st.DataObject
) -> None:
    body = b"".join(chunks)
    start = data.draw(st.integers(0, len(body)), label="start")
    end = data.draw(st.integers(start, len(body)), label="end")
    new = data.draw(st.binary(max_size=5), label="new")
    out = replace_span(chunks, start, end, new)

    edited = body[:start] + new + body[end:]
    assert b"".join(out) == edited
    shift = len(new) - (end - start)
    # Every boundary before the span stays where it is, every boundary after it moves with the
    # edit; boundaries strictly inside the span go.
    kept = {p for p in cut_points(chunks) if p <= start} | {
        p + shift for p in cut_points(chunks) if p >= end and p > start
    }
    kept = {p for p in kept if 0 < p < len(edited)}
    assert kept <= cut_points(out)
    # The only new boundaries: after the replacement, where the span ended inside a later chunk,
    # and before it when it is added at the very end (there is no chunk there to take it).
    edges = {start + len(new), start} if start == len(body) else {start + len(new)}
    assert cut_points(out) - kept <= edges


@given(chunks=st.lists(st.binary(min_size=1, max_size=6), min_size=1, max_size=8), data=st.data())
def test_replace_span_keeps_the_chunks_wholly_outside_the_span_as_they_are(
    chunks: list[bytes], data: st.DataObject
) -> None:
    body = b"".join(chunks)
    start = data.draw(st.integers(0, len(body)), label="start")
    end = data.draw(st.integers(start, len(body)), label="end")
    out = replace_span(chunks, start, end, b"#")
    position = 0
    before, after = [], []
    for chunk in chunks:
        if position + len(chunk) <= start:
            before.append(chunk)
        elif position >= end and position > start:
            after.append(chunk)
        position += len(chunk)
    assert out[: len(before)] == before
    assert out[len(out) - len(after) :] == after


# -- Playback ---------------------------------------------------------------------------------------

HEADERS = (("Content-Type", "text/event-stream"), ("Content-Length", "10"), ("x-request-id", "req_1"))


def playback(**changes: object) -> Playback:
    base = Playback(
        status=200,
        headers=HEADERS,
        chunks=(b"aaaaa", b"bbbbb"),
        delays_ms=(0.0, 50.0),
        head_delay_ms=20.0,
        ending=Ending.ERROR,
        error_type="ReadError",
        error_message="reset",
        stall_ms=None,
        reason="Fine",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_playback_body_and_headers() -> None:
    played = playback()
    assert played.body == b"aaaaabbbbb"
    assert played.header("content-length") == "10"
    assert played.header("CONTENT-TYPE") == "text/event-stream"
    assert played.header("retry-after") is None
    repeated = playback(headers=(("x-a", "1"), ("X-A", "2")))
    assert repeated.header("x-a") == "1"  # the first value


def test_with_body_updates_content_length_and_keeps_delays_when_the_count_is_the_same() -> None:
    played = playback()
    shorter = played.with_body([b"a", b"bb"])
    assert shorter.chunks == (b"a", b"bb") and isinstance(shorter.chunks, tuple)
    assert shorter.headers == (
        ("Content-Type", "text/event-stream"),
        ("Content-Length", "3"),
        ("x-request-id", "req_1"),
    )
    assert shorter.delays_ms == (0.0, 50.0)
    # Everything else is as it was, and the original is untouched.
    same = ("status", "head_delay_ms", "ending", "error_type", "error_message", "stall_ms", "reason")
    assert all(getattr(shorter, name) == getattr(played, name) for name in same)
    assert played.chunks == (b"aaaaa", b"bbbbb") and played.header("content-length") == "10"


@pytest.mark.parametrize("chunks", [[b"abc"], [b"a", b"b", b"c"], []])
def test_with_body_drops_delays_when_the_chunk_count_changes(chunks: list[bytes]) -> None:
    changed = playback().with_body(chunks)
    assert changed.delays_ms is None
    assert changed.header("content-length") == str(len(b"".join(chunks)))
    assert changed.body == b"".join(chunks)


def test_with_body_adds_no_content_length_and_keeps_no_delays() -> None:
    played = playback(headers=(("content-type", "application/json"),), delays_ms=None)
    changed = played.with_body([b"{}"])
    assert changed.headers == (("content-type", "application/json"),)
    assert changed.delays_ms is None


def test_playback_defaults_end_cleanly_without_waits() -> None:
    played = Playback(status=204, headers=(), chunks=())
    assert (played.ending, played.delays_ms, played.head_delay_ms, played.stall_ms) == (
        Ending.COMPLETE,
        None,
        0.0,
        None,
    )
    assert (played.error_type, played.error_message, played.reason, played.body) == (None, "", "", b"")
    assert [e.value for e in Ending] == ["complete", "error", "stall"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        played.status = 200  # type: ignore[misc]


# -- RequestInfo ------------------------------------------------------------------------------------


def test_request_info_url_parts() -> None:
    info = RequestInfo("POST", "HTTP://API.Example.COM:8443/v1/chat/completions?alt=sse&key=x#frag")
    assert info.path == "/v1/chat/completions"
    assert info.host == "api.example.com"
    assert info.query == "alt=sse&key=x"
    bare = RequestInfo("GET", "http://[::1]")
    assert (bare.path, bare.host, bare.query) == ("", "::1", "")
    assert (bare.headers, bare.body) == ({}, b"")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"stream": true}', {"stream": True}),
        (b' \n [1, {"a": null}]', [1, {"a": None}]),
        (b"", None),
        (b"stream=true", None),
        (b"{broken", None),
        (b"\xff\xfe", None),
    ],
)
def test_request_info_json(body: bytes, expected: object) -> None:
    info = RequestInfo("POST", "https://api.example.com/v1/x", {"content-type": "application/json"}, body)
    assert info.json == expected


def test_request_info_is_frozen() -> None:
    info = RequestInfo("GET", "https://example.com/a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.url = "https://example.com/b"  # type: ignore[misc]
