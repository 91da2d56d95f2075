"""
The streaming client's retry and parsing paths, on one real recorded stream.

``cassettes/stream.yaml`` holds one streamed reply (see ``record.py``): a role chunk, six text
deltas, a finish chunk and ``data: [DONE]``. Each test replays it under one fault; status and
connection faults answer instead of the recording, so ``server_error:times=2`` means "two 500s,
then the recording". The virtual clock makes the backoff instant and records it.
"""

from __future__ import annotations

import logging

import pytest

import llmcassette
from examples.streaming_client.client import (
    AsyncStreamingClient,
    StreamingClient,
    StreamInterrupted,
    UpstreamError,
)
from examples.streaming_client.record import API_KEY, BASE_URL, CASSETTE, MESSAGES, MODEL

TEXT = "Recorded streams replay byte for byte, even “curly quotes” and ☕."
RECORDED_CHUNKS = 9

# Events are counted from 1: event 1 is the role chunk, events 2 to 7 carry the text.
BREAK_SECOND_DELTA = "malformed_chunk:event=3"
REWRITTEN_CHUNKS = ["rechunk", "rechunk:mode=adversarial", "rechunk:mode=random,seed=7"]
# Each of these ends the stream after three events, that is after the first two deltas.
CUT_AFTER_TWO_DELTAS = {
    "disconnect:after=3": "connection dropped mid-stream",
    "disconnect:after=3,mode=reset": "connection dropped mid-stream",
    "truncate:after=3": r"ended without data: \[DONE\]",
    "error_event:after=3": "provider reported an error mid-stream",
}
PARTIAL = "Recorded streams "


def make_client() -> StreamingClient:
    return StreamingClient(BASE_URL, api_key=API_KEY, model=MODEL)


def make_async_client() -> AsyncStreamingClient:
    return AsyncStreamingClient(BASE_URL, api_key=API_KEY, model=MODEL)


def statuses(cassette: llmcassette.Cassette) -> list[int | None]:
    return [attempt.status for attempt in cassette.attempts]


# -- sync --------------------------------------------------------------------------------------


def test_the_recorded_stream_replays_offline() -> None:
    with llmcassette.use_cassette(CASSETTE) as cassette, make_client() as client:
        deltas = list(client.stream(MESSAGES))

    assert "".join(deltas) == TEXT
    assert len(deltas) == 6
    assert len(cassette.attempts[0].chunks) == RECORDED_CHUNKS  # as recorded, one event per read


def test_server_errors_are_retried_with_exponential_backoff() -> None:
    with (
        llmcassette.VirtualClock() as clock,
        llmcassette.use_cassette(CASSETTE, faults=["server_error:times=2"]) as cassette,
        make_client() as client,
    ):
        text = client.complete(MESSAGES)

    assert text == TEXT
    assert statuses(cassette) == [500, 500, 200]
    assert clock.sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    "fault", ["rate_limit:times=1", "bad_gateway:times=1", "unavailable:times=1", "connect_error:times=1"]
)
def test_other_transient_failures_are_retried_too(fault: str) -> None:
    with (
        llmcassette.VirtualClock() as clock,
        llmcassette.use_cassette(CASSETTE, faults=[fault]) as cassette,
        make_client() as client,
    ):
        text = client.complete(MESSAGES)

    assert text == TEXT
    assert len(cassette.attempts) == 2
    assert cassette.attempts[0].faults == [fault]
    # The 429 too waits the backoff: this client ignores Retry-After (provider_wrapper honours it).
    assert clock.sleeps == [0.5]


def test_it_gives_up_after_four_attempts() -> None:
    with (
        llmcassette.VirtualClock() as clock,
        llmcassette.use_cassette(CASSETTE, faults=["server_error"]) as cassette,
        make_client() as client,
    ):
        with pytest.raises(UpstreamError, match="gave up after 4 attempts; the last failed with HTTP 500"):
            client.complete(MESSAGES)

    assert statuses(cassette) == [500, 500, 500, 500]
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_client_errors_are_not_retried() -> None:
    with (
        llmcassette.VirtualClock() as clock,
        llmcassette.use_cassette(CASSETTE, faults=["bad_request"]) as cassette,
        make_client() as client,
    ):
        with pytest.raises(UpstreamError, match="HTTP 400") as raised:
            client.complete(MESSAGES)

    assert raised.value.status == 400
    assert statuses(cassette) == [400]
    assert clock.sleeps == []


