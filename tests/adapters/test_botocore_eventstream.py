"""
Bedrock's failures in the eventstream framing, each proven twice with boto3: live, from the local
bedrock-runtime upstream failing that way, and in replay, from a fault on the recording. The
client must see the same events and the same exception both times.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.eventstream
import botocore.exceptions
import pytest
import urllib3

import llmcassette
from llmcassette import VirtualClock
from llmcassette.faults import parse_fault
from tests.adapters.bedrock import LEAKED_KEY, bedrock_app, bedrock_client
from tests.adapters.test_http_client import forbid_sockets
from tests.servers import serve

MODEL = "anthropic.claude-3-haiku"
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]

Outcome = tuple[list[str], type[BaseException] | None, str | None]


def _converse_stream(client: Any, model: str) -> Iterator[str]:
    stream = client.converse_stream(modelId=model, messages=MESSAGES)["stream"]
    with contextlib.closing(stream):  # a stream that failed mid-way still holds its connection
        for event in stream:
            yield next(iter(event))


def _invoke_stream(client: Any, model: str) -> Iterator[str]:
    stream = client.invoke_model_with_response_stream(modelId=model, body=json.dumps({"max_tokens": 5}))[
        "body"
    ]
    with contextlib.closing(stream):
        for event in stream:
            yield json.loads(event["chunk"]["bytes"])["type"]  # botocore decodes the base64


CALLS: dict[str, Callable[[Any, str], Iterator[str]]] = {
    "converse_stream": _converse_stream,
    "invoke": _invoke_stream,
}


def _outcome(call: str, client: Any, model: str) -> Outcome:
    got: list[str] = []
    try:
        got.extend(CALLS[call](client, model))
    except Exception as exc:
        if isinstance(exc, botocore.exceptions.ClientError):  # EventStreamError included
            detail = f"{exc.response['Error']['Code']}: {exc}"
        elif isinstance(exc, botocore.eventstream.ChecksumMismatch):
            detail = str(exc)  # both checksums: the same frame broke the same way
        else:
            detail = None  # a dropped connection's text says where the socket stopped
        return got, type(exc), detail
    return got, None, None


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    path = tmp_path_factory.mktemp("bedrock") / "streams.yaml"
    with serve(bedrock_app(seen)) as base:
        with llmcassette.use_cassette(path, record_mode="once"):
            client = bedrock_client(base)
            for call in CALLS:
                assert _outcome(call, client, MODEL)[1] is None
        yield base, path, seen


@pytest.fixture
def cassette(upstream: tuple[str, Path, list[dict[str, str]]], tmp_path: Path) -> Path:
    return Path(shutil.copy(upstream[1], tmp_path / "streams.yaml"))


#: ``(model id that makes the local upstream fail live, the fault that does the same in replay,
#: what botocore raises)``, for ``converse_stream`` and ``invoke_model_with_response_stream``.
STREAM_FAULTS = [
    pytest.param(
        "exception.throttlingException.2",
        "error_event:after=2,kind=rate_limit,message=Injected live.",
        botocore.exceptions.EventStreamError,
        id="throttlingException",
    ),
    pytest.param(
        "exception.modelStreamErrorException.1",
        "error_event:after=1,exception=modelStreamErrorException,message=Injected live.",
        botocore.exceptions.EventStreamError,
        id="modelStreamErrorException",
    ),
    pytest.param("badcrc.3", "bad_crc:event=3", botocore.eventstream.ChecksumMismatch, id="bad_crc"),
    pytest.param("truncate.3", "truncate:after=3", None, id="truncate"),
    pytest.param("disconnect.2", "disconnect:after=2", urllib3.exceptions.ProtocolError, id="disconnect"),
    # Silence past the client's read timeout: urllib3's, as botocore reads the stream from it.
    pytest.param("stall.2", "stall:after=2", urllib3.exceptions.ReadTimeoutError, id="stall"),
]


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize(("live", "fault", "raised"), STREAM_FAULTS)
def test_a_stream_fault_raises_what_botocore_raises_live(
    upstream: tuple[str, Path, list[dict[str, str]]],
    cassette: Path,
    monkeypatch: pytest.MonkeyPatch,
    call: str,
    live: str,
    fault: str,
    raised: type[BaseException] | None,
) -> None:
    base = upstream[0]
    client = bedrock_client(base, read_timeout=0.2)
    expected = _outcome(call, client, live)
    assert expected[1] is raised
    forbid_sockets(monkeypatch)
    with llmcassette.use_cassette(cassette, faults=[fault]) as replay:
        assert _outcome(call, client, MODEL) == expected
    assert [a.fault for a in replay.attempts] == [parse_fault(fault).spec()]


@pytest.mark.parametrize("call", ["converse", "converse_stream"])
def test_throttling_is_retried_live_and_in_replay_alike(
    upstream: tuple[str, Path, list[dict[str, str]]],
    cassette: Path,
    monkeypatch: pytest.MonkeyPatch,
    call: str,
) -> None:
    base, _, seen = upstream

    def attempt(model: str) -> tuple[str, list[float]]:
        client = bedrock_client(base)
        with VirtualClock() as clock, pytest.raises(botocore.exceptions.ClientError) as info:
            getattr(client, call)(modelId=model, messages=MESSAGES)
        # The backoff is random (full jitter): its count is what botocore's retry decides.
        return f"{info.value.response['Error']['Code']}: {info.value}", clock.sleeps

    before = len(seen)
    live_error, live_sleeps = attempt("throttled")
    live_attempts = len(seen) - before
    assert live_attempts > 1 and len(live_sleeps) == live_attempts - 1
    assert "(ThrottlingException)" in live_error and "reached max retries" in live_error
    forbid_sockets(monkeypatch)
    with llmcassette.use_cassette(cassette, faults=["rate_limit"]) as replay:
        error, sleeps = attempt(MODEL)
    assert error == live_error and len(sleeps) == len(live_sleeps)
    assert [a.status for a in replay.attempts] == [429] * live_attempts


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize(
    "fault", ["rechunk:mode=fixed,size=1", "rechunk:mode=random,max_size=5", "rechunk:mode=event"]
)
def test_rechunked_frames_give_botocore_the_same_events(
    upstream: tuple[str, Path, list[dict[str, str]]],
    cassette: Path,
    monkeypatch: pytest.MonkeyPatch,
    call: str,
    fault: str,
) -> None:
    client = bedrock_client(upstream[0])
    expected = _outcome(call, client, MODEL)
    forbid_sockets(monkeypatch)
    with llmcassette.use_cassette(cassette, faults=[fault]) as replay:
        assert _outcome(call, client, MODEL) == expected
    assert len(replay.attempts[0].chunks) > len(expected[0]) or fault.endswith("event")


def test_a_key_in_a_streamed_answer_is_scrubbed_and_the_frames_stay_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, str]] = []
    path = tmp_path / "leaky.yaml"

    def texts(client: Any) -> tuple[str, str]:
        stream = client.converse_stream(modelId="leaky", messages=MESSAGES)["stream"]
        converse = "".join(
            e["contentBlockDelta"]["delta"]["text"] for e in stream if "contentBlockDelta" in e
        )
        body = client.invoke_model_with_response_stream(modelId="leaky", body="{}")["body"]
        chunks = [json.loads(e["chunk"]["bytes"]) for e in body]
        invoked = "".join(c["delta"].get("text", "") for c in chunks if c["type"] == "content_block_delta")
        return converse, invoked

    with serve(bedrock_app(seen)) as base:
        with llmcassette.use_cassette(path, record_mode="once"):
            live = texts(bedrock_client(base))
        assert all(LEAKED_KEY in text for text in live)
        forbid_sockets(monkeypatch)
        with llmcassette.use_cassette(path):
            replayed = texts(bedrock_client(base))
    # botocore reads every frame (lengths and checksums were redone around the placeholder).
    assert replayed == tuple(text.replace(LEAKED_KEY, "REDACTED-openai-key") for text in live)
    text = path.read_text()
    assert LEAKED_KEY not in text and "!!binary" not in text
    document = llmcassette.load_cassette(path)
    for interaction in document.interactions:
        stream = interaction.response.stream
        assert stream is not None and stream.chunks is not None
        assert sum(stream.chunks) == len(interaction.response.content)
