"""
What each recorded interaction of a cassette amounts to, as plain data: the transcript that
``llmcassette inspect`` prints or writes as JSON.

A :class:`Transcript` holds the request summary (method, URL as stored, provider profile, model,
whether a stream was asked for, the last input sent), the response status, and what the provider
profile's ``summarize`` read from the body (text, reasoning, tool calls, usage, finish reason,
error). A streamed response adds :class:`StreamFacts`: events, recorded chunks, and when chunks
arrived (time to first chunk, gaps between chunks, how the stream ended). All times are in
milliseconds after the request was sent, as the cassette stores them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ._event_shapes import normalized
from ._exchange import RequestInfo
from ._framing import Framing, detect_framing
from ._models import (
    CassetteDocument,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    header_get,
    message_content,
)
from ._session_view import session_document, session_of
from .providers import GENERIC, Summary, ToolCall, detect_profile
from .providers._events import NOT_JSON, decode_body, decode_events

__all__ = [
    "GapStats",
    "StreamFacts",
    "Transcript",
    "gap_stats",
    "message_content",
    "request_info",
    "transcribe",
    "transcribe_interaction",
]

_REPAIR_HINT = "Fix the file by hand, or delete it and record the cassette again."


def request_info(request: RecordedRequest, content: bytes) -> RequestInfo:
    """The recorded request as provider profiles see it."""
    headers = {name.lower(): values[0] for name, values in request.headers.items() if values}
    return RequestInfo(method=request.method, url=request.uri, headers=headers, body=content)


@dataclass(frozen=True)
class GapStats:
    """Spread of the gaps between consecutive chunk arrivals, in milliseconds."""

    min_ms: float
    median_ms: float
    p95_ms: float
    max_ms: float


def gap_stats(offsets_ms: Sequence[float]) -> GapStats | None:
    """The gaps between consecutive arrivals in ``offsets_ms``; None with fewer than two."""
    gaps = sorted(later - earlier for earlier, later in zip(offsets_ms, offsets_ms[1:], strict=False))
    if not gaps:
        return None
    # Nearest-rank p95: a gap that really happened, never one interpolated between two.
    p95 = gaps[max(0, math.ceil(0.95 * len(gaps)) - 1)]
    return GapStats(gaps[0], float(statistics.median(gaps)), p95, gaps[-1])


@dataclass(frozen=True)
class StreamFacts:
    """How a streamed response arrived."""

    #: Events that carried data (keep-alive comments left out), as the provider profile counts them.
    events: int
    #: Body length in bytes, as stored (compressed bodies count compressed).
    bytes: int
    #: Recorded chunk count; None when the cassette kept no chunk boundaries (vcrpy files).
    chunks: int | None
    #: Arrival of each chunk in milliseconds after the request was sent; None when not recorded.
    offsets_ms: tuple[float, ...] | None
    #: ``complete``, ``error`` (the upstream broke the stream) or ``closed`` (the client left).
    end: str
    #: The transport error that cut the stream, as ``Type: message``.
    error: str | None = None

    @property
    def first_chunk_ms(self) -> float | None:
        """Time to first chunk."""
        return self.offsets_ms[0] if self.offsets_ms else None

    @property
    def last_chunk_ms(self) -> float | None:
        """When the last chunk arrived."""
        return self.offsets_ms[-1] if self.offsets_ms else None

    @property
    def gaps(self) -> GapStats | None:
        """Spread of the gaps between chunks, when arrival times were recorded."""
        return gap_stats(self.offsets_ms) if self.offsets_ms else None


@dataclass(frozen=True)
class Transcript:
    """One interaction, summarised for reading."""

    index: int
    method: str
    url: str
    #: Name of the provider profile the request was detected as (``generic`` when none matched).
    provider: str
    model: str | None
    #: Whether the request asked for a streamed response.
    stream_requested: bool
    #: The last message or input of the request, with its role (``user: ...``), when there is one.
    last_input: str | None
    #: None when the connection failed before any response (``error`` says how).
    status: int | None
    reason: str
    content_type: str | None
    #: When the response head arrived, in milliseconds after the request was sent.
    elapsed_ms: float | None
    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Mapping[str, int] = field(default_factory=dict)
    finish_reason: str | None = None
    error: str | None = None
    #: Set when the response body is a stream, or the cassette recorded its chunks.
    stream: StreamFacts | None = None
    #: A WebSocket session's ``websocket`` part, as the cassette holds it (see ``_session_view``).
    websocket: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The transcript as JSON-ready data (see ``llmcassette._inspect`` for the layout)."""
        stream: dict[str, Any] | None = None
        if self.stream is not None:
            facts = self.stream
            gaps = facts.gaps
            stream = {
                "events": facts.events,
                "bytes": facts.bytes,
                "chunks": facts.chunks,
                "first_chunk_ms": facts.first_chunk_ms,
                "last_chunk_ms": facts.last_chunk_ms,
                "gaps_ms": None
                if gaps is None
                else {"min": gaps.min_ms, "median": gaps.median_ms, "p95": gaps.p95_ms, "max": gaps.max_ms},
                "offsets_ms": list(facts.offsets_ms) if facts.offsets_ms is not None else None,
                "end": facts.end,
                "error": facts.error,
            }
        return {
            "index": self.index,
            "request": {
                "method": self.method,
                "url": self.url,
                "provider": self.provider,
                "model": self.model,
                "stream": self.stream_requested,
                "last_input": self.last_input,
            },
            "response": {
                "status": self.status,
                "reason": self.reason,
                "content_type": self.content_type,
                "elapsed_ms": self.elapsed_ms,
            },
            "text": self.text,
            "reasoning": self.reasoning,
            "tool_calls": [{"name": c.name, "arguments": c.arguments, "id": c.id} for c in self.tool_calls],
            "usage": dict(self.usage),
            "finish_reason": self.finish_reason,
            "error": self.error,
            "stream": stream,
            "websocket": session_document(self.websocket) if self.websocket is not None else None,
        }


