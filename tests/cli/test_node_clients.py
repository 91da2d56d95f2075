"""
The node SDKs (``openai@6`` and ``@anthropic-ai/sdk``, see :mod:`tests.node_clients`) through
``llmcassette record`` and ``serve``: recorded from a local upstream, replayed by ``serve`` as
they were recorded, and parsed the same by the Python SDKs in-process. Through ``serve``, they
retry a rate limit as its ``retry-after-ms`` says, and each network fault shows what a node client
gets on the socket (the README's table).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import llmcassette
from llmcassette.proxy import RouteTable
from tests.cli.test_serve import ServeProcess
from tests.node_clients import CLIENTS, finish_clients, install, run_clients, start_clients
from tests.servers import serve
from tests.test_sdks import SDKS, Outcome
from tests.upstreams import EXPECTED, _anthropic_events, _openai_events, provider_app

CALLS = ("openai-json", "openai-stream", "anthropic-json", "anthropic-stream")
SUBPROCESS_TIMEOUT_S = 60
# How long `serve` keeps a stalled connection silent when the client never gives up, and the
# node SDKs' `timeout` in the network fault tests, well below it.
STALL_MAX_S = 2.0
TIMEOUT_MS = 1000


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, with the locked SDKs installed (once, under a lock)."""
    return install()


def parsed(result: dict[str, Any]) -> dict[str, Any]:
    """What a call parsed, without its timing."""
    return {key: value for key, value in result.items() if key not in ("attempts_ms", "elapsed_ms")}


def expected_chunks(call: str) -> int:
    """The chunks (OpenAI) or events (Anthropic) the node SDK yields for the upstream's answer."""
    if call == "openai-stream":
        return len(_openai_events("gpt-test", include_usage=True)) - 1  # not `[DONE]`
    if call == "anthropic-stream":
        # The SDK does not hand `ping` events to the caller.
        return sum(b'"type":"ping"' not in event for event in _anthropic_events("claude-test"))
    return 1


@dataclass
class NodeRecording:
    path: Path
    #: The upstream's base URL; it is gone once the fixture returns.
    upstream: str
    #: What the node SDKs parsed while they were recorded.
    live: dict[str, Any]
    #: The paths the upstream was asked for.
    received: list[str]


@pytest.fixture(scope="module")
def recording(node: str, tmp_path_factory: pytest.TempPathFactory) -> NodeRecording:
    path = tmp_path_factory.mktemp("node") / "node.yaml"
    app = provider_app()
    with serve(app) as upstream:
        # An upstream given with its `/v1`, as an OpenAI client is given vLLM or LiteLLM.
        done = subprocess.run(
            [sys.executable, "-m", "llmcassette", "record", "-o", str(path), "--upstream", f"{upstream}/v1"]
            + ["--", node, str(CLIENTS), *CALLS],
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT_S,
        )
    assert done.returncode == 0, done.stderr
    return NodeRecording(path, upstream, json.loads(done.stdout), [r.path for r in app.state.requests])


@pytest.fixture(scope="module")
def served(recording: NodeRecording) -> Iterator[ServeProcess]:
    server = ServeProcess(str(recording.path), "--port", "0", "--stall-max-s", str(STALL_MAX_S))
    try:
        yield server
    finally:
        server.stop()


def serve_environment(server: ServeProcess) -> dict[str, str]:
    return {**os.environ, **RouteTable().environment(server.url)}


