"""The attempt log: every request a cassette saw, and what it got."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Attempt"]


@dataclass
class Attempt:
    """One request seen under a cassette."""

    #: Position in the log, from 0.
    index: int
    method: str
    #: The request URL, scrubbed as it would be stored.
    url: str
    #: Index of the recorded interaction that answered it, or None when it was recorded live.
    interaction: int | None = None
    #: True when the request went to the network and was recorded.
    recorded: bool = False
    #: The response status, once known.
    status: int | None = None
    #: The body chunks the client received, in order, with their boundaries.
    chunks: list[bytes] = field(default_factory=list)
    #: The error the client got instead of (or in the middle of) a response, if any.
    error: str | None = None