# -- request summary -----------------------------------------------------------------------------

# Path segments that name the model (Gemini `models/NAME:generateContent`, Bedrock `model/ID/...`,
# Azure `deployments/NAME/...`) for requests whose body does not.
_MODEL_SEGMENTS = ("models", "model", "deployments", "tunedModels")


def _model(request: RequestInfo) -> str | None:
    body = request.json
    if isinstance(body, Mapping) and isinstance(body.get("model"), str):
        return str(body["model"])
    # Split before unquoting: Bedrock model ids hold an escaped colon (`nova-micro-v1%3A0`), while
    # Gemini's colon introduces the method (`gemini-2.0-flash:generateContent`).
    segments = urlsplit(request.url).path.split("/")
    for position, segment in enumerate(segments[:-1]):
        name = segments[position + 1].split(":")[0]
        if segment in _MODEL_SEGMENTS and name:
            return unquote(name)
    return None


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, Mapping):
        return ""
    for key in ("text", "content", "input_text"):
        if isinstance(part.get(key), str):
            return str(part[key])
    if isinstance(part.get("content"), list):  # a tool result holding parts
        return " ".join(filter(None, (_part_text(p) for p in part["content"])))
    kind = part.get("type")
    if isinstance(kind, str):
        return f"[{kind}]"
    # A part keyed by what it is (Gemini `functionResponse`, Bedrock `toolResult`): name the kind.
    return f"[{next(iter(part))}]" if part else ""


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(filter(None, (_part_text(part) for part in content)))
    return _part_text(content)


def _last_input(body: Any) -> str | None:
    """The last message a request sent, as ``role: text``, for the shapes the providers use."""
    if not isinstance(body, Mapping):
        return None
    if isinstance(body.get("prompt"), str):  # Ollama generate, legacy completions
        return f"prompt: {body['prompt']}"
    for key in ("messages", "contents", "input"):
        items = body.get(key)
        if isinstance(items, str):  # the Responses API takes a bare string
            return f"user: {items}"
        if isinstance(items, list) and items:
            last = items[-1]
            if not isinstance(last, Mapping):
                return _content_text(last) or None
            role = last.get("role") or last.get("type") or "message"
            text = _content_text(last.get("content", last.get("parts", last.get("output"))))
            return f"{role}: {text}" if text else f"{role}"
    return None


# -- response ------------------------------------------------------------------------------------


