"""
`llmcassette serve` as a separate process: the real SDKs replay through it by their base-URL
settings and parse what they parse in-process; faults chosen per call by a header are real socket
behaviour for httpx and the openai SDK; the server stops on a signal with a summary.
"""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import httpx2
import openai
import pytest
from click.testing import CliRunner, Result

import llmcassette
from llmcassette.cli import cli
from llmcassette.proxy import FAULT_HEADER
from tests.servers import serve
from tests.test_sdks import SDKS, Outcome, Sdk
from tests.upstreams import EXPECTED, provider_app

WAIT_S = 30.0
# The route each SDK takes on the server when it does not use the server's root.
ROUTES = {"openai": "openai", "anthropic": "anthropic", "genai": "gemini", "ollama": "ollama"}


class ServeProcess:
    """``llmcassette serve`` (or ``command``, such as ``record``) in a child process, with its output
    read by threads as it comes."""

    def __init__(self, *args: str, command: str = "serve", env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llmcassette", command, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._stdout = _pump(self.process.stdout)
        self._stderr = _pump(self.process.stderr)
        self.stderr: list[str] = []
        try:
            # The first line on stdout carries the server's address.
            first = self._stdout.get(timeout=WAIT_S)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"serve printed nothing: {self.stop()}") from None
        name, _, self.url = first.strip().removeprefix("export ").partition("=")
        assert name == "LLMCASSETTE_PROXY_URL", first

    def lines(self, count: int) -> list[str]:
        """The next ``count`` request log lines on stderr (banner lines are skipped)."""
        found: list[str] = []
        deadline = time.monotonic() + WAIT_S
        while len(found) < count:
            line = self._stderr.get(timeout=max(0.0, deadline - time.monotonic()))
            self.stderr.append(line)
            if " -> " in line and not line.startswith(" "):
                found.append(line.rstrip("\n"))
        return found

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> str:
        """Send ``sig``, wait for the exit, and return what stderr said that was not read yet."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=WAIT_S)
        finally:
            self.kill()
        rest = []
        with_deadline = time.monotonic() + 5
        while time.monotonic() < with_deadline:
            try:
                line = self._stderr.get(timeout=0.2)
            except queue.Empty:
                break
            if line is None:
                break
            rest.append(line)
        return "".join(rest)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT_S)


def _pump(stream: IO[str] | None) -> queue.Queue[Any]:
    lines: queue.Queue[Any] = queue.Queue()

    def pump() -> None:
        assert stream is not None
        with stream:  # closed at the end of output: the child has exited or closed it
            for line in stream:
                lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


@dataclass
class Recorded:
    """A cassette of every SDK's calls, and what each SDK parsed from it replayed in-process."""

    path: Path
    in_process: dict[tuple[str, bool], Outcome]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    path = tmp_path_factory.mktemp("serve-sdks") / "sdks.yaml"
    with serve(provider_app()) as upstream:
        with llmcassette.use_cassette(path, record_mode="all"):
            for sdk in SDKS:
                for stream in (False, True):
                    sdk.call_sync(upstream, stream)
    # The upstream is gone: this replays in-process.
    with llmcassette.use_cassette(path) as cassette:
        outcomes = {
            (sdk.name, stream): sdk.outcome(sdk.call_sync(upstream, stream))
            for sdk in SDKS
            for stream in (False, True)
        }
    assert cassette.misses == [] and cassette.all_played
    return Recorded(path, outcomes)


@pytest.fixture(scope="module")
def served(recorded: Recorded) -> Iterator[ServeProcess]:
    """One server process for the module's tests: starting one costs about half a second."""
    server = ServeProcess(str(recorded.path), "--port", "0")
    try:
        yield server
    finally:
        server.stop()


CASES = [
    pytest.param(sdk, stream, mode, id=f"{sdk.name}-{'stream' if stream else 'json'}-{mode}")
    for sdk in SDKS
    for stream in (False, True)
    for mode in ("sync-route", "async-root")
]


