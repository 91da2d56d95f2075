"""
The values profiles hand out: error responses, tool calls and summaries, plus the kinds of
status fault. They live apart from :mod:`._base` so that helpers can use them without a cycle;
:mod:`._base` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ERROR_KINDS", "ErrorResponse", "Summary", "ToolCall"]

#: The kinds of status fault a profile answers, with the status each has unless the profile says otherwise.
ERROR_KINDS: dict[str, int] = {
    "rate_limit": 429,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "bad_request": 400,
    "server_error": 500,
    "bad_gateway": 502,
    "unavailable": 503,
    "overloaded": 503,
    "status": 500,
}


@dataclass(frozen=True)
class ErrorResponse:
    """An error response in a provider's own shape."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        lname = name.lower()
        return next((value for key, value in self.headers if key.lower() == lname), None)


@dataclass(frozen=True)
class ToolCall:
    """A tool call as a provider-neutral value; ``arguments`` is the assembled JSON text."""

    name: str
    arguments: str
    id: str | None = None


@dataclass
class Summary:
    """What an exchange amounted to, in provider-neutral terms."""

    #: The visible text of the answer (the first choice or candidate), pieces joined in order.
    text: str = ""
    #: Tool calls the client is asked to run, in order.
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: Integer usage fields in the provider's own names, nested ones dotted.
    usage: dict[str, int] = field(default_factory=dict)
    #: The provider's own finish or stop reason (``stop``, ``end_turn``, ``STOP``, ...).
    finish_reason: str | None = None
    #: The error the provider reported, in its body or in the stream, if any.
    error: str | None = None
    #: Stream events that carry data (keep-alive comments left out); 0 for a plain JSON body.
    events: int = 0
    #: Reasoning or thinking text the provider streamed besides the answer, when it shows any.
    reasoning: str = ""
