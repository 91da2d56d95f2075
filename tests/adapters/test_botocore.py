"""
boto3's bedrock-runtime through the ``http.client`` door (botocore sends on urllib3): recorded
from a local server that speaks bedrock-runtime, replayed with no socket opened, SigV4
credentials scrubbed, and faults that botocore's own retry and event-stream parser handle.
"""

from __future__ import annotations

import base64
import datetime
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import botocore.config
import botocore.exceptions
import pytest
import urllib3

import llmcassette
from llmcassette import VirtualClock
from llmcassette._lint import lint_paths
from tests.adapters.bedrock import CONVERSE_EVENTS, bedrock_app, event_frame
from tests.adapters.test_http_client import forbid_sockets
from tests.servers import serve

MODEL = "anthropic.claude-3-haiku"
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
SECRET = "aws-secret-session-token-0123456789"


def _client(base: str, **config: Any) -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=base,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        aws_session_token=SECRET,
        config=botocore.config.Config(**config),
    )


def _calls(client: Any) -> dict[str, Any]:
    converse = client.converse(modelId=MODEL, messages=MESSAGES)
    stream = client.converse_stream(modelId=MODEL, messages=MESSAGES)
    invoked = client.invoke_model_with_response_stream(modelId=MODEL, body=json.dumps({"max_tokens": 5}))
    chunks = [
        json.loads(
            base64.b64decode(e["chunk"]["bytes"])
            if isinstance(e["chunk"]["bytes"], str)
            else e["chunk"]["bytes"]
        )
        for e in invoked["body"]
    ]
    return {
        "converse": converse["output"]["message"]["content"][0]["text"],
        "stream": [next(iter(event)) for event in stream["stream"]],
        "invoke": [chunk["type"] for chunk in chunks],
    }


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, str, dict[str, Any], list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    path = tmp_path_factory.mktemp("bedrock") / "bedrock.yaml"
    with serve(bedrock_app(seen)) as base:
        with llmcassette.use_cassette(path, record_mode="once"):
            live = _calls(_client(base))
        yield path, base, live, seen


@pytest.fixture
def cassette(recorded: tuple[Path, str, dict[str, Any], list[dict[str, str]]], tmp_path: Path) -> Path:
    return Path(shutil.copy(recorded[0], tmp_path / "bedrock.yaml"))


def test_the_three_calls_record_and_replay_with_no_socket(
    recorded: tuple[Path, str, dict[str, Any], list[dict[str, str]]],
    cassette: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, base, live, seen = recorded
    assert live == {
        "converse": "Hi there.",
        "stream": [kind for kind, _ in CONVERSE_EVENTS],
        "invoke": ["message_start", "content_block_delta", "message_delta", "message_stop"],
    }
    assert all(request["authorization"].startswith("AWS4-HMAC-SHA256 Credential=") for request in seen)
    text = cassette.read_text()
    assert SECRET not in text and "Credential=AKIA" not in text
    assert "X-Amz-Security-Token: [REDACTED]" in text
    document = llmcassette.load_cassette(cassette)
    assert document.interactions[0].response.stream is None  # a whole JSON body, read to its length
    assert lint_paths([cassette]).findings == []
    stream = document.interactions[1].response.stream
    assert stream is not None and stream.chunks is not None and len(stream.chunks) == len(CONVERSE_EVENTS)
    # Both event streams are readable frames in the file: headers, and payloads as data.
    assert "!!binary" not in text and "llmcassette_schema: 2" in text
    frames = document.interactions[1].response.eventstream
    assert frames is not None
    assert [(f.headers[":event-type"], f.payload) for f in frames] == [
        (kind, {**payload, "p": "abcdefgh"}) for kind, payload in CONVERSE_EVENTS
    ]
    assert document.interactions[1].response.content == b"".join(
        event_frame(kind, payload) for kind, payload in CONVERSE_EVENTS
    )
    invoked = document.interactions[2].response.eventstream
    assert invoked is not None and invoked[0].bytes_format == "compact"
    assert invoked[0].payload["bytes"]["type"] == "message_start"
    forbid_sockets(monkeypatch)
    with llmcassette.use_cassette(cassette) as replay:
        # A new signature and date each time: matching does not look at them.
        assert _calls(_client(base)) == live
    assert [a.interaction for a in replay.attempts] == [0, 1, 2]


def test_throttling_is_retried_by_botocore_on_the_virtual_clock(
    recorded: tuple[Path, str, dict[str, Any], list[dict[str, str]]],
    cassette: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = recorded[1]
    forbid_sockets(monkeypatch)
    client = _client(base, retries={"mode": "standard", "max_attempts": 3})
    with VirtualClock() as clock, llmcassette.use_cassette(cassette, faults=["rate_limit:times=2"]) as replay:
        answer = client.converse(modelId=MODEL, messages=MESSAGES)
    assert answer["output"]["message"]["content"][0]["text"] == "Hi there."
    assert [a.status for a in replay.attempts] == [429, 429, 200]
    assert len(clock.sleeps) == 2 and all(0 <= s <= 20 for s in clock.sleeps)
    with VirtualClock(), llmcassette.use_cassette(cassette, faults=["rate_limit"]):
        with pytest.raises(botocore.exceptions.ClientError) as info:
            client.converse(modelId=MODEL, messages=MESSAGES)
    assert info.value.response["Error"]["Code"] == "ThrottlingException"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("error_event:after=2,kind=overloaded", botocore.exceptions.EventStreamError),
        # botocore reads the event stream from urllib3 as it is: a dropped connection is urllib3's.
        ("disconnect:after=2", urllib3.exceptions.ProtocolError),
    ],
)
def test_stream_faults_raise_what_botocore_raises(
    recorded: tuple[Path, str, dict[str, Any], list[dict[str, str]]],
    cassette: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    error: type[Exception],
) -> None:
    base = recorded[1]
    forbid_sockets(monkeypatch)
    client = _client(base)
    got: list[str] = []
    with llmcassette.use_cassette(cassette, faults=[fault], allow_playback_repeats=True):
        stream = client.converse_stream(modelId=MODEL, messages=MESSAGES)
        with pytest.raises(error):
            got.extend(next(iter(event)) for event in stream["stream"])
    assert got == ["messageStart", "contentBlockDelta"]


