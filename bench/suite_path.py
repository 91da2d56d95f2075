"""
Benchmarks of the path a test suite runs: each test enters its cassette afresh and plays each
recorded answer once. llmcassette, vcrpy and cassetter are measured side by side in one run,
each against the floor: a bare ``httpx.MockTransport`` serving the same bytes in the same chunks.

    .venv/bin/python bench/suite_path.py             # prints a report, writes bench/SUITE_RESULTS.md
    .venv/bin/python bench/suite_path.py --quick     # one round, smaller files, no file written

vcrpy and cassetter come from the ``bench`` extra (``pip install -e '.[bench]'``); a peer that is
not installed is reported as such and the rest is measured.

Every round writes fresh cassettes (their content differs from round to round), so nothing read
in one round can be reused by the next; llmcassette's derived cache lives in a folder of this
run's own, emptied for a cold start. A warm start is a cassette entered once before, in another
process, with the cache of that process left in place. Correctness is part of the measure: every
body and every chunk boundary replayed is compared with what was recorded, and a peer that
replays a stream as one chunk is reported with the number of chunks it delivered.

Scenarios:

- suite JSON: a cassette of 400 distinct 1 KB JSON answers, matched on method, URL and body,
  entered, each answer played once, left; the time per request;
- suite SSE: 150 streams of 200 SSE events, each event its own chunk, the same way; per stream;
- enter and play the last answer of a cassette of N = 1000 and N = 5000 JSON answers;
- one answer replayed 1000 times (allow_playback_repeats), the path the older bench measures;
- peak memory of a process that replays a 200 MB cassette (RUSAGE_CHILDREN), against the same
  process that only imports;
- in-process recording: what a cassette that records adds to a JSON request and to the first
  event of a stream, against the same client talking to the same local upstream without one.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

import llmcassette
from llmcassette._bodies import store_body
from llmcassette._models import CassetteDocument

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

URL = "https://api.example-llm.test/v1/chat/completions"
# The machine is shared: in-process scenarios count this process's CPU time, which other
# processes on the same cores do not inflate as they do wall time (--wall measures wall time).
CLOCK = time.process_time
CACHE_ENV = "LLMCASSETTE_CACHE_DIR"

try:
    import vcr
except ImportError:  # pragma: no cover - the bench extra is not installed
    vcr = None
try:
    import cassetter
    from cassetter import _core as cassetter_core
except ImportError:  # pragma: no cover
    cassetter = None
    cassetter_core = None


# -- the recorded traffic ---------------------------------------------------------------------


@dataclass
class Exchange:
    """One recorded request and its answer: the body, and the chunks it arrived in."""

    request: dict[str, Any]
    body: bytes
    chunks: list[bytes]
    content_type: str

    @property
    def request_bytes(self) -> bytes:
        return json.dumps(self.request, separators=(",", ":")).encode()


def json_exchange(i: int, salt: str) -> Exchange:
    text = f"All work and no play makes answer {i} dull. " * 12
    answer = {
        "id": f"chatcmpl-{salt}-{i}",
        "object": "chat.completion",
        "created": 1700000000 + i,
        "model": "gpt-bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 140, "total_tokens": 152},
    }
    # json.dumps defaults: the bytes every tool can give back exactly (cassetter re-serialises
    # JSON bodies this way).
    body = json.dumps(answer).encode()
    request = {"model": "gpt-bench", "messages": [{"role": "user", "content": f"question {salt} {i}"}]}
    return Exchange(request, body, [body], "application/json")


def sse_exchange(i: int, salt: str, events: int = 200) -> Exchange:
    chunks = []
    for n in range(events - 1):
        event = {
            "id": f"c-{salt}-{i}",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": f"t{n} "}}],
        }
        chunks.append(b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n")
    chunks.append(b"data: [DONE]\n\n")
    request = {
        "model": "gpt-bench",
        "stream": True,
        "messages": [{"role": "user", "content": f"s {salt} {i}"}],
    }
    return Exchange(request, b"".join(chunks), chunks, "text/event-stream")


# -- cassette writers, one per tool -----------------------------------------------------------


def write_llmcassette(path: Path, exchanges: list[Exchange]) -> None:
    interactions = []
    for ex in exchanges:
        req = store_body(ex.request_bytes, content_type="application/json")
        resp = store_body(ex.body, content_type=ex.content_type)
        request: dict[str, Any] = {
            "method": "POST",
            "uri": URL,
            "headers": {"content-type": ["application/json"]},
        }
        request["parsed_body"] = req.parsed
        if req.json_format:
            request["json_format"] = req.json_format
        response: dict[str, Any] = {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-type": [ex.content_type]},
        }
        if resp.is_parsed:
            response["parsed_body"] = resp.parsed
            if resp.json_format:
                response["json_format"] = resp.json_format
        else:
            response["body"] = {"string": resp.string}
        if len(ex.chunks) > 1:
            response["stream"] = {
                "chunks": [len(c) for c in ex.chunks],
                "offsets_ms": [round(0.5 * n, 1) for n in range(len(ex.chunks))],
            }
        interactions.append({"request": request, "response": response})
    llmcassette.save_cassette(path, CassetteDocument.model_validate({"interactions": interactions}))


def write_vcrpy(path: Path, exchanges: list[Exchange]) -> None:
    interactions = [
        {
            "request": {
                "body": ex.request_bytes.decode(),
                "headers": {"content-type": ["application/json"]},
                "method": "POST",
                "uri": URL,
            },
            "response": {
                "body": {"string": ex.body.decode()},
                "headers": {"content-type": [ex.content_type]},
                "status": {"code": 200, "message": "OK"},
            },
        }
        for ex in exchanges
    ]
    path.write_text(yaml.dump({"interactions": interactions, "version": 1}, Dumper=yaml.CSafeDumper))


def write_cassetter(path: Path, exchanges: list[Exchange]) -> None:
    # What cassetter's own recorder stores: JSON bodies parsed, text bodies as text.
    assert cassetter_core is not None
    tape = cassetter_core.Cassette()
    for ex in exchanges:
        request = cassetter_core.HttpRequest(
            "POST", URL, {"content-type": ["application/json"]}, cassetter_core.Body("json", ex.request)
        )
        if ex.content_type == "application/json":
            body = cassetter_core.Body("json", json.loads(ex.body))
        else:
            body = cassetter_core.Body("text", ex.body.decode())
        response = cassetter_core.HttpResponse(200, {"content-type": [ex.content_type]}, body)
        tape.add_interaction(cassetter_core.HttpInteraction(request, response, "2026-01-01T00:00:00Z"))
    tape.save(str(path))


# -- entering a cassette, one per tool --------------------------------------------------------


def enter_llmcassette(path: Path, repeats: bool = False) -> contextlib.AbstractContextManager[Any]:
    return llmcassette.use_cassette(path, allow_playback_repeats=repeats)


def enter_vcrpy(path: Path, repeats: bool = False) -> contextlib.AbstractContextManager[Any]:
    assert vcr is not None
    recorder = vcr.VCR(record_mode="none", match_on=["method", "uri", "body"])
    return recorder.use_cassette(str(path), allow_playback_repeats=repeats)


def enter_cassetter(path: Path, repeats: bool = False) -> contextlib.AbstractContextManager[Any]:
    assert cassetter is not None
    return cassetter.use_cassette(path, record_mode="none", match_on=["method", "uri", "body"])


@dataclass
class Tool:
    name: str
    write: Callable[[Path, list[Exchange]], None]
    enter: Callable[..., contextlib.AbstractContextManager[Any]]


def tools() -> list[Tool]:
    found = [Tool("llmcassette", write_llmcassette, enter_llmcassette)]
    if vcr is not None:
        found.append(Tool("vcrpy", write_vcrpy, enter_vcrpy))
    if cassetter is not None:
        found.append(Tool("cassetter", write_cassetter, enter_cassetter))
    return found


# -- playing ----------------------------------------------------------------------------------


class _Chunks(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


def floor_client(exchanges: list[Exchange]) -> httpx.Client:
    """The floor: no cassette, the same answers in the same chunks from a MockTransport."""
    by_body = {ex.request_bytes: ex for ex in exchanges}

    def handler(request: httpx.Request) -> httpx.Response:
        ex = by_body[request.read()]
        return httpx.Response(200, headers={"content-type": ex.content_type}, stream=_Chunks(ex.chunks))

    return httpx.Client(transport=httpx.MockTransport(handler))


def play(client: httpx.Client, ex: Exchange) -> list[bytes]:
    """Send ``ex``'s request; the chunks of the answer as the client reads them."""
    with client.stream(
        "POST", URL, content=ex.request_bytes, headers={"content-type": "application/json"}
    ) as r:
        return list(r.iter_bytes())