def test_the_node_sdks_are_recorded_through_an_upstream_with_a_path(recording: NodeRecording) -> None:
    for call in CALLS:
        finish = "tool_calls" if call.startswith("openai") else "tool_use"
        assert parsed(recording.live[call]) == {
            "text": EXPECTED.text,
            "tool_calls": [[EXPECTED.tool_name, EXPECTED.tool_args]],
            "usage": [EXPECTED.input_tokens, EXPECTED.output_tokens],
            "finish": finish,
            "chunks": expected_chunks(call),
        }, call
    # OPENAI_BASE_URL is `<proxy>/v1`, ANTHROPIC_BASE_URL `<proxy>` (the SDK adds `/v1/messages`):
    # each reached the upstream's `/v1` once.
    assert recording.received == ["/v1/chat/completions"] * 2 + ["/v1/messages"] * 2
    interactions = llmcassette.load_cassette(recording.path).interactions
    assert [(i.request.uri, i.response.status.code) for i in interactions] == [
        (f"{recording.upstream}/v1/chat/completions", 200),
        (f"{recording.upstream}/v1/chat/completions", 200),
        (f"{recording.upstream}/v1/messages", 200),
        (f"{recording.upstream}/v1/messages", 200),
    ]
    assert b"sk-test" not in recording.path.read_bytes()


def test_the_node_sdks_replay_through_serve_as_they_were_recorded(
    node: str, recording: NodeRecording, served: ServeProcess
) -> None:
    results = run_clients(node, CALLS, env=serve_environment(served))
    lines = served.lines(len(CALLS))
    assert {call: parsed(result) for call, result in results.items()} == {
        call: parsed(result) for call, result in recording.live.items()
    }
    assert all(" -> 200, from node.yaml, " in line for line in lines), lines


@pytest.mark.parametrize(
    ("call", "sdk_name", "stream"),
    [pytest.param(call, call.split("-")[0], call.endswith("stream"), id=call) for call in CALLS],
)
def test_the_python_sdks_parse_the_node_recording_as_the_node_sdks_did(
    recording: NodeRecording, call: str, sdk_name: str, stream: bool
) -> None:
    sdk = next(sdk for sdk in SDKS if sdk.name == sdk_name)
    # The upstream is gone: this replays the node SDK's request in-process, matched by its body.
    with llmcassette.use_cassette(recording.path) as cassette:
        outcome = sdk.outcome(sdk.call_sync(recording.upstream, stream))
    assert cassette.misses == []
    node = recording.live[call]
    assert outcome == Outcome(
        text=node["text"],
        tool_calls=[(name, args) for name, args in node["tool_calls"]],
        input_tokens=node["usage"][0],
        output_tokens=node["usage"][1],
        finish=node["finish"],
    )


# The SDKs' own first backoff is at most 0.5 s, and `retry-after` says 30 s: a wait of 0.8 s is
# `retry-after-ms` read and obeyed.
RETRY_AFTER_MS = 800


@pytest.mark.parametrize("call", ["openai-json", "anthropic-stream"])
def test_the_node_sdks_retry_a_rate_limit_after_its_retry_after_ms(
    node: str, recording: NodeRecording, served: ServeProcess, call: str
) -> None:
    fault = f"rate_limit:times=1,retry_after_ms={RETRY_AFTER_MS},retry_after=30,seed={CALLS.index(call)}"
    results = run_clients(node, [f"{call}@{fault}"], env=serve_environment(served), CLIENT_MAX_RETRIES="2")
    lines = served.lines(2)
    (result,) = results.values()
    assert parsed(result) == parsed(recording.live[call])
    first, second = result["attempts_ms"]
    assert RETRY_AFTER_MS <= second - first < 5000, result["attempts_ms"]
    assert " -> 429, by fault rate_limit, " in lines[0]
    assert " -> 200, from node.yaml, " in lines[1]


@dataclass(frozen=True)
class NetworkCase:
    #: The fault, with a `seed` that only tells the cases apart in the server's log.
    fault: str
    #: The error `clients.mjs` reports for the openai SDK, and words from its message.
    openai: tuple[str, str]
    #: The same for the anthropic SDK.
    anthropic: tuple[str, str]
    #: The calls it is tried on: `stream` or `json`.
    kind: str = "stream"


# A stream or body that the server closes: openai@6 lets undici's error out of the body read as it
# is, @anthropic-ai/sdk wraps it.
CLOSED = (("TypeError", "terminated"), ("APIConnectionError", "Connection error."))

