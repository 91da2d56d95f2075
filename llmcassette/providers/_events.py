"""
Recorded response bodies read back as events: the one decoder of the providers' wire formats.
Profile summaries (``inspect``), snapshots and shapes (``diff``) all read bodies through it.

A body is cut by its framing (see :mod:`llmcassette._framing`), then each piece is decoded:

- SSE: every event that carries data, with its ``event:`` name. Comments (keep-alives) and
  events without data are not events, as for a browser, which dispatches nothing for them.
  ``data: [DONE]`` is the ``DONE`` marker.
- NDJSON: every line that is not blank.
- JSON array: every element, read one by one so that a cut array still gives those that arrived
  whole (Gemini's ``streamGenerateContent`` without ``alt=sse``).
- AWS eventstream: every frame, named by its ``:event-type`` header (``:exception-type`` for an
  exception frame). A ``chunk`` frame is the model event its base64 ``bytes`` carry (Bedrock's
  InvokeModel streams); a frame cut short is not JSON.
- none (a plain body): the whole body as one event, or one event per element of a top-level
  JSON array; a blank body has none.

Each payload is parsed as JSON, and is ``NOT_JSON`` when it is not. An event's ``type`` says what
kind of event it is: its wire name, else its JSON ``type`` or ``object``
(``chat.completion.chunk``), else ``(untyped)`` (Gemini, Ollama). The marker is ``[DONE]``, a
chunk carrying a typed event is ``chunk/<type>`` (``chunk/message_start``), and a cut frame is
``(cut frame)``.

:func:`decode_event` reads one piece as the framing cuts it (one SSE block, NDJSON line,
array element or frame): the provider profiles' terminator checks read the events they are handed
through it, so that a wire format is understood here only.

Everything here is pure (bytes in, events out) and forgiving: a damaged body gives the events
that arrived, never an exception.
"""

from __future__ import annotations

import base64
import binascii
import enum
import gzip
import json
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._framing import Framing, parse_sse_event, split_events

__all__ = [
    "DONE",
    "NOT_JSON",
    "Event",
    "decode_body",
    "decode_event",
    "decode_events",
    "decode_frame",
    "parse_json",
]


class _Marker(enum.Enum):
    NOT_JSON = "not JSON"
    DONE = "[DONE]"


#: The value of an event whose payload is not JSON (or a frame cut short).
NOT_JSON: Final[Any] = _Marker.NOT_JSON
#: The value of the ``data: [DONE]`` event that ends OpenAI-style streams.
DONE: Final[Any] = _Marker.DONE

