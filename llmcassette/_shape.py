"""
The structural shape of a recorded interaction: what stays the same when the same call is
recorded again, and changes when the provider changes its wire format.

A shape keeps, and ``llmcassette diff`` compares (see :mod:`llmcassette._shape_diff`):

- the request: method, path with ids and model names replaced (``/v1/responses/{id}``,
  ``/v1beta/models/{name}:streamGenerateContent``), query parameter names, and the JSON body's
  key paths with the types of their values;
- the response: status, media type (``text/event-stream``, without parameters), header names
  (lower-cased, values never), and how the body is framed (``none`` for a plain body, ``sse``,
  ``ndjson``, ``json-array``, ``eventstream``);
- a plain JSON body's key paths and value types; an error response is just such a body;
- a stream's event types in order of first appearance, the event it ends with, the key paths and
  value types of each event type, and how the recorded stream ended (``complete``, ``error`` with
  the error's type, ``closed``);
- a WebSocket session (framing ``websocket``): its messages are its events, each type named by
  its sender and event type (``server response.done``, see :mod:`llmcassette._session_view`),
  and how it ended (``closed by client: 1000``, ``dropped without a close frame``, ``open``).

Values are never kept: ids, timestamps, text, token counts and header values vary from one
recording to the next. Key paths collapse list positions (``choices[].delta.content``), so a list
has the union of its elements' shapes, and a path has the union of the types it was seen with
(``null|str``). Types are ``null``, ``bool``, ``number`` (int or float), ``str``, ``object``,
``array``, and ``text`` or ``bytes`` for a body or event that is not JSON.

Events, and their types, are as the decoder of the wire formats reads them (see
:mod:`llmcassette.providers._events`): an event's type is its SSE ``event:`` name, else its JSON
``type`` or ``object`` (``chat.completion.chunk``), else ``(untyped)`` (Gemini, Ollama); or
``[DONE]``, an eventstream frame's ``:event-type``, ``chunk/message_start``, ``(cut frame)``.
SSE comments (keep-alives) are left out, since how many arrive depends on how long the provider
took, and so are SSE events without data, which no client sees.

Some objects hold content whose keys are chosen by the caller or the model, not by the provider:
tool arguments and inputs, JSON schemas, metadata. Their keys would change with the content, so
objects under the keys in ``OPAQUE_KEYS`` count as ``object`` and are not looked into.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._framing import Framing, detect_framing
from ._models import CassetteDocument, Interaction, header_get
from ._session_view import read_close, read_messages, session_of
from ._transcript import message_content
from .providers._events import DONE, NOT_JSON, decode_body, decode_events, parse_json

__all__ = [
    "MAX_DEPTH",
    "OPAQUE_KEYS",
    "TRANSPORT_HEADERS",
    "Fields",
    "InteractionShape",
    "document_shapes",
    "interaction_shape",
    "json_fields",
    "type_name",
    "normalise_path",
    "type_union",
]

#: A key path (``choices[].delta.content``; ``""`` for the whole value) and the types seen there.
Fields = dict[str, frozenset[str]]

#: Keys whose object values are content, not structure (tool arguments, schemas, metadata).
OPAQUE_KEYS = frozenset(
    {
        "args",  # Gemini functionCall
        "arguments",  # Ollama tool calls (an object there)
        "input",  # Anthropic tool_use, Bedrock toolUse (the Responses API's list input is looked into)
        "input_schema",
        "inputSchema",
        "json_schema",
        "logit_bias",
        "metadata",
        "parameters",
        "responseSchema",
        "response_schema",
        "schema",
    }
)

#: Response headers whose presence depends on how the body was carried or recorded (its size,
#: compression, a CDN's mood), not on the provider's API: left out of shapes.
TRANSPORT_HEADERS = frozenset(
    {
        "age",
        "alt-svc",
        "cf-cache-status",
        "connection",
        "content-encoding",
        "content-length",
        "date",
        "keep-alive",
        "server-timing",
        "set-cookie",
        "transfer-encoding",
        "via",
    }
)

# Path segments after which a name chosen by the user follows (model, deployment, project).
_NAMED_AFTER = frozenset(
    {"deployments", "endpoints", "locations", "model", "models", "projects", "tunedModels"}
)
# An id: an optional prefix of letters (`resp_`, `msg-`), then 12+ letters and digits, at least one
# of them a digit (so words and dates stay); or a UUID.
_ID = re.compile(
    r"(?:[A-Za-z]+[_-])?(?=[A-Za-z]*\d)[A-Za-z0-9]{12,}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
)


def normalise_path(url: str) -> str:
    """The path of ``url`` with ids and user-chosen names replaced by ``{id}`` and ``{name}``."""
    path = urlsplit(url).path or url
    segments = path.split("/")
    out = []
    for position, segment in enumerate(segments):
        previous = segments[position - 1] if position else ""
        if previous in _NAMED_AFTER and segment:
            # Keep Gemini's method after the name (`{name}:streamGenerateContent`).
            _, colon, method = segment.partition(":")
            out.append("{name}" + colon + method)
        elif _ID.fullmatch(segment):
            out.append("{id}")
        else:
            out.append(segment)
    return "/".join(out)


def type_union(types: frozenset[str]) -> str:
    """The types of a key path as written in reports: sorted, joined with ``|``."""
    return "|".join(sorted(types))


def type_name(value: Any) -> str:
    """A value's JSON type as reports name it: ``null``, ``bool``, ``number``, ``str``, ``object``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    return "text" if value is NOT_JSON else type(value).__name__


#: How deep key paths go; deeper values count by their type only, so no body can exhaust the stack.
MAX_DEPTH = 64


