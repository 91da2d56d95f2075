"""
How a body's bytes are stored in a cassette, and back.

A body is kept in the most readable form that still gives back the exact recorded bytes:

- JSON as structured data under ``parsed_body``, with ``json_format`` naming the serialisation
  that reproduces the bytes (absent means ``json.dumps`` defaults, which is how pydantic-ai's
  cassettes read back);
- other text (SSE, NDJSON, plain text) as a string under ``body.string``;
- AWS eventstream frames as a list of readable frames (see :mod:`llmcassette._eventstream`);
- anything else (gzip, an eventstream body that cannot be stored so) as bytes, which YAML writes as
  ``!!binary`` base64.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from json.encoder import (  # type: ignore[attr-defined]
    c_make_encoder,
    encode_basestring,
    encode_basestring_ascii,
)
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ._eventstream import EventStreamFrame

__all__ = [
    "JSON_FORMATS",
    "MAX_JSON_DEPTH",
    "NOT_JSON",
    "StoredBody",
    "dump_json",
    "exact_json",
    "is_text",
    "json_value",
    "load_body",
    "store_body",
    "text_bytes",
]


@dataclass(frozen=True, slots=True)
class _JsonFormat:
    separators: tuple[str, str]
    indent: int | None
    ensure_ascii: bool
    newline: bool


def _formats() -> dict[str, _JsonFormat]:
    styles = {
        "compact": ((",", ":"), None),
        "spaced": ((", ", ": "), None),
        "indent2": ((",", ": "), 2),
    }
    table: dict[str, _JsonFormat] = {}
    for name, (separators, indent) in styles.items():
        for ascii_ in (False, True):
            for newline in (False, True):
                key = name + ("-ascii" if ascii_ else "") + ("+nl" if newline else "")
                table[key] = _JsonFormat(separators, indent, ascii_, newline)
    return table


#: Every serialisation llmcassette can name in ``json_format``.
JSON_FORMATS = _formats()
#: What an absent ``json_format`` means: plain ``json.dumps(value)``.
DEFAULT_JSON_FORMAT = "spaced-ascii"


def dump_json(value: Any, json_format: str | None) -> bytes:
    """Serialise ``value`` in the named format (see ``JSON_FORMATS``)."""
    name = json_format or DEFAULT_JSON_FORMAT
    found = _ENCODERS.get(name)
    if found is None:
        found = _ENCODERS[name] = _encoder(JSON_FORMATS[name])
    make, encoder, newline = found
    text = "".join(make(value, 0)) if make is not None else encoder.encode(value)
    if newline:
        text += "\n"
    return text.encode("utf-8")


_Encoder = tuple[Callable[[Any, int], Sequence[str]] | None, json.JSONEncoder, bool]


def _encoder(fmt: _JsonFormat) -> _Encoder:
    # The C encoder `json.dumps` makes for each call with these options (a fifth of writing a
    # 1 KB body), made once: `JSONEncoder.encode` made it anew each time (63k -> 51k
    # instructions a 1 KB body). Without the circular-reference check, which keeps state between
    # calls: the values written are parsed or checked JSON, which holds no cycle (one would end
    # in a RecursionError). An indented format has no C encoder.
    encoder = json.JSONEncoder(separators=fmt.separators, indent=fmt.indent, ensure_ascii=fmt.ensure_ascii)
    make = None
    if c_make_encoder is not None and fmt.indent is None:
        try:
            make = c_make_encoder(
                None,
                encoder.default,
                encode_basestring_ascii if fmt.ensure_ascii else encode_basestring,
                None,
                encoder.key_separator,
                encoder.item_separator,
                False,
                False,
                True,
            )
        except TypeError:  # (a Python whose C encoder takes other arguments: the encoder's own way)
            make = None
    return make, encoder, fmt.newline


# One encoder per format, as `json.dumps` keeps one for its defaults. An encoder keeps no state
# between calls.
_ENCODERS: dict[str, _Encoder] = {}


@dataclass(frozen=True, slots=True)
class StoredBody:
    """A body in its stored form: exactly one of ``string``, ``parsed`` and ``frames`` is meaningful."""

    string: str | bytes | None = None
    parsed: Any = None
    is_parsed: bool = False
    json_format: str | None = None
    #: ``"crlf"`` when every line break of the text was CRLF: the string holds LF, which YAML
    #: can show line by line, and the CRs are put back on load (Gemini streams end lines so).
    line_endings: Literal["crlf"] | None = None
    #: An AWS eventstream body as readable frames (``response.eventstream`` in the file).
    frames: list[EventStreamFrame] | None = None


_TEXT_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 13)) + b"\x7f"


def is_text(content: bytes) -> bool:
    """Tell whether ``content`` is UTF-8 text without control characters (tabs and newlines allowed)."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return len(content.translate(None, _TEXT_CONTROL)) == len(content)


