"""The replay cache: used only for the exact bytes it was made from, never stale, never trusted broken."""

from __future__ import annotations

import contextlib
import gc
import json
import marshal
import mmap
import multiprocessing
import os
import re
import time
import warnings
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


def test_a_file_named_json_is_cached_apart_and_its_bytes_under_another_name_are_checked(
    tmp_path: Path, cache: Path
) -> None:
    # An entry of a name checked for a file cut short is made only from bytes that passed the
    # check, and a file entered from its entry is not checked again. A `.json` name skips the
    # check: its entry is named apart, so the same bytes named `.yaml` must still be refused,
    # while the `.json` file is entered from its own entry.
    whole = tmp_path / "c.yaml"
    llmcassette.save_cassette(whole, _document(["data: one\n\n"]))
    cut = whole.read_bytes().rstrip().removesuffix(b"...")
    named_json = tmp_path / "c.json"
    named_json.write_bytes(cut)
    for _ in range(2):
        assert _replay(named_json, 1) == [[b"data: one", b"\n\n"]]
    assert len(_entries(cache)) == 1
    assert _cache.find_entry(named_json, checked=False) is not None
    named_yaml = tmp_path / "d.yaml"
    named_yaml.write_bytes(cut)
    assert _cache.find_entry(named_yaml) is None
    with pytest.raises(llmcassette.CassetteFormatError, match="is incomplete"):
        _replay(named_yaml, 1)
    assert len(_entries(cache)) == 1


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


# -- the size cap ---------------------------------------------------------------------------------


def _put(folder: Path, name: str, size: int, *, used_s_ago: float) -> Path:
    # An entry of about `size` bytes for the file whose bytes are `name`, last used that long ago.
    source = name.encode()
    key = _cache.entry_key(source)
    assert _cache.write_entry(key, bytes(size), source)
    path = folder / f"{key}.entry"
    _set_used(path, used_s_ago)
    return path


def _set_used(path: Path, used_s_ago: float) -> None:
    when = time.time() - used_s_ago
    os.utime(path, (when, when))


def _bytes_held(folder: Path) -> int:
    return sum(p.stat().st_size for p in _entries(folder))


def test_eviction_removes_the_entries_used_longest_ago_down_to_the_low_water_mark(cache: Path) -> None:
    # Ten entries of one size, used 10 to 1 hours ago; a cap one byte short of them all: the
    # oldest go until at most 80% of the cap is left, which takes three of them.
    paths = [_put(cache, f"cassette {i}", 10_000, used_s_ago=3600 * (10 - i)) for i in range(10)]
    size = paths[0].stat().st_size
    assert {p.stat().st_size for p in paths} == {size}
    assert _cache.evict(cache, max_bytes=10 * size) == 10 * size  # at the cap: nothing goes
    assert _entries(cache) == sorted(paths)
    left = _cache.evict(cache, max_bytes=10 * size - 1)
    assert _entries(cache) == sorted(paths[3:])
    assert left == 7 * size == _bytes_held(cache) <= 0.8 * (10 * size - 1)


def test_an_entry_read_is_marked_used_and_outlives_an_older_one(tmp_path: Path, cache: Path) -> None:
    # Use is told by the modification time, which a read sets anew: access times are not kept
    # on file systems mounted noatime.
    paths = []
    for word in ["one", "two", "six"]:
        path = tmp_path / f"{word}.yaml"
        llmcassette.save_cassette(path, _document([f"data: {word}\n\n"]))
        _replay(path, 1)
        paths.append(path)
    entries = {p.name: cache / f"{_cache.entry_key(p.read_bytes())}.entry" for p in paths}
    assert len({e.stat().st_size for e in entries.values()}) == 1
    for name, hours in [("one.yaml", 3), ("two.yaml", 2), ("six.yaml", 1)]:
        _set_used(entries[name], 3600 * hours)
    assert _replay(paths[0], 1) == [[b"data: one", b"\n\n"]]  # from its entry, marked used
    assert time.time() - entries["one.yaml"].stat().st_mtime < 60
    _cache.evict(cache, max_bytes=_bytes_held(cache) - 1)
    assert sorted(_entries(cache)) == sorted([entries["one.yaml"], entries["six.yaml"]])