def json_fields(value: Any, into: dict[str, set[str]] | None = None, prefix: str = "") -> dict[str, set[str]]:
    """Add the key paths of ``value`` and the types found at each to ``into`` (returned)."""
    fields: dict[str, set[str]] = {} if into is None else into
    _add_fields(value, fields, prefix, MAX_DEPTH)
    return fields


def _add_fields(value: Any, fields: dict[str, set[str]], prefix: str, depth: int) -> None:
    fields.setdefault(prefix, set()).add(type_name(value))
    if depth <= 0:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key in OPAQUE_KEYS and isinstance(item, Mapping):
                fields.setdefault(path, set()).add("object")
            else:
                _add_fields(item, fields, path, depth - 1)
    elif isinstance(value, list):
        for item in value:
            _add_fields(item, fields, f"{prefix}[]", depth - 1)


def _frozen(fields: dict[str, set[str]]) -> Fields:
    return {path: frozenset(types) for path, types in sorted(fields.items())}


@dataclass(frozen=True)
class InteractionShape:
    """The structure of one recorded interaction (see the module docstring)."""

    index: int
    method: str
    #: The request path with ids and names replaced; with ``method``, what pairs two recordings.
    path: str
    query: frozenset[str]
    request_fields: Fields
    #: None when the connection failed before any response (``stream_end`` says how).
    status: int | None
    media_type: str | None
    headers: frozenset[str]
    framing: str
    #: Key paths of a plain body (empty for a stream, or an empty body).
    body_fields: Fields = field(default_factory=dict)
    #: Stream event types, in order of first appearance.
    event_types: tuple[str, ...] = ()
    last_event: str | None = None
    event_fields: Mapping[str, Fields] = field(default_factory=dict)
    #: ``complete``, ``closed``, or ``error (TypeName)`` as the cassette recorded the stream's end.
    stream_end: str = "complete"

    @property
    def key(self) -> tuple[str, str]:
        """What identifies the call: method and normalised path."""
        return (self.method, self.path)

    @property
    def label(self) -> str:
        """The call as reports name it: ``POST /v1/chat/completions``."""
        return f"{self.method} {self.path}"


def _body_fields(body: bytes) -> Fields:
    if not body.strip():
        return {}
    value = parse_json(body)
    if value is NOT_JSON:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return {"": frozenset({"bytes"})}
    return _frozen(json_fields(value))


def _stream_end(interaction: Interaction) -> str:
    record = interaction.response.stream
    if record is None:
        return "complete"
    if record.error is not None:
        return f"{record.end.value} ({record.error.type})"
    return record.end.value


def interaction_shape(
    interaction: Interaction, *, index: int, path: Path, ignore_headers: frozenset[str] = frozenset()
) -> InteractionShape:
    """
    The shape of one interaction; ``path`` and ``index`` only name it in errors. Header names in
    ``ignore_headers`` (lower case) are left out besides ``TRANSPORT_HEADERS``.
    """
    request, response = interaction.request, interaction.response
    request_body = decode_body(message_content(request, path=path, index=index, side="request"))
    body = decode_body(message_content(response, path=path, index=index, side="response"))
    content_type = header_get(response.headers, "content-type")
    framing = detect_framing(content_type, body, url=request.uri)
    skipped = TRANSPORT_HEADERS | ignore_headers
    headers = frozenset(name.lower() for name in response.headers) - skipped
    query = frozenset(name for name, _ in parse_qsl(urlsplit(request.uri).query, keep_blank_values=True))
    request_value = parse_json(request_body) if request_body.strip() else None
    shape = InteractionShape(
        index=index,
        method=request.method.upper(),
        path=normalise_path(request.uri),
        query=query,
        request_fields=_frozen(json_fields(request_value)) if isinstance(request_value, dict | list) else {},
        status=response.status.code if response.status is not None else None,
        media_type=content_type.split(";")[0].strip().lower() if content_type else None,
        headers=headers,
        framing=framing.value,
        stream_end=_stream_end(interaction),
    )
    session = session_of(interaction)
    if session is not None:
        return _session_shape(shape, session)
    if framing is Framing.NONE:
        return replace(shape, body_fields=_body_fields(body))
    events = decode_events(body, framing)
    order: dict[str, None] = {}
    fields: dict[str, dict[str, set[str]]] = {}
    for event in events:
        order.setdefault(event.type, None)
        if event.value is not DONE:
            json_fields(event.value, fields.setdefault(event.type, {}))
    return replace(
        shape,
        event_types=tuple(order),
        last_event=events[-1].type if events else None,
        event_fields={name: _frozen(found) for name, found in fields.items()},
    )


def _session_shape(shape: InteractionShape, session: Mapping[str, Any]) -> InteractionShape:
    # A WebSocket session: its messages are the events, named by their sender and event type.
    order: dict[str, None] = {}
    fields: dict[str, dict[str, set[str]]] = {}
    messages = read_messages(session)
    for message in messages:
        name = f"{message.sender} {message.event}"
        order.setdefault(name, None)
        found = fields.setdefault(name, {})
        if message.kind == "json":
            json_fields(message.value, found)
        else:
            found.setdefault("", set()).add("bytes" if message.kind == "binary" else "text")
    close = read_close(session)
    return replace(
        shape,
        framing="websocket",
        event_types=tuple(order),
        last_event=f"{messages[-1].sender} {messages[-1].event}" if messages else None,
        event_fields={name: _frozen(found) for name, found in fields.items()},
        stream_end="open" if close is None else close.text(),
    )


def document_shapes(
    document: CassetteDocument, *, path: Path | str, ignore_headers: frozenset[str] = frozenset()
) -> list[InteractionShape]:
    """The shape of every interaction of ``document``, in order."""
    where = Path(path)
    return [
        interaction_shape(interaction, index=index, path=where, ignore_headers=ignore_headers)
        for index, interaction in enumerate(document.interactions)
    ]
