"""
A cassette cut short (a full disk, an interrupted copy) is refused as incomplete, never loaded as
a shorter cassette: every cut of a real file either fails, or gives back exactly the interactions
of the whole file. Both loaders are held to it (the whole parse and replay's lazy one), and lint.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import llmcassette
from llmcassette import CassetteFormatError, _lazy
from llmcassette._demo import CASSETTE as DEMO
from llmcassette._lazy import load_lazy
from llmcassette._lint import Rule, lint_paths
from llmcassette._storage import dumps_cassette, load_cassette, parse_cassette
from tests.corpus import CORPUS, MISSING_REASON, corpus_files, corpus_path

#: A real vcrpy-written stream recording (Anthropic SSE, several interactions).
VCRPY_FILE = "openllmetry/anthropic/test_anthropic_tools_streaming_legacy.yaml"

needs_corpus = pytest.mark.skipif(CORPUS is None, reason=MISSING_REASON)

Loaded = list[dict[str, Any]]


def parsed(raw: bytes, path: Path) -> Loaded:
    """Every interaction, as ``load_cassette`` reads the file (a whole parse)."""
    return [i.model_dump() for i in parse_cassette(raw, path=path).interactions]


def lazily(raw: bytes, path: Path) -> Loaded:
    """Every interaction, as replay reads the file (split, every response parsed on its own)."""
    # The bytes are handed over in memory: thousands of cuts written to disk would be slow.
    with mock.patch.object(_lazy, "read_cassette_bytes", lambda _: raw):
        tape = load_lazy(path)
        return [i.model_dump() for i in tape.interactions()]


LOADERS = [pytest.param(parsed, id="load_cassette"), pytest.param(lazily, id="load_lazy")]


def cut_results(
    raw: bytes, path: Path, offsets: Iterable[int], load: Callable[[bytes, Path], Loaded]
) -> dict[int, str]:
    """For each cut: "incomplete", "other error", "same", or "LOST" (loaded, but not the same)."""
    expected = load(raw, path)
    results: dict[int, str] = {}
    for offset in offsets:
        try:
            got = load(raw[:offset], path)
        except CassetteFormatError as exc:
            results[offset] = "incomplete" if " is incomplete: " in str(exc) else "other error"
            continue
        results[offset] = "same" if got == expected else "LOST"
    return results


def llmcassette_written() -> bytes:
    """The demo cassette: a real recording llmcassette wrote (SSE bodies, chunk records, timing)."""
    raw = DEMO.read_bytes()
    assert raw.endswith(b"\n...\n")
    return raw


@pytest.mark.parametrize("load", LOADERS)
def test_every_cut_of_an_llmcassette_file_is_refused_as_incomplete(load: Any) -> None:
    raw = llmcassette_written()
    # Until the schema line is whole, the bytes do not say who wrote the file; what is left is not
    # a cassette then (a bare scalar, or no `interactions`), except the empty file, which is one.
    declared = raw.index(b"llmcassette_schema:") + len(b"llmcassette_schema:")
    results = cut_results(raw, Path("chat.yaml"), range(1, len(raw)), load)
    assert {results[offset] for offset in range(1, declared)} == {"other error"}
    tail = {offset: results[offset] for offset in range(declared, len(raw))}
    # Only the last cut keeps the whole `...` line: it loses the final line break alone.
    assert tail.pop(len(raw) - 1) == "same"
    assert set(tail.values()) == {"incomplete"}


@needs_corpus
@pytest.mark.parametrize("load", LOADERS)
def test_every_cut_of_a_real_cassette_saved_by_llmcassette_is_refused(load: Any) -> None:
    raw = dumps_cassette(load_cassette(corpus_path(VCRPY_FILE))).encode("utf-8")
    declared = raw.index(b"llmcassette_schema:") + len(b"llmcassette_schema:")
    results = cut_results(raw, Path("saved.yaml"), range(declared, len(raw) - 1), load)
    assert set(results.values()) == {"incomplete"}


@needs_corpus
@pytest.mark.parametrize("load", LOADERS)
def test_a_real_vcrpy_file_cut_mid_line_is_refused_and_only_line_breaks_go_unseen(load: Any) -> None:
    # vcrpy writes no end marker and no count. It writes `version: 1` last and ends every line,
    # so a cut in the middle of a line is told by the two missing together. A cut exactly at a
    # line break is caught only when it leaves an interaction without a required key (vcrpy
    # writes `uri` and `status` last in theirs): the README says so.
    raw = corpus_path(VCRPY_FILE).read_bytes()
    results = cut_results(raw, Path("vcrpy.yaml"), range(1, len(raw)), load)
    mid_line = {offset: result for offset, result in results.items() if raw[offset - 1 : offset] != b"\n"}
    assert "LOST" not in mid_line.values()
    assert "incomplete" in mid_line.values()
    lost = [offset for offset, result in results.items() if result == "LOST"]
    assert all(raw[offset - 1 : offset] == b"\n" for offset in lost)
    # Few: after `interactions:` (nothing yet) and between a status code and its message.
    assert len(lost) <= 3, [raw[offset - 40 : offset] for offset in lost]


@needs_corpus
def test_cuts_of_every_corpus_cassette_saved_by_llmcassette_are_refused() -> None:
    # Every line break (where a cut leaves text that looks whole) and a seeded sample of offsets.
    rng = random.Random(11)
    for rel in corpus_files():
        document = load_cassette(corpus_path(rel))
        raw = dumps_cassette(document).encode("utf-8")
        declared = raw.index(b"llmcassette_schema:") + len(b"llmcassette_schema:")
        breaks = [i + 1 for i in range(declared, len(raw) - 1) if raw[i : i + 1] == b"\n"]
        sample = rng.sample(range(declared, len(raw) - 1), min(40, len(raw) - 1 - declared))
        for offset in sorted({*breaks, *sample}):
            with pytest.raises(CassetteFormatError, match=" is incomplete: "):
                parse_cassette(raw[:offset], path=Path(rel))


def test_the_error_names_the_file_and_says_what_to_do(tmp_path: Path) -> None:
    raw = llmcassette_written()
    path = tmp_path / "chat.yaml"
    path.write_bytes(raw[: raw.index(b"data: [DONE]")])
    with pytest.raises(CassetteFormatError) as info:
        load_cassette(path)
    assert str(info.value) == (
        f"llmcassette: cassette {str(path)!r} is incomplete: llmcassette ends every cassette with a "
        "`...` line and this file stops before it, so it was cut short (a full disk, an interrupted "
        "copy) and interactions or bytes of a body may be missing. Restore it from version control, "
        "or delete it and record the cassette again; if it is whole (a tool that rewrote it "
        "dropped the line), add `...` as its last line."
    )
    assert info.value.path == path


@pytest.mark.parametrize(
    "cut",
    [
        # The two cases: a stream that would replay as 200 with none of its bytes, and a
        # cut between interactions that would lose the rest silently.
        pytest.param(lambda raw: raw[: raw.index(b"      string: |") + 16], id="in-a-stream-body"),
        pytest.param(lambda raw: raw[: raw.index(b"- request:", 100)], id="between-interactions"),
    ],
)
def test_lint_reports_a_cut_file(tmp_path: Path, cut: Callable[[bytes], bytes]) -> None:
    path = tmp_path / "chat.yaml"
    path.write_bytes(cut(llmcassette_written()))
    (finding,) = lint_paths([path]).findings
    assert finding.rule is Rule.SCHEMA
    assert finding.message.startswith("is incomplete: ")


def test_lint_of_a_folder_reports_a_file_cut_before_its_interactions(tmp_path: Path) -> None:
    raw = llmcassette_written()
    (tmp_path / "chat.yaml").write_bytes(raw[: raw.index(b"interactions:")])
    report = lint_paths([tmp_path])
    assert report.skipped == []
    (finding,) = report.findings
    assert finding.message.startswith("is incomplete: ")


def test_comments_and_blank_lines_may_follow_the_end_marker(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    path.write_bytes(llmcassette_written() + b"\n# reviewed\n\n")
    assert len(load_cassette(path).interactions) == len(load_cassette(DEMO).interactions)


def test_a_vcrpy_file_without_a_final_line_break_but_with_its_version_loads(tmp_path: Path) -> None:
    path = tmp_path / "hand.yaml"
    path.write_bytes(
        b"interactions:\n- request: {method: GET, uri: 'http://h/'}\n  response: {status: {code: 200}}\n"
        b"version: 1"
    )
    assert len(load_cassette(path).interactions) == 1


def test_a_file_cut_after_replay_remembered_it_is_refused(tmp_path: Path) -> None:
    # Replay keeps what it learned of a file in a cache keyed by the file's bytes: the check on
    # the bytes comes first, so a cut file is refused whatever was remembered of the whole one.
    raw = llmcassette_written()
    path = tmp_path / "chat.yaml"
    path.write_bytes(raw)
    for _ in range(2):
        with llmcassette.use_cassette(path) as cassette:
            assert len(cassette.interactions) == 2
    path.write_bytes(raw[: raw.rindex(b"- request:")])
    with pytest.raises(CassetteFormatError, match=" is incomplete: "), llmcassette.use_cassette(path):
        pass
