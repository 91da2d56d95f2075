"""
The cassette in use: the engine that answers intercepted requests.

For each request it decides, by record mode and match, whether to replay a recorded interaction
(with its recorded chunk boundaries, and its timing on request) or to send the request upstream
and record the response while the client reads it. Identical requests replay their recorded
responses in recorded order, each once, so a recorded ``429 -> 200`` retry replays as such.
Interactions recorded in this session are never replayed in it: a retry during recording reaches
the upstream, as it would without llmcassette.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._attempts import Attempt
from ._clock import _active as _clocks_active, await_wait, current_clock, wait
from ._exceptions import ConfigError, MissCandidate, NoMatchingInteraction
from ._exchange import Ending, Playback, RequestInfo
from ._expected_miss import ExpectedMiss
from ._filters import InteractionFilter, LiveRequest
from ._flavors import TIMED_OUT, Flavor
from ._framing import Framing, detect_framing, split_events
from ._lazy import LazyCassette, load_lazy
from ._matching import DEFAULT_IGNORED_BODY_FIELDS, DEFAULT_MATCH_ON, Matcher, PreparedBody, Probe
from ._models import CassetteDocument, Interaction, StreamEnd, url_problem
from ._modes import Pace, RecordMode, parse_pace, parse_record_mode
from ._playback import (
    Compiled,
    compile_response,
    connect_timeout,
    default_reason,
    failure_exception,
    read_timeout,
    respond,
    respond_recorded,
)
from ._playlist import Playlist, Slot, with_known_json
from ._recording import (
    Capture,
    build_failure,
    build_request,
    build_response,
    hung_up_before_answer,
    sent_no_body,
)
from ._scrub import Scrubber, strip_userinfo
from ._storage import cassette_lock, file_state, load_cassette, save_cassette
from ._streams import Pacer, RecordingStream, stream_class
from .faults import ConnectionFailure, Fault, FaultContext, FaultPlan, FaultSpec, ReplacingFault, StreamFault
from .faults.stream_wire import is_terminal
from .providers import detect_profile, get_profile

if TYPE_CHECKING:
    from ._websocket._sessions import SessionBook

__all__ = ["Cassette", "Decision"]

_monotonic = time.monotonic
_COMPLETE = Ending.COMPLETE  # (read on every plain replay: a module name is one lookup)
# (read on every request: an enum member read off its class costs 150 ns, a module name 10)
_NONE, _NEW_EPISODES, _ONCE = RecordMode.NONE, RecordMode.NEW_EPISODES, RecordMode.ONCE
# How many recorded requests a miss's message names, closest first.
_CANDIDATES_SHOWN = 3


@dataclass
class Decision:
    """What answers a request: a recorded interaction, a fault, or the upstream (all None)."""

    attempt: Attempt
    #: The request's URL as the engine takes it (without userinfo), for what it records.
    url: str = ""
    playback: Playback | None = None
    failure: ConnectionFailure | None = None
    offsets_ms: Sequence[float] | None = None
    elapsed_ms: float | None = None
    #: The request as the cassette's filter left it: what was matched, and is recorded.
    live: LiveRequest | None = None
    #: The filter left the request out: it goes upstream untouched, and its attempt is not logged.
    passthrough: bool = False

    def log_failure(self) -> ConnectionFailure:
        """The connection failure that answers, noted in the attempt log as the client gets it."""
        assert self.failure is not None
        self.attempt.error = f"{self.failure.error_type}: {self.failure.message}"
        return self.failure


class Cassette:
    """
    A cassette file in use. Created by :func:`llmcassette.use_cassette`, which also activates it.

    ``interactions`` lists what the file holds plus what was recorded so far; ``attempts`` logs
    every request seen, in order, with what answered it and the chunks the client received (only
    the latest ``keep_attempts`` of them, and of ``misses``, when that is set).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        record_mode: str | RecordMode = RecordMode.NONE,
        pace: Pace = "instant",
        match_on: Sequence[str] = DEFAULT_MATCH_ON,
        ignored_body_fields: Sequence[str] = DEFAULT_IGNORED_BODY_FIELDS,
        scrubber: Scrubber | None = None,
        allow_playback_repeats: bool = False,
        decode_compressed: bool = True,
        faults: Iterable[FaultSpec] = (),
        provider: str | None = None,
        vcrpy_compatible: bool = False,
        keep_attempts: int | None = None,
        interaction_filter: InteractionFilter | None = None,
    ) -> None:
        self.path = Path(path)
        #: Another library's recording hooks (vcrpy's, under the pytest plugin's ``vcr`` switch).
        self.interaction_filter = interaction_filter
        # A long-running server (`llmcassette serve`) keeps only the latest attempts and misses:
        # the logs would otherwise grow with every request it answers.
        self._keep_attempts = keep_attempts
        self._attempts_seen = 0
        #: Write bodies as plain vcrpy reads them (``body`` text), not as ``parsed_body``.
        self.vcrpy_compatible = vcrpy_compatible
        self.fault_plan = FaultPlan(faults)
        self.provider = provider
        if provider is not None:
            get_profile(provider)
        self.record_mode = parse_record_mode(record_mode)
        self.speed = parse_pace(pace)
        self.matcher = Matcher(match_on, ignored_body_fields=ignored_body_fields)
        self.scrubber = scrubber
        self.allow_playback_repeats = allow_playback_repeats
        self.decode_compressed = decode_compressed
        self.attempts: list[Attempt] = []
        self.misses: list[NoMatchingInteraction] = []
        self.existed = self.path.exists()
        self._disk_state = file_state(self.path)
        if self.existed and self.record_mode is not RecordMode.REWRITE:
            self._tape = load_lazy(self.path)
        else:
            self._tape = LazyCassette.from_document(self.path, CassetteDocument())
        self._lock = threading.RLock()
        self._start = _monotonic()
        clock = current_clock()
        self._clock_at_start = (clock, clock.elapsed_s if clock is not None else 0.0)
        stored = interaction_filter.stored_request if interaction_filter is not None else None
        self._playlist = Playlist(self._tape, self.matcher, scrubber, stored=stored, lock=self._lock)
        # What was recorded, in order: None while a response is being read, then a function
        # that stores it, then the stored interaction (or None when the filter left it out).
        self._slots: list[Interaction | Callable[[], Interaction | None] | None] = []
        # Responses compiled through the filter (without one, the tape keeps them compiled).
        self._compiled: dict[int, Compiled] = {}
        self._captures: list[Capture] = []
        self.play_counts = [0] * len(self._tape)
        #: Called with each interaction as soon as it is recorded whole (the recording proxy
        #: journals them, so that a session killed before it saves loses nothing).
        self.on_recorded: Callable[[Interaction], None] | None = None
        self._websocket: SessionBook | None = None

    # -- what the cassette holds -------------------------------------------------------------

    @property
    def interactions(self) -> list[Interaction]:
        """The recorded interactions: those loaded from the file, then those recorded now."""
        return [*self._tape.interactions(), *self.new_interactions]

    @property
    def new_interactions(self) -> list[Interaction]:
        """The interactions recorded while this cassette was active."""
        with self._lock:
            slots = list(self._slots)
        found = []
        for position, slot in enumerate(slots):
            if callable(slot):
                slot = slot()
                with self._lock:
                    self._slots[position] = slot
            if slot is not None:
                found.append(slot)
        return found

    def document(self) -> CassetteDocument:
        """What the file holds as loaded, then what was recorded: what :meth:`save` writes."""
        with self._lock:
            new = self.new_interactions
        old = self._tape.interactions()
        return CassetteDocument(version=self._tape.version, interactions=[*old, *new], **self._tape.extras)

    @property
    def all_played(self) -> bool:
        """True when every interaction loaded from the file was replayed at least once."""
        return all(self.play_counts)

    @property
    def writes(self) -> bool:
        """True when this cassette will write its file on exit."""
        return self.record_mode is not RecordMode.NONE and any(i is not None for i in self._slots)

    def expect_miss(self) -> ExpectedMiss:
        """
        A block expected to make a request this cassette cannot answer: the miss is stopped at
        the block's end, and no longer fails the test when the cassette closes::

            with llm_cassette.expect_miss() as missed:
                client.get("https://api.example.com/v1/unrecorded")
            assert missed.value.url.endswith("/unrecorded")
        """
        return ExpectedMiss(self)

    def _claim_misses(self, known: set[int]) -> list[NoMatchingInteraction]:
        # The misses not in `known` are expected: they leave `misses`, which fail the test.
        with self._lock:
            claimed = [miss for miss in self.misses if id(miss) not in known]
            self.misses = [miss for miss in self.misses if id(miss) in known]
        return claimed

    # -- WebSocket sessions and what they share with requests ---------------------------------

    def websocket_sessions(self) -> SessionBook:
        """The WebSocket side of this cassette: which session answers a connection (made on first use)."""
        with self._lock:
            if self._websocket is None:
                from ._websocket._sessions import SessionBook

                self._websocket = SessionBook(self)
            return self._websocket

    def log_attempt(self, attempt: Attempt) -> Attempt:
        """Add ``attempt`` to the log (its ``index`` set), keeping the latest ``keep_attempts``."""
        with self._lock:
            attempt.index = self._attempts_seen
            self.attempts.append(attempt)
            self._attempts_seen += 1
            if self._keep_attempts is not None and len(self.attempts) > self._keep_attempts:
                del self.attempts[: len(self.attempts) - self._keep_attempts]
        return attempt

    def add_miss(self, miss: NoMatchingInteraction) -> None:
        """Note a miss: it fails the test when the cassette closes, unless expected."""
        with self._lock:
            self.misses.append(miss)
            if self._keep_attempts is not None and len(self.misses) > self._keep_attempts:
                del self.misses[: len(self.misses) - self._keep_attempts]

    def reserve_slot(self) -> int:
        """A place among the recorded interactions, in the order things started, filled later."""
        with self._lock:
            self._slots.append(None)
            return len(self._slots) - 1

    def fill_slot(self, slot: int, interaction: Interaction) -> None:
        """Store a recorded interaction in the place :meth:`reserve_slot` gave."""
        with self._lock:
            self._slots[slot] = interaction
        if self.on_recorded is not None:
            self.on_recorded(interaction)

    def now_s(self) -> float:
        """Seconds since the cassette was entered (virtual ones while a clock is active)."""
        return self._now_s()

    # -- request handling --------------------------------------------------------------------

    def handle_request(
        self,
        flavor: Flavor,
        request: Any,
        send: Callable[[Any], Any],
        *,
        faults: Sequence[tuple[Fault, int]] = (),
    ) -> Any:
        """
        Answer one request from a sync transport; ``send`` reaches the real upstream.

        ``faults`` fire on this request only, before the cassette's own: each with its call number,
        as :meth:`~llmcassette.faults.FaultPlan.select` gives them (the server path selects them
        from a request header).
        """
        __tracebackhide__ = True
        start = _monotonic()
        body = request.read()
        if not faults:
            response = self._replay_exact(flavor, request, body, is_async=False)
            if response is not None:
                return response
        decision = self.decide(request, body, faults)
        if decision.failure is not None:
            wait(decision.failure.delay_ms / 1000.0)
            raise self._failure(flavor, decision.failure, decision.attempt, is_async=False)
        return self.answer(flavor, request, body, decision, send, start=start)

    def decide(
        self,
        request: Any,
        body: bytes,
        faults: Sequence[tuple[Fault, int]] = (),
        prepared: PreparedBody | None = None,
    ) -> Decision:
        """
        The first half of :meth:`handle_request`: log the attempt and decide what answers it (a
        recording, a fault, or the upstream), consuming the recording. A door that learns the
        whole request before the client waits for the answer (the standard library's connection
        sends it, then asks for the response) decides here, raises a connection failure where
        its library would, and calls :meth:`answer` when the client reads.
        """
        __tracebackhide__ = True
        url = _engine_url(request)
        if self.interaction_filter is None:
            return self._decide(request, url, body, faults, prepared)
        live = self._live(request, url, body)
        if live is None:
            attempt = Attempt(index=-1, method=request.method, url=url, time_s=self._now_s())
            return Decision(attempt, url=url, passthrough=True)
        if live.body is not body:
            prepared = None  # the filter changed the body: what was prepared of it is stale
        return self._decide(request, live.url, live.body, faults, prepared, live=live)

    def answer(
        self,
        flavor: Flavor,
        request: Any,
        body: bytes,
        decision: Decision,
        send: Callable[[Any], Any],
        *,
        start: float,
    ) -> Any:
        """The second half of :meth:`handle_request`, for a decision without a connection failure."""
        __tracebackhide__ = True
        if decision.passthrough:
            return send(request)
        attempt = decision.attempt
        if decision.playback is not None:
            pacer = Pacer(self.speed, start) if self.speed is not None else None
            if pacer is not None and decision.elapsed_ms:
                pacer.wait(decision.elapsed_ms)
            head_s, late, timeout_s = self._head_delay(decision, request)
            if head_s > 0:
                wait(head_s)
            return self._play(flavor, decision, pacer, late, timeout_s, is_async=False)
        try:
            response = send(request)
        except Exception as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"
            self._record_failure(flavor, request, body, exc, attempt)
            raise
        return self._record(flavor, request, body, decision, response, start)

    async def handle_async_request(
        self,
        flavor: Flavor,
        request: Any,
        send: Callable[[Any], Awaitable[Any]],
        *,
        faults: Sequence[tuple[Fault, int]] = (),
        prepared: PreparedBody | None = None,
        off_loop: bool = False,
    ) -> Any:
        """
        Answer one request from an async transport, as :meth:`handle_request` does.

        ``prepared`` is the body as :func:`~llmcassette._playlist.prepare_body` made it
        elsewhere; with ``off_loop`` the decision (matching, a miss's explanation) runs in a worker
        thread, so that the event loop keeps serving other clients meanwhile (the server does
        both for large bodies).
        """
        __tracebackhide__ = True
        start = _monotonic()
        body = await request.aread()
        if not faults and prepared is None and not off_loop:
            response = self._replay_exact(flavor, request, body, is_async=True)
            if response is not None:
                return response
        if off_loop:
            decision = await asyncio.to_thread(self.decide, request, body, faults, prepared)
        else:
            decision = self.decide(request, body, faults, prepared)
        if decision.failure is not None:
            await await_wait(decision.failure.delay_ms / 1000.0)
            raise self._failure(flavor, decision.failure, decision.attempt, is_async=True)
        return await self.aanswer(flavor, request, body, decision, send, start=start)

    async def aanswer(
        self,
        flavor: Flavor,
        request: Any,
        body: bytes,
        decision: Decision,
        send: Callable[[Any], Awaitable[Any]],
        *,
        start: float,
    ) -> Any:
        """The second half of :meth:`handle_async_request`, as :meth:`answer` is of :meth:`handle_request`."""
        __tracebackhide__ = True
        if decision.passthrough:
            return await send(request)
        attempt = decision.attempt
        if decision.playback is not None:
            pacer = Pacer(self.speed, start) if self.speed is not None else None
            if pacer is not None and decision.elapsed_ms:
                await pacer.await_(decision.elapsed_ms)
            head_s, late, timeout_s = self._head_delay(decision, request)
            if head_s > 0:
                await await_wait(head_s)
            return self._play(flavor, decision, pacer, late, timeout_s, is_async=True)
        try:
            response = await send(request)
        except Exception as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"
            self._record_failure(flavor, request, body, exc, attempt)
            raise
        return self._record(flavor, request, body, decision, response, start)

    def _now_s(self) -> float:
        # Seconds since the cassette was entered: virtual ones while a clock is active.
        clock = current_clock()
        if clock is None:
            return _monotonic() - self._start
        origin, elapsed_at_start = self._clock_at_start
        if clock is origin:
            return clock.elapsed_s - elapsed_at_start
        entered = clock.entered_at if clock.entered_at is not None else self._start
        return max(0.0, entered - self._start) + clock.elapsed_s

    def _live(self, request: Any, url: str, body: bytes) -> LiveRequest | None:
        # The request as the cassette's filter leaves it; None sends it upstream untouched.
        assert self.interaction_filter is not None
        live = LiveRequest(request.method, url, list(request.headers.raw), body)
        _check_url(live.url)
        return self.interaction_filter.live_request(live)

    def _decide(
        self,
        request: Any,
        url: str,
        body: bytes,
        extra: Sequence[tuple[Fault, int]] = (),
        prepared: PreparedBody | None = None,
        *,
        live: LiveRequest | None = None,
    ) -> Decision:
        __tracebackhide__ = True
        method = request.method
        _check_url(url)
        mode = self.record_mode
        probe: Probe | None = None
        exact: Slot | None = None
        if mode in (RecordMode.NONE, RecordMode.NEW_EPISODES) or (mode is RecordMode.ONCE and self.existed):
            # The costly part of matching (scrubbing and parsing the body) is done before the lock
            # is taken, so that a large request does not hold up the others.
            if prepared is None:
                exact = self._playlist.exact(method, url, body)
            if exact is None:
                probe = self._playlist.probe(method, url, body, prepared=prepared)
        miss_slot: Slot | None = None
        with self._lock:
            attempt = self._log_request(request, method, url, body)
            decision = Decision(attempt, url=url, live=live)
            fired: list[tuple[Fault, int]] = []
            context: FaultContext | None = None
            if extra or self.fault_plan.faults:
                context, fired = self._select_faults(request, url, body, attempt, prepared)
                fired = [*extra, *fired]
                for fault, call in fired:
                    if isinstance(fault, ReplacingFault):
                        # A replacing fault answers without consuming the recording.
                        attempt.faults.append(fault.spec())
                        answer = fault.respond(replace(context, call=call))
                        if isinstance(answer, ConnectionFailure):
                            decision.failure = answer
                        else:
                            decision.playback = answer
                        return decision
            if mode is RecordMode.ALL or mode is RecordMode.REWRITE:
                return decision
            if mode is RecordMode.ONCE and not self.existed:
                return decision
            slot = exact if exact is not None else self._playlist.find(method, url, body, probe)
            cursor = slot.cursor if slot is not None else 0
            index = slot.take(self.allow_playback_repeats) if slot is not None else None
            if index is not None:
                self.play_counts[index] += 1
                attempt.interaction = index
                compiled = self._compiled_for(index)
                if compiled.failure is not None:
                    # The upstream hung up before answering when this was recorded: so it does
                    # now. Stream faults have no stream to act on.
                    failure = compiled.failure
                    decision.failure = ConnectionFailure(failure.type, failure.message)
                    return decision
                recorded = compiled.playback
                assert recorded is not None
                playback = recorded
                stream_faults = [(f, call) for f, call in fired if isinstance(f, StreamFault)]
                if stream_faults and self.speed is not None and compiled.offsets_ms is not None:
                    # At the recorded pace, the waits between the recorded chunks go with their
                    # chunks through the faults' edits, as the faults' own waits do: a chunk cut
                    # in two, dropped, or regrouped keeps the time its bytes arrived at.
                    playback = _with_recorded_gaps(
                        playback, compiled.offsets_ms, compiled.elapsed_ms, self.speed
                    )
                else:
                    decision.offsets_ms = compiled.offsets_ms
                broken = False
                for fault, call in stream_faults:
                    if context is not None:
                        attempt.faults.append(fault.spec())
                        playback = fault.apply(playback, replace(context, call=call))
                        broken = broken or not fault.consumes_recording
                if broken and slot is not None:
                    # A broken response leaves the recording for the client's retry.
                    slot.cursor = cursor
                decision.playback = playback
                decision.elapsed_ms = compiled.elapsed_ms
                return decision
            if mode is RecordMode.NEW_EPISODES:
                return decision
            attempt.error = "no matching interaction"
            miss_slot = slot
        # A miss is explained outside the lock: other requests need not wait for it.
        message, candidates = self._miss_message(method, url, body, miss_slot, probe)
        miss_type = self.interaction_filter.miss_type if self.interaction_filter else NoMatchingInteraction
        miss = miss_type(message, method=method, url=attempt.url, candidates=candidates)
        with self._lock:
            self.misses.append(miss)
            if self._keep_attempts is not None and len(self.misses) > self._keep_attempts:
                del self.misses[: len(self.misses) - self._keep_attempts]
        raise miss

    def _log_request(self, request: Any, method: str, url: str, body: bytes) -> Attempt:
        # A request's attempt, added to the log (under the lock).
        scrubber = self.scrubber
        attempt = Attempt._new(
            self._attempts_seen,
            method,
            scrubber.scrub_url(url) if scrubber is not None else url,
            self._now_s() if _clocks_active else _monotonic() - self._start,  # (`current_clock()`, inline)
            request.headers,
            body,
            scrubber,
        )
        self.attempts.append(attempt)
        self._attempts_seen += 1
        if self._keep_attempts is not None and len(self.attempts) > self._keep_attempts:
            del self.attempts[: len(self.attempts) - self._keep_attempts]
        return attempt

    def _exact_slot(self, request: Any, body: bytes) -> tuple[str, str, Slot | int] | None:
        # The case of the fast paths below: the method, URL and slot of a request sent exactly as
        # recorded, on a cassette that answers it as recorded, with no fault, filter or pace to
        # act on it and nothing to record; else None. In place of the slot, the position of the
        # next recorded interaction for a request sent in recorded order, before any slot is made
        # (see `Playlist.in_order`: taken with `take_in_order`, under the lock).
        mode = self.record_mode
        if (
            self.interaction_filter is not None
            or self.fault_plan.faults
            or self.speed is not None
            or not (mode is _NONE or mode is _NEW_EPISODES or (mode is _ONCE and self.existed))
        ):
            return None
        url = _checked_url(request)
        method: str = request.method
        playlist = self._playlist
        position = playlist.in_order(method, url, body)
        if position is not None:
            return method, url, position
        slot = playlist.exact(method, url, body)
        return None if slot is None else (method, url, slot)

    def _replay_exact(self, flavor: Flavor, request: Any, body: bytes, *, is_async: bool) -> Any:
        # The common case on a path of its own: a request sent exactly as recorded, answered as
        # recorded, with no fault, filter or pace to act on it. The same steps as the general
        # path (`decide`, then `answer`) takes for it, in the same order, without what only other
        # cases need (a Decision, a pacer, the checks for faults). None, with nothing taken or
        # logged, when the request is not that case: the general path answers it.
        __tracebackhide__ = True
        found = self._exact_slot(request, body)
        if found is None:
            return None
        method, url, slot = found
        tape = self._tape
        counts = self.play_counts
        # (taken and let go by hand: a `with` looks up and binds `__enter__` and `__exit__`,
        # and calls the latter with three arguments: 1k instructions more on every request)
        lock = self._lock
        lock.acquire()
        try:
            if isinstance(slot, int):
                if not self._playlist.take_in_order(slot):
                    return None  # taken meanwhile: the general path looks the request up again
                index = slot
            elif (cursor := slot.cursor) < len(indices := slot.indices):  # (`slot.take`, inline)
                slot.cursor = cursor + 1
                index = indices[cursor]
            else:
                found_index = slot.take(self.allow_playback_repeats)
                if found_index is None:
                    return None  # played already: the general path explains the miss
                index = found_index
            # A recording's first play is made from the replay cache's data when it has them; a
            # recording played again is compiled, and its response head kept (see `_head`).
            answer = tape.cached_answer(index) if not counts[index] else None
            counts[index] += 1
            attempt = self._log_request(request, method, url, body)
            attempt.interaction = index
            if answer is None:
                compiled = tape.compiled(index)
        finally:
            lock.release()
        if answer is not None:
            # A recording's head comes at once: only a read timeout of zero or less is too short.
            timeout_s = read_timeout(request)
            if timeout_s is not None and timeout_s <= 0.0:
                late = _late_head(0.0, timeout_s)
                assert late is not None
                raise self._failure(flavor, late, attempt, is_async=is_async)
            return respond_recorded(flavor, answer, attempt)
        playback = compiled.playback
        if playback is None:
            assert compiled.failure is not None  # recorded hanging up before answering
            failure = ConnectionFailure(compiled.failure.type, compiled.failure.message)
            raise self._failure(flavor, failure, attempt, is_async=is_async)
        timeout_s = read_timeout(request)
        late = _late_head(playback.head_delay_ms / 1000.0, timeout_s)
        if late is not None:
            raise self._failure(flavor, late, attempt, is_async=is_async)
        return respond(
            flavor, playback, attempt=attempt, offsets_ms=None, pacer=None, read_timeout_s=timeout_s
        )

    def replay_plain(
        self, flavor: Flavor, request: Any, body: bytes, accept: Callable[[Playback], bool]
    ) -> Any:
        """
        The response to a request sent exactly as recorded, when its recording plays plainly (a
        whole response, nothing to wait for) and ``accept`` takes it; else None, with nothing
        taken or logged, for the general path (:meth:`decide`) to answer. The same steps
        :meth:`handle_request` takes for that request, for a door above the connection (urllib3's
        pool, ``urllib.request``'s handler) that answers there only what its library would not
        retry or redirect.
        """
        found = self._exact_slot(request, body)
        if found is None:
            return None
        method, url, slot = found
        allow_repeats = self.allow_playback_repeats
        playlist = self._playlist
        with self._lock:
            # The interaction `take` would give, looked at before it is taken.
            if isinstance(slot, int):
                if not playlist.is_next_in_order(slot):
                    return None  # taken meanwhile: the general path looks the request up again
                index = slot
            elif slot.cursor < len(slot.indices):
                index = slot.indices[slot.cursor]
            elif allow_repeats and slot.indices:
                index = slot.indices[-1]
            else:
                return None
            # A recording's first play is made from the replay cache's data when it has them (as
            # in `_replay_exact`); a recording played again is compiled.
            tape = self._tape
            playback = tape.cached_playback(index) if not self.play_counts[index] else None
            if playback is None:
                playback = tape.compiled(index).playback
            if (
                playback is None
                or playback.ending is not _COMPLETE
                or playback.delays_ms is not None
                or playback.head_delay_ms
                or not accept(playback)
            ):
                return None
            if isinstance(slot, int):
                playlist.take_in_order(slot)
            else:
                slot.take(allow_repeats)
            self.play_counts[index] += 1
            attempt = self._log_request(request, method, url, body)
            attempt.interaction = index
        timeout_s = read_timeout(request)
        return respond(
            flavor, playback, attempt=attempt, offsets_ms=None, pacer=None, read_timeout_s=timeout_s
        )

    def _select_faults(
        self, request: Any, url: str, body: bytes, attempt: Attempt, prepared: PreparedBody | None
    ) -> tuple[FaultContext, list[tuple[Fault, int]]]:
        headers: dict[str, str] = {}
        for name, value in request.headers.raw:
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        info = RequestInfo(method=request.method, url=url, headers=headers, body=body)
        with_known_json(info, prepared)  # a large body is not parsed again here
        profile = detect_profile(info, override=self.provider)
        streaming = profile.is_streaming(info)
        attempt.provider = profile.name
        client_timeout_s = read_timeout(request)
        clock = current_clock()
        context = FaultContext(
            request=info,
            profile=profile,
            call=0,
            streaming=streaming,
            now_s=clock.time() if clock is not None else time.time(),
            read_timeout_s=client_timeout_s,
            connect_timeout_s=connect_timeout(request),
        )
        return context, self.fault_plan.select(info, provider=profile.name, streaming=streaming)

    @staticmethod
    def _head_delay(decision: Decision, request: Any) -> tuple[float, ConnectionFailure | None, float | None]:
        # A response head later than the client's read timeout never arrives: the client gets
        # its ReadTimeout once the timeout has passed. The client's read timeout goes along.
        assert decision.playback is not None
        head_s = decision.playback.head_delay_ms / 1000.0
        timeout_s = read_timeout(request)
        late = _late_head(head_s, timeout_s)
        if late is not None:
            assert timeout_s is not None
            return timeout_s, late, timeout_s
        return head_s, None, timeout_s

    def _play(
        self,
        flavor: Flavor,
        decision: Decision,
        pacer: Pacer | None,
        late: ConnectionFailure | None,
        read_timeout_s: float | None,
        *,
        is_async: bool,
    ) -> Any:
        # Once the head's delay has passed (waited by the caller, sync or async): the recording's
        # response, or the timeout of a head that came too late.
        __tracebackhide__ = True
        if late is not None:
            raise self._failure(flavor, late, decision.attempt, is_async=is_async)
        assert decision.playback is not None
        return respond(
            flavor,
            decision.playback,
            attempt=decision.attempt,
            offsets_ms=decision.offsets_ms,
            pacer=pacer,
            read_timeout_s=read_timeout_s,
        )

    def _failure(
        self, flavor: Flavor, failure: ConnectionFailure, attempt: Attempt, *, is_async: bool
    ) -> Exception:
        return failure_exception(flavor, attempt, failure.error_type, failure.message, is_async)

    # -- replay ------------------------------------------------------------------------------

    def _compiled_for(self, index: int) -> Compiled:
        if self.interaction_filter is None:
            return self._tape.compiled(index)
        compiled = self._compiled.get(index)
        if compiled is None:
            # A response the filter would not store still answers: it is in the file already.
            response = self._tape.response(index)
            response = self.interaction_filter.response(response) or response
            method, uri = self._tape.line(index)[:2]
            compiled = self._compiled[index] = compile_response(
                response, method=method, uri=uri, path=self.path, index=index
            )
        return compiled

    # -- recording ---------------------------------------------------------------------------

    def _record(
        self, flavor: Flavor, request: Any, body: bytes, decision: Decision, response: Any, start: float
    ) -> Any:
        attempt = decision.attempt
        live = decision.live or LiveRequest(request.method, decision.url, list(request.headers.raw), body)
        attempt.recorded = True
        attempt.status = response.status_code
        with self._lock:
            slot = len(self._slots)
            self._slots.append(None)
        reason_phrase = response.extensions.get("reason_phrase", b"")
        reason = reason_phrase.decode("latin-1") if isinstance(reason_phrase, bytes) else str(reason_phrase)
        status_code = response.status_code
        raw_headers = list(response.headers.raw)

        # vcrpy stores "no body" and "an empty body" apart, and a file it replays keeps them so.
        no_body = self.vcrpy_compatible and sent_no_body(request, body)
        # What is stored is the request as the cassette's filter left it.
        method, url, request_headers, body = live.method, live.url, live.raw_headers, live.body

        def store(capture: Capture) -> Interaction | None:
            # The request is stored (scrubbed, its body made readable) once the exchange is over,
            # not before the response goes back: through the proxy, that is time to first byte.
            stored_request = build_request(
                method=method, url=url, raw_headers=request_headers, body=body, scrubber=self.scrubber
            )
            if no_body and not body:
                stored_request = stored_request.model_copy(update={"body": None})
            if capture.end is StreamEnd.CLOSED and _ends_with_terminator(
                method, url, raw_headers, capture.chunks
            ):
                # The client stopped reading at the terminator (`data: [DONE]`), as most do:
                # it had the whole stream, so the recording is complete.
                capture.end = StreamEnd.COMPLETE
            stored_response = build_response(
                status_code=status_code,
                reason=reason or default_reason(flavor, status_code),
                raw_headers=raw_headers,
                capture=capture,
                scrubber=self.scrubber,
                decode_compressed=self.decode_compressed,
                url=url,
            )
            if self.interaction_filter is not None:
                filtered = self.interaction_filter.response(stored_response)
                if filtered is None:
                    return None
                stored_response = filtered
            return Interaction(request=stored_request, response=stored_response)

        def on_finish(capture: Capture) -> None:
            attempt.chunks = list(capture.chunks)
            if capture.error is not None:
                attempt.error = f"{type(capture.error).__name__}: {capture.error}"
            if self.on_recorded is None:
                # Stored when the cassette needs it (on save, or when asked for its interactions),
                # not on the client's time: scrubbing and reading the body cost more than the
                # request itself takes to replay.
                with self._lock:
                    self._slots[slot] = functools.partial(store, capture)
                return
            interaction = store(capture)
            if interaction is None:
                return
            with self._lock:
                self._slots[slot] = interaction
            self.on_recorded(interaction)

        capture = Capture(start=start, on_finish=on_finish)
        with self._lock:
            self._captures.append(capture)
        response.stream = stream_class(RecordingStream, flavor)(response.stream, capture)
        return response

    def body_scrubber(self) -> Scrubber | None:
        """
        The scrubber a live request body must go through before it is matched here: None when
        no recorded body could tell a scrubbed body from the same one unscrubbed (then a large
        body's costly scan is skipped). Used by the server, which prepares large bodies in
        another process (see ``prepared`` of :meth:`handle_async_request`).
        """
        return self._playlist.body_scrubber()

    def _record_failure(
        self, flavor: Flavor, request: Any, body: bytes, error: Exception, attempt: Attempt
    ) -> None:
        # An upstream that hangs up before answering is part of what it does: recorded as a
        # response without status, which replay raises again (and `serve` shows as the same
        # close or reset). vcrpy has no place for it, so a vcrpy-compatible file keeps nothing.
        if self.vcrpy_compatible or not isinstance(error, flavor.module.TransportError):
            return
        if not hung_up_before_answer(error):
            return
        attempt.recorded = True
        stored_request = build_request(
            method=request.method,
            url=_engine_url(request),
            raw_headers=list(request.headers.raw),
            body=body,
            scrubber=self.scrubber,
        )
        interaction = Interaction(request=stored_request, response=build_failure(error))
        with self._lock:
            self._slots.append(interaction)
        if self.on_recorded is not None:
            self.on_recorded(interaction)

    # -- end of use --------------------------------------------------------------------------

    def finish(self) -> None:
        """Close what is still being recorded (marked as closed early) and write the file if due."""
        with self._lock:
            captures = list(self._captures)
        for capture in captures:
            capture.finish(closed=True)
        if self._websocket is not None:
            # Sessions still open are stored as they are so far, without a close.
            self._websocket.finish()
        # What was read of the file is remembered for the next run (the replay cache). That is
        # a best effort, which must never cost what was recorded: the file is saved whatever it
        # raised (a bad cache cap's warning, under warnings turned into errors).
        try:
            self._tape.close()
        finally:
            if self.writes:
                self.save()

    def save(self) -> None:
        """
        Write the cassette file atomically with every interaction it holds. Writers of one folder
        take turns; if another one (a parallel test worker) wrote the file since this cassette
        loaded it, what it wrote is kept and the new interactions are added after it.
        """
        with self._lock:
            new = self.new_interactions
        with cassette_lock(self.path):
            if file_state(self.path) not in (None, self._disk_state):
                current = load_cassette(self.path)
                version, extras, old = current.version, dict(current.model_extra or {}), current.interactions
            else:
                version, extras, old = self._tape.version, self._tape.extras, self._tape.interactions()
            document = CassetteDocument(version=version, interactions=[*old, *new], **extras)
            save_cassette(self.path, document, vcrpy_compatible=self.vcrpy_compatible)
            self._disk_state = file_state(self.path)

    # -- messages ----------------------------------------------------------------------------

    def _miss_message(
        self, method: str, url: str, body: bytes, slot: Slot | None, probe: Probe | None
    ) -> tuple[str, list[MissCandidate]]:
        shown_url = self.scrubber.scrub_url(url) if self.scrubber is not None else url
        where = f"in cassette {str(self.path)!r} (record mode {self.record_mode.value!r})"
        if not self.existed and self.record_mode in (RecordMode.NONE, RecordMode.ONCE):
            return (
                f"llmcassette: cassette file {str(self.path)!r} does not exist, and record mode "
                f"{self.record_mode.value!r} does not record, so {method} {shown_url} cannot be answered. "
                "Record it by running once with record_mode='once' (pytest: --record-mode=once)."
            ), []
        if slot is not None:
            played = ", ".join(f"#{i}" for i in slot.indices)
            found = [self._candidate(i, []) for i in slot.indices[:_CANDIDATES_SHOWN]]
            return (
                f"llmcassette: {method} {shown_url} matches recorded interaction {played} {where}, "
                f"but {'it has' if len(slot.indices) == 1 else 'they have'} already been played: "
                "each recorded response plays once, in order. Record the repeated request with "
                "record_mode='new_episodes' (pytest: --record-mode=new_episodes), or pass "
                "allow_playback_repeats=True to replay the last one again."
            ), found
        lines = [f"llmcassette: no recorded interaction matches {method} {shown_url} {where}."]
        if probe is None:
            probe = self._playlist.probe(method, url, body)
        scrubber = self.scrubber
        found = [
            # What a message shows of the request is scrubbed: a large body is matched unscrubbed
            # when scrubbing could not change the outcome (see Playlist.body_scrubber).
            self._candidate(position, [scrubber.scrub_text(d) if scrubber else d for d in differences])
            for position, _, differences in self._playlist.candidates(probe, _CANDIDATES_SHOWN)
        ]
        if found:
            lines.append("Closest recorded candidates:")
            for candidate in found:
                lines.append(
                    f"- #{candidate.interaction} {candidate.method} {candidate.url}: "
                    f"{'; '.join(candidate.differences)}"
                )
        else:
            lines.append("The cassette holds no interactions.")
        lines.append(
            "To record it, run with record_mode='new_episodes' (pytest: --record-mode=new_episodes); "
            "to match on fewer request parts, set match_on or ignored_body_fields."
        )
        return "\n".join(lines), found

    def _candidate(self, position: int, differences: list[str]) -> MissCandidate:
        request = self._tape.request(position)
        return MissCandidate(
            cassette=str(self.path),
            interaction=position,
            method=request.method,
            url=strip_userinfo(request.uri),
            differences=differences,
        )


