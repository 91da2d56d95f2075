"""
WebSocket faults on one message's bytes: its JSON cut short, or its frames cut small.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field

from .._websocket._models import WebSocketMessage
from ._base import MAX_COUNT, MAX_SIZE_BYTES, FaultContext
from ._session import SessionFault, SessionPlay, after_field, resolve_after

__all__ = ["WsFragment", "WsMalformed"]


def cut_in_half(data: str | bytes) -> str | bytes:
    """The first half of a message (at least one character or byte, never all of a longer one):
    a JSON text cut there never parses."""
    keep = max(1, len(data) // 2) if len(data) > 1 else 0
    return data[:keep]


class WsMalformed(SessionFault):
    """
    The server message after the first ``after`` has its JSON cut in half.

    The message keeps its kind (a text frame stays text, Gemini Live's binary JSON stays
    binary) and the rest of the recording plays as recorded. The openai SDK's ``recv()`` raises
    the ``json.JSONDecodeError`` (a ``ValueError``) of its parse; google-genai raises
    ``ValueError("Failed to parse response: ...")``. A count past the last server message leaves
    the session as recorded.
    """

    name = "ws_malformed"
    summary = "the server message after the first N has its JSON cut in half"
    example = "ws_malformed:after=2"

    after: int | None = after_field("server messages sent intact before the cut one")

    def apply_session(self, play: SessionPlay, context: FaultContext) -> SessionPlay:
        positions = play.server_positions()
        after = resolve_after(self.after, play)
        if after >= len(positions):
            return replace(play, faults=(*play.faults, self.spec()))
        index = positions[after]
        played = play.messages[index]
        cut = cut_in_half(played.message.data)
        message = WebSocketMessage.capture("server", played.message.offset_ms, cut)
        return play.changed(
            index, replace(played, message=message, fault=self.spec()), self.spec(), broken=True
        )


class WsFragment(SessionFault):
    """
    Server messages sent as a first frame and continuation frames of ``size`` bytes each.

    Only the server message after the first ``after`` when ``after`` is given, else every one.
    The message is the same once reassembled: a client on a conforming WebSocket library (both
    SDKs use ``websockets``) sees no difference, which is what the fault proves. Text messages
    are cut between bytes, inside UTF-8 characters too, as RFC 6455 allows.
    """

    name = "ws_fragment"
    summary = "server messages sent in continuation frames of N bytes (the same message reassembled)"
    example = "ws_fragment:size=1,after=3"

    size: int = Field(default=16, ge=1, le=MAX_SIZE_BYTES, description="bytes per frame")
    after: int | None = Field(
        default=None,
        ge=0,
        le=MAX_COUNT,
        description="server messages sent whole before the fragmented one; default: every one is fragmented",
    )

    def apply_session(self, play: SessionPlay, context: FaultContext) -> SessionPlay:
        positions = play.server_positions()
        if self.after is None:
            chosen = positions
        else:
            chosen = positions[self.after : self.after + 1]
        spec = self.spec()
        messages = list(play.messages)
        for index in chosen:
            messages[index] = replace(messages[index], fragment_bytes=self.size)
        return replace(play, messages=tuple(messages), faults=(*play.faults, spec))
