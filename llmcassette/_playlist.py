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
from collections.abc import Callable, Hashable

from ._exchange import RequestInfo
from ._lazy import LazyCassette
from ._matching import Matcher, RequestParts
from ._models import RecordedRequest
from ._scrub import Scrubber
from .providers import detect_profile

__all__ = ["Candidate", "Playlist", "Slot"]

#: The key of a recorded request the cassette's filter leaves out: it never matches.
_LEFT_OUT: tuple[Hashable, ...] = ("llmcassette: left out by the filter",)

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

    def __init__(
        self,
        tape: LazyCassette,
        matcher: Matcher,
        scrubber: Scrubber | None,
        *,
        stored: Callable[[RecordedRequest], RecordedRequest | None] | None = None,
    ) -> None:
        self._tape = tape
        # A filter recorded requests pass before matching (vcrpy's `before_record_request`).
        self._stored = stored
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
            request = self._request(position)
            if request is None:
                continue
            recorded = RequestParts(method=request.method, url=request.uri, body=request.content)
            differences = self._matcher.differences(wanted, recorded)
            found.append((len(differences), (position, request, differences)))
        found.sort(key=lambda item: (item[0], item[1][0]))
        return [candidate for _, candidate in found]

    def _request(self, position: int) -> RecordedRequest | None:
        # A recorded request as matching sees it: through the filter when there is one (None when
        # the filter leaves it out: it never matches).
        request = self._tape.request(position)
        return self._stored(request) if self._stored is not None else request

    def _line(self, position: int) -> tuple[str, str, bytes] | None:
        if self._stored is None:
            return self._tape.line(position)
        request = self._request(position)
        return None if request is None else (request.method, request.uri, request.content)

    def _key(self, line: tuple[str, str, bytes] | None) -> tuple[Hashable, ...] | None:
        if line is None:
            return _LEFT_OUT
        method, uri, content = line
        if method == "*" and uri == "*":
            return None
        parts = RequestParts(method=method, url=uri, body=content)
        return self._matcher.key(parts, volatile=_volatile(method, uri))

    def _build(self) -> dict[tuple[Hashable, ...], Slot]:
        index: dict[tuple[Hashable, ...], Slot] = {}
        lines = [self._line(position) for position in range(len(self._tape))]
        if self._stored is None:
            # The keys of a cassette read before under the same matching come from the replay cache.
            signature = repr((self._matcher.match_on, self._matcher.ignored_body_fields))
            keys = self._tape.match_keys(signature, lambda position: self._key(lines[position]))
        else:
            # A filter is another library's code (vcrpy's hooks): its keys are not cached.
            keys = [self._key(line) for line in lines]
        for position, key in enumerate(keys):
            if key is _LEFT_OUT:
                continue
            if key is None:
                self._wildcard.indices.append(position)
                continue
            slot = index.setdefault(key, Slot())
            slot.indices.append(position)
            line = lines[position]
            if line is not None:
                self._exact.setdefault(line, slot)
        return index


@functools.lru_cache(maxsize=256)
def _volatile(method: str, url: str) -> tuple[str, ...]:
    # The provider's own volatile request fields join the cassette's. Detection looks at the
    # method and URL only, so a recorded request and a new one are judged alike.
    return detect_profile(RequestInfo(method=method, url=url)).volatile_fields
