"""The attempt log: every request a cassette saw, and what it got."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ._scrub import Scrubber

if TYPE_CHECKING:
    from ._websocket._models import WebSocketClose, WebSocketMessage

__all__ = ["Attempt"]


class _Received:
    """
    ``Attempt.chunks``: a list of its own, or the chunks a replay stream has handed over so far,
    read from the stream when asked (so that replay does no per-chunk work for the log).
    """

    def __get__(self, attempt: Attempt | None, owner: type | None = None) -> list[bytes]:
        if attempt is None:
            return ()  # type: ignore[return-value]  # the dataclass's default: no chunks
        source = attempt._chunk_source
        if source is not None:
            return source.delivered()
        chunks = attempt._chunks
        if chunks is None:
            # Made when first asked for (an attempt is made on every request, most never read).
            chunks = attempt._chunks = []
        return chunks

    def __set__(self, attempt: Attempt, chunks: Iterable[bytes]) -> None:
        attempt._chunks = list(chunks)
        attempt._chunk_source = None


class ChunkSource(Protocol):
    """What an attempt reads its chunks from: a replay stream."""

    def delivered(self) -> list[bytes]: ...


class _HeaderPairs:
    """
    ``Attempt._raw_headers``: the request's headers as (name, value) pairs, made when first asked
    from the copy of the library's own list taken when the request was seen. httpx and httpx2
    keep each header as (name, lower-case name, value): copying that list costs a fifth of
    making the pairs, which most attempts never need. The copy is the request's headers as they
    were: a client that changes them afterwards (an auth flow) changes neither.
    """

    def __get__(self, attempt: Attempt | None, owner: type | None = None) -> list[tuple[bytes, bytes]]:
        if attempt is None:
            return ()  # type: ignore[return-value]  # the dataclass's default: no headers
        pairs = attempt._pairs
        if pairs is None:
            entries = attempt._header_entries
            pairs = attempt._pairs = [(name, value) for name, _, value in entries or ()]
            attempt._header_entries = None
        return pairs

    def __set__(self, attempt: Attempt, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        attempt._pairs = list(pairs)
        attempt._header_entries = None


_Item = TypeVar("_Item")


class _OwnList(Generic[_Item]):
    """
    A list each attempt makes when first asked for (``faults``, ``messages``): most attempts never
    add to theirs, and each list made on every request is one more object for the collector.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}"  # (a class default of `_Kept`: None until made)

    def __get__(self, attempt: Attempt | None, owner: type | None = None) -> list[_Item]:
        if attempt is None:
            return ()  # type: ignore[return-value]  # the dataclass's default: an empty list
        kept: list[_Item] | None = getattr(attempt, self._slot)
        if kept is None:
            kept = []
            setattr(attempt, self._slot, kept)
        return kept

    def __set__(self, attempt: Attempt, items: Iterable[_Item]) -> None:
        # A list is kept as it is, as a plain attribute would be: a WebSocket session's log
        # shares its list of messages with its attempt, which shows them as they cross.
        setattr(attempt, self._slot, items if isinstance(items, list) else list(items))


class _Kept:
    # Where `Attempt.chunks` are kept (see `_Received`): a list, or the replay stream they are read
    # from; and the request's headers (see `_HeaderPairs`). Class defaults outside the dataclass's
    # fields: an attempt sets them only when used.
    _chunks: list[bytes] | None = None
    _chunk_source: ChunkSource | None = None
    _pairs: list[tuple[bytes, bytes]] | None = None
    _header_entries: tuple[tuple[bytes, bytes, bytes], ...] | None = None
    _faults: list[str] | None = None
    _messages: list[WebSocketMessage] | None = None


