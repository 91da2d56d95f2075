"""
WebSocket faults that end a session early, or hold it silent: a close frame, a drop, a stall.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from .._websocket._models import close_code_problem
from .._websocket._script import Close, Pause, SessionContext, SessionScript
from ._base import MAX_DURATION_S
from ._session import SessionFault, after_field, dialect_of, ended, inserted, resolve_after

__all__ = ["WsClose", "WsDrop", "WsStall"]

#: The longest close reason a close frame holds, in bytes of UTF-8 (RFC 6455 5.5: 125 with the code).
MAX_REASON_BYTES = 123

# The reason sent when none is given: what servers commonly send with each code. Gemini Live
# words its internal error its own way.
_REASONS = {
    1000: "",
    1001: "Going away",
    1003: "Unsupported data",
    1007: "Invalid frame payload data",
    1008: "Policy violation",
    1009: "Message too big",
    1011: "Internal server error",
    1012: "Service restart",
    1013: "Try again later",
    1014: "Bad gateway",
}
_GEMINI_REASONS = {1011: "Internal error encountered.", 1013: "The service is currently unavailable."}


def default_reason(code: int, context: SessionContext) -> str:
    """The reason sent with ``code`` when the fault gives none."""
    if dialect_of(context.url) == "gemini-live" and code in _GEMINI_REASONS:
        return _GEMINI_REASONS[code]
    return _REASONS.get(code, "")


class WsClose(SessionFault):
    """
    The server closes the session with ``code`` and ``reason`` after ``after`` server messages.

    The close frame goes out once ``after`` server messages have been sent (and the client
    messages recorded before the next one have arrived); nothing recorded after it is played.
    ``code`` is any code a close frame can carry: 1011 (internal error), 1008 (policy violation),
    1013 (try again later), 1012 (service restart), or a provider's own 4000-4999. Without a
    ``reason`` the usual one for the code is sent (Gemini Live's own wording for 1011 and 1013).

    What the SDKs make of it: the openai realtime connection's ``recv()`` raises websockets'
    ``ConnectionClosedError`` (``ConnectionClosedOK`` for 1000), and with ``on_reconnecting`` set
    it reconnects on 1001, 1011, 1012 and 1013 but not on 1008 or 4xxx; google-genai raises
    ``errors.APIError`` with the close code as its ``code`` and the reason as its message.
    """

    name = "ws_close"
    summary = "the server closes the WebSocket with a code and reason after N server messages"
    example = "ws_close:code=1011,after=3"

    after: int | None = after_field("server messages sent before the close frame")
    code: int = Field(
        default=1011, ge=1000, le=4999, description="close code (1011, 1008, 1013, 4000-4999, ...)"
    )
    reason: str | None = Field(
        default=None,
        max_length=MAX_REASON_BYTES,
        description="close reason, at most 123 bytes of UTF-8; default: the usual one for the code",
    )

    @field_validator("code")
    @classmethod
    def _sendable(cls, code: int) -> int:
        problem = close_code_problem(code)
        if problem is not None:
            raise ValueError(problem)
        return code

    @field_validator("reason")
    @classmethod
    def _fits(cls, reason: str | None) -> str | None:
        if reason is not None and len(reason.encode("utf-8")) > MAX_REASON_BYTES:
            raise ValueError(f"a close reason holds at most {MAX_REASON_BYTES} bytes of UTF-8")
        return reason

    def apply_session(self, script: SessionScript, context: SessionContext) -> SessionScript:
        reason = self.reason if self.reason is not None else default_reason(self.code, context)
        return ended(script, resolve_after(self.after, script), Close("server", self.code, reason))


class WsDrop(SessionFault):
    """
    The connection ends without a close frame after ``after`` server messages.

    The connection is closed with no closing handshake, as when a load balancer or the network
    cuts it. The openai SDK's ``recv()`` raises websockets'
    ``ConnectionClosedError`` with no close frame received (code 1006, which ``on_reconnecting``
    treats as recoverable); google-genai raises ``errors.APIError`` with code 1006.
    """

    name = "ws_drop"
    summary = "the connection drops without a close frame after N server messages"
    example = "ws_drop:after=2"

    after: int | None = after_field("server messages sent before the drop")

    def apply_session(self, script: SessionScript, context: SessionContext) -> SessionScript:
        return ended(script, resolve_after(self.after, script), Close("none"))


class WsStall(SessionFault):
    """
    Silence after ``after`` server messages, for ``seconds`` or for ever.

    The connection stays open and answers pings (a stalled server's WebSocket layer still does),
    but no message comes: for ``seconds``, after which the rest of the recording plays, or for
    ever (the default), until the client gives up and closes. The realtime SDKs have no read
    timeout of their own, so a test bounds its wait (``asyncio.timeout``) and sees that wait
    expire. What the client sends meanwhile is not checked against the recording.
    """

    name = "ws_stall"
    summary = "the server goes silent after N server messages, for a number of seconds or for ever"
    example = "ws_stall:after=2,seconds=30"

    after: int | None = after_field("server messages sent before the silence")
    seconds: float | None = Field(
        default=None,
        ge=0,
        le=MAX_DURATION_S,
        allow_inf_nan=False,
        description="length of the silence, seconds; default: for ever",
    )

    def apply_session(self, script: SessionScript, context: SessionContext) -> SessionScript:
        pause = Pause(None if self.seconds is None else self.seconds * 1000.0)
        return inserted(script, resolve_after(self.after, script), pause)
