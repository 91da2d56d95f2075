"""
The playlist of a cassette: which recorded interaction answers a request, and in what order.

Recorded requests are indexed by their match key (see :mod:`llmcassette._matching`), built on
the first lookup. Requests with the same key form a slot whose interactions play in recorded
order, each once, so a recorded ``429 -> 200`` retry replays as such. Interactions recorded
without a request (a response-only file, method and URL ``*``) answer any request nothing else
matches.

Requests sent exactly as recorded, in recorded order (most suites), need no key at all: while no
slot is made, such a request takes the next recorded interaction (:meth:`Playlist.in_order`).
A key lookup would give it the same one: it takes the first interaction not yet played of those
whose key is its own, and every interaction before the one whose request it repeats byte for
byte has been played. The first request that is not the next one makes the slots, and counts
what was played in order as played in them.

The replay cache keeps, per matcher configuration, which requests share a slot (a group number
each) and the keys themselves, packed: a cassette entered again makes its slots and its
exact-bytes lookup from the groups alone, and unpacks and hashes the keys (trees of tuples, most
of an entry) only when a request comes that was not sent exactly as recorded.
"""

from __future__ import annotations

import functools
import heapq
import marshal
import threading
from collections.abc import Callable, Hashable
from typing import Any, cast

from ._exchange import RequestInfo
from ._lazy import NOT_PARSED, LazyCassette, collector_paused
from ._matching import Matcher, PreparedBody, Probe, RequestParts, plain_json, prepare_body as prepare_parsed
from ._models import RecordedRequest
from ._scrub import PLACEHOLDER, Scrubber
from .providers import detect_profile

__all__ = ["Candidate", "Playlist", "Slot", "prepare_body", "with_known_json"]

#: The key of a recorded request the cassette's filter leaves out: it never matches.
_LEFT_OUT: tuple[Hashable, ...] = ("llmcassette: left out by the filter",)

#: A recorded request that did not match: its position, the request, and how it differs.
Candidate = tuple[int, RecordedRequest, list[str]]

Key = tuple[Hashable, ...]

#: The group of a request recorded without one (method and URL `*`): it has no key.
_WILDCARD = -1


