"""
The playlist of a cassette: which recorded interaction answers a request, and in what order.

Recorded requests are indexed by their match key (see :mod:`llmcassette._matching`), built on
the first lookup. Requests with the same key form a slot whose interactions play in recorded
order, each once, so a recorded ``429 -> 200`` retry replays as such. Interactions recorded
without a request (a response-only file, method and URL ``*``) answer any request nothing else
matches.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable

from ._exchange import RequestInfo
from ._lazy import LazyCassette
from ._matching import Matcher, RequestParts
from ._models import RecordedRequest
from ._scrub import Scrubber
from .providers import detect_profile

__all__ = ["Candidate", "Playlist", "Slot"]

#: A recorded request that did not match: its position, the request, and how it differs.
Candidate = tuple[int, RecordedRequest, list[str]]


class Slot:
    """The recorded interactions that answer one match key, played in order."""

    __slots__ = ("cursor", "indices")

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.cursor = 0

    def take(self, allow_repeats: bool) -> int | None:
        """The next interaction to play, or the last one again when repeats are allowed."""
        if self.cursor < len(self.indices):
            self.cursor += 1
            return self.indices[self.cursor - 1]
        if allow_repeats and self.indices:
            return self.indices[-1]
        return None


class Playlist:
    """The interactions of ``tape`` as ``matcher`` pairs them with requests (scrubbed first)."""

    def __init__(self, tape: LazyCassette, matcher: Matcher, scrubber: Scrubber | None) -> None:
        self._tape = tape
        self._matcher = matcher
        self._scrubber = scrubber
        self._index: dict[tuple[Hashable, ...], Slot] | None = None
        # A request sent exactly as recorded skips building its key (canonical JSON of the body).
        self._exact: dict[tuple[str, str, bytes], Slot] = {}
        self._wildcard = Slot()

    def find(self, method: str, url: str, body: bytes) -> Slot | None:
        """The slot whose interactions answer this request, or None when none matches."""
        if self._index is None:
            self._index = self._build()
        slot = self._exact.get((method, url, body))
        if slot is not None:
            return slot
        key = self._matcher.key(self.parts(method, url, body), volatile=_volatile(method, url))
        slot = self._index.get(key)
        if slot is None and self._wildcard.indices:
            return self._wildcard
        return slot

    def parts(self, method: str, url: str, body: bytes) -> RequestParts:
        """A live request as matching sees it: URL and body scrubbed as recordings are."""
        if self._scrubber is not None:
            url = self._scrubber.scrub_url(url)
            body = self._scrubber.scrub_body(body)
        return RequestParts(method=method, url=url, body=body)

    def candidates(self, method: str, url: str, body: bytes) -> list[Candidate]:
        """Every recorded request with how it differs from this one, the closest first."""
        wanted = self.parts(method, url, body)
        found: list[tuple[int, Candidate]] = []
        for position in range(len(self._tape)):
            request = self._tape.request(position)
            recorded = RequestParts(method=request.method, url=request.uri, body=request.content)
            differences = self._matcher.differences(wanted, recorded)
            found.append((len(differences), (position, request, differences)))
        found.sort(key=lambda item: (item[0], item[1][0]))
        return [candidate for _, candidate in found]

    def _key_of(self, position: int) -> tuple[Hashable, ...] | None:
        method, uri, content = self._tape.line(position)
        if method == "*" and uri == "*":
            return None
        parts = RequestParts(method=method, url=uri, body=content)
        return self._matcher.key(parts, volatile=_volatile(method, uri))

    def _build(self) -> dict[tuple[Hashable, ...], Slot]:
        index: dict[tuple[Hashable, ...], Slot] = {}
        # The keys of a cassette read before under the same matching come from the replay cache.
        signature = repr((self._matcher.match_on, self._matcher.ignored_body_fields))
        keys = self._tape.match_keys(signature, self._key_of)
        for position, key in enumerate(keys):
            if key is None:
                self._wildcard.indices.append(position)
                continue
            slot = index.setdefault(key, Slot())
            slot.indices.append(position)
            self._exact.setdefault(self._tape.line(position), slot)
        return index


@functools.lru_cache(maxsize=256)
def _volatile(method: str, url: str) -> tuple[str, ...]:
    # The provider's own volatile request fields join the cassette's. Detection looks at the
    # method and URL only, so a recorded request and a new one are judged alike.
    return detect_profile(RequestInfo(method=method, url=url)).volatile_fields
