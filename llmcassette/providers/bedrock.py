"""
The AWS Bedrock Runtime profile (``bedrock``): ``Converse`` / ``ConverseStream`` and
``InvokeModel`` / ``InvokeModelWithResponseStream`` on ``bedrock-runtime.<region>.amazonaws.com``.

Wire facts used here, as the Bedrock API reference and botocore show them:

- Paths are ``/model/{modelId}/converse``, ``/converse-stream``, ``/invoke`` and
  ``/invoke-with-response-stream``; the last two of each pair stream. Streams use the AWS
  eventstream framing (``application/vnd.amazon.eventstream``): binary frames with a prelude,
  typed headers and CRC32 checksums. ``:message-type`` is ``event`` or ``exception``,
  ``:event-type`` names the event.
- ConverseStream events are ``messageStart``, ``contentBlockStart`` (a tool call's id and name),
  ``contentBlockDelta`` (``text``, ``toolUse.input`` fragments, ``reasoningContent``),
  ``contentBlockStop``, ``messageStop`` (``stopReason``) and ``metadata`` (``usage``).
  InvokeModelWithResponseStream sends ``chunk`` events whose ``bytes`` field is the base64 of
  the model's own event, for Claude an Anthropic Messages stream event.
- HTTP errors are ``{"message": ...}`` with the error type in the ``x-amzn-ErrorType`` header.
  Bad credentials answer **403** ``UnrecognizedClientException``, so ``unauthorized`` answers
  403 here. A failure inside a 200 stream is an ``exception`` frame (``throttlingException``,
  ``internalServerException``, ``serviceUnavailableException``, ``validationException``,
  ``modelStreamErrorException``) with ``{"message": ...}``; botocore raises ``EventStreamError``.
  No rate-limit headers are sent.

Volatile request field: ``requestMetadata`` (tags for invocation logs; no effect on the answer).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .._eventstream import encode_frame
from .._exchange import RequestInfo
from .._framing import Framing, split_events
from ._base import Profile
from ._events import Event
from ._types import Summary, ToolCall
from ._wire import ToolCallAssembly, compact_json, flat_ints, stable_token
from .anthropic import AnthropicProfile

__all__ = ["BedrockProfile", "encode_frame", "exception_frame"]

_ACTIONS = ("/converse", "/converse-stream", "/invoke", "/invoke-with-response-stream")
_STREAMING = ("/converse-stream", "/invoke-with-response-stream")
_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
# kind: (status, error type, message)
_ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (429, "ThrottlingException", "Too many requests, please wait before trying again."),
    "unauthorized": (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    ),
    "forbidden": (
        403,
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    "not_found": (
        404,
        "ResourceNotFoundException",
        "Could not resolve the foundation model from the provided model identifier.",
    ),
    "bad_request": (400, "ValidationException", "The provided model identifier is invalid."),
    "server_error": (500, "InternalServerException", "The server encountered an internal error."),
    "bad_gateway": (502, "InternalServerException", "The server encountered an internal error."),
    "unavailable": (503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
    "overloaded": (503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
}
_STREAM_EXCEPTIONS = {
    "rate_limit": "throttlingException",
    "bad_request": "validationException",
    "unavailable": "serviceUnavailableException",
    "overloaded": "serviceUnavailableException",
}
_JSON_HEADERS = {":content-type": "application/json"}


def exception_frame(exception_type: str, message: str | None = None, *, kind: str = "server_error") -> bytes:
    """
    An ``exception`` frame of ``exception_type`` (``throttlingException``,
    ``modelStreamErrorException``, ...) carrying ``{"message": ...}`` (by default the message of
    error ``kind``), as Bedrock sends one inside a 200 stream; botocore raises
    ``EventStreamError`` with that type as its code.
    """
    message = message or _ERRORS.get(kind, _ERRORS["server_error"])[2]
    headers = {":exception-type": exception_type, **_JSON_HEADERS, ":message-type": "exception"}
    return encode_frame(headers, json.dumps({"message": message}, separators=(",", ":")).encode())


class BedrockProfile(Profile):
    """Bedrock Runtime, Converse API (``InvokeModel`` streams get a variant from ``refine``)."""

    name: ClassVar[str] = "bedrock"
    framing: ClassVar[Framing] = Framing.EVENTSTREAM
    terminator: ClassVar[bytes | None] = None
    volatile_fields: ClassVar[tuple[str, ...]] = ("requestMetadata",)
    stream_content_type: ClassVar[str] = "application/vnd.amazon.eventstream"

    def matches(self, request: RequestInfo) -> bool:
        if request.host.startswith("bedrock-runtime") and request.host.endswith(".amazonaws.com"):
            return True
        return request.path.startswith("/model/") and request.path.endswith(_ACTIONS)

    def refine(self, request: RequestInfo) -> Profile:
        return _INVOKE if request.path.endswith("/invoke-with-response-stream") else self

    def is_streaming(self, request: RequestInfo) -> bool:
        return request.path.endswith(_STREAMING)

    # -- errors -------------------------------------------------------------------------------

    def status_for(self, kind: str) -> int:
        return _ERRORS[kind][0] if kind in _ERRORS else super().status_for(kind)

    def error_payload(self, kind: str, status: int, message: str | None, retry_after_s: float | None) -> Any:
        return {"message": message or _ERRORS.get(kind, _ERRORS["server_error"])[2]}

    def error_headers(self, kind: str, status: int, body: bytes) -> list[tuple[str, str]]:
        token = stable_token(self.name, status, body, length=32)
        request_id = f"{token[:8]}-{token[8:12]}-{token[12:16]}-{token[16:20]}-{token[20:]}"
        error_type = _ERRORS.get(kind, _ERRORS["server_error"])[1]
        return [("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", error_type + _NAMESPACE)]

    # -- stream shapes ------------------------------------------------------------------------

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        """An ``exception`` frame (``throttlingException`` for ``rate_limit``, and so on)."""
        exception = _STREAM_EXCEPTIONS.get(kind, "internalServerException")
        return exception_frame(exception, message, kind=kind)

    def _event(self, event_type: str, payload: Mapping[str, Any]) -> bytes:
        headers = {":event-type": event_type, **_JSON_HEADERS, ":message-type": "event"}
        return encode_frame(headers, json.dumps(payload, separators=(",", ":")).encode())

    def empty_stream(self) -> bytes:
        """``messageStart``, ``messageStop`` (``end_turn``) and ``metadata`` with zero usage."""
        usage = {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}
        return (
            self._event("messageStart", {"role": "assistant"})
            + self._event("messageStop", {"stopReason": "end_turn"})
            + self._event("metadata", {"usage": usage, "metrics": {"latencyMs": 0}})
        )

    # -- summaries ----------------------------------------------------------------------------

    def body_framing(self, body: bytes) -> Framing:
        return Framing.EVENTSTREAM if len(body) >= 16 and body[:1] != b"{" else Framing.NONE

    def summarize_stream(self, events: Sequence[Event]) -> Summary:
        converse = _Converse()
        claude: list[Event] = []  # InvokeModel of a Claude model: Anthropic's stream events
        error: str | None = None
        for event in events:
            value = event.value
            if event.exception:
                message = value.get("message") if isinstance(value, Mapping) else None
                error = error or str(message or event.name or "exception")
            elif event.name == "chunk" and isinstance(value, Mapping):
                if isinstance(value.get("type"), str):
                    claude.append(event)
                else:
                    converse.add_native(value)
            elif isinstance(value, Mapping):
                converse.add(str(event.name), value)
        summary = _ANTHROPIC.summarize_stream(claude) if claude else converse.summary()
        summary.error = summary.error or error
        return summary

    def summarize_json(self, value: Any) -> Summary:
        if not isinstance(value, Mapping):
            return Summary()
        if value.get("type") == "message":  # InvokeModel of a Claude model: Anthropic's JSON
            return _ANTHROPIC.summarize_json(value)
        summary = Summary(usage=flat_ints(value.get("usage")))
        if value.get("stopReason"):
            summary.finish_reason = str(value["stopReason"])
        message = (
            (value.get("output") or {}).get("message") if isinstance(value.get("output"), Mapping) else None
        )
        text: list[str] = []
        reasoning: list[str] = []
        for block in (message or {}).get("content") or () if isinstance(message, Mapping) else ():
            if not isinstance(block, Mapping):
                continue
            if isinstance(block.get("text"), str):
                text.append(block["text"])
            thought = (block.get("reasoningContent") or {}).get("reasoningText")
            if isinstance(thought, Mapping) and isinstance(thought.get("text"), str):
                reasoning.append(thought["text"])
            use = block.get("toolUse")
            if isinstance(use, Mapping):
                arguments = compact_json(use.get("input") or {})
                summary.tool_calls.append(
                    ToolCall(str(use.get("name") or ""), arguments, use.get("toolUseId"))
                )
        summary.text = "".join(text)
        summary.reasoning = "".join(reasoning)
        return summary


class _BedrockInvoke(BedrockProfile):
    """InvokeModelWithResponseStream: ``chunk`` frames carrying the model's own events (Claude's)."""

    def empty_stream(self) -> bytes:
        """Claude's empty Messages stream, one base64 ``chunk`` frame per event."""
        frames = b""
        for block in split_events(_ANTHROPIC.empty_stream(), Framing.SSE):
            data = block.split(b"data: ", 1)[1].strip()
            frames += self._event("chunk", {"bytes": base64.b64encode(data).decode()})
        return frames


