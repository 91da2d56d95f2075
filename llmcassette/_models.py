"""
The cassette document: pydantic models that mirror the YAML file.

The layout is vcrpy's (``version: 1``, ``interactions[].request/response``, ``body: {string}``,
``status: {code, message}``, headers as ``{name: [values]}``) so that vcrpy, pytest-recording and
pydantic-ai cassettes load as they are. llmcassette adds, all optional:

- ``parsed_body`` (pydantic-ai's key) for JSON bodies, and ``json_format`` to rebuild their bytes;
- ``response.eventstream``: an AWS eventstream body as readable frames (schema 2);
- ``response.stream``: chunk lengths, arrival offsets and how the stream ended;
- ``response.elapsed_ms``: when the response head arrived;
- a response with no ``status``: the upstream closed or reset the connection before it answered
  (``stream: {end: error, error: ...}`` says how), which replay does again;
- ``llmcassette_schema`` on top: the version of these additions.

Unknown keys are kept (``extra="allow"``) so that a cassette loaded and saved again loses nothing.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from ._bodies import StoredBody, load_body
from ._eventstream import EventStreamFrame
from ._exceptions import CassetteFormatError
from ._values import MAX_TIME_MS, FormatModel, JsonFormat, JsonValue, TimeMs, binary_checked
from ._websocket._models import WebSocketSession

__all__ = [
    "MAX_TIME_MS",
    "HTTP_SCHEMA_VERSION",
    "SCHEMA_VERSION",
    "CassetteDocument",
    "Interaction",
    "RecordedRequest",
    "RecordedResponse",
    "ResponseBody",
    "Status",
    "StreamEnd",
    "StreamError",
    "StreamRecord",
    "message_content",
    "url_problem",
]

#: Version of llmcassette's additions to the vcrpy layout: the newest this llmcassette reads. A
#: file is written with the oldest version that holds what it uses (see ``schema_needed``):
#: schema 2 added AWS eventstream frames (``response.eventstream``) and WebSocket sessions
#: (``websocket``); a file with neither is written as schema 1, which older versions read too.
SCHEMA_VERSION = 2
#: The schema of a file that uses none of schema 2's additions.
HTTP_SCHEMA_VERSION = 1
#: The only vcrpy cassette version there is (vcrpy refuses any other).
VCRPY_VERSION = 1

#: A UTF-16 surrogate on its own: JSON can escape one, but no URL or header can carry it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: A header name: anything but a colon or a line break, which end it on the wire (and are read as
#: another header there). Odder names (a space) are played as written, as a hand-made head is.
_HEADER_NAME = re.compile(r"[^:\r\n]+\Z")
#: A line break in a header value that does not continue it: on the wire, the header's end, and
#: what follows another header (or the body). A break followed by a space or tab is an obsolete
#: line fold, which http.client hands over as it is, so recordings hold it.
_LINE_END = re.compile(r"\r(?!\n[ \t])|\n(?![ \t])")


#: Header names known to be sendable: a cassette's answers carry the same few again and again, so
#: each is checked once (the model's and the plain reader's checks alike, see `_name_problem`).
SENDABLE_NAMES: set[str] = set()


def _name_problem(name: str) -> str | None:
    if name in SENDABLE_NAMES:
        return None
    if _HEADER_NAME.match(name) is None:
        return (
            f"the header name {name!r} is empty or holds a colon or a line break, which end a name "
            "on the wire"
        )
    if len(SENDABLE_NAMES) < 4096:
        SENDABLE_NAMES.add(name)
    return None


def _surrogate_escape(text: str) -> str | None:
    # The first lone UTF-16 surrogate in `text`, written as JSON escapes it (`\ud800`), if any.
    found = _LONE_SURROGATE.search(text)
    return None if found is None else f"\\u{ord(found[0]):04x}"


def _value_problem(value: str) -> str | None:
    if ("\n" in value or "\r" in value) and (found := _LINE_END.search(value)) is not None:
        return (
            f"a header value holds {found[0]!r}, a line break that ends the header (only a break "
            "followed by a space or tab, a folded line, continues it)"
        )
    return None


def header_text_problem(name: str, values: list[str]) -> str | None:
    """
    Why a header of a recording (``name`` and its ``values``) is one no server or client can
    send, if it is: an empty name, one with a colon or a line break, or a value with a line break
    (CR or LF) that is not a fold, which no recording made off the wire can hold. Such a header
    would reach httpx as it is but be cut, or read as a second header, by the doors that play the
    head as bytes (requests, urllib3, botocore, ``serve``): replay would differ by client.
    """
    problem = _name_problem(name)
    for value in values:
        problem = problem or _value_problem(value)
    return problem


def _header_value(value: Any) -> str:
    # vcrpy writes header values that botocore sent as bytes as `!!binary`; they are header text,
    # decoded as latin-1 like recorded headers, so replay encodes them back to the same bytes.
    if isinstance(value, bytes):
        return binary_checked(value).decode("latin-1")
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple | set):
        # str() would send Python's spelling of it (`{'a': 1}`), which no server ever did.
        raise PydanticCustomError(
            "header_value",
            "a header value is text (or a list of texts), and this one holds a {kind}; quote it",
            {"kind": "mapping" if isinstance(value, dict) else "list"},
        )
    text = str(value)
    problem = _value_problem(text) if "\n" in text or "\r" in text else None
    if problem is not None:
        # Played as it is to httpx, but cut there, or read as a second header, by the doors that
        # write the head as bytes: replay would differ by client.
        raise PydanticCustomError("header_value", "{problem}; remove it", {"problem": problem})
    escape = _surrogate_escape(text)
    if escape is not None:
        # A JSON file can escape one ("\ud800"), but no header carries it: replay could not
        # encode it, and lint could not scan it.
        raise PydanticCustomError(
            "header_value",
            "a header value holds {escape}, half of a UTF-16 pair, which no header can carry; remove it",
            {"escape": escape},
        )
    return text


def _header_values(value: Any) -> list[str]:
    # vcrpy always writes lists; hand-edited files sometimes hold a bare value, or none at all
    # (`x-header:`), which YAML reads as null and which must not be replayed as the text "None".
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [_header_value(v) for v in value]
    return [_header_value(value)]


def _header_names(value: Any) -> Any:
    # One call for the mapping, not one a name: a cassette's every answer has a dozen headers.
    if type(value) is dict and not SENDABLE_NAMES.issuperset(value):
        for name in value:
            problem = _name_problem(name) if type(name) is str else None
            if problem is not None:
                raise PydanticCustomError(
                    "header_name", "{problem}; a name is written as it was sent", {"problem": problem}
                )
    return value


HeaderValues = Annotated[list[str], BeforeValidator(_header_values)]
#: See `header_text_problem`: every name and value a recording holds is one that can be sent.
Headers = Annotated[dict[str, HeaderValues], BeforeValidator(_header_names)]


def _body_text(value: Any) -> Any:
    # A `!!binary` body whose text was not base64 (see `binary_checked`); and half a UTF-16 pair
    # ("\ud800"), which a JSON file can escape in a body's text but UTF-8 cannot encode, so replay
    # could not send the body (a UnicodeEncodeError from inside the door).
    if type(value) is not str:
        return binary_checked(value)
    if not value.isascii():
        escape = _surrogate_escape(value)
        if escape is not None:
            raise PydanticCustomError(
                "body_text",
                "the body holds {escape}, half of a UTF-16 pair, which no bytes can carry; remove it",
                {"escape": escape},
            )
    return value


def _request_body(value: Any) -> Any:
    # vcrpy stores request bodies bare; a few writers use the response's `{string: ...}` shape.
    if isinstance(value, dict) and set(value) == {"string"}:
        return _body_text(value["string"])
    if isinstance(value, dict | list):
        # vcrpy's aiohttp stub stores the value given as `json=` itself: the body aiohttp sent
        # for it is its `json.dumps` (aiohttp's default serializer), as matching compares it.
        try:
            return json.dumps(value)
        except (TypeError, ValueError):  # (a YAML value JSON has no form for: refused as it was)
            return value
    return _body_text(value)


@functools.lru_cache(maxsize=1024)
def url_problem(url: str) -> str | None:
    """Why ``url`` does not split as matching, scrubbing and provider detection split it, if not."""
    # Cached: a cassette's requests go to a few URLs, and every load checks each one.
    escape = _surrogate_escape(url)
    if escape is not None:
        # A JSON file can escape one ("\ud800"); no request can send it, nor lint scan it.
        return f"it holds {escape}, half of a UTF-16 pair, which no URL can carry"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading the port is what checks it
    except ValueError as exc:
        return str(exc)
    if url == "*":
        return None  # (the request of an interaction that answers any request)
    if not parts.scheme and not parts.netloc and url.startswith("/"):
        # A path alone, written by hand: it matches when matching leaves out the scheme and host
        # (`match_on=("method", "path")`), and a miss names it under any other.
        return None
    if not parts.scheme or not parts.hostname:
        # Every request a client sends names its scheme and host, so a recorded URL without them
        # (empty, `api.openai.com/v1`, `https:///v1`) matches nothing and replays nothing.
        shown = "it is empty" if not url.strip() else "it does not begin with a scheme and a host"
        return (
            f"{shown}; a recorded URL is absolute, as the client sent it "
            "(`https://api.openai.com/v1/chat/completions`), a path alone (`/v1/chat/completions`) "
            "to match on the path, or `*` for one that answers any request"
        )
    return None


def _parsable_url(value: str) -> str:
    # Matching, provider detection, serve and inspect all split the recorded URL; one that does
    # not split (an unclosed `[` of an IPv6 host, a port past 65535) is refused when the file
    # loads, as the interaction's own error, rather than as a ValueError from deep inside them.
    problem = url_problem(value)
    if problem is not None:
        raise PydanticCustomError("url_parsing", "is not a URL: {reason}", {"reason": problem})
    return value


#: An HTTP method is a token (RFC 9110, section 9.1); `*` answers any request.
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


#: Methods of the usual kind, which need no look.
_KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*"})


def method_problem(method: str) -> str | None:
    """Why ``method`` is not one a request can have, if it is not."""
    if _METHOD.match(method):
        return None
    return (
        f"{method!r} is not an HTTP method (a method is one word, such as GET or POST, or `*` for "
        "one that answers any request), so no request would match it"
    )


def _method(value: str) -> str:
    if value in _KNOWN_METHODS:
        return value
    problem = method_problem(value)
    if problem is not None:
        raise PydanticCustomError("method", "{problem}", {"problem": problem})
    return value


def _status_code(value: int) -> int:
    if not 100 <= value <= 599:
        shown = str(value) if len(str(value)) <= 20 else f"a {len(str(value))}-digit number"
        raise PydanticCustomError(
            "status_code", "{shown} is not an HTTP status; it must be from 100 to 599", {"shown": shown}
        )
    return value


def _vcrpy_version(value: int) -> int:
    if value != VCRPY_VERSION:
        raise PydanticCustomError(
            "version",
            "{value} is not a cassette version llmcassette reads; vcrpy's format is version {known}",
            {"value": value, "known": VCRPY_VERSION},
        )
    return value


def _schema_version(value: int | None) -> int | None:
    if value is not None and value > SCHEMA_VERSION:
        raise PydanticCustomError(
            "newer_schema",
            "schema {value} was written by a newer llmcassette (this one reads schema {known} and "
            "older); upgrade llmcassette to use this cassette",
            {"value": value, "known": SCHEMA_VERSION},
        )
    if value is not None and value < 1:
        raise PydanticCustomError(
            "schema", "{value} is not a schema version; they start at 1", {"value": value}
        )
    return value


_Model = FormatModel


def header_get(headers: Headers, name: str) -> str | None:
    """The first value of a header, looked up without regard to case."""
    lname = name.lower()
    for key, values in headers.items():
        if key.lower() == lname and values:
            return values[0]
    return None


class RecordedRequest(_Model):
    """The request side of an interaction."""

    method: Annotated[str, AfterValidator(_method)]
    #: The URL as sent (scrubbed); it must split into its parts (``*`` answers any request).
    uri: Annotated[str, AfterValidator(_parsable_url)]
    headers: Headers = Field(default_factory=dict)
    body: Annotated[str | bytes | None, BeforeValidator(_request_body)] = None
    parsed_body: JsonValue = None
    json_format: JsonFormat = None

    def stored_body(self) -> StoredBody:
        """The body in its stored form."""
        if "parsed_body" in self.model_fields_set:
            return StoredBody(parsed=self.parsed_body, is_parsed=True, json_format=self.json_format)
        return StoredBody(string=self.body)

    @property
    def content(self) -> bytes:
        """The request body's bytes."""
        return load_body(self.stored_body())


