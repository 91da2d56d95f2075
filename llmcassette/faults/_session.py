"""
The base class of the WebSocket faults, and the script edits they are made of.

The engine (:mod:`llmcassette._websocket`) replays a session from a script of steps (``Send``,
``Expect``, ``Pause``, ``Close``; see :mod:`llmcassette._websocket._script`). A session fault
rewrites that script before it plays: ``apply_session(script, context)`` returns a new script,
a pure function of the recording, the handshake and the call number.

Faults count the messages the server *sends*: ``after=N`` acts once N server messages have gone
out (``after=0``: before the first). The client messages between two server messages stay where
they were recorded, so a fault placed after the N-th server message waits, as that message's
successor would have, for the client messages recorded before it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar, Literal

from pydantic import Field

from .._exchange import RequestInfo
from .._websocket._script import Close, Pause, Send, SessionContext, SessionScript, Step
from ._base import MAX_COUNT, Fault

__all__ = [
    "Dialect",
    "SessionFault",
    "bound_silences",
    "cut_point",
    "dialect_of",
    "ended",
    "inserted",
    "send_positions",
]

#: The realtime protocol a session speaks, as told by its handshake URL.
Dialect = Literal["openai-realtime", "gemini-live", "websocket"]


def dialect_of(url: str) -> Dialect:
    """``openai-realtime`` (``.../realtime``, OpenAI and Azure), ``gemini-live``
    (``...BidiGenerateContent``), else ``websocket``."""
    path = RequestInfo("GET", url).path.rstrip("/")
    if path.endswith("/realtime"):
        return "openai-realtime"
    if "BidiGenerateContent" in path:
        return "gemini-live"
    return "websocket"


class SessionFault(Fault):
    """
    A fault that changes a recorded WebSocket session as it is played (family ``websocket``).

    It counts WebSocket sessions only (each handshake is one call), never HTTP requests.
    ``breaks_session``: whether the recorded session counts as unplayed after the fault, so
    that a client that reconnects gets the recording (as a stream fault that breaks a response
    leaves it for the retry).
    """

    family = "websocket"
    acts_on = "websocket"
    breaks_session: ClassVar[bool] = True
    #: The dialects the fault exists in; a session of another is not counted (see ``applies_to``).
    dialects: ClassVar[frozenset[Dialect]] = frozenset({"openai-realtime", "gemini-live", "websocket"})

    def applies_to(
        self, request: RequestInfo, *, provider: str, streaming: bool, websocket: bool = False
    ) -> bool:
        if not super().applies_to(request, provider=provider, streaming=streaming, websocket=websocket):
            return False
        return dialect_of(request.url) in self.dialects

    def apply_session(self, script: SessionScript, context: SessionContext) -> SessionScript:
        """The script with this fault's change made; the given one is left as it is."""
        raise NotImplementedError("The 'apply_session' method must be implemented.")  # pragma: no cover


def after_field(description: str) -> int | None:
    """The ``after`` parameter of the session faults (default: half the server messages)."""
    return Field(
        default=None,
        ge=0,
        le=MAX_COUNT,
        description=f"{description}; default: half of the server messages",
    )


def send_positions(script: SessionScript) -> list[int]:
    """Where the server messages (``Send`` steps) are among the steps, in order."""
    return [index for index, step in enumerate(script.steps) if isinstance(step, Send)]


def resolve_after(after: int | None, script: SessionScript) -> int:
    """``after`` as given, or half the server messages (at least one when there is one)."""
    if after is not None:
        return after
    count = len(send_positions(script))
    return max(count // 2, min(count, 1))


def cut_point(script: SessionScript, after: int) -> int:
    """
    Where a fault after ``after`` server messages goes: just before the next server message,
    once the client messages recorded before it have arrived (0: before the first server
    message); at the end of the messages, before the recorded close, when there is no next one.
    """
    positions = send_positions(script)
    return positions[after] if 0 <= after < len(positions) else _body_end(script)


def _body_end(script: SessionScript) -> int:
    # Where the messages end: before the recorded Close, if there is one.
    steps = script.steps
    return len(steps) - 1 if steps and isinstance(steps[-1], Close) else len(steps)


def offset_at(script: SessionScript, index: int) -> float:
    """The recorded offset of the last message or close step before ``index`` (0 at the start)."""
    for step in reversed(script.steps[:index]):
        if isinstance(step, Send | Close):
            return step.offset_ms
        offset = getattr(getattr(step, "message", None), "offset_ms", None)
        if offset is not None:
            return float(offset)
    return 0.0


def ended(script: SessionScript, after: int, close: Close) -> SessionScript:
    """The script cut after ``after`` server messages, ending with ``close`` (at that moment)."""
    cut = cut_point(script, after)
    return replace(script, steps=(*script.steps[:cut], replace(close, offset_ms=offset_at(script, cut))))


def inserted(script: SessionScript, after: int, step: Step) -> SessionScript:
    """``step`` placed after ``after`` server messages; the rest plays as recorded."""
    cut = cut_point(script, after)
    if isinstance(step, Send):
        step = replace(step, offset_ms=offset_at(script, cut))
    return replace(script, steps=(*script.steps[:cut], step, *script.steps[cut:]))


def changed(script: SessionScript, index: int, step: Step) -> SessionScript:
    """``steps[index]`` replaced by ``step``."""
    steps = list(script.steps)
    steps[index] = step
    return replace(script, steps=tuple(steps))


def bound_silences(script: SessionScript, max_silence_ms: float) -> SessionScript:
    """
    The script with no silence longer than ``max_silence_ms``: a longer one (or one for ever)
    lasts that long, then the connection is dropped, as ``serve`` ends an HTTP stall after
    ``stall_max_s`` so that a client that never gives up does not hold the server.
    """
    for index, step in enumerate(script.steps):
        if isinstance(step, Pause) and (step.duration_ms is None or step.duration_ms > max_silence_ms):
            end = (Pause(max_silence_ms), Close("none", offset_ms=offset_at(script, index)))
            return replace(script, steps=(*script.steps[:index], *end))
    return script
