"""
Benchmarks of the out-of-process path: ``llmcassette record`` and ``llmcassette serve`` against
direct access to the same local upstream and against mitmproxy in reverse-proxy mode, in one run.

    .venv/bin/python bench/proxy.py            # prints a report and writes bench/PROXY_RESULTS.md
    .venv/bin/python bench/proxy.py --quick    # fewer requests, no file written

Every server runs in its own process on 127.0.0.1 (the upstream too), so none shares the client's
interpreter. The client is one ``httpx.Client`` with keep-alive per target. Measured per target:

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
from dataclasses import dataclass
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


@dataclass
class Result:
    name: str
    latency_ms: float
    first_event_ms: float
    paced_first_event_ms: float
    concurrent_s: float
    streams_ok: int


def measure(name: str, base_url: str, *, requests: int, expected: dict[str, bytes]) -> Result:
    url = base_url + "/v1/chat/completions"
    with httpx.Client(timeout=30) as client:
        for _ in range(20):  # warm up the connection and every server's code paths
            client.post(url, json=payload("warm", False)).raise_for_status()
            with client.stream("POST", url, json=payload("warm", True)) as response:
                response.read()
        latencies = []
        for _ in range(requests):
            start = time.perf_counter()
            client.post(url, json=payload("one", False)).raise_for_status()
            latencies.append(time.perf_counter() - start)
        first_events = [first_event_s(client, url, 0) for _ in range(requests)]
        paced = [first_event_s(client, url, PACED_GAP_MS) for _ in range(max(20, requests // 10))]
    concurrent_s, ok = asyncio.run(concurrent_streams(url, expected))
    return Result(
        name,
        statistics.median(latencies) * 1000,
        statistics.median(first_events) * 1000,
        statistics.median(paced) * 1000,
        concurrent_s,
        ok,
    )


def first_event_s(client: httpx.Client, url: str, gap_ms: float) -> float:
    """Seconds from sending a streamed request to its first bytes of body; reads it to the end."""
    start = time.perf_counter()
    first_s = None
    with client.stream("POST", url, json=payload("first", True, gap_ms)) as response:
        for _chunk in response.iter_raw():
            if first_s is None:
                first_s = time.perf_counter() - start
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
        f"{os.cpu_count()} CPUs. Every server is its own process on 127.0.0.1; medians of the run.",
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
        f"sends one event every {PACED_GAP_MS:g} ms, as a fast model does. `serve` is measured after",
        "the upstream has stopped, answering from the cassette `record` wrote.",
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
    with tempfile.TemporaryDirectory() as tmp:
        cassette = Path(tmp) / "bench.yaml"
        up_port = free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        with running([PYTHON, "-c", UPSTREAM, str(up_port), str(EVENTS)], up_port):
            expected = expected_streams(upstream)
            results = [measure("direct", upstream, requests=requests, expected=expected)]
            port = free_port()
            record = [PYTHON, "-m", "llmcassette", "record", "-o", str(cassette), "--upstream", upstream]
            with running([*record, "--port", str(port), "--record-mode", "all"], port):
                results.append(
                    measure(
                        "llmcassette record", f"http://127.0.0.1:{port}", requests=requests, expected=expected
                    )
                )
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
                with running([*mitm, "--listen-port", str(port), "-q"], port):
                    results.append(
                        measure(
                            "mitmproxy (reverse)",
                            f"http://127.0.0.1:{port}",
                            requests=requests,
                            expected=expected,
                        )
                    )
            else:
                notes.append(
                    f"mitmproxy was not measured: {MITMDUMP.relative_to(ROOT)} is missing (run `make bench`)."
                )
        # The upstream is gone: serve answers from what record wrote.
        port = free_port()
        serve = [PYTHON, "-m", "llmcassette", "serve", str(cassette), "--port", str(port)]
        with running(serve, port):
            results.append(
                measure("llmcassette serve", f"http://127.0.0.1:{port}", requests=requests, expected=expected)
            )
    command = "python bench/proxy.py" + (" --quick" if args.quick else "")
    report = render(results, results[0], command, notes)
    print(report)
    if not args.quick:
        (Path(__file__).parent / "PROXY_RESULTS.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
