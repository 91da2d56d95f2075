"""
The C extension (``llmcassette/_speedups.c``) against the Python code it stands in for, its
oracle: each of its functions gives exactly what its Python twin gives, over generated texts,
texts with one character changed, and every cassette of the corpus and of ``cassettes/``; and the
reader gives the same data, or declines the same texts, with it and without it.
"""

from __future__ import annotations

import functools
import json
import marshal
import random
import re
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from llmcassette import _cache, _layout, _lazy, _plain
from llmcassette._compiled import Speedups, speedups
from tests.corpus import CORPUS, corpus_files

ROOT = Path(__file__).resolve().parents[1]

fast = speedups()
pytestmark = pytest.mark.skipif(fast is None, reason="the C extension is not built (or is turned off)")


def c() -> Speedups:
    assert fast is not None
    return fast


# -- literal blocks ---------------------------------------------------------------------------

_BLOCK_HEADER = re.compile(r"\|[-+]?\n")


def block_starts(text: str) -> list[tuple[int, int, int]]:
    """Every (start, first_end, indent) `read_literal` would hand on: after each line that ends in `|`."""
    found = []
    for match in _BLOCK_HEADER.finditer(text):
        start = match.end()
        first_end = text.find("\n", start)
        if first_end < 0:
            continue
        line = text[start:first_end]
        indent = len(line) - len(line.lstrip(" "))
        if 0 < indent < len(line):
            found.append((start, first_end, indent))
    return found


def assert_blocks_alike(text: str) -> int:
    """Each block of `text` cut and dedented alike by C and Python; how many there were."""
    starts = block_starts(text)
    for start, first_end, indent in starts:
        assert c().literal_block(text, start, first_end, indent) == _layout._block_python(
            text, start, first_end, indent
        ), (text, start, indent)
    return len(starts)


# Lines of a block: indented as deep, deeper, less, not at all, empty, spaces only; text beyond
# ASCII of each width a str may have (the C copies in the text's own width), tabs, CR, NEL.
_LINE_TEXT = st.text(alphabet=st.sampled_from("ab :#|-\t\r\x85é€😀\u2028"), max_size=6)


@settings(max_examples=1500, deadline=None)
@given(
    st.integers(1, 6),
    st.lists(st.tuples(st.integers(0, 8), _LINE_TEXT), max_size=12),
    st.sampled_from(["", "\n", "c: 1\n", "  c: 1\n", "x"]),
    st.sampled_from(["", "é", "€", "😀"]),
)
def test_a_literal_block_is_cut_and_dedented_as_python_does(
    indent: int, lines: list[tuple[int, str]], after: str, elsewhere: str
) -> None:
    body = "".join(" " * spaces + line + "\n" for spaces, line in lines)
    # (`elsewhere`: a wider character outside the block, so the block's own is narrower)
    text = f"a{elsewhere}: |\n{' ' * indent}first\n{body}{after}"
    assert assert_blocks_alike(text) >= 1


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(" \n|-+ax\t\ré😀"), max_size=80))
def test_any_text_s_blocks_are_cut_alike(text: str) -> None:
    assert_blocks_alike(text)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([7, 8, 9, 16, 17, 63]),
    st.lists(st.tuples(st.sampled_from([-1, 0, 1]), _LINE_TEXT), max_size=8),
    st.sampled_from(["", "é", "😀"]),
)
def test_a_deeply_indented_block_is_cut_and_dedented_as_python_does(
    indent: int, lines: list[tuple[int, str]], elsewhere: str
) -> None:
    # Indentation of eight spaces and more, and not a multiple of eight: the C compares a one-byte
    # text's lines eight bytes at a time.
    body = "".join(" " * (indent + more) + line + "\n" for more, line in lines)
    assert assert_blocks_alike(f"a{elsewhere}: |\n{' ' * indent}first\n{body}") >= 1


def assert_byte_blocks_alike(raw: bytes, size: int | None = None) -> int:
    """Each block of `raw[:size]` cut alike by C and Python in its bytes; how many there were."""
    size = len(raw) if size is None else size
    found = 0
    for match in re.finditer(rb"\|[-+]?\n", raw[:size]):
        start = match.end()
        first_end = raw.find(b"\n", start, size)
        if first_end < 0:
            continue
        line = raw[start:first_end]
        indent = len(line) - len(line.lstrip(b" "))
        if 0 < indent < len(line):
            got = c().block_bytes(raw, start, first_end, indent, size)
            assert got == _layout._block_bytes_python(raw, start, first_end, indent, size), (raw, start, size)
            found += 1
    return found