def _candidate_formats(content: bytes) -> list[str]:
    # Try the likely serialisations first; each try is one json.dumps.
    if b"\n  " in content:
        bases = ["indent2"]
    elif b'": ' in content or b", " in content:
        bases = ["spaced", "compact"]
    else:
        bases = ["compact", "spaced"]
    has_escape = b"\\u" in content
    ascii_first = has_escape and content.isascii()
    suffixes = ["-ascii", ""] if ascii_first else ["", "-ascii"]
    newline = "+nl" if content.endswith(b"\n") else ""
    return [base + suffix + newline for base in bases for suffix in suffixes]


#: JSON nested deeper than this is kept as text, and matched as bytes: YAML's writer and reader,
#: and JSON's parser, writer and comparison, recurse once per level.
MAX_JSON_DEPTH = 100

# A \uD800-\uDFFF escape can name half a surrogate pair, which parses to a str no UTF-8 file holds.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _within_depth(value: Any, limit: int) -> bool:
    if isinstance(value, dict):
        return limit > 0 and all(_within_depth(v, limit - 1) for v in value.values())
    if isinstance(value, list):
        return limit > 0 and all(_within_depth(v, limit - 1) for v in value)
    return True


def _shallow(content: bytes, value: Any) -> bool:
    # Counting brackets is cheap and rules out depth for nearly every body.
    return content.count(b"[") + content.count(b"{") <= MAX_JSON_DEPTH or _within_depth(value, MAX_JSON_DEPTH)


#: What :func:`json_value` gives for a body it does not treat as JSON.
NOT_JSON: Any = object()


def json_value(content: bytes) -> Any:
    """
    ``content`` parsed as JSON, or :data:`NOT_JSON` when it is not JSON or is nested deeper than
    :data:`MAX_JSON_DEPTH` (what reads such a body compares its bytes instead).
    """
    try:
        value = json.loads(content)
    except (ValueError, RecursionError):
        return NOT_JSON
    return value if _shallow(content, value) else NOT_JSON


def _storable(content: bytes, value: Any) -> bool:
    # Checks that a parsed body can be written to YAML and read back; both are rare, so each is
    # guarded by a cheap test of the bytes first.
    if not _shallow(content, value):
        return False
    if _SURROGATE_ESCAPE.search(content):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


def exact_json(content: bytes) -> tuple[Any, str] | None:
    """
    ``content`` parsed as JSON with the name of the format (see ``JSON_FORMATS``) that writes it
    back byte for byte, or None when it is not JSON that can be stored structured and rebuilt.
    """
    try:
        value = json.loads(content)
    except (ValueError, RecursionError):
        return None
    formats = _candidate_formats(content) if _storable(content, value) else []
    for name in formats:
        if dump_json(value, name) == content:
            return value, name
    return None


def store_body(content: bytes, *, content_type: str | None = None, crlf_as_lf: bool = True) -> StoredBody:
    """Choose the readable stored form of ``content`` that reproduces it byte for byte."""
    if not content:
        return StoredBody(string="")
    ctype = (content_type or "").lower()
    if "vnd.amazon.eventstream" in ctype:
        from ._eventstream import store_frames  # only eventstream bodies need it

        frames = store_frames(content)
        if frames is not None:
            return StoredBody(frames=frames)
    stripped = content.lstrip()[:1]
    looks_json = stripped in (b"{", b"[") and ("json" in ctype or not ctype)
    if looks_json and "ndjson" not in ctype and "jsonl" not in ctype:
        found = exact_json(content)
        if found is not None:
            value, name = found
            fmt = None if name == DEFAULT_JSON_FORMAT else name
            return StoredBody(parsed=value, is_parsed=True, json_format=fmt)
    if is_text(content):
        text = content.decode("utf-8")
        if (
            crlf_as_lf
            and "\r\n" in text
            and "\r" not in text.replace("\r\n", "")
            and "\n" not in text.replace("\r\n", "")
        ):
            return StoredBody(string=text.replace("\r\n", "\n"), line_endings="crlf")
        return StoredBody(string=text)
    return StoredBody(string=content)


def load_body(stored: StoredBody) -> bytes:
    """Give back the bytes a stored body stands for."""
    if stored.is_parsed:
        return dump_json(stored.parsed, stored.json_format)
    if stored.frames is not None:
        from ._eventstream import frames_to_bytes

        return frames_to_bytes(stored.frames)
    return text_bytes(stored.string, stored.line_endings)


def text_bytes(string: str | bytes | None, line_endings: Literal["crlf"] | None) -> bytes:
    """The bytes of a body stored as ``string`` with ``line_endings`` (see :class:`StoredBody`)."""
    if string is None:
        return b""
    if isinstance(string, bytes):
        return string
    text = string.replace("\n", "\r\n") if line_endings == "crlf" else string
    return text.encode("utf-8")
