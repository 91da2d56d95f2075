"""
What the stream faults share: finding a played body's events, and editing its chunks.

A fault addresses a stream by *events*: the units a client's decoder hands on. Those are the SSE
events that carry a ``data`` field, NDJSON lines, JSON-array elements and eventstream frames;
comment-only SSE blocks (``: OPENROUTER PROCESSING``) and blank NDJSON lines sit between events and
are not counted. The events at the end that only say "the stream is complete" (``data: [DONE]``,
Anthropic's ``message_stop``, the Responses API's ``response.completed``, Ollama's ``"done": true``
line, or the profile's ``terminator``) form the *terminator*. In an eventstream (Bedrock) it is
the Converse stream's ``messageStop`` and ``metadata`` frames, or the InvokeModel ``chunk`` whose
base64 carries a terminating event (Claude's ``message_stop``).

Edits keep every recorded chunk boundary they do not have to move, and carry each chunk's extra
wait (``delays_ms``) along with it, so faults compose in any order.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .._exchange import Playback
from .._framing import Framing, detect_framing, event_ends, parse_sse_event
from ..providers._events import decode_event
from ._base import FaultContext

__all__ = [
    "is_terminal",
    "StreamView",
    "cut",
    "finish",
    "framing_of",
    "line_spans",
    "middle",
    "plain",
    "read_delays",
    "regroup",
    "splice",
    "split_at",
    "view",
]

_GENERIC = "generic"
# Named events that end a stream (Anthropic; OpenAI Responses). The Responses API's failure events
# end it too, so a truncated stream never keeps them.
_TERMINAL_EVENTS = frozenset({"message_stop", "response.completed", "response.incomplete", "response.failed"})
# Bedrock's ConverseStream ends with the stop reason, then the usage.
_TERMINAL_FRAMES = frozenset({"messageStop", "metadata"})
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_NEWLINES = re.compile(rb"\r\n|\r")


@dataclass(frozen=True)
class StreamView:
    """A played body cut into events, with the facts the faults need about them."""

    body: bytes
    framing: Framing
    #: ``(start, end)`` byte offsets of every event that carries a payload, in order.
    events: tuple[tuple[int, int], ...]
    #: How many of ``events`` come before the terminator (all of them when there is none).
    content: int

    @property
    def streamed(self) -> bool:
        return self.framing is not Framing.NONE

    def default_count(self) -> int:
        """The middle of the content events, rounded up, so even one event is kept."""
        return (self.content + 1) // 2

    def offset_after(self, after: int | None, *, keep_terminator: bool) -> int:
        """
        The byte offset just after the first ``after`` events (None: the middle). With
        ``keep_terminator`` false the count stops before the terminator. A count past the last
        event is the end of the body. A body without events has its middle byte as the only
        point besides the start: ``after=0`` is its start, anything else its middle.
        """
        if not self.streamed:
            return 0 if after == 0 or not self.body else middle(self.body)
        count = self.default_count() if after is None else after
        count = min(count, len(self.events) if keep_terminator else self.content)
        if count == 0:
            return 0
        if count >= len(self.events):
            return len(self.body)
        return self.events[count - 1][1]


def plain(playback: Playback) -> Playback:
    """
    ``playback`` with a gzip or deflate body decompressed (chunk by chunk, so boundaries stay) and
    its Content-Encoding dropped: faults edit the bytes the client reads, and the client decodes
    a body without Content-Encoding as it is. Other bodies come back unchanged.
    """
    encoding = (playback.header("content-encoding") or "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
    elif encoding == "deflate":
        decoder = zlib.decompressobj()
    else:
        return playback
    try:
        chunks = [decoder.decompress(chunk) for chunk in playback.chunks]
        if chunks:
            chunks[-1] += decoder.flush()
    except zlib.error:
        return playback
    headers = tuple((k, v) for k, v in playback.headers if k.lower() != "content-encoding")
    return finish(replace(playback, headers=headers), chunks, read_delays(playback))


def view(playback: Playback, context: FaultContext) -> StreamView:
    """Cut ``playback``'s body into events (see :func:`framing_of` for how they are found)."""
    body = playback.body
    framing = framing_of(playback, context)
    if framing is Framing.NONE:
        return StreamView(body, framing, (), 0)
    events: list[tuple[int, int]] = []
    start = 0
    for end in event_ends(body, framing):
        if _has_payload(body[start:end], framing):
            events.append((start, end))
        start = end
    content = len(events)
    profile_end = _normalise(context.profile.terminator or b"")
    for position, (start, end) in enumerate(events):
        if is_terminal(body[start:end], framing, profile_end):
            content = position
            break
    return StreamView(body, framing, tuple(events), content)


