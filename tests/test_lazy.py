"""Lazy loading: requests parsed at once, responses on first use, the same result as a full load."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import given, settings, strategies as st

import llmcassette
from llmcassette import _layout, _lazy, _storage
from llmcassette._lazy import LazyCassette, _parse_response_piece, _split, load_lazy
from llmcassette._models import MAX_TIME_MS, CassetteDocument
from llmcassette._plain import BodyBytes, TextLengths, TextTimes, compile_plain
from tests.corpus import corpus_files, corpus_path

SSE = 'data: {"x": 1}\n\ndata: [DONE]\n\n'


def _document() -> CassetteDocument:
    return CassetteDocument.model_validate(
        {
            "interactions": [
                {
                    "request": {"method": "POST", "uri": "https://api.test/v1/chat", "parsed_body": {"q": i}},
                    "response": {
                        "status": {"code": 200, "message": "OK"},
                        "headers": {"content-type": ["text/event-stream"]},
                        # The last field of each item is a literal block that keeps its newlines.
                        "body": {"string": SSE + f"data: {i}\n\n"},
                    },
                }
                for i in range(3)
            ]
        }
    )


def _same(lazy: LazyCassette, full: CassetteDocument) -> None:
    assert [i.model_dump() for i in lazy.interactions()] == [i.model_dump() for i in full.interactions]


def test_own_files_defer_their_responses(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, _document())
    lazy = load_lazy(path)
    assert lazy._raw is not None  # the fast path was taken
    assert lazy._responses == [None, None, None]
    assert lazy.request(1).parsed_body == {"q": 1}
    assert lazy.response(2).content == (SSE + "data: 2\n\n").encode()
    assert lazy._responses[0] is None and lazy._responses[2] is not None
    _same(lazy, llmcassette.load_cassette(path))


def test_vcrpy_layout_with_version_last(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(
        "interactions:\n"
        "- request:\n    body: '{\"a\": 1}'\n    headers: {}\n    method: POST\n    uri: https://x.test/a\n"
        "  response:\n    body:\n      string: |+\n        data: 1\n\n\n"
        "    headers: {}\n    status: {code: 200, message: OK}\n"
        "version: 1\n"
    )
    lazy = load_lazy(path)
    assert lazy._raw is not None
    assert lazy.version == 1
    assert lazy.response(0).content == b"data: 1\n\n\n"
    _same(lazy, llmcassette.load_cassette(path))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "interactions:\n"
            "- request: {method: GET, uri: 'https://x.test/a', headers: &h {accept: ['*/*']}}\n"
            "  response: {status: {code: 200, message: OK}, headers: *h, body: {string: one}}\n"
            "- request: {method: GET, uri: 'https://x.test/b', headers: {}}\n"
            "  response: {status: {code: 200, message: OK}, headers: *h, body: {string: two}}\n",
            id="alias-to-another-item",
        ),
        pytest.param(
            "interactions:\n"
            "- {request: {method: GET, uri: 'https://x.test/a'}, response: {status: {code: 204}}}\n",
            id="flow-style-item",
        ),
        pytest.param(
            "interactions:\r\n- request:\r\n    method: GET\r\n    uri: https://x.test/a\r\n"
            "  response:\r\n    status: {code: 200}\r\n",
            id="crlf-file",
        ),
        pytest.param(
            "interactions:\n  - request: {method: GET, uri: 'https://x.test/a'}\n"
            "    response: {status: {code: 200}}\n",
            id="indented-list",
        ),
    ],
)
def test_unusual_layouts_load_as_a_full_parse_would(tmp_path: Path, text: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_bytes(text.encode())
    _same(load_lazy(path), llmcassette.load_cassette(path))


def test_a_bad_request_fails_at_load_and_a_bad_response_on_use(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    llmcassette.save_cassette(path, _document())
    text = path.read_text()
    path.write_text(text.replace("code: 200", "code: twelve", 1))
    lazy = load_lazy(path)
    with pytest.raises(llmcassette.CassetteFormatError) as info:
        lazy.response(0)
    assert (info.value.interaction, info.value.field) == (0, "response.status.code")
    assert str(path) in str(info.value)

    path.write_text(text.replace("method: POST", "method: [POST]", 1))
    with pytest.raises(llmcassette.CassetteFormatError) as info:
        load_lazy(path)
    assert (info.value.interaction, info.value.field) == (0, "request.method")


def test_an_unparsable_url_fails_at_load_in_either_layout(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    llmcassette.save_cassette(path, _document())
    text = path.read_text().replace("https://api.test/v1/chat", "https://api.test:70000/v1/chat")
    # Cut into pieces (own layout), or parsed whole (a leading comment breaks the layout).
    whole = "# edited\n" + text.replace("interactions:\n", "interactions:\n  # x\n", 1)
    for variant, in_pieces in ((text, True), (whole, False)):
        assert (_split(variant.encode()) is not None) is in_pieces
        path.write_text(variant)
        with pytest.raises(llmcassette.CassetteFormatError, match="is not a URL: Port out of range") as info:
            load_lazy(path)
        assert (info.value.interaction, info.value.field) == (0, "request.uri")


@pytest.mark.parametrize("body", [b"\n", b"a\n", b"a\n\n", b" \n", b"data: x\n\n"])
def test_a_request_body_ending_in_line_breaks_keeps_them(tmp_path: Path, body: bytes) -> None:
    # Written as a block scalar (`|+`) just before `response:`: its last line break is the body's.
    request = {"method": "POST", "uri": "https://x/v1", "body": body.decode()}
    document = CassetteDocument.model_validate(
        {"interactions": [{"request": request, "response": {"status": {"code": 200}}}] * 2}
    )
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, document)
    lazy = load_lazy(path)
    assert [lazy.request(0).content, lazy.request(1).content] == [body, body]


def test_missing_file() -> None:
    with pytest.raises(llmcassette.CassetteNotFound, match="does not exist"):
        load_lazy(Path("/nonexistent/cassette.yaml"))


def test_a_large_file_is_read_piece_by_piece_and_not_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("llmcassette._lazy.MAX_CACHED_FILE_BYTES", 10)
    path = tmp_path / "big.yaml"
    llmcassette.save_cassette(path, _document())
    lazy = load_lazy(path)
    assert lazy._raw is None and lazy._reader is not None
    assert lazy.compiled(1).playback.body == (SSE + "data: 1\n\n").encode()
    # A compiled response does not keep its parsed model (nor its text) as well.
    assert lazy._responses == [None, None, None]
    # The cassette written again under it (a rename) leaves the loaded one readable as it was.
    replacement = tmp_path / "new.yaml"
    llmcassette.save_cassette(replacement, CassetteDocument())
    replacement.replace(path)
    assert lazy.compiled(2).playback.body == (SSE + "data: 2\n\n").encode()
    _same(lazy, _document())
    lazy.close()


def test_a_large_file_changed_in_place_is_refused_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("llmcassette._lazy.MAX_CACHED_FILE_BYTES", 10)
    path = tmp_path / "big.yaml"
    llmcassette.save_cassette(path, _document())
    lazy = load_lazy(path)
    with path.open("a") as handle:
        handle.write("# appended\n")
    with pytest.raises(llmcassette.CassetteError, match="changed in place while it was in use"):
        lazy.compiled(0)
    lazy.close()


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(st.integers(min_value=0, max_value=10**12), max_size=300),
    offsets=st.lists(
        # Up to the longest time a cassette may state (one day).
        st.floats(min_value=0, max_value=MAX_TIME_MS, allow_nan=False) | st.integers(0, 10**6),
        max_size=300,
    ),
    end=st.sampled_from(["complete", "error", "closed"]),
)
def test_a_streams_numbers_read_apart_are_what_yaml_reads(
    tmp_path_factory: pytest.TempPathFactory, chunks: list[int], offsets: list[float], end: str
) -> None:
    # Lengths and offsets are read apart from the YAML when they are plain decimals; any other
    # spelling (1e-05, an empty list) goes through YAML, and either way the result is the same.
    stream: dict[str, Any] = {"chunks": chunks, "offsets_ms": offsets, "end": end}
    if end == "error":
        stream["error"] = {"type": "ReadError", "message": "chunks: [1, 2]"}
    document = CassetteDocument.model_validate(
        {
            "interactions": [
                {
                    "request": {"method": "GET", "uri": "https://api.test/a"},
                    "response": {
                        "status": {"code": 200},
                        # A body that shows the same lines, indented as the body's own text.
                        "body": {"string": "    stream:\n      chunks: [1, 2]\n"},
                        "stream": stream,
                    },
                }
            ]
        }
    )
    path = tmp_path_factory.mktemp("numbers") / "c.yaml"
    llmcassette.save_cassette(path, document)
    _same(load_lazy(path), llmcassette.load_cassette(path))


def test_numbers_read_apart_are_used_only_where_yaml_found_the_emptied_lists() -> None:
    text = (
        b"  response:\n    status: {code: 200}\n"
        b"    stream:\n      chunks: [3, 4]\n      offsets_ms: [1.5, 2]\n"
    )
    item = _parse_response_piece(text)
    assert item is not None and item["response"]["stream"] == {"chunks": [3, 4], "offsets_ms": [1.5, 2]}
    assert isinstance(item["response"]["stream"]["offsets_ms"][1], int)
    # Asked to, the offsets are kept as their text, read on first use as the model reads them.
    item = _parse_response_piece(text, lists_as_text=True)
    assert item is not None and item["response"]["stream"] == {"chunks": [3, 4], "offsets_ms": [1.5, 2]}
    offsets = item["response"]["stream"]["offsets_ms"]
    assert isinstance(offsets, TextTimes) and offsets.text == b"1.5, 2"
    assert offsets.values() == [1.5, 2.0] and isinstance(offsets[1], float)
    assert _parse_response_piece(text.replace(b"2]", b"-2]"), lists_as_text=True) == {
        "response": yaml.safe_load(b"- " + text.replace(b"2]", b"-2]")[2:])[0]["response"]
    }
    # The same lines inside a quoted scalar: YAML finds no lists there, so the piece is read whole.
    quoted = (
        b"  response:\n    status: {code: 200}\n"
        b"    note: 'a\n\n    stream:\n      chunks: [3, 4]\n\n      b'\n"
    )
    assert _parse_response_piece(quoted) == {"response": yaml.safe_load(b"- " + quoted[2:])[0]["response"]}


@pytest.mark.parametrize("lists_as_text", [False, True])
def test_offsets_read_apart_are_the_responses_not_those_of_a_key_beside_it(lists_as_text: bool) -> None:
    # The `stream:` line found last belongs to a key of the interaction written after the
    # response, whose own offsets are empty: each list stays where it was.
    text = (
        b"  response:\n    status: {code: 200}\n"
        b"    stream:\n      chunks: [3, 4]\n      offsets_ms: []\n"
        b"  note:\n    stream:\n      offsets_ms: [1.5, 2]\n"
    )
    item = _parse_response_piece(text, lists_as_text=lists_as_text)
    assert item == yaml.safe_load(b"- " + text[2:])[0]
    assert item is not None and item["note"]["stream"]["offsets_ms"] == [1.5, 2]
    assert item["response"]["stream"]["offsets_ms"] == []


@pytest.mark.parametrize(
    ("parsed_body", "sent"),
    [
        ("{1: a, b: [1, 2.0]}", b'{"b":[1,2.0],"1":"a"}'),  # a number as a key
        ("{b: [{2: x}]}", b'{"b":[{"2":"x"}]}'),  # deeper down
        ("[1.0, -0.0, {a: null}]", b'[1.0,-0.0,{"a":null}]'),
    ],
)
def test_a_recorded_parsed_body_matches_what_its_bytes_match(
    tmp_path: Path, parsed_body: str, sent: bytes
) -> None:
    # Sent in another spelling than recorded, so that keys are compared. Matching reads a
    # recorded parsed body without parsing its bytes again only when that gives
    # the same key: a key YAML read as a number keys as the JSON text it becomes.
    path = tmp_path / "c.yaml"
    path.write_text(
        "interactions:\n"
        "- request:\n"
        "    method: POST\n"
        "    uri: https://example.test/v1\n"
        f"    parsed_body: {parsed_body}\n"
        "  response:\n"
        "    status: {code: 200, message: OK}\n"
        "    headers: {}\n"
        "    body: {string: answered}\n"
        "version: 1\n"
    )
    with llmcassette.use_cassette(path, record_mode="none"), httpx.Client() as client:
        assert client.post("https://example.test/v1", content=sent).text == "answered"


def test_loading_holds_the_collector_off_and_gives_it_back(tmp_path: Path) -> None:
    import gc

    from llmcassette._lazy import collector_paused

    seen = []
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, CassetteDocument())
    with collector_paused():
        seen.append(gc.isenabled())
    assert seen == [False]
    assert gc.isenabled()
    load_lazy(path)
    assert gc.isenabled()
    # A load that fails gives it back too; one made while it is off leaves it off.
    with pytest.raises(llmcassette.CassetteError):
        load_lazy(tmp_path / "missing.yaml")
    assert gc.isenabled()
    gc.disable()
    try:
        load_lazy(path)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_file_body_read_while_another_thread_closes_the_file_reads_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A body streamed from a large file in one thread while another exits the cassette, which
    # closes the file: the closing waits for the read it would have cut in the middle.
    path = tmp_path / "c.yaml"
    path.write_bytes(b"0123456789" * 100)
    reader = _lazy._FileReader(path)
    closer = threading.Thread(target=reader.close)
    real_os = os

    class ClosingMidRead:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_os, name)

        def fstat(self, fd: int) -> os.stat_result:
            info = real_os.fstat(fd)
            if not closer.is_alive() and closer.ident is None:
                closer.start()
                closer.join(timeout=0.2)  # without the lock, the close is done by now
            return info

    monkeypatch.setattr(_lazy, "os", ClosingMidRead())
    assert reader.read(10, 25) == b"012345678901234"
    closer.join()
    monkeypatch.undo()
    assert reader.read(0, 4) == b"0123"  # read after the close: opened again by path
    reader.close()


# -- the scans that stand in for a regex, checked against it -----------------------------------

# What `_split` and `_offsets_apart` matched before they were made cheaper (the first-column
# line and the number list), kept here as the reference for the code that replaced them.
_FIRST_COLUMN_BEFORE = re.compile(rb"\n(?:- |[^ \-#\n]|-[^ ])")
_NUMBER_LIST_BEFORE = re.compile(rb"      (chunks|offsets_ms): \[([-0-9., \n]*)\]\n")


def _split_before(raw: bytes) -> Any:
    start = _lazy.list_start(raw)
    if start is None:
        return None
    first = start + len(_lazy._ITEMS_START) - 2
    starts: list[int] = []
    trailer_at = len(raw)
    for line in _FIRST_COLUMN_BEFORE.finditer(raw, first):
        if line.group() != b"\n- ":
            trailer_at = line.start() + 1
            break
        starts.append(line.start() + 1)
    return starts, raw[:start] + raw[trailer_at:]


def _split_now(raw: bytes) -> Any:
    pieces = _split(raw)
    if pieces is None:
        return _lazy.list_start(raw) is None or None
    return [span[0] for span in pieces.spans[1:]], pieces.header


_LINES = st.sampled_from(
    [
        b"- a: 1",
        b"  b: 2",
        b"    - c",
        b"# note",
        b"#",
        b"-",
        b"--",
        b"-x",
        b"- ",
        b"v: 1",
        b"\t",
        b"",
        b"  response: {}",
        b"...",
        b"---",
        b" -",
        b"x",
    ]
)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_LINES, max_size=14), end=st.sampled_from([b"", b"\n", b"\n-"]))
def test_the_first_column_scan_cuts_as_the_regex_it_replaced(lines: list[bytes], end: bytes) -> None:
    raw = b"version: 1\ninteractions:\n- request: {}\n  response: {}\n" + b"\n".join(lines) + end
    before = _split_before(raw)
    now = _split_now(raw)
    if now is None:  # an item without its response: no pieces, whatever the cuts
        return
    if now is True:
        assert before is None
    else:
        assert now == before


def test_the_first_column_scan_cuts_real_files_as_the_regex_did() -> None:
    files = [corpus_path(rel) for rel in corpus_files()]
    files += sorted(Path(__file__).resolve().parents[1].joinpath("cassettes").rglob("*.yaml"))
    checked = 0
    for path in files:
        raw = path.read_bytes()
        now = _split_now(raw)
        if now not in (None, True):
            assert now == _split_before(raw), path
            checked += 1
    assert checked > (50 if corpus_files() else 5)


_NUMBER_TEXT = st.lists(
    st.sampled_from(
        [
            b"0",
            b"1",
            b"12",
            b"3.5",
            b"-",
            b".",
            b",",
            b", ",
            b" ",
            b"\n",
            b"]",
            b"e",
            b"x",
            b"\xc3\xa9",
            b"\n      ",
        ]
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(
    key=st.sampled_from([b"chunks", b"offsets_ms", b"end", b"chunk"]),
    items=_NUMBER_TEXT,
    after=st.sampled_from([b"]\n", b"]", b"] \n", b"]]\n", b""]),
    indent=st.sampled_from([b"      ", b"    ", b"       "]),
)
def test_the_number_list_scan_matches_as_the_regex_it_replaced(
    key: bytes, items: bytes, after: bytes, indent: bytes
) -> None:
    text = b"xx" + indent + key + b": [" + items + after + b"      offsets_ms: [1]\n"
    before = _NUMBER_LIST_BEFORE.match(text, 2)
    now = _lazy._number_list(text, 2)
    if before is None:
        assert now is None
    else:
        assert now is not None
        assert (now[0].strip()[:-3], now[1], now[2]) == (before.group(1), before.start(2), before.end(2))


# -- the cold reader held to the general path (YAML, then the models) --

_TWO_ITEMS = (
    "interactions:\n"
    "- request:\n"
    "    method: GET\n"
    "    uri: https://api.test/v1/a\n"
    "    headers: {}\n"
    "  response:\n"
    "    status: {code: 200, message: OK}\n"
    "    headers: {}\n"
    "    body:\n"
    "      string: |-\n"
    "        line1\n"
    "        line2\n"
    "- request:\n"
    "    method: GET\n"
    "    uri: https://api.test/v1/b\n"
    "    headers: {}\n"
    "  response:\n"
    "    status: {code: 200, message: OK}\n"
    "    headers: {}\n"
    "    body:\n"
    "      string: two\n"
)


def _loaded_or_refused(call: Any) -> Any:
    try:
        return [interaction.model_dump() for interaction in call()]
    except llmcassette.CassetteFormatError as exc:
        return type(exc).__name__, str(exc)


def _cold_and_general(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    cold = _loaded_or_refused(lambda: load_lazy(path).interactions())
    with monkeypatch.context() as patch:
        patch.setattr(_storage, "load_cassette_yaml", _layout.load_yaml)
        general = _loaded_or_refused(lambda: llmcassette.load_cassette(path).interactions)
    return cold, general


def test_the_plain_text_loads_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(_TWO_ITEMS)
    cold, general = _cold_and_general(path, monkeypatch)
    assert isinstance(cold, list) and cold == general


@pytest.mark.parametrize("item", [0, 1])
def test_an_item_indented_past_its_dash_is_refused_as_yaml_refuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, item: int
) -> None:
    path = tmp_path / "c.yaml"
    at = [i for i in range(len(_TWO_ITEMS)) if _TWO_ITEMS.startswith("- request:", i)][item]
    path.write_text(_TWO_ITEMS[:at] + "-  request:" + _TWO_ITEMS[at + len("- request:") :])
    cold, general = _cold_and_general(path, monkeypatch)
    assert general[0] == "CassetteFormatError" and "not valid YAML" in general[1]
    assert cold == general


def test_a_line_separator_at_a_body_lines_start_loads_as_yaml_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    # (the file's own header first, as llmcassette writes it)
    text = "version: 1\nllmcassette_schema: 1\n" + _TWO_ITEMS + "...\n"
    # (the last item's body)
    path.write_text(
        text.replace("      string: two\n", "      string: |-\n        two\n\u2028        three\n")
    )
    cold, general = _cold_and_general(path, monkeypatch)
    assert isinstance(general, list)  # (YAML reads it)
    assert cold == general


@pytest.mark.parametrize("character", ["\x01", "\x1b", "\x7f", "\x85", "\u2028", "\ufeff"])
@pytest.mark.parametrize("where", ["line1", "string: two", "uri: https://api.test/v1/b"])
def test_a_character_yaml_refuses_in_one_piece_is_refused_as_yaml_refuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, character: str, where: str
) -> None:
    # The file's characters are checked once, for all its pieces (`_layout.plain_characters`):
    # one in any request or response is still found.
    path = tmp_path / "c.yaml"
    path.write_text(_TWO_ITEMS.replace(where, where + character, 1), encoding="utf-8")
    cold, general = _cold_and_general(path, monkeypatch)
    assert cold == general


def test_chunk_lengths_read_apart_cut_the_body_and_read_as_yaml_reads_them() -> None:
    text = (
        b"  response:\n    status: {code: 200}\n    body:\n      string: |-\n        abcdefg\n"
        b"    stream:\n      chunks: [3,\n        4]\n      offsets_ms: [0.5, 1]\n"
    )
    item = _parse_response_piece(text, lists_as_text=True)
    assert item is not None
    stream = item["response"]["stream"]
    assert isinstance(stream["chunks"], TextLengths) and isinstance(stream["offsets_ms"], TextTimes)
    assert item == yaml.safe_load(b"- " + text[2:])[0]
    compiled = compile_plain(item, method="GET", uri="https://x.test/", path=Path("c.yaml"), index=0)
    assert compiled is not None and compiled.playback is not None
    assert compiled.playback.chunks == (b"abc", b"defg")
    # Offsets that are not plain stay in the text, read as YAML reads them; the lengths are cut out.
    odd = text.replace(b"[0.5, 1]", b"[0.5, 01]")
    item = _parse_response_piece(odd, lists_as_text=True)
    assert item is not None and isinstance(item["response"]["stream"]["chunks"], TextLengths)
    assert item == yaml.safe_load(b"- " + odd[2:])[0] and item["response"]["stream"]["offsets_ms"] == [0.5, 1]
    # Lengths not written as the writer writes them are read as numbers, as before.
    spaced = text.replace(b"[3,\n        4]", b"[3 , 4]")
    item = _parse_response_piece(spaced, lists_as_text=True)
    assert item is not None and type(item["response"]["stream"]["chunks"]) is list
    assert isinstance(item["response"]["stream"]["offsets_ms"], TextTimes)
    assert item == yaml.safe_load(b"- " + spaced[2:])[0]


def test_a_list_of_lengths_with_an_s_is_read_as_yaml_reads_it() -> None:
    # `1s2` holds only what a lengths' format holds, but YAML reads it as text: the list is found
    # to be no list of numbers, not taken as the lengths 1 and 2.
    text = (
        b"  response:\n    status: {code: 200}\n    body:\n      string: abc\n"
        b"    stream:\n      chunks: [1s2]\n      offsets_ms: [0.5, 1]\n"
    )
    item = _parse_response_piece(text, lists_as_text=True)
    assert item == yaml.safe_load(b"- " + text[2:])[0]
    assert item is not None and item["response"]["stream"]["chunks"] == ["1s2"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["1", "12", "0.5", "07", "s", "x", "-1"]), min_size=1, max_size=4),
    st.sampled_from([", ", ",\n        "]),
    st.sampled_from(["", "]\n", "1]\n", "- request:\n    x: [1]\n", "      offsets_ms: [2]\n"]),
    st.integers(0, 12),
)
def test_a_piece_read_where_it_lies_reads_as_its_copy(
    numbers: list[str], sep: str, after: str, short: int
) -> None:
    # A response piece read in the file's bytes (`start`, `end`) gives what the piece cut out of
    # them gives: nothing past its end is looked at, however it ends (cut short anywhere).
    listed = sep.join(numbers)
    piece = (
        f"  response:\n    status: {{code: 200}}\n    body:\n      string: |-\n        abc\n"
        f"    stream:\n      chunks: [{listed}]\n      offsets_ms: [{listed}]\n"
    ).encode()
    for end in (len(piece), len(piece) - short):
        raw = b"- request:\n    a: 1\n" + piece[:end] + after.encode()
        start = raw.index(b"  response:")

        def parse(text: bytes, **where: int) -> Any:
            try:
                return _parse_response_piece(text, lists_as_text=True, **where)
            except Exception as exc:  # (the same failure either way)
                return type(exc)

        assert parse(raw, start=start, end=start + end) == parse(raw[start : start + end])


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["|", "|-", "|+", "|2", "|+2"]),
    st.lists(st.sampled_from(["data: x", "  x ", "", " ", "é €", "😀 y", "\t", "a: b", "#c"]), max_size=6),
    st.sampled_from([8, 10, 7, 6]),
    st.sampled_from(["", "      line_endings: crlf\n", "    elapsed_ms: 12\n", "      other: 1\n"]),
    st.booleans(),
)
def test_a_stream_s_body_cut_out_of_its_bytes_reads_as_yaml_reads_it(
    header: str, lines: list[str], indent: int, after: str, checked: bool
) -> None:
    # A stream's body, as a literal block of any chomping and indentation, with a key after it or
    # none: cut out of the file's bytes (`checked`) or read by the reader, the response reads as
    # YAML reads it, and compiles to the same chunks.
    pad = " " * indent
    block = "".join(f"{pad}{line}\n" if line.strip() else f"{line}\n" for line in ["data: first", *lines])
    body = "".join(line + "\n" for line in ["data: first", *lines])
    lengths = f"{len(body.encode()) - 1}, 1" if len(body) > 1 else "1"
    text = (
        f"  response:\n    status: {{code: 200}}\n    body:\n      string: {header}\n{block}{after}"
        f"    stream:\n      chunks: [{lengths}]\n      offsets_ms: [0, 1.5]\n"
    ).encode()
    try:
        expected = yaml.safe_load(b"- " + text[2:])[0]
    except yaml.YAMLError:
        expected = None
    item = _parse_response_piece(text, lists_as_text=True, checked=checked)
    assert item == _parse_response_piece(text, lists_as_text=True)  # (a body's bytes equal its text)
    if item is None or expected is None:
        return
    assert item == expected
    # Cut out where the reader reads the block (a line of spaces or a tab alone ends it, and the
    # reader declines what follows), and its body has no other key.
    reads = header in ("|", "|-", "|+") and indent > 6 and all(line.strip() or not line for line in lines)
    cut = type(item["response"]["body"]["string"]) is BodyBytes
    assert cut == (checked and reads and not after.startswith("      "))

    # Played the same, cut out or not (or refused alike: lengths that do not fit the body).
    def played(item: Any) -> Any:
        try:
            compiled = compile_plain(item, method="GET", uri="https://x.test/", path=Path("c.yaml"), index=0)
        except Exception as exc:
            return type(exc)
        return compiled if compiled is None else compiled.playback

    assert played(item) == played(_parse_response_piece(text, lists_as_text=True))


def test_a_body_cut_out_of_its_bytes_reaches_the_model_as_text(tmp_path: Path) -> None:
    # A response compiled from its body's bytes, and one the model reads (a bare header value,
    # which the model makes a list), give the model a body of text, as the file holds it.
    body = "data: é\n\ndata: [DONE]\n\n"
    for value in ("[text/event-stream]", "text/event-stream"):
        path = tmp_path / "c.yaml"
        path.write_text(
            "interactions:\n- request:\n    method: POST\n    uri: https://api.test/v1\n"
            "  response:\n    status: {code: 200, message: OK}\n"
            f"    headers:\n      content-type: {value}\n    body:\n      string: |+\n"
            + "".join(f"        {line}\n" if line else "\n" for line in body.split("\n")[:-1])
            + f"    stream:\n      chunks: [{len(body.encode()) - 15}, 15]\n      offsets_ms: [0.0, 1.5]\n",
            encoding="utf-8",
        )
        lazy = load_lazy(path)
        item = lazy._response_item(0)
        assert item is not None and type(item["response"]["body"]["string"]) is BodyBytes
        assert lazy.compiled(0).playback is not None
        assert b"".join(lazy.compiled(0).playback.chunks) == body.encode()
        response = lazy.response(0)
        assert response.body is not None and response.body.string == body
        assert response == llmcassette.load_cassette(path).interactions[0].response


def test_lengths_read_apart_reach_the_model_as_numbers_when_the_response_is_not_plain(tmp_path: Path) -> None:
    # A bare header value (the model makes it a list) sends the response through the model.
    path = tmp_path / "c.yaml"
    path.write_bytes(
        b"interactions:\n- request:\n    method: GET\n    uri: https://x.test/\n  response:\n"
        b"    status: {code: 200, message: OK}\n    headers:\n      content-type: text/event-stream\n"
        b"    body:\n      string: |-\n        abcdefg\n"
        b"    stream:\n      chunks: [3, 4]\n      offsets_ms: [0.5, 1.0]\n"
    )
    lazy = load_lazy(path)
    compiled = lazy.compiled(0)
    assert compiled.playback is not None and compiled.playback.chunks == (b"abc", b"defg")
    assert lazy.response(0).stream is not None and lazy.response(0).stream.chunks == [3, 4]
