"""The replay cache: used only for the exact bytes it was made from, never stale, never trusted broken."""

from __future__ import annotations

import json
import marshal
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

import llmcassette
from llmcassette import _cache
from llmcassette._lazy import load_lazy
from llmcassette._models import CassetteDocument

URL = "https://api.test/v1/chat"


def _document(answers: list[str]) -> CassetteDocument:
    return CassetteDocument.model_validate(
        {
            "interactions": [
                {
                    "request": {"method": "POST", "uri": URL, "parsed_body": {"q": i}},
                    "response": {
                        "status": {"code": 200, "message": "OK"},
                        "headers": {"content-type": ["text/event-stream"]},
                        "body": {"string": answer},
                        "stream": {"chunks": [len(answer) - 2, 2]},
                    },
                }
                for i, answer in enumerate(answers)
            ]
        }
    )


def _replay(path: Path, count: int) -> list[list[bytes]]:
    played = []
    with llmcassette.use_cassette(path), httpx.Client() as client:
        for i in range(count):
            with client.stream("POST", URL, content=json.dumps({"q": i}, separators=(",", ":"))) as r:
                played.append(list(r.iter_raw()))
    return played


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(_cache.CACHE_DIR_ENV, str(folder))
    return folder


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.entry"))


def test_a_second_entry_reads_no_yaml_and_plays_the_same(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, _document(["data: one\n\n", "data: two\n\n"]))
    first = _replay(path, 2)
    assert first == [[b"data: one", b"\n\n"], [b"data: two", b"\n\n"]]
    assert len(_entries(cache)) == 1

    def no_yaml(*args: object, **kwargs: object) -> None:
        raise AssertionError("the YAML was read again")

    with monkeypatch.context() as patch:
        patch.setattr("llmcassette._lazy.load_yaml", no_yaml)
        assert _replay(path, 2) == first
        lazy = load_lazy(path)
    # The models (for messages and saving) come from the file itself.
    assert lazy.request(1).parsed_body == {"q": 1}
    assert lazy.response(0).content == b"data: one\n\n"
    assert [i.model_dump() for i in lazy.interactions()] == [
        i.model_dump() for i in llmcassette.load_cassette(path).interactions
    ]


def test_a_changed_file_is_read_afresh_never_from_the_old_entry(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, _document(["data: one\n\n"]))
    assert _replay(path, 1) == [[b"data: one", b"\n\n"]]
    # The same size and the same modification time: only the content tells them apart.
    info = path.stat()
    path.write_text(path.read_text().replace("data: one", "data: new"))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert _replay(path, 1) == [[b"data: new", b"\n\n"]]
    assert len(_entries(cache)) == 2


def test_files_that_differ_only_in_the_middle_share_an_entry_and_take_turns_in_it(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An entry is found by the file's size and its first and last 16 KiB, and used only for the
    # file it holds a copy of: two files alike at both ends never play each other's answers.
    path = tmp_path / "c.yaml"
    padding = "pad " * 10_000  # (40 KB before and after the answer that changes)
    answers = [f"data: {padding}\n\n", "data: one\n\n", f"data: {padding}\n\n"]
    llmcassette.save_cassette(path, _document(answers))
    before = path.read_bytes()
    after = before.replace(b"data: one", b"data: new")
    assert len(after) == len(before) and len(before) > 2 * _cache._SAMPLE_BYTES + 1000
    assert _cache.entry_key(after) == _cache.entry_key(before)
    read: list[Path] = []
    load = llmcassette._lazy._split

    def counted(raw: bytes) -> object:
        read.append(path)
        return load(raw)

    monkeypatch.setattr(llmcassette._lazy, "_split", counted)
    for content, word, from_yaml in [
        (before, b"one", True),
        (before, b"one", False),
        (after, b"new", True),
        (after, b"new", False),
        (before, b"one", True),
    ]:
        path.write_bytes(content)
        read.clear()
        assert _replay(path, 3)[1] == [b"data: " + word, b"\n\n"]
        assert bool(read) == from_yaml
        assert len(_entries(cache)) == 1


def test_an_entry_from_other_code_is_not_used(tmp_path: Path, cache: Path) -> None:
    raw = b"interactions: []\n"
    key = _cache.entry_key(raw)
    _cache._code_fingerprint.cache_clear()
    try:
        module = Path(_cache.__file__)
        info = module.stat()
        os.utime(module, ns=(info.st_atime_ns, info.st_mtime_ns + 1))
        try:
            assert _cache.entry_key(raw) != key
        finally:
            os.utime(module, ns=(info.st_atime_ns, info.st_mtime_ns))
    finally:
        _cache._code_fingerprint.cache_clear()
    assert _cache.entry_key(raw) == key


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="cut-short"),
        pytest.param(lambda data: data[:-40] + bytes(40), id="zeroed-tail"),
        pytest.param(lambda data: data[:40] + bytes([data[40] ^ 1]) + data[41:], id="one-bit"),
        pytest.param(lambda data: data[:-900] + bytes([data[-900] ^ 1]) + data[-899:], id="one-bit-late"),
        pytest.param(lambda data: data[:80] + bytes([data[80] ^ 1]) + data[81:], id="one-bit-in-the-data"),
        pytest.param(lambda data: data + b"\n", id="longer"),
        pytest.param(lambda data: b"garbage", id="garbage"),
        pytest.param(lambda data: b"", id="empty"),
    ],
)
@pytest.mark.parametrize("words", [1, 60_000], ids=["small", "mapped"])
def test_a_damaged_entry_is_ignored_and_written_again(
    tmp_path: Path, cache: Path, damage: object, words: int
) -> None:
    # A large entry is read through a map of its file rather than copied: damaged, it is
    # refused the same way.
    path = tmp_path / "c.yaml"
    long = " word" * words
    llmcassette.save_cassette(path, _document([f"data: one{long}\n\n", f"data: two{long}\n\n"]))
    expected = _replay(path, 2)
    (entry,) = _entries(cache)
    assert (entry.stat().st_size >= _cache._MAP_OVER) == (words > 1)
    good = entry.read_bytes()
    raw = path.read_bytes()
    held = _cache.read_entry(entry.stem, raw)
    assert held is not None
    entry.write_bytes(damage(good))  # type: ignore[operator]
    assert _cache.read_entry(entry.stem, raw) is None
    assert _replay(path, 2) == expected
    # Written again, whole, with the same data (not always the same bytes: marshal marks the
    # objects it meets twice, and which strings are shared depends on what ran before).
    assert _cache.read_entry(entry.stem, raw) == held


