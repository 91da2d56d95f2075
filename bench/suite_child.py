"""
One measured suite of ``bench/suite_path.py``, in a process of its own: what a test suite that uses
one tool runs. The parent writes the cassettes and starts one of these for every tool in every
round, so that no tool runs on a heap, or in garbage-collector generations, that another tool or
an earlier round left behind.

    python bench/suite_child.py TOOL KIND COUNT SALT CASSETTE WARMUP [--play all|last|repeat]

TOOL is ``floor`` (an ``httpx.MockTransport`` serving the same chunks, no cassette),
``llmcassette``, ``vcrpy`` or ``cassetter``; KIND ``json``, ``json-headers`` (the same answers
with the thirteen headers a provider's answer carries, their values differing from answer to
answer) or ``sse``. The answers are made again here from KIND, COUNT and SALT, exactly as the
parent made the ones it wrote to CASSETTE.

Before the measure, the same tool plays a small cassette of its own (WARMUP, made from the salt
``SALT-warmup``), so that the imports and first-use set-up of the tool, httpx and the codecs are
not counted: a suite pays them once, not per cassette. Then, measured in this process's CPU time
(and wall time): entering CASSETTE, playing each answer once and leaving it (``all``); the same
for the last answer only (``last``); or playing one answer many times, the cassette entered and
the answer played once before the clock starts (``repeat``). Every body and chunk boundary played
is compared with the recording, and so are every answer's headers (as a set of lines: order and
case are not what the tools are compared on); one line of JSON is printed: the times, the
verdict, and the number of chunks and bytes played. ``--setup-only`` does everything but the
measure, and checks the recorded chunks in place of played ones: the baseline an instruction
count subtracts.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["Exchange", "json_exchange", "json_headers_exchange", "play", "sse_exchange"]

URL = "https://api.example-llm.test/v1/chat/completions"
#: The answers of the small cassette a child plays before it measures (see the module docstring).
WARMUP_COUNT = 5
#: How many times the ``repeat`` measure plays its one answer.
REPEATS = 1000


# -- the recorded traffic ---------------------------------------------------------------------


@dataclass
class Exchange:
    """One recorded request and its answer: its headers, the body, and the chunks it arrived in."""

    request: dict[str, Any]
    body: bytes
    chunks: list[bytes]
    headers: list[tuple[str, str]]

    @property
    def request_bytes(self) -> bytes:
        return json.dumps(self.request, separators=(",", ":")).encode()

    @property
    def content_type(self) -> str:
        return next(value for name, value in self.headers if name == "content-type")

    @property
    def header_map(self) -> dict[str, list[str]]:
        """The headers as cassettes store them: each name with the list of its values."""
        stored: dict[str, list[str]] = {}
        for name, value in self.headers:
            stored.setdefault(name, []).append(value)
        return stored


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
    return Exchange(request, body, [body], [("content-type", "application/json")])


def json_headers_exchange(i: int, salt: str) -> Exchange:
    """
    ``json_exchange``'s answer with the headers an OpenAI chat completion comes with: what a
    cassette recorded from a provider holds. Several values differ from answer to answer (the
    date, the request id, the processing time, the rate-limit counts), so no two answers' headers
    are the same; they are made from ``salt`` and ``i`` alone, so the parent and the child make
    the same ones.
    """
    ex = json_exchange(i, salt)
    draw = random.Random(f"{salt}-{i}")  # seeded by a string: the same in every process
    ex.headers = [
        ("date", f"Mon, 07 Dec 2026 {10 + i // 3600 % 12:02d}:{i // 60 % 60:02d}:{i % 60:02d} GMT"),
        ("content-type", "application/json"),
        ("transfer-encoding", "chunked"),
        ("connection", "keep-alive"),
        ("openai-organization", "user-abcdefghijklmnopqrstuvwx"),
        ("openai-processing-ms", str(draw.randint(200, 2500))),
        ("openai-version", "2020-10-01"),
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-remaining-requests", str(9999 - i % 10000)),
        ("x-ratelimit-reset-requests", f"{draw.randint(6, 60)}ms"),
        ("x-request-id", f"req_{draw.getrandbits(128):032x}"),
        ("cf-ray", f"{draw.getrandbits(64):016x}-AMS"),
        ("server", "cloudflare"),
    ]
    return ex


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
    return Exchange(request, b"".join(chunks), chunks, [("content-type", "text/event-stream")])


MAKERS: dict[str, Callable[[int, str], Exchange]] = {
    "json": json_exchange,
    "json-headers": json_headers_exchange,
    "sse": sse_exchange,
}


# -- entering a cassette, one per tool (each imported only by the child that measures it) -----


def enter_llmcassette(path: Path, repeats: bool) -> contextlib.AbstractContextManager[Any]:
    import llmcassette

    return llmcassette.use_cassette(path, allow_playback_repeats=repeats)


def enter_vcrpy(path: Path, repeats: bool) -> contextlib.AbstractContextManager[Any]:
    import vcr

    recorder = vcr.VCR(record_mode="none", match_on=["method", "uri", "body"])
    return recorder.use_cassette(str(path), allow_playback_repeats=repeats)  # type: ignore[no-any-return]


def enter_cassetter(path: Path, repeats: bool) -> contextlib.AbstractContextManager[Any]:
    import cassetter  # type: ignore[import-not-found, unused-ignore]

    return cassetter.use_cassette(path, record_mode="none", match_on=["method", "uri", "body"])  # type: ignore[no-any-return, unused-ignore]


def enter_floor(path: Path, repeats: bool) -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext()


ENTER: dict[str, Callable[[Path, bool], contextlib.AbstractContextManager[Any]]] = {
    "floor": enter_floor,
    "llmcassette": enter_llmcassette,
    "vcrpy": enter_vcrpy,
    "cassetter": enter_cassetter,
}


# -- playing ----------------------------------------------------------------------------------


class _Chunks(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


def client_for(tool: str, exchanges: list[Exchange]) -> httpx.Client:
    """The client a suite uses; for the floor, one whose MockTransport serves the same chunks."""
    if tool != "floor":
        return httpx.Client()
    by_body = {ex.request_bytes: ex for ex in exchanges}

    def handler(request: httpx.Request) -> httpx.Response:
        ex = by_body[request.read()]
        return httpx.Response(200, headers=ex.headers, stream=_Chunks(ex.chunks))

    return httpx.Client(transport=httpx.MockTransport(handler))


@dataclass
class Played:
    """An answer as the client got it: its headers and its chunks."""

    headers: httpx.Headers
    chunks: list[bytes]


def play(client: httpx.Client, ex: Exchange) -> Played:
    """Send ``ex``'s request; the answer's headers and its chunks as the client reads them."""
    with client.stream(
        "POST", URL, content=ex.request_bytes, headers={"content-type": "application/json"}
    ) as r:
        return Played(r.headers, list(r.iter_bytes()))


def header_lines(headers: httpx.Headers | list[tuple[str, str]]) -> list[tuple[str, str]]:
    items = headers.multi_items() if isinstance(headers, httpx.Headers) else headers
    return sorted((name.lower(), value) for name, value in items)


def headers_differ(recorded: list[tuple[str, str]], played: list[tuple[str, str]]) -> str:
    """How an answer's header lines differ from the recording's, by name."""
    recorded_names = {name for name, _ in recorded}
    played_names = {name for name, _ in played}
    how = []
    if added := played_names - recorded_names:
        how.append("adds " + ", ".join(sorted(added)))
    if lacking := recorded_names - played_names:
        how.append("lacks " + ", ".join(sorted(lacking)))
    if changed := {
        name
        for name in recorded_names & played_names
        if [line for line in recorded if line[0] == name] != [line for line in played if line[0] == name]
    }:
        how.append("changes " + ", ".join(sorted(changed)))
    return "headers differ from the recording: " + "; ".join(how)


def check(exchanges: list[Exchange], got: list[Played]) -> str:
    """'ok' when every answer's headers, body and chunk boundaries are as recorded; else what differs."""
    if len(got) != len(exchanges):
        return f"{len(got)} answers for {len(exchanges)} requests"
    one_chunk = 0
    headers = ""  # how the first answer whose headers differ differs (the bodies are checked on)
    for ex, answer in zip(exchanges, got, strict=True):
        chunks = answer.chunks
        if not headers:
            recorded, answered = header_lines(ex.headers), header_lines(answer.headers)
            if answered != recorded:
                headers = headers_differ(recorded, answered)
        if b"".join(chunks) != ex.body:
            return "a body differs from the recording"
        if chunks != ex.chunks:
            if len(chunks) == 1 and len(ex.chunks) > 1:
                one_chunk += 1
            else:
                return f"chunk boundaries differ ({len(chunks)} chunks, {len(ex.chunks)} recorded)"
    found = [headers] if headers else []
    if one_chunk:
        found.append(f"bodies ok, 1 chunk per stream (recorded {len(exchanges[0].chunks)})")
    return "; ".join(found) or "ok"


