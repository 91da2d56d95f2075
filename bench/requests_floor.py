"""
How far requests' door could come to the mounted adapter of ``bench/adapters.py`` (issue #14's
aim of 1.3x) if the door's own steps cost nothing: CPU time per answer of four runs, in turn.

- ``stub``: requests with a mounted ``BaseAdapter`` answering from memory (``requests_stub``);
- ``replay``: the door, as ``requests_replay`` runs it;
- ``floor-engine``: what the door hands back and requests' own steps around it, with the pool
  door's ``plain_answer`` (its checks, the request's wire form and the engine's play) taken
  inside ``send``: only the door's route (requests' pool lookup, the CA bundle's ``isdir``) and
  its own glue are left out, the route found beforehand and the cassette entered before the clock;
- ``floor-kept``: the same with the engine's answers played beforehand too: what is left is the
  ``http.client`` response in memory, urllib3's ``HTTPResponse`` over it, requests'
  ``build_response`` and its two cookie extractions, and reading the body through urllib3.

    .venv/bin/python bench/requests_floor.py [--stream] [--runs 9]

The floors replace ``HTTPAdapter.send`` for the timed reads alone: a measurement, over the
bench's own cassette and reads (every run's answers are checked), not a way to replay.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

import llmcassette
from llmcassette._adapters import requests_adapter as door
from llmcassette._adapters.urllib3_pool import plain_answer
from llmcassette._adapters.urllib_request import replayed_response
from llmcassette._intercept import current_cassette

sys.path.insert(0, str(Path(__file__).resolve().parent))
import adapters as bench


def _play(adapter: Any, pool: Any, url: str, headers: dict[str, str]) -> tuple[Any, ...]:
    # The engine's answer to one request, as the door asks for it (see `_replay`).
    played: list[Any] = []

    def accept(playback: Any) -> bool:
        played.append(playback)
        return True

    found = plain_answer(
        pool, current_cassette(), "GET", url, None, headers, adapter.max_retries, False, False, None,
        door._RESPONSE_KW, accept,
    )  # fmt: skip
    assert found is not None, "the door would not answer this request"
    answer, retries, target = found
    return pool, answer, retries, target, played[0]


def floor(path: Path, count: int, stream: bool, *, engine: bool) -> tuple[float, list[list[bytes]]]:
    with requests.Session() as session:
        adapter = session.get_adapter(bench.HOST)
        steps: list[tuple[Any, ...]] = []
        with llmcassette.use_cassette(path):
            for i in range(count):
                request = session.prepare_request(requests.Request("GET", f"{bench.HOST}/item/{i}"))
                settings = session.merge_environment_settings(request.url, {}, stream, None, None)
                routed = door._route(
                    adapter, request, settings["verify"], settings["cert"], settings["proxies"]
                )
                assert routed is not None
                route = (*routed, dict(request.headers._store.values()))
                steps.append(route if engine else _play(adapter, *route))
        taken = iter(steps)

        def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            pool, answer, retries, target, playback = _play(self, *next(taken)) if engine else next(taken)
            raw: Any = replayed_response(answer, playback, "GET")
            raw.msg = raw.headers
            made = door._made(pool, raw, playback, "GET", target, retries)
            made._answer = (answer, "GET")
            return self.build_response(request, made)

        owner = requests.adapters.HTTPAdapter
        with llmcassette.use_cassette(path) if engine else contextlib.nullcontext():
            sending = owner.send
            owner.send = send  # type: ignore[method-assign]
            try:
                start = time.process_time()
                got = bench._requests_reads(session, count, stream)
                elapsed = time.process_time() - start
            finally:
                owner.send = sending  # type: ignore[method-assign]
    return elapsed, got


def _timed(function: Callable[..., list[list[bytes]]], *args: Any) -> tuple[float, list[list[bytes]]]:
    start = time.process_time()
    got = function(*args)
    return time.process_time() - start, got


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--stream", action="store_true", help="50 SSE streams of 200 events (else 400 JSON answers)"
    )
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    stream = args.stream
    count = 50 if stream else 400
    with tempfile.TemporaryDirectory() as folder:
        path = bench.write_cassette(Path(folder), count, stream=stream)
        runs: dict[str, Callable[[], tuple[float, list[list[bytes]]]]] = {
            "stub": lambda: _timed(bench.requests_stub, count, stream),
            "replay": lambda: _timed(bench.requests_replay, path, count, stream),
            "floor-engine": lambda: floor(path, count, stream, engine=True),
            "floor-kept": lambda: floor(path, count, stream, engine=False),
        }
        expected = [bench.EVENTS if stream else [bench.JSON_BODY]] * count
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.runs + 1):  # (the first round warms up, and is not counted)
            for name, run in runs.items():
                elapsed, got = run()
                assert got == expected, f"{name} handed over other chunks"
                times[name].append(elapsed / count * 1e6)
    stub = statistics.median(times["stub"][1:])
    for name, spent in times.items():
        median = statistics.median(spent[1:])
        print(
            f"{name:13s} {median:6.1f} µs per answer (CPU, median of {args.runs}), {median / stub:.2f}× the stub"
        )


if __name__ == "__main__":
    main()