def test_an_entry_of_the_wrong_shape_is_ignored(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, _document(["data: one\n\n"]))
    expected = _replay(path, 1)
    raw = path.read_bytes()
    assert _cache.write_entry(_cache.entry_key(raw), ("not", "an", "entry"), raw)
    assert _replay(path, 1) == expected


def test_a_dated_vcrpy_file_is_cached_with_its_dates_as_text(tmp_path: Path, cache: Path) -> None:
    # vcrpy files may hold dates, which the cache's plain data could not: they are read as the
    # text they are written as (no cassette field holds a date), and such a file is cached too.
    path = tmp_path / "dated.yaml"
    path.write_text(
        "interactions:\n- request:\n    body: '{\"q\":0}'\n    headers: {}\n    method: POST\n"
        f"    uri: {URL}\n  response:\n    body:\n      string: hello\n    headers: {{}}\n"
        "    status: {code: 200, message: OK}\n  recorded_at: 2026-01-01T00:00:00Z\n"
    )
    for _ in range(2):
        assert _replay(path, 1) == [[b"hello"]]
    assert len(_entries(cache)) == 1


def test_a_file_the_cache_cannot_hold_still_replays(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No value YAML's safe loader makes is beyond marshal today; one that is (a new type in a
    # newer PyYAML) must cost the cache, never the replay.
    def refuse(value: object) -> bytes:
        raise ValueError("unmarshallable object")

    monkeypatch.setattr(_cache, "marshal", SimpleNamespace(dumps=refuse, loads=marshal.loads))
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, _document(["data: one\n\n"]))
    for _ in range(2):
        assert _replay(path, 1) == [[b"data: one", b"\n\n"]]
    assert _entries(cache) == []


def test_the_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_cache.CACHE_DIR_ENV, "")
    assert _cache.cache_dir() is None
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, _document(["data: one\n\n"]))
    assert _replay(path, 1) == [[b"data: one", b"\n\n"]]
    assert _replay(path, 1) == [[b"data: one", b"\n\n"]]


def test_the_default_folder_is_the_users_cache_not_the_cassettes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_cache.CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    assert _cache.cache_dir() == Path("/somewhere/cache/llmcassette")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "/home/someone")
    assert _cache.cache_dir() == Path("/home/someone/.cache/llmcassette")


def test_the_folder_tells_git_to_ignore_it(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, _document(["data: one\n\n"]))
    _replay(path, 1)
    assert (cache / ".gitignore").read_text() == "*\n"


def _write_many(folder: str, key: str, seed: int) -> None:
    os.environ[_cache.CACHE_DIR_ENV] = folder
    for n in range(200):
        assert _cache.write_entry(key, {"writer": seed, "n": n, "pad": bytes(5000)}, b"concurrent")


