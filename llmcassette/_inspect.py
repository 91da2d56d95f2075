"""
Rendering cassette transcripts (see :mod:`llmcassette._transcript`) for people and for machines.

- :func:`render_text`: a few labelled lines per interaction, with long text and tool arguments
  cut short unless ``full``, and for a stream whose chunk times were recorded a one-line chart of
  when the chunks arrived (:func:`timing_chart`);
- :func:`render_json`: one JSON document, stable for scripts::

      {
        "version": 1,
        "cassette": "path/to/file.yaml",
        "interactions": [
          {
            "index": 0,
            "request": {"method", "url", "provider", "model", "stream", "last_input"},
            "response": {"status", "reason", "content_type", "elapsed_ms"},
            "text": "...", "reasoning": "...",
            "tool_calls": [{"name", "arguments", "id"}],
            "usage": {"prompt_tokens": 5, ...},
            "finish_reason": "stop", "error": null,
            "stream": null | {"events", "bytes", "chunks", "first_chunk_ms", "last_chunk_ms",
                              "gaps_ms": null | {"min", "median", "p95", "max"},
                              "offsets_ms", "end", "error"}
          }
        ]
      }

  Times are milliseconds after the request was sent; a value the cassette does not hold is null.
  ``status`` is null when the connection failed before any response (``error`` says how).
  Text is never cut short in JSON.
- :func:`render_html`: a self-contained page with the same facts and an SVG chart per stream.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._session_view import SessionMessage, read_close, read_messages, size_text
from ._transcript import StreamFacts, Transcript

__all__ = ["INSPECT_JSON_VERSION", "render_html", "render_json", "render_text", "timing_chart"]

#: Version of the JSON document ``render_json`` writes; raised only when a key changes meaning.
INSPECT_JSON_VERSION = 1

_LABEL_WIDTH = 11
_INDENT = " " * 4
_TEXT_CHARS = 300  # a paragraph: enough to recognise an answer, short enough to scan many
_TEXT_LINES = 6
_ARGUMENT_CHARS = 160
_INPUT_CHARS = 120
_CHART_WIDTH = 48
_LEVELS = "▁▂▃▄▅▆▇█"
_SILENCE = "·"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _ms(value: float) -> str:
    if not math.isfinite(value) or value >= 10 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.1f}"


def _clip(text: str, limit: int, *, lines: int | None = None) -> str:
    """``text`` cut to ``limit`` characters (and ``lines`` lines), saying how much was left out."""
    kept = text
    if lines is not None and kept.count("\n") >= lines:
        kept = "\n".join(kept.split("\n")[:lines])
    kept = kept[:limit]
    if len(kept) == len(text):
        return text
    return f"{kept.rstrip()}… ({len(text) - len(kept)} more characters; --full shows all)"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _line(label: str, value: str) -> list[str]:
    """A labelled line; the lines of a multi-line value line up under the first."""
    first, *rest = value.split("\n")
    pad = _INDENT + " " * _LABEL_WIDTH
    return [f"{_INDENT}{label:<{_LABEL_WIDTH}}{first}".rstrip(), *(f"{pad}{line}".rstrip() for line in rest)]


def timing_chart(offsets_ms: Sequence[float], *, width: int = _CHART_WIDTH) -> str:
    """
    One line showing when chunks arrived: ``width`` columns span the time from the request to
    the last chunk, a block's height counts the chunks in its column (relative to the busiest
    column), and ``·`` marks a column in which nothing arrived. Empty for no offsets.
    """
    # A hand-edited file may hold `.nan` or `.inf`: such an arrival has no place on the chart.
    offsets = [offset for offset in offsets_ms if math.isfinite(offset)]
    if not offsets:
        return ""
    span = max(max(offsets), 0.0)
    counts = [0] * width
    for offset in offsets:
        column = width - 1 if span <= 0 else min(width - 1, max(0, int(offset / span * width)))
        counts[column] += 1
    busiest = max(counts)
    cells = []
    for count in counts:
        if count == 0:
            cells.append(_SILENCE)
        else:
            level = max(1, round(count / busiest * len(_LEVELS)))
            cells.append(_LEVELS[level - 1])
    return "".join(cells)


def _usage(usage: dict[str, int], full: bool) -> str:
    # Providers report many nested zero counters (`completion_tokens_details.audio_tokens: 0`):
    # noise unless asked for.
    shown = {k: v for k, v in usage.items() if full or "." not in k or v}
    text = " · ".join(f"{name} {value}" for name, value in shown.items())
    hidden = len(usage) - len(shown)
    return text + (f" (+{hidden} zero)" if hidden else "")


Rows = list[tuple[str, str]]


def _stream_rows(facts: StreamFacts) -> Rows:
    chunks = f"in {_plural(facts.chunks, 'chunk')}" if facts.chunks is not None else "(chunks not recorded)"
    end = facts.end + (f" ({facts.error})" if facts.error else "")
    rows = [("stream", f"{_plural(facts.events, 'event')} {chunks}, {facts.bytes} bytes, {end}")]
    first, last = facts.first_chunk_ms, facts.last_chunk_ms
    if facts.offsets_ms is None or first is None or last is None:
        return rows
    timing = f"first chunk at {_ms(first)} ms, last at {_ms(last)} ms"
    gaps = facts.gaps
    if gaps is not None:
        timing += (
            f"; gaps min {_ms(gaps.min_ms)} / median {_ms(gaps.median_ms)} /"
            f" p95 {_ms(gaps.p95_ms)} / max {_ms(gaps.max_ms)} ms"
        )
    rows.append(("timing", timing))
    rows.append(("chart", f"{timing_chart(facts.offsets_ms)}  0–{_ms(last)} ms"))
    return rows


def _rows(item: Transcript, full: bool) -> Rows:
    """The labelled facts of one interaction, in reading order."""
    request = [item.provider]
    if item.model:
        request.append(f"model {item.model}")
    if item.stream_requested:
        request.append("stream")
    rows = [("request", " · ".join(request))]
    if item.last_input:
        rows.append(("input", item.last_input if full else _clip(_one_line(item.last_input), _INPUT_CHARS)))
    if item.status is None:
        response = ["none: the connection failed before any answer"]
    else:
        response = [f"{item.status} {item.reason}".rstrip()]
    if item.content_type:
        response.append(item.content_type)
    if item.elapsed_ms is not None:
        response.append(f"head at {_ms(item.elapsed_ms)} ms")
    rows.append(("response", " · ".join(response)))
    if item.error:
        rows.append(("error", item.error))
    # Surrounding blank lines (Gemini ends thoughts with several) only push the next fact away.
    for label, text in (("reasoning", item.reasoning.strip()), ("text", item.text.strip())):
        if text:
            rows.append((label, text if full else _clip(text, _TEXT_CHARS, lines=_TEXT_LINES)))
    for call in item.tool_calls:
        arguments = call.arguments if full else _clip(_one_line(call.arguments), _ARGUMENT_CHARS)
        rows.append(("tool call", f"{call.name}({arguments})" + (f"  id {call.id}" if call.id else "")))
    if item.finish_reason:
        rows.append(("finish", item.finish_reason))
    if item.usage:
        rows.append(("usage", _usage(dict(item.usage), full)))
    if item.stream is not None:
        rows += _stream_rows(item.stream)
    if item.websocket is not None:
        rows += _session_rows(item.websocket, full)
    return rows


# A run of more messages than this of one event type from one side (audio deltas, most often) is
# shown as its first ones and a line for the rest, unless --full.
_RUN_SHOWN = 2
_DETAIL_CHARS = 100


_EVENT_WIDTH = 36


def _timeline_line(message: SessionMessage, full: bool, width: int) -> str:
    offset = f"{message.offset_ms:.1f} ms" if message.offset_ms is not None else "? ms"
    detail = message.detail() if full else _clip(message.detail(), _DETAIL_CHARS)
    size = size_text(message.size)
    return f"{offset:>10}  {message.sender:<6}  {message.event:<{width}}  {size:>8}  {detail}".rstrip()


def _session_rows(session: Mapping[str, Any], full: bool) -> Rows:
    """A WebSocket session: counts and close, then the timeline of its messages."""
    messages = read_messages(session)
    close = read_close(session)
    sent = sum(1 for message in messages if message.sender == "client")
    summary = (
        f"{_plural(len(messages), 'message')} ({sent} from client, {len(messages) - sent} from server), "
        f"{size_text(sum(message.size for message in messages))}, "
        + (close.text() if close is not None else "still open when saved")
    )
    if session.get("subprotocol"):
        summary += f" · subprotocol {session['subprotocol']}"
    width = min(_EVENT_WIDTH, max((len(message.event) for message in messages), default=0))
    lines: list[str] = []
    start = 0
    while start < len(messages):
        end = start
        key = (messages[start].sender, messages[start].event)
        while end + 1 < len(messages) and (messages[end + 1].sender, messages[end + 1].event) == key:
            end += 1
        run = messages[start : end + 1]
        if full or len(run) <= _RUN_SHOWN + 1:
            lines += [_timeline_line(message, full, width) for message in run]
        else:
            lines += [_timeline_line(message, full, width) for message in run[:_RUN_SHOWN]]
            rest = run[_RUN_SHOWN:]
            last = rest[-1].offset_ms
            until = f" until {last:.1f} ms" if last is not None else ""
            lines.append(
                f"{'':>10}  {'':<6}  … {len(rest)} more {key[1]} ({size_text(sum(m.size for m in rest))})"
                f"{until}; --full shows them"
            )
        start = end + 1
    if close is not None:
        offset = f"{close.offset_ms:.1f} ms" if close.offset_ms is not None else "? ms"
        lines.append(f"{offset:>10}  {close.by:<6}  {close.text()}")
    rows = [("session", summary)]
    if lines:
        rows.append(("timeline", "\n".join(lines)))
    return rows


def _title(item: Transcript) -> str:
    return f"#{item.index} {item.method} {item.url}"


_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _printable(text: str) -> str:
    """
    ``text`` as UTF-8 can hold it. JSON escapes UTF-16 surrogates, so a body may hold one alone
    (`"\\ud800"`) or a pair split across two stream events (an emoji cut in half), which Python
    decodes to surrogates no output can encode: a pair becomes its character, one alone its escape
    (a JSON escape too, so the JSON document still reads back to the same text).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        joined = _SURROGATE_PAIR.sub(
            lambda m: chr(0x10000 + ((ord(m[0][0]) - 0xD800) << 10) + ord(m[0][1]) - 0xDC00), text
        )
        return _SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", joined)
    return text


