"""
Stream framings of LLM responses, as pure functions over bytes (no I/O).

A streamed body is a sequence of *events*: SSE events (OpenAI, Anthropic, Gemini ``alt=sse``),
NDJSON lines (Ollama), elements of a JSON array (Gemini without ``alt=sse``) or AWS eventstream
frames (Bedrock). Replay of a cassette that has no recorded chunk boundaries falls back to one
chunk per event (:func:`default_chunks`), and faults address events by index, so both need the
event boundaries.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass, field

__all__ = [
    "Framing",
    "SSEEvent",
    "default_chunks",
    "detect_framing",
    "event_ends",
    "parse_sse_event",
    "split_events",
]


class Framing(enum.StrEnum):
    """How a response body is cut into events."""

    SSE = "sse"
    NDJSON = "ndjson"
    JSON_ARRAY = "json-array"
    EVENTSTREAM = "eventstream"
    NONE = "none"


_SSE_FIELD_START = re.compile(rb"\A(?:\xef\xbb\xbf)?[ \t\r\n]*(?:data|event|id|retry)?:")
# An event ends at a line terminator followed by one or more empty lines. The groups are atomic so
# that a lone CRLF is never read as two terminators (CR, then LF).
_SSE_EVENT_END = re.compile(rb"(?>\r\n|\r|\n)(?>\r\n|\r|\n)+")
_LINE_END = re.compile(rb"\n")
_JSON_TOKEN = re.compile(rb'[\[\]{}"\\]')
_EVENTSTREAM_PRELUDE = 12  # total length, headers length, prelude CRC: 3 x uint32 big-endian


def detect_framing(content_type: str | None, body: bytes, *, url: str | None = None) -> Framing:
    """
    Tell the framing of a response body from its content type, or from the body itself when the
    cassette kept no headers.
    """
    ctype = (content_type or "").lower()
    if "text/event-stream" in ctype:
        return Framing.SSE
    if "ndjson" in ctype or "jsonl" in ctype or "json-seq" in ctype:
        return Framing.NDJSON
    if "vnd.amazon.eventstream" in ctype:
        return Framing.EVENTSTREAM
    if url is not None and "streamGenerateContent" in url and "alt=sse" not in url:
        if body.lstrip()[:1] == b"[":
            return Framing.JSON_ARRAY
    if ctype and "json" not in ctype and "text/plain" not in ctype:
        return Framing.NONE
    return _sniff(body, has_content_type=bool(ctype))


def _sniff(body: bytes, *, has_content_type: bool) -> Framing:
    if not body:
        return Framing.NONE
    # (a body that starts with a brace is no SSE: the pattern is not tried on most JSON answers)
    head = body[:1]
    if head != b"{":
        if _SSE_FIELD_START.match(body):
            return Framing.SSE
        head = body.lstrip()[:1]
    if head == b"{":
        if b"\n" not in body and b"\r" not in body:
            return Framing.NONE  # one line, as most JSON answers: no copy of it split and stripped
        lines = [line for line in body.splitlines() if line.strip()]
        if len(lines) > 1 and all(line.lstrip()[:1] == b"{" for line in lines):
            return Framing.NDJSON
        return Framing.NONE
    if not has_content_type and _looks_like_eventstream(body):
        return Framing.EVENTSTREAM
    return Framing.NONE


def _looks_like_eventstream(body: bytes) -> bool:
    if len(body) < _EVENTSTREAM_PRELUDE + 4:
        return False
    total, headers = struct.unpack(">II", body[:8])
    return bool(16 <= total <= len(body) and headers <= total - 16)


def event_ends(body: bytes, framing: Framing) -> list[int]:
    """
    Return the end offset of every event in ``body``, in order. The last offset is always
    ``len(body)``: trailing bytes that do not complete an event form a last, partial event.
    An empty body has no events.
    """
    if not body:
        return []
    if framing is Framing.SSE:
        ends = [m.end() for m in _SSE_EVENT_END.finditer(body)]
    elif framing is Framing.NDJSON:
        ends = [m.end() for m in _LINE_END.finditer(body)]
    elif framing is Framing.JSON_ARRAY:
        ends = _json_array_ends(body)
    elif framing is Framing.EVENTSTREAM:
        ends = _eventstream_ends(body)
    else:
        ends = []
    if not ends or ends[-1] != len(body):
        ends.append(len(body))
    return ends


def split_events(body: bytes, framing: Framing) -> list[bytes]:
    """Cut ``body`` into its events (see :func:`event_ends`)."""
    start = 0
    events = []
    for end in event_ends(body, framing):
        events.append(body[start:end])
        start = end
    return events


def default_chunks(body: bytes, content_type: str | None, *, url: str | None = None) -> list[bytes]:
    """
    The chunks a body is replayed as when its cassette holds no chunk boundaries (a hand-written
    or vcrpy cassette): one per event of its framing, else the whole body as one chunk.
    """
    framing = detect_framing(content_type, body, url=url)
    if framing is not Framing.NONE:
        return split_events(body, framing)
    return [body] if body else []


def _json_array_ends(body: bytes) -> list[int]:
    # Ends after each element at depth 1: Gemini writes `[{...}`, then `,\r\n{...}` per element,
    # then `]`, so a separator travels with the element after it.
    ends: list[int] = []
    depth = 0
    in_string = False
    skip_until = 0  # a backslash in a string escapes the byte after it
    for match in _JSON_TOKEN.finditer(body):
        if match.start() < skip_until:
            continue
        token = match.group()
        if in_string:
            if token == b"\\":
                skip_until = match.end() + 1
            elif token == b'"':
                in_string = False
            continue
        if token == b'"':
            in_string = True
        elif token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
            if depth == 1 and token == b"}":
                ends.append(match.end())
    return ends


def _eventstream_ends(body: bytes) -> list[int]:
    ends: list[int] = []
    offset = 0
    while offset + _EVENTSTREAM_PRELUDE <= len(body):
        (total,) = struct.unpack(">I", body[offset : offset + 4])
        if total < 16 or offset + total > len(body):
            break
        offset += total
        ends.append(offset)
    return ends


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One server-sent event, decoded as the WHATWG spec says (fields, not bytes)."""

    event: str | None = None
    data: str | None = None
    id: str | None = None
    retry: int | None = None
    comments: tuple[str, ...] = field(default=())


def parse_sse_event(block: str) -> SSEEvent:
    """Decode one SSE event block (the text between two blank lines)."""
    # See https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
    event: str | None = None
    data: list[str] = []
    event_id: str | None = None
    retry: int | None = None
    comments: list[str] = []
    # A byte order mark can only start a stream, so only the first block has one; the spec's
    # decoder drops it, and left in place it would hide the first field's name.
    block = block.removeprefix("\ufeff")
    for line in block.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            continue
        if line.startswith(":"):
            comments.append(line[1:].removeprefix(" "))
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():  # str.isdigit takes "²" too
            retry = int(value)
    return SSEEvent(
        event=event,
        data="\n".join(data) if data else None,
        id=event_id,
        retry=retry,
        comments=tuple(comments),
    )
