"""
Connection faults: the client gets no response at all, only the transport error a real network
failure raises (``ConnectError``, ``ConnectTimeout``, ``ReadTimeout`` of httpx or httpx2).

A fault names the exception class; the engine raises that class from the library the client uses,
after the fault's delay. Timeouts in the middle of a stream are the ``stall`` stream fault.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from .._flavors import REFUSED, TIMED_OUT
from ._base import MAX_DURATION_MS, MAX_TEXT_CHARS, ConnectionFailure, FaultContext, ReplacingFault

__all__ = ["ConnectError", "ConnectTimeout", "ReadTimeout"]


class _ConnectionFault(ReplacingFault):
    """
    What the connection faults share (not registered itself): each names the exception the client
    gets and the message it carries unless ``message`` says otherwise, and may delay it.
    """

    family = "connection"
    # They raise the HTTP library's exceptions; a WebSocket handshake is refused with the status
    # faults instead, so sessions are not counted.
    acts_on = "http"
    #: Name of the httpx/httpx2 exception class the client gets.
    error_type: ClassVar[str]
    #: The exception's message when the fault gives none: the socket layer's text, as httpx passes
    #: it on (the async transports and TLS say theirs instead: see `network_text`).
    default_message: ClassVar[str] = TIMED_OUT

    message: str | None = Field(
        default=None, max_length=MAX_TEXT_CHARS, description="error message instead of `timed out`"
    )

    def _delay_ms(self, context: FaultContext) -> float:
        """How long the failure takes to show, in milliseconds."""
        return 0.0

    def _waits_for_read_timeout(self) -> bool:
        """Whether the failure comes once the client's read timeout has passed."""
        return False

    def respond(self, context: FaultContext) -> ConnectionFailure:
        """The failure, after the fault's delay."""
        return ConnectionFailure(
            self.error_type,
            self.message or self.default_message,
            self._delay_ms(context),
            self._waits_for_read_timeout(),
        )


class ConnectError(_ConnectionFault):
    """The connection is refused: the client gets ``ConnectError`` at once."""

    name = "connect_error"
    summary = "connection refused (ConnectError), before any request is sent"
    example = "connect_error:times=2"
    error_type = "ConnectError"
    default_message = REFUSED

    message: str | None = Field(
        default=None, max_length=MAX_TEXT_CHARS, description="error message instead of a refused connection"
    )


class ConnectTimeout(_ConnectionFault):
    """The connection is never established: the client gets ``ConnectTimeout`` once its connect
    timeout has passed (on the virtual clock when one is active)."""

    name = "connect_timeout"
    summary = "the connection attempt times out (ConnectTimeout)"
    example = "connect_timeout:delay_ms=100,times=1"
    error_type = "ConnectTimeout"

    delay_ms: float | None = Field(
        default=None,
        ge=0,
        le=MAX_DURATION_MS,
        allow_inf_nan=False,
        description="how long the attempt takes to time out, in ms; default: the client's connect timeout",
    )

    def _delay_ms(self, context: FaultContext) -> float:
        if self.delay_ms is not None:
            return self.delay_ms
        # A connection that never comes is given up after the client's connect timeout, as a
        # head that never comes after its read timeout; with none, fail at once.
        return context.connect_timeout_s * 1000.0 if context.connect_timeout_s is not None else 0.0


class ReadTimeout(_ConnectionFault):
    """The request is sent but no response head arrives: the client gets ``ReadTimeout``."""

    name = "read_timeout"
    summary = "no response head before the client's read timeout (ReadTimeout)"
    example = "read_timeout:nth=1"
    error_type = "ReadTimeout"

    delay_ms: float | None = Field(
        default=None,
        ge=0,
        le=MAX_DURATION_MS,
        allow_inf_nan=False,
        description="how long the silence lasts, in ms (default: the client's read timeout, or 0)",
    )

    def _delay_ms(self, context: FaultContext) -> float:
        if self.delay_ms is not None:
            return self.delay_ms
        # Without a timeout from the client a real stall would last for ever; fail at once instead.
        return context.read_timeout_s * 1000.0 if context.read_timeout_s is not None else 0.0

    def _waits_for_read_timeout(self) -> bool:
        return self.delay_ms is None