def test_a_malformed_chunk_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING),
        llmcassette.use_cassette(CASSETTE, faults=[BREAK_SECOND_DELTA]) as cassette,
        make_client() as client,
    ):
        text = client.complete(MESSAGES)

    assert text == TEXT.replace("streams ", "")  # only the broken event's delta is missing
    assert cassette.attempts[0].faults == [BREAK_SECOND_DELTA]
    [warning] = caplog.records
    assert warning.getMessage().startswith("skipping a malformed chunk")


@pytest.mark.parametrize("fault", REWRITTEN_CHUNKS)
def test_the_same_text_whatever_the_chunking(fault: str) -> None:
    with llmcassette.use_cassette(CASSETTE, faults=[fault]) as cassette, make_client() as client:
        text = client.complete(MESSAGES)

    assert text == TEXT
    assert len(cassette.attempts[0].chunks) > RECORDED_CHUNKS  # the fault did cut the stream up


@pytest.mark.parametrize(("fault", "message"), CUT_AFTER_TWO_DELTAS.items())
def test_a_stream_cut_after_text_raises_with_the_partial_text(fault: str, message: str) -> None:
    with (
        llmcassette.VirtualClock() as clock,
        llmcassette.use_cassette(CASSETTE, faults=[fault]) as cassette,
        make_client() as client,
    ):
        with pytest.raises(StreamInterrupted, match=message) as raised:
            client.complete(MESSAGES)

    assert raised.value.partial == PARTIAL
    assert len(cassette.attempts) == 1  # not retried: the caller already has that text
    assert clock.sleeps == []


def test_a_drop_before_any_text_is_retried() -> None:
    # The drop comes after the role chunk, before any text. A broken stream leaves the recording
    # unplayed, so the retry replays it.
    with (
        llmcassette.VirtualClock() as clock,
        llmcassette.use_cassette(CASSETTE, faults=["disconnect:after=1,times=1"]) as cassette,
        make_client() as client,
    ):
        text = client.complete(MESSAGES)

    assert text == TEXT
    assert [attempt.error is not None for attempt in cassette.attempts] == [True, False]
    assert clock.sleeps == [0.5]


# -- async: the same behaviour through AsyncStreamingClient -------------------------------------


@pytest.mark.anyio
async def test_async_the_recorded_stream_replays_offline() -> None:
    async with make_async_client() as client:
        with llmcassette.use_cassette(CASSETTE) as cassette:
            deltas = [delta async for delta in client.stream(MESSAGES)]

    assert "".join(deltas) == TEXT
    assert len(cassette.attempts) == 1


@pytest.mark.anyio
async def test_async_server_errors_are_retried_with_exponential_backoff() -> None:
    async with make_async_client() as client:
        with (
            llmcassette.VirtualClock() as clock,
            llmcassette.use_cassette(CASSETTE, faults=["server_error:times=2"]) as cassette,
        ):
            text = await client.complete(MESSAGES)

    assert text == TEXT
    assert statuses(cassette) == [500, 500, 200]
    assert clock.sleeps == [0.5, 1.0]


@pytest.mark.anyio
async def test_async_a_malformed_chunk_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    async with make_async_client() as client:
        with (
            caplog.at_level(logging.WARNING),
            llmcassette.use_cassette(CASSETTE, faults=[BREAK_SECOND_DELTA]),
        ):
            text = await client.complete(MESSAGES)

    assert text == TEXT.replace("streams ", "")
    assert len(caplog.records) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("fault", REWRITTEN_CHUNKS)
async def test_async_the_same_text_whatever_the_chunking(fault: str) -> None:
    async with make_async_client() as client:
        with llmcassette.use_cassette(CASSETTE, faults=[fault]):
            text = await client.complete(MESSAGES)

    assert text == TEXT


@pytest.mark.anyio
async def test_async_a_disconnect_after_text_raises_with_the_partial_text() -> None:
    async with make_async_client() as client:
        with llmcassette.use_cassette(CASSETTE, faults=["disconnect:after=3"]) as cassette:
            with pytest.raises(StreamInterrupted, match="connection dropped mid-stream") as raised:
                await client.complete(MESSAGES)

    assert raised.value.partial == PARTIAL
    assert len(cassette.attempts) == 1