@dataclass
class Measure:
    cpu_s: float
    wall_s: float
    got: list[Played]


def suite(tool: str, path: Path, exchanges: list[Exchange], how: str, *, measure: bool = True) -> Measure:
    """
    Enter ``path`` with ``tool`` and play ``exchanges`` the way ``how`` says (see the module
    docstring). With ``measure`` false, only what comes before the clock starts; the recorded
    chunks stand for the played ones, so that checking them costs what checking a measure does.
    """
    with client_for(tool, exchanges) as client, contextlib.ExitStack() as stack:
        if how == "repeat":  # entered, and the answer played once, before the clock starts
            stack.enter_context(ENTER[tool](path, True))
            play(client, exchanges[0])
        gc.collect()
        if not measure:
            return Measure(
                0.0, 0.0, [Played(httpx.Headers(ex.headers), ex.chunks) for ex in expected(exchanges, how)]
            )
        cpu_start, start = time.process_time(), time.perf_counter()
        if how == "repeat":
            got = [play(client, exchanges[0]) for _ in range(REPEATS)]
        else:
            with ENTER[tool](path, False):
                got = [play(client, ex) for ex in exchanges]
        return Measure(time.process_time() - cpu_start, time.perf_counter() - start, got)


def expected(exchanges: list[Exchange], how: str) -> list[Exchange]:
    """What a measure must have played, in order."""
    return exchanges * REPEATS if how == "repeat" else exchanges


