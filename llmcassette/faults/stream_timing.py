"""
Stream faults that change when the bytes arrive: a silence mid-stream, or a slow upstream.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

from pydantic import Field

from .._exchange import Ending, Playback
from ._base import MAX_COUNT, MAX_DURATION_MS, MAX_DURATION_S, FaultContext, StreamFault
from .stream_wire import finish, plain, read_delays, split_at, view

__all__ = ["Slow", "Stall"]


class Stall(StreamFault):
    """
    Silence after ``after`` events, for ``seconds`` or for ever.

    The first ``after`` events arrive as recorded, then nothing for ``seconds`` (default: for
    ever), with the connection open. When the silence is at least the client's read timeout, the
    client gets its ``ReadTimeout`` once that timeout has passed (a stall for ever with no read
    timeout raises it at once rather than hang the test). A shorter silence is only a pause: the
    rest of the stream follows as recorded. A count past the last event stalls after the whole
    body, terminator included. A non-streamed body stalls halfway (``after=0``: before its first
    byte).
    """

    name = "stall"
    summary = "silence after N events, for a number of seconds or for ever (the client's read timeout)"
    example = "stall:after=2,seconds=30"

    after: int | None = Field(
        default=None,
        ge=0,
        le=MAX_COUNT,
        description="events delivered before the silence; default: half of those before the terminator",
    )
    seconds: float | None = Field(
        default=None,
        ge=0,
        le=MAX_DURATION_S,
        allow_inf_nan=False,
        description="length of the silence, seconds; default: for ever",
    )

    def apply(self, playback: Playback, context: FaultContext) -> Playback:
        playback = plain(playback)
        offset = view(playback, context).offset_after(self.after, keep_terminator=True)
        silence_ms = math.inf if self.seconds is None else self.seconds * 1000.0
        if offset >= len(playback.body):
            return replace(
                playback,
                ending=Ending.STALL,
                stall_ms=None if self.seconds is None else silence_ms,
                error_type=None,
                error_message="",
            )
        chunks, delays, index = split_at(playback.chunks, read_delays(playback), offset)
        delays[index] += silence_ms
        return finish(playback, chunks, delays)


class Slow(StreamFault):
    """
    A slow upstream: a late response head and a pause between chunks.

    The response head waits ``ttfb_ms`` milliseconds more (time to first byte), and every chunk
    after the first waits ``gap_ms`` more, plus up to ``jitter_ms`` drawn from ``seed`` and the call
    number. Pauses add to those of other faults and to the recorded timing when replay keeps it.
    The pause is per chunk as played: combine with ``rechunk:mode=event`` to space events instead.
    A wait as long as the client's read timeout becomes its ``ReadTimeout``.
    """

    consumes_recording = True
    name = "slow"
    summary = "delay the response head (ttfb_ms) and every chunk after the first (gap_ms)"
    example = "slow:ttfb_ms=2000,gap_ms=50"

    ttfb_ms: float = Field(
        default=0.0,
        ge=0,
        le=MAX_DURATION_MS,
        allow_inf_nan=False,
        description="extra wait before the head, ms",
    )
    gap_ms: float = Field(
        default=0.0,
        ge=0,
        le=MAX_DURATION_MS,
        allow_inf_nan=False,
        description="extra wait before each chunk after the first, ms",
    )
    jitter_ms: float = Field(
        default=0.0,
        ge=0,
        le=MAX_DURATION_MS,
        allow_inf_nan=False,
        description="up to this much more per chunk, random, in ms",
    )

    def apply(self, playback: Playback, context: FaultContext) -> Playback:
        delays = read_delays(playback)
        rng = random.Random(f"slow:{self.seed}:{context.call}")
        for index in range(1, len(delays)):
            delays[index] += self.gap_ms + (rng.uniform(0.0, self.jitter_ms) if self.jitter_ms else 0.0)
        slowed = finish(playback, playback.chunks, delays)
        return replace(slowed, head_delay_ms=playback.head_delay_ms + self.ttfb_ms)
