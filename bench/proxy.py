"""
Benchmarks of the out-of-process path: ``llmcassette record`` and ``llmcassette serve`` against
direct access to the same local upstream and against mitmproxy in reverse-proxy mode, in one run.

    .venv/bin/python bench/proxy.py            # prints a report and writes bench/PROXY_RESULTS.md
    .venv/bin/python bench/proxy.py --quick    # fewer requests, no file written

Every server runs in its own process on 127.0.0.1 (the upstream too), so none shares the client's
interpreter, and all run at once: the targets are measured in turn, round after round, so that a
machine that slows down or speeds up during the run does so for every target alike. The client is
one ``httpx.Client`` with keep-alive per target. Measured per target:

- added latency: median time of a small JSON request, minus the direct median;
- time to first event: from sending a streamed request to receiving its first SSE event
  (the upstream sends it at once, then 49 more), median;
- throughput: 100 concurrent streamed requests of 50 events each, all checked byte for byte.

mitmproxy is looked up as ``.venv-mitm/bin/mitmdump`` (``make bench`` creates that environment:
mitmproxy pins versions of shared libraries that the project's own environment does not use).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MITMDUMP = ROOT / ".venv-mitm" / "bin" / "mitmdump"
EVENTS = 50
CONCURRENT = 100
# A paced stream sends an event every 2 ms, as a fast model does; the burst sends all at once.
PACED_GAP_MS = 2.0

# The upstream: a small JSON answer, and SSE streams whose first event leaves at once.
UPSTREAM = r"""
import asyncio, json, socket, sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

EVENTS = int(sys.argv[2])

async def chat(request):
    body = await request.json()
    tag = body.get("tag", "")
    if not body.get("stream"):
        payload = {"id": "cmpl-1", "object": "chat.completion", "tag": tag,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]}
        return Response(json.dumps(payload), media_type="application/json")

    gap_s = float(body.get("gap_ms", 0)) / 1000

    async def events():
        for i in range(EVENTS):
            if i and gap_s:
                await asyncio.sleep(gap_s)
            chunk = {"object": "chat.completion.chunk", "tag": tag,
                     "choices": [{"index": 0, "delta": {"content": f"tok{i} "}}]}
            yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")

app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
# A socket made with IPPROTO_TCP, so that asyncio turns Nagle's algorithm off on its connections,
# as production servers do; uvicorn's own bind leaves it on, which holds small writes back.
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
config = uvicorn.Config(app, log_level="warning", http="httptools", loop="asyncio", lifespan="off")
uvicorn.Server(config).run(sockets=[sock])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout_s} s")


@contextlib.contextmanager
def running(args: list[str], port: int) -> Iterator[None]:
    """Run a server process until the block ends; stop it by its PID with SIGINT, then wait."""
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def payload(tag: str, stream: bool, gap_ms: float = 0) -> dict[str, object]:
    return {
        "model": "bench",
        "messages": [{"role": "user", "content": "hello"}],
        "tag": tag,
        "stream": stream,
        "gap_ms": gap_ms,
    }


ROUNDS = 10


@dataclass
class Samples:
    """One target's samples, gathered over the rounds."""

    name: str
    url: str
    client: httpx.Client
    latencies: list[float] = field(default_factory=list)
    first_events: list[float] = field(default_factory=list)
    paced: list[float] = field(default_factory=list)


@dataclass
class Result:
    name: str
    latency_ms: float
    first_event_ms: float
    paced_first_event_ms: float
    concurrent_s: float
    streams_ok: int


def warm_up(target: Samples) -> None:
    """Open the connection and run every server's code paths before anything is timed."""
    for _ in range(20):
        target.client.post(target.url, json=payload("warm", False)).raise_for_status()
        with target.client.stream("POST", target.url, json=payload("warm", True)) as response:
            response.read()


