"""
What faults and provider profiles see of an exchange: the request as sent, and the response as it
will be played (status, headers, chunks and how the stream ends).

A replayed response is a :class:`Playback`: stream faults transform one into another, status and
connection faults replace it. Everything here is plain data, so faults are pure functions that can
be tested on chunk lists without any I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from ._bodies import NOT_JSON, json_value

__all__ = ["Ending", "Playback", "RequestInfo", "replace_span"]


@dataclass(frozen=True)
class RequestInfo:
    """A request as faults and profiles see it."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased, first value
    body: bytes = b""

    @cached_property
    def path(self) -> str:
        return urlsplit(self.url).path

    @cached_property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    @cached_property
    def query(self) -> str:
        return urlsplit(self.url).query

    @cached_property
    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        if self.body.lstrip()[:1] not in (b"{", b"["):
            return None
        value = json_value(self.body)  # JSON nested too deep for profiles to walk is not read
        return None if value is NOT_JSON else value


class Ending(enum.StrEnum):
    """How a played stream ends after its last chunk."""

    #: Cleanly: the body is complete as far as the transport can tell.
    COMPLETE = "complete"
    #: With a transport error (``error_type`` names the httpx exception class).
    ERROR = "error"
    #: In silence: nothing more arrives, so the client's read timeout fires.
    STALL = "stall"


@dataclass(frozen=True)
class Playback:
    """A response as it will be played: head, chunks in order, and how it ends."""

    status: int
    headers: tuple[tuple[str, str], ...]
    chunks: tuple[bytes, ...]
    #: Extra wait before each chunk, in milliseconds (``slow``, ``stall``); None for no waits.
    delays_ms: tuple[float, ...] | None = None
    #: Wait before the response head, in milliseconds (time to first byte).
    head_delay_ms: float = 0.0
    ending: Ending = Ending.COMPLETE
    error_type: str | None = None
    error_message: str = ""
    #: How long the stream stays silent at a ``STALL`` ending before the client's timeout, in ms;
    #: None means for ever.
    stall_ms: float | None = None
    #: The reason phrase of the status line; empty for the standard one.
    reason: str = ""

    @classmethod
    def recorded(
        cls,
        status: int,
        headers: tuple[tuple[str, str], ...],
        chunks: tuple[bytes, ...],
        ending: Ending = Ending.COMPLETE,
        error_type: str | None = None,
        error_message: str = "",
        reason: str = "",
    ) -> Playback:
        """
        A recording's playback, with no waits: what replay makes of each interaction it plays.
        The same value as the constructor's, made in a quarter of the time: a frozen dataclass
        sets each field through ``object.__setattr__``, and the fields left out keep the
        defaults the class holds.
        """
        playback = object.__new__(cls)
        fields = playback.__dict__
        fields["status"] = status
        fields["headers"] = headers
        fields["chunks"] = chunks
        fields["ending"] = ending
        fields["error_type"] = error_type
        fields["error_message"] = error_message
        fields["reason"] = reason
        return playback

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def with_body(self, chunks: list[bytes] | tuple[bytes, ...]) -> Playback:
        """The same playback with other chunks; per-chunk delays are dropped if the count changed."""
        delays = self.delays_ms if self.delays_ms is not None and len(self.delays_ms) == len(chunks) else None
        headers = tuple(
            (k, str(sum(len(c) for c in chunks)) if k.lower() == "content-length" else v)
            for k, v in self.headers
        )
        return replace(self, chunks=tuple(chunks), delays_ms=delays, headers=headers)


def replace_span(chunks: list[bytes] | tuple[bytes, ...], start: int, end: int, new: bytes) -> list[bytes]:
    """
    Replace bytes ``start:end`` of the joined chunks with ``new``, keeping every chunk boundary
    outside the span: the chunk where the span starts takes the replacement, and chunks wholly
    inside the span disappear.
    """
    out: list[bytes] = []
    position = 0
    placed = False
    for chunk in chunks:
        chunk_start, chunk_end = position, position + len(chunk)
        position = chunk_end
        if chunk_end <= start or chunk_start >= end and placed:
            out.append(chunk)
            continue
        before = chunk[: max(0, start - chunk_start)] if chunk_start < start else b""
        after = chunk[max(0, end - chunk_start) :] if chunk_end > end else b""
        piece = before + (b"" if placed else new) + after
        placed = True
        if piece:
            out.append(piece)
    if not placed:
        out.append(new)
    return out
