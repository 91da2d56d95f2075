"""
The real-cassette corpus (third-party cassettes recorded against real providers): where it lives,
what its manifest says, and decoders of its bodies that the corpus tests use as the reference.

The decoders here are written for the tests, independently of ``llmcassette._framing``, so that a
test comparing the library's event splitting with them compares two implementations, not one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

#: Environment variable that points at a corpus folder somewhere else.
CORPUS_ENV = "LLMCASSETTE_CORPUS"
#: How many cassette files the corpus README and MANIFEST.json describe.
EXPECTED_FILE_COUNT = 55
MISSING_REASON = (
    "the real-cassette corpus at ../shared/corpus is not present "
    f"(set {CORPUS_ENV} to its folder to run these tests)"
)


def corpus_dir() -> Path | None:
    """The corpus folder: ``$LLMCASSETTE_CORPUS``, else ``../shared/corpus`` beside the checkout."""
    configured = os.environ.get(CORPUS_ENV)
    path = Path(configured) if configured else Path(__file__).resolve().parents[2] / "shared" / "corpus"
    return path if (path / "MANIFEST.json").is_file() else None


CORPUS = corpus_dir()


def corpus_files() -> list[str]:
    """Every cassette file of the corpus, as sorted paths relative to it (empty when absent)."""
    if CORPUS is None:
        return []
    return sorted(
        path.relative_to(CORPUS).as_posix()
        for path in CORPUS.rglob("*")
        if path.is_file() and path.suffix in (".yaml", ".yml", ".json") and path.name != "MANIFEST.json"
    )


def corpus_path(rel: str) -> Path:
    assert CORPUS is not None
    return CORPUS / rel


def params(files: Sequence[str] | None = None, *, marks: Mapping[str, Any] | None = None) -> list[Any]:
    """
    ``pytest.param`` per corpus file, id = its relative path, so that a failure names the file.
    Without a corpus, one placeholder that skips with a reason a user can act on.
    """
    if CORPUS is None:
        return [pytest.param(None, id="corpus-missing", marks=pytest.mark.skip(reason=MISSING_REASON))]
    chosen = corpus_files() if files is None else list(files)
    marks = marks or {}
    return [pytest.param(rel, id=rel, marks=marks.get(rel, ())) for rel in chosen]


@cache
def manifest() -> dict[str, dict[str, Any]]:
    """MANIFEST.json, keyed by each file's relative path."""
    assert CORPUS is not None
    entries = json.loads((CORPUS / "MANIFEST.json").read_text(encoding="utf-8"))
    return {entry["local"]: entry for entry in entries}


def sha256_of(rel: str) -> str:
    return hashlib.sha256(corpus_path(rel).read_bytes()).hexdigest()


def manifest_responses(kinds: str) -> list[tuple[int, str]]:
    """
    The manifest's ``kinds`` ("200 gzip JSON x2, 400 JSON") as one (status, kind) per interaction;
    parenthesised remarks are dropped ("200 SSE (leading comment lines)" is ``(200, "SSE")``).
    """
    result = []
    for part in kinds.split(", "):
        match = re.fullmatch(r"(\d{3}) (.+?)(?: \(.*\))?(?: x(\d+))?", part.strip())
        assert match is not None, f"unexpected manifest kinds entry {part!r}"
        result += [(int(match.group(1)), match.group(2))] * int(match.group(3) or 1)
    return result


# -- headers -------------------------------------------------------------------------------------


def header(headers: Mapping[str, Sequence[str]], name: str) -> str | None:
    """First value of a header, whatever the case of its name."""
    for key, values in headers.items():
        if key.lower() == name.lower() and values:
            return str(values[0])
    return None


def is_gzip(headers: Mapping[str, Sequence[str]]) -> bool:
    return (header(headers, "content-encoding") or "").strip().lower() in ("gzip", "x-gzip")


def body_kind(headers: Mapping[str, Sequence[str]], body: bytes) -> str:
    """What a response body is, in the manifest's words, judged from its headers and bytes."""
    ctype = (header(headers, "content-type") or "").lower()
    if is_gzip(headers):
        assert body[:2] == b"\x1f\x8b", "content-encoding says gzip but the body has no gzip magic"
        inner = gzip.decompress(body)
        json.loads(inner)  # a gzip body in this corpus is always JSON
        return "gzip JSON-array stream" if inner.lstrip()[:1] == b"[" else "gzip JSON"
    if "vnd.amazon.eventstream" in ctype:
        return "AWS eventstream"
    if "text/event-stream" in ctype:
        return "SSE"
    if "ndjson" in ctype:
        return "NDJSON"
    json.loads(body)
    return "JSON"