@settings(max_examples=1000, deadline=None)
@given(
    st.integers(1, 9),
    st.lists(st.tuples(st.integers(0, 10), _LINE_TEXT), max_size=12),
    st.sampled_from(["", "\n", "c: 1\n", "  c: 1\n", "x"]),
    st.integers(0, 30),
)
def test_a_literal_block_s_bytes_are_cut_as_python_and_the_text_s_block_are(
    indent: int, lines: list[tuple[int, str]], after: str, short: int
) -> None:
    body = "".join(" " * spaces + line + "\n" for spaces, line in lines)
    text = f"a: |\n{' ' * indent}first\n{body}{after}"
    raw = text.encode("utf-8", "surrogatepass")
    # Cut in the bytes of the whole text, and of the text cut short (`size`: nothing past it read).
    for size in (len(raw), max(len(raw) - short, 0)):
        assert_byte_blocks_alike(raw + b"    more\n", size)
    # A UTF-8 text's block, in its bytes, is the bytes of the text's block.
    start = text.index("\n") + 1
    first_end = text.index("\n", start)
    content, end = c().literal_block(text, start, first_end, indent)
    raw_start = len(text[:start].encode())
    raw_first_end = raw_start + len(text[start:first_end].encode())
    assert c().block_bytes(raw, raw_start, raw_first_end, indent, len(raw)) == (
        content.encode("utf-8", "surrogatepass"),
        len(text[:end].encode("utf-8", "surrogatepass")),
    )


def test_a_byte_block_s_positions_out_of_range_are_refused_not_read() -> None:
    raw = b"a: |\n  x\n"
    for args in (
        (5, 8, 0, 9),
        (5, 8, 3, 9),
        (5, 7, 2, 9),
        (5, 9, 2, 9),
        (-1, 8, 2, 9),
        (5, 8, 2, 8),
        (5, 8, 2, 10),
    ):
        with pytest.raises(ValueError, match="^llmcassette: "):
            c().block_bytes(raw, *args)
    with pytest.raises(TypeError):
        c().block_bytes("a: |\n  x\n", 5, 8, 2, 9)  # type: ignore[arg-type]


def test_a_block_that_runs_to_the_text_s_end_without_a_line_break_is_cut_alike() -> None:
    for tail in ("", "    ", "     x", "\n    ", "\n   ", "\n\n"):
        assert assert_blocks_alike(f"a: |\n    first\n    second{tail}") == 1


def test_positions_out_of_range_are_refused_not_read() -> None:
    text = "a: |\n  x\n"
    for args in ((5, 8, 0), (5, 8, 3), (5, 7, 2), (5, 9, 2), (-1, 8, 2)):
        with pytest.raises(ValueError, match="^llmcassette: "):
            c().literal_block(text, *args)


# -- number lists -----------------------------------------------------------------------------

_NUMBER_PIECES = [
    "0",
    "1",
    "7",
    "10",
    "1234567",
    "12345678",
    "0.5",
    "1.25",
    "01",
    ".5",
    "5.",
    "-1",
    "1e3",
    "s",
]
_SEPARATORS = [", ", ",", ",\n        ", ",\n       ", " , ", ",  ", "\n", " ", ",\n        \n"]


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(_NUMBER_PIECES), st.sampled_from(_SEPARATORS)), min_size=1, max_size=8
    ),
    st.sampled_from(["", " ", "\n", ","]),
    st.sampled_from(["", " ", "\n ", ","]),
)
def test_a_list_of_times_is_found_plain_as_python_finds_it(
    items: list[tuple[str, str]], before: str, after: str
) -> None:
    text = (before + "".join(piece + sep for piece, sep in items[:-1]) + items[-1][0] + after).encode()
    assert c().plain_times(text) is _plain._times_python(text)


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(_NUMBER_PIECES), st.sampled_from(_SEPARATORS)), min_size=1, max_size=8
    ),
    st.sampled_from(["", " ", ", ", ",\n        ", "s"]),
)
def test_a_list_of_lengths_gets_the_format_python_makes(items: list[tuple[str, str]], after: str) -> None:
    text = ("".join(piece + sep for piece, sep in items[:-1]) + items[-1][0] + after).encode()
    assert c().lengths_format(text) == _plain._lengths_format_python(text)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40), st.text(alphabet="0123456789., \ns", max_size=40))
