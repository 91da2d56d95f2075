"""
AWS eventstream bodies (``application/vnd.amazon.eventstream``, Bedrock's streams) stored as
readable frames, and turned back into the exact recorded bytes.

A frame on the wire is a prelude (total length, headers length, the prelude's CRC32), typed
headers, a payload and the CRC32 of all that. The stored form keeps what a reviewer reads and
derives the rest: each frame's headers in order (``:event-type``, ``:content-type``,
``:message-type``, ...) and its payload, as JSON data (``payload``), text (``text``) or bytes
(``binary``). Lengths and checksums are recomputed on load. A JSON payload is written back in its
``json_format`` (``compact``, Bedrock's, when absent). In an InvokeModel ``chunk`` frame the
base64 ``bytes`` field is shown as the JSON it encodes, and ``bytes_format`` names that JSON's
serialisation.

A body is stored this way only when every frame is whole, has valid checksums and string headers
only, and the stored form gives back the body byte for byte, checksums included; any other body
stays bytes (``!!binary``), so nothing is ever lost. Pure functions, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from ._bodies import JSON_FORMATS, dump_json, store_body
from ._values import binary_checked

__all__ = [
    "DEFAULT_FRAME_JSON",
    "EventStreamFrame",
    "encode_frame",
    "frames_data",
    "frames_to_bytes",
    "read_frames",
    "scrub_frames",
    "store_frames",
]

#: The JSON serialisation of a payload whose frame names none: Bedrock's own.
DEFAULT_FRAME_JSON = "compact"
_STRING = 7  # the header value type of a UTF-8 string (a 2-byte length first)
_MAX_NAME_BYTES = 255
_MAX_VALUE_BYTES = 65_535


def encode_frame(headers: Sequence[tuple[str, str]] | Mapping[str, str], payload: bytes) -> bytes:
    """One eventstream frame with string headers, in order, and both checksums."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    head = b"".join(
        struct.pack(">B", len(name.encode()))
        + name.encode()
        + b"\x07"
        # Each header value is at most 64 KiB: the wire gives its length two bytes.
        + struct.pack(">H", len(value.encode()))
        + value.encode()
        for name, value in pairs
    )
    prelude = struct.pack(">II", 16 + len(head) + len(payload), len(head))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + head + payload
    return message + struct.pack(">I", zlib.crc32(message))


def read_frames(body: bytes) -> list[tuple[list[tuple[str, str]], bytes]] | None:
    """
    Every frame of ``body`` as ``(headers, payload)``, or None unless the body is whole frames
    with valid checksums and string headers only (what the stored form can give back).
    """
    frames = []
    offset = 0
    while offset < len(body):
        if len(body) - offset < 16:
            return None
        total, head_length = struct.unpack(">II", body[offset : offset + 8])
        (prelude_crc,) = struct.unpack(">I", body[offset + 8 : offset + 12])
        end = offset + total
        if total < 16 or end > len(body) or 16 + head_length > total:
            return None
        if zlib.crc32(body[offset : offset + 8]) != prelude_crc:
            return None
        if zlib.crc32(body[offset : end - 4]) != struct.unpack(">I", body[end - 4 : end])[0]:
            return None
        headers = _string_headers(body[offset + 12 : offset + 12 + head_length])
        if headers is None:
            return None
        frames.append((headers, body[offset + 12 + head_length : end - 4]))
        offset = end
    return frames


def _string_headers(head: bytes) -> list[tuple[str, str]] | None:
    headers: list[tuple[str, str]] = []
    position = 0
    try:
        while position < len(head):
            size = head[position]
            name = head[position + 1 : position + 1 + size].decode("utf-8")
            if head[position + 1 + size] != _STRING:
                return None
            (count,) = struct.unpack(">H", head[position + 2 + size : position + 4 + size])
            start = position + 4 + size
            value = head[start : start + count]
            if len(value) != count or len(name.encode()) != size:
                return None
            headers.append((name, value.decode("utf-8")))
            position = start + count
    except (IndexError, struct.error, UnicodeDecodeError):
        return None
    names = [name for name, _ in headers]
    return headers if len(set(names)) == len(names) else None


