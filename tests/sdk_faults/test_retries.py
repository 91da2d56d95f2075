"""
Faults answered in place of the response (an error status, or no connection at all): whether each
SDK retries, how long it waits first (Retry-After, retry-after-ms, its own backoff), and what it
raises when it gives up. The recording is not consumed by a faulted attempt, so a retry that gets
through is answered by it.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Final, Literal

import anthropic
import httpx
import ollama
import openai
import pytest
from google.genai import errors as genai_errors, types as genai_types

from tests.sdk_faults._clients import SDKS, Lingering
from tests.sdk_faults._replay import (
    Raises,
    Replay,
    Tape,
    assert_refused_then_replayed,
    assert_retry_counts,
    modes,
    run,
)
from tests.servers import serve
from tests.upstreams import EXPECTED, provider_app

# openai and anthropic back off as min(0.5 * 2**n, 8) * (1 - 0.25 * random()) without a usable
# Retry-After: n = retries already made, so the first wait is in (0.375, 0.5], the second in (0.75, 1].
BACKOFF_BOUNDS = [(0.375, 0.5), (0.75, 1.0)]
#: Stands for the waits when they are the Stainless SDKs' own jittered backoff, one before each retry.
BACKOFF: Final = "backoff"

GENAI_RETRY = {
    "retry_options": genai_types.HttpRetryOptions(attempts=3, initial_delay=0.5, max_delay=4.0, jitter=0)
}


@dataclass(frozen=True)
class Refused:
    """A fault that answers the first attempts in place of the recording, and what the SDK does."""

    name: str
    sdk: str
    fault: str
    #: The status of each attempt the fault answered (None: no response at all), in order.
    answered: tuple[int | None, ...]
    #: The waits between the attempts.
    sleeps: Sequence[float] | Literal["backoff"]
    #: What the call ends with; None: the recording, on the attempt after the refused ones.
    raises: Raises | None = None
    streams: tuple[bool, ...] = (False,)
    #: Client options (for litellm, call options).
    options: Mapping[str, Any] = field(default_factory=dict)
    #: How the error of each refused attempt starts, as the attempt log tells it.
    attempt_error: str | None = None


CASES = [
    # -- openai --
    Refused(
        # retry-after-ms is honoured exactly, with no jitter.
        "openai-rate_limit-waits_retry_after_ms_then_replays",
        "openai",
        "rate_limit:times=2,retry_after_ms=250",
        answered=(429, 429),
        sleeps=[0.25, 0.25],
        streams=(False, True),
    ),
    Refused(
        # x-should-retry is read before the status, which alone would have been retried.
        "openai-x_should_retry_false-stops_a_500",
        "openai",
        "server_error:should_retry=false",
        answered=(500,),
        sleeps=[],
        raises=Raises(
            openai.InternalServerError, fields={"status_code": 500}, headers={"x-should-retry": "false"}
        ),
    ),
    Refused(
        # No Retry-After on a 400: the SDK's own backoff.
        "openai-x_should_retry_true-retries_a_400",
        "openai",
        "bad_request:should_retry=true,times=1",
        answered=(400,),
        sleeps=BACKOFF,
    ),
    Refused(
        "openai-unauthorized-is_not_retried",
        "openai",
        "unauthorized",
        answered=(401,),
        sleeps=[],
        raises=Raises(openai.AuthenticationError, fields={"status_code": 401, "code": "invalid_api_key"}),
    ),
    Refused(
        # openai >= 2.52 refuses a Retry-After above 120 s instead of sleeping it (Azure sends 86400).
        "openai-gives_up_on_retry_after_over_two_minutes",
        "openai",
        "rate_limit:retry_after=86400",
        answered=(429,),
        sleeps=[],
        raises=Raises(openai.RateLimitError, headers={"retry-after": "86400"}),
    ),
    Refused(
        # Each 429 says "retry at <now + 5 s>" as an HTTP-date; the SDK subtracts time.time(), which the
        # virtual clock drives (from a whole second), so both waits are exactly 5 s, not backoff-sized.
        "openai-honours_retry_after_as_http_date",
        "openai",
        "rate_limit:times=2,retry_after_date=5",
        answered=(429, 429),
        sleeps=[5.0, 5.0],
    ),
    Refused(
        # The provider's 503 carries no Retry-After: exponential backoff, twice.
        "openai-unavailable_three_times-raises",
        "openai",
        "unavailable",
        answered=(503, 503, 503),
        sleeps=BACKOFF,
        raises=Raises(openai.InternalServerError, fields={"status_code": 503}),
    ),
    Refused(
        "openai-connect_error-is_retried",
        "openai",
        "connect_error:times=2",
        answered=(None, None),
        sleeps=BACKOFF,
        streams=(False, True),
        attempt_error="ConnectError",
    ),
    # -- anthropic --
    Refused(
        "anthropic-overloaded_twice-then_replays",
        "anthropic",
        "overloaded:times=2",
        answered=(529, 529),
        sleeps=BACKOFF,
        streams=(False, True),
    ),
    Refused(
        "anthropic-overloaded_three_times-raises_overloaded_error",
        "anthropic",
        "overloaded",
        answered=(529, 529, 529),
        sleeps=BACKOFF,
        raises=Raises(anthropic.OverloadedError, fields={"status_code": 529}),
    ),
    Refused(
        # 2.x has its own class for 503 (0.x raised a plain InternalServerError).
        "anthropic-unavailable_three_times-raises_service_unavailable",
        "anthropic",
        "unavailable",
        answered=(503, 503, 503),
        sleeps=BACKOFF,
        raises=Raises(
            anthropic.ServiceUnavailableError,
            also=(anthropic.InternalServerError,),
            fields={"status_code": 503},
        ),
    ),
    Refused(
        # anthropic 2.x sleeps any positive Retry-After, uncapped (openai gives up above 120 s, and
        # anthropic 0.x fell back to backoff above 60 s): 90 s here, virtually.
        "anthropic-honours_any_retry_after",
        "anthropic",
        "rate_limit:times=1,retry_after=90",
        answered=(429,),
        sleeps=[90.0],
    ),
    # -- google-genai --
    Refused(
        "genai-does_not_retry_by_default",
        "genai",
        "rate_limit",
        answered=(429,),
        sleeps=[],
        raises=Raises(genai_errors.ClientError, fields={"code": 429, "status": "RESOURCE_EXHAUSTED"}),
    ),
    Refused(
        # initial_delay * 2**n with no jitter; the 30 s Retry-After (and RetryInfo in the body) ignored.
        "genai-retry_options-follow_its_backoff_not_retry_after",
        "genai",
        "rate_limit:times=2,retry_after=30",
        answered=(429, 429),
        sleeps=[0.5, 1.0],
        options=GENAI_RETRY,
    ),
    Refused(
        "genai-retry_options-give_up_after_their_attempts",
        "genai",
        "unavailable",
        answered=(503, 503, 503),
        sleeps=[0.5, 1.0],
        raises=Raises(genai_errors.ServerError, fields={"code": 503}),
        options=GENAI_RETRY,
    ),
    Refused(
        "genai-unavailable-raises_server_error",
        "genai",
        "unavailable",
        answered=(503,),
        sleeps=[],
        raises=Raises(genai_errors.ServerError, fields={"code": 503, "status": "UNAVAILABLE"}),
    ),
    # -- ollama --
    Refused(
        "ollama-rate_limit-is_not_retried",
        "ollama",
        "rate_limit",
        answered=(429,),
        sleeps=[],
        raises=Raises(ollama.ResponseError, fields={"status_code": 429}),
        streams=(False, True),
    ),
    Refused(
        "ollama-connect_error-maps_to_connection_error",
        "ollama",
        "connect_error",
        answered=(None,),
        sleeps=[],
        raises=Raises(ConnectionError, never=(httpx.HTTPError,)),
        attempt_error="ConnectError",
    ),
    Refused(
        # ollama-python maps ConnectError only on its non-streaming path; a streamed call gets the
        # raw httpx error (the reference only describes the non-streaming mapping).
        "ollama-connect_error-streamed_is_the_raw_httpx_error",
        "ollama",
        "connect_error",
        answered=(None,),
        sleeps=[],
        raises=Raises(httpx.ConnectError),
        streams=(True,),
        attempt_error="ConnectError",
    ),
]


def assert_waited(replay: Replay, sleeps: Sequence[float] | Literal["backoff"]) -> None:
    """
    The SDK slept ``sleeps`` between its attempts (or its own :data:`BACKOFF`, before each retry),
    and each attempt went out after the waits before it.
    """
    if sleeps == BACKOFF:
        # The Stainless SDKs' own exponential backoff, jittered downwards.
        assert len(replay.clock.sleeps) == len(replay.attempts) - 1 <= len(BACKOFF_BOUNDS)
        for sleep, (low, high) in zip(replay.clock.sleeps, BACKOFF_BOUNDS, strict=False):
            assert low <= sleep <= high, replay.clock.sleeps
    else:
        assert replay.clock.sleeps == list(sleeps)
    starts = list(accumulate(replay.clock.sleeps, initial=0.0))
    assert [a.time_s for a in replay.attempts] == pytest.approx(starts)


@pytest.mark.parametrize(
    ("mode", "case", "stream"),
    [
        pytest.param(mode, case, stream, id=f"{mode}-{case.name}-{'stream' if stream else 'json'}")
        for case in CASES
        for stream in case.streams
        for mode in modes(case.sdk)
    ],
)
def test_a_refused_attempt(tape: Tape, mode: str, case: Refused, stream: bool) -> None:
    replay = tape.replay(case.sdk, mode, stream, [case.fault], case.options)
    replayed = case.raises is None
    if case.raises is None:
        assert SDKS[case.sdk].text(replay.ok()) == EXPECTED.text
    else:
        case.raises.check(replay.error)
    refused = len(case.answered)
    assert_refused_then_replayed(replay, case.fault, refused, replayed)
    assert [a.status for a in replay.attempts] == [*case.answered] + [200] * replayed
    if case.attempt_error is not None:
        assert all((a.error or "").startswith(case.attempt_error) for a in replay.attempts[:refused])
    assert_waited(replay, case.sleeps)
    # Every attempt carries its retry count; replay matching ignores it.
    assert_retry_counts(replay, case.sdk)


def test_openai_is_given_retry_after_as_an_http_date(tape: Tape, mode: str) -> None:
    # What the SDK was given (and waited by, above) was a date, not a number of seconds.
    fault = "rate_limit:times=2,retry_after_date=5"
    error = tape.replay("openai", mode, faults=[fault], options={"max_retries": 0}).error
    assert isinstance(error, openai.RateLimitError), error
    assert email.utils.parsedate_tz(error.response.headers["retry-after"]) is not None


def test_openai_backoff_is_measured_while_a_server_thread_runs(tape: Tape, mode: str) -> None:
    # A server in a thread of its own, as a session fixture or an in-process proxy keeps one, is
    # running while the SDK retries; the pause after the call gives its loop time to sleep. Its
    # sleeps stay real and out of the clock's record: only the SDK's backoff is there.
    fault = "rate_limit:times=2,retry_after_ms=250"
    with serve(provider_app()):
        call = Lingering(tape.call("openai", False), seconds=0.3)
        replay = run(tape.path("openai", False), call, mode, [fault])
    assert SDKS["openai"].text(replay.ok()) == EXPECTED.text
    assert replay.interactions == [None, None, 0]
    assert replay.clock.sleeps == [0.25, 0.25]
    assert replay.clock.elapsed_s == pytest.approx(0.5)