def test_any_bytes_are_judged_alike(anything: bytes, near: str) -> None:
    for text in (anything, near.encode()):
        assert c().plain_times(text) is _plain._times_python(text)
        assert c().lengths_format(text) == _plain._lengths_format_python(text)


def test_the_functions_refuse_other_types() -> None:
    with pytest.raises(TypeError, match="^llmcassette: "):
        c().plain_times("1, 2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^llmcassette: "):
        c().lengths_format(bytearray(b"1"))  # type: ignore[arg-type]


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.integers(1, 40), min_size=1, max_size=12),
    st.sampled_from([", ", ",\n        "]),
    st.integers(-3, 3),
)
def test_a_body_is_cut_into_the_chunks_struct_cuts(lengths: list[int], sep: str, off: int) -> None:
    listed = _plain.plain_lengths(sep.join(map(str, lengths)).encode())
    assert listed is not None
    content = bytes(range(256)) * 2
    for size in (sum(lengths), sum(lengths) + off, 0):
        body = content[: max(size, 0)]
        assert c().cut(listed._format, body) == listed._cut_python(body)


def test_a_cut_of_a_size_past_memory_is_none_as_struct_s() -> None:
    for format in (b"99999999999999999999s", b"9223372036854775807s1s", b"1s9223372036854775807s"):
        assert c().cut(format, b"x") is None
        assert _plain.TextLengths(b"", format)._cut_python(b"x") is None


def test_a_format_lengths_format_does_not_make_is_refused() -> None:
    for format in (b"1", b"s", b"1ss", b"1x", b""):
        if format == b"":
            assert c().cut(format, b"") == ()  # (struct: an empty format, no chunks)
            continue
        with pytest.raises(ValueError, match="^llmcassette: "):
            c().cut(format, b"x")


# -- the characters' check --------------------------------------------------------------------

_BYTES = [
    b"a",
    b" ",
    b"\n",
    b"\t",
    b"\r",
    b"\x00",
    b"\x1f",
    b"\x7f",
    b"\x80",
    b"\xc2",
    b"\xe2",
    b"\xef",
    b"\xbb",
    b"\xbf",
]
_BYTES += [b"\xbe", b"\xa8", b"\xa9", b"\x85", b"\x9f", b"\xa0", "é€😀\u2028\ufeff\x85\ufffe".encode()]


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.sampled_from(_BYTES), max_size=12),
    st.integers(0, 9000),
    st.sampled_from([b"a", b"\xc3\xa9"]),
)
def test_a_text_s_characters_are_judged_as_python_judges_them(
    parts: list[bytes], at: int, filler: bytes
) -> None:
    # (placed anywhere in a long text: at a block's edge of the C's scan, across one)
    long = filler * 4500
    for raw in (b"".join(parts), long[:at] + b"".join(parts) + long[at:]):
        assert c().plain_characters(raw) is _layout._plain_characters_python(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_characters_are_judged_alike(raw: bytes) -> None:
    assert c().plain_characters(raw) is _layout._plain_characters_python(raw)


def test_every_character_yaml_refuses_is_found_at_every_place_of_a_block() -> None:
    refused = [bytes([code]) for code in (*range(9), *range(11, 32), 127)]
    refused += ["\x85\x9f\u2028\u2029\ufeff\ufffe\uffff".encode()[i : i + n] for i, n in ((0, 2), (2, 2))]
    refused += [character.encode() for character in "\u2028\u2029\ufeff\ufffe\uffff"]
    for character in refused:
        for at in (0, 1, 4093, 4094, 4095, 4096, 8191, 9000):
            raw = b"a" * at + character + b"b" * 10
            assert c().plain_characters(raw) is _layout._plain_characters_python(raw) is False


def test_every_byte_is_judged_alike_at_every_place_of_a_vector() -> None:
    # Each byte value, in clean text of each kind (printable, line breaks, tabs), at each place of
    # the C's 16-byte vectors and about a block's edge: the tests it is moved and compared for.
    for code in range(256):
        for filler in (b"a", b"\n", b"\t", b"~"):
            for at in (*range(34), 4079, 4095, 4096, 4097, 4111):
                raw = filler * at + bytes([code]) + filler * 17
                assert c().plain_characters(raw) is _layout._plain_characters_python(raw), (code, at)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 200))
def test_bytes_are_found_ascii_as_python_finds_them(raw: bytes, at: int) -> None:
    clean = bytes(byte & 0x7F for byte in raw)
    for data in (raw, clean, clean[:at] + b"\x80" + clean[at:]):
        assert c().ascii(data) is data.isascii()


