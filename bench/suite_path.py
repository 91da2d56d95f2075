"""
Benchmarks of the path a test suite runs: each test enters its cassette afresh and plays each
recorded answer once. llmcassette, vcrpy and cassetter are measured side by side in one run,
each against the floor: a bare ``httpx.MockTransport`` serving the same bytes in the same chunks.

    .venv/bin/python bench/suite_path.py                 # prints a report, writes bench/SUITE_RESULTS.md
    .venv/bin/python bench/suite_path.py --quick         # one round, no N=5000, no file written
    .venv/bin/python bench/suite_path.py --instructions  # and the suites counted in instructions

vcrpy and cassetter come from the ``bench`` extra (``pip install -e '.[bench]'``); a peer that is
not installed is reported as such and the rest is measured, and a peer that fails is reported in
its cell.

How it measures. Every measure runs in a process of its own (``bench/suite_child.py``), as the
suite of a project that uses one tool does: no tool runs on a heap, or in garbage-collector
generations, that another tool or an earlier measure left behind. The child first plays a small
cassette of its own with the same tool, so that imports and first-use set-up are not counted,
then enters the measured cassette, plays, leaves, and reports its CPU time and the verdict of
comparing every body and every chunk boundary it played with the recording (a peer that replays a
stream as one chunk is reported with the number of chunks it delivered). In a round the floor is
measured between the tools (floor, tool, floor, tool, ..., floor), and a tool's ratio in that
round is its time over the mean of the two floors beside it, so that a machine busier for a while
weighs on both sides of a ratio alike. A cell gives the median of the rounds' times and the median
of their ratios.

Every round writes fresh cassettes (their content differs from round to round). Cold: nothing
cached (llmcassette's replay cache in an empty folder of the child's own). Warm: the cassette
was entered once before, in another process, with the cache of that process left in place.

Scenarios:

- suite JSON: a cassette of 400 distinct 1 KB JSON answers, matched on method, URL and body,
  entered, each answer played once, left; the time per request;
- the same answers with the thirteen headers an OpenAI chat completion comes with (date, request
  id, processing time, rate-limit counts, ...), several of them different in every answer, as in a
  cassette recorded from a provider (the first suite's answers carry only their content type);
- suite SSE: 150 streams of 200 SSE events, each event its own chunk, the same way; per stream;
- enter and play the last answer of a cassette of N = 1000 and N = 5000 JSON answers;
- one answer replayed 1000 times (allow_playback_repeats), the path the older bench measures;
- peak memory of a process that replays a 200 MB cassette (RUSAGE_CHILDREN), against the same
  process that only imports;
- in-process recording: what a cassette that records adds to a JSON request and to the first
  event of a stream, against the same client talking to the same local upstream without one.

``--instructions`` also runs the three suites' children once more under valgrind's callgrind
(PYTHONHASHSEED=0), each a second time with ``--setup-only``, and reports the instructions of the
measure (the difference) per request and as ratios to the floor's: counts the machine's load does
not move. Without valgrind on PATH it says so and skips them. vcrpy's JSON suite (23 ms a
request) takes over ten minutes under valgrind: ``--peers cassetter`` leaves vcrpy out.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import yaml
from suite_child import MAKERS, REPEATS, URL, WARMUP_COUNT, Exchange, played

import llmcassette
from llmcassette._bodies import store_body
from llmcassette._models import CassetteDocument

CHILD = Path(__file__).with_name("suite_child.py")
CACHE_ENV = "LLMCASSETTE_CACHE_DIR"
# What a child reports that the tables show: its CPU time, which other processes on the same
# cores do not inflate as they do wall time (--wall shows wall time).
TIME_KEY = "cpu_s"


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


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
            "headers": ex.header_map,
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
                "headers": ex.header_map,
                "status": {"code": 200, "message": "OK"},
            },
        }
        for ex in exchanges
    ]
    path.write_text(yaml.dump({"interactions": interactions, "version": 1}, Dumper=yaml.CSafeDumper))


def write_cassetter(path: Path, exchanges: list[Exchange]) -> None:
    # What cassetter's own recorder stores: JSON bodies parsed, text bodies as text.
    from cassetter import _core as cassetter_core  # type: ignore[import-not-found, unused-ignore]

    tape = cassetter_core.Cassette()
    for ex in exchanges:
        request = cassetter_core.HttpRequest(
            "POST", URL, {"content-type": ["application/json"]}, cassetter_core.Body("json", ex.request)
        )
        if ex.content_type == "application/json":
            body = cassetter_core.Body("json", json.loads(ex.body))
        else:
            body = cassetter_core.Body("text", ex.body.decode())
        response = cassetter_core.HttpResponse(200, ex.header_map, body)
        tape.add_interaction(cassetter_core.HttpInteraction(request, response, "2026-01-01T00:00:00Z"))
    tape.save(str(path))


@dataclass
class Tool:
    name: str  # as suite_child.py names it
    write: Callable[[Path, list[Exchange]], None]


#: The peers measured (``--peers``); each only if it is installed.
PEERS = ["vcrpy", "cassetter"]


def tools() -> list[Tool]:
    found = [Tool("llmcassette", write_llmcassette)]
    if "vcrpy" in PEERS and installed("vcr"):
        found.append(Tool("vcrpy", write_vcrpy))
    if "cassetter" in PEERS and installed("cassetter"):
        found.append(Tool("cassetter", write_cassetter))
    return found


@dataclass
class Variant:
    """A column of the report: a tool, and for llmcassette whether its cache was primed first."""

    label: str
    tool: Tool
    warm: bool = False


def variants(how: str) -> list[Variant]:
    found = []
    for tool in tools():
        if tool.name != "llmcassette":
            found.append(Variant(tool.name, tool))
            continue
        found.append(Variant("llmcassette (cold)", tool))
        if how != "repeat":  # (repeats are timed after entering: the cache makes no difference)
            found.append(Variant("llmcassette (warm)", tool, warm=True))
    return found


# -- measuring, each in a child of its own ----------------------------------------------------


@dataclass
class Scenario:
    label: str
    unit: str
    kind: str  # "json", "json-headers" or "sse": the answers (suite_child.MAKERS)
    count: int  # answers in the cassette
    how: str  # what the child plays and times (its --play): "all", "last" or "repeat"

    @property
    def per(self) -> int:
        """What a child's time is divided by for the report's unit."""
        return {"all": self.count, "last": 1, "repeat": REPEATS}[self.how]


@dataclass
class RoundFiles:
    """A round's cassettes, one measured and one to warm up with per tool, and its cache folders."""

    salt: str
    cassettes: dict[str, tuple[Path, Path]]
    folder: Path
    warm_cache: Path

    def cold_cache(self) -> Path:
        """An empty cache folder for one cold child: nothing any run before it cached."""
        return Path(tempfile.mkdtemp(prefix=f"{self.salt}-cache-cold-", dir=self.folder))


