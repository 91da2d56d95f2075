"""
Faults inside a streamed 200 response: an error event, a malformed chunk, a dropped connection, a
stall, a truncated or empty stream, other chunk boundaries. The response head has arrived, so no
SDK retries: the tests check what reached the caller first and what it got at the end.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import ollama
import openai
import pytest
from google.genai import errors as genai_errors

from tests.sdk_faults._clients import SDKS, Probed, genai_text, openai_finish
from tests.sdk_faults._replay import GENAI_HTTPX2, Raises, Tape, assert_answered_once, modes, run
from tests.upstreams import EXPECTED

OPENAI_MID_STREAM = "The server had an error mid-stream"
OLLAMA_MID_STREAM = "an error was encountered while running the model"
# What reached the caller before the fault, item by item (see Sdk.piece).
OPENAI_THREE = ("", "Let me check", " the weather")  # the role chunk, then two text pieces
ANTHROPIC_TWO = ("message_start", "content_block_start")
TWO_PIECES = ("Let me check", " the weather")


@dataclass(frozen=True)
class Broken:
    """A fault that breaks a streamed answer part way, and what the SDK raises."""

    name: str
    sdk: str
    fault: str
    raises: Raises
    #: What reached the caller before the error, item by item.
    received: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    #: How the attempt's error starts, as the attempt log tells it.
    attempt_error: str | None = None
    #: Seconds the call took on the virtual clock.
    elapsed_s: float | None = None


def _disconnect(how: str, cause: type[Exception]) -> Broken:
    # openai 3.x wraps the transport error (2.x let the raw httpx error through).
    return Broken(
        f"openai-disconnect_{how}-is_a_connection_error",
        "openai",
        f"disconnect:after=3,mode={how}",
        Raises(openai.APIConnectionError, never=(openai.APITimeoutError,), cause=cause),
        OPENAI_THREE,
    )


def _genai_error_event(kind: str, error: type[genai_errors.APIError], code: int) -> Broken:
    return Broken(
        f"genai-error_event_{kind}-raises_by_code",
        "genai",
        f"error_event:after=2,kind={kind}",
        Raises(error, fields={"code": code}),
        TWO_PIECES,
    )


BROKEN = [
    Broken(
        # A data event with an `error` key: APIError with its message, and no status (the HTTP
        # status was 200).
        "openai-error_event-raises_after_the_chunks_before_it",
        "openai",
        f"error_event:after=3,message={OPENAI_MID_STREAM}",
        Raises(
            openai.APIError,
            never=(openai.APIStatusError,),
            fields={
                "message": OPENAI_MID_STREAM,
                "body": {"message": OPENAI_MID_STREAM, "type": "server_error"},
            },
        ),
        OPENAI_THREE,
    ),
    Broken(
        # A bare JSONDecodeError, not an OpenAIError.
        "openai-malformed_chunk-raises_json_decode_error",
        "openai",
        "malformed_chunk:event=3",
        Raises(json.JSONDecodeError, never=(openai.OpenAIError,)),
        OPENAI_THREE[:2],
    ),
    _disconnect("fin", httpx2.RemoteProtocolError),
    _disconnect("reset", httpx2.ReadError),
    Broken(
        # The client waited its read timeout (virtually), not the whole stall.
        "openai-stall_longer_than_the_read_timeout-times_out",
        "openai",
        "stall:after=3,seconds=30",
        Raises(openai.APITimeoutError),
        OPENAI_THREE,
        options={"timeout": 2.0},
        attempt_error="ReadTimeout",
        elapsed_s=2.0,
    ),
    Broken(
        # The generic class, with the stream's 200: not OverloadedError, and so not retried.
        "anthropic-error_event_overloaded-is_a_status_error_on_200",
        "anthropic",
        "error_event:after=3,kind=overloaded",
        Raises(anthropic.APIStatusError, exact=True, fields={"status_code": 200, "type": "overloaded_error"}),
        ANTHROPIC_TWO,
    ),
    Broken(
        # The ping (event 3) is skipped by the SDK, so two events came through.
        "anthropic-malformed_chunk-raises_json_decode_error",
        "anthropic",
        "malformed_chunk:event=4",
        Raises(json.JSONDecodeError, never=(anthropic.AnthropicError,)),
        ANTHROPIC_TWO,
    ),
    _genai_error_event("server_error", genai_errors.ServerError, 500),
    _genai_error_event("overloaded", genai_errors.ServerError, 503),
    _genai_error_event("rate_limit", genai_errors.ClientError, 429),
    Broken(
        "genai-malformed_chunk-raises_unknown_api_response_error",
        "genai",
        "malformed_chunk:event=2",
        Raises(genai_errors.UnknownApiResponseError, says="Failed to parse response as JSON"),
        TWO_PIECES[:1],
    ),
    Broken(
        "ollama-error_event-has_status_minus_one",
        "ollama",
        f"error_event:after=2,message={OLLAMA_MID_STREAM}",
        Raises(ollama.ResponseError, fields={"status_code": -1, "error": OLLAMA_MID_STREAM}),
        TWO_PIECES,
    ),
    Broken(
        "ollama-malformed_line-raises_json_decode_error",
        "ollama",
        "malformed_chunk:event=2",
        Raises(json.JSONDecodeError),
        TWO_PIECES[:1],
    ),
]


@pytest.mark.parametrize(
    ("mode", "case"),
    [pytest.param(mode, case, id=f"{mode}-{case.name}") for case in BROKEN for mode in modes(case.sdk)],
)
def test_a_broken_stream(tape: Tape, mode: str, case: Broken) -> None:
    replay = tape.replay(case.sdk, mode, True, [case.fault], case.options)
    case.raises.check(replay.error)
    assert tuple(SDKS[case.sdk].piece(item) for item in replay.got) == case.received
    # Not retried: retries only cover getting the response head.
    assert_answered_once(replay, case.fault)
    assert replay.attempts[0].status == 200
    if case.attempt_error is not None:
        assert (replay.attempts[0].error or "").startswith(case.attempt_error), replay.attempts[0].error
    if case.elapsed_s is not None:
        assert replay.clock.elapsed_s == pytest.approx(case.elapsed_s)


@pytest.mark.parametrize("mode", modes("genai"))
def test_genai_streams_through_the_route_of_each_mode(tape: Tape, mode: str) -> None:
    # Its async client sends through aiohttp where aiohttp is installed, through httpx2 where not;
    # the tests above run it both ways.
    call = Probed(tape.call("genai", True))
    replay = run(tape.path("genai", True), call, mode)
    assert genai_text(replay.ok()) == EXPECTED.text
    route = {"sync": "httpx2", "async": "aiohttp", GENAI_HTTPX2: "httpx2 async"}[mode]
    assert call.counts == Counter({route: 1})


@pytest.mark.parametrize(
    ("mode", "sdk", "fault"),
    [
        pytest.param(mode, sdk, fault, id=f"{mode}-{sdk}-{fault}")
        for sdk, fault in [
            ("openai", "rechunk"),
            ("openai", "rechunk:mode=adversarial"),
            # Gemini separates events with CRLF: the adversarial cuts fall between CR and LF.
            ("genai", "rechunk:mode=adversarial"),
        ]
        for mode in modes(sdk)
    ],
)
def test_a_rechunked_stream_parses_the_same(tape: Tape, mode: str, sdk: str, fault: str) -> None:
    plain = tape.replay(sdk, mode, True)
    replay = tape.replay(sdk, mode, True, [fault])
    assert [c.model_dump() for c in replay.ok()] == [c.model_dump() for c in plain.ok()]
    assert SDKS[sdk].text(replay.got) == EXPECTED.text
    (attempt,) = replay.attempts
    (recorded,) = plain.attempts
    # Same bytes, other boundaries.
    assert b"".join(attempt.chunks) == b"".join(recorded.chunks)
    assert len(attempt.chunks) > len(recorded.chunks)
    if fault == "rechunk":
        assert {len(chunk) for chunk in attempt.chunks} == {1}
    assert_answered_once(replay, fault)


def test_openai_stall_shorter_than_the_read_timeout_is_a_pause(tape: Tape, mode: str) -> None:
    fault = "stall:after=3,seconds=1"
    replay = tape.replay("openai", mode, True, [fault], {"timeout": 2.0})
    assert SDKS["openai"].text(replay.ok()) == EXPECTED.text
    assert_answered_once(replay, fault)
    assert replay.clock.elapsed_s == pytest.approx(1.0)


def test_openai_truncated_stream_just_ends(tape: Tape, mode: str) -> None:
    full = tape.replay("openai", mode, True)
    replay = tape.replay("openai", mode, True, ["truncate:after=4"])
    # No [DONE], no error: the caller gets a shorter stream and must notice the missing finish itself.
    assert len(replay.ok()) == 4 < len(full.ok())
    assert openai_finish(replay.got) is None
    assert openai_finish(full.got) == "tool_calls"
    assert b"[DONE]" not in b"".join(replay.attempts[0].chunks)
    assert_answered_once(replay, "truncate:after=4")


def test_openai_empty_stream_is_a_quiet_success(tape: Tape, mode: str) -> None:
    replay = tape.replay("openai", mode, True, ["empty_stream"])
    # The provider's empty answer: a role chunk and a finish chunk, no text, no tool call, no error.
    assert SDKS["openai"].text(replay.ok()) == ""
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in replay.got)
    assert openai_finish(replay.got) == "stop"
    assert b"".join(replay.attempts[0].chunks).endswith(b"data: [DONE]\n\n")
    assert_answered_once(replay, "empty_stream")
