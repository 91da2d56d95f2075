"""
Replay: play a session's script as the server, turn by turn.

:func:`serve_session` answers the client's handshake, then plays the script's steps in order
(see :mod:`._script`): server messages go out as soon as their turn comes (or at their recorded
time, when pacing); an ``Expect`` step waits for the client's next message and checks it against
the recording. A message that does not fit ends the session with close code 1008 and is
reported through ``on_mismatch`` (the cassette turns it into a miss that fails the test, as an
HTTP request without a recording does). A client that closes or goes away ends the session
wherever the script is.

Everything that crossed is noted in ``log`` (the attempt log's ``messages`` and ``close``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._clock import await_wait, current_clock
from .._streams import Pacer
from ._models import Sender, WebSocketClose, WebSocketMessage
from ._script import Close, Expect, Pause, Send, SessionScript
from ._server import ClientClosed, ServerSide

__all__ = ["MISMATCH_CLOSE_CODE", "SessionLog", "serve_session"]

#: The close code replay ends a session with when the client's message does not fit (policy violation).
MISMATCH_CLOSE_CODE = 1008
_MISMATCH_REASON = "llmcassette: the client's message does not fit the recording"

_monotonic = time.monotonic

#: Checks a client message against the recorded one: the differences, one phrase each (none: it fits).
Checker = Callable[[WebSocketMessage, str | bytes], list[str]]
#: Told of a client message that does not fit: the recorded one (None: the recording has no more
#: messages), what the client sent, and the differences.
MismatchHandler = Callable[[WebSocketMessage | None, str | bytes, list[str]], None]


@dataclass
class SessionLog:
    """What crossed in a session, as the attempt log shows it."""

    start: float
    messages: list[WebSocketMessage] = field(default_factory=list)
    close: WebSocketClose | None = None
    #: An attempt of the attempt log that shows the session as it goes (its ``messages`` and ``close``).
    attempt: Any = None
    #: The recorded messages by sender and text: one that crosses again is logged as a copy of
    #: its recording with the new time, not parsed again (a replay's messages mostly are).
    recorded: dict[tuple[str, str | bytes], WebSocketMessage] = field(default_factory=dict)
    #: Count the time a virtual clock moved too (replay paces on it); a recording counts real time.
    virtual: bool = False
    _clock: Any = field(default=None, init=False, repr=False)
    _clock_start_s: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempt is not None:
            self.attempt.messages = self.messages
        if self.virtual:
            self._clock = current_clock()
            self._clock_start_s = self._clock.elapsed_s if self._clock is not None else 0.0

    def now_ms(self) -> float:
        elapsed_s = _monotonic() - self.start
        if self._clock is not None:
            elapsed_s += self._clock.elapsed_s - self._clock_start_s
        return max(0.0, elapsed_s * 1000.0)

    def message(self, sender: Sender, data: str | bytes) -> None:
        known = self.recorded.get((sender, data)) if self.recorded else None
        if known is not None:
            self.messages.append(known.model_copy(update={"offset_ms": round(self.now_ms(), 1)}))
        else:
            self.messages.append(WebSocketMessage.capture(sender, self.now_ms(), data))

    def closed(self, by: str, code: int | None = None, reason: str | None = None) -> None:
        if self.close is None:
            if code == 1005:  # "no status received": a close frame without a code
                code = None
            self.close = WebSocketClose.model_validate(
                {"by": by, "code": code, "reason": reason, "offset_ms": round(self.now_ms(), 1)}
            )
            if self.attempt is not None:
                self.attempt.close = self.close


async def serve_session(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    script: SessionScript,
    *,
    check: Checker,
    on_mismatch: MismatchHandler,
    log: SessionLog,
    speed: float | None = None,
    on_request: Callable[[object], SessionScript] | None = None,
) -> None:
    """
    Serve one session from ``script`` on the channel; ``speed`` paces it (None: instant).
    ``on_request`` may give the script again once the handshake request is known (faults
    selected by its headers).
    """
    side = ServerSide(reader, writer, log)
    try:
        request = await side.read_request()
        if request is None:
            log.closed("none")
            return
        if on_request is not None:
            script = on_request(request)
        pacer = Pacer(speed, log.start) if speed is not None else None
        if pacer is not None and script.elapsed_ms:
            await pacer.await_(script.elapsed_ms)
        refusal = script.refusal
        if refusal is not None:
            await side.refuse(refusal.status, refusal.reason, refusal.headers, refusal.body)
            return
        if not await side.accept(request, subprotocol=script.subprotocol, headers=script.headers):
            log.closed("server")
            return
        await _play(side, script, check, on_mismatch, log, pacer)
    finally:
        await side.aclose()


async def _play(
    side: ServerSide,
    script: SessionScript,
    check: Checker,
    on_mismatch: MismatchHandler,
    log: SessionLog,
    pacer: Pacer | None,
) -> None:
    for step in script.steps:
        if side.client_closed is not None and not isinstance(step, Expect | Close):
            break
        if isinstance(step, Send):
            if pacer is not None:
                await pacer.await_(step.offset_ms)
            if await side.send(step.data, step.fragments):
                log.message("server", step.data)
        elif isinstance(step, Expect):
            received = await side.next_message()
            if isinstance(received, ClientClosed):
                _note_client_end(log, received)
                return
            differences = check(step.message, received)
            if differences:
                on_mismatch(step.message, received, differences)
                log.closed("server", MISMATCH_CLOSE_CODE, _MISMATCH_REASON)
                await side.close(MISMATCH_CLOSE_CODE, _MISMATCH_REASON)
                return
        elif isinstance(step, Pause):
            if step.duration_ms is None:
                await side.ended.wait()
            else:
                await await_wait(step.duration_ms / 1000.0)
        elif isinstance(step, Close):
            await _end(side, step, on_mismatch, log, pacer)
            return
    # The recording ends with the session open (or the client closed early): whatever the client
    # sends now was never recorded.
    await _wait_for_end(side, on_mismatch, log)


async def _end(
    side: ServerSide,
    step: Close,
    on_mismatch: MismatchHandler,
    log: SessionLog,
    pacer: Pacer | None,
) -> None:
    if step.by == "client":
        await _wait_for_end(side, on_mismatch, log)
        return
    if side.client_closed is not None:
        _note_client_end(log, side.client_closed)
        return
    if pacer is not None:
        await pacer.await_(step.offset_ms)
    if step.by == "server":
        log.closed("server", step.code, step.reason)
        await side.close(step.code, step.reason)
    else:
        log.closed("none")
        await side.drop()


async def _wait_for_end(side: ServerSide, on_mismatch: MismatchHandler, log: SessionLog) -> None:
    received = await side.next_message()
    if isinstance(received, ClientClosed):
        _note_client_end(log, received)
        return
    on_mismatch(None, received, [])
    log.closed("server", MISMATCH_CLOSE_CODE, _MISMATCH_REASON)
    await side.close(MISMATCH_CLOSE_CODE, _MISMATCH_REASON)


def _note_client_end(log: SessionLog, closed: ClientClosed) -> None:
    if closed.frame:
        log.closed("client", closed.code, closed.reason)
    else:
        log.closed("none")