def played(kind: str, count: int, salt: str, how: str) -> list[Exchange]:
    """The exchanges a measure plays: all ``count``, the last of them, or the first (repeated)."""
    make = MAKERS[kind]
    if how == "last":
        return [make(count - 1, salt)]
    if how == "repeat":
        return [make(0, salt)]
    return [make(i, salt) for i in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("tool", choices=sorted(ENTER))
    parser.add_argument("kind", choices=sorted(MAKERS))
    parser.add_argument("count", type=int)
    parser.add_argument("salt")
    parser.add_argument("cassette", type=Path)
    parser.add_argument("warmup", type=Path)
    parser.add_argument("--play", choices=["all", "last", "repeat"], default="all")
    parser.add_argument("--setup-only", action="store_true", help="everything but the measure")
    args = parser.parse_args()
    warmup = played(args.kind, WARMUP_COUNT, f"{args.salt}-warmup", args.play)
    exchanges = played(args.kind, args.count, args.salt, args.play)
    try:
        suite(args.tool, args.warmup, warmup, args.play)
        measure = suite(args.tool, args.cassette, exchanges, args.play, measure=not args.setup_only)
    except Exception as exc:  # a peer that fails: the parent reports it in the peer's cell
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(
        json.dumps(
            {
                "cpu_s": measure.cpu_s,
                "wall_s": measure.wall_s,
                "check": check(expected(exchanges, args.play), measure.got),
                "chunks": sum(len(answer.chunks) for answer in measure.got),
                "bytes": sum(len(chunk) for answer in measure.got for chunk in answer.chunks),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