@pytest.mark.parametrize(("sdk", "stream", "mode"), CASES)
def test_the_sdks_replay_through_serve_as_they_do_in_process(
    recorded: Recorded, served: ServeProcess, sdk: Sdk, stream: bool, mode: str
) -> None:
    if mode == "sync-route":
        outcome = sdk.outcome(sdk.call_sync(f"{served.url}/{ROUTES[sdk.name]}", stream))
    else:

        async def call() -> list[Any]:
            return await sdk.call_async(served.url, stream)

        outcome = sdk.outcome(asyncio.run(call()))
    (line,) = served.lines(1)
    assert outcome == recorded.in_process[(sdk.name, stream)]
    assert outcome.text == EXPECTED.text
    assert outcome.tool_calls == [(EXPECTED.tool_name, EXPECTED.tool_args)]
    prefix = f"/{ROUTES[sdk.name]}" if mode == "sync-route" else ""
    assert line.startswith(f"POST {prefix}/"), line
    assert " -> 200, from sdks.yaml, " in line


def recorded_body(recorded: Recorded, path_end: str, *, stream: bool) -> bytes:
    """The body of the recorded request to ``path_end`` that did (or did not) ask for a stream."""
    for interaction in llmcassette.load_cassette(recorded.path).interactions:
        request = interaction.request
        if request.uri.endswith(path_end) and bool(request.parsed_body.get("stream")) == stream:
            return request.content
    raise AssertionError(f"no recorded request to {path_end}")


def _chat(recorded: Recorded, served: ServeProcess, fault: str, **options: Any) -> Outcome:
    """The openai SDK's recorded JSON call, through the server, with a fault chosen for it."""
    sdk = next(sdk for sdk in SDKS if sdk.name == "openai")
    kwargs = json.loads(recorded_body(recorded, "/v1/chat/completions", stream=False))
    with openai.OpenAI(api_key="sk-test-serve", base_url=f"{served.url}/openai/v1", **options) as client:
        completion = client.chat.completions.create(**kwargs, extra_headers={FAULT_HEADER: fault})
    return sdk.outcome([completion])


def test_openai_retries_a_rate_limit_chosen_per_call_then_gets_the_recording(
    recorded: Recorded, served: ServeProcess
) -> None:
    # The header goes with every attempt; `times=1` counts the requests that carry this value.
    outcome = _chat(recorded, served, "rate_limit:times=1,retry_after_ms=20,seed=101", max_retries=2)
    lines = served.lines(2)
    assert outcome == recorded.in_process[("openai", False)]
    assert " -> 429, by fault rate_limit, " in lines[0]
    assert " -> 200, from sdks.yaml, " in lines[1]


def test_openai_sees_a_reset_as_a_connection_error_after_its_retries(
    recorded: Recorded, served: ServeProcess
) -> None:
    with llmcassette.VirtualClock() as clock, pytest.raises(openai.APIConnectionError) as caught:
        _chat(recorded, served, "connect_error", max_retries=1)
    lines = served.lines(2)
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert isinstance(caught.value.__cause__, httpx2.ReadError)
    assert len(clock.sleeps) == 1
    assert all(" -> no response, reset before the response (ConnectError) " in line for line in lines)


def test_openai_times_out_on_a_stalled_server(recorded: Recorded, served: ServeProcess) -> None:
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        _chat(recorded, served, "read_timeout", max_retries=0, timeout=0.3)
    waited_s = time.monotonic() - start
    (line,) = served.lines(1)
    assert 0.3 <= waited_s < 3
    assert " -> no response, silence until the client left before the response " in line


