"""
The attempt log, from real httpx and httpx2 clients (sync and async) replaying a cassette recorded
once for the module from a local upstream: secrets never show in it (headers, body, URL), yet
fingerprints tell tokens apart; times are monotonic, and virtual under a clock; each attempt says
what answered it, in a line a person can read, and which provider profile it was taken for.
"""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import llmcassette
from llmcassette import NoMatchingInteraction, VirtualClock
from tests.servers import Client, serve, sse_events, stream_app

TOKEN_A = "sk-proj-" + "a" * 40
TOKEN_B = "sk-proj-" + "b" * 40
GATEWAY_KEY = "gw-" + "c" * 30
BODY_KEY = "sk-proj-" + "d" * 40
URL_KEY = "AIza" + "e" * 35
ASK: dict[str, Any] = {
    "model": "m",
    "messages": [{"role": "user", "content": "hi"}],
    "api_key_echo": BODY_KEY,
}
SSE = "/sse?n=2&gap_ms=10"
SECRETS = (TOKEN_A, TOKEN_B, GATEWAY_KEY, BODY_KEY, URL_KEY)


def headers_for(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "x-api-key": GATEWAY_KEY, "x-trace": "trace-1"}


@dataclass(frozen=True)
class Tape:
    """Interaction 0: POST /json (a key in the body); 1: GET /sse; 2: GET /json?key=... ."""

    path: Path
    base: str

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Tape:
    path = tmp_path_factory.mktemp("attempts") / "attempts.yaml"

    async def record(base: str) -> None:
        recorder = Client("httpx", False)
        with llmcassette.use_cassette(path, record_mode="once"):
            await recorder.send("POST", base + "/json", json=ASK, headers=headers_for(TOKEN_A))
            await recorder.stream("GET", base + SSE)
            await recorder.send("GET", f"{base}/json?key={URL_KEY}")

    with serve(stream_app()) as base:
        asyncio.run(record(base))
    text = path.read_text()
    assert not any(secret in text for secret in SECRETS)
    return Tape(path, base)


async def ask(client: Client, tape: Tape, token: str = TOKEN_A) -> Any:
    return await client.send("POST", tape.url("/json"), json=ASK, headers=headers_for(token))


def shown(attempt: llmcassette.Attempt) -> str:
    """Everything the attempt shows of the request (the response chunks are what the client got)."""
    parts = [attempt.summary(), attempt.url, str(attempt.headers), repr(attempt.body), str(attempt.json)]
    return " ".join([*parts, str(attempt.fingerprints), str(attempt.error)])


# -- secrets ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_headers_are_scrubbed_and_fingerprints_tell_tokens_apart(client: Client, tape: Tape) -> None:
    with llmcassette.use_cassette(tape.path, allow_playback_repeats=True) as cassette:
        for token in (TOKEN_A, TOKEN_A, TOKEN_B):
            assert (await ask(client, tape, token)).status == 200
    first, again, refreshed = cassette.attempts
    for attempt in cassette.attempts:
        assert attempt.headers["authorization"] == "Bearer REDACTED"
        assert attempt.headers["x-api-key"] == "REDACTED"
        assert attempt.headers["x-trace"] == "trace-1"  # not a secret: kept
        assert attempt.headers["content-type"] == "application/json"
        assert set(attempt.fingerprints) == {"authorization", "x-api-key"}
        assert not any(secret in shown(attempt) for secret in SECRETS)
        assert not any(secret in value for value in attempt.fingerprints.values() for secret in SECRETS)
    assert first.fingerprints == again.fingerprints
    assert first.fingerprints["authorization"] != refreshed.fingerprints["authorization"]
    assert first.fingerprints["x-api-key"] == refreshed.fingerprints["x-api-key"]


@pytest.mark.anyio
async def test_body_json_and_url_are_scrubbed(client: Client, tape: Tape) -> None:
    with llmcassette.use_cassette(tape.path) as cassette:
        await ask(client, tape)
        await client.send("GET", tape.url(f"/json?key={URL_KEY}"))
    posted, fetched = cassette.attempts
    assert b"REDACTED-openai-key" in posted.body
    assert posted.json == {**ASK, "api_key_echo": "REDACTED-openai-key"}
    assert fetched.url == tape.url("/json?key=REDACTED")
    assert (fetched.body, fetched.json) == (b"", None)
    assert fetched.interaction == 2
    for attempt in cassette.attempts:
        assert not any(secret in shown(attempt) for secret in SECRETS)