def test_a_byte_beyond_ascii_is_found_at_every_place_of_a_vector() -> None:
    for size in (*range(140), 4096):
        assert c().ascii(b"a" * size) is True
        for at in range(0, size, 1 if size < 140 else 61):
            for byte in (0x80, 0xC3, 0xFF):
                assert c().ascii(b"a" * at + bytes([byte]) + b"a" * (size - at - 1)) is False
    with pytest.raises(TypeError, match="^llmcassette: "):
        c().ascii(bytearray(b"a"))  # type: ignore[arg-type]


# -- the replay cache's checksum --------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(
    st.binary(max_size=300),
    st.sampled_from([0, 31, 32, 33, 5535, 5536, 5537, 5552, 11072, 11073, 70000]),
    st.sampled_from([b"\x00", b"\xff", b"a"]),
)
def test_a_checksum_is_zlib_s(anything: bytes, size: int, filler: bytes) -> None:
    # Sizes about a block of 32 and a run of them (reduced at its end), of bytes each at their
    # highest (the sums' largest: none may overflow), lowest, and anything.
    for raw in (anything, filler * size + anything, anything + filler * size):
        assert c().adler32(raw) == zlib.adler32(raw) == _cache._checksum(raw)
        with memoryview(raw) as view:  # (as an entry's payload is checked: where it lies)
            assert c().adler32(view[1:]) == zlib.adler32(raw[1:])


def test_a_checksum_of_a_large_entry_is_zlib_s() -> None:
    raw = random.Random(5).randbytes(3_000_000) + b"\xff" * 100_000
    assert c().adler32(raw) == zlib.adler32(raw)


def test_a_checksum_takes_what_zlib_takes_and_refuses_the_rest() -> None:
    assert c().adler32(bytearray(b"abc")) == zlib.adler32(b"abc")
    with pytest.raises(TypeError):
        c().adler32("abc")  # type: ignore[arg-type]


# -- the JSON decoder's hook ------------------------------------------------------------------


def hook_result(hook: Any, argument: Any) -> Any:
    try:
        return hook(argument)
    except _layout.Unrecognised:
        return _layout.Unrecognised


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "é", "", "x" * 899, "x" * 900, "y" * 1200]), st.integers()))
)
def test_an_object_s_pairs_are_taken_or_declined_as_python_does(pairs: list[tuple[str, Any]]) -> None:
    fast_hook = functools.partial(c().json_object, _layout.Unrecognised, _layout._LONGEST_KEY)
    assert hook_result(fast_hook, pairs) == hook_result(_layout._no_duplicates, pairs)


@settings(max_examples=500, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=3),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3),
        max_leaves=12,
    ),
    st.sampled_from(['"a": 1', '"a": 1, "a": 2', '"' + "k" * 900 + '": 0', '"x": 1e5', '"n": NaN']),
)
def test_a_json_text_is_decoded_as_the_python_decoder_decodes_it(value: Any, extra: str) -> None:
    base = json.dumps(value)
    texts = [base, "{" + extra + "}", "[" + base + ", {" + extra + "}]"]
    if base.startswith("{") and base != "{}":
        texts.append("{" + extra + ", " + base[1:])
    for text in texts:
        assert _layout._decoder() is not _layout._DECODER
        got = [hook_result(decoder.decode, text) for decoder in (_layout._decoder(), _layout._DECODER)]
        assert got[0] == got[1], text


def test_a_json_object_of_wrong_pairs_is_refused_not_read() -> None:
    for wrong in ([("a",)], [(1, 2)], [["a", 1]], ("a", 1)):
        with pytest.raises(TypeError, match="^llmcassette: "):
            c().json_object(_layout.Unrecognised, 900, wrong)  # type: ignore[arg-type]


# -- the file's cut into items ----------------------------------------------------------------


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=60), st.text(alphabet=" \n-#ax", max_size=60), st.integers(-2, 70))
def test_the_first_column_lines_are_found_as_the_regex_finds_them(
    anything: bytes, near: str, start: int
) -> None:
    for raw in (anything, near.encode()):
        assert c().first_column(raw, start) == list(_lazy._first_column_python(raw, max(start, 0)))


# -- whole files ------------------------------------------------------------------------------


def _files() -> list[Path]:
    found = sorted((ROOT / "cassettes").rglob("*.yaml"))
    if CORPUS is not None:
        found += [CORPUS / rel for rel in corpus_files() if rel.endswith((".yaml", ".yml"))]
    return found


