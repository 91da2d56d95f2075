"""
WebSocket faults on one message's bytes: its JSON cut short, or its frames cut small.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field

from .._websocket._script import Send, SessionContext, SessionScript
from ._base import MAX_COUNT, MAX_SIZE_BYTES
from ._session import SessionFault, after_field, changed, resolve_after, send_positions

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

    def apply_session(self, script: SessionScript, context: SessionContext) -> SessionScript:
        positions = send_positions(script)
        after = resolve_after(self.after, script)
        if after >= len(positions):
            return script
        index = positions[after]
        step = script.steps[index]
        assert isinstance(step, Send)
        return changed(script, index, replace(step, data=cut_in_half(step.data), fragments=None, index=None))


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

    breaks_session = False

    def apply_session(self, script: SessionScript, context: SessionContext) -> SessionScript:
        positions = send_positions(script)
        chosen = positions if self.after is None else positions[self.after : self.after + 1]
        steps = list(script.steps)
        for index in chosen:
            step = steps[index]
            assert isinstance(step, Send)
            steps[index] = replace(step, fragments=fragment_sizes(step.data, self.size))
        return replace(script, steps=tuple(steps))


def fragment_sizes(data: str | bytes, size: int) -> tuple[int, ...]:
    """Frame payload sizes of ``size`` bytes (the last one shorter) that add up to the message."""
    length = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return tuple(min(size, length - start) for start in range(0, length, size)) or (0,)