@pytest.mark.anyio
async def test_without_scrubbing_the_log_shows_what_was_sent(client: Client, tape: Tape) -> None:
    # The scrubbed recording still matches on method and URL when the body is not compared.
    with llmcassette.use_cassette(tape.path, scrub=False, match_on=("method", "path")) as cassette:
        await ask(client, tape)
    attempt = cassette.attempts[0]
    assert attempt.headers["authorization"] == f"Bearer {TOKEN_A}"
    assert attempt.json == ASK
    assert attempt.fingerprints == {}  # no scrubber, no secret headers to fingerprint


# -- time -------------------------------------------------------------------------------------------


async def pause(client: Client, seconds: float) -> None:
    """Sleep as this kind of client would between two calls."""
    if client.is_async:
        await asyncio.sleep(seconds)
    else:
        time.sleep(seconds)


@pytest.mark.anyio
async def test_time_is_monotonic_from_the_cassettes_start(client: Client, tape: Tape) -> None:
    with llmcassette.use_cassette(tape.path, allow_playback_repeats=True) as cassette:
        for _ in range(3):
            await ask(client, tape)
            await pause(client, 0.01)
    times = [a.time_s for a in cassette.attempts]
    assert times == sorted(times) and len(set(times)) == 3
    assert 0 <= times[0] < 1.0 and times[2] - times[0] >= 0.015


@pytest.mark.anyio
async def test_time_is_virtual_under_a_clock(client: Client, tape: Tape) -> None:
    start = time.monotonic()
    with VirtualClock() as clock:
        with llmcassette.use_cassette(tape.path, allow_playback_repeats=True) as cassette:
            for _ in range(3):
                await ask(client, tape)
                await pause(client, 1.5)
    assert time.monotonic() - start < 1.0
    assert [a.time_s for a in cassette.attempts] == [0.0, 1.5, 3.0]
    assert clock.sleeps == [1.5, 1.5, 1.5]


@pytest.mark.anyio
async def test_time_under_a_clock_counts_from_the_cassettes_start(client: Client, tape: Tape) -> None:
    with VirtualClock():
        await pause(client, 10.0)  # before the cassette: not part of its log's time
        with llmcassette.use_cassette(tape.path, allow_playback_repeats=True) as cassette:
            await ask(client, tape)
            await pause(client, 2.0)
            await ask(client, tape)
    assert [a.time_s for a in cassette.attempts] == [0.0, 2.0]


# -- what answered, in one line ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_summaries_say_what_answered_each_attempt(client: Client, tape: Tape) -> None:
    faults = ["rate_limit:nth=1", "connect_error:nth=2", "disconnect:path=/sse,after=1"]
    with llmcassette.use_cassette(tape.path, faults=faults) as cassette:
        await ask(client, tape)
        with pytest.raises(client.lib.ConnectError):
            await ask(client, tape)
        await ask(client, tape)
        await client.stream("GET", tape.url(SSE))
    post, get = f"POST {tape.url('/json')}", f"GET {tape.url(SSE)}"
    assert [a.summary() for a in cassette.attempts] == [
        f"{post} -> fault rate_limit:nth=1: 429",
        f"{post} -> fault connect_error:nth=2: no response (ConnectError: [Errno 111] Connection refused)",
        f"{post} -> interaction #0: 200",
        f"{get} -> interaction #1 + disconnect:path=/sse,after=1: 200 (RemoteProtocolError: peer closed "
        "connection without sending complete message body (incomplete chunked read))",
    ]
    assert [a.fault for a in cassette.attempts] == [
        "rate_limit:nth=1",
        "connect_error:nth=2",
        None,
        "disconnect:path=/sse,after=1",
    ]
    assert cassette.attempts[3].chunks == sse_events(2)[:1]


@pytest.mark.anyio
async def test_a_recorded_attempt_says_so(client: Client, tmp_path: Path) -> None:
    with serve(stream_app()) as base:
        with llmcassette.use_cassette(tmp_path / "live.yaml", record_mode="once") as cassette:
            await client.send("POST", base + "/json", json=ASK, headers=headers_for(TOKEN_A))
            await client.stream("GET", base + SSE)
    posted, streamed = cassette.attempts
    assert posted.summary() == f"POST {base}/json -> recorded live: 200"
    assert (posted.recorded, posted.interaction, posted.provider) == (True, None, None)
    assert json.loads(b"".join(posted.chunks))["echo"]["messages"] == ASK["messages"]
    assert streamed.chunks == sse_events(2)
    assert not any(secret in shown(posted) for secret in SECRETS)