@pytest.mark.parametrize(
    ("fault", "error", "action"),
    [
        ("disconnect:after=2,mode=reset", httpx.ReadError, "reset"),
        ("disconnect:after=2", httpx.RemoteProtocolError, "closed"),
        ("stall:after=2", httpx.ReadTimeout, "silence until the client left"),
    ],
)
def test_httpx_sees_a_broken_stream_on_the_socket(
    recorded: Recorded, served: ServeProcess, fault: str, error: type[Exception], action: str
) -> None:
    body = recorded_body(recorded, "/api/chat", stream=True)
    lines: list[str] = []
    headers = {"content-type": "application/json", FAULT_HEADER: fault}
    with httpx.Client(timeout=0.3) as client, pytest.raises(error):
        with client.stream(
            "POST", f"{served.url}/ollama/api/chat", content=body, headers=headers
        ) as response:
            lines.extend(response.iter_lines())
    (line,) = served.lines(1)
    # Ollama streams NDJSON: the two events before the break reached the client as two lines.
    assert len(lines) == 2 and all(line.startswith('{"model":') for line in lines), lines
    assert f", {action} after " in line


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_runs_until_stopped_with_server_faults_and_says_what_it_served(
    recorded: Recorded, stop: signal.Signals
) -> None:
    port = _free_port()
    server = ServeProcess(
        str(recorded.path), "--port", str(port), "--fault", "rate_limit:times=1", "--no-allow-repeats"
    )
    try:
        assert server.url == f"http://127.0.0.1:{port}"
        body = recorded_body(recorded, "/v1/chat/completions", stream=False)
        headers = {"content-type": "application/json"}
        with httpx.Client(timeout=WAIT_S) as client:
            replies = [
                client.post(f"{server.url}/v1/chat/completions", content=body, headers=headers)
                for _ in range(3)
            ]
        lines = server.lines(3)
    finally:
        rest = server.stop(stop)
    assert server.process.returncode == 0, rest
    # The server's fault answers first, then the recording, which plays once.
    assert [reply.status_code for reply in replies] == [429, 200, 404]
    assert "already been played" in replies[2].json()["error"]["message"]
    assert [line.split(" -> ")[1].split(",")[0] for line in lines] == ["429", "200", "404"]
    assert rest.endswith("llmcassette serve: stopped; 2 answered, 1 unmatched.\n"), rest
    assert any(line.startswith("llmcassette serve: serving ") for line in server.stderr)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["serve", *args])


