"""Rendering transcripts: text with a timing chart, a stable JSON document, an HTML page."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from llmcassette._demo import CASSETTE
from llmcassette._inspect import INSPECT_JSON_VERSION, render_html, render_json, render_text, timing_chart
from llmcassette._storage import load_cassette
from llmcassette._transcript import StreamFacts, Transcript, transcribe
from llmcassette.providers import ToolCall


def _transcript(**fields: object) -> Transcript:
    base: dict[str, object] = {
        "index": 0,
        "method": "POST",
        "url": "https://api.openai.com/v1/chat/completions",
        "provider": "openai",
        "model": "gpt-4o",
        "stream_requested": False,
        "last_input": "user: Hi",
        "status": 200,
        "reason": "OK",
        "content_type": "application/json",
        "elapsed_ms": 120.0,
    }
    return Transcript(**{**base, **fields})  # type: ignore[arg-type]


def _labelled(lines: list[str], label: str) -> list[str]:
    prefix = f"    {label:<11}"
    return [line[len(prefix) :] for line in lines if line.startswith(prefix)]


@pytest.mark.parametrize(
    ("offsets", "width", "chart"),
    [
        pytest.param([0.0, 100.0], 10, "█········█", id="first-and-last-columns"),
        pytest.param([50.0, 100.0], 4, "··██", id="waiting-shows-as-dots"),
        pytest.param([10.0, 10.0, 10.0, 95.0], 10, "·█·······▃", id="busier-columns-are-taller"),
        pytest.param([0.0, 0.0], 5, "····█", id="all-at-once"),
        pytest.param([], 8, "", id="nothing-recorded"),
    ],
)
def test_timing_chart(offsets: list[float], width: int, chart: str) -> None:
    assert timing_chart(offsets, width=width) == chart


def test_the_chart_is_as_wide_as_asked() -> None:
    offsets = [float(n * n) for n in range(40)]
    chart = timing_chart(offsets, width=30)
    assert len(chart) == 30
    assert chart[-1] != "·"  # the last chunk always ends the chart


def test_the_demo_transcript_as_text() -> None:
    lines = render_text(transcribe(load_cassette(CASSETTE), path=CASSETTE), cassette="chat.yaml")
    assert lines[0] == "chat.yaml: 2 interactions"
    assert lines[2] == "#0 POST http://127.0.0.1:8000/v1/chat/completions"
    assert _labelled(lines, "request") == [
        "openai-compatible · model demo-model · stream",
        "openai-compatible · model demo-model",
    ]
    assert _labelled(lines, "tool call") == [
        'get_weather({"city": "Paris", "unit": "celsius"})  id call_Qm2xR4vTz8'
    ]
    assert _labelled(lines, "stream") == ["15 events in 11 chunks, 3720 bytes, complete"]
    (timing,) = _labelled(lines, "timing")
    assert timing.startswith("first chunk at 320 ms, last at 676 ms; gaps min ")
    (chart,) = _labelled(lines, "chart")
    assert chart.endswith("  0–676 ms")
    # Nothing arrived for the first 320 of 676 ms: the chart starts with that wait.
    assert chart.startswith("·" * 20)


def test_long_text_is_cut_short_unless_full() -> None:
    text = "word " * 200
    item = _transcript(text=text, tool_calls=(ToolCall("f", json.dumps({"q": "x" * 400}), "call_1"),))
    short = render_text([item], cassette="c.yaml")
    (shown,) = _labelled(short, "text")
    assert len(shown) < 400
    assert shown.endswith(f"({len(text.strip()) - 300} more characters; --full shows all)")
    (call,) = _labelled(short, "tool call")
    assert "more characters" in call and call.endswith("id call_1")
    full = render_text([item], cassette="c.yaml", full=True)
    assert _labelled(full, "text") == [text.strip()]
    assert "x" * 400 in "\n".join(full)


def test_multi_line_text_lines_up_under_its_label() -> None:
    lines = render_text([_transcript(text="one\ntwo")], cassette="c.yaml")
    at = lines.index("    text       one")
    assert lines[at + 1] == " " * 15 + "two"


def test_nested_zero_usage_counters_are_hidden_unless_full() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "details.audio_tokens": 0, "details.cached": 3}
    item = _transcript(usage=usage)
    assert _labelled(render_text([item], cassette="c"), "usage") == [
        "prompt_tokens 5 · completion_tokens 2 · details.cached 3 (+1 zero)"
    ]
    assert _labelled(render_text([item], cassette="c", full=True), "usage") == [
        "prompt_tokens 5 · completion_tokens 2 · details.audio_tokens 0 · details.cached 3"
    ]


def test_a_stream_without_recorded_timing_has_no_chart() -> None:
    facts = StreamFacts(events=4, bytes=100, chunks=None, offsets_ms=None, end="complete")
    lines = render_text([_transcript(stream=facts)], cassette="c")
    assert _labelled(lines, "stream") == ["4 events (chunks not recorded), 100 bytes, complete"]
    assert _labelled(lines, "timing") == [] and _labelled(lines, "chart") == []


def test_json_document_is_complete_and_uncut() -> None:
    text = "x" * 5000
    facts = StreamFacts(
        events=3,
        bytes=90,
        chunks=2,
        offsets_ms=(15.0, 40.0),
        end="error",
        error="ReadTimeout: timed out",
    )
    item = _transcript(text=text, stream=facts, usage={"total_tokens": 9}, finish_reason="stop")
    document = json.loads(render_json([item], cassette="c.yaml"))
    assert document["version"] == INSPECT_JSON_VERSION
    assert document["cassette"] == "c.yaml"
    (entry,) = document["interactions"]
    assert entry["text"] == text
    assert entry["request"] == {
        "method": "POST",
        "url": "https://api.openai.com/v1/chat/completions",
        "provider": "openai",
        "model": "gpt-4o",
        "stream": False,
        "last_input": "user: Hi",
    }
    assert entry["response"] == {
        "status": 200,
        "reason": "OK",
        "content_type": "application/json",
        "elapsed_ms": 120.0,
    }
    assert entry["stream"] == {
        "events": 3,
        "bytes": 90,
        "chunks": 2,
        "first_chunk_ms": 15.0,
        "last_chunk_ms": 40.0,
        "gaps_ms": {"min": 25.0, "median": 25.0, "p95": 25.0, "max": 25.0},
        "offsets_ms": [15.0, 40.0],
        "end": "error",
        "error": "ReadTimeout: timed out",
    }
    assert (entry["usage"], entry["finish_reason"], entry["tool_calls"]) == ({"total_tokens": 9}, "stop", [])


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_page_escapes_content_and_charts_streams() -> None:
    facts = StreamFacts(events=2, bytes=10, chunks=2, offsets_ms=(5.0, 9.0), end="complete")
    hostile = _transcript(text="<script>alert(1)</script>", stream=facts)
    page = render_html([hostile, _transcript(index=1)], cassette="a<b>.yaml")
    parser = _Collect()
    parser.feed(page)
    assert "script" not in parser.tags  # the text stayed text
    assert "<script>alert(1)</script>" in "".join(parser.text)
    assert parser.tags.count("section") == 2
    assert parser.tags.count("svg") == 1  # only the stream with recorded timing has a chart
    assert parser.tags.count("line") == 2  # one tick per chunk


def test_odd_recorded_times_do_not_break_the_chart() -> None:
    # Hand-edited files can hold `.nan`, `.inf`, negative or out-of-order times.
    assert timing_chart([float("nan"), 0.0, 10.0], width=4) == "█··█"
    assert timing_chart([-5.0, 10.0, 5.0], width=4) == "█·██"
    assert timing_chart([float("inf")], width=4) == ""
    facts = StreamFacts(events=2, bytes=9, chunks=2, offsets_ms=(float("nan"), 5.0), end="complete")
    lines = render_text([_transcript(stream=facts)], cassette="c")
    assert _labelled(lines, "chart") == ["·" * 47 + "█  0–5 ms"]
    assert "nan" not in render_html([_transcript(stream=facts)], cassette="c").split("<svg")[1]


def _cassette_with_surrogates(tmp_path: Path) -> list[Transcript]:
    # JSON may escape a UTF-16 surrogate alone (a client's lone one) or a pair split across two
    # stream events (an emoji cut in half): Python decodes both to surrogates, which no UTF-8
    # output can hold.
    request = '{"model": "m", "messages": [{"role": "user", "content": "a\\ud800b"}]}'
    events = "".join(
        f'data: {{"choices": [{{"index": 0, "delta": {{"content": "{piece}"}}}}]}}\n\n'
        for piece in ("smile \\ud83d", "\\ude00!")
    )
    path = tmp_path / "surrogates.yaml"
    path.write_text(
        json.dumps(
            {
                "interactions": [
                    {
                        "request": {
                            "method": "POST",
                            "uri": "https://api.openai.com/v1/chat/completions",
                            "body": request,
                        },
                        "response": {
                            "status": {"code": 200},
                            "headers": {"content-type": ["text/event-stream"]},
                            "body": {"string": events + "data: [DONE]\n\n"},
                        },
                    }
                ]
            }
        )
    )
    return transcribe(load_cassette(path), path=path)


def test_surrogates_in_bodies_are_printed_escaped_or_joined(tmp_path: Path) -> None:
    transcripts = _cassette_with_surrogates(tmp_path)
    text = "\n".join(render_text(transcripts, cassette="c.yaml"))
    text.encode("utf-8")
    assert "user: a\\ud800b" in text and "smile \U0001f600!" in text
    document = render_json(transcripts, cassette="c.yaml")
    document.encode("utf-8")
    item = json.loads(document)["interactions"][0]
    assert item["request"]["last_input"] == "user: a\ud800b" and item["text"] == "smile \U0001f600!"
    page = render_html(transcripts, cassette="c.yaml")
    page.encode("utf-8")
    assert "a\\ud800b" in page
