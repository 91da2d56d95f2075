"""
Replaying a 2,000-message WebSocket session in-process, against a local ``websockets`` server
sending the same messages over loopback, measured side by side in one run.

    .venv/bin/python bench/websocket.py           # prints a report and writes bench/WEBSOCKET_RESULTS.md
    .venv/bin/python bench/websocket.py --quick   # fewer repetitions, no file written

The session is a Realtime conversation of 10 turns: in each, the client sends one message and the
server answers with 199 (a ``response.created``, 99 audio deltas of 4,800 bytes of PCM16 as
base64, 98 text deltas and a ``response.done``): 2,000 messages, 6.5 MB.

Both sides use the same client, ``websockets.asyncio.client.connect``, doing the same thing: open
the connection, send each turn's message and read its answers, close. The baseline server
(``websockets.asyncio.server.serve`` on 127.0.0.1) sends each turn's answers once it has the
client's message, as fast as it can; llmcassette replays the recorded session with
``use_cassette`` (pace ``instant``), the client's connection going to the engine through the
in-process door. A session is timed from ``connect`` to the end of the close. The cassette's
first session also reads the session from the file (its YAML parsed): it is timed on its own, as
is entering the cassette, and the replay compared is the second session of the cassette. Every message a client receives
is checked against the recording, in order.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

import llmcassette
from llmcassette._models import CassetteDocument
from llmcassette._storage import save_cassette

URL = "wss://api.openai.com/v1/realtime?model=gpt-realtime"
TURNS = 10
AUDIO = base64.b64encode(bytes(range(256)) * 18 + bytes(192)).decode()  # 4,800 bytes, 100 ms at 24 kHz
#: The largest ratio the issue allows: replay may cost at most 1.5x the local server.
TARGET = 1.5


def _turn(number: int) -> tuple[str, list[str]]:
    """One turn: the client's message and the server's 199 answers, as the texts that cross."""
    client = json.dumps({"type": "response.create", "response": {"instructions": f"turn {number}"}})
    answers = [
        {"type": "response.created", "event_id": f"event_{number}_0", "response": {"id": f"resp_{number}"}}
    ]
    for index in range(99):
        answers.append(
            {"type": "response.output_audio.delta", "event_id": f"event_{number}_a{index}", "delta": AUDIO}
        )
        if index < 98:
            answers.append({"type": "response.output_audio_transcript.delta", "delta": f"word {index} "})
    answers.append(
        {"type": "response.done", "event_id": f"event_{number}_done", "response": {"status": "completed"}}
    )
    return client, [json.dumps(answer, separators=(",", ":")) for answer in answers]


SESSION = [_turn(number) for number in range(TURNS)]
MESSAGES = sum(1 + len(answers) for _, answers in SESSION)
EXPECTED = [answer for _, answers in SESSION for answer in answers]


def write_cassette(folder: Path) -> Path:
    messages: list[dict[str, Any]] = []
    tenths = 10  # a message every 0.1 ms, from 1 ms on
    for client, answers in SESSION:
        messages.append({"from": "client", "offset_ms": tenths / 10, "json": json.loads(client)})
        for answer in answers:
            tenths += 1
            messages.append({"from": "server", "offset_ms": tenths / 10, "json": json.loads(answer)})
    offset = tenths / 10
    interaction = {
        "request": {"method": "GET", "uri": URL, "headers": {"Upgrade": ["websocket"]}},
        "response": {
            "status": {"code": 101, "message": "Switching Protocols"},
            "headers": {},
            "elapsed_ms": 1.0,
        },
        "websocket": {
            "subprotocol": None,
            "messages": messages,
            "close": {"code": 1000, "reason": "", "by": "client", "offset_ms": round(offset + 1, 1)},
        },
    }
    path = folder / "session.yaml"
    save_cassette(path, CassetteDocument.model_validate({"interactions": [interaction]}))
    return path


async def talk(url: str) -> None:
    """The client: every turn sent and its answers read and checked; then the close."""
    received: list[str] = []
    async with connect(url, max_size=None) as socket:
        for client, answers in SESSION:
            await socket.send(client)
            for _ in answers:
                received.append(str(await socket.recv()))
    if received != EXPECTED:
        wrong = next(n for n, (got, want) in enumerate(zip(received, EXPECTED, strict=False)) if got != want)
        raise AssertionError(f"message {wrong} of the replay is not the recorded one")


async def _local_server(connection: ServerConnection) -> None:
    turns = iter(SESSION)
    async for message in connection:
        client, answers = next(turns)
        assert message == client
        for answer in answers:
            await connection.send(answer)


async def _replay(path: Path) -> tuple[float, float, float]:
    """
    Seconds to enter the cassette, of its first session (which reads the session from the file)
    and of a second one (the replay itself, as every later session of a test).
    """
    start = time.perf_counter()
    with llmcassette.use_cassette(path, record_mode="none", allow_playback_repeats=True) as cassette:
        entered = time.perf_counter()
        await talk(URL)
        first = time.perf_counter()
        await talk(URL)
        second = time.perf_counter()
    assert not cassette.misses, cassette.misses
    return entered - start, first - entered, second - first


async def measure(runs: int, path: Path) -> dict[str, float]:
    async with serve(_local_server, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        local_url = f"ws://127.0.0.1:{port}"
        await talk(local_url)  # warm-up of both, and a first check
        await _replay(path)
        # Interleaved, so that a busy moment of the machine weighs on both alike. A cassette is
        # entered for each replay (the local server's connections must not go to it); its second
        # session is the one compared, as the server's sessions have nothing to read either.
        server_s: list[float] = []
        replay_s: list[float] = []
        entered_s: list[float] = []
        first_s: list[float] = []
        for _ in range(runs):
            start = time.perf_counter()
            await talk(local_url)
            server_s.append(time.perf_counter() - start)
            entered, first, session = await _replay(path)
            entered_s.append(entered)
            first_s.append(first)
            replay_s.append(session)
    return {
        "server_s": min(server_s),
        "replay_s": min(replay_s),
        "server_median_s": statistics.median(server_s),
        "replay_median_s": statistics.median(replay_s),
        "entered_s": statistics.median(entered_s),
        "first_s": statistics.median(first_s),
    }


def report(result: dict[str, float], runs: int) -> str:
    ratio = result["replay_s"] / result["server_s"]
    median_ratio = result["replay_median_s"] / result["server_median_s"]
    per_message_us = result["replay_s"] / MESSAGES * 1e6
    verdict = "within" if ratio <= TARGET else "ABOVE"
    return "\n".join(
        [
            "# WebSocket replay benchmark",
            "",
            f"Produced by `python bench/websocket.py` on Python {platform.python_version()}, "
            f"{platform.machine()}, websockets {websockets.__version__}, llmcassette {llmcassette.__version__}.",
            f"A {MESSAGES}-message session ({TURNS} turns of 1 client message and 199 server messages, "
            f"{sum(len(m) for m in EXPECTED) / 1e6:.1f} MB), every received message checked; best and "
            f"median of {runs} sessions each, interleaved.",
            "",
            "| one session, connect to close | local `websockets` server (loopback) | llmcassette replay (in-process) | llmcassette / server |",
            "|---|---|---|---|",
            f"| best | {result['server_s'] * 1000:.1f} ms | {result['replay_s'] * 1000:.1f} ms | {ratio:.2f}× |",
            f"| median | {result['server_median_s'] * 1000:.1f} ms | {result['replay_median_s'] * 1000:.1f} ms "
            f"| {median_ratio:.2f}× |",
            "",
            f"Replay: {per_message_us:.0f} µs per message. Once per test (medians): entering the "
            f"cassette took {result['entered_s'] * 1000:.0f} ms, and its first session "
            f"{result['first_s'] * 1000:.0f} ms, as it reads the session from the file.",
            f"Target: at most {TARGET}× the server ({verdict} it).",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Fewer repetitions; no results file.")
    args = parser.parse_args()
    runs = 3 if args.quick else 15
    with tempfile.TemporaryDirectory() as folder:
        path = write_cassette(Path(folder))
        result = asyncio.run(measure(runs, path))
    text = report(result, runs)
    print(text)
    if not args.quick:
        (Path(__file__).parent / "WEBSOCKET_RESULTS.md").write_text(text, encoding="utf-8")
    return 0 if result["replay_s"] / result["server_s"] <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