class Status(_Model):
    """HTTP status line of a recorded response."""

    code: Annotated[int, AfterValidator(_status_code)]
    message: str = ""


class ResponseBody(_Model):
    """vcrpy's body mapping: the body as a string, or bytes for binary bodies."""

    string: Annotated[str | bytes, BeforeValidator(_body_text)] = ""
    #: ``crlf`` when the stored text's line breaks stand for CRLF (see ``_bodies.StoredBody``).
    line_endings: Literal["crlf"] | None = None


class StreamEnd(enum.StrEnum):
    """How a recorded response stream ended."""

    #: The upstream sent the whole body.
    COMPLETE = "complete"
    #: The upstream failed mid-way (the error is in ``stream.error``); replay raises it again.
    ERROR = "error"
    #: The client closed the response before the upstream finished; the rest was never seen.
    CLOSED = "closed"


class StreamError(_Model):
    """The transport error that cut a recorded stream."""

    type: str
    message: str = ""


class StreamRecord(_Model):
    """Chunk boundaries and timing of a response body, without a second copy of the bytes."""

    #: Byte length of each chunk as the upstream delivered it, in order; they sum to the body length.
    chunks: list[int] | None = None
    #: Arrival time of each chunk, in milliseconds after the request was sent.
    offsets_ms: list[TimeMs] | None = None
    end: StreamEnd = StreamEnd.COMPLETE
    error: StreamError | None = None


