"""
The virtual clock: retry waits that take no time and are recorded.

While a :class:`VirtualClock` is active, ``time.sleep``, ``asyncio.sleep`` and ``anyio.sleep``
return at once; each requested duration is appended to ``clock.sleeps`` and advances the clock's
virtual time, which ``time.time`` then reports (so a client that turns an HTTP-date Retry-After
into a delay sees the dates the faults write move with its sleeps). ``time.monotonic`` is left
alone: event loops and timeouts run on it. SDK backoff can then be asserted exactly
(``clock.sleeps == [0.25, 0.25]``) without a test ever waiting.

llmcassette's own waits (recorded pacing, ``slow`` and ``stall`` faults, a timeout that fires)
go through :func:`wait` / :func:`await_wait`, which advance an active clock instead of sleeping,
but are not counted as client sleeps.

HTTP libraries' own retry waits go through these too: urllib3's ``Retry`` (so requests with a
mounted ``HTTPAdapter(max_retries=Retry(...))``) and botocore's legacy and standard retry modes
call ``time.sleep``. botocore's adaptive mode waits for its client-side rate limiter's tokens on a
condition variable instead; while a clock is active that wait is a virtual sleep too (see
:data:`LIBRARY_WAITS`), recorded like the others.

The patch is process-wide, like the transport patch, but only the thread that entered the clock
and threads started after it get virtual time: threads already running (a test server's loop, a
pool left by another test) keep sleeping for real, so their sleeps are not mistaken for a client's.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["LIBRARY_WAITS", "VirtualClock", "await_wait", "current_clock", "wait"]

_real_sleep = time.sleep
_real_async_sleep = asyncio.sleep
_real_time = time.time
_monotonic = time.monotonic

_lock = threading.RLock()
_active: list[VirtualClock] = []


def current_clock() -> VirtualClock | None:
    """The active virtual clock, if any."""
    return _active[-1] if _active else None


class VirtualClock:
    """
    A clock whose time moves only when something sleeps on it.

    Example::

        with llmcassette.VirtualClock() as clock:
            client.chat.completions.create(...)   # retried twice after 429s
        assert clock.sleeps == [0.25, 0.25]
    """

    def __init__(self, *, start_s: float | None = None) -> None:
        #: Seconds since the epoch at which virtual time starts: the real time by default, in whole
        #: seconds so that HTTP-dates (one-second resolution) give exact delays.
        self.start_s = float(int(_real_time())) if start_s is None else start_s
        #: Virtual seconds elapsed since the clock started.
        self.elapsed_s = 0.0
        #: Every duration a client asked to sleep, in order, in seconds.
        self.sleeps: list[float] = []
        #: ``time.monotonic()`` when the clock was entered (None before).
        self.entered_at: float | None = None
        self._foreign_threads: frozenset[int] = frozenset()

    def time(self) -> float:
        """Virtual seconds since the epoch."""
        return self.start_s + self.elapsed_s

    def advance(self, seconds: float) -> None:
        """Move virtual time forward without counting a client sleep."""
        if seconds > 0:
            with _lock:
                self.elapsed_s += seconds

    def _owns_current_thread(self) -> bool:
        # Threads that were already running when the clock was entered (a test server, a pool
        # of another test) keep real time: their periodic sleeps are not the client's. The
        # entering thread and every thread started since (SDK workers) are virtual.
        return threading.get_ident() not in self._foreign_threads

    def sleep(self, seconds: float) -> None:
        """A client's ``time.sleep``: recorded, and returns at once."""
        if not self._owns_current_thread():
            _real_sleep(seconds)
            return
        with _lock:
            self.sleeps.append(float(seconds))
        self.advance(seconds)

    async def asleep(self, seconds: float, result: Any = None) -> Any:
        """A client's ``asyncio.sleep``/``anyio.sleep``: recorded, and returns after one loop turn."""
        if not self._owns_current_thread():
            return await _real_async_sleep(seconds, result)
        self.sleep(seconds)
        await _real_async_sleep(0)
        return result

    # -- activation --------------------------------------------------------------------------

    def _targets(self) -> list[tuple[Any, str, Any]]:
        targets: list[tuple[Any, str, Any]] = [
            (time, "sleep", self.sleep),
            (time, "time", self.time),
            (asyncio, "sleep", self.asleep),
        ]
        anyio = sys.modules.get("anyio")
        if anyio is not None:
            targets.append((anyio, "sleep", self.asleep))
        for module_name, class_name, attribute, factory in LIBRARY_WAITS:
            owner = getattr(sys.modules.get(module_name), class_name, None)
            if owner is not None and attribute in owner.__dict__:
                targets.append((owner, attribute, factory(owner)))
        return targets

    def __enter__(self) -> VirtualClock:
        here = threading.get_ident()
        self._foreign_threads = frozenset(
            t.ident for t in threading.enumerate() if t.ident not in (None, here)
        )
        with _lock:
            for owner, attribute, _ in self._targets():
                _originals.setdefault((owner, attribute), getattr(owner, attribute))
            _active.append(self)
            _apply()
        self.entered_at = _monotonic()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with _lock:
            if self in _active:
                _active.remove(self)
            _apply()

    async def __aenter__(self) -> VirtualClock:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