def test_concurrent_writers_leave_a_whole_entry(cache: Path) -> None:
    key = _cache.entry_key(b"concurrent")
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_many, args=(str(cache), key, seed)) for seed in range(3)]
    for writer in writers:
        writer.start()
    seen = 0
    while any(writer.is_alive() for writer in writers):
        value = _cache.read_entry(key, b"concurrent")
        if value is not None:
            assert value["pad"] == bytes(5000) and value["writer"] in (0, 1, 2)
            seen += 1
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert _cache.read_entry(key, b"concurrent")["n"] == 199  # type: ignore[index]
    assert [p.name for p in cache.iterdir() if p.name.endswith(".tmp")] == []


def _replayed_after_spoiling_played(tmp_path: Path, spoil: Callable[[list[Any]], list[Any]]) -> None:
    # A two-stream cassette entered once (its entry written), the entry's column of played
    # answers rewritten by `spoil`, then entered again: it replays what the file holds.
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, _document(["data: one\n\n", "data: two\n\n"]))
    expected = _replay(path, 2)
    raw = path.read_bytes()
    key = _cache.entry_key(raw)
    version, extras, lines, item_extras, played, keys = _cache.read_entry(key, raw)  # type: ignore[misc]
    assert _cache.write_entry(key, (version, extras, lines, item_extras, spoil(played), keys), raw)
    assert _replay(path, 2) == expected


def test_a_response_of_the_wrong_shape_in_an_entry_is_read_from_the_file(tmp_path: Path, cache: Path) -> None:
    def spoil(played: list[Any]) -> list[Any]:
        second = list(played[1])
        second[2] = b"\x01"  # chunks that are no tuple of chunks
        played[1] = tuple(second)
        return played

    _replayed_after_spoiling_played(tmp_path, spoil)


def test_an_entry_whose_columns_differ_in_length_is_read_from_the_file(tmp_path: Path, cache: Path) -> None:
    _replayed_after_spoiling_played(tmp_path, lambda played: played[:-1])


def test_a_file_named_json_is_not_cached_and_its_bytes_under_another_name_are_checked(
    tmp_path: Path, cache: Path
) -> None:
    # An entry is only ever made from bytes that passed the check for a file cut short, which a
    # `.json` name skips, and a file entered from its entry is not checked again: the same bytes
    # named `.yaml` must still be refused.
    whole = tmp_path / "c.yaml"
    llmcassette.save_cassette(whole, _document(["data: one\n\n"]))
    cut = whole.read_bytes().rstrip().removesuffix(b"...")
    named_json = tmp_path / "c.json"
    named_json.write_bytes(cut)
    for _ in range(2):
        assert _replay(named_json, 1) == [[b"data: one", b"\n\n"]]
    named_yaml = tmp_path / "d.yaml"
    named_yaml.write_bytes(cut)
    with pytest.raises(llmcassette.CassetteFormatError, match="is incomplete"):
        _replay(named_yaml, 1)
    assert _entries(cache) == []


@pytest.mark.parametrize("at", [0, 70_000, 150_000, 299_999 - 20_000, 299_999])
def test_an_entry_is_found_only_for_its_very_bytes_compared_block_by_block(
    tmp_path: Path, cache: Path, at: int
) -> None:
    # The file is compared with the entry's copy a block at a time (64 KiB): a byte changed in
    # any block, sampled for the name or not, finds no entry.
    raw = bytes(range(256)) * 1171 + b"\n" * 224  # (300,000 bytes: five blocks, the last short)
    path = tmp_path / "c.yaml"
    path.write_bytes(raw)
    assert _cache.find_entry(path) is None
    assert _cache.write_entry(_cache.entry_key(raw), {"answer": 42}, raw)
    found = _cache.find_entry(path)
    assert found is not None and found.value == {"answer": 42} and found.source() == raw
    changed = bytearray(raw)
    changed[at] ^= 1
    path.write_bytes(changed)
    # (a change outside the sampled ends keeps the name: only the comparison tells them apart)
    assert (_cache.entry_key(bytes(changed)) == found.key) == (16_384 <= at < len(raw) - 16_384)
    assert _cache.find_entry(path) is None
    path.write_bytes(raw)
    assert _cache.find_entry(path) is not None


def test_answers_with_the_same_headers_share_them_in_an_entry(tmp_path: Path, cache: Path) -> None:
    # (marshal writes a tuple met again as a reference: entering makes it, and leaving frees it,
    # once; a response's headers are never changed in place, so sharing them is safe)
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, _document(["data: one\n\n", "data: two\n\n", "data: three\n\n"]))
    expected = _replay(path, 3)
    lazy = load_lazy(path)
    assert lazy._found is not None
    first, second, third = (lazy.cached_answer(index) for index in range(3))
    assert first is not None and second is not None and third is not None
    assert first[1] == (("content-type", "text/event-stream"),) and first[1] is second[1] is third[1]
    assert _replay(path, 3) == expected