def pieces(found: Any) -> Any:
    return found if found is None else (found.header, found.spans)


def read_both(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """What the reader gives (or the exception's type) with the extension, and with Python alone."""

    def read() -> Any:
        _layout._lines.clear()
        _layout._runs.clear()
        _layout._run_misses.clear()
        try:
            return _layout.read_layout(raw)
        except _layout.Unrecognised:
            return _layout.Unrecognised

    with_c = read()
    with monkeypatch.context() as patch:
        patch.setattr(_layout, "speedups", lambda: None)
        alone = read()
        # (and the file cut into items by the Python scan)
        patch.setattr(_lazy, "speedups", lambda: None)
        cut_alone = pieces(_lazy._split(raw))
    assert pieces(_lazy._split(raw)) == cut_alone
    return with_c, alone


def number_lists(raw: bytes) -> list[bytes]:
    return re.findall(rb"(?:chunks|offsets_ms): \[([-0-9., \n]*)\]\n", raw)


@pytest.mark.parametrize("path", _files(), ids=lambda path: path.name)
def test_every_cassette_reads_alike(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = path.read_bytes()
    with_c, alone = read_both(raw, monkeypatch)
    assert with_c == alone
    text = raw.decode("utf-8", "replace")
    assert_blocks_alike(text)
    assert c().first_column(raw, 0) == list(_lazy._first_column_python(raw, 0))
    assert c().plain_characters(raw) is _layout._plain_characters_python(raw)
    assert c().adler32(raw) == zlib.adler32(raw)
    assert_byte_blocks_alike(raw)
    assert c().ascii(raw) is raw.isascii()
    for listed in number_lists(raw):
        assert c().plain_times(listed) is _plain._times_python(listed)
        assert c().lengths_format(listed) == _plain._lengths_format_python(listed)
    # One character changed, many times over: what an edit by hand, or a file cut short, gives.
    draw = random.Random(path.name)
    for _ in range(40 if len(text) < 200_000 else 8):
        at = draw.randrange(len(text))
        edited = text[:at] + draw.choice(" \n\tx:|-é😀\r\x85,0.") + text[at + 1 :]
        assert_blocks_alike(edited)
        raw_edit = edited.encode("utf-8", "surrogatepass")
        assert c().first_column(raw_edit, at) == list(_lazy._first_column_python(raw_edit, at))
        assert c().plain_characters(raw_edit) is _layout._plain_characters_python(raw_edit)
        assert c().adler32(raw_edit) == zlib.adler32(raw_edit)
        assert_byte_blocks_alike(raw_edit)
        assert c().ascii(raw_edit) is raw_edit.isascii()
        for listed in number_lists(edited.encode("utf-8", "surrogatepass")):
            assert c().plain_times(listed) is _plain._times_python(listed)
            assert c().lengths_format(listed) == _plain._lengths_format_python(listed)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["|", "|-", "|+"]),
    st.lists(st.sampled_from(["x", "  x ", "", " ", "   ", "     ", "é", "😀 y", "\t", "\r"]), max_size=8),
    st.lists(st.sampled_from(["1", "12", "0.5", "07", "1e3"]), min_size=1, max_size=5),
    st.sampled_from([", ", ",\n        "]),
)
def test_a_stream_response_reads_alike(header: str, lines: list[str], numbers: list[str], sep: str) -> None:
    block = "".join(f"        {line}\n" if line.strip() else f"{line}\n" for line in ["data: x", *lines])
    listed = sep.join(numbers)
    text = (
        f"- response:\n    body:\n      string: {header}\n{block}"
        f"    stream:\n      chunks: [{listed}]\n      offsets_ms: [{listed}]\n"
    ).encode()
    with pytest.MonkeyPatch.context() as monkeypatch:
        with_c, alone = read_both(text, monkeypatch)
    assert with_c == alone

    def parse() -> Any:
        try:
            return _lazy._parse_response_piece(b"  " + text[2:], lists_as_text=True)
        except Exception as exc:  # (the same failure either way)
            return type(exc)

    got = parse()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_layout, "speedups", lambda: None)
        patch.setattr(_plain, "speedups", lambda: None)
        assert parse() == got


# -- a JSON body read into its bytes ----------------------------------------------------------