@pytest.mark.anyio
async def test_the_summary_of_a_miss_is_readable(client: Client, tape: Tape) -> None:
    with pytest.raises(NoMatchingInteraction):
        with llmcassette.use_cassette(tape.path) as cassette:
            await client.send("GET", tape.url("/nowhere"))
    summary = cassette.attempts[0].summary()
    assert summary.startswith(f"GET {tape.url('/nowhere')} -> ")
    assert "#None" not in summary and "no matching interaction" in summary


# -- provider ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_provider_is_set_when_faults_were_considered(client: Client, tape: Tape) -> None:
    with llmcassette.use_cassette(tape.path, allow_playback_repeats=True) as plain:
        await ask(client, tape)
    with llmcassette.use_cassette(tape.path, faults=["rate_limit:path=/elsewhere"]) as considered:
        await ask(client, tape)
    with llmcassette.use_cassette(
        tape.path, faults=["rate_limit:path=/elsewhere"], provider="anthropic"
    ) as forced:
        await ask(client, tape)
    assert plain.attempts[0].provider is None
    assert (considered.attempts[0].provider, considered.attempts[0].faults) == ("generic", [])
    assert forced.attempts[0].provider == "anthropic"


def test_a_replayed_attempt_copies_and_pickles_with_the_chunks_received_so_far(tape: Tape) -> None:
    # A replayed stream's attempt reads its chunks off the stream when asked; a copy or a pickle
    # holds the chunks themselves, not the stream.
    with llmcassette.use_cassette(tape.path) as cassette, httpx.Client() as client:
        with client.stream("GET", tape.url(SSE)) as response:
            reading = response.iter_raw()
            first = next(reading)
            attempt = cassette.attempts[-1]
            copied = copy.deepcopy(attempt)
            restored = pickle.loads(pickle.dumps(attempt))
            rest = list(reading)
    assert copied.chunks == restored.chunks == [first]
    assert attempt.chunks == sse_events(2) == [first, *rest]


@pytest.mark.parametrize("stop_after", [None, 1], ids=["read whole", "closed after one chunk"])
def test_a_replayed_attempts_chunks_are_those_handed_over_whenever_and_wherever_they_are_read(
    tape: Tape, stop_after: int | None
) -> None:
    # A plain replay's stream notes what it handed over only when asked (see `ReplayStream`):
    # the attempt shows the chunks the client got so far from another thread during the read,
    # and all of them (or those it got before it closed the response) after the cassette exits.
    # Twice: the second entry plays its recordings from the replay cache's data.
    def look(cassette: llmcassette.Cassette, seen: list[list[bytes]]) -> None:
        seen.append(cassette.attempts[-1].chunks)

    for _ in range(2):
        seen: list[list[bytes]] = []
        with llmcassette.use_cassette(tape.path) as cassette, httpx.Client() as client:
            with client.stream("GET", tape.url(SSE)) as response:
                got = []
                for chunk in response.iter_raw():
                    got.append(chunk)
                    looker = threading.Thread(target=look, args=(cassette, seen))
                    looker.start()
                    looker.join()
                    if len(got) == stop_after:
                        break
        attempt = cassette.attempts[-1]
        assert seen == [got[: n + 1] for n in range(len(got))]
        assert attempt.chunks == got == sse_events(2)[:stop_after]
        assert attempt.status == 200 and attempt.interaction == 1


@pytest.mark.parametrize("read_s", [0.0, -1.0, 1e-9])
def test_a_read_timeout_of_zero_or_less_times_out_a_replayed_head_and_is_logged(
    tape: Tape, read_s: float
) -> None:
    # A recording's head comes at once: only a read timeout of zero or less is too short for it
    # (checked inline on the exact path; the attempt is logged with the error the client got).
    # Played once before, so that the replay cache holds it: a first play from its data.
    with llmcassette.use_cassette(tape.path), httpx.Client() as client:
        assert client.get(tape.url(SSE)).status_code == 200
    timeout = httpx.Timeout(5.0, read=read_s)
    with llmcassette.use_cassette(tape.path) as cassette, httpx.Client(timeout=timeout) as client:
        if read_s <= 0.0:
            with pytest.raises(httpx.ReadTimeout, match="timed out"):
                client.get(tape.url(SSE))
        else:
            assert client.get(tape.url(SSE)).status_code == 200
    [attempt] = cassette.attempts
    assert attempt.interaction == 1
    # (the words of a read that times out on plain HTTP: the tape is served over http)
    assert attempt.error == ("ReadTimeout: timed out" if read_s <= 0.0 else None)