class Slot:
    """The recorded interactions that answer one match key, played in order."""

    __slots__ = ("cursor", "indices")

    def __init__(self, *indices: int) -> None:
        # The arguments' own tuple, kept as it is: a slot of its own per recorded request (most
        # cassettes) holds no list, and a tuple of numbers is left alone by the collector once
        # it has seen it. A slot that grows gets a list (see `add`).
        self.indices: tuple[int, ...] | list[int] = indices
        self.cursor = 0

    def add(self, *positions: int) -> None:
        """Add ``positions`` to the interactions this slot plays (while the playlist is made)."""
        indices = self.indices
        if type(indices) is tuple:
            self.indices = [*indices, *positions]
        else:
            assert isinstance(indices, list)
            indices.extend(positions)

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
        lock: threading.RLock | None = None,
    ) -> None:
        self._tape = tape
        # A filter recorded requests pass before matching (vcrpy's `before_record_request`).
        self._stored = stored
        self._matcher = matcher
        self._scrubber = scrubber
        # The slot of each recorded request by position (None: it has none), made on first use.
        self._slots: list[Slot | None] | None = None
        # A request sent exactly as recorded skips building its key (canonical JSON of the body).
        self._exact: dict[tuple[str, str, bytes], Slot] = {}
        self._wildcard = Slot()
        # The slots by match key, made when a request is not sent exactly as recorded.
        self._index: dict[Key, Slot] | None = None
        # The match key of each recorded request, by position: a miss ranks them without
        # reading their bodies again.
        self._keys: list[Key | None] = []
        # The keys as the replay cache holds them (unpacked when first needed).
        self._packed_keys: bytes | None = None
        self._building = threading.Lock()
        # The lock under which interactions are taken (the cassette's): the slots are put in
        # place under it, with what was played in order counted in them.
        self._taking = lock if lock is not None else threading.RLock()
        # While no slot is made: how many interactions, from the first, requests took in order.
        self._in_order = 0
        self._count = len(tape)
        # The recorded requests' lines, which `in_order` compares a request with (a list of the
        # tape's own tuples: the lookup through the tape cost a call on every request).
        self._lines = tape.lines()
        # What `_build` made, put in place by `_install`.
        self._made: _Made | None = None
        self._body_scrubber: object = _UNKNOWN

    def in_order(self, method: str, url: str, body: bytes) -> int | None:
        """
        The position of the next recorded interaction, while no slot is made, when this request
        is its request byte for byte; else None (then look it up with :meth:`exact`). Taken with
        :meth:`take_in_order`, which checks again under the lock.
        """
        position = self._in_order
        if (
            self._slots is None
            and position < self._count
            and self._lines[position] == (method, url, body)
            and url != "*"  # (a request recorded without one answers what nothing else matches)
            and self._stored is None
        ):
            return position
        return None

    def is_next_in_order(self, position: int) -> bool:
        """Under the lock interactions are taken with: whether :meth:`take_in_order` takes ``position``."""
        return self._in_order == position and self._slots is None

    def take_in_order(self, position: int) -> bool:
        """
        Under the lock interactions are taken with: take interaction ``position``, which
        :meth:`in_order` gave, when it is still the next one and no slot is made; else False
        (another request took it meanwhile, or made the slots: look the request up again).
        """
        if not self.is_next_in_order(position):
            return False
        self._in_order = position + 1
        return True

    def exact(self, method: str, url: str, body: bytes) -> Slot | None:
        """The slot of a request sent exactly as recorded, or None (then :meth:`probe` it)."""
        if self._slots is None:
            self._ensure_slots()
        return self._exact.get((method, url, body))

    def probe(self, method: str, url: str, body: bytes, *, prepared: PreparedBody | None = None) -> Probe:
        """
        A live request reduced for matching: URL and body scrubbed as recordings are, the body
        parsed once. ``prepared`` is what :func:`prepare_body` made of the body elsewhere (in
        another process, for a large one). The costly part of a lookup; safe in any thread.
        """
        parts = self.parts(method, url, body, scrub_body=prepared is None)
        return self._matcher.probe(parts, volatile=_volatile(method, url), prepared=prepared)

    def body_scrubber(self) -> Scrubber | None:
        """
        The scrubber a large live body needs before matching: None when no recorded body holds a
        placeholder or anything the scrubber would replace. Then a body matches a recording
        scrubbed or not, and its costly regex scan is skipped.
        """
        if self._scrubber is None:
            return None
        if self._body_scrubber is _UNKNOWN:
            scrubber = self._scrubber
            placeholder = PLACEHOLDER.encode()
            needed = any(
                placeholder in (content := self._tape.line(position)[2])
                or scrubber.scrub_body(content) != content
                for position in range(len(self._tape))
            )
            self._body_scrubber = scrubber if needed else None
        return cast("Scrubber | None", self._body_scrubber)

    def find(self, method: str, url: str, body: bytes, probe: Probe | None = None) -> Slot | None:
        """
        The slot whose interactions answer this request, or None when none matches. Given a
        ``probe``, the request is looked up by its key alone: the exact-bytes lookup would hash
        the body again (a large one is probed in another process for that reason).
        """
        if probe is None:
            slot = self.exact(method, url, body)
            if slot is not None:
                return slot
            probe = self.probe(method, url, body)
        slot = self._key_index().get(probe.key)
        if slot is None and self._wildcard.indices:
            return self._wildcard
        return slot

    def parts(self, method: str, url: str, body: bytes, *, scrub_body: bool = True) -> RequestParts:
        """A live request as matching sees it: URL and body scrubbed as recordings are."""
        if self._scrubber is not None:
            url = self._scrubber.scrub_url(url)
            if scrub_body:
                body = self._scrubber.scrub_body(body)
        return RequestParts(method=method, url=url, body=body)

    def candidates(self, wanted: Probe, limit: int = 3) -> list[Candidate]:
        """
        The ``limit`` recorded requests closest to ``wanted`` (fewest differing parts, then the
        first recorded), each with how it differs. Ranking compares match keys made when the
        index was built; only the requests shown are read again, to say how their bodies differ.
        """
        self._key_index()
        ranked = heapq.nsmallest(
            limit,
            (
                (sum(mine != theirs for mine, theirs in zip(wanted.key, key, strict=True)), position)
                for position, key in enumerate(self._keys)
                if key is not None and key is not _LEFT_OUT
            ),
        )
        found: list[Candidate] = []
        for _, position in ranked:
            request = self._request(position)
            assert request is not None  # a request the filter leaves out has no key to rank
            recorded = self._matcher.probe(
                RequestParts(method=request.method, url=request.uri, body=request.content),
                volatile=_volatile(request.method, request.uri),
            )
            found.append((position, request, self._matcher.explain(wanted, recorded)))
        return found

    def _ensure_slots(self) -> None:
        with self._building:
            if self._slots is None and self._made is None:
                with collector_paused():  # keys are trees of tuples, built by the thousand
                    self._made = self._build()
        # Put in place under the lock interactions are taken with, once `_building` is let go (a
        # request holding that lock may be waiting for `_building` meanwhile).
        with self._taking:
            if self._slots is None:
                assert self._made is not None
                self._install(self._made)

    def _key_index(self) -> dict[Key, Slot]:
        if self._index is None:
            if self._slots is None:
                self._ensure_slots()
            with self._building:
                if self._index is None:
                    with collector_paused():
                        self._index = self._index_keys()
        return self._index

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

    def _key(
        self, line: tuple[str, str, bytes] | None, parsed: Any = NOT_PARSED
    ) -> tuple[Hashable, ...] | None:
        if line is None:
            return _LEFT_OUT
        method, uri, content = line
        if method == "*" and uri == "*":
            return None
        parts = RequestParts(method=method, url=uri, body=content)
        prepared = None
        if parsed is not NOT_PARSED and (self._tape.made_json(parsed) or plain_json(parsed)):
            # The body as the loader parsed it: its bytes were made from this value, and parsing
            # them again would give an equal one (see `plain_json`).
            prepared = PreparedBody(True, parsed, len(content))
        return self._matcher.probe(parts, volatile=_volatile(method, uri), prepared=prepared).key

    def _signature(self) -> str:
        # The matcher configuration the keys were made under: what the cache keeps them by.
        return repr((self._matcher.match_on, self._matcher.ignored_body_fields))

    def _compute_keys(self, lines: list[tuple[str, str, bytes] | None]) -> list[Key | None]:
        if self._stored is not None:
            # A filter is another library's code (vcrpy's hooks): its keys are not cached.
            return [self._key(line) for line in lines]
        tape = self._tape
        return [self._key(line, tape.parsed_request_body(position)) for position, line in enumerate(lines)]

    def _build(self) -> _Made:
        # The slots, and the lookup of requests sent exactly as recorded: from the groups the
        # replay cache kept when it has them (no key is hashed, nor unpacked), else from the keys.
        # Nothing is put in place here (see `_install`).
        count = self._count
        if self._stored is None:
            lines: list[tuple[str, str, bytes] | None] = list(self._tape.lines())
            kept = self._tape.remembered(self._signature())
            if _is_kept(kept, count):
                made = _slots_from_groups(kept[0], lines)
                if made is not None:
                    made.packed_keys = kept[1]
                    return made
        else:
            lines = [self._line(position) for position in range(count)]
        keys = self._compute_keys(lines)
        made = _slots_from_keys(keys, lines)
        if self._stored is None:
            groups = [_WILDCARD if slot is None else slot.indices[0] for slot in made.slots]
            try:
                packed = marshal.dumps(keys)
            except ValueError:  # a key marshal cannot hold (none that matching makes now)
                return made
            self._tape.remember(self._signature(), (groups, packed))
        return made

    def _install(self, made: _Made) -> None:
        # Under `_taking`: the interactions played in order are played in their slots (a slot's
        # interactions are in recorded order, so those played are the first of each).
        wildcard = self._wildcard
        wildcard.add(*made.wildcard)
        slots = made.slots
        for position in range(self._in_order):
            slot = slots[position]
            (slot if slot is not None else wildcard).cursor += 1
        self._exact = made.exact
        self._packed_keys = made.packed_keys
        if made.keys is not None:
            self._keys = made.keys
        self._index = made.index
        self._slots = slots

    def _index_keys(self) -> dict[Key, Slot]:
        # The slots by key, for requests not sent exactly as recorded: the slots made from the
        # cache's groups, under the keys it kept (or made now, when they do not unpack).
        keys: list[Key | None] | None = None
        if self._packed_keys is not None:
            keys = _unpack_keys(self._packed_keys, len(self._tape))
            self._packed_keys = None
        if keys is None:
            keys = self._compute_keys(list(self._tape.lines()))
        assert self._slots is not None
        index: dict[Key, Slot] = {}
        for key, slot in zip(keys, self._slots, strict=True):
            if slot is not None and key is not None and key is not _LEFT_OUT:
                index.setdefault(key, slot)
        self._keys = keys
        return index