#: The separators of each format `json_bytes` writes (None: read only), and whether it escapes
#: every character beyond ASCII.
_JSON_WRITES = [
    (None, None, False, None),
    (", ", ": ", False, None),
    (",", ":", False, None),
    (", ", ": ", True, None),
    (",", ":", True, None),
    (",", ": ", False, 2),
    (",", ": ", True, 2),
    (", ", ":", False, 0),
]


def assert_json_alike(text: str, start: int = 0, most: int = 100) -> Any:
    """`json_bytes` gives what its Python twin gives wherever it does not decline; its answers."""
    answers = []
    for item, key, ascii_, indent in _JSON_WRITES:
        got = c().json_bytes(text, start, most, item, key, ascii_, indent)
        twin = _layout._json_bytes_python(text, start, most, item, key, ascii_, indent)
        assert got is None or got == twin, (text, item, key, ascii_, indent)
        assert got is None or got[2] <= most
        answers.append(got)
    # (it declines a text or reads it whatever it writes)
    assert len({answer is None for answer in answers}) == 1, text
    return answers[0]


_JSON_TEXT = st.text(alphabet=st.sampled_from('ab "\\/\n\t\x01\x7f\x85é\u2028😀[{:,'), max_size=6)
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _JSON_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_JSON_TEXT, inner, max_size=4),
    max_leaves=16,
)


@settings(max_examples=1500, deadline=None)
@given(_JSON_VALUES, st.integers(0, 10_000), st.sampled_from(' \n\tx:|-é😀\r\x85,0.\\"u{}[]e'))
def test_a_json_body_is_read_into_the_bytes_python_writes(value: Any, at: int, other: str) -> None:
    body = {"v": value}
    written = json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    found = assert_json_alike(written)
    # As the writer writes a body (`render_json`), it is read here, not declined: every value a
    # cassette holds as JSON is.
    if _layout.render_json(body) is not None and written.count("[") + written.count("{") <= 100:
        assert found is not None
    for text in (
        json.dumps(body) + "\n",
        json.dumps(body, ensure_ascii=True, indent=1) + "\n",
        written[:-1],
        "x: " + written,
    ):
        assert_json_alike(text, 3 if text.startswith("x: ") else 0)
    # One character changed: what an edit by hand gives.
    at %= len(written)
    assert_json_alike(written[:at] + other + written[at + 1 :])
    assert_json_alike(written[:at] + other + written[at:])


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}\n',
        '{"a": {"b": 1}, "b": {"b": 2}}\n',
        '{"\\u0001": 1, "\\u0001": 2}\n',
        '{"' + "k" * 899 + '": 1}\n',
        '{"' + "k" * 900 + '": 1}\n',
        '{"' + "k" * 898 + '\\n": 1}\n',
        "[-0, 0, -1, 10]\n",
        "[0.1, 0.10, 1.0, 1.00, -0.0, 1e5, 1E5, 1.5e-3, 01, 1., .5]\n",
        "[" + "9" * 640 + "]\n",
        "[" + "9" * 641 + "]\n",
        "[" + "9" * 400 + ".0]\n",
        '["\\u0041", "\\u001f", "\\u001F", "\\u000a", "\\n", "\\/", "\\\\/", "\\\\ud800"]\n',
        '["\\ud83d\\ude00", "\\ud800", "\\\\u00e9", "\\u00e9"]\n',
        "[NaN, Infinity, -Infinity]\n",
        '{"a"\n: 1}\n',
        '{"a":\n 1}\n',
        "[1,\t2]\n",
        "[1,\r2]\n",
        "[true, false, null, tru, nul]\n",
        "[" * 100 + "]" * 100 + "\n",
        "[" * 101 + "]" * 101 + "\n",
        '["[[[["]\n',
        "[1] \n",
        "[1]",
        "",
        "   ",
    ],
)
def test_a_json_text_python_would_read_otherwise_is_declined_or_read_alike(text: str) -> None:
    for start in range(min(len(text), 3)):
        assert_json_alike(text, start)
    assert_json_alike(text, 0, most=3)


def test_many_keys_and_deep_texts_are_declined_or_read_alike() -> None:
    many = "{" + ", ".join(f'"k{n}": {n}' for n in range(300)) + "}\n"
    twice = "{" + ", ".join(f'"k{n}": {n}' for n in [*range(200), 5]) + "}\n"
    deep = "[" * 250 + "]" * 250 + "\n"
    for text in (many, twice, deep):
        assert_json_alike(text, 0, most=10_000)