def _headless(value: Any) -> Any:
    # A connection that failed before any response is stored without `status`: fill it in as None
    # here, so that every other response still has to name one ("Field required").
    if isinstance(value, dict) and "status" not in value:
        stream = value.get("stream")
        if isinstance(stream, dict) and stream.get("end") == StreamEnd.ERROR.value:
            return {**value, "status": None}
    return value


class RecordedResponse(_Model):
    """
    The response side of an interaction. Without ``status`` it is no response at all: the upstream
    closed or reset the connection before answering, and ``stream.error`` says how.
    """

    status: Status | None
    headers: Headers = Field(default_factory=dict)
    body: ResponseBody | None = None
    parsed_body: JsonValue = None
    json_format: JsonFormat = None
    #: When the response head arrived, in milliseconds after the request was sent.
    elapsed_ms: TimeMs | None = None
    stream: StreamRecord | None = None
    #: An AWS eventstream body as readable frames, in place of ``body`` (schema 2).
    eventstream: list[EventStreamFrame] | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_headless(cls, value: Any) -> Any:
        return _headless(value)

    @model_validator(mode="after")
    def _check_headless(self) -> RecordedResponse:
        if self.eventstream is not None and (
            "parsed_body" in self.model_fields_set or (self.body is not None and self.body.string)
        ):
            other = "parsed_body" if "parsed_body" in self.model_fields_set else "body"
            raise PydanticCustomError(
                "two_bodies",
                "the response has both `eventstream` and `{other}`, two bodies where one belongs; keep one",
                {"other": other},
            )
        if self.status is not None:
            return self
        if self.stream is None or self.stream.end is not StreamEnd.ERROR or self.stream.error is None:
            raise PydanticCustomError(
                "headless_response",
                "a response without `status` stands for a connection that failed before any "
                "answer, so it needs `stream: {end: error, error: {type, message}}` saying how",
            )
        has_body = (
            "parsed_body" in self.model_fields_set
            or (self.body is not None and self.body.string)
            or self.eventstream is not None
        )
        if self.headers or has_body or self.stream.chunks:
            raise PydanticCustomError(
                "headless_response",
                "a response without `status` (a connection that failed before any answer) has no "
                "headers, body or chunks; give it a status, or remove them",
            )
        return self

    @property
    def failed_before_head(self) -> bool:
        """True when the connection failed before any response: no status, head or body."""
        return self.status is None

    def stored_body(self) -> StoredBody:
        """The body in its stored form."""
        if "parsed_body" in self.model_fields_set:
            return StoredBody(parsed=self.parsed_body, is_parsed=True, json_format=self.json_format)
        if self.eventstream is not None:
            return StoredBody(frames=self.eventstream)
        if self.body is None:
            return StoredBody(string=None)
        return StoredBody(string=self.body.string, line_endings=self.body.line_endings)

    @property
    def content(self) -> bytes:
        """The response body's bytes, as the upstream sent them."""
        return load_body(self.stored_body())