def check(tool: str, exchanges: list[Exchange], got: list[list[bytes]]) -> str:
    """'ok' when every body and every chunk boundary is as recorded; else what differs."""
    if len(got) != len(exchanges):
        return f"{len(got)} answers for {len(exchanges)} requests"
    one_chunk = 0
    for ex, chunks in zip(exchanges, got, strict=True):
        if b"".join(chunks) != ex.body:
            return f"{tool}: a body differs from the recording"
        if chunks != ex.chunks:
            if len(chunks) == 1 and len(ex.chunks) > 1:
                one_chunk += 1
            else:
                return f"{tool}: chunk boundaries differ ({len(chunks)} chunks, {len(ex.chunks)} recorded)"
    if one_chunk:
        return f"bodies ok, 1 chunk per stream (recorded {len(exchanges[0].chunks)})"
    return "ok"


def run_suite(
    tool: Tool | None, path: Path | None, exchanges: list[Exchange], client: httpx.Client
) -> tuple[float, list[list[bytes]]]:
    """Seconds to enter the cassette, play every exchange once and leave; and what was played."""
    gc.collect()
    start = CLOCK()
    if tool is None:
        got = [play(client, ex) for ex in exchanges]
    else:
        assert path is not None
        with tool.enter(path):
            got = [play(client, ex) for ex in exchanges]
    return CLOCK() - start, got


