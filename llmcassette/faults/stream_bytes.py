"""
Stream faults that work on the bytes: one event's JSON broken, one eventstream frame's checksum
broken, or the chunk boundaries moved.
"""

from __future__ import annotations

import json
import random
import re
import struct
import zlib
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from .._exchange import Playback
from .._framing import Framing, event_ends
from ._base import MAX_COUNT, MAX_SIZE_BYTES, FaultContext, StreamFault
from .stream_wire import (
    StreamView,
    finish,
    framing_of,
    line_spans,
    middle,
    plain,
    read_delays,
    regroup,
    splice,
    view,
)

__all__ = ["BadCrc", "MalformedChunk", "Rechunk"]

_BOM = b"\xef\xbb\xbf"
# A well-formed UTF-8 multi-byte character (binary data that only looks like one is cut too,
# which is harmless: the bytes do not change).
_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
# A CR or LF followed by another: between CR and LF, and between the line breaks of an event end.
_BREAK_PAIR = re.compile(rb"[\r\n](?=[\r\n])")


class MalformedChunk(StreamFault):
    """
    Event ``event``'s JSON payload is cut in half, so it is no longer valid JSON.

    Only the JSON text changes: the ``data:`` prefix, the ``event:`` line and the blank line of an
    SSE event, or the newline of an NDJSON line, stay, so the client's SSE or NDJSON layer still
    delivers the event and its JSON parser fails on it (openai, anthropic and ollama raise
    ``json.JSONDecodeError``, google-genai ``UnknownApiResponseError``). Every other byte and chunk
    boundary is as recorded. Events are counted from 1 and the terminator is not one of them: a
    count past the last event breaks the last one. An eventstream frame gets its payload cut and
    its lengths and checksums redone, so only the JSON inside is bad. A non-streamed JSON body is
    cut in half the same way.
    """

    name = "malformed_chunk"
    summary = "event N's JSON payload is cut in half (the framing around it stays intact)"
    example = "malformed_chunk:event=2"

    event: int | None = Field(
        default=None,
        ge=1,
        le=MAX_COUNT,
        description="which event to break, from 1; default: the middle event (half of them, rounded up)",
    )

    def apply(self, playback: Playback, context: FaultContext) -> Playback:
        playback = plain(playback)
        stream = view(playback, context)
        body = stream.body
        if not stream.streamed:
            start, end = _strip(body, 0, len(body), b"")
        elif stream.events:
            count = stream.content or len(stream.events)
            number = self.event if self.event is not None else max(1, stream.default_count())
            start, end = _payload(stream, min(number, count) - 1)
        else:
            return playback
        original = body[start:end]
        if stream.framing is Framing.EVENTSTREAM:
            new = _broken_frame(original)
        else:
            new = _broken(original)
        if new == original:
            return playback
        chunks, delays = splice(playback.chunks, read_delays(playback), start, end, new)
        return finish(playback, chunks, delays)


def _strip(body: bytes, start: int, end: int, lead: bytes) -> tuple[int, int]:
    # The span without surrounding whitespace (and JSON-array punctuation before it).
    while start < end and body[start] in b" \t\r\n" + lead:
        start += 1
    while end > start and body[end - 1] in b" \t\r\n":
        end -= 1
    return start, end


def _payload(stream: StreamView, index: int) -> tuple[int, int]:
    """The byte span of the JSON text of payload event ``index``."""
    body = stream.body
    start, end = stream.events[index]
    if stream.framing is Framing.SSE:
        for line_start, line_end in line_spans(body, start, end):
            position = line_start + 3 if line_start == 0 and body.startswith(_BOM) else line_start
            if body.startswith(b"data:", position, line_end):
                position += 5
                if body.startswith(b" ", position, line_end):
                    position += 1
                return position, line_end
        return end, end  # a bare `data` line: its value is already empty, which is not JSON
    if stream.framing is Framing.JSON_ARRAY:
        return _strip(body, start, end, b"[,")
    if stream.framing is Framing.NDJSON:
        return _strip(body, start, end, b"")
    return start, end


def _parses(text: bytes) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _broken(text: bytes) -> bytes:
    """The first half of a JSON text, made sure not to be JSON itself."""
    half = text[: middle(text)]
    # Half a number (`12` of `1234`) can still parse; anything after a whole value cannot.
    return half + b"}" if _parses(half) else half


def _broken_frame(frame: bytes) -> bytes:
    # An AWS eventstream frame: total length, headers length, prelude CRC, headers, payload, CRC.
    if len(frame) < 16:
        return frame
    total, headers_length = struct.unpack(">II", frame[:8])
    if total != len(frame) or 12 + headers_length > total - 4:
        return frame
    headers = frame[12 : 12 + headers_length]
    payload = _broken(frame[12 + headers_length : total - 4])
    prelude = struct.pack(">II", 16 + headers_length + len(payload), headers_length)
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


