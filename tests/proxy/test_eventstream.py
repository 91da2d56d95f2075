"""
Bedrock's eventstream through the proxy: boto3 recorded through ``record`` (frames stored
readably, under the upstream's URL), then answered by ``serve`` byte for byte, and failed by the
faults a request header names as the local upstream fails live, with the same botocore errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import pytest

import llmcassette
from llmcassette import VirtualClock
from llmcassette.proxy import FAULT_HEADER, Recorder, RouteTable
from tests.adapters.bedrock import CONVERSE_EVENTS, bedrock_app, bedrock_client, event_frame
from tests.adapters.test_botocore_eventstream import CALLS, MESSAGES, MODEL, STREAM_FAULTS, _outcome
from tests.proxy.test_record import wait_for_recordings
from tests.proxy.test_serve import Served, serving
from tests.servers import serve

Recorded = tuple[str, Path, dict[str, Any], list[dict[str, str]]]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """The two streams recorded by boto3 through `record`; the upstream stays up for live calls."""
    seen: list[dict[str, str]] = []
    path = tmp_path_factory.mktemp("bedrock-proxy") / "bedrock.yaml"
    with serve(bedrock_app(seen)) as base:
        recorder = Recorder(path, routes=RouteTable(upstream=base), record_mode="once")
        with recorder as proxy:
            client = bedrock_client(proxy)
            live = {call: _outcome(call, client, MODEL) for call in CALLS}
            wait_for_recordings(recorder, len(CALLS))
        yield base, path, live, seen


@pytest.fixture(scope="module")
def served(recorded: Recorded) -> Iterator[Served]:
    with serving([recorded[1]]) as server:
        yield server


def _with_fault(client: Any, spec: str) -> Any:
    # What a platform test does to pick a fault per request: a header on the request.
    def add(request: Any, **_: Any) -> None:
        request.headers[FAULT_HEADER] = spec

    client.meta.events.register("before-sign.bedrock-runtime.*", add)
    return client


def test_record_stores_the_frames_readably_under_the_upstreams_url(recorded: Recorded) -> None:
    base, path, live, _ = recorded
    assert all(outcome[1] is None for outcome in live.values())
    text = path.read_text()
    assert "!!binary" not in text and "llmcassette_schema: 2" in text
    document = llmcassette.load_cassette(path)
    converse, invoke = document.interactions
    assert converse.request.uri == f"{base}/model/{MODEL}/converse-stream"
    assert converse.response.eventstream is not None
    assert [frame.headers[":event-type"] for frame in converse.response.eventstream] == [
        kind for kind, _ in CONVERSE_EVENTS
    ]
    assert converse.response.content == b"".join(
        event_frame(kind, payload) for kind, payload in CONVERSE_EVENTS
    )
    assert converse.response.stream is not None and converse.response.stream.chunks == [
        len(event_frame(kind, payload)) for kind, payload in CONVERSE_EVENTS
    ]
    assert (
        invoke.response.eventstream is not None and invoke.response.eventstream[0].bytes_format == "compact"
    )


def test_serve_answers_the_recorded_bytes_in_the_recorded_chunks(recorded: Recorded, served: Served) -> None:
    document = llmcassette.load_cassette(recorded[1])
    for interaction in document.interactions:
        path = interaction.request.uri.removeprefix(recorded[0])
        with httpx.stream("POST", served.url + path, content=interaction.request.content) as response:
            assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
            body = b"".join(response.iter_raw())
        assert body == interaction.response.content
    for call in CALLS:
        assert _outcome(call, bedrock_client(served.url), MODEL) == recorded[2][call]


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize(("live", "fault", "raised"), STREAM_FAULTS)
def test_a_fault_header_fails_the_stream_as_the_upstream_fails_live(
    recorded: Recorded, served: Served, call: str, live: str, fault: str, raised: type[BaseException] | None
) -> None:
    expected = _outcome(call, bedrock_client(recorded[0], read_timeout=0.2), live)
    assert expected[1] is raised
    assert _outcome(call, _with_fault(bedrock_client(served.url, read_timeout=0.2), fault), MODEL) == expected


def test_a_throttling_header_is_retried_by_botocore_as_live(recorded: Recorded, served: Served) -> None:
    base, _, _, seen = recorded

    def attempt(client: Any, model: str) -> tuple[str, int]:
        with VirtualClock() as clock, pytest.raises(botocore.exceptions.ClientError) as info:
            client.converse_stream(modelId=model, messages=MESSAGES)
        return f"{info.value.response['Error']['Code']}: {info.value}", len(clock.sleeps)

    before = len(seen)
    live = attempt(bedrock_client(base), "throttled")
    attempts = len(seen) - before
    assert attempts > 1 and live[1] == attempts - 1
    assert attempt(_with_fault(bedrock_client(served.url), "rate_limit"), MODEL) == live
