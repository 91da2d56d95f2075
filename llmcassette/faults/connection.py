"""
Connection faults: the client gets no response at all, only the transport error a real network
failure raises (``ConnectError``, ``ConnectTimeout``, ``ReadTimeout`` of httpx or httpx2).

A fault names the exception class; the engine raises that class from the library the client uses,
after the fault's delay. Timeouts in the middle of a stream are the ``stall`` stream fault.
"""

from __future__ import annotations

from pydantic import Field

from ._base import ConnectionFailure, FaultContext, ReplacingFault

__all__ = ["ConnectError", "ConnectTimeout", "ReadTimeout"]

# The texts httpx passes on from the socket layer on Linux, so a client that logs or matches on
# them sees what a real failure shows.
_REFUSED = "[Errno 111] Connection refused"
_TIMED_OUT = "timed out"


class ConnectError(ReplacingFault):
    """The connection is refused: the client gets ``ConnectError`` at once."""

    name = "connect_error"
    summary = "connection refused (ConnectError), before any request is sent"
    example = "connect_error:times=2"

    message: str | None = Field(default=None, description="error message instead of a refused connection")

    def respond(self, context: FaultContext) -> ConnectionFailure:
        """A refused connection."""
        return ConnectionFailure("ConnectError", self.message or _REFUSED)


class ConnectTimeout(ReplacingFault):
    """The connection is never established: the client gets ``ConnectTimeout``."""

    name = "connect_timeout"
    summary = "the connection attempt times out (ConnectTimeout)"
    example = "connect_timeout:delay_ms=100,times=1"

    message: str | None = Field(default=None, description="error message instead of `timed out`")
    delay_ms: float = Field(
        default=0, ge=0, allow_inf_nan=False, description="how long the attempt takes to time out, in ms"
    )

    def respond(self, context: FaultContext) -> ConnectionFailure:
        """A connection attempt that times out after ``delay_ms``."""
        return ConnectionFailure("ConnectTimeout", self.message or _TIMED_OUT, self.delay_ms)


class ReadTimeout(ReplacingFault):
    """The request is sent but no response head arrives: the client gets ``ReadTimeout``."""

    name = "read_timeout"
    summary = "no response head before the client's read timeout (ReadTimeout)"
    example = "read_timeout:nth=1"

    message: str | None = Field(default=None, description="error message instead of `timed out`")
    delay_ms: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="how long the silence lasts, in ms (default: the client's read timeout, or 0)",
    )

    def respond(self, context: FaultContext) -> ConnectionFailure:
        """Silence for the client's read timeout (or ``delay_ms``), then ``ReadTimeout``."""
        delay_ms = self.delay_ms
        if delay_ms is None:
            # Without a timeout from the client a real stall would last for ever; fail at once instead.
            delay_ms = context.read_timeout_s * 1000.0 if context.read_timeout_s is not None else 0.0
        return ConnectionFailure("ReadTimeout", self.message or _TIMED_OUT, delay_ms)
