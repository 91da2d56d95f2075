"""
Provider-neutral snapshots of LLM responses: one JSON object per line (JSONL, keys sorted).

Any response, streamed or not, of OpenAI chat and Responses, Azure, the OpenAI-compatible
gateways, Anthropic, Gemini (SSE or JSON array), Ollama (NDJSON) or Bedrock becomes a list of
events::

    {"text": "Hel", "type": "text_delta"}
    {"text": "...", "type": "reasoning_delta"}
    {"arguments": "{\\"city\\":", "index": 0, "name": "get_weather", "type": "tool_call_delta"}
    {"message": "Overloaded", "type": "error"}            (in-stream error; "status" on HTTP errors)
    {"completion_tokens": 9, "prompt_tokens": 5, "type": "usage"}
    {"reason": "stop", "type": "finish"}

A WebSocket session becomes its event sequence instead (see
:func:`llmcassette._session_view.session_events`)::

    {"event": "session.created", "from": "server"}
    {"count": 12, "event": "response.output_audio.delta", "from": "server"}
    {"by": "client", "close": 1000}

Deltas and errors keep their stream order; usage (merged over the stream) and the finish reason
come last, once, so a stream that ends early shows no ``finish`` line. Tool calls are numbered
from 0 in order of appearance whatever the provider keys them by. Only the first choice or
candidate is read. Nothing volatile is written (ids, timestamps, fingerprints, padding), so the
same answer recorded twice gives the same text, and a change is a one-line diff. Unknown events
are skipped; an event that is not JSON becomes an ``error`` line saying which.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
from syrupy.types import PropertyFilter, PropertyMatcher, SerializableData, SerializedData

from ._attempts import Attempt
from ._cassette import Cassette
from ._event_shapes import normalized
from ._exchange import RequestInfo
from ._framing import Framing, detect_framing
from ._models import CassetteDocument, Interaction, header_get
from ._session_view import session_events, session_of
from .providers import detect_profile
from .providers._events import NOT_JSON, decode_body, decode_events, parse_json
from .providers._wire import body_error

if TYPE_CHECKING:
    import httpx
    import httpx2

__all__ = ["LLMStreamSnapshotExtension", "normalize", "normalize_events"]


def normalize_events(
    body: bytes, *, url: str, method: str = "POST", content_type: str | None = None, status: int = 200
) -> list[dict[str, Any]]:
    """The provider-neutral events of one response body (see the module docstring)."""
    body = decode_body(body)
    if status >= 400:
        return [{"type": "error", "status": status, "message": body_error(body, status)}]
    framing = _framing(body, detect_profile(RequestInfo(method=method, url=url)).framing, content_type)
    return normalized(decode_events(body, framing), framing)


def _framing(body: bytes, provider_framing: Framing, content_type: str | None) -> Framing:
    """How a snapshot reads ``body``: as the stream it looks like, one JSON value, a cut array, or lines."""
    ctype = (content_type or "").lower()
    head = body.lstrip()[:1]
    if head not in (b"", b"{", b"[") and (provider_framing is Framing.EVENTSTREAM or "eventstream" in ctype):
        return Framing.EVENTSTREAM
    if "event-stream" in ctype or detect_framing(None, body) is Framing.SSE:
        return Framing.SSE
    if not head or parse_json(body) is not NOT_JSON:
        return Framing.NONE
    return Framing.JSON_ARRAY if head == b"[" else Framing.NDJSON


# -- targets -------------------------------------------------------------------------------------


def _lines(events: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(event, sort_keys=True, ensure_ascii=False) for event in events]


def _attempt_events(attempt: Attempt) -> list[dict[str, Any]]:
    if attempt.messages or attempt.close is not None:  # a WebSocket session: what crossed
        session = {
            "messages": [message.to_data() for message in attempt.messages],
            "close": attempt.close.to_data() if attempt.close is not None else None,
        }
        return session_events(session)
    events = []
    if attempt.status is not None:
        body = b"".join(attempt.chunks)
        events = normalize_events(body, url=attempt.url, method=attempt.method, status=attempt.status)
    if attempt.error:  # no response at all, or a stream cut by a transport error
        events.append({"type": "error", "message": attempt.error})
    return events


def _interaction_events(interaction: Interaction) -> list[dict[str, Any]]:
    session = session_of(interaction)
    if session is not None:  # a WebSocket session: its event sequence
        return session_events(session)
    request, response = interaction.request, interaction.response
    events: list[dict[str, Any]] = []
    if response.status is not None:  # else the connection failed before any answer: only the error
        events = normalize_events(
            response.content,
            url=request.uri,
            method=request.method,
            content_type=header_get(response.headers, "content-type"),
            status=response.status.code,
        )
    if response.stream is not None and response.stream.error is not None:
        error = response.stream.error
        events.append({"type": "error", "message": f"{error.type}: {error.message}".rstrip(": ")})
    return events


def _http_response_types() -> tuple[type, ...]:
    # An httpx or httpx2 response means its module is imported: neither is imported for this.
    modules = (sys.modules.get(name) for name in ("httpx", "httpx2"))
    return tuple(module.Response for module in modules if module is not None)


def _response_events(response: Any) -> list[dict[str, Any]]:
    kind = f"{type(response).__module__.split('.')[0]}.Response"
    try:
        body = response.content
    except Exception as exc:
        if type(exc).__name__ != "ResponseNotRead":
            raise
        raise TypeError(
            f"llmcassette: cannot snapshot this {kind}: its body was streamed and not read. Call "
            "`response.read()` before iterating it, or snapshot what the client received, "
            "`llm_cassette.attempts[-1]`."
        ) from None
    try:
        request = response.request
    except RuntimeError:
        raise TypeError(
            f"llmcassette: cannot snapshot this {kind}: it has no request, so its provider is unknown. "
            "Snapshot a response a client returned."
        ) from None
    return normalize_events(
        body,
        url=str(request.url),
        method=request.method,
        content_type=response.headers.get("content-type"),
        status=response.status_code,
    )


def normalize(
    target: Attempt
    | Interaction
    | Cassette
    | CassetteDocument
    | httpx.Response
    | httpx2.Response
    | Sequence[Any]
    | str,
) -> str:
    """
    The JSONL snapshot text of an attempt (what the client received), a recorded interaction,
    an httpx or httpx2 response (its body read), or a whole cassette: its attempts when it was
    used, else its interactions, each after a header line
    (``{"exchange": 0, "method": "POST", "path": "/v1/...", "status": 200}``). A string is
    taken as already normalised and returned as it is.
    """
    if isinstance(target, str):
        return target
    if isinstance(target, _http_response_types()):
        lines = _lines(_response_events(target))
    elif isinstance(target, Attempt):
        lines = _lines(_attempt_events(target))
    elif isinstance(target, Interaction):
        lines = _lines(_interaction_events(target))
    else:
        if isinstance(target, Cassette):
            exchanges: Sequence[Any] = target.attempts or target.interactions
        elif isinstance(target, CassetteDocument):
            exchanges = target.interactions
        else:
            exchanges = cast(Sequence[Any], target)
        lines = []
        for number, item in enumerate(exchanges):
            lines += _exchange(number, item)
    return "".join(line + "\n" for line in lines)


def _exchange(number: int, item: Any) -> list[str]:
    if isinstance(item, Attempt):
        head: dict[str, Any] = {"method": item.method, "path": urlsplit(item.url).path, "status": item.status}
        if item.faults:
            head["faults"] = list(item.faults)
        events = _attempt_events(item)
    elif isinstance(item, Interaction):
        head = {"method": item.request.method, "path": urlsplit(item.request.uri).path}
        status = item.response.status
        head["status"] = status.code if status is not None else None
        events = _interaction_events(item)
    elif isinstance(item, _http_response_types()):
        response: Any = item
        events = _response_events(response)
        head = {"method": response.request.method, "path": response.request.url.path}
        head["status"] = response.status_code
    else:
        raise TypeError(
            f"llmcassette: cannot snapshot {type(item).__name__!r}; give attempts, interactions or "
            "httpx/httpx2 responses."
        )
    return _lines([{"exchange": number, **head}, *events])


class LLMStreamSnapshotExtension(SingleFileSnapshotExtension):
    """
    A syrupy extension writing one ``<test>.events.jsonl`` file per snapshot: the normalised
    events of an attempt, an interaction, an httpx or httpx2 response or a cassette (see
    :func:`normalize`)::

        def test_chat(snapshot, llm_cassette):
            ...
            assert llm_cassette == snapshot.with_defaults(extension_class=LLMStreamSnapshotExtension)
    """

    _write_mode = WriteMode.TEXT
    file_extension = "events.jsonl"

    def serialize(
        self,
        data: SerializableData,
        *,
        exclude: PropertyFilter | None = None,
        include: PropertyFilter | None = None,
        matcher: PropertyMatcher | None = None,
    ) -> SerializedData:
        """The JSONL text of ``data`` (an attempt, interaction, response, cassette, or normalised text)."""
        return normalize(data)
