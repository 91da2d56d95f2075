"""
What replay does in a session, as data: the script, and the hook through which faults change it.

A recorded session becomes a :class:`SessionScript`: the handshake answer, then steps in order.
The engine (:mod:`._replay`) plays the steps one after the other:

- :class:`Send`: send a server message, at its recorded time when pacing (``offset_ms``), split
  into continuation frames of the given sizes when ``fragments`` is set;
- :class:`Expect`: wait for the client's next message and check it against the recorded one
  (JSON compared as request bodies are, volatile fields left out); the server messages after it
  are its turn, released once it has arrived;
- :class:`Pause`: silence for ``duration_ms`` (None: until the client closes or goes away);
- :class:`Close`: end the session as recorded: a close frame from the server (``by="server"``),
  waiting for the client's (``by="client"``), or dropping the connection without one
  (``by="none"``).

A script without a :class:`Close` step leaves the session open after its last step (it was open
when the cassette was saved): the client's further messages do not fit the recording.

A fault acts on a session by rewriting its script before it plays: any object with an
``apply_session(script, context) -> SessionScript`` method (see :class:`SessionFault`) that the
cassette's fault plan selects for the session. Setting ``refusal`` refuses the handshake with an
HTTP answer instead of ``101``. Scripts and steps are immutable: a fault returns a new script
(``dataclasses.replace``), so the recording is never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ._models import WebSocketMessage, WebSocketSession

__all__ = [
    "Close",
    "Expect",
    "Pause",
    "Refusal",
    "SessionContext",
    "SessionFault",
    "SessionScript",
    "Send",
    "Step",
    "apply_faults",
    "script_of",
]


@dataclass(frozen=True, slots=True)
class Send:
    """A server message to send."""

    data: str | bytes
    #: When it was sent in the recording, in ms after the handshake request (used when pacing).
    offset_ms: float
    #: Frame payload sizes in bytes, in order, to send the message as continuation frames
    #: (they must add up to the encoded message's length); None sends one frame.
    fragments: tuple[int, ...] | None = None
    #: Its position among the recorded messages; None for a message a fault added.
    index: int | None = None


@dataclass(frozen=True, slots=True)
class Expect:
    """A client message the recording has here: the client must send it before the script goes on."""

    message: WebSocketMessage
    #: Its position among the recorded messages.
    index: int


@dataclass(frozen=True, slots=True)
class Pause:
    """Silence: nothing is sent for ``duration_ms`` (None: until the client closes or goes away)."""

    duration_ms: float | None


@dataclass(frozen=True, slots=True)
class Close:
    """How the session ends."""

    by: Literal["client", "server", "none"]
    code: int | None = None
    reason: str | None = None
    #: When it happened in the recording, in ms after the handshake request.
    offset_ms: float = 0.0


Step = Send | Expect | Pause | Close


@dataclass(frozen=True, slots=True)
class Refusal:
    """An HTTP answer that refuses the handshake (a 401, 429 or 503 with the provider's error body)."""

    status: int
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class SessionScript:
    """Everything replay does in one session, in order."""

    steps: tuple[Step, ...]
    subprotocol: str | None = None
    #: Headers of the recorded 101 answer that replay sends again (protocol headers left out).
    headers: tuple[tuple[str, str], ...] = ()
    #: When the handshake answer arrived in the recording, in ms after the request.
    elapsed_ms: float = 0.0
    #: Refuse the handshake with this answer instead of accepting it.
    refusal: Refusal | None = None


@dataclass(frozen=True, slots=True)
class SessionContext:
    """What a fault knows of the session it acts on."""

    #: The URL the client connected to (the recorded upstream URL's form), scrubbed.
    url: str
    #: The handshake request's headers: names lower-cased, first value, scrubbed.
    headers: dict[str, str] = field(default_factory=dict)
    #: The provider profile's name for the URL (``openai``, ``gemini``, ...).
    provider: str = "generic"
    #: How many sessions this fault was considered for so far, this one included (from 1).
    call: int = 1
    #: The recorded interaction that plays; None when a fault answers a session the cassette lacks.
    interaction: int | None = None


class SessionFault(Protocol):
    """A fault that acts on WebSocket sessions."""

    def apply_session(self, script: SessionScript, context: SessionContext) -> SessionScript:
        """The script with this fault's change made; the given one is left as it is."""
        ...


def script_of(
    session: WebSocketSession, *, headers: dict[str, list[str]] | None = None, elapsed_ms: float | None = None
) -> SessionScript:
    """The script that replays ``session`` as it was recorded, turn by turn."""
    steps: list[Step] = []
    for index, message in enumerate(session.messages):
        if message.sender == "server":
            steps.append(Send(message.data, message.offset_ms, index=index))
        else:
            steps.append(Expect(message, index))
    close = session.close
    if close is not None:
        steps.append(Close(close.by, close.code, close.reason, close.offset_ms))
    from ._server import answer_headers  # the server end (asyncio) loads only when a session plays

    recorded = [(name, value) for name, values in (headers or {}).items() for value in values]
    kept = tuple(answer_headers(recorded))
    return SessionScript(
        steps=tuple(steps), subprotocol=session.subprotocol, headers=kept, elapsed_ms=elapsed_ms or 0.0
    )


def apply_faults(
    script: SessionScript, faults: Sequence[tuple[SessionFault, int]], context: SessionContext
) -> SessionScript:
    """The script after each fault, in order, with its call number."""
    for fault, call in faults:
        script = fault.apply_session(script, _with_call(context, call))
    return script


def _with_call(context: SessionContext, call: int) -> SessionContext:
    return SessionContext(
        url=context.url,
        headers=context.headers,
        provider=context.provider,
        call=call,
        interaction=context.interaction,
    )