def render_text(transcripts: Sequence[Transcript], *, cassette: str, full: bool = False) -> list[str]:
    """The transcript of a cassette as lines of text (``full``: nothing cut short)."""
    lines = [f"{cassette}: {_plural(len(transcripts), 'interaction')}"]
    for item in transcripts:
        lines += ["", _title(item)]
        for label, value in _rows(item, full):
            lines += _line(label, value)
    return [_printable(line) for line in lines]


def render_json(transcripts: Sequence[Transcript], *, cassette: str) -> str:
    """The transcript of a cassette as one JSON document (layout in the module docstring)."""
    document = {
        "version": INSPECT_JSON_VERSION,
        "cassette": cassette,
        "interactions": [item.to_dict() for item in transcripts],
    }
    return _printable(json.dumps(document, indent=2, ensure_ascii=False))


# -- HTML ----------------------------------------------------------------------------------------

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:64em;color:#222}
section{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}
h1{font-size:1.3em}h2{font-size:1em;font-family:monospace;word-break:break-all}
dl{display:grid;grid-template-columns:8em 1fr;gap:.2em 1em;margin:0}
dt{color:#666}dd{margin:0;white-space:pre-wrap;word-break:break-word}
svg{background:#fafafa;border:1px solid #eee}.err{color:#b00}
"""

_SVG_WIDTH = 640
_SVG_HEIGHT = 56


def _svg(facts: StreamFacts) -> str:
    offsets = [(n, offset) for n, offset in enumerate(facts.offsets_ms or ()) if math.isfinite(offset)]
    span = max([1e-9, *(offset for _, offset in offsets)])
    ticks = []
    for number, offset in offsets:
        x = 4 + min(max(offset / span, 0.0), 1.0) * (_SVG_WIDTH - 8)
        label = html.escape(f"chunk {number}: {_ms(offset)} ms")
        ticks.append(
            f'<line x1="{x:.1f}" y1="8" x2="{x:.1f}" y2="{_SVG_HEIGHT - 16}" stroke="#36c" stroke-width="2">'
            f"<title>{label}</title></line>"
        )
    axis = (
        f'<text x="4" y="{_SVG_HEIGHT - 3}" font-size="11">0 ms</text>'
        f'<text x="{_SVG_WIDTH - 4}" y="{_SVG_HEIGHT - 3}" font-size="11" text-anchor="end">'
        f"{_ms(span)} ms</text>"
    )
    return (
        f'<svg width="{_SVG_WIDTH}" height="{_SVG_HEIGHT}" role="img" aria-label="chunk arrivals">'
        f"{''.join(ticks)}{axis}</svg>"
    )


def _html_section(item: Transcript) -> str:
    cells = "".join(
        f"<dt>{html.escape(label)}</dt><dd{' class=err' if label == 'error' else ''}>"
        f"{html.escape(value)}</dd>"
        for label, value in _rows(item, full=True)
        if label != "chart"  # the SVG below draws it
    )
    chart = _svg(item.stream) if item.stream is not None and item.stream.offsets_ms else ""
    return f"<section><h2>{html.escape(_title(item))}</h2><dl>{cells}</dl>{chart}</section>"


def render_html(transcripts: Sequence[Transcript], *, cassette: str) -> str:
    """The transcript of a cassette as a self-contained HTML page (no scripts, no external files)."""
    title = html.escape(f"{cassette}: {_plural(len(transcripts), 'interaction')}")
    sections = "\n".join(_html_section(item) for item in transcripts)
    return _printable(
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head>\n<body><h1>{title}</h1>\n{sections}\n</body></html>\n"
    )
