"""
Provider profiles: what llmcassette knows of each provider's wire format.

A profile is detected from a request (host, path, headers) and supplies what faults and reports
need: the stream framing and terminator, error bodies and headers for each status fault, the
provider's own in-stream error event, its shape of an empty stream, the request fields that vary
between runs, and a summary of an exchange (text, tool calls, usage, finish reason).
Unknown upstreams get the generic profile, so they still record, replay and take faults.

Subclasses override small hooks rather than whole methods: ``status_for`` (the status of a kind
of error), ``error_payload`` (its JSON body), ``error_headers`` (request ids and the like),
``body_framing`` (how a recorded body is read), ``summarize_stream`` (given the body's events, as
the one decoder of the wire formats, :mod:`._events`, reads them) and ``summarize_json``. A
profile whose wire format depends on the request (Gemini with or without ``alt=sse``, Azure chat
or Responses) returns a variant from ``refine``; :func:`~llmcassette.providers.detect_profile`
hands out the refined profile.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from .._exchange import RequestInfo
from .._framing import Framing, detect_framing
from ._events import NOT_JSON, Event, decode_body, decode_events, parse_json
from ._types import ERROR_KINDS, ErrorResponse, Summary, ToolCall
from ._wire import body_error, error_message

__all__ = ["ERROR_KINDS", "ErrorResponse", "Profile", "Summary", "ToolCall", "kind_for_status"]

_STATUS_KINDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    429: "rate_limit",
}
_STATUS_KINDS |= {502: "bad_gateway", 503: "unavailable", 529: "overloaded"}


def kind_for_status(status: int) -> str:
    """The kind of error a bare status stands for (``status`` faults take the body of that kind)."""
    if status in _STATUS_KINDS:
        return _STATUS_KINDS[status]
    return "server_error" if status >= 500 else "bad_request"


class Profile:
    """
    Base class of provider profiles. Subclasses set ``name`` and override what differs; the base
    behaves as a generic HTTP upstream (no framing knowledge beyond sniffing).
    """

    name: ClassVar[str] = "generic"
    #: Framing of this provider's streamed responses.
    framing: ClassVar[Framing] = Framing.SSE
    #: Bytes that end a complete stream (``data: [DONE]``), or None when the provider sends none.
    terminator: ClassVar[bytes | None] = None
    #: Body fields (dotted paths) that vary between runs and are left out of matching.
    volatile_fields: ClassVar[tuple[str, ...]] = ()
    #: Media type of streamed responses.
    stream_content_type: ClassVar[str] = "text/event-stream"
    #: Media type of error responses.
    error_content_type: ClassVar[str] = "application/json"
    #: Indentation of error bodies, for providers that pretty-print them (None: one line).
    error_indent: ClassVar[int | None] = None

    # -- detection ----------------------------------------------------------------------------

    def matches(self, request: RequestInfo) -> bool:
        """Whether ``request`` is for this provider."""
        return False

    def refine(self, request: RequestInfo) -> Profile:
        """The variant of this profile for ``request`` when the wire format depends on it."""
        return self

    def is_streaming(self, request: RequestInfo) -> bool:
        """Whether ``request`` asks for a streamed response."""
        body = request.json
        if isinstance(body, dict) and body.get("stream") is True:
            return True
        if query_value(request, "stream") == "true":
            return True
        accept = request.headers.get("accept", "")
        return "text/event-stream" in accept or "ndjson" in accept

    def is_terminator(self, event: bytes) -> bool:
        """
        Whether ``event`` (one event as the framing cuts it) only says the stream is complete:
        ``data: [DONE]``, Anthropic's ``message_stop``, the Responses API's final event, Ollama's
        ``"done": true`` line. The base compares it with ``terminator``.
        """
        if self.terminator is None:
            return False
        return _normalise(event) == _normalise(self.terminator)

    # -- errors -------------------------------------------------------------------------------

    def status_for(self, kind: str) -> int:
        """The status this provider answers with for ``kind``."""
        return ERROR_KINDS.get(kind, 500)

    def error(
        self,
        kind: str,
        *,
        status: int | None = None,
        message: str | None = None,
        retry_after_s: float | None = None,
        now_s: float | None = None,
    ) -> ErrorResponse:
        """
        The provider's error response for a status fault of ``kind`` (see ``ERROR_KINDS``).
        ``status`` overrides the kind's status; a ``status`` kind (or an unknown one) takes the
        body of the kind its status stands for. A 429 carries ``rate_limit_headers()``.
        ``retry_after_s`` lets providers that put the delay in the body (Gemini ``RetryInfo``,
        "try again in 2s" messages) agree with the Retry-After header the fault sets;
        ``now_s`` is the clock rate-limit reset times count from.
        """
        if kind == "status" or kind not in ERROR_KINDS:
            kind = kind_for_status(status) if status is not None else "server_error"
        code = status if status is not None else self.status_for(kind)
        payload = self.error_payload(kind, code, message, retry_after_s)
        if isinstance(payload, bytes):
            body = payload
        elif self.error_indent is None:
            body = json.dumps(payload).encode()
        else:
            body = json.dumps(payload, indent=self.error_indent).encode() + b"\n"
        headers = [("content-type", self.error_content_type), *self.error_headers(kind, code, body)]
        if code == 429:
            headers.extend(self.rate_limit_headers(now_s=now_s))
        return ErrorResponse(code, body, tuple(headers))

    def error_payload(self, kind: str, status: int, message: str | None, retry_after_s: float | None) -> Any:
        """The JSON value (or raw bytes) of the error body for ``kind`` answered with ``status``."""
        return {"error": {"message": message or f"Injected {kind} error.", "type": kind, "code": status}}

    def error_headers(self, kind: str, status: int, body: bytes) -> list[tuple[str, str]]:
        """Headers of an error response besides its content type (request ids and the like)."""
        return []

    def rate_limit_headers(self, *, now_s: float | None = None) -> tuple[tuple[str, str], ...]:
        """Headers the provider sends with a 429, besides Retry-After (set by the fault)."""
        return ()

    # -- stream shapes ------------------------------------------------------------------------

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        """
        One in-stream error event in the provider's framing, sent on an HTTP 200 stream. The
        provider sends nothing useful after it, so a fault ends the stream there.
        """
        text = message or "Injected stream error."
        return b"data: " + json.dumps({"error": {"message": text, "type": kind}}).encode() + b"\n\n"

    def empty_stream(self) -> bytes:
        """The body of the provider's 200 stream that carries no content."""
        return self.terminator or b""

    # -- summaries ----------------------------------------------------------------------------

    def summarize(self, body: bytes, *, streaming: bool, status: int = 200) -> Summary:
        """What a response body amounts to (text, tool calls, usage, finish reason, error)."""
        body = decode_body(body)
        if status >= 400:
            return Summary(error=body_error(body, status))
        framing = self.body_framing(body) if streaming else Framing.NONE
        try:
            if framing is not Framing.NONE:
                events = decode_events(body, framing)
                summary = self.summarize_stream(events)
                summary.events = len(events)
                return summary
            value = parse_json(body)
            return Summary() if value is NOT_JSON else self.summarize_json(value)
        except (TypeError, AttributeError, KeyError, IndexError):
            # Each profile reads its provider's documented shapes; any JSON may stand in a
            # cassette (hand-edited, or from a server that only looks like the provider), and a
            # body of another shape (`choices: 5`) amounts to no summary, not to a traceback in
            # inspect, lint and snapshots.
            return Summary()

    def body_framing(self, body: bytes) -> Framing:
        """
        How a recorded body of a streaming request is framed, ``NONE`` when it is a plain answer
        (a request can ask for a stream and get an error or a JSON body). The base sniffs the body.
        """
        return detect_framing(None, body)

    def summarize_stream(self, events: Sequence[Event]) -> Summary:
        """The summary of a stream's events (the generic profile only finds errors)."""
        errors = (error_message(e.value) for e in events if isinstance(e.value, dict) and "error" in e.value)
        return Summary(error=next(errors, None))

    def summarize_json(self, value: Any) -> Summary:
        """The summary of a plain JSON answer."""
        return Summary(error=error_message(value) if isinstance(value, dict) and "error" in value else None)

    def describe(self) -> dict[str, Any]:
        """A short description, for listings."""
        return {
            "name": self.name,
            "framing": self.framing.value,
            "terminator": self.terminator.decode() if self.terminator else None,
            "volatile_fields": list(self.volatile_fields),
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def query_value(request: RequestInfo, name: str) -> str | None:
    """The first value of query parameter ``name`` of ``request``, or None."""
    return next(
        (value for key, value in parse_qsl(request.query, keep_blank_values=True) if key == name), None
    )


def port_of(request: RequestInfo) -> int | None:
    """The port of ``request`` as written in its URL (None when the URL names none)."""
    try:
        return urlsplit(request.url).port
    except ValueError:
        return None


def _normalise(event: bytes) -> bytes:
    return event.replace(b"\r\n", b"\n").replace(b"\r", b"\n").strip()
