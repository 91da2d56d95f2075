"""
What a replayed WebSocket session plays, and the base class of the faults that change it.

The engine (:mod:`llmcassette._websocket`) replays a recorded session turn by turn. Before it
starts, the session faults that fired for the handshake turn the recording into a
:class:`SessionPlay` with :func:`play_session`: the messages in order (client messages are what
the engine expects, server messages what it sends), each server message with the silence to keep
before it and, when set, the size of the continuation frames to send it in; then how the session
ends (the recorded close, a fault's close frame, or a drop without one) and the silence before
that end. Everything here is a pure function of the recording, the fault and the call number.

Faults count the messages the server *sends*: ``after=N`` acts once N server messages have gone
out (``after=0``: before the first). The client messages between two server messages stay where
they were recorded, so a fault placed after the N-th server message waits, as that message's
successor would have, for the client messages recorded before it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

from pydantic import Field

from .._exchange import RequestInfo
from .._websocket._models import Sender, WebSocketClose, WebSocketMessage, WebSocketSession
from ._base import MAX_COUNT, Fault, FaultContext

__all__ = [
    "Dialect",
    "PlayedMessage",
    "SessionFault",
    "SessionPlay",
    "dialect_of",
    "play_session",
]

#: The realtime protocol a session speaks, as told by its handshake URL.
Dialect = Literal["openai-realtime", "gemini-live", "websocket"]


def dialect_of(request: RequestInfo) -> Dialect:
    """``openai-realtime`` (``.../realtime``, OpenAI and Azure), ``gemini-live``
    (``...BidiGenerateContent``), else ``websocket``."""
    path = request.path.rstrip("/")
    if path.endswith("/realtime"):
        return "openai-realtime"
    if "BidiGenerateContent" in path:
        return "gemini-live"
    return "websocket"


@dataclass(frozen=True)
class PlayedMessage:
    """One message as the replay plays it."""

    message: WebSocketMessage
    #: Silence before the server sends it, in ms, on top of the pace (``math.inf``: for ever).
    pause_ms: float = 0.0
    #: Send it in continuation frames of this many bytes each (None: one frame).
    fragment_bytes: int | None = None
    #: The spec of the fault that added or changed it, for the attempt log.
    fault: str | None = None

    @property
    def sender(self) -> Sender:
        return self.message.sender


@dataclass(frozen=True)
class SessionPlay:
    """A session as the replay plays it: its messages, then its end."""

    messages: tuple[PlayedMessage, ...]
    #: How the session ends after the last message: the recorded close (None while it was still
    #: open when recorded), a fault's close frame (``by: server``) or a drop (``by: none``).
    close: WebSocketClose | None
    #: Silence before the end, in ms (``math.inf``: the session stays open, silent, for ever).
    close_pause_ms: float = 0.0
    #: The specs of the faults applied, in order.
    faults: tuple[str, ...] = field(default=())
    #: Whether a fault broke the session (cut it short, corrupted or stalled a message): then
    #: the recording counts as unplayed, so a client that reconnects gets it, as with HTTP.
    broken: bool = False

    @classmethod
    def of(cls, session: WebSocketSession) -> SessionPlay:
        """The recording as it is, unchanged."""
        return cls(tuple(PlayedMessage(message) for message in session.messages), session.close)

    def server_positions(self) -> list[int]:
        """Where the server messages are in ``messages``, in order."""
        return [index for index, played in enumerate(self.messages) if played.sender == "server"]

    def cut_point(self, after: int) -> int:
        """The index in ``messages`` just past the ``after``-th server message (0: before the
        first); past the last server message when there are fewer."""
        positions = self.server_positions()
        if after <= 0:
            return positions[0] if positions else len(self.messages)
        if after >= len(positions):
            return positions[-1] + 1 if positions else len(self.messages)
        return positions[after - 1] + 1

    def offset_at(self, index: int) -> float:
        """The recorded offset of the message before ``index`` (0 for the start)."""
        return self.messages[index - 1].message.offset_ms if index > 0 else 0.0

    def ended(self, after: int, close: WebSocketClose, spec: str, pause_ms: float = 0.0) -> SessionPlay:
        """The session cut after ``after`` server messages, ending with ``close``."""
        cut = self.cut_point(after)
        return replace(
            self,
            messages=self.messages[:cut],
            close=close.model_copy(update={"offset_ms": self.offset_at(cut)}),
            close_pause_ms=pause_ms,
            faults=(*self.faults, spec),
            broken=True,
        )

    def inserted(self, after: int, data: str | bytes, spec: str) -> SessionPlay:
        """A server message added after ``after`` server messages; the rest plays as recorded."""
        cut = self.cut_point(after)
        message = WebSocketMessage.capture("server", self.offset_at(cut), data)
        added = PlayedMessage(message, fault=spec)
        return replace(
            self, messages=(*self.messages[:cut], added, *self.messages[cut:]), faults=(*self.faults, spec)
        )

    def changed(self, index: int, played: PlayedMessage, spec: str, *, broken: bool) -> SessionPlay:
        """``messages[index]`` replaced by ``played``."""
        messages = list(self.messages)
        messages[index] = played
        return replace(
            self, messages=tuple(messages), faults=(*self.faults, spec), broken=self.broken or broken
        )


class SessionFault(Fault):
    """
    A fault that changes a recorded WebSocket session as it is played (family ``websocket``).

    It counts WebSocket sessions only (each handshake is one call), never HTTP requests. Like a
    stream fault that breaks the response, it leaves the recorded session unplayed, so a client
    that reconnects gets the recording.
    """

    family = "websocket"
    acts_on = "websocket"
    #: The dialects the fault exists in; a session of another is not counted (see ``applies_to``).
    dialects: ClassVar[frozenset[Dialect]] = frozenset({"openai-realtime", "gemini-live", "websocket"})

    def applies_to(
        self, request: RequestInfo, *, provider: str, streaming: bool, websocket: bool = False
    ) -> bool:
        if not super().applies_to(request, provider=provider, streaming=streaming, websocket=websocket):
            return False
        return dialect_of(request) in self.dialects

    def apply_session(self, play: SessionPlay, context: FaultContext) -> SessionPlay:
        """The session with this fault applied."""
        raise NotImplementedError("The 'apply_session' method must be implemented.")  # pragma: no cover


def after_field(description: str) -> int | None:
    """The ``after`` parameter every session fault has (default: half the server messages)."""
    return Field(
        default=None,
        ge=0,
        le=MAX_COUNT,
        description=f"{description}; default: half of the server messages",
    )


def resolve_after(after: int | None, play: SessionPlay) -> int:
    """``after`` as given, or half the server messages (at least one when there is one)."""
    if after is not None:
        return after
    count = len(play.server_positions())
    return max(count // 2, min(count, 1))


def forever_or_ms(seconds: float | None) -> float:
    """A silence in ms: ``seconds`` as given, or for ever."""
    return math.inf if seconds is None else seconds * 1000.0


def play_session(
    session: WebSocketSession, fired: Sequence[tuple[Fault, int]], context: FaultContext
) -> SessionPlay:
    """
    What the replay of ``session`` plays, with the session faults among ``fired`` applied in
    order, each on what the ones before it left (other faults in ``fired`` are not this
    function's: a replacing fault answers the handshake before any session is played).
    """
    play = SessionPlay.of(session)
    for fault, call in fired:
        if isinstance(fault, SessionFault):
            play = fault.apply_session(play, replace(context, call=call))
    return play
