"""
Running an SDK call under a cassette and a virtual clock, and the checks the fault tables share:
what the call must raise, and what the attempt log must hold.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import llmcassette
from llmcassette.faults import parse_fault
from tests.sdk_faults._clients import SDKS, Call, SdkCall, genai_without_aiohttp

MODES = ["sync", "async"]
#: google-genai's async client has two routes: aiohttp where it is installed (as here, the
#: "async" mode), httpx2 where it is not.
GENAI_HTTPX2 = "async-httpx2"


def modes(sdk: str) -> list[str]:
    """The ways the tests call ``sdk``: sync and async, and each route of google-genai's async client."""
    return [*MODES, GENAI_HTTPX2] if sdk == "genai" else MODES


def spec(text: str) -> str:
    """A fault spec as the attempt log writes it."""
    return parse_fault(text).spec()


@dataclass
class Replay:
    """One client call under a cassette and a virtual clock."""

    cassette: llmcassette.Cassette
    clock: llmcassette.VirtualClock
    #: What the client produced before it returned or failed (responses, stream chunks or events).
    got: list[Any]
    error: BaseException | None = None

    @property
    def attempts(self) -> list[llmcassette.Attempt]:
        return self.cassette.attempts

    @property
    def faults(self) -> list[list[str]]:
        return [attempt.faults for attempt in self.attempts]

    @property
    def interactions(self) -> list[int | None]:
        return [attempt.interaction for attempt in self.attempts]

    def ok(self) -> list[Any]:
        """What the client returned, checked to have succeeded."""
        assert self.error is None, f"the call failed: {self.error!r}"
        return self.got


def run(path: Path, call: Call, mode: str, faults: Sequence[str] = ()) -> Replay:
    """Replay ``call`` from the cassette at ``path`` with ``faults``, on a virtual clock."""
    got: list[Any] = []
    if mode == GENAI_HTTPX2:
        with genai_without_aiohttp():
            return run(path, call, "async", faults)
    if mode == "async":

        async def main() -> Replay:
            with llmcassette.VirtualClock() as clock:
                async with llmcassette.use_cassette(path, faults=faults) as cassette:
                    replay = Replay(cassette, clock, got)
                    try:
                        await call.run_async(got)
                    except Exception as exc:  # the tests look at what the SDK raised
                        replay.error = exc
            return replay

        return asyncio.run(main())
    with llmcassette.VirtualClock() as clock:
        with llmcassette.use_cassette(path, faults=faults) as cassette:
            replay = Replay(cassette, clock, got)
            try:
                call.sync(got)
            except Exception as exc:
                replay.error = exc
    return replay


# -- the recordings ------------------------------------------------------------------------------


def refuses_connections(base_url: str) -> bool:
    address = urlsplit(base_url)
    assert address.hostname is not None and address.port is not None
    with socket.socket() as sock:
        return sock.connect_ex((address.hostname, address.port)) != 0


@dataclass
class Tape:
    """Cassettes recorded live from the fake provider, which is stopped since."""

    base_url: str
    directory: Path

    def path(self, sdk: str, stream: bool) -> Path:
        return self.directory / f"{sdk}-{'stream' if stream else 'json'}.yaml"

    def call(self, sdk: str, stream: bool, options: Mapping[str, Any] | None = None) -> SdkCall:
        return SDKS[sdk].call(self.base_url, stream, dict(options or {}))

    def record(self, sdk: str, stream: bool, options: Mapping[str, Any] | None = None) -> None:
        # On the real clock: the upstream's own loop sleeps while it serves.
        with llmcassette.use_cassette(self.path(sdk, stream), record_mode="once") as cassette:
            self.call(sdk, stream, options).sync([])
        assert [a.recorded for a in cassette.attempts] == [True]
        assert cassette.attempts[0].status == 200

    def replay(
        self,
        sdk: str,
        mode: str,
        stream: bool = False,
        faults: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
    ) -> Replay:
        """Replay ``sdk``'s call from its recording, under ``faults``."""
        return run(self.path(sdk, stream), self.call(sdk, stream, options), mode, faults)


# -- the shared checks ---------------------------------------------------------------------------


def _matches(actual: Any, expected: Any, where: str) -> None:
    """``actual == expected``; an expected mapping is matched key by key (``actual`` may hold more)."""
    if isinstance(expected, Mapping):
        assert isinstance(actual, Mapping), f"{where}: {actual!r} is not a mapping"
        for key, value in expected.items():
            _matches(actual[key], value, f"{where}[{key!r}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@dataclass(frozen=True)
class Raises:
    """The error a call must end with, and what it must carry."""

    cls: type[BaseException]
    #: Attributes of the error (a mapping is matched key by key).
    fields: Mapping[str, Any] = field(default_factory=dict)
    #: Headers of the HTTP response the error carries.
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Classes it must be an instance of as well, and classes it must not be an instance of.
    also: tuple[type[BaseException], ...] = ()
    never: tuple[type[BaseException], ...] = ()
    #: Exactly ``cls``, not a subclass.
    exact: bool = False
    #: The class of the error it was raised from.
    cause: type[BaseException] | None = None
    #: Text its message must contain.
    says: str | None = None

    def check(self, error: BaseException | None) -> None:
        assert isinstance(error, self.cls), f"expected {self.cls}, got {error!r}"
        if self.exact:
            assert type(error) is self.cls, f"expected exactly {self.cls}, got {type(error)}"
        for cls in self.also:
            assert isinstance(error, cls), f"{error!r} is not a {cls}"
        for cls in self.never:
            assert not isinstance(error, cls), f"{error!r} is a {cls}"
        if self.cause is not None:
            assert isinstance(error.__cause__, self.cause), f"caused by {error.__cause__!r}"
        for name, value in self.fields.items():
            _matches(getattr(error, name), value, name)
        response = getattr(error, "response", None)
        for name, value in self.headers.items():
            assert response is not None, f"{error!r} carries no response"
            assert response.headers[name] == value, name
        if self.says is not None:
            assert self.says in str(error)


def assert_refused_then_replayed(replay: Replay, fault: str, refused: int, replayed: bool) -> None:
    """The fault answered the first ``refused`` attempts; the recording the next, if ``replayed``."""
    assert replay.faults == [[spec(fault)]] * refused + [[]] * replayed
    assert replay.interactions == [None] * refused + [0] * replayed


def assert_retry_counts(replay: Replay, sdk: str, counts: Sequence[int] | None = None) -> None:
    """Each attempt carried the retries made before it (``None``: 0, 1, 2, ...), where the SDK says."""
    header = SDKS[sdk].retry_header
    if header is not None:
        expected = range(len(replay.attempts)) if counts is None else counts
        assert [a.headers.get(header) for a in replay.attempts] == [str(n) for n in expected]


def assert_answered_once(replay: Replay, fault: str) -> None:
    """One attempt, answered by the recording with ``fault`` applied, and no retry after it."""
    assert replay.faults == [[spec(fault)]]
    assert replay.interactions == [0]
    assert replay.clock.sleeps == []