def test_a_json_body_of_wrong_arguments_is_refused_not_read() -> None:
    for wrong in (
        (b"[1]\n", 0, 100, None, None, False, None),
        ("[1]\n", "0", 100, None, None, False, None),
        ("[1]\n", 0, 100, ", ", None, False, None),
        ("[1]\n", 0, 100, "é", ":", False, None),
        ("[1]\n", 0, 100, ",", ":", False, "2"),
        ("[1]\n", 0, 100),
    ):
        with pytest.raises(TypeError, match="^llmcassette: |integer"):
            c().json_bytes(*wrong)  # type: ignore[arg-type]
    for indent in (-1, 65):
        with pytest.raises(ValueError, match="^llmcassette: "):
            c().json_bytes("[1]\n", 0, 100, ",", ":", False, indent)
    for start in (-1, 4, 5, 10**6):
        assert c().json_bytes("[1]\n", start, 100, None, None, False, None) is None


def test_a_body_left_as_its_text_gives_the_value_and_the_bytes_of_every_format() -> None:
    from llmcassette._bodies import JSON_FORMATS, dump_json

    value = {"a": [1, 2.5, "é😀\n\x01\x7f", None, True, {}], "b": {"c": ""}}
    text = json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    found = c().json_bytes(text, 0, 100, None, None, False, None)
    assert found is not None
    body = _layout.JsonText(text)
    assert body.value() == value
    for name in JSON_FORMATS:
        assert body.dump(name) == dump_json(value, name), name
    assert body.dump(None) == dump_json(value, None)


def json_starts(text: str) -> list[int]:
    """Where each value written as JSON after a key starts (`key: {` or `key: [` ending a line)."""
    return [match.end() - 1 for match in re.finditer(r": [\[{]\n", text)]


@pytest.mark.parametrize("path", _files(), ids=lambda path: path.name)
def test_every_cassette_s_json_bodies_read_alike(path: Path) -> None:
    text = path.read_bytes().decode("utf-8", "replace")
    for start in json_starts(text):
        assert_json_alike(text, start)
    draw = random.Random(path.name)
    starts = json_starts(text)
    for _ in range(40 if starts else 0):
        start = draw.choice(starts)
        end = text.find("\n\n", start)
        at = draw.randrange(start, min(len(text), start + 2000) if end < 0 else min(end, start + 2000) + 1)
        edited = text[:at] + draw.choice(' \n\tx:|-é😀\r\x85,0.\\"u') + text[at + 1 :]
        assert_json_alike(edited, start)


@pytest.mark.parametrize("path", _files(), ids=lambda path: path.name)
def test_every_cassette_s_responses_read_alike_with_their_bodies_left_as_text(path: Path) -> None:
    raw = path.read_bytes()
    found = _lazy._split(raw)
    for _, start, end in found.spans if found is not None else ():

        def parse(as_text: bool, piece: bytes = raw[start:end]) -> Any:
            try:
                return _lazy._parse_response_piece(piece, lists_as_text=as_text)
            except Exception as exc:  # (the same failure either way)
                return type(exc)

        def plain(item: Any) -> Any:
            # (the lists and the body left as text, made values: what `_read_response` does)
            if isinstance(item, dict) and isinstance(item.get("response"), dict):
                response = item["response"]
                stream = response.get("stream")
                if isinstance(stream, dict):
                    for name, listed in stream.items():
                        if isinstance(listed, _plain.TextTimes | _plain.TextLengths):
                            stream[name] = listed.values()
                if isinstance(response.get("parsed_body"), _layout.JsonText):
                    response["parsed_body"] = response["parsed_body"].value()
            return item

        assert plain(parse(True)) == parse(False)


def test_a_body_the_writer_wrote_is_left_as_its_text_for_play_and_plays_the_same_bytes() -> None:
    from llmcassette._bodies import dump_json

    body = {"id": "x", "choices": [{"text": "é [a] {b}", "n": 1.5}], "usage": None}
    piece = (
        "  response:\n    status: {code: 200, message: OK}\n    headers:\n"
        "      content-type: [application/json]\n    parsed_body: "
        + json.dumps(body, indent=2, ensure_ascii=False).replace("\n", "\n      ")
        + "\n    json_format: compact-ascii\n"
    ).encode()
    item = _lazy._parse_response_piece(piece, lists_as_text=True)
    assert item is not None
    left = item["response"]["parsed_body"]
    assert isinstance(left, _layout.JsonText)
    compiled = _plain.compile_plain(item, method="POST", uri="https://x.test/", path=Path("c.yaml"), index=0)
    assert compiled is not None and compiled.playback is not None
    assert b"".join(compiled.playback.chunks) == dump_json(body, "compact-ascii")
    assert _lazy._parse_response_piece(piece) == {"response": {**item["response"], "parsed_body": body}}


