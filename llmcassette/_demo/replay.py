"""
Replay the demo cassette to the example client and describe what the client got: its results,
and per response the chunks the cassette delivered, from the cassette's attempt log.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from .._api import use_cassette
from .._attempts import Attempt
from .._cassette import Cassette
from .._framing import Framing, detect_framing, event_ends
from .._models import header_get
from .._modes import Pace, parse_pace
from .._storage import load_cassette
from . import CASSETTE
from .client import DEFAULT_BASE_URL, ChatClient, ChatResult
from .scenario import converse

__all__ = ["recorded_base_url", "replay_lines", "run_demo"]

_LABEL_WIDTH = 11


def _display_path(path: Path) -> str:
    relative = os.path.relpath(path.resolve())
    return relative if not relative.startswith("..") else str(path.resolve())


def _pace_name(pace: Pace) -> str:
    speed = parse_pace(pace)
    if speed is None:
        return "instant"
    return "recorded" if speed == 1.0 else f"{speed:g}x"


def recorded_base_url(path: Path) -> str:
    """The base URL the client used when ``path`` was recorded: what it must use to replay it."""
    for interaction in load_cassette(path).interactions:
        url = interaction.request.uri
        if url.endswith("/chat/completions"):
            return url.removesuffix("/chat/completions")
    return DEFAULT_BASE_URL


async def _replay(path: Path, pace: Pace) -> tuple[Cassette, list[ChatResult], float]:
    async with (
        use_cassette(path, record_mode="none", pace=pace) as cassette,
        ChatClient(recorded_base_url(path)) as client,
    ):
        start = time.monotonic()
        turns = await converse(client)
        replay_ms = (time.monotonic() - start) * 1000.0
    return cassette, turns, replay_ms


def _line(label: str, text: str) -> str:
    return f"    {label:<{_LABEL_WIDTH}}{text}"


def _result_lines(result: ChatResult) -> list[str]:
    lines = []
    if result.text:
        lines.append(_line("text", result.text))
    for call in result.tool_calls:
        lines.append(_line("tool call", f"{call.name}({call.arguments})  id {call.id}"))
    lines.append(_line("finish", str(result.finish_reason)))
    if result.usage is not None:
        usage = result.usage
        lines.append(
            _line(
                "usage",
                f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion"
                f" = {usage.total_tokens} tokens",
            )
        )
    return lines


def _event_summary(chunks: list[bytes], framing: Framing) -> str:
    body = b"".join(chunks)
    ends = event_ends(body, framing)
    end_set = set(ends)
    several = 0
    split: set[int] = set()
    position = 0
    for chunk in chunks:
        start, position = position, position + len(chunk)
        if sum(1 for end in ends if start < end <= position) > 1:
            several += 1
        if position not in end_set and position < len(body):
            # The boundary falls inside an event: find which one, so each counts once.
            split.add(next(i for i, end in enumerate(ends) if end > position))
    parts = [f"{len(ends)} {framing.value.upper()} events"]
    if several:
        parts.append(f"{several} chunk{'s' if several > 1 else ''} carried more than one")
    if split:
        parts.append(f"{len(split)} event{'s were' if len(split) > 1 else ' was'} cut across chunks")
    return ", ".join(parts)


def _stream_lines(attempt: Attempt, cassette: Cassette, show_timing: bool) -> list[str]:
    sizes = [len(chunk) for chunk in attempt.chunks]
    if attempt.interaction is None:
        return []
    response = cassette.interactions[attempt.interaction].response
    stream = response.stream
    if len(sizes) <= 1:
        lines = [_line("body", f"1 chunk, {sum(sizes)} bytes")]
    else:
        if stream is not None and stream.chunks is not None:
            how = "as recorded"
        else:
            how = "one per event (the cassette kept no boundaries)"
        lines = [_line("chunks", f"{len(sizes)}, {how} (bytes): {' '.join(map(str, sizes))}")]
        content_type = header_get(response.headers, "content-type")
        framing = detect_framing(content_type, response.content, url=attempt.url)
        if framing is not Framing.NONE:
            lines.append(_line("", _event_summary(attempt.chunks, framing)))
    if show_timing and response.elapsed_ms is not None:
        timing = f"head at {response.elapsed_ms:.0f} ms"
        if stream is not None and stream.offsets_ms:
            timing += f", chunks at {' '.join(f'{offset:.0f}' for offset in stream.offsets_ms)} ms"
        lines.append(_line("recorded", timing))
    return lines


def _recorded_ms(cassette: Cassette) -> float:
    total = 0.0
    for attempt in cassette.attempts:
        if attempt.interaction is None:
            continue
        response = cassette.interactions[attempt.interaction].response
        offsets = response.stream.offsets_ms if response.stream is not None else None
        total += max([response.elapsed_ms or 0.0, *(offsets or [])])
    return total


def replay_lines(path: Path, *, pace: Pace = "instant") -> tuple[list[str], list[ChatResult]]:
    """
    Replay the cassette at ``path`` (record mode ``none``: no network) to the example client;
    return the report, one line per item, and what the client got.
    """
    pace_name = _pace_name(pace)
    cassette, turns, replay_ms = asyncio.run(_replay(path, pace))
    lines: list[str] = []
    for attempt, result in zip(cassette.attempts, turns, strict=True):
        streamed = len(attempt.chunks) > 1
        lines.append("")
        lines.append(
            f"[{attempt.index + 1}] {attempt.method} {attempt.url} -> {attempt.status}"
            f"{', streamed' if streamed else ''}"
        )
        lines.extend(_result_lines(result))
        lines.extend(_stream_lines(attempt, cassette, show_timing=pace_name != "instant"))
    replayed = sum(1 for a in cassette.attempts if a.interaction is not None)
    lines.append("")
    lines.append(
        f"{len(cassette.attempts)} requests, {replayed} answered from the cassette, "
        f"{sum(1 for a in cassette.attempts if a.recorded)} sent to the network."
    )
    timing = (
        f"Replayed in {replay_ms:.0f} ms at pace '{pace_name}'; recorded in {_recorded_ms(cassette):.0f} ms"
    )
    lines.append(timing + (" (--pace recorded replays at that speed)." if pace_name == "instant" else "."))
    return lines, turns


def run_demo(path: Path = CASSETTE, *, pace: Pace = "instant") -> list[str]:
    """
    Replay the cassette at ``path`` (record mode ``none``: no network) to the example client, and
    return the report to print, one line per item.
    """
    lines, _ = replay_lines(path, pace=pace)
    return [
        f"Replaying {_display_path(path)} to the example client (llmcassette/_demo/client.py),",
        "record mode 'none': no network, no API key.",
        *lines,
    ]