def _by_shape(body: bytes, framing: Framing) -> Summary:
    """
    A summary read from the events' own shapes, for an upstream no profile knows (or a file with
    no request at all): each event says which API it follows, as in snapshots.
    """
    events = decode_events(body, framing)
    summary = Summary(events=len(events) if framing is not Framing.NONE else 0)
    calls: dict[int, list[str]] = {}
    # Events that are not JSON are left out: a summary says what arrived, not what was damaged.
    for event in normalized([e for e in events if e.value is not NOT_JSON], framing):
        kind = event["type"]
        if kind == "text_delta":
            summary.text += event["text"]
        elif kind == "reasoning_delta":
            summary.reasoning += event["text"]
        elif kind == "tool_call_delta":
            call = calls.setdefault(event["index"], ["", ""])
            call[0] = event.get("name") or call[0]
            call[1] += event["arguments"]
        elif kind == "usage":
            summary.usage = {k: v for k, v in event.items() if k != "type"}
        elif kind == "finish":
            summary.finish_reason = event["reason"]
        elif kind == "error" and summary.error is None:
            summary.error = event["message"]
    summary.tool_calls = [ToolCall(name, arguments) for name, arguments in calls.values()]
    return summary


def _stream_facts(
    response: RecordedResponse, body: bytes, events: int, is_stream: bool
) -> StreamFacts | None:
    record = response.stream
    if record is None and not is_stream:
        return None
    chunks = offsets = None
    end, error = "complete", None
    if record is not None:
        chunks = len(record.chunks) if record.chunks is not None else None
        offsets = tuple(record.offsets_ms) if record.offsets_ms else None
        end = record.end.value
        if record.error is not None:
            error = f"{record.error.type}: {record.error.message}".rstrip(": ")
    return StreamFacts(
        events=events, bytes=len(body), chunks=chunks, offsets_ms=offsets, end=end, error=error
    )


def transcribe_interaction(interaction: Interaction, *, index: int, path: Path) -> Transcript:
    """The transcript of one interaction; ``path`` and ``index`` only name it in errors."""
    request, response = interaction.request, interaction.response
    info = request_info(request, message_content(request, path=path, index=index, side="request"))
    if response.status is None:
        return _no_response(interaction, info, index=index)
    body = message_content(response, path=path, index=index, side="response")
    profile = detect_profile(info)
    wanted = profile.is_streaming(info)
    content_type = header_get(response.headers, "content-type")
    decoded = decode_body(body)
    framing = detect_framing(content_type, decoded, url=request.uri)
    is_stream = framing is not Framing.NONE
    status = response.status.code
    if profile is GENERIC and status < 400:
        summary = _by_shape(decoded, framing)
    else:
        summary = profile.summarize(body, streaming=wanted or is_stream, status=status)
    return Transcript(
        index=index,
        method=request.method,
        url=request.uri,
        provider=profile.name,
        model=_model(info),
        stream_requested=wanted,
        last_input=_last_input(info.json),
        status=status,
        reason=response.status.message,
        content_type=content_type,
        elapsed_ms=response.elapsed_ms,
        text=summary.text,
        reasoning=summary.reasoning,
        tool_calls=tuple(summary.tool_calls),
        usage=dict(summary.usage),
        finish_reason=summary.finish_reason,
        error=summary.error,
        stream=_stream_facts(response, body, summary.events, is_stream and status < 400),
        websocket=session_of(interaction),
    )


def _no_response(interaction: Interaction, info: RequestInfo, *, index: int) -> Transcript:
    # The connection failed before any answer: the request, and how it failed.
    request, record = interaction.request, interaction.response.stream
    profile = detect_profile(info)
    error = None
    if record is not None and record.error is not None:
        error = f"{record.error.type}: {record.error.message}".rstrip(": ")
    return Transcript(
        index=index,
        method=request.method,
        url=request.uri,
        provider=profile.name,
        model=_model(info),
        stream_requested=profile.is_streaming(info),
        last_input=_last_input(info.json),
        status=None,
        reason="",
        content_type=None,
        elapsed_ms=interaction.response.elapsed_ms,
        error=error,
    )


def transcribe(document: CassetteDocument, *, path: Path | str) -> list[Transcript]:
    """The transcript of every interaction of ``document``, in order (``path`` names it in errors)."""
    where = Path(path)
    return [
        transcribe_interaction(interaction, index=index, path=where)
        for index, interaction in enumerate(document.interactions)
    ]