def measure_round(target: Samples, requests: int) -> None:
    client, url = target.client, target.url
    for _ in range(requests):
        start = time.perf_counter()
        client.post(url, json=payload("one", False)).raise_for_status()
        target.latencies.append(time.perf_counter() - start)
    target.first_events += [first_event_s(client, url, 0) for _ in range(requests)]
    target.paced += [first_event_s(client, url, PACED_GAP_MS) for _ in range(max(2, requests // 10))]


def measure(bases: dict[str, str], *, requests: int, expected: dict[str, bytes]) -> list[Result]:
    """Every target in turn, ``ROUNDS`` times; then 100 concurrent streams through each."""
    targets = [
        Samples(name, base + "/v1/chat/completions", httpx.Client(timeout=30)) for name, base in bases.items()
    ]
    try:
        for target in targets:
            warm_up(target)
        for _ in range(ROUNDS):
            for target in targets:
                measure_round(target, max(1, requests // ROUNDS))
    finally:
        for target in targets:
            target.client.close()
    results = []
    for target in targets:
        concurrent_s, ok = asyncio.run(concurrent_streams(target.url, expected))
        results.append(
            Result(
                target.name,
                statistics.median(target.latencies) * 1000,
                statistics.median(target.first_events) * 1000,
                statistics.median(target.paced) * 1000,
                concurrent_s,
                ok,
            )
        )
    return results


def first_event_s(client: httpx.Client, url: str, gap_ms: float) -> float:
    """Seconds from sending a streamed request to its first bytes of body; reads it to the end."""
    start = time.perf_counter()
    first_s = None
    with client.stream("POST", url, json=payload("first", True, gap_ms)) as response:
        for _chunk in response.iter_raw():
            if first_s is None:
                first_s = time.perf_counter() - start
        # Checked after the timing: a 404 from serve's miss, say, must not pass for a stream.
        response.raise_for_status()
    assert first_s is not None
    return first_s


async def concurrent_streams(url: str, expected: dict[str, bytes]) -> tuple[float, int]:
    limits = httpx.Limits(max_connections=CONCURRENT, max_keepalive_connections=CONCURRENT)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(tag: str) -> bool:
            async with client.stream("POST", url, json=payload(tag, True)) as response:
                body = await response.aread()
            return body == expected[tag]

        start = time.perf_counter()
        results = await asyncio.gather(*(one(tag) for tag in expected))
        return time.perf_counter() - start, sum(results)


def record_command(cassette: Path, upstream: str) -> list[str]:
    return [
        PYTHON,
        "-m",
        "llmcassette",
        "record",
        "-o",
        str(cassette),
        "--upstream",
        upstream,
        "--record-mode",
        "all",
    ]


def prime(url: str, expected: dict[str, bytes]) -> None:
    """Send every distinct request of the run once, so that serve can answer them all."""
    with httpx.Client(timeout=30) as client:
        for body in (
            payload("warm", False),
            payload("warm", True),
            payload("one", False),
            payload("first", True, 0),
            payload("first", True, PACED_GAP_MS),
            *(payload(tag, True) for tag in expected),
        ):
            with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
                response.read()


def expected_streams(upstream_url: str) -> dict[str, bytes]:
    tags = [f"stream-{i}" for i in range(CONCURRENT)]
    with httpx.Client(timeout=30) as client:
        out = {}
        for tag in tags:
            response = client.post(upstream_url + "/v1/chat/completions", json=payload(tag, True))
            response.raise_for_status()
            out[tag] = response.content
        return out


def render(results: list[Result], direct: Result, command: str, notes: list[str]) -> str:
    lines = [
        "# Proxy and serve benchmark",
        "",
        f"Produced by `{command}` on Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs. Every server is its own process on 127.0.0.1, and all run at once:",
        f"the paths are measured in turn over {ROUNDS} rounds; the figures are medians of all rounds.",
        "",
        "| path | request latency (added) | first SSE event, burst (added) "
        f"| first SSE event, paced (added) | {CONCURRENT} concurrent streams | streams intact |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.latency_ms:.3f} ms ({r.latency_ms - direct.latency_ms:+.3f}) "
            f"| {r.first_event_ms:.3f} ms ({r.first_event_ms - direct.first_event_ms:+.3f}) "
            f"| {r.paced_first_event_ms:.3f} ms ({r.paced_first_event_ms - direct.paced_first_event_ms:+.3f}) "
            f"| {r.concurrent_s * 1000:.0f} ms | {r.streams_ok}/{CONCURRENT} |"
        )
    lines += [
        "",
        f"A burst stream sends its {EVENTS} events at once: the proxy relays the rest while the client",
        "reads the first, so on a small machine the processes compete for the CPUs. A paced stream",
        f"sends one event every {PACED_GAP_MS:g} ms, as a fast model does. `serve` answers from a",
        "cassette that `record` wrote before the run, with every request the run sends.",
        *notes,
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests; do not write PROXY_RESULTS.md")
    args = parser.parse_args()
    requests = 100 if args.quick else 1000
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        up_port = free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        stack.enter_context(running([PYTHON, "-c", UPSTREAM, str(up_port), str(EVENTS)], up_port))
        expected = expected_streams(upstream)
        # serve answers from a cassette that record wrote beforehand, with every request of the run.
        served = Path(tmp) / "served.yaml"
        port = free_port()
        with running([*record_command(served, upstream), "--port", str(port)], port):
            prime(f"http://127.0.0.1:{port}", expected)
        bases = {"direct": upstream}
        port = free_port()
        stack.enter_context(
            running([*record_command(Path(tmp) / "bench.yaml", upstream), "--port", str(port)], port)
        )
        bases["llmcassette record"] = f"http://127.0.0.1:{port}"
        if MITMDUMP.exists():
            port = free_port()
            # Streaming on (`stream_large_bodies`), as anyone recording LLM streams sets it:
            # by default mitmproxy holds a whole response back before relaying it.
            mitm = [
                str(MITMDUMP),
                "--mode",
                f"reverse:{upstream}",
                "--listen-host",
                "127.0.0.1",
                "--set",
                "stream_large_bodies=1",
            ]
            stack.enter_context(running([*mitm, "--listen-port", str(port), "-q"], port))
            bases["mitmproxy (reverse)"] = f"http://127.0.0.1:{port}"
        else:
            notes.append(
                f"mitmproxy was not measured: {MITMDUMP.relative_to(ROOT)} is missing (run `make bench`)."
            )
        port = free_port()
        stack.enter_context(
            running([PYTHON, "-m", "llmcassette", "serve", str(served), "--port", str(port)], port)
        )
        bases["llmcassette serve"] = f"http://127.0.0.1:{port}"
        results = measure(bases, requests=requests, expected=expected)
        # What competition for the CPUs alone costs: direct access again, beside a busy process.
        busy = subprocess.Popen([PYTHON, "-c", "while True: pass"])
        try:
            crowded = Samples("direct", upstream + "/v1/chat/completions", httpx.Client(timeout=30))
            with crowded.client:
                warm_up(crowded)
                measure_round(crowded, requests // 2)
        finally:
            busy.kill()
            busy.wait()
        crowded_ms = statistics.median(crowded.first_events) * 1000
        notes += [
            "",
            f"Beside one CPU-bound process, direct access itself takes {crowded_ms:.3f} ms to the first",
            f"burst event ({crowded_ms - results[0].first_event_ms:+.3f}): on {os.cpu_count()} CPUs that is "
            "what a third busy process (a proxy relaying",
            "the rest of the burst) costs the client, whichever proxy it is.",
        ]
    command = "python bench/proxy.py" + (" --quick" if args.quick else "")
    report = render(results, results[0], command, notes)
    print(report)
    if not args.quick:
        (Path(__file__).parent / "PROXY_RESULTS.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
