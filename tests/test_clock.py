"""
The virtual clock: client sleeps (``time.sleep``, ``asyncio.sleep``, ``anyio.sleep``) return at
once and are recorded; the patches go away on exit, also after an error and when clocks nest;
llmcassette's own waits move virtual time without counting as client sleeps; and with real httpx
and httpx2 clients, recorded pacing and retry backoff cost virtual time only.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

import llmcassette
from llmcassette import VirtualClock
from llmcassette._clock import await_wait, current_clock, wait
from tests.servers import Client, serve, sse_events, stream_app

#: What a clock may patch, and the real functions there.
PATCHABLE = ((time, "sleep"), (time, "time"), (asyncio, "sleep"), (anyio, "sleep"))
REAL = tuple(getattr(owner, name) for owner, name in PATCHABLE)


def patchable_now() -> tuple[Any, ...]:
    return tuple(getattr(owner, name) for owner, name in PATCHABLE)


def sleeps_now() -> tuple[Any, Any, Any]:
    return (time.sleep, asyncio.sleep, anyio.sleep)


@pytest.fixture(autouse=True)
def no_clock_left_behind() -> Iterator[None]:
    yield
    assert patchable_now() == REAL
    assert current_clock() is None


# -- the clock on its own ---------------------------------------------------------------------------


def test_time_sleep_is_virtual_and_recorded() -> None:
    start = time.monotonic()
    with VirtualClock(start_s=1000.0) as clock:
        assert current_clock() is clock
        time.sleep(30)
        time.sleep(0.25)
        assert clock.time() == 1030.25
    assert time.monotonic() - start < 0.5
    assert clock.sleeps == [30.0, 0.25]
    assert clock.elapsed_s == 30.25


@pytest.mark.anyio
async def test_asyncio_and_anyio_sleeps_are_virtual_recorded_and_return_their_result() -> None:
    start = time.monotonic()
    async with VirtualClock() as clock:
        assert await asyncio.sleep(12, result="woke") == "woke"
        assert await asyncio.sleep(0.5) is None
        assert await anyio.sleep(3) is None
    assert time.monotonic() - start < 0.5
    assert clock.sleeps == [12.0, 0.5, 3.0]
    assert clock.elapsed_s == 15.5


def test_time_time_reports_virtual_time_under_a_clock() -> None:
    with VirtualClock(start_s=1_700_000_000.0) as clock:
        assert time.time() == 1_700_000_000.0
        time.sleep(90)
        assert time.time() == clock.time() == 1_700_000_090.0
    assert abs(time.time() - clock.start_s) > 3600  # real time again


def test_the_clock_starts_at_the_real_time_by_default() -> None:
    before = time.time()
    clock = VirtualClock()
    assert int(before) <= clock.time() <= time.time()  # whole seconds, so HTTP-dates are exact
    clock.advance(5)
    clock.advance(-3)  # time never goes back
    assert clock.elapsed_s == 5 and clock.sleeps == []
    assert clock.time() == clock.start_s + 5


def test_sleeps_in_other_threads_are_virtual_too() -> None:
    with VirtualClock() as clock:
        worker = threading.Thread(target=time.sleep, args=(60,))
        worker.start()
        worker.join(timeout=5)
        assert not worker.is_alive()
    assert clock.sleeps == [60.0]


def test_patches_are_restored_on_exit_and_after_an_exception() -> None:
    with VirtualClock() as clock:
        assert sleeps_now() == (clock.sleep, clock.asleep, clock.asleep)
    assert patchable_now() == REAL
    with pytest.raises(RuntimeError, match="boom"):
        with VirtualClock():
            time.sleep(1)
            raise RuntimeError("boom")
    assert patchable_now() == REAL and current_clock() is None
    started = time.monotonic()
    time.sleep(0.02)  # real again
    assert time.monotonic() - started >= 0.02


@pytest.mark.anyio
async def test_async_exit_after_an_exception_restores_too() -> None:
    with pytest.raises(KeyError):
        async with VirtualClock():
            await asyncio.sleep(1)
            raise KeyError("boom")
    assert patchable_now() == REAL


def test_nested_clocks_each_record_their_own_sleeps() -> None:
    with VirtualClock() as outer:
        time.sleep(1)
        with VirtualClock() as inner:
            assert current_clock() is inner
            time.sleep(2)
            wait(0.5)
        assert current_clock() is outer
        assert sleeps_now() == (outer.sleep, outer.asleep, outer.asleep)
        time.sleep(3)
    assert (outer.sleeps, outer.elapsed_s) == ([1.0, 3.0], 4.0)
    assert (inner.sleeps, inner.elapsed_s) == ([2.0], 2.5)


def test_clocks_exited_out_of_order_still_restore_the_real_functions() -> None:
    first, second = VirtualClock(), VirtualClock()
    first.__enter__()
    second.__enter__()
    try:
        first.__exit__(None, None, None)
        assert current_clock() is second
        second.__exit__(None, None, None)
        restored = patchable_now() == REAL
    finally:
        for (owner, name), original in zip(PATCHABLE, REAL, strict=True):
            setattr(owner, name, original)  # leave the process as it was, whatever happened
    assert restored


@pytest.mark.anyio
async def test_llmcassettes_own_waits_advance_the_clock_but_are_not_client_sleeps() -> None:
    start = time.monotonic()
    with VirtualClock() as clock:
        wait(2.0)
        await await_wait(0.5)
        wait(0)
        wait(-1)
    assert time.monotonic() - start < 0.5
    assert clock.elapsed_s == 2.5
    assert clock.sleeps == []

    start = time.monotonic()
    wait(0.02)  # without a clock: a real wait
    await await_wait(0.02)
    assert time.monotonic() - start >= 0.04


# -- with real clients and a recording ---------------------------------------------------------------

SSE = "/sse?n=3&gap_ms=60"


@dataclass(frozen=True)
class Tape:
    """Interaction 0: GET /sse, three events and ``[DONE]`` 60 ms apart; 1: POST /json."""

    path: Path
    base: str
    offsets_s: list[float]

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Tape:
    path = tmp_path_factory.mktemp("clock") / "clock.yaml"

    async def record(base: str) -> None:
        recorder = Client("httpx", False)
        with llmcassette.use_cassette(path, record_mode="once"):
            await recorder.stream("GET", base + SSE)
            await recorder.send("POST", base + "/json", json={"q": 1})

    with serve(stream_app()) as base:
        asyncio.run(record(base))
    stream = llmcassette.load_cassette(path).interactions[0].response.stream
    assert stream is not None and stream.offsets_ms is not None and len(stream.offsets_ms) == 4
    return Tape(path, base, [offset / 1000 for offset in stream.offsets_ms])


def stretched(tape: Tape, factor: float) -> Tape:
    """A copy of the tape beside it whose recorded times are ``factor`` times longer."""
    document = llmcassette.load_cassette(tape.path)
    for interaction in document.interactions:
        response = interaction.response
        if response.elapsed_ms is not None:
            response.elapsed_ms *= factor
        if response.stream is not None and response.stream.offsets_ms is not None:
            response.stream.offsets_ms = [offset * factor for offset in response.stream.offsets_ms]
    path = tape.path.with_name(f"{tape.path.stem}-x{factor:g}.yaml")
    llmcassette.save_cassette(path, document)
    return Tape(path, tape.base, [offset * factor for offset in tape.offsets_s])


@pytest.mark.anyio
async def test_recorded_pace_under_a_clock_is_instant_but_advances_virtual_time(
    client: Client, tape: Tape
) -> None:
    assert tape.offsets_s[-1] >= 0.18  # three gaps of 60 ms
    # The same recording, twenty times slower: the replay's own real time (tens of milliseconds on
    # a loaded machine) then stays small beside the recorded pace it must not wait out.
    slow = stretched(tape, 20)
    assert slow.offsets_s[-1] >= 3.6
    # The first transport of a library in a process imports its TLS stack: not the replay's time.
    client.make_transport()
    start = time.monotonic()
    with VirtualClock() as clock:
        marks: list[float] = []
        with llmcassette.use_cassette(slow.path, pace="recorded"):
            received = await client.stream(
                "GET", tape.url(SSE), on_chunk=lambda i, c: marks.append(clock.elapsed_s)
            )
    assert time.monotonic() - start < slow.offsets_s[-1] / 2
    assert received.chunks == sse_events(3)
    # Each chunk comes at its recorded moment, less the little real time the replay itself took.
    assert marks == pytest.approx(slow.offsets_s, abs=0.05)
    assert clock.sleeps == []


@pytest.mark.anyio
async def test_recorded_pace_without_a_clock_takes_the_recorded_time(client: Client, tape: Tape) -> None:
    with llmcassette.use_cassette(tape.path, pace="recorded"):
        received = await client.stream("GET", tape.url(SSE))
    assert received.chunks == sse_events(3)
    # No chunk comes before its recorded moment (a late one, on a busy machine, shortens the gap
    # to the next, which the pacer keeps on the recording's clock: gaps are not the measure).
    early = [(got, due) for got, due in zip(received.times, tape.offsets_s, strict=True) if got < due - 0.005]
    assert not early, early


@pytest.mark.anyio
async def test_a_replay_with_timing_faults_records_no_client_sleeps(client: Client, tape: Tape) -> None:
    faults = ["slow:ttfb_ms=200,gap_ms=100", "stall:after=1,seconds=2"]
    with VirtualClock() as clock:
        with llmcassette.use_cassette(tape.path, faults=faults):
            received = await client.stream("GET", tape.url(SSE))
    assert received.chunks == sse_events(3)
    assert clock.sleeps == []
    assert clock.elapsed_s == pytest.approx(0.2 + 3 * 0.1 + 2)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("spec", "waits"),
    [
        ("rate_limit:times=2", [1.0, 1.0]),
        ("rate_limit:times=3,retry_after=none,retry_after_ms=250", [0.25] * 3),
    ],
)
async def test_a_clients_backoff_is_recorded_without_waiting(
    client: Client, tape: Tape, spec: str, waits: list[float]
) -> None:
    start = time.monotonic()
    with VirtualClock() as clock:
        with llmcassette.use_cassette(tape.path, faults=[spec]) as cassette:
            for _ in range(5):  # a client's retry loop, honouring the server's delay
                response = await client.send("POST", tape.url("/json"), json={"q": 1})
                if response.status != 429:
                    break
                hint = response.header("retry-after-ms")
                delay = float(hint) / 1000 if hint else float(response.header("retry-after") or 0)
                if client.is_async:
                    await asyncio.sleep(delay)
                else:
                    time.sleep(delay)
    assert time.monotonic() - start < 1.0
    assert response.status == 200
    assert clock.sleeps == waits
    assert [a.time_s for a in cassette.attempts] == pytest.approx(
        [sum(waits[:i]) for i in range(len(waits) + 1)]
    )


def test_llmcassettes_own_waits_in_a_thread_the_clock_does_not_own_are_real() -> None:
    # An in-process server (serve, the recording proxy) runs in a thread started before the test
    # entered the clock: its pacing must take real time, and leave virtual time alone.
    started = threading.Event()
    release = threading.Event()
    took: list[float] = []

    def server_thread() -> None:
        started.set()
        release.wait(5)
        begin = time.monotonic()
        wait(0.05)
        took.append(time.monotonic() - begin)

    thread = threading.Thread(target=server_thread)
    thread.start()
    started.wait(5)
    with VirtualClock() as clock:
        release.set()
        thread.join(5)
        wait(30.0)  # the test's own thread is the clock's: instant
    assert took and took[0] >= 0.045
    assert clock.elapsed_s == 30.0