_INVOKE = _BedrockInvoke()
_ANTHROPIC = AnthropicProfile()


class _Converse:
    """ConverseStream events gathered into a summary."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls = ToolCallAssembly()
        self.finish: str | None = None
        self.usage: dict[str, int] = {}

    def add(self, kind: str, value: Mapping[str, Any]) -> None:
        index = value.get("contentBlockIndex")
        if kind == "contentBlockStart":
            use = (value.get("start") or {}).get("toolUse")
            if isinstance(use, Mapping):
                self.calls.add(index, name=use.get("name"), id=use.get("toolUseId"))
        elif kind == "contentBlockDelta" and isinstance(value.get("delta"), Mapping):
            delta = value["delta"]
            if isinstance(delta.get("text"), str):
                self.text.append(delta["text"])
            thought = delta.get("reasoningContent")
            if isinstance(thought, Mapping) and isinstance(thought.get("text"), str):
                self.reasoning.append(thought["text"])
            use = delta.get("toolUse")
            if isinstance(use, Mapping):
                self.calls.add(index, arguments=use.get("input"))
        elif kind == "messageStop" and value.get("stopReason"):
            self.finish = str(value["stopReason"])
        elif kind == "metadata":
            self.usage = flat_ints(value.get("usage"))

    def add_native(self, inner: Mapping[str, Any]) -> None:
        """A non-Claude InvokeModel chunk: Nova's Converse-shaped keys, or a bare text field."""
        for key, item in inner.items():
            if isinstance(item, Mapping):
                self.add(key, item)
        for key in ("generation", "outputText", "completion"):
            if isinstance(inner.get(key), str):
                self.text.append(inner[key])
        for key in ("stop_reason", "completionReason"):
            if inner.get(key):
                self.finish = str(inner[key])

    def summary(self) -> Summary:
        return Summary(
            text="".join(self.text),
            reasoning="".join(self.reasoning),
            tool_calls=self.calls.result(),
            usage=self.usage,
            finish_reason=self.finish,
        )