def fresh_cache(cache_dir: Path) -> None:
    shutil.rmtree(cache_dir, ignore_errors=True)


PRIME = r"""
import json, sys
import httpx, llmcassette
with llmcassette.use_cassette(sys.argv[1]), httpx.Client() as client:
    for body in json.loads(open(sys.argv[2]).read()):
        client.post(sys.argv[3], content=body.encode(), headers={"content-type": "application/json"}).read()
"""


def prime_in_another_process(path: Path, exchanges: list[Exchange]) -> None:
    """Run the same requests under ``path`` in another process, as an earlier run of the suite would."""
    requests = path.with_suffix(".requests.json")
    requests.write_text(json.dumps([ex.request_bytes.decode() for ex in exchanges]))
    subprocess.run([sys.executable, "-c", PRIME, str(path), str(requests), URL], check=True)


@dataclass
class Row:
    scenario: str
    unit: str
    floor: list[float] = field(default_factory=list)
    results: dict[str, list[float]] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def add(self, name: str, value: float, verdict: str | None = None) -> None:
        self.results.setdefault(name, []).append(value)
        if verdict is not None:
            previous = self.checks.get(name, "ok")
            self.checks[name] = verdict if verdict != "ok" else previous


def bench_suite(
    label: str, make: Callable[[int, str], Exchange], count: int, rounds: int, workdir: Path, cache_dir: Path
) -> Row:
    row = Row(label, "per request" if "JSON" in label else "per stream")
    for r in range(rounds):
        salt = f"r{r}{os.getpid()}"
        exchanges = [make(i, salt) for i in range(count)]
        with floor_client(exchanges) as client:
            seconds, got = run_suite(None, None, exchanges, client)
        row.floor.append(seconds / count)
        assert check("floor", exchanges, got) == "ok"
        with httpx.Client() as client:
            for tool in tools():
                path = workdir / f"{label[:9].replace(' ', '-')}-{r}-{tool.name}.yaml"
                tool.write(path, exchanges)
                if tool.name == "llmcassette":
                    fresh_cache(cache_dir)
                    seconds, got = run_suite(tool, path, exchanges, client)
                    row.add("llmcassette (cold)", seconds / count, check(tool.name, exchanges, got))
                    fresh_cache(cache_dir)
                    prime_in_another_process(path, exchanges)
                    seconds, got = run_suite(tool, path, exchanges, client)
                    row.add("llmcassette (warm)", seconds / count, check(tool.name, exchanges, got))
                    continue
                try:
                    seconds, got = run_suite(tool, path, exchanges, client)
                except Exception as exc:  # a peer that fails is reported, not fatal
                    row.checks[tool.name] = f"fails: {type(exc).__name__}: {str(exc)[:80]}"
                    continue
                row.add(tool.name, seconds / count, check(tool.name, exchanges, got))
    return row