def framing_of(playback: Playback, context: FaultContext) -> Framing:
    """
    The framing the client reads the body with: the response's content type when it has one
    (it is what the client goes by: Ollama's OpenAI endpoint answers SSE under the Ollama
    profile), else the body's own look, else the profile's framing for a streamed request.
    """
    ctype = playback.header("content-type")
    detected = detect_framing(ctype, playback.body, url=context.request.url)
    if detected is not Framing.NONE or ctype:
        return detected
    if context.streaming and context.profile.name != _GENERIC:
        return context.profile.framing
    return Framing.NONE


def _has_payload(event: bytes, framing: Framing) -> bool:
    if framing is Framing.SSE:
        return parse_sse_event(event.decode("utf-8", "replace")).data is not None
    if framing in (Framing.NDJSON, Framing.JSON_ARRAY):
        return bool(event.strip(b" \t\r\n[],"))
    return bool(event)


def _normalise(event: bytes) -> bytes:
    return _NEWLINES.sub(b"\n", event).strip()


def is_terminal(event: bytes, framing: Framing, profile_end: bytes) -> bool:
    """Whether ``event`` only says the stream is complete (``[DONE]``, ``message_stop``, ``done: true``)."""
    if profile_end and _normalise(event) == profile_end:
        return True
    if framing is Framing.SSE:
        sse = parse_sse_event(event.decode("utf-8", "replace"))
        data = (sse.data or "").strip()
        if data == "[DONE]" or sse.event in _TERMINAL_EVENTS:
            return True
        if not any(name in data for name in _TERMINAL_EVENTS):  # most events: no need to parse them
            return False
        parsed = _json(data.encode())
        return isinstance(parsed, dict) and parsed.get("type") in _TERMINAL_EVENTS
    if framing is Framing.EVENTSTREAM:
        frame = decode_event(event, framing)
        if frame is None or frame.exception:
            return False
        if frame.name in _TERMINAL_FRAMES:
            return True
        return frame.type.startswith("chunk/") and frame.type[len("chunk/") :] in _TERMINAL_EVENTS
    if framing in (Framing.NDJSON, Framing.JSON_ARRAY) and b'"done"' in event:
        parsed = _json(event.strip(b" \t\r\n[],"))
        return isinstance(parsed, dict) and parsed.get("done") is True
    return False


