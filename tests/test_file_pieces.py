"""Cutting a file too large to hold into its interactions: the same cuts as in the file read whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import llmcassette
from llmcassette import _lazy
from llmcassette._demo import CASSETTE as DEMO
from llmcassette._exceptions import CassetteFormatError
from llmcassette._file_pieces import other_line_breaks, split_file
from llmcassette._lazy import _FileReader, _split, load_lazy
from llmcassette._storage import read_cassette_bytes
from tests.corpus import corpus_files, corpus_path

ROOT = Path(__file__).resolve().parents[1]
# The corpus (when present) and the project's own cassettes.
FILES = [corpus_path(rel) for rel in corpus_files() if not rel.endswith(".json")] + sorted(
    (ROOT / "cassettes").rglob("*.yaml")
)


def test_every_file_of_the_corpus_and_of_cassettes_is_cut_as_when_read_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Reads of 64 bytes: marks fall across the edges of the blocks read.
    monkeypatch.setattr("llmcassette._file_pieces._BLOCK_BYTES", 64)
    assert FILES
    cut = 0
    for path in FILES:
        whole = _split(path.read_bytes())
        reader = _FileReader(path)
        try:
            scanned = split_file(reader, reader.size)
        finally:
            reader.close()
        if whole is None:
            assert scanned is None, path
            continue
        assert scanned is not None, path
        assert (scanned[0], scanned[1]) == (whole.header, whole.spans), path
        cut += 1
    assert cut * 2 > len(FILES)


@pytest.mark.parametrize(
    "text",
    [
        b"version: 1\ninteractions:\n- request: {}\n  response: {}\n- request: {}\n",  # no response
        b"interactions: []\n",  # not the block layout
        b"\xef\xbb\xbfinteractions:\n- request: {}\n  response: {}\n",  # a byte order mark
        b"interactions:\n-  request: {}\n  response: {}\n",  # keys past the column after the dash
        b"interactions:\n- request: {}\n  response: {}\n-  request: {}\n  response: {}\n",
        # a line break of YAML's other than "\n" (NEL, LINE and PARAGRAPH SEPARATOR)
        *[
            b"interactions:\n- request: {}\n  response:\n    x: |-\n      a\n" + mark + b"b\n"
            for mark in (b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9")
        ],
    ],
    ids=[
        "item without response",
        "flow list",
        "bom",
        "first item indented",
        "later item indented",
        "nel",
        "ls",
        "ps",
    ],
)
def test_a_file_the_whole_read_declines_is_declined(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(text)
    assert _split(text) is None
    reader = _FileReader(path)
    assert split_file(reader, reader.size) is None
    reader.close()


def test_a_large_file_cut_short_is_refused_as_incomplete_without_being_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check reads the head of the file and its end, not the file (see `split_file`). A cut
    # before the last item's response key leaves a piece the scan declines: that file is read
    # whole, and refused all the same.
    monkeypatch.setattr("llmcassette._lazy.MAX_CACHED_FILE_BYTES", 0)
    monkeypatch.setattr("llmcassette._file_pieces._TAIL_BYTES", 512)
    read_whole: list[Path] = []
    whole_read = read_cassette_bytes

    def reading(path: Path) -> bytes:
        read_whole.append(path)
        return whole_read(path)

    monkeypatch.setattr(_lazy, "read_cassette_bytes", reading)
    raw = DEMO.read_bytes()
    path = tmp_path / "cut.yaml"
    first = raw.index(b"\n- ") + 1
    last_response = raw.rindex(b"\n  response:") + 1
    for offset in range(first + 1, len(raw) - 1, max(1, (len(raw) - first) // 150)):
        path.write_bytes(raw[:offset])
        read_whole.clear()
        with pytest.raises(CassetteFormatError, match=" is incomplete: "):
            load_lazy(path).close()
        if offset > last_response + len(b"  response:"):
            assert not read_whole, offset
    path.write_bytes(raw)
    tape = load_lazy(path)
    assert not read_whole
    assert len(tape) == len(llmcassette.load_cassette(DEMO).interactions)
    tape.close()


_MARKS = (b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9")


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [*_MARKS, b"\xc2", b"\xe2", b"\x80", b"\x85", b"\xa8", b"\xa9", b"\xe2\x80", b"\xc2\xa9"]
            + [b"\xe2\x80\x9c", "é".encode(), b"a", b"\n", b"\r"]
        ),
        max_size=12,
    )
)
def test_other_line_breaks_are_found_as_a_search_for_each_finds_them(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert other_line_breaks(data) == any(mark in data for mark in _MARKS)