# What the node SDKs get from each network fault, with a `timeout` of TIMEOUT_MS and no retries:
# the README's table says the same.
NETWORK_CASES = {
    "connect_error": NetworkCase(
        "connect_error:seed=1",
        ("APIConnectionError", "Connection error."),
        ("APIConnectionError", "ECONNRESET"),
    ),
    "read_timeout": NetworkCase(
        "read_timeout:seed=2",
        ("APIConnectionTimeoutError", "Request timed out."),
        ("APIConnectionTimeoutError", f"timed out after {TIMEOUT_MS / 1000:g}s"),
    ),
    "connect_timeout": NetworkCase(
        "connect_timeout:seed=3",
        ("APIConnectionTimeoutError", "Request timed out."),
        ("APIConnectionTimeoutError", f"timed out after {TIMEOUT_MS / 1000:g}s"),
    ),
    "disconnect-reset": NetworkCase("disconnect:after=2,mode=reset,seed=4", *CLOSED),
    "disconnect-fin": NetworkCase("disconnect:after=2,seed=5", *CLOSED),
    # Their `timeout` covers the wait for the response head only: a stream that stalls after it,
    # or a JSON body that stalls halfway, waits until `serve` ends the silence
    # (`--stall-max-s`) with a close.
    "stall": NetworkCase("stall:after=2,seed=6", *CLOSED),
    "stall-json": NetworkCase("stall:seed=7", *CLOSED, kind="json"),
}
SDK_NAMES = ("openai", "anthropic")


@pytest.fixture(scope="module")
def network_faults(node: str, served: ServeProcess) -> dict[tuple[str, str], dict[str, Any]]:
    """
    Each network fault through `serve` to each node SDK, by case and SDK: one node process per
    SDK runs the cases in turn, and the two run at once.
    """
    env = serve_environment(served)
    runs = {
        sdk: start_clients(
            node,
            [f"{sdk}-{case.kind}@{case.fault}" for case in NETWORK_CASES.values()],
            env=env,
            CLIENT_TIMEOUT_MS=str(TIMEOUT_MS),
        )
        for sdk in SDK_NAMES
    }
    finished = {sdk: finish_clients(process) for sdk, process in runs.items()}
    lines = served.lines(len(SDK_NAMES) * len(NETWORK_CASES))
    results = {}
    for name, case in NETWORK_CASES.items():
        # The log writes the spec in its own order; the seed tells the cases apart.
        fault, seed = case.fault.split(":")[0], case.fault.rpartition("seed=")[2]
        mine = re.compile(rf"\[fault {fault}:.*\bseed={seed}\b")
        for sdk in SDK_NAMES:
            result = finished[sdk][f"{sdk}-{case.kind}@{case.fault}"]
            result["log"] = [line for line in lines if mine.search(line)]
            results[(name, sdk)] = result
    return results


@pytest.mark.parametrize("sdk", SDK_NAMES)
@pytest.mark.parametrize("case", list(NETWORK_CASES))
def test_a_network_fault_reaches_the_node_sdks_as_the_readme_says(
    network_faults: dict[tuple[str, str], dict[str, Any]], case: str, sdk: str
) -> None:
    result = network_faults[(case, sdk)]
    error, words = getattr(NETWORK_CASES[case], sdk)
    assert (result["error"], words in result["message"]) == (error, True), result
    assert len(result["attempts_ms"]) == 1
    assert len(result["log"]) == len(SDK_NAMES), result["log"]
    if case.startswith("stall"):
        # A `timeout` of TIMEOUT_MS did not end the silence after the head: the server's limit did.
        assert result["elapsed_ms"] >= STALL_MAX_S * 1000, result
        assert all(f"silence for {STALL_MAX_S:g} s, then closed" in line for line in result["log"])
    else:
        assert result["elapsed_ms"] < STALL_MAX_S * 1000, result