@pytest.mark.parametrize(
    ("args", "starts"),
    [
        pytest.param(["--fault", "nope"], "invalid value for '--fault': unknown fault 'nope'", id="fault"),
        pytest.param(
            ["--match-on", "method,colour"], "invalid value for '--match-on': `match_on`", id="match-on"
        ),
        pytest.param(
            ["--route", "openai"], "invalid value for '--route': route 'openai' is not NAME=URL", id="route"
        ),
        pytest.param(["--pace", "fast"], "invalid value for '--pace'", id="pace"),
        pytest.param(["--stall-max-s", "0"], "invalid value for '--stall-max-s'", id="stall-max"),
        pytest.param(
            ["--fault", "slow:ttfb_ms=1e308"],
            "invalid value for '--fault': fault spec 'slow:ttfb_ms=1e308': parameter `ttfb_ms`",
            id="fault-range",
        ),
        pytest.param(
            [arg for _ in range(33) for arg in ("--fault", "slow")],
            "invalid value for '--fault': 33 faults were given where at most 32",
            id="fault-count",
        ),
        pytest.param(["--header-timeout-s", "0"], "invalid value for '--header-timeout-s'", id="header"),
        pytest.param(["--idle-timeout-s", "1e9"], "invalid value for '--idle-timeout-s'", id="idle"),
    ],
)
def test_options_used_wrongly_are_one_line_usage_errors(
    recorded: Recorded, args: list[str], starts: str
) -> None:
    result = invoke(str(recorded.path), *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"llmcassette: {starts}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_a_cassette_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2
    assert "missing.yaml' does not exist" in result.stderr
    assert invoke().stderr.startswith("llmcassette: missing argument 'CASSETTES...'.")


def test_a_port_in_use_is_a_one_line_error(recorded: Recorded) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(str(recorded.path), "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"llmcassette: cannot listen on 127.0.0.1:{port} ")
    assert result.stderr.count("\n") == 1


# -- a large request does not stall the server -----------------------------------------------------


def _send_raw(url: str, path: str, body: bytes) -> tuple[float, bytes]:
    """Seconds until the answer's status line to a POST of ``body``, and that line."""
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=WAIT_S) as sock:
        sock.sendall(head + body)  # one call, which lets the other threads run while it sends
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return time.monotonic() - start, answer.partition(b"\r\n")[0]


def _miss_cassette(path: Path, recordings: int) -> Path:
    recorded = [
        {
            "request": {
                "method": "POST",
                "uri": "https://api.openai.com/v1/chat/completions",
                "body": json.dumps({"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]}),
            },
            "response": {"status": {"code": 200}, "body": {"string": '{"ok": true}'}},
        }
        for i in range(recordings)
    ]
    path.write_text(json.dumps({"version": 1, "interactions": recorded}))
    return path


def test_a_50_mb_miss_is_answered_at_once_and_holds_no_other_client_up(tmp_path: Path) -> None:
    # The case: 100 recordings, and a 50 MB request that matches none of them. Answering
    # it took 259 s, and every other client waited as long. Both bounds are relative to what the
    # machine does at the same moment, so that a busy machine (2 cores shared with other work)
    # slows both sides alike: the miss against 100 recordings is timed against the same miss
    # against one (reading and parsing 50 MB is the same work; a cost per recording, as before,
    # made it about 100 times as long), and the other client's latency during the miss against
    # its latency at rest (a server busy with the miss on its event loop holds it up for as long
    # as the miss takes).
    many = _miss_cassette(tmp_path / "many.json", 100)
    one = _miss_cassette(tmp_path / "one.json", 1)
    text = ("a long document to summarise, " * 1_700_000)[:50_000_000]
    big = json.dumps({"model": "m", "messages": [{"role": "user", "content": text}]}).encode()
    small = {"model": "m", "messages": [{"role": "user", "content": "q1"}]}
    limit = ("--max-body-bytes", str(64 * 1024 * 1024))
    server, single = (
        ServeProcess(str(many), "--port", "0", *limit),
        ServeProcess(str(one), "--port", "0", *limit),
    )
    try:
        url = f"{server.url}/v1/chat/completions"
        with httpx.Client(timeout=WAIT_S) as client:

            def latency_s() -> float:
                start = time.monotonic()
                assert client.post(url, json=small).json() == {"ok": True}
                return time.monotonic() - start

            def miss_s(target: str) -> float:
                elapsed_s, status = _send_raw(target, "/v1/chat/completions", big)
                assert status == b"HTTP/1.1 404 Not Found"
                return elapsed_s

            # (ratio of the miss to the one-recording miss, added delay, at-rest latency)
            rounds: list[tuple[float, float, float]] = []
            # Each round times the reference miss, then sends the large request from a thread and
            # small ones meanwhile; the best round counts, as any one of them can be stalled.
            while len(rounds) < 5 and not (rounds and min(r[0] for r in rounds) < 2.0 and _calm(rounds)):
                at_rest_s = max(latency_s() for _ in range(10))
                reference_s = miss_s(single.url)
                answer: list[float] = []
                sender = threading.Thread(target=lambda into=answer: into.append(miss_s(server.url)))
                sender.start()
                delays = [latency_s()]
                while sender.is_alive():
                    delays.append(latency_s())
                sender.join()
                rounds.append((answer[0] / reference_s, max(delays) - at_rest_s, at_rest_s))
    finally:
        server.stop()
        single.stop()
    # 100 recordings cost at most what one costs, give or take the machine's noise.
    assert min(r[0] for r in rounds) < 3.0, rounds
    # The other client waited no longer than its own worst wait at rest (or 50 ms) on top of it.
    assert _calm(rounds), rounds
    print(f"rounds (ratio, added delay s, at rest s): {rounds}")


def _calm(rounds: list[tuple[float, float, float]]) -> bool:
    return any(delay_s < max(0.05, at_rest_s) for _, delay_s, at_rest_s in rounds)