def _with_recorded_gaps(
    playback: Playback, offsets_ms: Sequence[float], elapsed_ms: float | None, speed: float
) -> Playback:
    """
    ``playback`` with the recorded pace as waits before its chunks (``delays_ms``, added to any
    there), scaled by ``speed``: each chunk waits as long after the one before (the first, after
    the head) as it arrived after it when recorded.
    """
    chunks = playback.chunks
    if len(offsets_ms) != len(chunks):
        return playback
    before = playback.delays_ms if playback.delays_ms is not None else (0.0,) * len(chunks)
    previous = elapsed_ms or 0.0
    delays = []
    for offset, delay in zip(offsets_ms, before, strict=True):
        delays.append(delay + max(0.0, offset - previous) / speed)
        previous = max(previous, offset)
    return replace(playback, delays_ms=tuple(delays))


def _late_head(head_s: float, timeout_s: float | None) -> ConnectionFailure | None:
    # The client's timeout for a response head that comes after it, which never arrives.
    if timeout_s is not None and head_s >= timeout_s:
        return ConnectionFailure("ReadTimeout", TIMED_OUT)
    return None


def _engine_url(request: Any) -> str:
    # The one place a request's URL enters the engine. Credentials in it (`user:password@`) go
    # here, before matching, the attempt log, messages and the cassette can see them: a client
    # sends them in the Authorization header it builds from them, which is scrubbed.
    return strip_userinfo(str(request.url))