def _json(text: bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def line_spans(body: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """``(start, end)`` of every line in ``body[start:end]``, without its line break."""
    spans = []
    position = start
    for match in _LINE_BREAK.finditer(body, start, end):
        spans.append((position, match.start()))
        position = match.end()
    if position < end:
        spans.append((position, end))
    return spans


def middle(data: bytes) -> int:
    """The middle offset of ``data``, moved back to the start of a UTF-8 character."""
    position = len(data) // 2
    while 0 < position < len(data) and 0x80 <= data[position] < 0xC0:
        position -= 1
    return position


# -- chunk edits -------------------------------------------------------------------------------
# Chunks travel with their delays: ``delays[i]`` is the extra wait before ``chunks[i]``.

Chunks = list[bytes]
Delays = list[float]


def read_delays(playback: Playback) -> Delays:
    """The playback's per-chunk delays, as one number per chunk (0 for none)."""
    delays = playback.delays_ms
    if delays is None or len(delays) != len(playback.chunks):
        return [0.0] * len(playback.chunks)
    return list(delays)


def finish(
    playback: Playback, chunks: Sequence[bytes], delays: Sequence[float], *, keep_length: bool = False
) -> Playback:
    """
    ``playback`` with these chunks and delays. Its Content-Length follows the new body unless
    ``keep_length`` (a server that drops the connection had announced the whole body).
    """
    kept = [(chunk, delay) for chunk, delay in zip(chunks, delays, strict=True) if chunk]
    new_chunks = tuple(chunk for chunk, _ in kept)
    new_delays = tuple(delay for _, delay in kept)
    base = replace(playback, chunks=new_chunks) if keep_length else playback.with_body(new_chunks)
    return replace(base, delays_ms=new_delays if any(new_delays) else None)


def cut(chunks: Sequence[bytes], delays: Sequence[float], offset: int) -> tuple[Chunks, Delays]:
    """The first ``offset`` bytes, in their recorded chunks (the last one shortened)."""
    out: Chunks = []
    out_delays: Delays = []
    position = 0
    for chunk, delay in zip(chunks, delays, strict=True):
        if position >= offset:
            break
        out.append(chunk[: offset - position])
        out_delays.append(delay)
        position += len(chunk)
    return out, out_delays


def split_at(chunks: Sequence[bytes], delays: Sequence[float], offset: int) -> tuple[Chunks, Delays, int]:
    """
    The chunks with a boundary at ``offset`` (the chunk that straddles it is cut in two, the
    second part without delay), and the index of the chunk that starts there.
    """
    out: Chunks = []
    out_delays: Delays = []
    index = -1
    position = 0
    for chunk, delay in zip(chunks, delays, strict=True):
        if not chunk:
            continue
        if position < offset < position + len(chunk):
            out += [chunk[: offset - position], chunk[offset - position :]]
            out_delays += [delay, 0.0]
            index = len(out) - 1
        else:
            if position == offset:
                index = len(out)
            out.append(chunk)
            out_delays.append(delay)
        position += len(chunk)
    return out, out_delays, len(out) if index < 0 else index


def splice(
    chunks: Sequence[bytes], delays: Sequence[float], start: int, end: int, new: bytes
) -> tuple[Chunks, Delays]:
    """
    Replace bytes ``start:end`` with ``new`` as :func:`llmcassette._exchange.replace_span` does
    (the chunk where the span starts takes the replacement, chunks wholly inside the span go),
    and carry the delay of a chunk that goes to the next chunk that stays.
    """
    out: Chunks = []
    out_delays: Delays = []
    carry = 0.0
    position = 0
    placed = False
    for chunk, delay in zip(chunks, delays, strict=True):
        chunk_start, chunk_end = position, position + len(chunk)
        position = chunk_end
        if chunk_end <= start or (chunk_start >= end and placed):
            piece = chunk
        else:
            before = chunk[: max(0, start - chunk_start)] if chunk_start < start else b""
            after = chunk[max(0, end - chunk_start) :] if chunk_end > end else b""
            piece = before + (b"" if placed else new) + after
            placed = True
        if piece:
            out.append(piece)
            out_delays.append(delay + carry)
            carry = 0.0
        else:
            carry += delay
    if not placed:
        out.append(new)
        out_delays.append(carry)
    return out, out_delays


def regroup(chunks: Sequence[bytes], delays: Sequence[float], bounds: Sequence[int]) -> tuple[Chunks, Delays]:
    """
    The same bytes cut at ``bounds`` (offsets, in any order) instead. Each recorded delay moves to
    the new chunk that holds the first byte of its chunk.
    """
    body = b"".join(chunks)
    edges = sorted({0, len(body), *(b for b in bounds if 0 < b < len(body))})
    out = [body[a:b] for a, b in zip(edges, edges[1:], strict=False)]
    out_delays = [0.0] * len(out)
    position = 0
    index = 0
    for chunk, delay in zip(chunks, delays, strict=True):
        if delay and chunk:
            while edges[index + 1] <= position:
                index += 1
            out_delays[index] += delay
        position += len(chunk)
    return out, out_delays