@dataclass(eq=False)
class Attempt(_Kept):
    """
    One request seen under a cassette: what was asked, what answered it, and what the client got.

    Headers and body are shown scrubbed; ``fingerprints`` lets a test tell secret values apart
    (did the retry carry a refreshed token?) without the log holding them.
    """

    #: Position in the log, from 0.
    index: int
    method: str
    #: The request URL, scrubbed as it would be stored.
    url: str
    #: Seconds since the cassette was entered, on the virtual clock when one is active.
    time_s: float = 0.0
    #: Index of the recorded interaction that answered it; None when a fault answered or it was recorded.
    interaction: int | None = None
    #: True when the request went to the network and was recorded.
    recorded: bool = False
    #: The faults applied to this request, as spec strings, in order.
    faults: _OwnList[str] = _OwnList()
    #: The provider profile the request was taken for (set when faults were considered).
    provider: str | None = None
    #: The response status, once known.
    status: int | None = None
    #: The body chunks the client received, in order, with their boundaries.
    chunks: _Received = _Received()
    #: The error the client got instead of (or in the middle of) a response, if any.
    error: str | None = None
    #: A WebSocket session's messages, both directions in the order they crossed (``sender``,
    #: ``offset_ms`` since the handshake, ``data``).
    messages: _OwnList[WebSocketMessage] = _OwnList()
    #: How a WebSocket session ended (``by``, ``code``, ``reason``); None while it is open.
    close: WebSocketClose | None = None
    _body: bytes = field(default=b"", repr=False)
    _scrubber: Scrubber | None = field(default=None, repr=False)
    # (not a field: the engine sets the request's headers through `_new`)
    _raw_headers = _HeaderPairs()

    @staticmethod
    def _new(
        index: int,
        method: str,
        url: str,
        time_s: float,
        headers: Any,
        body: bytes,
        scrubber: Scrubber | None,
    ) -> Attempt:
        # The engine's constructor, made on every request: positional, and setting only what
        # differs from the defaults the class holds (the dataclass's keyword `__init__` costs
        # about ten times as much; `faults` and `messages` are made when first used). `headers`
        # is the request's own: httpx's and httpx2's are copied as they keep them (see
        # `_HeaderPairs`), any other by their `raw` pairs. (A static method: a class method is
        # bound anew on every call.)
        attempt = object.__new__(Attempt)
        attempt.index = index
        attempt.method = method
        attempt.url = url
        attempt.time_s = time_s
        entries = getattr(headers, "_list", None)
        if type(entries) is list:
            attempt._header_entries = tuple(entries)
        else:
            attempt._pairs = list(headers.raw)
        attempt._body = body
        attempt._scrubber = scrubber
        return attempt

    def received_from(self, source: ChunkSource) -> None:
        """Read :attr:`chunks` from ``source`` from now on (a replay stream)."""
        self._chunk_source = source

    def __getstate__(self) -> dict[str, Any]:
        # A copy or a pickle holds the chunks received so far, not the stream they are read from.
        state = dict(self.__dict__)
        state["_chunks"] = self.chunks
        state["_chunk_source"] = None
        state["_pairs"] = self._raw_headers
        state["_header_entries"] = None
        return state

    @property
    def fault(self) -> str | None:
        """The first fault applied, as a spec string, or None."""
        return self.faults[0] if self.faults else None

    @property
    def headers(self) -> dict[str, str]:
        """Request headers, lower-case names, scrubbed (repeated headers joined by ``, ``)."""
        merged: dict[str, str] = {}
        for raw_name, raw_value in self._raw_headers:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            if self._scrubber is not None:
                value = self._scrubber.scrub_header_value(name, value)
            merged[name] = f"{merged[name]}, {value}" if name in merged else value
        return merged

    @property
    def fingerprints(self) -> dict[str, str]:
        """A short hash of each secret header's real value, to compare attempts by."""
        secret = self._scrubber.secret_headers if self._scrubber is not None else frozenset()
        return {
            raw_name.decode("latin-1").lower(): hashlib.sha256(raw_value).hexdigest()[:12]
            for raw_name, raw_value in self._raw_headers
            if raw_name.decode("latin-1").lower() in secret
        }

    @property
    def body(self) -> bytes:
        """The request body, scrubbed."""
        return self._scrubber.scrub_body(self._body) if self._scrubber is not None else self._body

    @property
    def json(self) -> Any:
        """The request body parsed as JSON (scrubbed), or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python recurses
            return None

    def summary(self) -> str:
        """One line: method, URL, what answered, status, faults."""
        if self.recorded:
            source = "recorded live"
        elif self.interaction is not None:
            source = f"interaction #{self.interaction}"
        elif self.faults:
            source = f"fault {', '.join(self.faults)}"
        else:
            source = "no recorded interaction"
        extra = f" + {', '.join(self.faults)}" if self.faults and self.interaction is not None else ""
        outcome = f"{self.status}" if self.status is not None else "no response"
        if self.error:
            outcome += f" ({self.error})"
        return f"{self.method} {self.url} -> {source}{extra}: {outcome}"
