"""
WebSocket faults that add the provider's own event to a session: an error, new rate limits.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from .._websocket._script import Close, Send, SessionContext, SessionScript
from ._base import MAX_COUNT, MAX_RETRY_AFTER_S, MAX_TEXT_CHARS
from ._session import SessionFault, after_field, cut_point, dialect_of, ended, inserted, resolve_after
from .websocket_endings import default_reason

__all__ = ["WsError", "WsRateLimits"]

_OPENAI_SERVER_ERROR = (
    "The server had an error while processing your request. Sorry about that! You can retry your "
    "request, or contact us through our help center if the error persists."
)


def _event_id(context: SessionContext, after: int, kind: str) -> str:
    # Ids in the provider's style, the same every run: the session's call and the event's place.
    return f"event_llmcassette_{kind}_{context.call}_{after}"


class WsError(SessionFault):
    """
    The provider's own error after ``after`` server messages.

    OpenAI Realtime: an ``error`` event (``{"type": "error", "error": {"type", "code", "message",
    "param", "event_id"}}``) and the session goes on as recorded, as the service keeps a session
    open after most errors; the openai SDK's ``recv()`` yields a ``RealtimeErrorEvent``, and its
    ``dispatch_events()`` raises ``OpenAIError`` when no ``error`` handler is registered.
    Gemini Live has no error event: the service reports an error in the close frame, so there the
    session closes with 1011 and the service's reason, and google-genai raises ``errors.APIError``
    (code 1011). Another WebSocket closes with 1011 too.
    """

    name = "ws_error"
    summary = "the provider's error after N server messages (OpenAI `error` event; Gemini Live: close 1011)"
    example = "ws_error:after=2,error_type=server_error"

    after: int | None = after_field("server messages sent before the error")
    error_type: str = Field(
        default="server_error", min_length=1, max_length=MAX_TEXT_CHARS, description="OpenAI `error.type`"
    )
    error_code: str | None = Field(
        default=None, max_length=MAX_TEXT_CHARS, description="OpenAI `error.code` (default: none)"
    )
    message: str | None = Field(
        default=None, max_length=MAX_TEXT_CHARS, description="error message instead of the provider's"
    )

    def apply_session(self, script: SessionScript, context: SessionContext) -> SessionScript:
        after = resolve_after(self.after, script)
        if dialect_of(context.url) != "openai-realtime":
            reason = self.message if self.message is not None else default_reason(1011, context)
            reason = reason.encode("utf-8")[:123].decode("utf-8", errors="ignore")
            return ended(script, after, Close("server", 1011, reason))
        error = {
            "type": self.error_type,
            "code": self.error_code,
            "message": self.message if self.message is not None else _OPENAI_SERVER_ERROR,
            "param": None,
            "event_id": None,
        }
        event = {"type": "error", "event_id": _event_id(context, after, "error"), "error": error}
        return inserted(script, after, Send(json.dumps(event, separators=(",", ":")), 0.0))


class WsRateLimits(SessionFault):
    """
    An OpenAI Realtime ``rate_limits.updated`` event after ``after`` server messages, with the
    remaining ``requests`` and ``tokens`` given, both resetting in ``reset_s`` seconds.

    The limits are those of the last ``rate_limits.updated`` recorded before that point (left
    out when none was). The session goes on as recorded: the event is for a client that paces
    itself by the limits it is told. The openai SDK yields a ``RateLimitsUpdatedEvent``. Only
    OpenAI Realtime sessions have the event: other sessions are not counted by this fault.
    """

    name = "ws_rate_limits"
    summary = "an OpenAI Realtime `rate_limits.updated` event with the remaining requests and tokens"
    example = "ws_rate_limits:after=1,requests=0,tokens=0,reset_s=20"
    dialects = frozenset({"openai-realtime"})

    after: int | None = after_field("server messages sent before the event")
    requests: int = Field(default=0, ge=0, le=MAX_COUNT, description="requests remaining")
    tokens: int = Field(default=0, ge=0, le=2**53, description="tokens remaining")
    reset_s: float = Field(
        default=1.0, ge=0, le=MAX_RETRY_AFTER_S, allow_inf_nan=False, description="seconds until both reset"
    )

    breaks_session = False

    def apply_session(self, script: SessionScript, context: SessionContext) -> SessionScript:
        after = resolve_after(self.after, script)
        limits = _recorded_limits(script, cut_point(script, after))
        rate_limits: list[dict[str, Any]] = []
        for name, remaining in (("requests", self.requests), ("tokens", self.tokens)):
            entry: dict[str, Any] = {"name": name}
            if name in limits:
                entry["limit"] = limits[name]
            entry.update(remaining=remaining, reset_seconds=self.reset_s)
            rate_limits.append(entry)
        event_id = _event_id(context, after, "rate_limits")
        event = {"type": "rate_limits.updated", "event_id": event_id, "rate_limits": rate_limits}
        return inserted(script, after, Send(json.dumps(event, separators=(",", ":")), 0.0))


def _recorded_limits(script: SessionScript, before: int) -> dict[str, Any]:
    """The limits of the last ``rate_limits.updated`` the server sent before step ``before``."""
    for step in reversed(script.steps[:before]):
        if (
            not isinstance(step, Send)
            or isinstance(step.data, bytes)
            or "rate_limits.updated" not in step.data
        ):
            continue
        try:
            value = json.loads(step.data)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("type") == "rate_limits.updated":
            entries = value.get("rate_limits")
            if isinstance(entries, list):
                return {
                    entry["name"]: entry["limit"]
                    for entry in entries
                    if isinstance(entry, dict) and isinstance(entry.get("name"), str) and "limit" in entry
                }
    return {}