class _Made:
    """The slots a playlist made, before they are put in place."""

    __slots__ = ("exact", "index", "keys", "packed_keys", "slots", "wildcard")

    def __init__(
        self,
        slots: list[Slot | None],
        exact: dict[tuple[str, str, bytes], Slot],
        wildcard: list[int],
        index: dict[Key, Slot] | None = None,
        keys: list[Key | None] | None = None,
    ) -> None:
        self.slots = slots
        self.exact = exact
        self.wildcard = wildcard
        self.index = index
        self.keys = keys
        self.packed_keys: bytes | None = None


def _slots_from_keys(keys: list[Key | None], lines: list[tuple[str, str, bytes] | None]) -> _Made:
    index: dict[Key, Slot] = {}
    slots: list[Slot | None] = [None] * len(keys)
    exact: dict[tuple[str, str, bytes], Slot] = {}
    wildcard: list[int] = []
    spare = Slot()
    for position, key in enumerate(keys):
        if key is _LEFT_OUT:
            continue
        if key is None:
            wildcard.append(position)
            continue
        slot = index.setdefault(key, spare)
        if slot is spare:
            spare = Slot()  # (one made per new key, and each key hashed once)
        slot.add(position)
        slots[position] = slot
        line = lines[position]
        if line is not None:
            exact.setdefault(line, slot)
    return _Made(slots, exact, wildcard, index, keys)


