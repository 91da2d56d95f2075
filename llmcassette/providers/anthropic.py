"""
The Anthropic Messages API profile (``anthropic``).

Wire facts used here, as the API and the anthropic SDK show them:

- ``POST /v1/messages`` on ``api.anthropic.com`` (the SDK may add ``?beta=true``), with an
  ``anthropic-version`` header; Claude on Vertex AI speaks the same stream at
  ``.../publishers/anthropic/models/{model}:streamRawPredict``.
- Streams are SSE where every event is named and its data repeats the name in ``type``:
  ``message_start``, ``content_block_start`` / ``_delta`` / ``_stop`` per block, ``message_delta``
  (stop reason, cumulative output tokens) and ``message_stop``. There is no ``[DONE]``; ``ping``
  events may come anywhere. Tool input arrives as ``input_json_delta.partial_json`` fragments
  per block index; thinking as ``thinking_delta``.
- Errors are ``{"type": "error", "error": {"type", "message"}, "request_id"}`` with a
  ``request-id`` header. Overload is status **529** ``overloaded_error`` (the SDK retries it and
  raises ``OverloadedError``). An error inside a 200 stream is ``event: error`` with the same
  error object; the SDK raises ``APIStatusError`` with status 200 and does not retry.
- A 429 carries ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,
  remaining,reset}``, the resets as RFC 3339 instants.

Volatile request field: ``metadata.user_id`` (an opaque end-user id; it does not change the answer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .._exchange import RequestInfo
from .._framing import Framing
from ._base import Profile
from ._events import Event, decode_event, parse_json
from ._types import Summary, ToolCall
from ._wire import FALLBACK_NOW_S, ToolCallAssembly, compact_json, flat_ints, rfc3339, sse_event, stable_token

__all__ = ["AnthropicProfile"]

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

# kind: (error type, message)
_ERRORS: dict[str, tuple[str, str]] = {
    "rate_limit": (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute. "
        "For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response "
        "headers for current usage. Please reduce the prompt length or the maximum tokens requested, "
        "or try again later.",
    ),
    "unauthorized": ("authentication_error", "invalid x-api-key"),
    "forbidden": ("permission_error", "Your API key does not have permission to use the specified resource."),
    "not_found": ("not_found_error", "model: llmcassette-model"),
    "bad_request": ("invalid_request_error", "messages: at least one message is required"),
    "server_error": ("api_error", "Internal server error"),
    "bad_gateway": ("api_error", "Bad gateway"),
    "unavailable": ("api_error", "Service unavailable"),
    "overloaded": ("overloaded_error", "Overloaded"),
}


class AnthropicProfile(Profile):
    """Anthropic Messages: ``api.anthropic.com``, ``/v1/messages`` anywhere, Claude on Vertex AI."""

    name: ClassVar[str] = "anthropic"
    framing: ClassVar[Framing] = Framing.SSE
    terminator: ClassVar[bytes | None] = None
    volatile_fields: ClassVar[tuple[str, ...]] = ("metadata.user_id",)

    def matches(self, request: RequestInfo) -> bool:
        path = request.path
        return (
            request.host == "api.anthropic.com"
            or "anthropic-version" in request.headers
            or path.endswith(("/v1/messages", "/v1/complete"))
            or "/v1/messages/" in path
            or "/publishers/anthropic/models/" in path
        )

    def is_streaming(self, request: RequestInfo) -> bool:
        return request.path.endswith(":streamRawPredict") or super().is_streaming(request)

    def is_terminator(self, event: bytes) -> bool:
        """``message_stop`` ends a complete stream."""
        decoded = decode_event(event, self.framing, named_without_data=True)
        if decoded is None:
            return False
        # The payload's `type` wins over the `event:` name here, where the decoder's `type` puts
        # the name first: Anthropic sends both, equal, so only a damaged event tells them apart,
        # and the check has always gone by the payload.
        value = decoded.value
        kind = value.get("type") if isinstance(value, Mapping) else None
        return (str(kind) if kind else decoded.name) == "message_stop"

    # -- errors -------------------------------------------------------------------------------

    def status_for(self, kind: str) -> int:
        return 529 if kind == "overloaded" else super().status_for(kind)

    def error_payload(self, kind: str, status: int, message: str | None, retry_after_s: float | None) -> Any:
        error_type, default = _ERRORS.get(kind, _ERRORS["server_error"])
        text = message or default
        request_id = "req_011C" + stable_token(self.name, kind, status, text, length=20, alphabet=_BASE58)
        return {"type": "error", "error": {"type": error_type, "message": text}, "request_id": request_id}

    def error_headers(self, kind: str, status: int, body: bytes) -> list[tuple[str, str]]:
        value = parse_json(body)
        request_id = value.get("request_id") if isinstance(value, Mapping) else None
        return [("request-id", request_id)] if isinstance(request_id, str) else []

    def rate_limit_headers(self, *, now_s: float | None = None) -> tuple[tuple[str, str], ...]:
        reset = rfc3339((FALLBACK_NOW_S if now_s is None else now_s) + 60)
        limits = {"requests": "50", "tokens": "50000", "input-tokens": "40000", "output-tokens": "10000"}
        headers: list[tuple[str, str]] = []
        for family, limit in limits.items():
            remaining = "0" if family == "requests" else limit
            prefix = f"anthropic-ratelimit-{family}"
            headers += [
                (f"{prefix}-limit", limit),
                (f"{prefix}-remaining", remaining),
                (f"{prefix}-reset", reset),
            ]
        return tuple(headers)

    # -- stream shapes ------------------------------------------------------------------------

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        """``event: error`` with the error object; ``overloaded`` gives ``overloaded_error``."""
        error_type, default = _ERRORS.get(kind, _ERRORS["server_error"])
        return sse_event(
            {"type": "error", "error": {"type": error_type, "message": message or default}}, event="error"
        )

    def empty_stream(self) -> bytes:
        """``message_start`` with no content, ``message_delta`` (``end_turn``), ``message_stop``."""
        message: dict[str, Any] = {
            "id": "msg_llmcassetteEmpty",
            "type": "message",
            "role": "assistant",
            "model": "llmcassette-empty",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        delta = {"stop_reason": "end_turn", "stop_sequence": None}
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": message},
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 0}},
            {"type": "message_stop"},
        ]
        return b"".join(sse_event(event, event=str(event["type"])) for event in events)

    # -- summaries ----------------------------------------------------------------------------

    def body_framing(self, body: bytes) -> Framing:
        """SSE, whatever else the body looks like, when it looks like a stream at all."""
        return Framing.SSE if super().body_framing(body) is not Framing.NONE else Framing.NONE

    def summarize_stream(self, events: Sequence[Event]) -> Summary:
        """
        Text of every text block joined, thinking as reasoning, client tool calls (``tool_use``
        blocks; server tools such as code execution run at Anthropic and are left out).
        """
        summary = Summary()
        text: list[str] = []
        reasoning: list[str] = []
        calls = ToolCallAssembly()
        inputs: dict[Any, Any] = {}
        kinds: dict[Any, str] = {}
        for event in events:
            value = event.value
            if not isinstance(value, Mapping):
                continue
            kind = value.get("type") or event.name
            index = value.get("index")
            if kind == "message_start" and isinstance(value.get("message"), Mapping):
                summary.usage.update(flat_ints(value["message"].get("usage")))
            elif kind == "content_block_start" and isinstance(value.get("content_block"), Mapping):
                block = value["content_block"]
                kinds[index] = str(block.get("type"))
                _add_block(block, text, reasoning)
                if block.get("type") == "tool_use":
                    calls.add(index, name=block.get("name"), id=block.get("id"))
                    inputs[index] = block.get("input")
            elif kind == "content_block_delta" and isinstance(value.get("delta"), Mapping):
                delta = value["delta"]
                if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                    text.append(delta["text"])
                elif delta.get("type") == "thinking_delta" and isinstance(delta.get("thinking"), str):
                    reasoning.append(delta["thinking"])
                elif delta.get("type") == "input_json_delta" and kinds.get(index) == "tool_use":
                    calls.add(index, arguments=delta.get("partial_json"))
            elif kind == "message_delta":
                delta = value.get("delta") or {}
                if isinstance(delta, Mapping) and delta.get("stop_reason"):
                    summary.finish_reason = str(delta["stop_reason"])
                summary.usage.update(flat_ints(value.get("usage")))
            elif kind == "error" and summary.error is None:
                summary.error = _error_text(value)
        for index, given in inputs.items():  # a call whose input streamed no fragments
            calls.set_arguments(index, compact_json(given if given is not None else {}))
        summary.text = "".join(text)
        summary.reasoning = "".join(reasoning)
        summary.tool_calls = calls.result()
        return summary

    def summarize_json(self, value: Any) -> Summary:
        if not isinstance(value, Mapping):
            return Summary()
        if value.get("type") == "error":
            return Summary(error=_error_text(value))
        summary = Summary(usage=flat_ints(value.get("usage")))
        text: list[str] = []
        reasoning: list[str] = []
        for block in value.get("content") or ():
            if not isinstance(block, Mapping):
                continue
            _add_block(block, text, reasoning)
            if block.get("type") == "tool_use":
                arguments = compact_json(block.get("input") or {})
                summary.tool_calls.append(ToolCall(str(block.get("name") or ""), arguments, block.get("id")))
        summary.text = "".join(text)
        summary.reasoning = "".join(reasoning)
        if value.get("stop_reason"):
            summary.finish_reason = str(value["stop_reason"])
        return summary


def _add_block(block: Mapping[str, Any], text: list[str], reasoning: list[str]) -> None:
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        text.append(block["text"])
    elif block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
        reasoning.append(block["thinking"])


def _error_text(value: Mapping[str, Any]) -> str:
    error = value.get("error")
    if isinstance(error, Mapping):
        return str(error.get("message") or error.get("type") or compact_json(error))
    return compact_json(value)
