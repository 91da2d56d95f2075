"""
The provider wrapper's waits, asserted exactly on a virtual clock.

``cassettes/completion.yaml`` holds one streamed completion (see ``record.py``). A ``rate_limit``
fault answers 429 in place of the recording without using it up, so ``rate_limit:times=2`` is
"429, 429, then the recording"; its ``retry_after*`` parameters set the hint headers the wrapper
must honour. ``clock.sleeps`` is every wait the wrapper asked for, none of which takes time.
"""

from __future__ import annotations

from typing import Any

import pytest

import llmcassette
from examples.provider_wrapper.client import Completion, ProviderWrapper, RateLimited, RetriesExhausted
from examples.provider_wrapper.record import API_KEY, BASE_URL, CASSETTE, MESSAGES, MODEL

TEXT = "Waited as asked, then answered."
# A whole second, so that HTTP-dates (which have no fractions) land exactly on it.
EPOCH_S = 1_750_000_000.0

pytestmark = pytest.mark.anyio


def make_wrapper(**options: Any) -> ProviderWrapper:
    return ProviderWrapper(BASE_URL, api_key=API_KEY, model=MODEL, **options)


async def test_a_completion_replays_offline() -> None:
    async with make_wrapper() as wrapper:
        with llmcassette.use_cassette(CASSETTE):
            completion = await wrapper.acomplete(MESSAGES)

    assert completion == Completion(TEXT, attempts=1, waited_s=0.0)


async def test_retry_after_in_seconds_is_honoured() -> None:
    async with make_wrapper() as wrapper:
        with (
            llmcassette.VirtualClock() as clock,
            llmcassette.use_cassette(CASSETTE, faults=["rate_limit:times=2,retry_after=3"]) as cassette,
        ):
            completion = await wrapper.acomplete(MESSAGES)

    assert completion == Completion(TEXT, attempts=3, waited_s=6.0)
    assert [attempt.status for attempt in cassette.attempts] == [429, 429, 200]
    assert clock.sleeps == [3.0, 3.0]


async def test_retry_after_ms_wins_over_retry_after() -> None:
    # The fault also sends its default `retry-after: 1`; the millisecond header is read first.
    async with make_wrapper() as wrapper:
        with (
            llmcassette.VirtualClock() as clock,
            llmcassette.use_cassette(CASSETTE, faults=["rate_limit:times=2,retry_after_ms=250"]),
        ):
            completion = await wrapper.acomplete(MESSAGES)

    assert completion.text == TEXT
    assert clock.sleeps == [0.25, 0.25]


async def test_retry_after_as_an_http_date_is_honoured() -> None:
    # The fault dates its header on the virtual clock; the wrapper is given the same clock to count
    # from.
    with llmcassette.VirtualClock(start_s=EPOCH_S) as clock:
        async with make_wrapper(now=clock.time) as wrapper:
            with llmcassette.use_cassette(CASSETTE, faults=["rate_limit:times=2,retry_after_date=30"]):
                completion = await wrapper.acomplete(MESSAGES)

    assert completion.text == TEXT
    assert clock.sleeps == [30.0, 30.0]


async def test_retry_after_as_an_http_date_against_the_wall_clock() -> None:
    async with make_wrapper() as wrapper:
        with (
            llmcassette.VirtualClock() as clock,
            llmcassette.use_cassette(CASSETTE, faults=["rate_limit:times=2,retry_after_date=30"]),
        ):
            await wrapper.acomplete(MESSAGES)

    # The virtual clock starts on a whole second and `time.time()` follows it, so the waits a
    # client computes from the HTTP-date are exact.
    assert clock.sleeps == [30.0, 30.0]


async def test_a_429_without_a_hint_waits_the_default() -> None:
    async with make_wrapper() as wrapper:
        with (
            llmcassette.VirtualClock() as clock,
            llmcassette.use_cassette(CASSETTE, faults=["rate_limit:times=1,retry_after=none"]),
        ):
            await wrapper.acomplete(MESSAGES)

    assert clock.sleeps == [1.0]


async def test_a_rate_limit_that_never_ends_gives_up_with_the_total_waited() -> None:
    async with make_wrapper(max_attempts=4) as wrapper:
        with (
            llmcassette.VirtualClock() as clock,
            llmcassette.use_cassette(CASSETTE, faults=["rate_limit:retry_after=2"]) as cassette,
        ):
            with pytest.raises(
                RetriesExhausted, match=r"after 4 attempts \(the last: rate limited\)"
            ) as raised:
                await wrapper.acomplete(MESSAGES)

    assert (raised.value.attempts, raised.value.waited_s) == (4, 6.0)
    assert "waited 6 s in total" in str(raised.value)
    assert len(cassette.attempts) == 4
    assert clock.sleeps == [2.0, 2.0, 2.0]  # no wait after the last attempt


async def test_a_wait_longer_than_allowed_fails_at_once() -> None:
    async with make_wrapper(max_wait_s=60) as wrapper:
        with (
            llmcassette.VirtualClock() as clock,
            llmcassette.use_cassette(CASSETTE, faults=["rate_limit:retry_after=3600"]) as cassette,
        ):
            with pytest.raises(RateLimited, match="wait 3600 s") as raised:
                await wrapper.acomplete(MESSAGES)

    assert raised.value.wait_s == 3600
    assert len(cassette.attempts) == 1
    assert clock.sleeps == []


async def test_an_empty_stream_is_retried_then_the_recording_plays() -> None:
    async with make_wrapper() as wrapper:
        with (
            llmcassette.VirtualClock() as clock,
            llmcassette.use_cassette(CASSETTE, faults=["empty_stream:times=1"]) as cassette,
        ):
            completion = await wrapper.acomplete(MESSAGES)

    assert completion == Completion(TEXT, attempts=2, waited_s=0.5)
    # The broken response left the recording unplayed, so the retry got it.
    assert [attempt.faults for attempt in cassette.attempts] == [["empty_stream:times=1"], []]
    assert [attempt.interaction for attempt in cassette.attempts] == [0, 0]
    assert clock.sleeps == [0.5]


async def test_streams_that_stay_empty_use_up_the_attempts() -> None:
    async with make_wrapper(max_attempts=3) as wrapper:
        with (
            llmcassette.VirtualClock() as clock,
            llmcassette.use_cassette(CASSETTE, faults=["empty_stream"], allow_playback_repeats=True),
        ):
            with pytest.raises(RetriesExhausted, match=r"\(the last: empty stream\); waited 1 s") as raised:
                await wrapper.acomplete(MESSAGES)

    assert (raised.value.attempts, raised.value.waited_s) == (3, 1.0)
    assert clock.sleeps == [0.5, 0.5]