# -- reference decoders --------------------------------------------------------------------------


def sse_blocks(body: bytes) -> list[bytes]:
    """
    Cut an SSE body into events: the lines of an event plus the blank line(s) that end it, with any
    unterminated tail as a last block. CR, LF and CRLF all end a line.
    """
    blocks: list[bytes] = []
    current = b""
    closed = False  # the current block already has its blank line: the next text starts a new one
    for line in body.splitlines(keepends=True):
        blank = line in (b"\n", b"\r", b"\r\n")
        if blank and current:
            closed = True
        elif not blank and closed:
            blocks.append(current)
            current, closed = b"", False
        current += line
    if current:
        blocks.append(current)
    return blocks


@dataclass(frozen=True)
class SSEMessage:
    event: str | None
    data: str | None


def sse_messages(body: bytes) -> list[SSEMessage]:
    """The events of an SSE body that carry a field (comment-only blocks are keep-alives)."""
    messages = []
    for block in sse_blocks(body):
        event = None
        data: list[str] = []
        for line in block.decode("utf-8").splitlines():
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        if event is not None or data:
            messages.append(SSEMessage(event, "\n".join(data) if data else None))
    return messages


def sse_json(body: bytes) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) of every data-carrying SSE event, up to the ``[DONE]`` marker."""
    result = []
    for message in sse_messages(body):
        if message.data is None:
            continue
        if message.data.strip() == "[DONE]":
            break
        result.append((message.event, json.loads(message.data)))
    return result


def ndjson_lines(body: bytes) -> list[bytes]:
    """An NDJSON body cut after every LF (an unterminated tail is a last line)."""
    return re.findall(rb"[^\n]*\n|[^\n]+\Z", body)


@dataclass(frozen=True)
class Frame:
    """One AWS eventstream message."""

    raw: bytes
    headers: dict[str, Any]
    payload: bytes


def eventstream_frames(body: bytes) -> list[Frame]:
    """
    Walk an AWS eventstream body frame by frame, checking each prelude's total length and both
    CRC32s, and decoding the headers (name, type byte, value).
    """
    frames = []
    offset = 0
    while offset < len(body):
        total, headers_len, prelude_crc = struct.unpack_from(">III", body, offset)
        assert zlib.crc32(body[offset : offset + 8]) == prelude_crc, f"bad prelude CRC at byte {offset}"
        raw = body[offset : offset + total]
        assert len(raw) == total, f"frame at byte {offset} announces {total} bytes, {len(raw)} remain"
        (message_crc,) = struct.unpack(">I", raw[-4:])
        assert zlib.crc32(raw[:-4]) == message_crc, f"bad message CRC in frame at byte {offset}"
        frames.append(
            Frame(raw, _eventstream_headers(raw[12 : 12 + headers_len]), raw[12 + headers_len : -4])
        )
        offset += total
    return frames


def _eventstream_headers(data: bytes) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    position = 0
    while position < len(data):
        name_len = data[position]
        name = data[position + 1 : position + 1 + name_len].decode()
        position += 1 + name_len
        kind = data[position]
        position += 1
        if kind == 7:  # string: 2-byte length, then UTF-8
            (size,) = struct.unpack_from(">H", data, position)
            headers[name] = data[position + 2 : position + 2 + size].decode()
            position += 2 + size
        else:  # the corpus only has string headers; anything else means the walk went wrong
            raise AssertionError(f"unexpected eventstream header type {kind} for {name!r}")
    return headers


def expected_replay_chunks(headers: Mapping[str, Sequence[str]], body: bytes) -> list[bytes]:
    """
    The chunks a replay without recorded boundaries must hand the client: one per event for
    SSE, NDJSON and eventstream bodies, the whole body otherwise (compressed bodies included).
    """
    if not body:
        return []
    ctype = (header(headers, "content-type") or "").lower()
    if is_gzip(headers):
        return [body]
    if "text/event-stream" in ctype:
        return sse_blocks(body)
    if "ndjson" in ctype:
        return ndjson_lines(body)
    if "vnd.amazon.eventstream" in ctype:
        return [frame.raw for frame in eventstream_frames(body)]
    return [body]


def decoded(headers: Mapping[str, Sequence[str]], body: bytes) -> bytes:
    """The body as a client reads it once the content encoding is undone."""
    return gzip.decompress(body) if is_gzip(headers) else body