# The engine's URL of each URL httpx and httpx2 parsed (their `URL._uri_reference`, a tuple of its
# parts), or a door gave as text, once checked: a suite sends the same few URLs, and making the
# text again cost 1 µs.
_checked_urls: dict[Any, str] = {}
_CHECKED_URLS_KEPT = 1024
# The last of them, compared before the dictionary is looked in: a request's URL is parsed anew
# into parts of its own, and hashing their text costs more than comparing it with the last
# request's, which most requests repeat (3.4k instructions a request, against 1.9k).
_last_checked: tuple[Any, str] = (None, "")


def _checked_url(request: Any) -> str:
    # `_engine_url`, of a URL `_check_url` let through. A door's request holds its URL as text,
    # which is its own key (and has no parts: a lookup that fails costs more than the rest).
    global _last_checked
    url_given = request.url
    parts = url_given if type(url_given) is str else getattr(url_given, "_uri_reference", None)
    last_parts, last_url = _last_checked
    if parts is not None and parts == last_parts:
        return last_url
    url = _checked_urls.get(parts) if parts is not None else None
    if url is None:
        url = _engine_url(request)
        _check_url(url)
        if parts is not None:
            if len(_checked_urls) >= _CHECKED_URLS_KEPT:
                _checked_urls.clear()
            _checked_urls[parts] = url
    if parts is not None:
        _last_checked = (parts, url)
    return url


@functools.lru_cache(maxsize=1024)
def _check_url(url: str) -> None:
    # httpx sends some URLs that do not split (a port past 65535); matching, scrubbing and the
    # cassette file all need them split, so such a request is refused here, in words. Cached by
    # URL (a refusal raises, so only URLs that split are kept): a suite sends the same few URLs.
    problem = url_problem(url)
    if problem is not None:
        shown = url.partition("?")[0]  # without a query string that may hold a key
        raise ConfigError(
            f"llmcassette: cannot match or record a request to {shown!r}: its URL does not parse "
            f"({problem}). Fix the base URL the client is given."
        )


def _ends_with_terminator(
    method: str, url: str, raw_headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> bool:
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw_headers}
    if headers.get("content-encoding") or not chunks:
        return False
    body = b"".join(chunks)
    framing = detect_framing(headers.get("content-type"), body, url=url)
    if framing is Framing.NONE:
        return False
    events = [event for event in split_events(body, framing) if event.strip()]
    profile = detect_profile(RequestInfo(method=method, url=url))
    return bool(events) and (profile.is_terminator(events[-1]) or is_terminal(events[-1], framing, b""))