class Interaction(_Model):
    """One request and the response it got; for a WebSocket handshake, the session that followed."""

    request: RecordedRequest
    response: RecordedResponse
    websocket: WebSocketSession | None = None

    @model_validator(mode="after")
    def _upgraded(self) -> Interaction:
        status = self.response.status
        if self.websocket is not None and (status is None or status.code != 101):
            raise PydanticCustomError(
                "websocket_status",
                "an interaction with a `websocket` session is a handshake the server accepted, so "
                "its response has status 101; a refused handshake is stored without `websocket`",
            )
        return self


class CassetteDocument(_Model):
    """A whole cassette file."""

    version: Annotated[int, AfterValidator(_vcrpy_version)] = VCRPY_VERSION
    llmcassette_schema: Annotated[int | None, AfterValidator(_schema_version)] = None
    interactions: list[Interaction] = Field(default_factory=list)

    def schema_needed(self) -> int:
        """The oldest schema that holds this document: what it is written with."""
        newer = any(i.response.eventstream is not None or i.websocket is not None for i in self.interactions)
        return SCHEMA_VERSION if newer else HTTP_SCHEMA_VERSION


def message_content(
    message: RecordedRequest | RecordedResponse, *, path: Path, index: int, side: str
) -> bytes:
    """
    The body bytes of one side (``request`` or ``response``) of interaction ``index``, or a
    :class:`CassetteFormatError` naming the file, interaction and field when they cannot be rebuilt
    (a parsed body written without ASCII escapes, holding half of a UTF-16 pair). Every reader of
    a recording's bytes takes them here: replay, matching, inspect, diff.
    """
    try:
        return message.content
    except ValueError:  # text that UTF-8 cannot hold (a lone surrogate from a `\\ud800` escape)
        raise CassetteFormatError(
            f"llmcassette: cassette {str(path)!r} is not valid: interaction {index}, field "
            f"`{side}.body`: the body is text that cannot be encoded as UTF-8. Fix the file by hand, or "
            "delete it and record the cassette again.",
            path=path,
            interaction=index,
            field=f"{side}.body",
        ) from None