def _slots_from_groups(groups: list[int], lines: list[tuple[str, str, bytes] | None]) -> _Made | None:
    # Each request's group is the position of the first request with an equal key (its own
    # when it is the first), or _WILDCARD. None for groups that do not say that (then the keys
    # are used).
    count = len(groups)
    if groups == list(range(count)) and None not in lines:
        # Every request a slot of its own, as in most cassettes: made and looked up in C's
        # loops. Their lines differ, as their keys do (else the first would win, as below).
        own: list[Slot | None] = list(map(Slot, range(count)))
        exact: dict[tuple[str, str, bytes], Slot] = dict(zip(lines, own, strict=True))  # type: ignore[arg-type]
        if len(exact) == count:
            return _Made(own, exact, [])
    slots: list[Slot | None] = [None] * count
    wildcard: list[int] = []
    for position, group in enumerate(groups):
        if group == _WILDCARD:
            wildcard.append(position)
            continue
        leader = slots[group] if 0 <= group < position else None
        if group == position:
            slot = Slot()
        elif leader is not None and leader.indices[0] == group:
            slot = leader
        else:
            return None
        slot.add(position)
        slots[position] = slot
    exact = {}
    for line, found in zip(lines, slots, strict=True):
        if found is not None and line is not None:
            exact.setdefault(line, found)
    return _Made(slots, exact, wildcard)


def _is_kept(kept: Any, count: int) -> bool:
    # What an earlier run kept of a playlist: a group per request, and the keys packed.
    return (
        type(kept) is tuple
        and len(kept) == 2
        and type(kept[0]) is list
        and len(kept[0]) == count
        and type(kept[1]) is bytes
    )


def _unpack_keys(packed: bytes, count: int) -> list[Key | None] | None:
    try:
        keys = marshal.loads(packed)
    except (EOFError, ValueError, TypeError):
        return None
    return keys if type(keys) is list and len(keys) == count else None


_UNKNOWN = object()


def prepare_body(scrubber: Scrubber | None, body: bytes) -> PreparedBody:
    """
    What matching reads of a live request body: scrubbed, parsed and made compact (see
    :class:`~llmcassette._matching.PreparedBody`). Plain data in and out, so that it can run in
    another process: a large body's regex scan and JSON parse hold the interpreter for their
    whole length, which would stall every other client of a server.
    """
    return prepare_parsed(scrubber.scrub_body(body) if scrubber is not None else body)


def with_known_json(info: RequestInfo, prepared: PreparedBody | None) -> RequestInfo:
    """
    ``info``, whose ``json`` is the prepared body's instead of a parse of its own (profiles and
    faults read it: whether the request streams, its model). Long strings in it are
    :class:`~llmcassette._matching.Digested`.
    """
    if prepared is not None:
        info.__dict__["json"] = prepared.value if prepared.is_json else None  # the cached_property's slot
    return info


@functools.lru_cache(maxsize=256)
def _volatile(method: str, url: str) -> tuple[str, ...]:
    # The provider's own volatile request fields join the cassette's. Detection looks at the
    # method and URL only, so a recorded request and a new one are judged alike.
    return detect_profile(RequestInfo(method=method, url=url)).volatile_fields