@pytest.mark.parametrize("path", _files(), ids=lambda path: path.name)
def test_every_cassette_s_requests_load_alike_with_their_bodies_left_as_text(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = path.read_bytes()

    def load() -> Any:
        _layout._lines.clear()
        _layout._runs.clear()
        _layout._run_misses.clear()
        found = _lazy._split(raw)
        try:
            lazy = _lazy._from_pieces(path, raw, found, key=None, reader=None) if found else None
        except Exception as exc:  # (the same failure either way)
            return type(exc)
        if lazy is None:
            return None
        count = len(lazy)
        # (the lines first: matching asks for a body's value after the bytes were made of its text)
        lines = lazy.lines()
        bodies = [lazy.parsed_request_body(index) for index in range(count)]
        made = [body is _lazy.NOT_PARSED or lazy.made_json(body) for body in bodies]
        return lines, bodies, made, [lazy.request(index) for index in range(count)]

    with_c = load()
    with monkeypatch.context() as patch:
        patch.setattr(_layout, "speedups", lambda: None)
        alone = load()
    assert with_c == alone


# -- a kept run's data, copied ----------------------------------------------------------------


def sharing(value: Any) -> list[int]:
    """For each collection met walking `value` (depth first), the index of the first met that is it."""
    seen: list[Any] = []
    found: list[int] = []

    def walk(item: Any) -> None:
        if type(item) not in (dict, list, tuple):
            return
        for index, other in enumerate(seen):
            if other is item:
                found.append(index)
                return
        seen.append(item)
        found.append(len(seen) - 1)
        for child in item.values() if type(item) is dict else item:
            walk(child)

    walk(value)
    return found


def collections(value: Any) -> list[Any]:
    found: list[Any] = []

    def walk(item: Any) -> None:
        if type(item) in (dict, list, tuple):
            found.append(item)
            for child in item.values() if type(item) is dict else item:
                walk(child)

    walk(value)
    return found


_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=3)
    | st.binary(max_size=3)
)


@settings(max_examples=500, deadline=None)
@given(
    st.recursive(
        _LEAVES,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.text(max_size=2), inner, max_size=4)
            | st.lists(inner, max_size=3).map(tuple)
        ),
        max_leaves=20,
    ),
    st.integers(0, 3),
)
def test_a_kept_run_s_data_is_copied_as_marshal_s_round_trip_gives_it(value: Any, shared: int) -> None:
    # A collection met twice (an open mapping on the stack and in the item, as a run keeps them).
    inner = collections(value)
    whole = (value, inner[shared % len(inner)] if inner else value, [inner[:2]])
    copied = c().copy_built(whole)
    assert copied == marshal.loads(marshal.dumps(whole))
    assert sharing(copied) == sharing(whole) == sharing(marshal.loads(marshal.dumps(whole)))
    # (no list or dict of the kept value is handed out: a tuple, which nothing changes, may be
    # the same, as the empty one always is)
    originals = {id(item) for item in collections(whole)}
    assert not any(id(item) in originals for item in collections(copied) if type(item) is not tuple)


def test_a_value_the_copy_does_not_take_is_refused() -> None:
    for wrong in ({1, 2}, [frozenset()], {"a": object()}, (1, [2, {"d": complex(1, 2)}])):
        with pytest.raises(TypeError, match="^llmcassette: "):
            c().copy_built(wrong)
    deep: list[Any] = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(ValueError, match="^llmcassette: "):
        c().copy_built(deep)


def test_a_run_whose_data_the_copy_does_not_take_is_kept_as_marshal_s_bytes() -> None:
    _layout._runs.clear()
    text = b'- request:\n    method: POST\n    when: 1+2j\n    body: {\n      "a": 1\n    }\n'
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_layout, "_plain", lambda value: complex(1, 2) if value == "1+2j" else value)
        first = _layout.read_layout(text)
        assert isinstance(_layout._runs["- request:"][1], bytes)
        assert _layout.read_layout(text) == first
    _layout._runs.clear()
    first = _layout.read_layout(text.replace(b"1+2j", b"x"))
    assert not isinstance(_layout._runs["- request:"][1], bytes)
    again = _layout.read_layout(text.replace(b"1+2j", b"x"))
    assert again == first and again[0] is not first[0]
