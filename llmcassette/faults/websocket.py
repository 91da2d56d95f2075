"""
WebSocket faults: changes to a recorded WebSocket session (OpenAI Realtime, Gemini Live) as it
is played.

Each rewrites the session's replay script (see :mod:`llmcassette.faults._session`), a pure
function of the recording, the handshake and the call number: ``after=N`` counts the messages
the server sends. A session is one call of a fault's schedule (``times``, ``nth``, ``every``,
``probability``), and the filters (``path``, ``provider``) read the handshake. The handshake
itself is refused with the status faults (``unauthorized``, ``rate_limit``, ``unavailable``,
...), whose provider error body becomes the refused handshake's HTTP answer.

========================  =========================================================
``ws_close``              a close frame with a code and reason after N server messages
``ws_drop``               the connection ends without a close frame after N
``ws_error``              the provider's error after N (OpenAI ``error`` event; Gemini: close 1011)
``ws_rate_limits``        an OpenAI ``rate_limits.updated`` event with chosen remaining limits
``ws_stall``              silence after N server messages, for seconds or for ever
``ws_malformed``          one server message's JSON cut in half
``ws_fragment``           server messages sent in continuation frames of N bytes
========================  =========================================================
"""

from __future__ import annotations

from ._session import SessionFault
from .websocket_endings import WsClose, WsDrop, WsStall
from .websocket_events import WsError, WsRateLimits
from .websocket_frames import WsFragment, WsMalformed

__all__ = [
    "SessionFault",
    "WsClose",
    "WsDrop",
    "WsError",
    "WsFragment",
    "WsMalformed",
    "WsRateLimits",
    "WsStall",
]
