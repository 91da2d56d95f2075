"""Long text bodies written a slice at a time: the text YAML's emitter writes, read back the same."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

import llmcassette
from llmcassette._layout import load_cassette_yaml
from llmcassette._models import CassetteDocument
from llmcassette._storage import dumps_cassette

SSE = "".join(f'data: {{"n": {n}, "text": "tök {n} ✓"}}\n\n' for n in range(40))

# Texts a literal block holds: as PyYAML's emitter writes them, the same text to the byte.
AS_THE_EMITTER_WRITES = {
    "sse, keeps its line breaks": SSE,
    "one final line break": SSE.rstrip("\n") + "\n",
    "no final line break": SSE.rstrip("\n"),
    "first line indented": "  indented\n" + SSE,
    "first line empty": "\n" + SSE,
    "only line breaks": "\n" * 1200,
}
# Texts the emitter would quote (a line with trailing spaces or a leading tab, a character outside
# the BMP, which libyaml escapes): written as a literal block all the same, which gives them back.
ONLY_READ_BACK = {
    "trailing spaces": "line   \n   \n" + SSE,
    "a line that starts with a tab": "a\tb\n\n\n\tc\n" + SSE,
    # libyaml refuses a tab where it looks for the indentation of the first line: the block
    # names it (a file saved without it could not be loaded again).
    "the first line starts with a tab": "\tfirst\n" + SSE,
    "a line of spaces first": "   \n" + SSE,
    "astral": "🙂 emoji\n" + SSE,
    "a document marker as a line": "---\n...\n" + SSE,
}
# Texts a literal block cannot hold: dumped as before.
NOT_SET_ASIDE = {
    "lone cr": SSE.replace("\n\n", "\r\n", 3),
    "nel": SSE + "\x85",
    "line separator": SSE + "\u2028",
    "control character": SSE + "\x1b[0m",
    "byte order mark": "\ufeff" + SSE,
}


def _document(text: str) -> CassetteDocument:
    return CassetteDocument.model_validate(
        {
            "interactions": [
                {
                    "request": {"method": "POST", "uri": "https://api.test/v1/upload", "body": text},
                    "response": {
                        "status": {"code": 200, "message": "OK"},
                        "headers": {"content-type": ["text/event-stream"]},
                        "body": {"string": text},
                        "stream": {"chunks": [len(text.encode())]},
                    },
                },
                {
                    "request": {"method": "GET", "uri": "https://api.test/v1/other"},
                    "response": {"status": {"code": 200, "message": "OK"}, "body": {"string": text}},
                },
            ]
        }
    )


def _dumped(text: str, monkeypatch: pytest.MonkeyPatch, *, threshold: int) -> str:
    with monkeypatch.context() as patch:
        patch.setattr("llmcassette._file_bodies.FILE_BODY_MIN_BYTES", threshold)
        return dumps_cassette(_document(text))


def _read_back(written: str, text: str) -> None:
    for data in (yaml.safe_load(written), load_cassette_yaml(written.encode())):
        interactions: list[dict[str, Any]] = data["interactions"]
        assert interactions[0]["request"]["body"] == text
        assert interactions[0]["response"]["body"]["string"] == text
        assert interactions[1]["response"]["body"]["string"] == text


@pytest.mark.parametrize("name", list(AS_THE_EMITTER_WRITES))
def test_a_long_text_is_written_as_the_emitter_writes_it(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    text = AS_THE_EMITTER_WRITES[name]
    monkeypatch.setattr("llmcassette._block_text._SLICE_CHARS", 100)  # many slices
    by_emitter = _dumped(text, monkeypatch, threshold=10**9)
    in_slices = _dumped(text, monkeypatch, threshold=100)
    assert in_slices == by_emitter
    _read_back(in_slices, text)


@pytest.mark.parametrize("name", list(ONLY_READ_BACK))
def test_a_text_the_emitter_would_quote_is_read_back_the_same(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    text = ONLY_READ_BACK[name]
    written = _dumped(text, monkeypatch, threshold=100)
    assert "string: |" in written
    _read_back(written, text)


@pytest.mark.parametrize("name", list(NOT_SET_ASIDE))
def test_a_text_a_literal_block_cannot_hold_is_dumped_as_before(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    text = NOT_SET_ASIDE[name]
    written = _dumped(text, monkeypatch, threshold=100)
    assert written == _dumped(text, monkeypatch, threshold=10**9)
    _read_back(written, text)


def test_a_long_body_last_in_the_file_is_ended_by_the_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("llmcassette._file_bodies.FILE_BODY_MIN_BYTES", 100)
    text = SSE + "\n\n"
    document = CassetteDocument.model_validate(
        {
            "interactions": [
                {
                    "request": {"method": "GET", "uri": "https://api.test/v1/x"},
                    "response": {"status": {"code": 200, "message": "OK"}, "body": {"string": text}},
                }
            ]
        }
    )
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, document)
    written = path.read_text()
    assert written.endswith("\n\n\n...\n")
    assert (
        llmcassette.load_cassette(path).interactions[0].response.body
        == document.interactions[0].response.body
    )


def test_the_data_keeps_its_bodies_when_dumping_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llmcassette._file_bodies.FILE_BODY_MIN_BYTES", 100)

    def fail(data: Any) -> str:
        raise RuntimeError("emitter failed")

    monkeypatch.setattr("llmcassette._storage.dump_cassette_yaml", fail)
    document = _document(SSE)
    with pytest.raises(RuntimeError):
        dumps_cassette(document)
    assert document.interactions[0].response.body is not None
    assert document.interactions[0].response.body.string == SSE


def test_saving_a_long_body_does_not_copy_it_whole(tmp_path: Path) -> None:
    text = SSE * 4000  # about 6 MB
    document = _document(text)
    path = tmp_path / "c.yaml"
    tracemalloc.start()
    try:
        llmcassette.save_cassette(path, document)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The emitter, handed it, made several copies of it (its output, the text, the bytes).
    assert peak < len(text), peak
    assert llmcassette.load_cassette(path).interactions[0].response.content == text.encode()