def bench_last_of(count: int, rounds: int, workdir: Path, cache_dir: Path) -> Row:
    row = Row(f"enter and play the last of N={count}", "per cassette")
    for r in range(rounds):
        salt = f"n{count}r{r}{os.getpid()}"
        exchanges = [json_exchange(i, salt) for i in range(count)]
        last = exchanges[-1:]
        with floor_client(last) as client:
            seconds, got = run_suite(None, None, last, client)
        row.floor.append(seconds)
        with httpx.Client() as client:
            for tool in tools():
                path = workdir / f"last-{count}-{r}-{tool.name}.yaml"
                tool.write(path, exchanges)
                if tool.name == "llmcassette":
                    fresh_cache(cache_dir)
                    seconds, got = run_suite(tool, path, last, client)
                    row.add("llmcassette (cold)", seconds, check(tool.name, last, got))
                    fresh_cache(cache_dir)
                    prime_in_another_process(path, last)
                    seconds, got = run_suite(tool, path, last, client)
                    row.add("llmcassette (warm)", seconds, check(tool.name, last, got))
                    continue
                try:
                    seconds, got = run_suite(tool, path, last, client)
                except Exception as exc:
                    row.checks[tool.name] = f"fails: {type(exc).__name__}: {str(exc)[:80]}"
                    continue
                row.add(tool.name, seconds, check(tool.name, last, got))
    return row


def bench_repeats(number: int, rounds: int, workdir: Path, cache_dir: Path) -> Row:
    row = Row(f"one answer replayed {number}×", "per request")
    for r in range(rounds):
        exchanges = [json_exchange(0, f"rep{r}")]
        ex = exchanges[0]
        with floor_client(exchanges) as client:
            play(client, ex)
            start = CLOCK()
            for _ in range(number):
                play(client, ex)
            row.floor.append((CLOCK() - start) / number)
        with httpx.Client() as client:
            for tool in tools():
                path = workdir / f"repeat-{r}-{tool.name}.yaml"
                tool.write(path, exchanges)
                try:
                    with tool.enter(path, True):
                        play(client, ex)
                        gc.collect()
                        start = CLOCK()
                        got = [play(client, ex) for _ in range(number)]
                        seconds = CLOCK() - start
                except Exception as exc:
                    row.checks[tool.name] = f"fails: {type(exc).__name__}: {str(exc)[:80]}"
                    continue
                name = "llmcassette (cold)" if tool.name == "llmcassette" else tool.name
                row.add(name, seconds / number, check(tool.name, exchanges * number, got))
    return row


# -- memory -----------------------------------------------------------------------------------