class ChildFailed(Exception):
    pass


def prepare_round(scenario: Scenario, salt: str, workdir: Path) -> RoundFiles:
    make = MAKERS[scenario.kind]
    written = [make(i, salt) for i in range(1 if scenario.how == "repeat" else scenario.count)]
    warmups = [make(i, f"{salt}-warmup") for i in range(WARMUP_COUNT)]
    cassettes = {}
    for tool in tools():
        cassette = workdir / f"{salt}-{tool.name}.yaml"
        warmup = workdir / f"{salt}-{tool.name}-warmup.yaml"
        tool.write(cassette, written)
        tool.write(warmup, warmups)
        cassettes[tool.name] = (cassette, warmup)
    files = RoundFiles(salt, cassettes, workdir, workdir / f"{salt}-cache-warm")
    if scenario.how != "repeat":
        # The warm child finds both its cassettes as an earlier run of its suite left them.
        cassette, warmup = cassettes["llmcassette"]
        prime_in_another_process(
            files.warm_cache,
            [
                (cassette, played(scenario.kind, scenario.count, salt, scenario.how)),
                (warmup, played(scenario.kind, WARMUP_COUNT, f"{salt}-warmup", scenario.how)),
            ],
        )
    return files


def fresh_cache(cache_dir: Path) -> None:
    shutil.rmtree(cache_dir, ignore_errors=True)