@pytest.mark.parametrize("used_s_ago", [10, 120])
def test_an_entry_is_marked_used_at_most_once_a_minute(cache: Path, used_s_ago: float) -> None:
    # Marking costs a system call (about a microsecond): a cassette entered by many tests pays
    # it once a minute, not on every entry.
    path = _put(cache, "cassette", 100, used_s_ago=used_s_ago)
    before = path.stat().st_mtime_ns
    assert _cache.read_entry(path.stem, b"cassette") == bytes(100)
    marked = path.stat().st_mtime_ns != before
    assert marked == (used_s_ago > 60)
    if marked:
        assert time.time() - path.stat().st_mtime < 10


def test_a_write_that_takes_the_folder_over_the_cap_removes_the_oldest(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_cache.CACHE_MAX_MB_ENV, str(100_000 / 2**20))  # 100,000 bytes
    written = []
    for i in range(20):
        written.append(_put(cache, f"cassette {i}", 20_000, used_s_ago=3600 - i))
        assert written[-1].exists()
        assert _bytes_held(cache) <= 100_000
    # What is left is the newest, and 80% of the cap or a little over it since the last scan.
    left = _entries(cache)
    assert left == sorted(written[-len(left) :])
    assert 3 <= len(left) <= 4


def test_the_folder_is_scanned_on_a_first_write_then_only_when_a_count_passes_a_limit(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A scan of thousands of entries costs milliseconds: a process scans on its first write to
    # the folder, then when what it knows the folder holds passes the cap, or when it has
    # written a fifth of the cap since (what other workers wrote meanwhile is seen only so).
    scans: list[int] = []
    evict = _cache.evict

    def counted(folder: Path, *, max_bytes: int) -> int:
        assert folder == cache
        scans.append(len(_entries(folder)))
        return evict(folder, max_bytes=max_bytes)

    for i in range(8):  # 8 entries of about 100,000 bytes from earlier runs
        _put(cache, f"earlier {i}", 100_000, used_s_ago=3600 * (10 - i))
    monkeypatch.setattr(_cache, "evict", counted)
    monkeypatch.setattr(_cache, "_scanned", {})  # a new process
    monkeypatch.setenv(_cache.CACHE_MAX_MB_ENV, str(1_000_000 / 2**20))
    _put(cache, "cassette 0", 10_000, used_s_ago=0)
    assert scans == [9]  # the first write: about 810,000 bytes found
    for i in range(1, 19):
        _put(cache, f"cassette {i}", 10_000, used_s_ago=0)
    assert scans == [9]  # about 990,000 bytes known
    _put(cache, "cassette 19", 10_000, used_s_ago=0)
    assert scans == [9, 28]  # past the cap: the oldest entries go, to 80% of it
    assert _bytes_held(cache) <= 800_000
    assert len(_entries(cache)) == 28 - 3
    monkeypatch.setattr(_cache, "_scanned", {})  # another new process, with more room
    monkeypatch.setenv(_cache.CACHE_MAX_MB_ENV, str(10_000_000 / 2**20))
    for i in range(20, 220):
        _put(cache, f"cassette {i}", 10_000, used_s_ago=0)
    # Scanned at its first write, then each time it had written 2,000,000 bytes since.
    assert scans == [9, 28, 26, 26 + 199]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, 512 * 2**20, id="unset"),
        pytest.param("", 512 * 2**20, id="empty"),
        pytest.param("64", 64 * 2**20, id="whole"),
        pytest.param(" 0.5 ", 2**19, id="decimal-spaced"),
        pytest.param("1e3", 1000 * 2**20, id="exponent"),
        pytest.param("0", None, id="zero-no-cap"),
    ],
)
def test_the_cap_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: int | None
) -> None:
    if value is None:
        monkeypatch.delenv(_cache.CACHE_MAX_MB_ENV, raising=False)
    else:
        monkeypatch.setenv(_cache.CACHE_MAX_MB_ENV, value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _cache.cache_max_bytes() == expected


@pytest.mark.parametrize("value", ["lots", "1GB", "-1", "nan", "inf", "1,5"])
def test_a_cap_that_is_no_size_is_warned_about_once_and_the_default_holds(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    _cache._max_bytes.cache_clear()
    monkeypatch.setenv(_cache.CACHE_MAX_MB_ENV, value)
    message = (
        rf"^llmcassette: \$LLMCASSETTE_CACHE_MAX_MB is {re.escape(repr(value))}, which is not a size in "
        r"MiB; set it to a number such as 512 \(0 for no cap\), or unset it\. The replay cache keeps "
        r"to the default of 512 MiB meanwhile\.$"
    )
    with pytest.warns(UserWarning, match=message):
        assert _cache.cache_max_bytes() == 512 * 2**20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _cache.cache_max_bytes() == 512 * 2**20


def test_a_cassette_replays_under_a_cap_that_is_no_size(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cache._max_bytes.cache_clear()
    monkeypatch.setenv(_cache.CACHE_MAX_MB_ENV, "half a gig")
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, _document(["data: one\n\n"]))
    with pytest.warns(UserWarning, match="LLMCASSETTE_CACHE_MAX_MB"):
        assert _replay(path, 1) == [[b"data: one", b"\n\n"]]
    assert len(_entries(cache)) == 1


def test_a_cap_of_zero_is_no_cap(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(folder: Path, *, max_bytes: int) -> int:
        raise AssertionError("evicted with no cap")

    monkeypatch.setattr(_cache, "evict", refuse)
    monkeypatch.setenv(_cache.CACHE_MAX_MB_ENV, "0")
    for i in range(5):
        _put(cache, f"cassette {i}", 20_000, used_s_ago=0)
    assert len(_entries(cache)) == 5


def test_eviction_touches_nothing_but_entries_and_stale_temporary_files(cache: Path, tmp_path: Path) -> None:
    entry = _put(cache, "cassette", 1000, used_s_ago=7200)
    key = entry.stem
    (cache / "npm").mkdir()
    (cache / "npm" / f"{key}.entry").write_bytes(b"a folder's file")
    foreign = {
        ".gitignore": b"*\n",
        "notes.txt": b"mine",
        f"{key.upper()}.entry": b"not our spelling",
        f"{key[:-1]}.entry": b"one digit short",
        f"{key}.entry.bak": b"a copy",
        f".{key}.tmp": b"not our temporary name",
        f".{key}.0123456789ab.tmp.keep": b"nor this",
    }
    for name, content in foreign.items():
        (cache / name).write_bytes(content)
        _set_used(cache / name, 7200)
    outside = tmp_path / "outside"
    outside.write_bytes(b"linked to")
    other = _cache.entry_key(b"other")
    (cache / f"{other}.entry").symlink_to(outside)
    in_flight = cache / f".{key}.aaaaaaaaaaaa.tmp"
    in_flight.write_bytes(b"being written")
    _set_used(in_flight, 60)
    stale = cache / f".{key}.bbbbbbbbbbbb.tmp"
    stale.write_bytes(b"left by a writer that died")
    _set_used(stale, 2 * 3600)

    assert _cache.evict(cache, max_bytes=0) == 0
    assert not entry.exists() and not stale.exists()
    assert {name: (cache / name).read_bytes() for name in foreign} == foreign
    assert (cache / "npm" / f"{key}.entry").read_bytes() == b"a folder's file"
    assert (cache / f"{other}.entry").is_symlink() and outside.read_bytes() == b"linked to"
    assert in_flight.read_bytes() == b"being written"


def test_eviction_passes_over_what_other_processes_remove_or_use_meanwhile(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Entries 0 (used longest ago) to 9, one size each. Another process removes entry 9 while
    # the folder is scanned; once it is scanned, another reads entry 0 (marking it used) and
    # evicts entry 1. None of it is an error: entry 0 is kept, entry 1 counts as gone, and what
    # is left is as little under the low-water mark as one entry at a time allows.
    paths = [_put(cache, f"cassette {i}", 2_000, used_s_ago=3600 * (10 - i)) for i in range(10)]
    size = paths[0].stat().st_size
    scandir = os.scandir

    class Racing:
        def __init__(self, folder: Path) -> None:
            self.listing = scandir(folder)

        def __enter__(self) -> Racing:
            return self

        def __iter__(self) -> Any:
            for item in self.listing:
                if item.name == paths[9].name:
                    paths[9].unlink()
                yield item

        def __exit__(self, *exc: object) -> None:
            self.listing.close()
            _set_used(paths[0], 0)
            paths[1].unlink()

    with monkeypatch.context() as patch:
        patch.setattr(os, "scandir", Racing)
        # 9 entries found; at most int(0.8 * (9 * size - 1)) may be left: 7 entries.
        assert _cache.evict(cache, max_bytes=9 * size - 1) == 7 * size
    assert _entries(cache) == sorted([paths[0], *paths[3:9]])


def test_an_entry_removed_under_a_reader_is_read_whole_or_missed(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A large entry is read through a map of its file: removed by another process's eviction
    # while mapped, it stays readable (POSIX); removed before it is opened, it is a miss.
    value = {"pad": bytes(range(256)) * 2000}
    key = _cache.entry_key(b"large")
    assert _cache.write_entry(key, value, b"large")
    path = cache / f"{key}.entry"
    assert path.stat().st_size >= _cache._MAP_OVER
    unpack = _cache._unpack

    def removed_first(key: str, data: Any, *args: Any) -> Any:
        assert isinstance(data, mmap.mmap)
        path.unlink()
        return unpack(key, data, *args)

    with monkeypatch.context() as patch:
        patch.setattr(_cache, "_unpack", removed_first)
        assert _cache.read_entry(key, b"large") == value
    assert not path.exists()
    assert _cache.read_entry(key, b"large") is None


_WRITERS = 4
_WRITES = 80


def _value(seed: int, n: int) -> dict[str, Any]:
    # Every tenth entry large enough to be read through a map of its file.
    return {"seed": seed, "n": n, "pad": bytes([n]) * (300_000 if n % 10 == 3 else 8_000)}


def _write_and_read_under_a_tiny_cap(folder: str, seed: int, start: Any) -> None:
    os.environ[_cache.CACHE_DIR_ENV] = folder
    os.environ[_cache.CACHE_MAX_MB_ENV] = "1"
    start.wait()  # (all imported: the writes overlap)
    for n in range(_WRITES):
        source = f"{seed} {n}".encode()
        assert _cache.write_entry(_cache.entry_key(source), _value(seed, n), source)
        for other in range(_WRITERS):
            for m in range(max(0, n - 3), n + 1):
                source = f"{other} {m}".encode()
                found = _cache.read_entry(_cache.entry_key(source), source)
                assert found is None or found == _value(other, m)


def test_processes_writing_reading_and_evicting_at_once_leave_whole_entries(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(_WRITERS)
    workers = [
        context.Process(target=_write_and_read_under_a_tiny_cap, args=(str(cache), seed, start))
        for seed in range(_WRITERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    assert [p.name for p in cache.iterdir() if p.name.endswith(".tmp")] == []
    sources = {_cache.entry_key(f"{s} {n}".encode()): (s, n) for s in range(_WRITERS) for n in range(_WRITES)}
    left = _entries(cache)
    assert 0 < len(left) < _WRITERS * _WRITES
    for path in left:
        seed, n = sources[path.stem]
        assert _cache.read_entry(path.stem, f"{seed} {n}".encode()) == _value(seed, n)
    # Between its scans, a worker writes at most a fifth of the cap and one entry more.
    assert _bytes_held(cache) <= 2**20 * (1 + 0.2 * _WRITERS) + _WRITERS * 300_100
    monkeypatch.setenv(_cache.CACHE_MAX_MB_ENV, "1")
    assert _cache.write_entry(_cache.entry_key(b"last"), 0, b"last")
    assert _bytes_held(cache) <= 2**20


# -- found in review (h-review11): each failed before its defect was fixed ----------------------


def test_a_cap_too_large_to_count_in_bytes_never_raises(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cache._max_bytes.cache_clear()
    monkeypatch.setenv(_cache.CACHE_MAX_MB_ENV, "1e308")  # finite as a float: times 2**20, it is not
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, _document(["data: one\n\n"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (a warning about the value would be fair; a traceback is not)
        assert _replay(path, 1) == [[b"data: one", b"\n\n"]]
    assert len(_entries(cache)) == 1


def test_what_was_recorded_is_saved_even_when_the_cache_write_fails(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.servers import serve, stream_app

    path = tmp_path / "c.yaml"
    with serve(stream_app()) as base, httpx.Client() as client:
        with llmcassette.use_cassette(path, record_mode="new_episodes"):
            assert client.post(f"{base}/json", json={"q": 0}).json()["echo"] == {"q": 0}
        _cache._max_bytes.cache_clear()
        # The project's own pytest settings (and many users') turn warnings into errors.
        monkeypatch.setenv(_cache.CACHE_MAX_MB_ENV, "1GB")
        answered = []
        with warnings.catch_warnings(), contextlib.suppress(UserWarning):
            warnings.simplefilter("error")
            with llmcassette.use_cassette(path, record_mode="new_episodes"):
                assert client.post(f"{base}/json", json={"q": 0}).json()["echo"] == {"q": 0}  # replayed
                answered.append(client.post(f"{base}/json", json={"q": 1}).json()["echo"])  # recorded
    recorded = [i.request.parsed_body for i in llmcassette.load_cassette(path).interactions]
    # (a warning raised on entering, before anything is recorded, would lose nothing)
    assert recorded == [{"q": 0}, *answered]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
def test_cassettes_held_from_their_entries_hold_a_bounded_number_of_file_descriptors(
    tmp_path: Path, cache: Path
) -> None:
    from llmcassette.proxy import CassetteServer

    paths = []
    for i in range(12):
        path = tmp_path / f"c{i}.yaml"
        # An entry of about 600 KB: over the size from which entries are mapped.
        llmcassette.save_cassette(path, _document([f"data: {i}{'x' * 300_000}\n\n"]))
        _replay(path, 1)
        paths.append(path)
    assert all(e.stat().st_size >= 256 * 1024 for e in _entries(cache))
    before = len(os.listdir("/proc/self/fd"))
    server = CassetteServer(paths)  # (built, not started: it holds its cassettes, warm)
    held = len(os.listdir("/proc/self/fd")) - before
    assert len(server.cassettes) == len(paths)
    assert held <= _cache._MOST_MAPS_HELD, f"{held} file descriptors held by {len(paths)} cassettes"
    for path, cassette in zip(paths, server.cassettes, strict=True):
        # Those let go read their copy of the file out of the map first: each reads as its file.
        assert [i.model_dump() for i in cassette.interactions] == [
            i.model_dump() for i in llmcassette.load_cassette(path).interactions
        ]


def test_entries_let_go_of_their_maps_beyond_the_most_held_and_keep_their_copies(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cache, "_MOST_MAPS_HELD", 3)
    found = []
    for i in range(7):
        raw = bytes([65 + i]) * 300_000 + b"\n"  # (an entry over the size from which they are mapped)
        path = tmp_path / f"c{i}.yaml"
        path.write_bytes(raw)
        assert _cache.write_entry(_cache.entry_key(raw), {"answer": i}, raw)
        entry = _cache.find_entry(path)
        assert entry is not None and entry.value == {"answer": i}
        found.append((entry, raw))
    mapped = [isinstance(held._data, mmap.mmap) for held, _ in found]
    assert mapped == [False] * 4 + [True] * 3  # the latest three, the others let go
    assert all(held.source() == raw for held, raw in found)
    del entry, found[-1]  # an entry let go by its holder is closed with it, and no longer counted
    gc.collect()
    path = tmp_path / "c0.yaml"
    assert _cache.find_entry(path) is not None
    assert [isinstance(held._data, mmap.mmap) for held, _ in found][-2:] == [True, True]