MEMORY_CHILD = r"""
import json, sys
import httpx, llmcassette
URL = sys.argv[4]
path, mode = sys.argv[1], sys.argv[2]
expected = json.loads(open(sys.argv[3]).read())
total = 0
if mode == "replay":
    with llmcassette.use_cassette(path) as cassette, httpx.Client() as client:
        for request, (size, chunk_count) in expected:
            chunks = 0
            with client.stream("POST", URL, content=request.encode(),
                               headers={"content-type": "application/json"}) as r:
                for chunk in r.iter_bytes():
                    total += len(chunk)
                    chunks += 1
            assert chunks == chunk_count, (chunks, chunk_count)
    assert total == sum(size for _, (size, _) in expected)
"""


def big_exchanges(total_mb: int, per_body_mb: float, salt: str, kind: str) -> list[Exchange]:
    """Bodies of about ``per_body_mb`` each: SSE streams, or JSON answers of many small records."""
    count = max(1, int(total_mb / per_body_mb))
    found = []
    for i in range(count):
        request = {"model": "bench", "stream": kind == "sse", "input": f"big {salt} {i}"}
        if kind == "sse":
            chunks = []
            for n in range(int(per_body_mb * 1024 * 1024 / 100)):
                text = f"tok{n:07d} " * 6
                chunks.append(b'data: {"i":%d,"c":"%s"}\n\n' % (i, text.encode()))
            found.append(Exchange(request, b"".join(chunks), chunks, "text/event-stream"))
            continue
        # Records, as a search or a batch answers: many small objects, each a few YAML nodes.
        records = int(per_body_mb * 1024 * 1024 / 190)
        data = [
            {"id": n, "title": f"record {i}-{n}", "text": "lorem ipsum dolor sit amet " * 4, "score": n / 7}
            for n in range(records)
        ]
        body = json.dumps({"object": "list", "data": data, "model": "bench"}).encode()
        found.append(Exchange(request, body, [body], "application/json"))
    return found


