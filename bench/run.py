"""
Benchmarks of in-process replay and cassette loading, each against baselines measured in the same run.

    .venv/bin/python bench/run.py            # prints a report and writes bench/RESULTS.md
    .venv/bin/python bench/run.py --quick    # fewer repetitions, no file written

Per-request replay of a 1 KB JSON response and of a 200-event SSE stream is compared with the floor
(a bare ``httpx.MockTransport`` serving the same response, no cassette at all) and with vcrpy
replaying the same interaction. Cassette load time for 10 to 5000 interactions is compared with
vcrpy loading the same interactions in its own format. Replay cost is also measured against the
number of interactions in the cassette, which must not matter.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import vcr
import vcr.cassette
import yaml

import llmcassette
from llmcassette._bodies import store_body
from llmcassette._cassette import Cassette
from llmcassette._models import CassetteDocument

URL = "https://api.example-llm.test/v1/chat/completions"
HEADERS_JSON = {"content-type": ["application/json"]}
HEADERS_SSE = {"content-type": ["text/event-stream"]}


def request_payload(i: int) -> dict[str, Any]:
    return {"model": "gpt-bench", "messages": [{"role": "user", "content": f"question number {i}"}]}


def json_response_body() -> bytes:
    # About 1 KB, shaped like a chat completion.
    text = "All work and no play makes a benchmark dull. " * 12
    payload = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 140, "total_tokens": 152},
    }
    body = json.dumps(payload, indent=2).encode()
    return body


def sse_chunks(events: int = 200) -> list[bytes]:
    chunks = []
    for i in range(events - 1):
        payload = {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": f"t{i} "}}],
        }
        chunks.append(b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n")
    chunks.append(b"data: [DONE]\n\n")
    return chunks


def timed(fn: Callable[[], Any], *, number: int, repeat: int) -> float:
    """Best per-call time in microseconds over ``repeat`` runs of ``number`` calls."""
    fn()  # warm up (index builds, compiled playbacks, connection pools)
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


# -- cassette builders ------------------------------------------------------------------------


def llm_interaction(
    i: int, body: bytes, headers: dict[str, list[str]], chunks: list[int] | None
) -> dict[str, Any]:
    request_body = json.dumps(request_payload(i), separators=(",", ":"), ensure_ascii=False).encode()
    req_stored = store_body(request_body, content_type="application/json")
    resp_stored = store_body(body, content_type=headers["content-type"][0])
    request: dict[str, Any] = {
        "method": "POST",
        "uri": URL,
        "headers": {"content-type": ["application/json"]},
    }
    request["parsed_body"] = req_stored.parsed
    if req_stored.json_format:
        request["json_format"] = req_stored.json_format
    response: dict[str, Any] = {"status": {"code": 200, "message": "OK"}, "headers": headers}
    if resp_stored.is_parsed:
        response["parsed_body"] = resp_stored.parsed
        if resp_stored.json_format:
            response["json_format"] = resp_stored.json_format
    else:
        response["body"] = {"string": resp_stored.string}
    if chunks is not None:
        response["stream"] = {"chunks": chunks, "offsets_ms": [float(n) for n in range(len(chunks))]}
    return {"request": request, "response": response}


def vcr_interaction(i: int, body: bytes, headers: dict[str, list[str]]) -> dict[str, Any]:
    request_body = json.dumps(request_payload(i), separators=(",", ":"), ensure_ascii=False)
    return {
        "request": {
            "body": request_body,
            "headers": {"content-type": ["application/json"]},
            "method": "POST",
            "uri": URL,
        },
        "response": {
            "body": {"string": body.decode()},
            "headers": headers,
            "status": {"code": 200, "message": "OK"},
        },
    }


def write_llm(path: Path, interactions: list[dict[str, Any]]) -> None:
    llmcassette.save_cassette(path, CassetteDocument.model_validate({"interactions": interactions}))


def write_vcr(path: Path, interactions: list[dict[str, Any]]) -> None:
    path.write_text(yaml.dump({"interactions": interactions, "version": 1}, Dumper=yaml.CSafeDumper))


# -- replay -----------------------------------------------------------------------------------


@contextlib.contextmanager
def vcr_cassette(path: Path) -> Iterator[Any]:
    recorder = vcr.VCR(record_mode="none", match_on=["method", "uri", "body"])
    with recorder.use_cassette(str(path), allow_playback_repeats=True) as cassette:
        yield cassette


def bench_replay(workdir: Path, *, number: int, repeat: int) -> list[dict[str, Any]]:
    rows = []
    json_body = json_response_body()
    chunks = sse_chunks()
    sse_body = b"".join(chunks)
    payload = request_payload(0)

    for label, body, headers, lengths in (
        ("1 KB JSON", json_body, HEADERS_JSON, None),
        ("200-event SSE", sse_body, HEADERS_SSE, [len(c) for c in chunks]),
    ):
        streamed = lengths is not None

        def run(client: httpx.Client, streamed: bool = streamed) -> None:
            if streamed:
                with client.stream("POST", URL, json=payload) as response:
                    for _ in response.iter_bytes():
                        pass
            else:
                client.post(URL, json=payload).read()

        # The floor: no cassette at all, the same response from a MockTransport (the same chunks
        # for the stream, so both sides deliver 200 reads).
        def handler(request: httpx.Request, body: bytes = body, streamed: bool = streamed) -> httpx.Response:
            request.read()
            if streamed:
                return httpx.Response(
                    200, headers={"content-type": "text/event-stream"}, stream=_Chunks(chunks)
                )
            return httpx.Response(200, headers={"content-type": "application/json"}, content=body)

        with httpx.Client(transport=httpx.MockTransport(handler)) as client:
            floor = timed(lambda client=client: run(client), number=number, repeat=repeat)

        llm_path = workdir / f"replay-{label[:3]}.yaml"
        write_llm(llm_path, [llm_interaction(0, body, headers, lengths)])
        with llmcassette.use_cassette(llm_path, allow_playback_repeats=True), httpx.Client() as client:
            ours = timed(lambda client=client: run(client), number=number, repeat=repeat)

        vcr_path = workdir / f"replay-{label[:3]}-vcr.yaml"
        write_vcr(vcr_path, [vcr_interaction(0, body, headers)])
        with vcr_cassette(vcr_path), httpx.Client() as client:
            theirs = timed(lambda client=client: run(client), number=number, repeat=repeat)

        rows.append({"case": label, "floor_us": floor, "llmcassette_us": ours, "vcrpy_us": theirs})
    return rows


class _Chunks(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


def bench_faults(workdir: Path, *, number: int, repeat: int) -> list[dict[str, Any]]:
    """Replay with faults against plain replay and the floor, on the 200-event SSE stream."""
    chunks = sse_chunks()
    payload = request_payload(0)
    path = workdir / "faults.yaml"
    write_llm(path, [llm_interaction(0, b"".join(chunks), HEADERS_SSE, [len(c) for c in chunks])])

    def run(client: httpx.Client) -> None:
        with client.stream("POST", URL, json=payload) as response:
            for _ in response.iter_bytes():
                pass

    def floor_with(pieces: list[bytes], status: int = 200) -> float:
        def handler(request: httpx.Request) -> httpx.Response:
            request.read()
            return httpx.Response(
                status, headers={"content-type": "text/event-stream"}, stream=_Chunks(pieces)
            )

        with httpx.Client(transport=httpx.MockTransport(handler)) as client:
            return timed(lambda: run(client), number=number, repeat=repeat)

    def ours_with(faults: list[str], n: int = number) -> float:
        with (
            llmcassette.use_cassette(path, allow_playback_repeats=True, faults=faults),
            httpx.Client() as client,
        ):
            return timed(lambda: run(client), number=n, repeat=repeat)

    body = b"".join(chunks)
    one_byte = [body[i : i + 1] for i in range(len(body))]
    error_body = [b'{"error": {"message": "Rate limit reached", "type": "requests"}}']
    small = max(10, number // 50)
    return [
        {"case": "plain replay", "floor_us": floor_with(chunks), "llmcassette_us": ours_with([])},
        {
            "case": "rate_limit (429 instead of the recording)",
            "floor_us": floor_with(error_body, 429),
            "llmcassette_us": ours_with(["rate_limit"]),
        },
        {
            "case": f"rechunk to single bytes ({len(body)} chunks)",
            "floor_us": floor_with(one_byte)
            if small == number
            else _timed_floor_small(one_byte, run, small, repeat),
            "llmcassette_us": ours_with(["rechunk:mode=fixed,size=1"], small),
        },
    ]


def _timed_floor_small(
    pieces: list[bytes], run: Callable[[httpx.Client], None], number: int, repeat: int
) -> float:
    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Chunks(pieces))

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        return timed(lambda: run(client), number=number, repeat=repeat)


def bench_replay_vs_size(
    workdir: Path, sizes: list[int], *, number: int, repeat: int
) -> list[dict[str, Any]]:
    rows = []
    body = json_response_body()
    for size in sizes:
        path = workdir / f"size-{size}.yaml"
        write_llm(path, [llm_interaction(i, body, HEADERS_JSON, None) for i in range(size)])
        target = request_payload(size // 2)
        with llmcassette.use_cassette(path, allow_playback_repeats=True), httpx.Client() as client:
            per_request = timed(
                lambda client=client, target=target: client.post(URL, json=target).read(),
                number=number,
                repeat=repeat,
            )
        rows.append({"interactions": size, "llmcassette_us": per_request})
    return rows


# -- load -------------------------------------------------------------------------------------


def bench_load(workdir: Path, sizes: list[int], *, repeat: int) -> list[dict[str, Any]]:
    rows = []
    body = json_response_body()
    for size in sizes:
        llm_path = workdir / f"load-{size}.yaml"
        vcr_path = workdir / f"load-{size}-vcr.yaml"
        write_llm(llm_path, [llm_interaction(i, body, HEADERS_JSON, None) for i in range(size)])
        write_vcr(vcr_path, [vcr_interaction(i, body, HEADERS_JSON) for i in range(size)])
        number = max(1, 200 // size)
        ours = timed(lambda p=llm_path: Cassette(p), number=number, repeat=repeat)
        ours_on_vcr = timed(lambda p=vcr_path: Cassette(p), number=number, repeat=repeat)
        theirs = timed(
            lambda p=vcr_path: vcr.cassette.Cassette.load(path=str(p)), number=number, repeat=repeat
        )
        target = request_payload(size - 1)

        # One client for all runs: building one loads the CA bundle, which would dwarf small cassettes.
        client = httpx.Client()

        def ours_first(p: Path = llm_path, client: httpx.Client = client, target: Any = target) -> None:
            with llmcassette.use_cassette(p):
                client.post(URL, json=target).read()

        def theirs_first(p: Path = vcr_path, client: httpx.Client = client, target: Any = target) -> None:
            with vcr_cassette(p):
                client.post(URL, json=target).read()

        ours_first_ms = timed(ours_first, number=number, repeat=repeat) / 1000
        theirs_first_ms = timed(theirs_first, number=number, repeat=repeat) / 1000
        client.close()
        rows.append(
            {
                "interactions": size,
                "llmcassette_ms": ours / 1000,
                "llmcassette_on_vcr_file_ms": ours_on_vcr / 1000,
                "vcrpy_ms": theirs / 1000,
                "llmcassette_first_ms": ours_first_ms,
                "vcrpy_first_ms": theirs_first_ms,
            }
        )
    return rows


# -- report -----------------------------------------------------------------------------------


def render(
    replay: list[dict[str, Any]],
    faults: list[dict[str, Any]],
    sizes: list[dict[str, Any]],
    load: list[dict[str, Any]],
    command: str,
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `{command}` on Python {platform.python_version()}, {platform.machine()}, "
        f"httpx {httpx.__version__}, vcrpy {vcr.__version__}, llmcassette {llmcassette.__version__}.",
        "Times are the best of several runs; ratios compare numbers measured in the same run.",
        "",
        "## Per-request replay (httpx client, same request and response)",
        "",
        "| response | floor: MockTransport | llmcassette | vcrpy | llmcassette / floor | vcrpy / llmcassette |",
        "|---|---|---|---|---|---|",
    ]
    for row in replay:
        lines.append(
            f"| {row['case']} | {row['floor_us']:.1f} µs | {row['llmcassette_us']:.1f} µs | {row['vcrpy_us']:.1f} µs "
            f"| {row['llmcassette_us'] / row['floor_us']:.2f}× | {row['vcrpy_us'] / row['llmcassette_us']:.2f}× |"
        )
    lines += [
        "",
        "The floor serves the SSE stream as the same 200 chunks; vcrpy replays it as one chunk.",
        "",
        "## Replay with faults (200-event SSE, httpx client)",
        "",
        "Each floor is a MockTransport serving what the fault produces (the 429 body, the 1-byte chunks).",
        "",
        "| case | floor: MockTransport | llmcassette | llmcassette / floor |",
        "|---|---|---|---|",
    ]
    for row in faults:
        lines.append(
            f"| {row['case']} | {row['floor_us']:.1f} µs | {row['llmcassette_us']:.1f} µs "
            f"| {row['llmcassette_us'] / row['floor_us']:.2f}× |"
        )
    lines += [
        "",
        "## Replay cost against cassette size (1 KB JSON, request matched in the middle)",
        "",
        "| interactions in cassette | per request |",
        "|---|---|",
    ]
    for row in sizes:
        lines.append(f"| {row['interactions']} | {row['llmcassette_us']:.1f} µs |")
    spread = [row["llmcassette_us"] for row in sizes]
    lines += [
        "",
        f"Largest / smallest: {max(spread) / min(spread):.2f}× (flat means the cost does not grow with size).",
        "",
        "## Cassette load (1 KB JSON interactions)",
        "",
        "| interactions | llmcassette (own format) | llmcassette (vcrpy file) | vcrpy | vcrpy / llmcassette |",
        "|---|---|---|---|---|",
    ]
    for row in load:
        lines.append(
            f"| {row['interactions']} | {row['llmcassette_ms']:.2f} ms | {row['llmcassette_on_vcr_file_ms']:.2f} ms "
            f"| {row['vcrpy_ms']:.2f} ms | {row['vcrpy_ms'] / row['llmcassette_ms']:.2f}× |"
        )
    lines += [
        "",
        "Responses are parsed when first played, so load time is mostly the requests. The next table",
        "counts everything a test waits for: enter the cassette, replay the last recorded request, exit.",
        "",
        "| interactions | llmcassette: load + first replay | vcrpy: load + first replay | vcrpy / llmcassette |",
        "|---|---|---|---|",
    ]
    for row in load:
        lines.append(
            f"| {row['interactions']} | {row['llmcassette_first_ms']:.2f} ms | {row['vcrpy_first_ms']:.2f} ms "
            f"| {row['vcrpy_first_ms'] / row['llmcassette_first_ms']:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions; do not write RESULTS.md")
    args = parser.parse_args()
    number, repeat = (200, 3) if args.quick else (2000, 7)
    sizes = [10, 100, 1000, 5000]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        replay = bench_replay(workdir, number=number, repeat=repeat)
        faults = bench_faults(workdir, number=number, repeat=repeat)
        by_size = bench_replay_vs_size(workdir, sizes, number=number, repeat=repeat)
        load = bench_load(workdir, sizes, repeat=3 if args.quick else 5)
    command = "python bench/run.py" + (" --quick" if args.quick else "")
    report = render(replay, faults, by_size, load, command)
    print(report)
    if not args.quick:
        (Path(__file__).parent / "RESULTS.md").write_text(report)


if __name__ == "__main__":
    sys.exit(main())