PRIME = r"""
import json, sys
import httpx, llmcassette
url, pairs = sys.argv[1], sys.argv[2:]
for path, requests in zip(pairs[::2], pairs[1::2]):
    with llmcassette.use_cassette(path), httpx.Client() as client:
        for body in json.loads(open(requests).read()):
            client.post(url, content=body.encode(), headers={"content-type": "application/json"}).read()
"""


def prime_in_another_process(cache: Path, plays: list[tuple[Path, list[Exchange]]]) -> None:
    """Play each cassette's requests in another process, as an earlier run of the suite would."""
    args = []
    for path, exchanges in plays:
        requests = path.with_suffix(".requests.json")
        requests.write_text(json.dumps([ex.request_bytes.decode() for ex in exchanges]))
        args += [str(path), str(requests)]
    env = {**os.environ, CACHE_ENV: str(cache)}
    subprocess.run([sys.executable, "-c", PRIME, URL, *args], check=True, env=env)


def run_child(
    tool: str,
    scenario: Scenario,
    files: RoundFiles,
    *,
    warm: bool = False,
    setup_only: bool = False,
    prefix: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What one child reports; ChildFailed with the first line of its error if it fails."""
    # The floor's child uses no cassette: it is given llmcassette's, and opens neither.
    cassette, warmup = files.cassettes["llmcassette" if tool == "floor" else tool]
    command = [
        *prefix,
        sys.executable,
        str(CHILD),
        tool,
        scenario.kind,
        str(scenario.count),
        files.salt,
        str(cassette),
        str(warmup),
        "--play",
        scenario.how,
        *(["--setup-only"] if setup_only else []),
    ]
    cache = files.warm_cache if warm else files.cold_cache()
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **(env or {}), CACHE_ENV: str(cache)}
    )
    if done.returncode:
        try:
            error = json.loads(done.stdout)["error"]
        except (ValueError, KeyError):  # it did not get as far as the measure
            error = (done.stderr.strip() or f"exit status {done.returncode}").splitlines()[-1]
        # (the round's folder is a temporary one: the file's name says enough)
        raise ChildFailed(error.splitlines()[0].replace(f"{files.folder}{os.sep}", ""))
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@dataclass
class Row:
    scenario: str
    unit: str
    floor: list[float] = field(default_factory=list)
    results: dict[str, list[float]] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: float, ratio: float, verdict: str) -> None:
        self.results.setdefault(name, []).append(value)
        self.ratios.setdefault(name, []).append(ratio)
        previous = self.checks.get(name, "ok")
        self.checks[name] = verdict if verdict != "ok" else previous


def bench_scenario(scenario: Scenario, rounds: int, workdir: Path) -> Row:
    """Rounds of: the floor, a tool, the floor, the next tool, ..., the floor; each in a child."""
    row = Row(scenario.label, scenario.unit)

    def floor(files: RoundFiles) -> float:
        report = run_child("floor", scenario, files)
        assert report["check"] == "ok", report
        seconds: float = report[TIME_KEY] / scenario.per
        row.floor.append(seconds)
        return seconds

    for r in range(rounds):
        salt = f"{scenario.kind}{scenario.count}{scenario.how}-r{r}-{os.getpid()}"
        files = prepare_round(scenario, salt, workdir)
        before = floor(files)
        for variant in variants(scenario.how):
            try:
                report = run_child(variant.tool.name, scenario, files, warm=variant.warm)
            except ChildFailed as exc:
                if variant.tool.name == "llmcassette":
                    raise
                row.checks[variant.label] = f"fails: {str(exc)[:160]}"  # a peer's failure is reported
                before = floor(files)
                continue
            after = floor(files)
            seconds = report[TIME_KEY] / scenario.per
            row.add(variant.label, seconds, seconds / ((before + after) / 2), report["check"])
            before = after
    return row


def bench_instructions(scenario: Scenario, workdir: Path) -> dict[str, float | str]:
    """
    Instructions per unit of each column's measure, the floor's under "floor", from one child
    each under callgrind, minus the same child's set-up alone; or why a column has none.
    """
    files = prepare_round(scenario, f"{scenario.kind}-instructions-{os.getpid()}", workdir)
    columns = [("floor", "floor", False)] + [(v.label, v.tool.name, v.warm) for v in variants(scenario.how)]
    counts: dict[str, float | str] = {}
    for label, tool, warm in columns:
        try:
            whole, setup = (
                callgrind_total(tool, scenario, files, warm=warm, setup_only=setup_only)
                for setup_only in (False, True)
            )
        except ChildFailed as exc:
            if tool in ("floor", "llmcassette"):
                raise
            counts[label] = f"fails: {str(exc)[:160]}"
            continue
        counts[label] = (whole - setup) / scenario.per
    return counts


def callgrind_total(tool: str, scenario: Scenario, files: RoundFiles, *, warm: bool, setup_only: bool) -> int:
    """The instructions one child executes under valgrind's callgrind, with string hashing fixed."""
    out = files.folder / f"{files.salt}-{tool}-{'warm' if warm else 'cold'}-{setup_only}.callgrind"
    prefix = ("valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={out}")
    env = {"PYTHONHASHSEED": "0"}
    run_child(tool, scenario, files, warm=warm, setup_only=setup_only, prefix=prefix, env=env)
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise ChildFailed(f"no total in {out}")


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
            found.append(Exchange(request, b"".join(chunks), chunks, [("content-type", "text/event-stream")]))
            continue
        # Records, as a search or a batch answers: many small objects, each a few YAML nodes.
        records = int(per_body_mb * 1024 * 1024 / 190)
        data = [
            {"id": n, "title": f"record {i}-{n}", "text": "lorem ipsum dolor sit amet " * 4, "score": n / 7}
            for n in range(records)
        ]
        body = json.dumps({"object": "list", "data": data, "model": "bench"}).encode()
        found.append(Exchange(request, body, [body], [("content-type", "application/json")]))
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


def spread(values: list[float], fmt: Callable[[float], str]) -> str:
    return f" [{fmt(min(values))}–{fmt(max(values))}]" if len(values) > 1 else ""


def fmt_count(instructions: float) -> str:
    return f"{instructions / 1e6:.2f} M" if instructions >= 1e6 else f"{instructions / 1e3:.0f} k"


def render(
    rows: list[Row],
    memory: list[dict[str, Any]],
    recording: dict[str, Any] | None,
    command: str,
    record_memory: dict[str, Any] | None = None,
    instructions: dict[str, dict[str, float | str]] | str | None = None,
) -> str:
    names = ["llmcassette (cold)", "llmcassette (warm)", "vcrpy", "cassetter"]
    versions = [f"httpx {httpx.__version__}", f"llmcassette {llmcassette.__version__}"]
    for peer, module in (("vcrpy", "vcr"), ("cassetter", "cassetter")):
        if peer not in PEERS:
            versions.append(f"{peer} not measured")
        else:
            versions.append(f"{peer} {version(peer)}" if installed(module) else f"{peer} not installed")
    lines = [
        "# Suite-path benchmark",
        "",
        f"Produced by `{command}` on Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {', '.join(versions)}.",
        "Each measure runs in a process of its own that uses one tool, after playing a small cassette of",
        "its own with it (imports and first use are not counted). In a round the floor (a MockTransport",
        "serving the same chunks) is measured before the first tool, between the tools and after the",
        "last. A cell gives the median of the rounds' times with their spread (lowest to highest) in",
        "brackets, then in bold the median of the rounds' ratios, each to the mean of the two floors",
        "measured beside the tool in its round, with their spread.",
        f"Times are {'wall' if TIME_KEY == 'wall_s' else 'CPU'} time of the measuring process. Cold: nothing cached. Warm: the cassette was entered once before, in another process.",
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
            cell = fmt_time(statistics.median(values)) + spread(values, fmt_time)
            if row.unit != "per cassette":
                ratios = row.ratios[name]
                cell += f" **{statistics.median(ratios):.2f}×**" + spread(ratios, lambda r: f"{r:.2f}×")
            tail = "" if verdict == "ok" else f" ({verdict})"
            cells.append(cell + tail)
        lines.append(f"| {row.scenario}, {row.unit} | {fmt_time(floor)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "`ok` everywhere unless a cell says otherwise: every answer's headers, body and chunk boundaries checked.",
    ]
    if isinstance(instructions, str):
        lines += ["", f"Instructions: not counted ({instructions})."]
    elif instructions:
        lines += [
            "",
            "## The suites in instructions (valgrind)",
            "",
            "Each column's child once more under valgrind's callgrind, with PYTHONHASHSEED=0, and again with",
            "`--setup-only` (imports, the warm-up cassette, making the answers and the client): the",
            "difference is the measure's instructions, which the machine's load does not move; bold, the",
            "ratio to the floor's.",
            "",
            "| scenario | floor | " + " | ".join(names) + " |",
            "|---|---|" + "---|" * len(names),
        ]
        for label, counts in instructions.items():
            floor_count = counts["floor"]
            assert isinstance(floor_count, float)
            cells = []
            for name in names:
                count = counts.get(name, "n/a")
                cells.append(
                    count if isinstance(count, str) else f"{fmt_count(count)} **{count / floor_count:.2f}×**"
                )
            lines.append(f"| {label} | {fmt_count(floor_count)} | " + " | ".join(cells) + " |")
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
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one round, no N=5000 cassette, a smaller memory cassette; no file written",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-kinds", default="sse,json", help="large cassettes to replay: sse, json")
    parser.add_argument("--wall", action="store_true", help="wall time instead of CPU time")
    parser.add_argument(
        "--only", default="", help="comma-separated: json,json-headers,sse,last,repeat,memory,record"
    )
    parser.add_argument(
        "--instructions", action="store_true", help="also count the three suites' instructions (valgrind)"
    )
    parser.add_argument(
        "--peers",
        default=",".join(PEERS),
        help="comma-separated peers to measure (default: %(default)s; vcrpy's JSON suite takes minutes "
        "under --instructions)",
    )
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    global TIME_KEY
    if args.wall:
        TIME_KEY = "wall_s"
    PEERS[:] = [peer for peer in args.peers.split(",") if peer]
    everything = {"json", "json-headers", "sse", "last", "repeat", "memory", "record"}
    only = set(args.only.split(",")) if args.only else everything
    suites = [
        Scenario(
            "suite JSON: enter 400 distinct 1 KB answers, play each once", "per request", "json", 400, "all"
        ),
        Scenario(
            "the same with a provider's 13 headers, their values differing per answer",
            "per request",
            "json-headers",
            400,
            "all",
        ),
        Scenario("suite SSE: 150 streams of 200 events, each event a chunk", "per stream", "sse", 150, "all"),
    ]
    scenarios = [s for s in suites if s.kind in only]
    if "last" in only:
        for count in (1000,) if args.quick else (1000, 5000):
            scenarios.append(
                Scenario(f"enter and play the last of N={count}", "per cassette", "json", count, "last")
            )
    if "repeat" in only:
        scenarios.append(Scenario(f"one answer replayed {REPEATS}×", "per request", "json", 1, "repeat"))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cache_dir = workdir / "cache"
        os.environ[CACHE_ENV] = str(cache_dir)
        rows = [bench_scenario(scenario, rounds, workdir) for scenario in scenarios]
        instructions: dict[str, dict[str, float | str]] | str | None = None
        if args.instructions and shutil.which("valgrind") is None:
            instructions = "valgrind is not on PATH"
            print("llmcassette bench: --instructions skipped: valgrind is not on PATH.", file=sys.stderr)
        elif args.instructions:
            instructions = {
                f"{s.label}, {s.unit}": bench_instructions(s, workdir) for s in suites if s.kind in only
            }
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
        + (" --instructions" if args.instructions else "")
        + (f" --peers {args.peers}" if args.peers != parser.get_default("peers") else "")
    )
    report = render(rows, memory, recording, command, record_memory, instructions)
    print(report)
    if not args.quick and not args.only:
        (Path(__file__).parent / "SUITE_RESULTS.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
