"""
litellm through its OpenAI provider: the transport it really sends through (intercepted, offline),
and its two retry layers, the OpenAI SDK's own retries and litellm's wrapper around the call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import openai
import pytest

from tests.sdk_faults._clients import Probed, openai_text
from tests.sdk_faults._replay import (
    Tape,
    assert_refused_then_replayed,
    assert_retry_counts,
    refuses_connections,
    run,
)
from tests.upstreams import EXPECTED


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_litellm_replays_offline_through_its_own_transport(
    litellm_tape: Tape, mode: str, stream: bool
) -> None:
    # The upstream is stopped: only an intercepted request can succeed.
    assert refuses_connections(litellm_tape.base_url)
    call = Probed(litellm_tape.call("litellm", stream))
    replay = run(litellm_tape.path("litellm", stream), call, mode)
    assert openai_text(replay.ok()) == EXPECTED.text
    assert replay.interactions == [0]
    assert replay.faults == [[]]
    assert not any(a.recorded for a in replay.attempts)
    assert replay.clock.sleeps == []
    # Sync litellm sends through httpx's standard transport; async through its own transport over
    # aiohttp, which llmcassette answers at the aiohttp door, as any aiohttp client.
    assert call.counts == Counter({"httpx": 1} if mode == "sync" else {"litellm aiohttp": 1, "aiohttp": 1})


@dataclass(frozen=True)
class Layered:
    """A rate limit under litellm's ``num_retries``, and how the two layers share the retries."""

    name: str
    num_retries: int
    fault: str
    #: How many attempts the rate limit answered; then the recording answered one, unless ``gives_up``.
    refused: int
    #: Each attempt's x-stainless-retry-count: the SDK's count, restarted by each wrapper call.
    retry_counts: Sequence[int]
    sleeps: Sequence[float]
    #: The waits of the async client, where they differ.
    async_sleeps: Sequence[float] | None = None
    gives_up: bool = False


LAYERS = [
    # num_retries=3 becomes the SDK's max_retries (its default is 2): 3 retries inside the SDK,
    # each after the retry-after-ms it was given, and the fourth attempt gets the recording.
    Layered(
        "num_retries-passes_to_the_openai_sdk",
        num_retries=3,
        fault="rate_limit:times=3,retry_after_ms=250",
        refused=3,
        retry_counts=[0, 1, 2, 3],
        sleeps=[0.25, 0.25, 0.25],
    ),
    # num_retries=1: the SDK makes 2 attempts (both 429), then litellm's wrapper calls again with
    # the SDK's retries off, and that third attempt gets the recording.
    Layered(
        "wrapper-retries_after_the_sdk_gives_up",
        num_retries=1,
        fault="rate_limit:times=2,retry_after_ms=250",
        refused=2,
        retry_counts=[0, 1, 0],
        sleeps=[0.25],
    ),
    # 3 attempts by the SDK (max_retries=2), then 2 by litellm's wrapper (stop_after_attempt(2)).
    # The wrapper waits differently sync and async: completion_with_retries uses tenacity's
    # constant retry (no wait, slept as 0), acompletion switches a RateLimitError to
    # exponential_backoff_retry (wait_exponential: 1 s before its second attempt).
    Layered(
        "rate_limit-exhausts_both_retry_layers",
        num_retries=2,
        fault="rate_limit:retry_after_ms=250",
        refused=5,
        retry_counts=[0, 1, 2, 0, 0],
        sleeps=[0.25, 0.25, 0.0],
        async_sleeps=[0.25, 0.25, 1.0],
        gives_up=True,
    ),
    Layered(
        "num_retries_zero-makes_one_attempt",
        num_retries=0,
        fault="rate_limit:times=1",
        refused=1,
        retry_counts=[0],
        sleeps=[],
        gives_up=True,
    ),
]


@pytest.mark.parametrize("case", LAYERS, ids=[case.name for case in LAYERS])
def test_litellm_retry_layers(litellm_tape: Tape, mode: str, case: Layered) -> None:
    from litellm.exceptions import RateLimitError

    replay = litellm_tape.replay("litellm", mode, False, [case.fault], {"num_retries": case.num_retries})
    if case.gives_up:
        assert isinstance(replay.error, RateLimitError), replay.error
        assert isinstance(replay.error, openai.RateLimitError)
    else:
        (response,) = replay.ok()
        assert response.choices[0].message.content == EXPECTED.text
    assert_refused_then_replayed(replay, case.fault, case.refused, not case.gives_up)
    assert_retry_counts(replay, "litellm", case.retry_counts)
    sleeps = case.async_sleeps if mode == "async" and case.async_sleeps is not None else case.sleeps
    assert replay.clock.sleeps == list(sleeps)
