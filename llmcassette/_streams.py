"""
Response byte streams: replay of recorded chunks, and the tee that records a live stream.

Both are plain classes mixed, per library, with that library's ``SyncByteStream`` and
``AsyncByteStream`` (see :func:`stream_class`), so that httpx and httpx2 responses accept them.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from functools import cache
from typing import Any, Protocol

from ._clock import await_wait, wait
from ._flavors import TIMED_OUT, Flavor

__all__ = ["Pacer", "PlainReplayStream", "RecordingStream", "ReplayStream", "StreamSink", "stream_class"]

_monotonic = time.monotonic


class Pacer:
    """
    Waits until recorded moments, scaled by a speed factor, counted from ``start``. Under a
    virtual clock the waits advance virtual time, so the pacing is kept but costs nothing.
    """

    __slots__ = ("_waited_s", "speed", "start")

    def __init__(self, speed: float, start: float) -> None:
        self.speed = speed
        self.start = start
        self._waited_s = 0.0

    def _delay_s(self, offset_ms: float) -> tuple[float, float]:
        target = offset_ms / 1000.0 / self.speed
        return target, target - max(_monotonic() - self.start, self._waited_s)

    def wait(self, offset_ms: float) -> None:
        target, delay = self._delay_s(offset_ms)
        if delay > 0:
            wait(delay)
            self._waited_s = target

    async def await_(self, offset_ms: float) -> None:
        target, delay = self._delay_s(offset_ms)
        if delay > 0:
            await await_wait(delay)
            self._waited_s = target


class ReplayStream:
    """
    Yields chunks with their boundaries: optionally at their recorded times (``pacer``), after
    extra silences (``delays_ms``, from faults), then ends as recorded: cleanly, with a transport
    error (``error``), or in a silence (``end_stall_ms``). A silence the client's read timeout
    (``read_timeout_s``) does not outlast raises ``timeout_error`` once that timeout has passed.
    """

    # What `plain` leaves as it is (the constructor sets each for every other stream): a
    # stream made on almost every replay sets only its chunks.
    _offsets_ms: Sequence[float] | None = None
    _pacer: Pacer | None = None
    _error: Callable[[bool], Exception] | None = None
    _delays_ms: Sequence[float] | None = None
    _end_stall_ms: float | None = None
    _read_timeout_s: float | None = None
    _timeout_error: Callable[[str, bool], Exception] | None = None
    _next = 0
    _handed: list[bytes] | tuple[bytes, ...] = ()
    _running: tuple[Sequence[bytes], Iterator[bytes]] | None = None

    def __init__(
        self,
        chunks: Sequence[bytes],
        *,
        offsets_ms: Sequence[float] | None = None,
        pacer: Pacer | None = None,
        error: Callable[[bool], Exception] | None = None,
        delays_ms: Sequence[float] | None = None,
        end_stall_ms: float | None = None,
        read_timeout_s: float | None = None,
        timeout_error: Callable[[str, bool], Exception] | None = None,
    ) -> None:
        self._chunks = chunks
        self._offsets_ms = offsets_ms if pacer is not None else None
        self._pacer = pacer
        self._error = error
        self._delays_ms = delays_ms
        self._end_stall_ms = end_stall_ms
        self._read_timeout_s = read_timeout_s
        self._timeout_error = timeout_error
        self._next = 0
        # The chunks handed over, for the attempt log; while the lean loop runs, those its
        # iterator has handed over too (see `delivered`). A tuple until a chunk is added alone:
        # the lean loop adds the slice of the chunks it handed over, which is the chunks' own
        # tuple when they all went at once (a plain stream makes no list, see `plain`).
        self._handed = []
        self._running = None

    @classmethod
    def plain(cls, chunks: tuple[bytes, ...]) -> ReplayStream:
        """
        A stream that hands ``chunks`` over with no wait and ends cleanly: the constructor's with
        no option given (made on almost every replay, in a fifth of the time: every other
        attribute is the class's default).
        """
        stream = object.__new__(cls)
        stream._chunks = chunks
        return stream

    def _handing(self) -> list[bytes]:
        # The list chunks handed over one at a time are added to.
        handed = self._handed
        if isinstance(handed, tuple):
            handed = self._handed = list(handed)
        return handed

    def _handed_over(self, chunks: Sequence[bytes]) -> None:
        # Notes `chunks`, a run of the chunks, as handed over at once.
        handed = self._handed
        if isinstance(handed, tuple) and isinstance(chunks, tuple):
            self._handed = handed + chunks  # (`chunks` itself when none went before)
        else:
            handing = self._handing()
            handing += chunks

    def _silence(self, delay_ms: float, is_async: bool) -> tuple[float, Exception | None]:
        # How long to stay silent, and the timeout to raise after it when the client gives up
        # first (in the words of the sync or async reader's transport: see `network_text`).
        timeout = self._read_timeout_s
        if timeout is not None and delay_ms / 1000.0 >= timeout:
            return timeout, self._timeout(TIMED_OUT, is_async)
        if math.isinf(delay_ms):
            return 0.0, self._timeout(
                "llmcassette: the stream stalls for ever and the client set no read timeout, so it would "
                "hang; raising the read timeout now instead.",
                is_async,
            )
        return delay_ms / 1000.0, None

    def _timeout(self, message: str, is_async: bool) -> Exception:
        if self._timeout_error is None:
            return TimeoutError(message)
        return self._timeout_error(message, is_async)

    def _pending(self) -> Iterator[int]:
        # A second read carries on where the first stopped, as a network stream would: the
        # async openai SDK drains a stream again after `[DONE]` and must find nothing left.
        while self._next < len(self._chunks):
            self._next += 1
            yield self._next - 1

    def delivered(self) -> list[bytes]:
        """The chunks handed to the client so far (the attempt log reads them when asked)."""
        handed = list(self._handed)
        if self._running is not None:
            rest, iterator = self._running
            handed += rest[: len(rest) - operator.length_hint(iterator)]
        return handed

    @property
    def instant(self) -> bool:
        """True when playing the rest waits for nothing (no recorded pace, delay or stall): its sync
        iteration never sleeps, so an async door may run it on the event loop."""
        return self._pacer is None and self._delays_ms is None and self._end_stall_ms is None

    def take_all(self, *, most: int | None = None) -> Sequence[bytes] | None:
        """
        Every chunk still to come, handed over at once, when playing them waits for nothing and
        ends cleanly with no empty chunk among them (a door then writes them in one piece), and
        they are at most ``most``; None otherwise, and nothing is taken.
        """
        if (
            self._pacer is not None
            or self._delays_ms is not None
            or self._end_stall_ms is not None
            or self._error is not None
            or self._running is not None
        ):
            return None
        rest = self._chunks[self._next :]
        if not all(rest) or (most is not None and len(rest) > most):
            return None
        self._next = len(self._chunks)
        self._handed_over(rest)
        return rest

    def _ran(self, start: int) -> None:
        # Notes what the lean loop that ran from chunk `start` handed over, read off its iterator.
        assert self._running is not None
        rest, iterator = self._running
        count = len(rest) - operator.length_hint(iterator)
        self._next = start + count
        if count == len(rest) and self._handed == () and type(rest) is tuple:
            self._handed = rest  # all at once, none before (what `_handed_over` makes)
        else:
            self._handed_over(rest[:count])
        self._running = None

    def _fail(self, is_async: bool) -> Exception | None:
        error, self._error = self._error, None
        return error(is_async) if error is not None else None

    def __iter__(self) -> Iterator[bytes]:
        delays = self._delays_ms
        if delays is None and self._pacer is None:
            # The common case, kept lean: no waits, so the chunks are handed over by the
            # interpreter's own loop; how many went is read off the iterator when it stops (or
            # when the attempt log is read), not counted chunk by chunk.
            start = self._next
            rest = self._chunks[start:] if start else self._chunks
            if all(rest):  # an empty chunk is logged but never handed over
                iterator = iter(rest)
                self._running = (rest, iterator)
                try:
                    yield from iterator
                finally:
                    self._ran(start)
                if self._end_stall_ms is None and self._error is None:
                    return  # every chunk went, and the stream ends cleanly
        for index in self._pending():
            if delays is not None and delays[index]:
                seconds, timed_out = self._silence(delays[index], False)
                wait(seconds)
                if timed_out is not None:
                    raise timed_out
            if self._offsets_ms is not None and self._pacer is not None:
                self._pacer.wait(self._offsets_ms[index])
            chunk = self._chunks[index]
            self._handing().append(chunk)
            if chunk:
                yield chunk
        if self._end_stall_ms is not None:
            seconds, timed_out = self._silence(self._end_stall_ms, False)
            self._end_stall_ms = None
            wait(seconds)
            if timed_out is not None:
                raise timed_out
        error = self._fail(False)
        if error is not None:
            raise error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        delays = self._delays_ms
        for index in self._pending():
            if delays is not None and delays[index]:
                seconds, timed_out = self._silence(delays[index], True)
                await await_wait(seconds)
                if timed_out is not None:
                    raise timed_out
            if self._offsets_ms is not None and self._pacer is not None:
                await self._pacer.await_(self._offsets_ms[index])
            chunk = self._chunks[index]
            self._handing().append(chunk)
            if chunk:
                yield chunk
        if self._end_stall_ms is not None:
            seconds, timed_out = self._silence(self._end_stall_ms, True)
            self._end_stall_ms = None
            await await_wait(seconds)
            if timed_out is not None:
                raise timed_out
        error = self._fail(True)
        if error is not None:
            raise error

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class PlainReplayStream(ReplayStream):
    """
    A :class:`ReplayStream` made by :meth:`~ReplayStream.plain` (no wait, a clean end, chunks in a
    tuple), as most replays' are. Its first read skips the checks for what it cannot have, and
    when it hands every chunk over notes them so without counting them off its iterator.
    """

    def __iter__(self) -> Iterator[bytes]:
        if self._running is None and not self._next:
            chunks = self._chunks
            # (an empty chunk is logged but never handed over: the general loop)
            if type(chunks) is tuple and all(chunks):
                iterator = iter(chunks)
                self._running = (chunks, iterator)
                try:
                    yield from iterator
                except BaseException:  # left early (closed, or an error thrown in)
                    self._ran(0)
                    raise
                # Every chunk went, none before: what `_ran` notes, without its count.
                self._next = len(chunks)
                self._handed = chunks
                self._running = None
                return
        yield from super().__iter__()


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