def test_a_malformed_payload_and_a_truncated_stream_reach_the_client(
    recorded: tuple[Path, str, dict[str, Any], list[dict[str, str]]],
    cassette: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = recorded[1]
    forbid_sockets(monkeypatch)
    client = _client(base)
    with llmcassette.use_cassette(cassette, faults=["malformed_chunk:event=2"], allow_playback_repeats=True):
        events = list(client.converse_stream(modelId=MODEL, messages=MESSAGES)["stream"])
    # botocore does not refuse a frame whose JSON is cut: the event arrives without its fields.
    assert [next(iter(e)) for e in events] == [kind for kind, _ in CONVERSE_EVENTS]
    assert "delta" not in events[1]["contentBlockDelta"]
    with llmcassette.use_cassette(cassette, faults=["truncate:after=3"], allow_playback_repeats=True):
        events = list(client.converse_stream(modelId=MODEL, messages=MESSAGES)["stream"])
    assert [next(iter(e)) for e in events] == ["messageStart", "contentBlockDelta", "contentBlockDelta"]


def test_a_pooled_connection_is_answered_by_whoever_answers_now(
    recorded: tuple[Path, str, dict[str, Any], list[dict[str, str]]], cassette: Path
) -> None:
    base, seen = recorded[1], recorded[3]
    client = _client(base)  # keeps its keep-alive connections across the blocks below
    with llmcassette.use_cassette(cassette, faults=["status:code=400"]):
        with pytest.raises(botocore.exceptions.ClientError):
            client.converse(modelId=MODEL, messages=MESSAGES)
        with pytest.raises(botocore.exceptions.ClientError):
            client.converse(modelId=MODEL, messages=MESSAGES)
    with llmcassette.use_cassette(cassette) as replay:
        assert client.converse(modelId=MODEL, messages=MESSAGES)["stopReason"] == "end_turn"
    assert [a.status for a in replay.attempts] == [200]
    before = len(seen)
    # With no cassette, the same client reaches the server itself.
    assert client.converse(modelId=MODEL, messages=MESSAGES)["stopReason"] == "end_turn"
    assert len(seen) == before + 1


def test_a_recording_with_other_credentials_and_another_date_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SigV4 signs the date and the key: a replay a year later, with other credentials, sends
    # another `Authorization` and `X-Amz-Date`, and matching looks at neither.
    def signing_at(moment: datetime.datetime) -> None:
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: moment)

    path = tmp_path / "signed.yaml"
    seen: list[dict[str, str]] = []
    signing_at(datetime.datetime(2025, 1, 2, 3, 4, 5))
    with serve(bedrock_app(seen)) as base:
        with llmcassette.use_cassette(path, record_mode="once") as recording:
            live = _calls(_client(base))
    assert {request["x-amz-date"] for request in seen} == {"20250102T030405Z"}
    text = path.read_text()
    assert "Authorization: [AWS4-HMAC-SHA256 REDACTED]" in text and "Signature=" not in text
    assert SECRET not in text and "X-Amz-Security-Token: [REDACTED]" in text
    assert "X-Amz-Date: [20250102T030405Z]" in text  # not a secret: kept, never matched on

    signing_at(datetime.datetime(2026, 7, 8, 9, 10, 11))
    forbid_sockets(monkeypatch)
    other = boto3.client(
        "bedrock-runtime",
        region_name="eu-west-1",  # another signing scope too
        endpoint_url=base,
        aws_access_key_id="AKIAI44QH8DHBEXAMPLE",
        aws_secret_access_key="je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    )
    with llmcassette.use_cassette(path) as replay:
        assert _calls(other) == live
    assert [a.interaction for a in replay.attempts] == [0, 1, 2]
    assert {a.headers["x-amz-date"] for a in replay.attempts} == {"20260708T091011Z"}
    assert "x-amz-security-token" not in replay.attempts[0].headers
    recorded_auth = {a.fingerprints["authorization"] for a in recording.attempts}
    assert recorded_auth.isdisjoint(a.fingerprints["authorization"] for a in replay.attempts)
