"""
Stream faults: transformations of a recorded response as it is played.

Each is a pure function of the recorded playback and the request's context: the same fault,
seed and call number always give the same chunks. Events are found with the response's framing
(see :mod:`llmcassette.faults.stream_wire`), recorded chunk boundaries stay wherever a fault does
not have to move them, and a fault that is not about timing keeps the recorded pauses.

========================  =========================================================
``empty_stream``          a 200 with the provider's empty stream (or an empty body)
``malformed_chunk``       one event's JSON cut in half, its framing intact
``bad_crc``               one eventstream frame with a wrong checksum (Bedrock)
``truncate``              a clean end after N events, without the terminator
``disconnect``            the connection drops after N events (fin or reset)
``error_event``           the provider's in-stream error after N events
``rechunk``               the same bytes in other chunks (1 byte, random, per event, adversarial)
``stall``                 silence after N events (the client's read timeout)
``slow``                  a late response head and pauses between chunks
========================  =========================================================
"""

from __future__ import annotations

from .stream_bytes import BadCrc, MalformedChunk, Rechunk
from .stream_endings import Disconnect, EmptyStream, ErrorEvent, Truncate
from .stream_timing import Slow, Stall

__all__ = [
    "BadCrc",
    "Disconnect",
    "EmptyStream",
    "ErrorEvent",
    "MalformedChunk",
    "Rechunk",
    "Slow",
    "Stall",
    "Truncate",
]
