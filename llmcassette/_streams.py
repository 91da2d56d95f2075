"""
Response byte streams: replay of recorded chunks, and the tee that records a live stream.

Both are plain classes mixed, per library, with that library's ``SyncByteStream`` and
``AsyncByteStream`` (see :func:`stream_class`), so that httpx and httpx2 responses accept them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from functools import cache
from typing import Any, Protocol

from ._flavors import Flavor

__all__ = ["Pacer", "RecordingStream", "ReplayStream", "StreamSink", "stream_class"]

# Captured at import: pacing must wait in real time even while a virtual clock replaces these.
_sleep = time.sleep
_async_sleep = asyncio.sleep
_monotonic = time.monotonic


class Pacer:
    """Waits until recorded moments, scaled by a speed factor, measured from ``start``."""

    __slots__ = ("speed", "start")

    def __init__(self, speed: float, start: float) -> None:
        self.speed = speed
        self.start = start

    def delay_s(self, offset_ms: float) -> float:
        return self.start + offset_ms / 1000.0 / self.speed - _monotonic()

    def wait(self, offset_ms: float) -> None:
        delay = self.delay_s(offset_ms)
        if delay > 0:
            _sleep(delay)

    async def await_(self, offset_ms: float) -> None:
        delay = self.delay_s(offset_ms)
        if delay > 0:
            await _async_sleep(delay)


class ReplayStream:
    """
    Yields recorded chunks with their recorded boundaries, optionally at their recorded times,
    then raises the recorded transport error if the stream failed while it was recorded.
    """

    def __init__(
        self,
        chunks: Sequence[bytes],
        *,
        offsets_ms: Sequence[float] | None = None,
        pacer: Pacer | None = None,
        error: Callable[[], Exception] | None = None,
        on_chunk: Callable[[bytes], None] | None = None,
    ) -> None:
        self._chunks = chunks
        self._offsets_ms = offsets_ms if pacer is not None else None
        self._pacer = pacer
        self._error = error
        self._on_chunk = on_chunk
        self._next = 0

    def _pending(self) -> Iterator[int]:
        # A second read carries on where the first stopped, as a network stream would: the
        # async openai SDK drains a stream again after `[DONE]` and must find nothing left.
        while self._next < len(self._chunks):
            self._next += 1
            yield self._next - 1

    def _deliver(self, index: int) -> bytes:
        chunk = self._chunks[index]
        if self._on_chunk is not None:
            self._on_chunk(chunk)
        return chunk

    def _fail(self) -> Exception | None:
        error, self._error = self._error, None
        return error() if error is not None else None

    def __iter__(self) -> Iterator[bytes]:
        for index in self._pending():
            if self._offsets_ms is not None and self._pacer is not None:
                self._pacer.wait(self._offsets_ms[index])
            chunk = self._deliver(index)
            if chunk:
                yield chunk
        error = self._fail()
        if error is not None:
            raise error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index in self._pending():
            if self._offsets_ms is not None and self._pacer is not None:
                await self._pacer.await_(self._offsets_ms[index])
            chunk = self._deliver(index)
            if chunk:
                yield chunk
        error = self._fail()
        if error is not None:
            raise error

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class StreamSink(Protocol):
    """Receives what a recorded stream delivers, and how it ended."""

    def chunk(self, data: bytes) -> None: ...

    def finish(self, *, error: BaseException | None = None, closed: bool = False) -> None: ...


class RecordingStream:
    """
    Passes a live response stream through to the client chunk by chunk, as it arrives, and hands
    each chunk to a sink that records it. The sink learns how the stream ended: completely, with a
    transport error, or closed by the client before the end.
    """

    def __init__(self, inner: Any, sink: StreamSink) -> None:
        self._inner = inner
        self._sink = sink

    def __iter__(self) -> Iterator[bytes]:
        sink = self._sink
        try:
            for chunk in self._inner:
                sink.chunk(chunk)
                yield chunk
        except Exception as exc:
            sink.finish(error=exc)
            raise
        except BaseException:
            sink.finish(closed=True)
            raise
        sink.finish()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sink = self._sink
        try:
            async for chunk in self._inner:
                sink.chunk(chunk)
                yield chunk
        except Exception as exc:
            sink.finish(error=exc)
            raise
        except BaseException:
            sink.finish(closed=True)
            raise
        sink.finish()

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._sink.finish(closed=True)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._sink.finish(closed=True)


@cache
def stream_class(base: type, flavor: Flavor) -> type:
    """``base`` mixed with ``flavor``'s stream classes, so its responses accept it."""
    return type(f"{base.__name__}", (base, *flavor.stream_base), {"__module__": __name__})
