"""
Replay through the doors of requests and aiohttp, each against the same library answering from a
local stub of its own kind, measured side by side in one run.

    .venv/bin/python bench/adapters.py           # prints a report and writes bench/ADAPTERS_RESULTS.md
    .venv/bin/python bench/adapters.py --quick   # fewer repetitions, no file written

On the path a suite runs: a cassette of N distinct interactions is entered once and each answer is
played once. Two answers: a 1 KB JSON body, and a stream of 200 SSE events recorded one event per
chunk, read chunk by chunk. The stubs serve the same bytes:

- requests: a transport adapter mounted on the session (``requests.adapters.BaseAdapter``), which
  hands over a urllib3 response over the body in memory: no socket, no HTTP parsing;
- aiohttp: ``aiohttp.test_utils.TestServer`` on loopback, aiohttp's own way of testing a client.

Every replayed body is checked against the recording, and every stream's chunks against the
recorded boundaries.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import requests
from aiohttp import web
from aiohttp.test_utils import TestServer

import llmcassette
from llmcassette._models import CassetteDocument
from llmcassette._storage import save_cassette

HOST = "http://127.0.0.1:9"
EVENTS = [f"data: {json.dumps({'i': i, 'delta': 'word ' * 5})}\n\n".encode() for i in range(200)]
SSE_BODY = b"".join(EVENTS)
JSON_BODY = json.dumps({"answer": "x" * 950}).encode()


def _interaction(path: str, body: bytes, *, stream: bool) -> dict[str, Any]:
    content_type = "text/event-stream" if stream else "application/json"
    response: dict[str, Any] = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"content-type": [content_type]},
        "body": {"string": body.decode()},
    }
    if stream:
        response["stream"] = {"chunks": [len(e) for e in EVENTS]}
    return {"request": {"method": "GET", "uri": HOST + path, "headers": {}}, "response": response}


def write_cassette(folder: Path, count: int, *, stream: bool) -> Path:
    body = SSE_BODY if stream else JSON_BODY
    interactions = [_interaction(f"/item/{i}", body, stream=stream) for i in range(count)]
    path = folder / f"{'sse' if stream else 'json'}-{count}.yaml"
    save_cassette(path, CassetteDocument.model_validate({"interactions": interactions}))
    return path


# -- requests ----------------------------------------------------------------------------------


class _StubAdapter(requests.adapters.BaseAdapter):
    def __init__(self, body: bytes, stream: bool) -> None:
        super().__init__()
        self._body, self._stream = body, stream

    def send(self, request: Any, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        content_type = "text/event-stream" if self._stream else "application/json"
        response.headers = requests.structures.CaseInsensitiveDict({"content-type": content_type})
        response.raw = _StubRaw([*EVENTS] if self._stream else [self._body])
        response.url, response.request = request.url, request
        return response

    def close(self) -> None:
        pass


class _StubRaw:
    """The least a mounted adapter's raw body can be: the answer's chunks, handed over as they are."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def stream(self, chunk_size: int | None = None, decode_content: bool = True) -> Any:
        yield from self._chunks

    def read(self, amt: int | None = None, decode_content: bool = True) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def _requests_reads(session: requests.Session, count: int, stream: bool) -> list[list[bytes]]:
    got = []
    for i in range(count):
        with session.get(f"{HOST}/item/{i}", stream=stream) as response:
            got.append(list(response.iter_content(chunk_size=None)) if stream else [response.content])
    return got


def requests_stub(count: int, stream: bool) -> list[list[bytes]]:
    with requests.Session() as session:
        session.mount(HOST, _StubAdapter(SSE_BODY if stream else JSON_BODY, stream))
        return _requests_reads(session, count, stream)


def requests_replay(path: Path, count: int, stream: bool) -> list[list[bytes]]:
    with llmcassette.use_cassette(path), requests.Session() as session:
        return _requests_reads(session, count, stream)


# -- aiohttp -----------------------------------------------------------------------------------