# The real functions, saved by the first clock that replaced them.
_originals: dict[tuple[Any, str], Any] = {}

# Below this, a step of virtual time is lost in the epoch seconds `time.time` reports (about
# 2.4e-7 s today): a wait that falls short by rounding moves the clock on by this much instead.
_TIME_RESOLUTION_S = 1e-6


def _token_bucket_acquire(owner: type) -> Callable[..., bool]:
    """
    botocore's ``TokenBucket.acquire`` on the virtual clock. The bucket refills from
    ``time.time`` (virtual) but waits for tokens on a condition variable (real time), so under a
    clock it would wait for ever for time that never passes. Here the wait for the missing
    tokens is a client sleep, after which the refill finds them.
    """

    def acquire(bucket: Any, amount: int = 1, block: bool = True) -> bool:
        original: Callable[..., bool] = _originals[(owner, "acquire")]
        clock = current_clock()
        if not block or clock is None or not clock._owns_current_thread():
            return original(bucket, amount, block)
        short: type[Exception] = sys.modules["botocore.exceptions"].CapacityNotAvailableError
        waited = False
        while True:
            try:
                return original(bucket, amount, False)
            except short:
                wait_s = (amount - bucket.available_capacity) / bucket.max_rate
                if waited:
                    clock.advance(max(wait_s, _TIME_RESOLUTION_S))
                else:
                    clock.sleep(wait_s)
                    waited = True

    return acquire


#: Waits that libraries make without ``time.sleep``, replaced while a clock is active when their
#: module is imported: ``(module, class, attribute, factory)``, the factory taking the class.
LIBRARY_WAITS: list[tuple[str, str, str, Callable[[type], Callable[..., Any]]]] = [
    # botocore's adaptive retry mode: its client-side rate limiter's token bucket.
    ("botocore.retries.bucket", "TokenBucket", "acquire", _token_bucket_acquire),
]


def _apply() -> None:
    # The innermost active clock's functions, or the real ones when none is left: clocks may exit
    # in any order without leaving a stale patch behind.
    top = current_clock()
    replacements = {(owner, attribute): fn for owner, attribute, fn in top._targets()} if top else {}
    for key, original in _originals.items():
        owner, attribute = key
        setattr(owner, attribute, replacements.get(key, original))


def wait(seconds: float) -> None:
    """
    llmcassette's own wait: advances an active virtual clock, else really sleeps. A thread the
    clock does not own (a server running in-process since before the clock) really sleeps.
    """
    if seconds <= 0:
        return
    clock = current_clock()
    if clock is not None and clock._owns_current_thread():
        clock.advance(seconds)
    else:
        _real_sleep(seconds)


async def await_wait(seconds: float) -> None:
    """The async twin of :func:`wait`."""
    if seconds <= 0:
        return
    clock = current_clock()
    if clock is not None and clock._owns_current_thread():
        clock.advance(seconds)
        await _real_async_sleep(0)
    else:
        await _real_async_sleep(seconds)