def scrub_frames(
    body: bytes, scrub: Callable[[bytes], bytes]
) -> tuple[bytes, list[tuple[int, int, int]]] | None:
    """
    ``body`` with ``scrub`` applied to each frame's payload, and to the model event an InvokeModel
    chunk carries in base64, every frame that changed rebuilt with its lengths and checksums;
    and ``(start, end, new length)`` of each such frame. None when ``body`` is not whole valid
    frames: scrubbing it as plain bytes then is all there is to do.
    """
    frames = read_frames(body)
    if frames is None:
        return None
    out: list[bytes] = []
    spans: list[tuple[int, int, int]] = []
    offset = 0
    for headers, payload in frames:
        original = encode_frame(headers, payload)  # the recorded bytes: string headers re-encode as read
        scrubbed = scrub(_scrub_base64(payload, scrub))
        if scrubbed == payload:
            out.append(original)
        else:
            rebuilt = encode_frame(headers, scrubbed)
            spans.append((offset, offset + len(original), len(rebuilt)))
            out.append(rebuilt)
        offset += len(original)
    return b"".join(out), spans


def _scrub_base64(payload: bytes, scrub: Callable[[bytes], bytes]) -> bytes:
    # A key in the model's own event is base64 in the frame, where no pattern finds it.
    if b'"bytes"' not in payload:
        return payload
    try:
        value = json.loads(payload)
        encoded = value["bytes"]
        inner = base64.b64decode(encoded, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        return payload
    cleaned = scrub(inner)
    if cleaned == inner or not isinstance(encoded, str) or encoded.encode() not in payload:
        return payload
    return payload.replace(encoded.encode(), base64.b64encode(cleaned), 1)


def store_frames(body: bytes) -> list[EventStreamFrame] | None:
    """
    The readable stored form of an eventstream ``body``, or None when it has none that gives
    back the same bytes, checksums included (see the module docstring).
    """
    frames = read_frames(body)
    if not frames:
        return None
    try:
        stored = [EventStreamFrame.model_validate(_store_frame(h, p)) for h, p in frames]
    except ValueError:  # pydantic's ValidationError included: a form that cannot be read back
        return None
    return stored if frames_to_bytes(stored) == body else None


def frames_data(frames: Sequence[EventStreamFrame]) -> list[dict[str, Any]]:
    """Stored frames as the plain data a cassette file holds (keys as given, extras kept)."""
    return [frame.model_dump(exclude_unset=True) for frame in frames]


def _store_frame(headers: list[tuple[str, str]], payload: bytes) -> dict[str, Any]:
    frame: dict[str, Any] = {"headers": dict(headers)}
    if not payload:
        return frame
    as_json = store_body(payload, content_type="application/json", crlf_as_lf=False)
    if as_json.is_parsed:
        value = as_json.parsed
        json_format = as_json.json_format or "spaced-ascii"
        frame["payload"] = value
        if json_format != DEFAULT_FRAME_JSON:
            frame["json_format"] = json_format
        inner = _decoded_bytes(value)
        if inner is not None:
            frame["payload"] = {**value, "bytes": inner[0]}
            frame["bytes_format"] = inner[1]
    elif isinstance(as_json.string, str):
        frame["text"] = as_json.string
    else:
        frame["binary"] = payload
    return frame


def _decoded_bytes(value: Any) -> tuple[Any, str] | None:
    # InvokeModelWithResponseStream: `{"bytes": "<base64 of the model's JSON event>", "p": ...}`.
    if not isinstance(value, dict) or not isinstance(value.get("bytes"), str):
        return None
    try:
        raw = base64.b64decode(value["bytes"], validate=True)
    except (binascii.Error, ValueError):
        return None
    inner = store_body(raw, content_type="application/json", crlf_as_lf=False)
    if not inner.is_parsed or base64.b64encode(raw).decode("ascii") != value["bytes"]:
        return None
    return inner.parsed, inner.json_format or "spaced-ascii"


def frames_to_bytes(frames: Sequence[EventStreamFrame]) -> bytes:
    """The wire bytes of stored frames: payloads serialised, lengths and checksums computed."""
    return b"".join(encode_frame(list(frame.headers.items()), frame.payload_bytes()) for frame in frames)


def _json_format(value: str | None) -> str | None:
    if value is not None and value not in JSON_FORMATS:
        raise PydanticCustomError(
            "json_format",
            "{value} is not a JSON format llmcassette knows ({known})",
            {"value": repr(value), "known": ", ".join(sorted(JSON_FORMATS))},
        )
    return value


def _header_sizes(headers: dict[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        if not 0 < len(name.encode()) <= _MAX_NAME_BYTES:
            raise PydanticCustomError(
                "eventstream_header",
                "header name {name} does not fit a frame: it must be 1 to {limit} bytes of UTF-8",
                {"name": repr(name[:80]), "limit": _MAX_NAME_BYTES},
            )
        if len(value.encode()) > _MAX_VALUE_BYTES:
            raise PydanticCustomError(
                "eventstream_header",
                "the value of header {name} does not fit a frame: it must be at most {limit} bytes",
                {"name": repr(name[:80]), "limit": _MAX_VALUE_BYTES},
            )
    return headers


_FORM_KEYS = ("payload", "text", "binary")


class EventStreamFrame(BaseModel):
    """One stored eventstream frame: headers in order, and the payload in one readable form."""

    model_config = ConfigDict(extra="allow")

    #: String headers in wire order (``:event-type``, ``:content-type``, ``:message-type``, ...).
    headers: Annotated[dict[str, str], AfterValidator(_header_sizes)] = Field(default_factory=dict)
    #: A JSON payload as data.
    payload: Any = None
    #: A payload that is UTF-8 text but not JSON.
    text: str | None = None
    #: A payload that is neither.
    binary: Annotated[bytes | None, BeforeValidator(binary_checked)] = None
    #: How ``payload`` is serialised (absent: ``compact``).
    json_format: Annotated[str | None, AfterValidator(_json_format)] = None
    #: Set when ``payload.bytes`` is shown as the JSON its base64 encodes: that JSON's serialisation.
    bytes_format: Annotated[str | None, AfterValidator(_json_format)] = None

    @model_validator(mode="after")
    def _one_form(self) -> EventStreamFrame:
        forms = [key for key in _FORM_KEYS if key in self.model_fields_set]
        if len(forms) > 1:
            raise PydanticCustomError(
                "eventstream_frame",
                "a frame holds its payload in one of `payload`, `text` and `binary`, and this one "
                "has {forms}; keep one",
                {"forms": " and ".join(f"`{form}`" for form in forms)},
            )
        if self.bytes_format is not None and not (
            "payload" in self.model_fields_set and isinstance(self.payload, dict) and "bytes" in self.payload
        ):
            raise PydanticCustomError(
                "eventstream_frame",
                "`bytes_format` says `payload.bytes` is shown decoded, but the frame's `payload` has "
                "no `bytes` key; delete `bytes_format` or add `payload.bytes`",
            )
        return self

    def payload_bytes(self) -> bytes:
        """The payload as sent."""
        if "payload" in self.model_fields_set:
            value = self.payload
            if self.bytes_format is not None:
                inner = dump_json(value["bytes"], self.bytes_format)
                value = {**value, "bytes": base64.b64encode(inner).decode("ascii")}
            return dump_json(value, self.json_format or DEFAULT_FRAME_JSON)
        if self.text is not None:
            return self.text.encode("utf-8")
        return self.binary or b""