async def _aiohttp_reads(base: str, count: int, stream: bool) -> list[list[bytes]]:
    got = []
    async with aiohttp.ClientSession() as session:
        for i in range(count):
            async with session.get(f"{base}/item/{i}") as response:
                if stream:
                    got.append([chunk async for chunk in response.content.iter_any()])
                else:
                    got.append([await response.read()])
    return got


async def _aiohttp_stub(count: int, stream: bool) -> list[list[bytes]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        if not stream:
            return web.Response(body=JSON_BODY, content_type="application/json")
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in EVENTS:
            await response.write(event)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/item/{i}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        return await _aiohttp_reads(str(server.make_url("")).rstrip("/"), count, stream)
    finally:
        await server.close()


def aiohttp_stub(count: int, stream: bool) -> list[list[bytes]]:
    return asyncio.run(_aiohttp_stub(count, stream))


def aiohttp_replay(path: Path, count: int, stream: bool) -> list[list[bytes]]:
    with llmcassette.use_cassette(path):
        return asyncio.run(_aiohttp_reads(HOST, count, stream))


# -- measuring ---------------------------------------------------------------------------------


def _check_replay(got: list[list[bytes]], stream: bool) -> None:
    for chunks in got:
        if stream:
            assert chunks == EVENTS, "a replayed stream lost its recorded chunk boundaries"
        else:
            assert b"".join(chunks) == JSON_BODY, "a replayed body differs from the recording"


def _medians_s(run: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this process (which a busy machine does not inflate)."""
    wall, cpu = [], []
    for _ in range(repeats):
        cpu_start, start = time.process_time(), time.perf_counter()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions; no results file")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for stream, count in ((False, 400), (True, 50)):
            path = write_cassette(Path(folder), count, stream=stream)
            label = f"{count} {'SSE streams of 200 events' if stream else '1 KB JSON answers'}"
            for library, stub, replay in (
                ("requests", requests_stub, requests_replay),
                ("aiohttp", aiohttp_stub, aiohttp_replay),
            ):
                _check_replay(replay(path, count, stream), stream)
                # In turn, so that a machine slowing down for a while slows both alike.
                stubs, replays = [], []
                for _ in range(repeats):
                    stubs.append(_medians_s(functools.partial(stub, count, stream), 1))
                    replays.append(_medians_s(functools.partial(replay, path, count, stream), 1))
                stub_s = [statistics.median(t[i] for t in stubs) / count for i in (0, 1)]
                replay_s = [statistics.median(t[i] for t in replays) / count for i in (0, 1)]
                rows.append((library, label, stub_s, replay_s))
    lines = [
        "| library | scenario | own stub, per answer (wall / CPU) | llmcassette replay, per answer (wall / CPU) "
        "| ratio, wall | ratio, CPU |",
        "|---|---|---|---|---|---|",
    ]
    for library, label, stub, replay in rows:
        lines.append(
            f"| {library} | {label} | {stub[0] * 1e6:.0f} µs / {stub[1] * 1e6:.0f} µs "
            f"| {replay[0] * 1e6:.0f} µs / {replay[1] * 1e6:.0f} µs "
            f"| {replay[0] / stub[0]:.2f}× | {replay[1] / stub[1]:.2f}× |"
        )
    report = "\n".join(lines)
    print(report)
    if not args.quick:
        out = Path(__file__).with_name("ADAPTERS_RESULTS.md")
        header = (
            "# Replay through the requests and aiohttp doors\n\n"
            f"Produced by `python bench/adapters.py` on Python {sys.version.split()[0]}, requests "
            f"{requests.__version__}, aiohttp {aiohttp.__version__}, {os.cpu_count()} CPUs (load average "
            f"{os.getloadavg()[0]:.1f} at the end): medians of {repeats} runs of each, stub and replay in "
            "turn. CPU time is this process's (the aiohttp stub's test server runs in it too).\n\n"
        )
        out.write_text(header + report + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