_UNTYPED = "(untyped)"


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded event of a recorded body."""

    #: What kind of event it is (see the module docstring).
    type: str
    #: The parsed JSON payload; ``NOT_JSON`` when it is not JSON, ``DONE`` for ``data: [DONE]``.
    value: Any
    #: The SSE ``event:`` field or the frame's event (or exception) type, as sent; None without one.
    name: str | None = None
    #: An eventstream exception frame: the provider's error, sent inside a 200 stream.
    exception: bool = False


def decode_body(body: bytes) -> bytes:
    """The body with a gzip content encoding undone (recordings keep the wire bytes)."""
    if body[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(body)
        except (OSError, EOFError, zlib.error):
            return body
    return body


def parse_json(data: bytes | str | None) -> Any:
    """``data`` parsed as JSON, or ``NOT_JSON`` (also for None)."""
    if data is None:
        return NOT_JSON
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return NOT_JSON


def decode_events(body: bytes, framing: Framing) -> list[Event]:
    """The events of ``body`` (content encoding already undone) read with ``framing``, in order."""
    if framing is Framing.NONE:
        if not body.strip():
            return []
        value = parse_json(body)
        return [_typed(item) for item in (value if isinstance(value, list) else [value])]
    pieces = body.splitlines() if framing is Framing.NDJSON else split_events(body, framing)
    return [event for event in (decode_event(piece, framing) for piece in pieces) if event is not None]


def decode_event(piece: bytes, framing: Framing, *, named_without_data: bool = False) -> Event | None:
    """
    The event of one ``piece`` of a body as ``framing`` cuts it (an SSE block, an NDJSON line, an
    array element with its separators, an eventstream frame), or None when the piece carries
    none: a comment-only or data-less SSE block, a blank line or separator. A plain (``NONE``)
    piece is one JSON value, a top-level array included (:func:`decode_events` splits that).

    ``named_without_data``: an SSE block with an ``event:`` name but no data is an event valued
    ``NOT_JSON`` instead of none. A browser dispatches nothing for it, but the terminator checks
    have always taken a bare ``event: message_stop`` as the end of a stream, and still do.
    """
    if framing is Framing.SSE:
        return _sse_event(piece, named_without_data=named_without_data)
    if framing is Framing.EVENTSTREAM:
        return _frame_event(piece)
    if framing is Framing.JSON_ARRAY:
        # Gemini writes `[{...}`, then `\n,\r\n{...}` per element, then `\n]`: a piece carries the
        # separator before its element.
        piece = piece.strip().lstrip(b"[,").strip().rstrip(b"]")
    # strip(), not json.loads' own whitespace rule: a line padded with a form feed is still a line.
    piece = piece.strip()
    return _typed(parse_json(piece)) if piece else None


def _json_type(value: Any) -> str | None:
    if isinstance(value, Mapping):
        for key in ("type", "object"):
            if isinstance(value.get(key), str) and value[key]:
                return str(value[key])
    return None


def _typed(value: Any, name: str | None = None) -> Event:
    return Event(name or _json_type(value) or _UNTYPED, value, name)


def _sse_event(block: bytes, *, named_without_data: bool) -> Event | None:
    event = parse_sse_event(block.decode("utf-8", errors="replace"))
    if event.data is None:
        return _typed(NOT_JSON, event.event) if named_without_data and event.event else None
    if event.data.strip() == "[DONE]":
        return Event("[DONE]", DONE, event.event)
    return _typed(parse_json(event.data), event.event)


def _frame_event(frame: bytes) -> Event:
    decoded = decode_frame(frame)
    if decoded is None:
        return Event("(cut frame)", NOT_JSON)
    headers, payload = decoded
    header = headers.get(":event-type") or headers.get(":exception-type")
    name = str(header) if header else None
    value = parse_json(payload) if payload else {}
    if name == "chunk" and isinstance(value, Mapping) and isinstance(value.get("bytes"), str):
        # InvokeModelWithResponseStream: the model's own event, base64-encoded in `bytes`.
        try:
            value = parse_json(base64.b64decode(value["bytes"], validate=True))
        except (binascii.Error, ValueError):
            value = NOT_JSON
        inner = _json_type(value)
        return Event(f"chunk/{inner}" if inner else name, value, name)
    return Event(name or _UNTYPED, value, name, headers.get(":message-type") == "exception")


# Value sizes of the eventstream header types that have no length prefix (bool true and false
# carry their value in the type itself).
_SIZES = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}


def decode_frame(frame: bytes) -> tuple[dict[str, Any], bytes] | None:
    """
    The headers and payload of one eventstream frame (checksums not verified), or None when it
    is cut short or its headers run past their end.
    """
    if len(frame) < 16:
        return None
    total, length = struct.unpack(">II", frame[:8])
    if total != len(frame) or 12 + length > total - 4:
        return None
    headers: dict[str, Any] = {}
    position, end = 12, 12 + length
    try:
        while position < end:
            size = frame[position]
            name = frame[position + 1 : position + 1 + size].decode("utf-8", errors="replace")
            kind = frame[position + 1 + size]
            position += 2 + size
            if kind in (6, 7):  # bytes or string: a 2-byte length first
                (count,) = struct.unpack(">H", frame[position : position + 2])
                value = frame[position + 2 : position + 2 + count]
                headers[name] = value.decode("utf-8", errors="replace") if kind == 7 else value
                position += 2 + count
            else:
                size = _SIZES.get(kind, 0)
                headers[name] = kind == 0 if kind in (0, 1) else frame[position : position + size]
                position += size
    except (IndexError, struct.error):
        return None
    return headers, frame[end:-4]
