"""``use_cassette``: the entry point, as a sync or async context manager and as a decorator."""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar, Token
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

from ._cassette import Cassette
from ._exceptions import ConfigError
from ._filters import InteractionFilter
from ._intercept import activate, deactivate
from ._matching import DEFAULT_IGNORED_BODY_FIELDS, DEFAULT_MATCH_ON, Matcher
from ._modes import Pace, RecordMode, parse_pace, parse_record_mode
from ._scrub import Scrubber
from .faults import FaultPlan, FaultSpec
from .providers import get_profile

__all__ = ["CassetteContext", "use_cassette"]

F = TypeVar("F", bound=Callable[..., Any])

_DEFAULT_SCRUBBER = Scrubber()

_Entry = tuple[Cassette, Token[Cassette | None] | None]


class CassetteContext:
    """
    What :func:`use_cassette` returns. Each ``with`` (or decorated call) loads the file afresh,
    activates a :class:`Cassette`, and on exit writes what was recorded, if the mode says so.
    """

    def __init__(self, path: str | Path, options: dict[str, Any]) -> None:
        self.path = Path(path)
        self._options = options
        # Entries are kept per context (task or thread), so one context object entered by
        # concurrent tasks exits each task's own cassette.
        self._entries: ContextVar[tuple[_Entry, ...]] = ContextVar(
            f"llmcassette_entries_{id(self)}", default=()
        )
        # Every open entry, whatever its context: a fixture or a thread may exit elsewhere than
        # it entered, and the most recent open entry is then the one to close.
        self._open: list[_Entry] = []
        self._lock = threading.Lock()

    def _enter(self) -> Cassette:
        cassette = Cassette(self.path, **self._options)
        token = activate(cassette)
        entry = (cassette, token)
        self._entries.set((*self._entries.get(), entry))
        with self._lock:
            self._open.append(entry)
        return cassette

    def _exit(self, exc: BaseException | None) -> None:
        with self._lock:
            mine = [entry for entry in self._entries.get() if entry in self._open]
            entry = mine[-1] if mine else self._open[-1]
            self._open.remove(entry)
        self._entries.set(tuple(e for e in self._entries.get() if e is not entry))
        cassette, token = entry
        if not mine:
            token = None  # the token belongs to another context
        try:
            deactivate(cassette, token)
        finally:
            cassette.finish()
        if not cassette.misses:
            return
        first = cassette.misses[0]
        if exc is None:
            # The client swallowed the error (a retry loop, a fallback): the test must still fail.
            first.add_note(
                "llmcassette: the code went on after this miss (it was caught). Code that expects it "
                "makes the request inside `with cassette.expect_miss():`."
            )
            raise first
        if not any(exc is miss for miss in cassette.misses):
            exc.add_note(str(first))

    def __enter__(self) -> Cassette:
        return self._enter()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit(exc)

    async def __aenter__(self) -> Cassette:
        return self._enter()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit(exc)

    def __call__(self, function: F) -> F:
        """Use the cassette around every call of ``function`` (sync or async, generators too)."""
        if inspect.isasyncgenfunction(function):

            @functools.wraps(function)
            async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with CassetteContext(self.path, self._options):
                    async for item in function(*args, **kwargs):
                        yield item

            return cast(F, async_gen_wrapper)

        if inspect.isgeneratorfunction(function):

            @functools.wraps(function)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                with CassetteContext(self.path, self._options):
                    return (yield from function(*args, **kwargs))

            return cast(F, gen_wrapper)

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with CassetteContext(self.path, self._options):
                    return await function(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with CassetteContext(self.path, self._options):
                return function(*args, **kwargs)

        return cast(F, wrapper)


def use_cassette(
    path: str | Path,
    *,
    record_mode: str | RecordMode = RecordMode.NONE,
    pace: Pace = "instant",
    match_on: Sequence[str] = DEFAULT_MATCH_ON,
    ignored_body_fields: Sequence[str] = DEFAULT_IGNORED_BODY_FIELDS,
    scrub: Scrubber | bool = True,
    allow_playback_repeats: bool = False,
    decode_compressed: bool = True,
    faults: Iterable[FaultSpec] = (),
    provider: str | None = None,
    vcrpy_compatible: bool = False,
    interaction_filter: InteractionFilter | None = None,
) -> CassetteContext:
    """
    Record and replay the HTTP traffic of the code inside, through httpx and httpx2.

    ``record_mode`` decides what reaches the network (pytest-recording's modes; the default
    ``"none"`` replays only). ``pace`` is ``"instant"``, ``"recorded"`` or a speed factor.
    Requests match on ``match_on`` (method, URL and canonical JSON body by default), leaving
    ``ignored_body_fields`` out (dotted paths, ``*`` for any key or item). ``scrub`` removes
    secrets before anything is written (``True`` for the defaults, a :class:`Scrubber` to
    customise, ``False`` to store everything as sent). ``faults`` are injected into what is
    replayed (fault models or spec strings such as ``"rate_limit:times=2"``); ``provider`` names
    the provider profile to use instead of detecting it from each request. ``vcrpy_compatible``
    writes every body as vcrpy's text instead of ``parsed_body``, so plain vcrpy (and
    pytest-recording without llmcassette) can replay the file; chunking and timing are kept.
    ``interaction_filter`` applies another library's recording hooks to what is matched, replayed
    and recorded (the pytest plugin passes a ``vcr`` test's vcrpy hooks).

    Example::

        with llmcassette.use_cassette("cassettes/chat.yaml", record_mode="once") as cassette:
            reply = client.chat.completions.create(model="gpt-4o", messages=messages)
        assert len(cassette.attempts) == 1

    It also decorates sync and async functions, and works with ``async with``.
    """
    if isinstance(scrub, bool):
        scrubber: Scrubber | None = _DEFAULT_SCRUBBER if scrub else None
    elif isinstance(scrub, Scrubber):
        scrubber = scrub
    else:
        raise ConfigError(f"llmcassette: `scrub` takes True, False or a Scrubber, not {scrub!r}.")
    # Validate eagerly, so a bad option fails where it is written rather than at first use.
    parse_record_mode(record_mode)
    parse_pace(pace)
    Matcher(match_on, ignored_body_fields=ignored_body_fields)
    plan = FaultPlan(faults)
    if provider is not None:
        get_profile(provider)
    options: dict[str, Any] = {
        "record_mode": record_mode,
        "pace": pace,
        "match_on": tuple(match_on),
        "ignored_body_fields": tuple(ignored_body_fields),
        "scrubber": scrubber,
        "allow_playback_repeats": allow_playback_repeats,
        "decode_compressed": decode_compressed,
        "faults": tuple(plan.faults),
        "provider": provider,
        "vcrpy_compatible": vcrpy_compatible,
        "interaction_filter": interaction_filter,
    }
    return CassetteContext(path, options)
