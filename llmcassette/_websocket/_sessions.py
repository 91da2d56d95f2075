"""
The WebSocket side of a cassette: which recorded session answers a connection, and what is recorded.

A connection is planned before any byte moves (:meth:`SessionBook.plan`): by record mode and URL
it gets a recorded session to replay (sessions with the same URL play in recorded order, each
once), the upstream to record, or a miss (:class:`~llmcassette.NoMatchingInteraction`, raised to
the code that connects, as an HTTP request without a recording is). :meth:`SessionBook.run` then
serves the connection's channel with the engine (:mod:`._replay` or :mod:`._relay`); both doors
(in-process and the proxy) call these two.

Recorded interactions whose URL has a ``ws``/``wss`` scheme are the sessions: those with a
``websocket`` key replay as sessions, the others (a refused handshake) replay their HTTP answer.
Client messages are matched on JSON as request bodies are: the cassette's ``ignored_body_fields``
and :data:`VOLATILE_MESSAGE_FIELDS` are left out, and text is scrubbed as it was when recorded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._attempts import Attempt
from .._bodies import store_body
from .._exceptions import MissCandidate, NoMatchingInteraction
from .._exchange import RequestInfo
from .._matching import Matcher, RequestParts
from .._models import Interaction, RecordedResponse, header_get
from .._modes import RecordMode
from .._recording import build_request, headers_to_map, parsed_fields
from .._scrub import strip_userinfo
from ..faults import FaultPlan
from ._models import WebSocketMessage, WebSocketSession
from ._relay import Recording, relay_session
from ._replay import SessionLog, serve_session
from ._script import Refusal, SessionContext, SessionFault, SessionScript, apply_faults, script_of

if TYPE_CHECKING:
    from .._cassette import Cassette

__all__ = ["VOLATILE_MESSAGE_FIELDS", "WEBSOCKET_SCHEMES", "SessionBook", "SessionPlan"]

#: URL schemes of WebSocket handshakes: recorded interactions with these are sessions.
WEBSOCKET_SCHEMES = frozenset({"ws", "wss"})
#: Fields of a client message that vary from run to run without changing what is asked: left out
#: when it is matched, with the cassette's ``ignored_body_fields``.
VOLATILE_MESSAGE_FIELDS: tuple[str, ...] = ("event_id",)
# The handshake's nonce and its proof: new on every connection, meaningless in a file (a record
# again would change them for nothing), and never replayed (the engine answers each key anew).
_NONCE_HEADERS = frozenset({"sec-websocket-key", "sec-websocket-accept"})
# How many recorded sessions a miss's message names.
_CANDIDATES_SHOWN = 3
# How much of a client message a mismatch's message shows.
_SHOWN_CHARS = 200

_monotonic = time.monotonic


@dataclass
class SessionPlan:
    """What answers one connection: a recorded interaction (``index``) or the upstream (``recording``)."""

    url: str
    attempt: Attempt
    #: When the connection began (``time.monotonic()``): message offsets count from here.
    start: float
    index: int | None = None
    recording: Recording | None = None
    slot: int | None = None


class SessionBook:
    """The sessions of one cassette, and the connections answered from it."""

    def __init__(self, cassette: Cassette) -> None:
        self.cassette = cassette
        url_parts = [name for name in cassette.matcher.match_on if name not in ("method", "body")]
        self._url_matcher = Matcher(url_parts or ["url"], ignored_body_fields=())
        self._message_matcher = Matcher(
            ("body",), ignored_body_fields=(*cassette.matcher.ignored_body_fields, *VOLATILE_MESSAGE_FIELDS)
        )
        # Faults that act on sessions, counted apart from the ones that act on requests.
        self._faults = FaultPlan([f for f in cassette.fault_plan.faults if hasattr(f, "apply_session")])
        self._sessions: dict[Hashable, list[int]] | None = None
        self._played: dict[Hashable, int] = {}
        self._open: list[SessionPlan] = []
        self._scripts: dict[int, SessionScript] = {}
        self._interactions: dict[int, Interaction] = {}
        self._recorded_messages: dict[int, dict[tuple[str, str | bytes], WebSocketMessage]] = {}

    # -- planning --------------------------------------------------------------------------------

    def plan(self, url: str) -> SessionPlan:
        """Decide what answers a connection to ``url``; a miss is raised (and noted) here."""
        __tracebackhide__ = True
        cassette = self.cassette
        url = strip_userinfo(url)
        shown = cassette.scrubber.scrub_url(url) if cassette.scrubber is not None else url
        attempt = cassette.log_attempt(Attempt(index=-1, method="GET", url=shown, time_s=cassette.now_s()))
        plan = SessionPlan(url=url, attempt=attempt, start=_monotonic())
        mode = cassette.record_mode
        replays = mode in (RecordMode.NONE, RecordMode.NEW_EPISODES) or (
            mode is RecordMode.ONCE and cassette.existed
        )
        if replays:
            key = self._key(shown)
            with cassette._lock:
                found = self._index().get(key, [])
                played = self._played.get(key, 0)
                if played < len(found) or (found and cassette.allow_playback_repeats):
                    plan.index = found[min(played, len(found) - 1)]
                    self._played[key] = played + 1
                    cassette.play_counts[plan.index] += 1
                    attempt.interaction = plan.index
                    return plan
            if mode is not RecordMode.NEW_EPISODES:
                attempt.error = "no matching interaction"
                miss = NoMatchingInteraction(
                    self._miss_message(shown, found),
                    method="GET",
                    url=shown,
                    candidates=self._candidates(key),
                )
                cassette.add_miss(miss)
                raise miss
        plan.recording = Recording(url=url, start=plan.start, attempt=attempt)
        plan.slot = cassette.reserve_slot()
        attempt.recorded = True
        with cassette._lock:
            self._open.append(plan)
        return plan

    def _key(self, url: str) -> Hashable:
        return self._url_matcher.key(RequestParts("GET", url, b""))

    def _index(self) -> dict[Hashable, list[int]]:
        if self._sessions is None:
            tape = self.cassette._tape
            sessions: dict[Hashable, list[int]] = {}
            for index in range(len(tape)):
                uri = tape.line(index)[1]
                if urlsplit(uri).scheme.lower() in WEBSOCKET_SCHEMES:
                    sessions.setdefault(self._key(uri), []).append(index)
            self._sessions = sessions
        return self._sessions

    # -- serving ---------------------------------------------------------------------------------

    async def run(
        self,
        plan: SessionPlan,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        upstream_options: dict[str, Any] | None = None,
        fault_plans: Sequence[FaultPlan] = (),
        max_silence_s: float | None = None,
    ) -> None:
        """
        Serve the connection on the channel as ``plan`` says, then note what crossed. A replay
        takes the session faults of ``fault_plans`` too (``serve``'s own and its handshake
        header's), after the cassette's, selected the same way. ``max_silence_s`` bounds a
        fault's silence: after it the connection is dropped (``serve``'s ``stall_max_s``).
        """
        if plan.recording is not None:
            from .._intercept import passing

            with passing():  # the upstream connection is the real one, not another door's
                await relay_session(reader, writer, plan.recording, upstream_options=upstream_options)
            self._store(plan)
            plan.attempt.status = plan.recording.status
            plan.attempt.error = plan.recording.error
            return
        assert plan.index is not None
        script = self._script(plan.index)
        log = SessionLog(plan.start, attempt=plan.attempt, virtual=True, recorded=self._recorded(plan.index))
        plan.attempt.status = script.refusal.status if script.refusal is not None else 101

        def with_faults(request: Any) -> SessionScript:
            faulted = self._with_faults(plan, script, request, fault_plans)
            if max_silence_s is not None:
                from ..faults._session import bound_silences

                faulted = bound_silences(faulted, max_silence_s * 1000.0)
            return faulted

        def on_mismatch(
            expected: WebSocketMessage | None, received: str | bytes, differences: list[str]
        ) -> None:
            self._mismatch(plan, expected, received, differences)

        await serve_session(
            reader,
            writer,
            script,
            check=self._check,
            on_mismatch=on_mismatch,
            log=log,
            speed=self.cassette.speed,
            on_request=with_faults if self._faults or fault_plans else None,
        )

    def _recorded(self, index: int) -> dict[tuple[str, str | bytes], WebSocketMessage]:
        # Made once per recorded session, like its script: a session replayed again (a test's
        # retries, `serve` answering many clients) reads nothing again.
        found = self._recorded_messages.get(index)
        if found is None:
            session = self._recorded_interaction(index).websocket
            messages = session.messages if session is not None else []
            found = {(message.sender, message.data): message for message in messages}
            self._recorded_messages[index] = found
        return found

    def _script(self, index: int) -> SessionScript:
        script = self._scripts.get(index)
        if script is None:
            script = self._scripts[index] = self._read_script(index)
        return script

    def _recorded_interaction(self, index: int) -> Interaction:
        read = self._interactions.get(index)
        if read is None:
            read = self._interactions[index] = self.cassette._tape.interaction(index)
        return read

    def _read_script(self, index: int) -> SessionScript:
        interaction = self._recorded_interaction(index)
        response = interaction.response
        if interaction.websocket is None:
            status = response.status
            return SessionScript(
                steps=(),
                refusal=Refusal(
                    status=status.code if status is not None else 502,
                    reason=status.message if status is not None else "",
                    headers=tuple((n, v) for n, values in response.headers.items() for v in values),
                    body=response.content,
                ),
                elapsed_ms=response.elapsed_ms or 0.0,
            )
        return script_of(interaction.websocket, headers=response.headers, elapsed_ms=response.elapsed_ms)

    def _with_faults(
        self, plan: SessionPlan, script: SessionScript, request: Any, fault_plans: Sequence[FaultPlan] = ()
    ) -> SessionScript:
        scrubber = self.cassette.scrubber
        headers: dict[str, str] = {}
        for name, value in request.headers.raw_items():
            lname = name.lower()
            value = scrubber.scrub_header_value(lname, value) if scrubber is not None else value
            headers.setdefault(lname, value)
        info = RequestInfo(method="GET", url=plan.url, headers=headers)
        from ..providers import detect_profile

        profile = detect_profile(info, override=self.cassette.provider)
        plan.attempt.provider = profile.name
        fired = self._faults.select(info, provider=profile.name, streaming=True, websocket=True)
        for extra in fault_plans:  # the request faults they may hold do not act on a session
            selected = extra.select(info, provider=profile.name, streaming=True, websocket=True)
            fired += [(fault, call) for fault, call in selected if hasattr(fault, "apply_session")]
        if not fired:
            return script
        plan.attempt.faults.extend(fault.spec() for fault, _ in fired)
        context = SessionContext(
            url=plan.attempt.url, headers=headers, provider=profile.name, interaction=plan.index
        )
        faults: list[tuple[SessionFault, int]] = [(fault, call) for fault, call in fired]  # type: ignore[misc]
        script = apply_faults(script, faults, context)
        if script.refusal is not None:
            plan.attempt.status = script.refusal.status
        if script.refusal is not None or any(getattr(fault, "breaks_session", False) for fault, _ in fired):
            # A refused or broken session leaves its recording unplayed: a client that connects
            # again gets it, as an HTTP retry gets a response a fault replaced.
            self._unplay(plan)
        return script

    def _unplay(self, plan: SessionPlan) -> None:
        assert plan.index is not None
        key = self._key(plan.attempt.url)
        with self.cassette._lock:
            if self._played.get(key, 0) > 0:
                self._played[key] -= 1
                self.cassette.play_counts[plan.index] -= 1

    # -- matching client messages ------------------------------------------------------------------

    def _check(self, expected: WebSocketMessage, received: str | bytes) -> list[str]:
        if expected.frame is not None and isinstance(received, bytes):
            # JSON in a binary frame is matched as JSON is, volatile fields left out.
            try:
                received = received.decode("utf-8")
            except UnicodeDecodeError:
                return [
                    f"binary message differs (JSON recorded, {len(received)} bytes that are not UTF-8 sent)"
                ]
        elif expected.is_binary or isinstance(received, bytes):
            if expected.is_binary and isinstance(received, bytes):
                if expected.data == received:
                    return []
                return [f"binary message differs ({len(expected.data)} bytes recorded, {len(received)} sent)"]
            sent, kept = ("binary", "text") if isinstance(received, bytes) else ("text", "binary")
            return [f"a {sent} message was sent where the recording has a {kept} one"]
        scrubber = self.cassette.scrubber
        text = scrubber.scrub_text(received) if scrubber is not None else received
        data = expected.data
        recorded = data.decode("utf-8") if isinstance(data, bytes) else data
        sent_probe = self._message_matcher.probe(RequestParts("", "", text.encode("utf-8", "surrogatepass")))
        recorded_probe = self._message_matcher.probe(
            RequestParts("", "", recorded.encode("utf-8", "surrogatepass"))
        )
        if sent_probe.key == recorded_probe.key:
            return []
        return [
            difference.replace("body differs", "message differs", 1)
            for difference in self._message_matcher.explain(sent_probe, recorded_probe)
        ]

    def _mismatch(
        self,
        plan: SessionPlan,
        expected: WebSocketMessage | None,
        received: str | bytes,
        differences: list[str],
    ) -> None:
        cassette = self.cassette
        where = f"in cassette {str(cassette.path)!r} (record mode {cassette.record_mode.value!r})"
        number = len([m for m in plan.attempt.messages if m.sender == "client"]) - 1
        lines = [
            f"llmcassette: the WebSocket session with {plan.attempt.url} (recorded interaction "
            f"#{plan.index} {where}) got client message {number} that does not fit the recording."
        ]
        if expected is None:
            lines.append("The recording has no more client messages here: the session ended or was saved.")
        else:
            lines.append(f"Recorded here: {_shown(expected.data)}")
            lines.extend(f"- {difference}" for difference in differences)
        lines.append(f"Sent: {_shown(received)}")
        lines.append(
            "To record the session again, run with record_mode='all' (pytest: --record-mode=all); "
            "to leave a field that varies out of matching, add it to ignored_body_fields."
        )
        plan.attempt.error = "client message does not fit the recording"
        candidate = MissCandidate(
            cassette=str(cassette.path),
            interaction=plan.index if plan.index is not None else -1,
            method="GET",
            url=plan.attempt.url,
            differences=differences,
        )
        miss = NoMatchingInteraction(
            "\n".join(lines), method="GET", url=plan.attempt.url, candidates=[candidate]
        )
        cassette.add_miss(miss)

    # -- misses ------------------------------------------------------------------------------------

    def _miss_message(self, url: str, found: list[int]) -> str:
        cassette = self.cassette
        where = f"in cassette {str(cassette.path)!r} (record mode {cassette.record_mode.value!r})"
        if not cassette.existed and cassette.record_mode in (RecordMode.NONE, RecordMode.ONCE):
            return (
                f"llmcassette: cassette file {str(cassette.path)!r} does not exist, and record mode "
                f"{cassette.record_mode.value!r} does not record, so the WebSocket session with {url} "
                "cannot be answered. Record it by running once with record_mode='once' "
                "(pytest: --record-mode=once)."
            )
        if found:
            played = ", ".join(f"#{i}" for i in found)
            return (
                f"llmcassette: the WebSocket session with {url} matches recorded interaction {played} "
                f"{where}, "
                f"but {'it has' if len(found) == 1 else 'they have'} already been played: each recorded "
                "session plays once, in order. Record the repeated session with record_mode='new_episodes' "
                "(pytest: --record-mode=new_episodes), or pass allow_playback_repeats=True."
            )
        lines = [f"llmcassette: no recorded WebSocket session matches {url} {where}."]
        recorded = [index for indices in self._index().values() for index in indices]
        if recorded:
            lines.append("Recorded sessions:")
            tape = cassette._tape
            lines.extend(
                f"- #{index} {strip_userinfo(tape.line(index)[1])}"
                for index in sorted(recorded)[:_CANDIDATES_SHOWN]
            )
        else:
            lines.append("The cassette holds no WebSocket sessions.")
        lines.append(
            "To record it, run with record_mode='new_episodes' (pytest: --record-mode=new_episodes)."
        )
        return "\n".join(lines)

    def _candidates(self, key: Hashable) -> list[MissCandidate]:
        tape = self.cassette._tape
        recorded = sorted(index for indices in self._index().values() for index in indices)
        return [
            MissCandidate(
                cassette=str(self.cassette.path),
                interaction=index,
                method="GET",
                url=strip_userinfo(tape.line(index)[1]),
                differences=["URL differs"],
            )
            for index in recorded[:_CANDIDATES_SHOWN]
        ]

    # -- recording ---------------------------------------------------------------------------------

    def _store(self, plan: SessionPlan) -> None:
        with self.cassette._lock:
            if plan not in self._open:
                return  # stored already (the cassette was saved while it was open)
            self._open.remove(plan)
        interaction = self._interaction(plan)
        if interaction is not None and plan.slot is not None:
            self.cassette.fill_slot(plan.slot, interaction)

    def finish(self) -> None:
        """Store the sessions still open as they are so far (they get no ``close``)."""
        with self.cassette._lock:
            still_open = list(self._open)
        for plan in still_open:
            self._store(plan)

    def _interaction(self, plan: SessionPlan) -> Interaction | None:
        recording = plan.recording
        assert recording is not None
        if recording.status is None:
            return None  # the upstream was never reached, or the client left before its handshake
        scrubber = self.cassette.scrubber
        raw = [
            (n.encode("latin-1"), v.encode("latin-1"))
            for n, v in recording.request_headers
            if n.lower() not in _NONCE_HEADERS
        ]
        request = build_request(method="GET", url=plan.url, raw_headers=raw, body=b"", scrubber=scrubber)
        headers = headers_to_map(
            [
                (n.encode("latin-1"), v.encode("latin-1"))
                for n, v in recording.response_headers
                if n.lower() not in _NONCE_HEADERS
            ]
        )
        if scrubber is not None:
            headers = scrubber.scrub_headers(headers)
        response: dict[str, Any] = {
            "status": {"code": recording.status, "message": recording.reason},
            "headers": headers,
            "elapsed_ms": round(recording.elapsed_ms or 0.0, 1),
        }
        if recording.status != 101:
            body = scrubber.scrub_body(recording.body) if scrubber is not None else recording.body
            stored = store_body(body, content_type=header_get(headers, "content-type"))
            if stored.is_parsed:
                response.update(parsed_fields(stored))
            else:
                response["body"] = {"string": stored.string}
                if stored.line_endings:
                    response["body"]["line_endings"] = stored.line_endings
            return Interaction(request=request, response=RecordedResponse.model_validate(response))
        log = recording.log
        messages = [_scrubbed(message, scrubber) for message in list(log.messages)]
        session = WebSocketSession(subprotocol=recording.subprotocol, messages=messages, close=log.close)
        return Interaction(
            request=request, response=RecordedResponse.model_validate(response), websocket=session
        )


def _scrubbed(message: WebSocketMessage, scrubber: Any) -> WebSocketMessage:
    if scrubber is None or message.binary is not None:
        return message
    data = message.data
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    clean = scrubber.scrub_text(text)
    if clean == text:
        return message
    # JSON that crossed in a binary frame stays a binary frame.
    return WebSocketMessage.capture(
        message.sender, message.offset_ms, clean.encode("utf-8") if isinstance(data, bytes) else clean
    )


def _shown(data: str | bytes) -> str:
    if isinstance(data, bytes):
        return f"{len(data)} bytes of binary"
    return data if len(data) <= _SHOWN_CHARS else data[: _SHOWN_CHARS - 3] + "..."