# The child is started by a small launcher process: Linux carries a process's peak size across
# exec, so a child started straight from this (large) process would report this process's peak.
LAUNCHER = (
    "import resource, subprocess, sys;"
    "subprocess.run([sys.executable, '-c', *sys.argv[1:]], check=True, stdout=subprocess.DEVNULL);"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def child_peak_kb(args: list[str], script: str = MEMORY_CHILD) -> int:
    """Peak resident size of a child process (RUSAGE_CHILDREN of its launcher), in KiB."""
    out = subprocess.run(
        [sys.executable, "-c", LAUNCHER, script, *args, URL], check=True, capture_output=True, text=True
    )
    return int(out.stdout.split()[-1])


# One SSE stream of argv[1] MB from a local upstream (a thread of the child, writing the same
# events again and again, so that it holds little), read by an httpx client without a cassette
# or recorded in-process into argv[3] (the cassette saved on leaving).
RECORD_MEMORY_CHILD = r"""
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import httpx, llmcassette
size_mb, mode, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
EVENT = b'data: {"c":"' + b"tok " * 20 + b'"}\n\n'
GROUP = EVENT * 100
class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("connection", "close")
        self.end_headers()
        for _ in range(size_mb * 1024 * 1024 // len(GROUP)):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(GROUP), GROUP))
        self.wfile.write(b"0\r\n\r\n")
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_port}/v1/chat/completions"
def read():
    with httpx.Client(timeout=120) as client, client.stream("POST", url, json={"stream": True}) as r:
        return sum(len(chunk) for chunk in r.iter_bytes())
if mode == "record":
    with llmcassette.use_cassette(path, record_mode="all"):
        total = read()
else:
    total = read()
assert total >= size_mb * 1024 * 1024 * 0.99, total
"""


def bench_record_memory(size_mb: int, workdir: Path) -> dict[str, Any]:
    """Peak memory of recording one large stream in-process, against reading it without a cassette."""
    path = workdir / "record-memory.yaml"
    direct_kb = child_peak_kb([str(size_mb), "direct", str(path)], RECORD_MEMORY_CHILD)
    record_kb = child_peak_kb([str(size_mb), "record", str(path)], RECORD_MEMORY_CHILD)
    file_mb = path.stat().st_size / 1024 / 1024
    path.unlink()
    return {
        "size_mb": size_mb,
        "file_mb": file_mb,
        "direct_mb": direct_kb / 1024,
        "record_mb": record_kb / 1024,
    }


def bench_memory(
    total_mb: int, per_body_mb: float, kind: str, workdir: Path, cache_dir: Path
) -> dict[str, Any]:
    exchanges = big_exchanges(total_mb, per_body_mb, "mem", kind)
    path = workdir / f"memory-{kind}.yaml"
    write_llmcassette(path, exchanges)
    expected_path = workdir / f"memory-{kind}-expected.json"
    expected_path.write_text(
        json.dumps([[ex.request_bytes.decode(), [len(ex.body), len(ex.chunks)]] for ex in exchanges])
    )
    file_mb = path.stat().st_size / 1024 / 1024
    bodies = len(exchanges)
    del exchanges
    gc.collect()
    base_kb = child_peak_kb([str(path), "import", str(expected_path)])
    fresh_cache(cache_dir)
    cold_kb = child_peak_kb([str(path), "replay", str(expected_path)])
    warm_kb = child_peak_kb([str(path), "replay", str(expected_path)])
    path.unlink()
    return {
        "file_mb": file_mb,
        "label": f"{bodies} {'SSE streams' if kind == 'sse' else 'JSON bodies of small records'} of {per_body_mb:g} MB",
        "import_mb": base_kb / 1024,
        "cold_mb": cold_kb / 1024,
        "warm_mb": warm_kb / 1024,
    }


# -- recording --------------------------------------------------------------------------------


def bench_recording(requests: int, workdir: Path) -> dict[str, Any]:
    """
    A JSON request and a stream's first event, with and without recording: the median of each,
    and the median of the differences within a round (the two measured back to back, so that a
    machine slowing down for a while slows both), in wall time and in this thread's CPU time
    (which other processes on a shared machine do not inflate).
    """
    from proxy import UPSTREAM, free_port, payload, running  # the proxy bench's upstream

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    kinds = ("json", "first")
    wall: dict[str, list[float]] = {f"{how}_{kind}": [] for how in ("direct", "record") for kind in kinds}
    cpu: dict[str, list[float]] = {key: [] for key in wall}

    def json_request(client: httpx.Client, tag: str) -> tuple[float, float]:
        cpu_start, start = time.thread_time(), time.perf_counter()
        response = client.post(url, json=payload(tag, False))
        response.read()
        elapsed, cpu_s = time.perf_counter() - start, time.thread_time() - cpu_start
        assert response.status_code == 200 and json.loads(response.content)["tag"] == tag
        return elapsed, cpu_s

    def first_event(client: httpx.Client, tag: str) -> tuple[float, float]:
        cpu_start, start = time.thread_time(), time.perf_counter()
        first = None
        chunks = []
        with client.stream("POST", url, json=payload(tag, True)) as response:
            for chunk in response.iter_raw():
                if first is None:
                    first = (time.perf_counter() - start, time.thread_time() - cpu_start)
                chunks.append(chunk)
        assert response.status_code == 200 and b"".join(chunks).endswith(b"data: [DONE]\n\n")
        assert first is not None
        return first

    def measure(how: str, client: httpx.Client, tag: str) -> None:
        for kind, run in (("json", json_request), ("first", first_event)):
            elapsed, cpu_s = run(client, tag)
            wall[f"{how}_{kind}"].append(elapsed)
            cpu[f"{how}_{kind}"].append(cpu_s)

    with running([sys.executable, "-c", UPSTREAM, str(port), "50"], port), httpx.Client() as client:
        for _ in range(20):
            json_request(client, "warm")
            first_event(client, "warm")
        # In turn, one request of each at a time, the order swapped every round: what follows
        # leaving a cassette (its file written and synced) falls on either side alike.
        for round_ in range(requests):

            def direct(round_: int = round_) -> None:
                measure("direct", client, f"d{round_}")

            def recorded(round_: int = round_) -> None:
                path = workdir / f"record-{round_}.yaml"
                with llmcassette.use_cassette(path, record_mode="all") as cassette:
                    measure("record", client, f"r{round_}")
                assert len(cassette.new_interactions) == 2
                assert len(llmcassette.load_cassette(path).interactions) == 2
                path.unlink()

            for step in (direct, recorded) if round_ % 2 else (recorded, direct):
                step()
    out: dict[str, Any] = {key: statistics.median(values) for key, values in wall.items()}
    for kind in kinds:
        pairs = zip(wall[f"record_{kind}"], wall[f"direct_{kind}"], strict=True)
        out[f"added_{kind}"] = statistics.median(r - d for r, d in pairs)
        cpu_pairs = zip(cpu[f"record_{kind}"], cpu[f"direct_{kind}"], strict=True)
        out[f"added_cpu_{kind}"] = statistics.median(r - d for r, d in cpu_pairs)
        out[f"cpu_direct_{kind}"] = statistics.median(cpu[f"direct_{kind}"])
    return out


# -- report -----------------------------------------------------------------------------------


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def render(
    rows: list[Row],
    memory: list[dict[str, Any]],
    recording: dict[str, Any] | None,
    command: str,
    record_memory: dict[str, Any] | None = None,
) -> str:
    names = ["llmcassette (cold)", "llmcassette (warm)", "vcrpy", "cassetter"]
    versions = [f"httpx {httpx.__version__}", f"llmcassette {llmcassette.__version__}"]
    if vcr is not None:
        versions.append(f"vcrpy {vcr.__version__}")
    if cassetter is not None:
        from importlib.metadata import version

        versions.append(f"cassetter {version('cassetter')}")
    else:
        versions.append("cassetter not installed")
    lines = [
        "# Suite-path benchmark",
        "",
        f"Produced by `{command}` on Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {', '.join(versions)}.",
        "Each cell is the median over the rounds, with the spread (lowest to highest) in brackets; the",
        "ratio is to the floor measured in the same round (a MockTransport serving the same chunks).",
        f"Times are {'wall' if CLOCK is time.perf_counter else 'CPU'} time of the measuring process. Cold: nothing cached. Warm: the cassette was entered once before, in another process.",
        "",
        "| scenario | floor | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for row in rows:
        floor = statistics.median(row.floor)
        cells = []
        for name in names:
            values = row.results.get(name)
            verdict = row.checks.get(name, "ok")
            if not values:
                cells.append(verdict if name in row.checks else "n/a")
                continue
            median = statistics.median(values)
            spread = f" [{fmt_time(min(values))}–{fmt_time(max(values))}]" if len(values) > 1 else ""
            ratio = f" **{median / floor:.2f}×**" if row.unit != "per cassette" else ""
            tail = "" if verdict == "ok" else f" ({verdict})"
            cells.append(f"{fmt_time(median)}{ratio}{spread}{tail}")
        lines.append(f"| {row.scenario}, {row.unit} | {fmt_time(floor)} | " + " | ".join(cells) + " |")
    lines += ["", "`ok` everywhere unless a cell says otherwise: every body and chunk boundary checked."]
    if memory:
        lines += [
            "",
            "## Peak memory of replaying a large cassette (llmcassette)",
            "",
            "A child process enters the cassette and plays every stream once, reading every chunk; its",
            "peak resident size (ru_maxrss) is compared with the file's size and with the same child",
            "that only imports.",
            "",
            "| cassette | file | imports only | replay, cold | replay, warm | cold peak / file |",
            "|---|---|---|---|---|---|",
        ]
        for m in memory:
            lines.append(
                f"| {m['label']} | {m['file_mb']:.0f} MB | {m['import_mb']:.0f} MB "
                f"| {m['cold_mb']:.0f} MB | {m['warm_mb']:.0f} MB | {m['cold_mb'] / m['file_mb']:.2f}× |"
            )
    if record_memory:
        m = record_memory
        added = m["record_mb"] - m["direct_mb"]
        lines += [
            "",
            "## Peak memory of recording a large stream in-process (llmcassette)",
            "",
            "A child process reads one SSE stream from a local upstream (a thread of its own), without a",
            "cassette and recorded into one (`record_mode='all'`, saved on leaving); peak resident size.",
            "",
            "| stream | file written | without a cassette | recording | added / stream |",
            "|---|---|---|---|---|",
            f"| {m['size_mb']} MB | {m['file_mb']:.0f} MB | {m['direct_mb']:.0f} MB | {m['record_mb']:.0f} MB "
            f"| {added / m['size_mb']:.2f}× |",
        ]
    if recording:
        lines += [
            "",
            "## In-process recording (httpx client, local upstream in its own process)",
            "",
            "Added: the median of the differences between the two measured back to back in a round.",
            "",
            "| request | without a cassette | recording | added (wall) | CPU without | added (CPU) |",
            "|---|---|---|---|---|---|",
        ]
        for kind, label in (("json", "small JSON"), ("first", "first event of a 50-event stream")):
            lines.append(
                f"| {label} | {recording[f'direct_{kind}'] * 1e3:.2f} ms | {recording[f'record_{kind}'] * 1e3:.2f} ms "
                f"| {recording[f'added_{kind}'] * 1e3:+.3f} ms | {recording[f'cpu_direct_{kind}'] * 1e3:.2f} ms "
                f"| {recording[f'added_cpu_{kind}'] * 1e3:+.3f} ms |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one round, smaller files; no file written")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-kinds", default="sse,json", help="large cassettes to replay: sse, json")
    parser.add_argument("--wall", action="store_true", help="wall time instead of CPU time")
    parser.add_argument("--only", default="", help="comma-separated: json,sse,last,repeat,memory,record")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    only = set(args.only.split(",")) if args.only else {"json", "sse", "last", "repeat", "memory", "record"}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cache_dir = workdir / "cache"
        os.environ[CACHE_ENV] = str(cache_dir)
        rows: list[Row] = []
        if "json" in only:
            rows.append(
                bench_suite(
                    "suite JSON: enter 400 distinct 1 KB answers, play each once",
                    json_exchange,
                    400,
                    rounds,
                    workdir,
                    cache_dir,
                )
            )
        if "sse" in only:
            rows.append(
                bench_suite(
                    "suite SSE: 150 streams of 200 events, each event a chunk",
                    sse_exchange,
                    150,
                    rounds,
                    workdir,
                    cache_dir,
                )
            )
        if "last" in only:
            for count in (1000, 5000):
                rows.append(bench_last_of(count, rounds, workdir, cache_dir))
        if "repeat" in only:
            rows.append(bench_repeats(1000, rounds, workdir, cache_dir))
        memory = []
        record_memory = None
        if "memory" in only:
            total = 20 if args.quick else 200
            for kind in args.memory_kinds.split(","):
                memory.append(bench_memory(total, 2.0, kind, workdir, cache_dir))
            record_memory = bench_record_memory(total, workdir)
        recording = bench_recording(100 if args.quick else 400, workdir) if "record" in only else None
    command = (
        "python bench/suite_path.py"
        + (" --quick" if args.quick else "")
        + (f" --only {args.only}" if args.only else "")
    )
    report = render(rows, memory, recording, command, record_memory)
    print(report)
    if not args.quick and not args.only:
        (Path(__file__).parent / "SUITE_RESULTS.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