class BadCrc(StreamFault):
    """
    Eventstream frame ``event`` arrives with a wrong checksum (Bedrock's streams).

    One checksum of that frame is inverted: the message CRC that ends it (``checksum=message``)
    or the prelude CRC after its two lengths (``checksum=prelude``). Every other byte, and every
    chunk boundary, is as recorded. The frames before it reach the client; botocore's decoder
    then raises ``botocore.eventstream.ChecksumMismatch``, for either checksum. Frames are
    counted from 1, the stream's last ones included; a count past the last frame breaks the
    last one. A body that is not an eventstream plays unchanged.
    """

    name = "bad_crc"
    summary = "eventstream frame N arrives with a wrong checksum (botocore: ChecksumMismatch)"
    example = "bad_crc:event=2"

    event: int | None = Field(
        default=None,
        ge=1,
        le=MAX_COUNT,
        description="which frame to break, from 1; default: the middle frame (half of them, rounded up)",
    )
    checksum: Literal["message", "prelude"] = Field(
        default="message", description="which checksum: message (the frame's last 4 bytes) or prelude"
    )

    def apply(self, playback: Playback, context: FaultContext) -> Playback:
        playback = plain(playback)
        stream = view(playback, context)
        if stream.framing is not Framing.EVENTSTREAM or not stream.events:
            return playback
        number = self.event if self.event is not None else max(1, stream.default_count())
        start, end = stream.events[min(number, len(stream.events)) - 1]
        if end - start < 16:  # a frame cut short has no checksum to break
            return playback
        at = end - 4 if self.checksum == "message" else start + 8
        body = bytearray(stream.body)
        body[at : at + 4] = bytes(b ^ 0xFF for b in body[at : at + 4])
        # Same length: the recorded chunks keep their boundaries and their delays.
        chunks = []
        position = 0
        for chunk in playback.chunks:
            chunks.append(bytes(body[position : position + len(chunk)]))
            position += len(chunk)
        return finish(playback, chunks, read_delays(playback))


class Rechunk(StreamFault):
    """
    The same bytes, cut into other chunks: the client's decoder must give the same events.

    ``mode=fixed``: chunks of ``size`` bytes (the default, 1, sends one byte per read).
    ``mode=random``: sizes drawn between ``min_size`` and ``max_size`` bytes from ``seed`` and the
    call number, so every run gets the same chunks and each retry other ones. ``mode=event``: one
    chunk per event (comment blocks are events here). ``mode=adversarial``: cuts inside every
    UTF-8 multi-byte character and between every two line-break bytes (so between CR and LF,
    and between the two newlines that end an SSE event), and nowhere else. The body, headers and
    ending never change; only the last chunk may be shorter than the size asked for. Recorded
    pauses (from ``slow``) move to the chunk that holds their first byte. A compressed body is
    cut as it is sent, compressed.
    """

    consumes_recording = True
    name = "rechunk"
    summary = "re-split the bytes: fixed size (down to 1 byte), random, per event, or adversarial"
    example = "rechunk:mode=random,seed=7"

    mode: Literal["fixed", "random", "event", "adversarial"] = Field(
        default="fixed", description="how to cut: fixed, random, event or adversarial"
    )
    size: int = Field(default=1, ge=1, le=MAX_SIZE_BYTES, description="chunk size in bytes (mode=fixed)")
    min_size: int = Field(
        default=1, ge=1, le=MAX_SIZE_BYTES, description="smallest chunk in bytes (mode=random)"
    )
    max_size: int = Field(
        default=16, ge=1, le=MAX_SIZE_BYTES, description="largest chunk in bytes (mode=random)"
    )

    @field_validator("max_size")
    @classmethod
    def _sizes_in_order(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_size")
        if low is not None and value < low:
            raise ValueError(f"max_size ({value}) is smaller than min_size ({low})")
        return value

    def apply(self, playback: Playback, context: FaultContext) -> Playback:
        body = playback.body
        bounds: list[int]
        if self.mode == "fixed":
            bounds = list(range(self.size, len(body), self.size))
        elif self.mode == "random":
            rng = random.Random(f"rechunk:{self.seed}:{context.call}")
            bounds = []
            position = rng.randint(self.min_size, self.max_size)
            while position < len(body):
                bounds.append(position)
                position += rng.randint(self.min_size, self.max_size)
        elif self.mode == "event":
            bounds = event_ends(body, framing_of(playback, context))
        else:
            bounds = adversarial_cuts(body)
        chunks, delays = regroup(playback.chunks, read_delays(playback), bounds)
        return finish(playback, chunks, delays)


def adversarial_cuts(body: bytes) -> list[int]:
    """Offsets inside every UTF-8 multi-byte character and between every two line-break bytes."""
    cuts = {i for m in _MULTIBYTE.finditer(body) for i in range(m.start() + 1, m.end())}
    cuts.update(m.end() for m in _BREAK_PAIR.finditer(body))
    return sorted(cuts)
