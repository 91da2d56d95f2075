"""
YAML reading and writing: exact round trips of any text, readable output, and a fast loader that
reads every file as PyYAML's safe loader does.
"""

from __future__ import annotations

import enum
import math
from typing import Any

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from llmcassette import _yaml
from llmcassette._yaml import YAMLError, dump_yaml, load_yaml

SSE_BODY = (
    'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'
    'data: {"choices":[{"delta":{"content":" 👋 ça va ?"}}]}\n\n'
    "data: [DONE]\n\n"
)


class _ReferenceLoader(yaml.SafeLoader):
    """
    PyYAML's pure-Python safe loader, with the same python/str tags llmcassette accepts, and dates
    read as their text, as llmcassette reads them.
    """


def _python_str(loader: Any, node: Any) -> str:
    return str(loader.construct_scalar(node))


for _tag in (
    "tag:yaml.org,2002:python/unicode",
    "tag:yaml.org,2002:python/str",
    "tag:yaml.org,2002:timestamp",
):
    _ReferenceLoader.add_constructor(_tag, _python_str)


def reference_load(text: str) -> Any:
    return yaml.load(text, Loader=_ReferenceLoader)


def same(a: Any, b: Any) -> bool:
    """Equality in which NaN equals NaN and types must match (True is not 1)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# --- exact round trips of text -------------------------------------------------------------------

# Characters that YAML treats specially: line breaks of every kind, the BOM, tabs, spaces, quotes,
# indicators, and characters outside the BMP (which libyaml cannot write unescaped).
_TRICKY = st.sampled_from(
    [
        "\n",
        "\r\n",
        "\r",
        "\x85",
        "\u2028",
        "\u2029",
        "\ufeff",
        "\t",
        " ",
        "  ",
        "#",
        ": ",
        "- ",
        "'",
        '"',
        "\\",
        "|",
        ">",
        "---",
        "...",
        "%",
        "@",
        "&a",
        "*a",
        "!!",
        "\x00",
        "\x1b",
        "\x7f",
        "\x9f",
        "é",
        "日本",
        "🎉",
        "\U0010ffff",
        "\ufffe",
        "data: x",
        "null",
        "0x1F",
        "1e3",
        "yes",
        "~",
    ]
)
_TEXT = st.one_of(
    st.lists(_TRICKY | st.text(max_size=5), max_size=25).map("".join),
    st.text(max_size=200),
    # Lines longer than the output width, so that folding of quoted scalars is exercised.
    st.lists(st.sampled_from(["word ", "  ", "\n", "x" * 50, "\r\n"]), min_size=5, max_size=30).map("".join),
)


@settings(max_examples=200, deadline=None)
@given(text=_TEXT)
def test_any_text_survives_dump_and_load(text: str) -> None:
    data = {"value": text, "items": [text, {"nested": text}], text: "as a key"}
    assert load_yaml(dump_yaml(data)) == data


@settings(max_examples=200, deadline=None)
@given(text=_TEXT)
def test_written_yaml_reads_the_same_with_the_reference_loader(text: str) -> None:
    dumped = dump_yaml({"value": text})
    assert reference_load(dumped) == {"value": text}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("trailing spaces  \nnext\n", id="trailing-spaces"),
        pytest.param("  leading spaces\nnext\n", id="leading-spaces"),
        pytest.param("\ttab first\n", id="leading-tab"),
        pytest.param("no final newline\nx", id="no-final-newline"),
        pytest.param("many final newlines\n\n\n", id="kept-newlines"),
        pytest.param("\n", id="only-a-newline"),
        pytest.param("\ufeffdata: bom\n\n", id="bom"),
        pytest.param("data: a\r\n\r\n", id="crlf"),
        pytest.param("data: a\r\r", id="cr"),
        pytest.param("line\u2028separator\n", id="u2028"),
        pytest.param("next\x85line\n", id="nel"),
        pytest.param("emoji 🎉\nagain 🎉\n", id="emoji"),
        pytest.param("", id="empty"),
    ],
)
def test_text_round_trips_exactly(text: str) -> None:
    assert load_yaml(dump_yaml({"string": text})) == {"string": text}


# --- readable output -----------------------------------------------------------------------------


def test_sse_body_is_a_literal_block_with_unicode_as_is() -> None:
    dumped = dump_yaml({"body": {"string": SSE_BODY}})
    assert "string: |" in dumped
    # Every line of the stream is a line of the file, emoji and accents included.
    for line in SSE_BODY.splitlines():
        if line:
            assert f"    {line}\n" in dumped
    assert "\\U" not in dumped
    assert load_yaml(dumped) == {"body": {"string": SSE_BODY}}


def test_literal_backslash_u_in_text_is_kept() -> None:
    # The emoji fallback looks for "\U" in libyaml's output; a real backslash-U must survive it.
    data = {"path": "C:\\Users\\me", "text": "a\nb\\U0001F600\n"}
    assert load_yaml(dump_yaml(data)) == data


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("data: a\r\n\r\n", id="cr"),
        pytest.param("a\u2028b\n", id="line-separator"),
        pytest.param("a\x85b\n", id="nel"),
        pytest.param("\ufeffa\nb", id="bom"),
    ],
)
def test_text_a_block_cannot_hold_is_double_quoted_with_visible_escapes(text: str) -> None:
    assert dump_yaml({"s": text}).startswith('s: "')


def test_leaf_collections_are_flow_style_and_key_order_is_kept() -> None:
    data = {"status": {"code": 200, "message": "OK"}, "stream": {"chunks": [12, 30, 7], "end": "complete"}}
    dumped = dump_yaml(data)
    assert dumped == "status: {code: 200, message: OK}\nstream:\n  chunks: [12, 30, 7]\n  end: complete\n"
    assert list(load_yaml(dumped)) == ["status", "stream"]


def test_enums_are_written_as_their_values() -> None:
    class Colour(enum.StrEnum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    assert load_yaml(dump_yaml({"c": Colour.RED, "l": Level.HIGH})) == {"c": "red", "l": 3}


def test_bytes_are_binary_and_come_back_as_bytes() -> None:
    data = {"string": b"\x1f\x8b\x08\x00\xff"}
    dumped = dump_yaml(data)
    assert "!!binary" in dumped
    assert load_yaml(dumped) == data


def test_deep_nesting_within_the_body_limit_round_trips() -> None:
    value: Any = "leaf"
    for _ in range(100):
        value = [value]
    data = {"interactions": [{"response": {"parsed_body": value}}]}
    assert load_yaml(dump_yaml(data)) == data


# --- reading -------------------------------------------------------------------------------------


def test_python2_string_tags_read_as_text() -> None:
    text = "body: !!python/unicode 'hello'\nname: !!python/str x\n"
    assert load_yaml(text) == {"body": "hello", "name": "x"}


def test_bytes_input_is_accepted() -> None:
    assert load_yaml("k: é\n".encode()) == {"k": "é"}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: !!python/object/apply:os.system ['true']\n", id="python-object-apply"),
        pytest.param("a: !!python/object:collections.OrderedDict {x: 1}\n", id="python-object-mapping"),
        pytest.param("a: !custom [1]\n", id="unknown-tag-on-a-sequence"),
        pytest.param("a: *nowhere\n", id="undefined-alias"),
        pytest.param("a: 1\n---\nb: 2\n", id="two-documents"),
        pytest.param("a: [1\n", id="syntax"),
        pytest.param("a: =\n", id="value-tag"),
    ],
)
def test_unsafe_or_broken_yaml_is_a_yaml_error(text: str) -> None:
    # Anything but a YAMLError (a KeyError from an undefined alias, say) would escape the
    # cassette loader's error handling and reach the user as a crash.
    with pytest.raises(YAMLError):
        load_yaml(text)


# YAML that exercises every path of the fast loader, and a few that make it hand over to the
# standard loader; whichever path runs, the result must be the reference loader's.
_DOCUMENTS = [
    pytest.param("", id="empty"),
    pytest.param("# only a comment\n", id="comment-only"),
    pytest.param("~\n", id="null-document"),
    pytest.param("plain\n", id="plain-scalar"),
    pytest.param(
        "[1, 2.5, -0, +3, 0x1F, 0o17, 017, 1_000, 1:30, .inf, -.inf, .nan, 1e3, 1.0e+3]\n", id="numbers"
    ),
    pytest.param(
        "{t: true, f: False, y: yes, n: no, on: on, off: OFF, nul: null, tilde: ~, empty: }\n",
        id="booleans-and-nulls",
    ),
    pytest.param(
        "{d: 2026-11-24, ts: 2026-11-24T18:12:00Z, s: '2026-11-24', q: \"1\"}\n", id="dates-and-quoted"
    ),
    pytest.param("{? a : 1, ? b : 2}\n", id="explicit-keys"),
    pytest.param("{~: null key, 2: int key, 1.5: float key, true: bool key}\n", id="non-string-keys"),
    pytest.param(
        "base: &b {x: 1, y: [1, 2]}\nother: *b\nscalar: &s text\nagain: *s\n", id="anchors-and-aliases"
    ),
    pytest.param("base: &b {x: 1}\nmerged: {<<: *b, y: 2}\n", id="merge-key"),
    pytest.param("merged:\n  <<: [{a: 1}, {b: 2}]\n  c: 3\n", id="merge-list"),
    pytest.param("quoted merge: {'<<': 1}\n", id="quoted-merge-key"),
    pytest.param("s: !!set {a, b}\n", id="set"),
    pytest.param("o: !!omap [{a: 1}, {b: 2}]\n", id="omap"),
    pytest.param("p: !!pairs [{a: 1}, {a: 2}]\n", id="pairs"),
    pytest.param(
        "explicit: {s: !!str 12, i: !!int '7', f: !!float '1', n: !!null '', b: !!bool 'true'}\n",
        id="explicit-scalar-tags",
    ),
    pytest.param("tagged collections: {m: !!map {a: 1}, s: !!seq [1]}\n", id="tagged-collections"),
    pytest.param("bin: !!binary aGVsbG8=\n", id="binary"),
    pytest.param("u: !!python/unicode caf\\xe9\nv: !!python/str x\n", id="python-tags"),
    pytest.param("non-specific: ! 12\n", id="non-specific-tag"),
    pytest.param("block: |\n  a\n   b\n\nfolded: >\n  a\n  b\n\n  c\nkeep: |+\n  x\n\n", id="block-scalars"),
    pytest.param("\"quoted \\u00e9 \\U0001F389 \\x41\": 'single ''quote'''\n", id="escapes"),
    pytest.param("---\nexplicit: start\n...\n", id="document-markers"),
    pytest.param("%YAML 1.1\n---\nwith: directive\n", id="directive"),
    pytest.param("list:\n- - nested\n  - list\n- {inline: map}\n- - []\n  - {}\n", id="nested-lists"),
]


@pytest.mark.parametrize("text", _DOCUMENTS)
def test_fast_loader_reads_as_the_reference_loader(text: str) -> None:
    assert same(load_yaml(text), reference_load(text))


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        pytest.param("dup: 1\ndup: 2\n", "dup", 2, id="top-level"),
        pytest.param("a:\n  b: {c: 1, c: 2}\n", "c", 2, id="nested-flow"),
        # A tagged collection sends the file to the standard loader: it refuses them as well.
        pytest.param("s: !!set {x}\nm:\n  k: 1\n  k: 2\n", "k", 4, id="standard-loader"),
        pytest.param("{1: int, true: bool}\n", True, 1, id="keys-python-holds-as-one"),
    ],
)
def test_duplicate_keys_are_refused_with_the_key_and_its_line(text: str, key: object, line: int) -> None:
    # PyYAML keeps the last of two equal keys, which silently loses the first value.
    with pytest.raises(yaml.YAMLError) as caught:
        load_yaml(text)
    assert f"found the key {key!r} twice" in str(caught.value)
    assert caught.value.problem_mark.line + 1 == line  # type: ignore[attr-defined]


def test_a_merge_key_may_be_overridden() -> None:
    assert load_yaml("a: &x {k: 1, j: 2}\nb: {<<: *x, k: 3}\n")["b"] == {"k": 3, "j": 2}


def test_anchored_collections_are_shared_as_in_the_reference_loader() -> None:
    loaded = load_yaml("a: &x [1]\nb: *x\n")
    assert loaded["a"] is loaded["b"]


def test_complex_keys_are_refused_as_by_the_reference_loader() -> None:
    text = "? [a, b]\n: value\n"
    with pytest.raises(YAMLError):
        reference_load(text)
    with pytest.raises(YAMLError):
        load_yaml(text)


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["yes", "No", "0o17", "1:30", "2026-01-01", "1_0", ".5", "~", "<<", "=", "-", "0x_"])
    | st.dates()
    | st.binary(max_size=8)
)
_DATA = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(data=_DATA, flow=st.sampled_from([None, True, False]), python_emitter=st.booleans())
def test_fast_loader_agrees_with_the_reference_loader_on_any_file(
    data: Any, flow: bool | None, python_emitter: bool
) -> None:
    # Files written by other tools (vcrpy, hand edits) use other styles than dump_yaml.
    dumper = yaml.SafeDumper if python_emitter else getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump({"doc": data}, Dumper=dumper, default_flow_style=flow, allow_unicode=True)
    assert same(load_yaml(text), reference_load(text))


def test_loading_keeps_no_reference_to_loaded_values() -> None:
    # The fast loader builds tagged scalars (binary bodies among them) with one shared
    # constructor; were its memo kept, every body ever loaded would stay in memory.
    load_yaml("a: !!binary aGVsbG8=\nb: true\nc: null\nd: 2026-01-01\n")
    assert not _yaml._scalar_constructor.constructed_objects


@pytest.mark.parametrize("loader", ["fast", "general"])
def test_a_plain_date_is_read_as_the_text_it_is(loader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # YAML 1.1 makes `2024-01-02` a date, which no JSON body can hold: a hand-written cassette with
    # one replayed and linted with a traceback. It is text, as JSON and headers have it.
    if loader == "general":
        monkeypatch.setattr(_yaml, "_fast_load", _raise_unsupported)
    data = load_yaml("when: 2024-01-02\nat: 2001-12-14t21:59:43.10-05:00\nlist: [2024-01-02]\n")
    assert data == {"when": "2024-01-02", "at": "2001-12-14t21:59:43.10-05:00", "list": ["2024-01-02"]}


def _raise_unsupported(text: str | bytes) -> Any:
    raise _yaml._Unsupported
