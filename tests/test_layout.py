"""
llmcassette's own layout: JSON bodies written as JSON, and the reader that builds the data of the
files the writer emits without a general YAML parser. Whatever the reader accepts, it reads as the
general loader does: over generated cassettes, over every edit of one character, and over every
file of the corpus and of cassettes/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from llmcassette import CassetteFormatError, _layout, load_cassette
from llmcassette._layout import Unrecognised, _other_utf8, dump_cassette_yaml, read_layout, render_json
from llmcassette._storage import dumps_cassette
from llmcassette._values import json_plain
from llmcassette._yaml import YAMLError, _resolve_plain, load_yaml
from tests.corpus import corpus_path, params
from tests.test_yaml import reference_load, same

ROOT = Path(__file__).resolve().parents[1]
OWN_CASSETTES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "cassettes").rglob("*.yaml"))

# Text made of what YAML and JSON read differently: escapes, exponents, quotes, line breaks of
# every kind, non-printable and astral characters, YAML's indicators and its words for booleans.
_TEXT = st.text(
    st.sampled_from(
        [
            *"ab \t\n\r\\\"'#:-{}[],|>&*!%@`?~e.0",
            "\x85",
            "\u2028",
            "\ufeff",
            "\x7f",
            "\x9f",
            "\U0001f44b",
            "é",
        ]
    ),
    max_size=12,
) | st.sampled_from(
    ["yes", "no", "on", "null", "~", "1e5", "1.5e-05", "0x1f", "012", ".inf", "2024-01-01", "1:30"]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _TEXT
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=16,
)
_HEADER_VALUES = st.lists(
    _TEXT | st.sampled_from(["application/json", "Bearer REDACTED", "a, b", 'W/"1"']), max_size=3
)


def _request(body: Any, headers: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "method": "POST",
        "uri": "https://api.example.test/v1/chat?x=1",
        "headers": headers,
        "parsed_body": body,
        "json_format": "compact",
    }


@st.composite
def cassette_data(draw: st.DrawFn) -> dict[str, Any]:
    interactions = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        headers = draw(
            st.dictionaries(st.sampled_from(["content-type", "x-a", "Date", "on", "1"]), _HEADER_VALUES)
        )
        response: dict[str, Any] = {
            "status": {"code": draw(st.sampled_from([200, 429])), "message": draw(_TEXT)}
        }
        response["headers"] = headers
        kind = draw(st.sampled_from(["json", "text", "binary"]))
        if kind == "json":
            response["parsed_body"] = draw(JSON_VALUES)
        elif kind == "text":
            response["body"] = {"string": draw(st.text(max_size=40) | _TEXT)}
        else:
            response["body"] = {"string": draw(st.binary(max_size=20))}
        if draw(st.booleans()):
            response["stream"] = {
                "chunks": draw(st.lists(st.integers(min_value=0, max_value=10**6), max_size=40)),
                "offsets_ms": draw(st.lists(st.floats(min_value=0, max_value=1e6), max_size=40)),
            }
        interactions.append({"request": _request(draw(JSON_VALUES), headers), "response": response})
    return {"version": 1, "llmcassette_schema": 1, "interactions": interactions}


def read_both(text: str | bytes) -> tuple[Any, Any]:
    """What the layout reader gives (``Unrecognised`` if it declines) and what the general loader gives."""
    try:
        general: Any = load_yaml(text)
    except YAMLError as exc:
        general = exc
    try:
        fast: Any = read_layout(text)
    except Unrecognised:
        fast = Unrecognised
    return fast, general


def assert_read_alike(text: str | bytes) -> bool:
    """The reader declines ``text`` or reads it as the general loader does; True when it read it."""
    fast, general = read_both(text)
    if fast is Unrecognised:
        return False
    assert not isinstance(general, Exception), f"the layout reader accepted what YAML refuses: {general}"
    assert same(fast, general)
    # The values it reports as parsed from JSON are plain: the compiler skips its walk for them.
    made: list[Any] = []
    read_layout(text, made_json=made)
    assert all(json_plain(value) for value in made)
    return True


def dumped(data: dict[str, Any]) -> str:
    return dump_cassette_yaml(data) + "...\n"


# -- the writer -------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_a_json_body_is_written_as_json_only_where_yaml_reads_the_same(value: Any) -> None:
    text = render_json(value)
    if text is None:
        return
    document = f"a:\n  parsed_body: {text.replace(chr(10), chr(10) + '    ')}\n"
    assert same(load_yaml(document), {"a": {"parsed_body": value}})
    assert same(reference_load(document), {"a": {"parsed_body": value}})
    assert same(read_layout(document), {"a": {"parsed_body": value}})


def test_a_json_body_reads_as_the_json_it_is() -> None:
    data = {"interactions": [{"request": _request({"model": "m", "n": [1, 2.5, True, None]}, {})}]}
    text = dumped(data)
    assert '    parsed_body: {\n        "model": "m",\n        "n": [\n          1,\n' in text
    assert same(read_layout(text), data)


@pytest.mark.parametrize(
    "value",
    [
        {"x": 1e-05},
        {"x": float("nan")},
        {"x": "\x85"},
        {"x": "\u2028"},
        {1: "a"},
        {"k" * 1000: 1},
        ("a",),
        {"t": (1,)},
    ],
)
def test_a_body_yaml_would_read_otherwise_is_written_as_yaml(value: Any) -> None:
    assert render_json(value) is None
    data = {"interactions": [{"request": _request(value, {})}]}
    assert "parsed_body: {\n" not in dumped(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cassette_data())
def test_the_reader_reads_what_the_writer_writes_as_yaml_does(data: dict[str, Any]) -> None:
    text = dumped(data)
    fast, general = read_both(text)
    assert same(general, load_yaml(dump_cassette_yaml(data)))
    if fast is not Unrecognised:
        assert same(fast, general)


# -- edits of one character -------------------------------------------------------------------

_EDITS = st.sampled_from(
    [
        " ",
        "\n",
        "#",
        "'",
        '"',
        ":",
        "-",
        "{",
        "}",
        "[",
        "]",
        ",",
        "\t",
        "|",
        "e",
        "1",
        "0",
        "\\",
        "&",
        "*",
        "!",
        ".",
        "E",
        "+",
    ]
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cassette_data(), st.data())
def test_an_edited_file_is_declined_or_read_as_yaml_reads_it(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    text = dumped(data)
    at = draw.draw(st.integers(min_value=0, max_value=len(text)))
    kind = draw.draw(st.sampled_from(["insert", "delete", "replace", "duplicate line"]))
    if kind == "insert":
        text = text[:at] + draw.draw(_EDITS) + text[at:]
    elif kind == "delete":
        text = text[:at] + text[at + 1 :]
    elif kind == "replace":
        text = text[:at] + draw.draw(_EDITS) + text[at + 1 :]
    else:
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        if end >= 0:
            text = text[: end + 1] + text[start : end + 1] + text[end + 1 :]
    assert_read_alike(text)


@pytest.mark.parametrize(
    "text",
    [
        "a:\n  b: |\n    one  \n    two\n",  # a line that ends in spaces
        "a:\n  b: |+\n    one\n    \n      \n    two \n\n",  # lines of spaces only
        "a:\n  b: |-\n    one\n     \n",
        "a:\n  b: |\n    one\n        \n    \n",
        "a:\n  b: |\n    one\n\t\n",
        "a:\n  b: |\n    one\n   \n",
    ],
)
def test_a_literal_block_with_spaces_at_line_ends_is_read_as_yaml_reads_it(text: str) -> None:
    assert_read_alike(text)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(["|", "|-", "|+"]),
    st.lists(st.sampled_from(["x", "x ", "x  y", "", " ", "   ", "    ", "     ", "      x ", "\t", " \t"])),
)
def test_a_literal_block_of_any_lines_is_declined_or_read_as_yaml_reads_it(
    header: str, lines: list[str]
) -> None:
    block = "".join(f"{'' if line.isspace() or not line else '    '}{line}\n" for line in ["x", *lines])
    assert_read_alike(f"a:\n  b: {header}\n{block}  c: 1\n")
    assert_read_alike(f"a:\n  b: {header}\n{block}")


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["1", "12", "0", "07", "1.5", ".5", "5.", "-3", "1e5", "1E5", "0x1f", "1_0", "+2", "é", "x"]
        ),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from([", ", ",", ",\n    ", " ,", ", ,"]),
)
def test_a_number_list_over_lines_is_declined_or_read_as_yaml_reads_it(items: list[str], comma: str) -> None:
    # The reader checks the characters of such a list with a deletion in C instead of a regex;
    # whatever it then takes must read as YAML reads it (`1e5` is text to YAML, `07` octal).
    listed = comma.join(items)
    assert_read_alike(f"a:\n  chunks: [{listed},\n    1]\n  b: 1\n")


@pytest.mark.parametrize(
    "text",
    [
        'a:\n  parsed_body: {\n      "k": 1,\n      "k": 2\n    }\n',  # a key twice
        'a:\n  parsed_body: {\n      "k": 1e5\n    }\n',  # YAML reads the number as text
        'a:\n  parsed_body: {\n      "k": NaN\n    }\n',
        'a:\n  parsed_body: {\n      "k"\n      : 1\n    }\n',  # a key on two lines
        'a:\n  parsed_body: {\n      "k": "\\/"\n    }\n',
        'a:\n  parsed_body: {\n      "' + "k" * 1000 + '": 1\n    }\n',  # longer than YAML takes a key
        'a:\n  parsed_body: {\n      "k": "\\ud83d\\udc4b"\n    }\n',
        'a:\n  parsed_body: {"k": 1} # note\n',
        "a:\n  b: x\n  b: y\n",
        "a: &x 1\nb: *x\n",
        "a:\n  b: |\n    one\n   \n    two\n",
        "a:\n  b: |2\n     indented\n",
        "a:\n  chunks: [1,\n    .5]\n",
        "a:\n  on: 1\n",
        "a:\n  b: one\n    two\n",
        "a:\n  b: 'one\n    two'\n",
        "# a comment\na: 1\n",
        "a: 1\n...\nb: 2\n",
        "a: 1",
    ],
)
def test_what_the_reader_does_not_know_goes_to_yaml(text: str) -> None:
    with pytest.raises(Unrecognised):
        read_layout(text)
    assert_read_alike(text)


@pytest.mark.parametrize("size", [0, 4000])  # both ways of looking for them (see `_has_control`)
@pytest.mark.parametrize("code", [*range(9), *range(11, 32), 127])
def test_a_control_character_anywhere_is_declined(code: int, size: int) -> None:
    block = "".join(f"    line {n}\n" for n in range(size // 12))
    for at in ("key", "start", "end"):
        text = f"a:\n  b: |\n{block}    {chr(code) if at == 'start' else ''}x\n  c: 1\n"
        if at == "end":
            text = f"{text[:-1]}{chr(code)}\n"
        elif at == "key":
            text = f"a{chr(code)}:\n  b: |\n{block}    x\n"
        assert len(text) > size
        with pytest.raises(Unrecognised):
            read_layout(text)
    assert read_layout(f"a:\n  b: |\n{block}    x\ty\n  c: 1\n")["a"]["c"] == 1  # a tab is not one


# The search `_other_utf8` replaced: one pattern of all four sequences.
_OTHER_UTF8_BEFORE = re.compile(rb"\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]|\xef\xbb\xbf|\xef\xbf[\xbe\xbf]")


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [b"a", b"\n", b"\xc2", b"\xe2", b"\xef", b"\x80", b"\xbb", b"\xbf", b"\xa8", b"\xa9"]
            + [b"\x85", b"\x9f", b"\xa0", b"\xbe", b"\xe2\x80", b"\xef\xbb", b"\xef\xbf"]
            + ["é—“ü”©！".encode()]
        ),
        max_size=14,
    )
)
def test_the_characters_beyond_ascii_yaml_refuses_are_found_as_before(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    assert _other_utf8(raw) == (_OTHER_UTF8_BEFORE.search(raw) is not None)


@pytest.mark.parametrize("character", ["\x85", "\x9f", "\u2028", "\u2029", "\ufeff", "\ufffe", "\uffff"])
def test_a_character_beyond_ascii_yaml_refuses_is_declined_beside_others(character: str) -> None:
    # (beside characters that share its first byte, which are taken)
    taken = "a:\n  b: |\n    é ©\u2014\u201c\uff01 x\n"
    assert read_layout(taken) == {"a": {"b": "é ©\u2014\u201c\uff01 x\n"}}
    with pytest.raises(Unrecognised):
        read_layout(taken.replace(" x", f" {character}x"))


@pytest.mark.parametrize(
    "text",
    [
        "a:\n  b: 012\n",
        "a:\n  b: 2024-01-01\n",
        "a:\n  chunks: [1, 02, 3]\n",
        "a: [0.49.0, 1.5e-05, 0x1f, yes]\n",
    ],
)
def test_a_scalar_yaml_reads_as_other_than_text_is_built_as_yaml_builds_it(text: str) -> None:
    assert assert_read_alike(text)


def test_a_json_body_given_a_key_twice_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(
        "interactions:\n- request:\n    method: POST\n    uri: https://api.example.test/v1\n"
        '    parsed_body: {\n        "model": "a",\n        "model": "b"\n      }\n'
        "  response:\n    status: {code: 200, message: OK}\n"
    )
    with pytest.raises(CassetteFormatError, match="found the key 'model' twice"):
        load_cassette(path)


# -- files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", params())
def test_every_corpus_file_is_declined_or_read_as_yaml_reads_it(rel: str) -> None:
    path = corpus_path(rel)
    if path.suffix != ".yaml" and path.suffix != ".yml":
        pytest.skip("not YAML")
    assert_read_alike(path.read_bytes())
    # Written again by llmcassette, too.
    assert_read_alike(dumps_cassette(load_cassette(path)))


@pytest.mark.parametrize("rel", OWN_CASSETTES)
def test_every_cassette_of_the_project_is_declined_or_read_as_yaml_reads_it(rel: str) -> None:
    path = ROOT / rel
    assert_read_alike(path.read_bytes())
    # Written again by this llmcassette, a recording of a provider is in the layout throughout.
    assert assert_read_alike(dumps_cassette(load_cassette(path)))


@pytest.mark.parametrize(("depth", "reported"), [(1, True), (100, True), (101, False)])
def test_a_json_body_is_reported_plain_only_within_the_depth_models_take(depth: int, reported: bool) -> None:
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    text = f"a:\n  parsed_body: [\n    {inner}\n  ]\n"
    made: list[Any] = []
    data = read_layout(text, made_json=made)
    assert same(data, load_yaml(text))
    assert (made == [data["a"]["parsed_body"]]) is reported
    assert made[0] is data["a"]["parsed_body"] if reported else made == []
    assert json_plain(data["a"]["parsed_body"]) is reported


def test_the_reference_loader_agrees_on_the_layout() -> None:
    data = {"interactions": [{"request": _request({"a": [1, {"b": None}], "c": "é 👋"}, {"x": ["1"]})}]}
    text = dumped(data)
    assert same(read_layout(text), reference_load(text))
    assert same(yaml.safe_load(text), read_layout(text))


def test_a_line_read_again_by_its_text_reads_alike_and_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    # A line once read is looked up by its text (`_layout._lines`): each read still gets a flow
    # collection of its own, and the memo starting afresh when full changes nothing.
    text = "a:\n  b: [x, y]\n  c: {d: 1}\n  e: 'q'\n  f:\n    g: 2\n"
    first = read_layout(text)
    first["a"]["b"].append("z")
    first["a"]["c"]["h"] = 3
    assert read_layout(text) == load_yaml(text)
    monkeypatch.setattr(_layout, "_lines", {})
    monkeypatch.setattr(_layout, "_LINES_KEPT", 2)
    for _ in range(3):
        assert read_layout(text) == load_yaml(text)
        assert len(_layout._lines) <= 2


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cassette_data(), cassette_data(), st.data())
def test_a_run_of_lines_read_again_reads_alike_and_apart(
    first: dict[str, Any], second: dict[str, Any], draw: st.DataObject
) -> None:
    # A run of lines once read is built again from a copy of what it built (`_layout._runs`), for
    # a text that starts with the same run: read after each other, and after an edit of a kept
    # run's text, the texts still read as YAML reads them.
    for interaction in first["interactions"] + second["interactions"]:
        # (a body written as JSON ends a run)
        interaction["request"]["parsed_body"] = {"k": interaction["request"]["parsed_body"]}
    for interaction in second["interactions"]:
        if draw.draw(st.booleans()):
            # the same run as the first cassette's first request (then its values differ)
            headers = first["interactions"][0]["request"]["headers"]
            interaction["request"]["headers"] = {name: list(values) for name, values in headers.items()}
    texts = [dumped(first), dumped(second)]
    at = draw.draw(st.integers(min_value=0, max_value=len(texts[1])))
    texts.append(texts[1][:at] + draw.draw(_EDITS) + texts[1][at:])
    for text in texts:
        assert_read_alike(text)
    if assert_read_alike(texts[0]):
        # Each read builds collections of its own.
        one = read_layout(texts[0])
        again = read_layout(texts[0])
        one["interactions"][0]["request"]["headers"]["x-changed"] = ["1"]
        assert same(again, load_yaml(texts[0]))


def test_a_kept_run_is_built_again_for_each_item() -> None:
    item = (
        "- request:\n    method: POST\n    headers:\n      a: [x]\n"
        '    parsed_body: {\n        "k": 1\n      }\n'
    )
    text = item + item.replace('"k": 1', '"k": 2') + item + item.replace("POST", "GET") + item
    data = read_layout(text)
    assert "- request:" in _layout._runs
    assert same(data, load_yaml(text))
    data[1]["request"]["headers"]["a"].append("y")
    data[1]["request"]["headers"]["b"] = ["z"]
    assert [item["request"]["headers"] for item in data] == [
        {"a": ["x"]},
        {"a": ["x", "y"], "b": ["z"]},
        {"a": ["x"]},
        {"a": ["x"]},
        {"a": ["x"]},
    ]


@pytest.mark.parametrize("lengths", [[899], [900], [1100], [300, 300, 300, 10], [10, 1100], [899, 899]])
def test_a_json_key_as_long_as_yaml_s_limit_is_declined(lengths: list[int]) -> None:
    # (the keys' lengths are looked at one by one only where they add up to the limit)
    entries = ",\n    ".join(f'"{chr(97 + i) * length}": {i}' for i, length in enumerate(lengths))
    text = "a:\n  parsed_body: {\n    " + entries + "\n  }\n"
    fast, general = read_both(text)
    if max(lengths) >= 900:
        assert fast is Unrecognised
    else:
        assert same(fast, general) and len(fast["a"]["parsed_body"]) == len(lengths)


_JSON_SPACE = st.sampled_from(["", " ", "\n", "  \n   ", "\n\n ", " \n"])


@st.composite
def _spaced_json(draw: st.DrawFn) -> str:
    # A JSON object written with any spaces and line breaks between its tokens, and strings that
    # hold quotes, colons and escaped line breaks.
    value = draw(
        st.dictionaries(
            st.text('ab:"\n ', max_size=4),
            st.one_of(st.integers(), st.text('a: "\n', max_size=4), st.lists(st.integers(), max_size=2)),
            max_size=3,
        )
    )
    tokens = re.split(r'("(?:[^"\\]|\\.)*"|[{}\[\],:])', json.dumps(value))
    return "".join(token if token.strip() else draw(_JSON_SPACE) for token in tokens)


@settings(max_examples=400)
@given(_spaced_json())
def test_a_keys_colon_on_another_line_is_found_as_the_quote_pattern_found_it(text: str) -> None:
    # `_KEY_LINE_BREAK` looks after line breaks; the pattern it replaced looked after quotes.
    assert json.loads(text) is not None
    before = re.compile(r'"[ ]*\n\s*:').search(text) is not None
    assert (_layout._KEY_LINE_BREAK.search(text) is not None) == before


# -- a header's value, read afresh ------------------------------------------------------------

# A header's value as answers give them: YAML's indicators anywhere, words and numbers YAML reads
# as other than text, quotes, spaces at either end, characters beyond ASCII, long ones.
_HEADER_TEXT = st.text(
    st.sampled_from([*"ab \t'\"#:-[]{},|>&*!%@`?~e.0x1\\/_", "é", "\xa0", "\u3000", "\U0001f44b"]),
    max_size=24,
) | st.sampled_from(
    [
        "",
        "0x1",
        "1e3",
        "1.5",
        "-1",
        "007",
        "null",
        "Null",
        "true",
        "yes",
        "~",
        "-",
        "- a",
        "-a",
        "-#",
        "a #b",
        "a#b",
        "a: b",
        "1:30",
        "2026-12-07",
        "Mon, 07 Dec 2026 10:00:00 GMT",
        "req_0c5c7fd0a6a3a4506513270e",
        "d23f0824128b2f33-AMS",
        "14ms",
        "9999",
        'W/"1"',
        "it's",
        "x" * 300,
        "é" * 120,
    ]
)


@settings(max_examples=1500, deadline=None)
@given(_HEADER_TEXT | st.builds("'{}'".format, _HEADER_TEXT) | st.builds('"{}"'.format, _HEADER_TEXT))
def test_a_flow_list_of_one_scalar_is_read_as_the_general_flow_reader_reads_it(inner: str) -> None:
    # `_one_item` reads a header's value (`[value]`) with a few searches of the string; whatever
    # it takes it reads as `_read_flow` does, raising where that raises.
    text = f"[{inner}]"
    try:
        item = _layout._one_item(inner)
    except Unrecognised:
        item = Unrecognised
    if item is _layout._UNKNOWN:
        return
    try:
        general = _layout._read_flow(text)
    except Unrecognised:
        assert item is Unrecognised
        return
    assert item is not Unrecognised
    assert same([item], general)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from([f"x-h{n}" for n in range(16)]),
            st.lists(_HEADER_TEXT, min_size=1, max_size=2),
            min_size=8,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_many_headers_whose_values_differ_are_read_as_yaml_reads_them(
    answers: list[dict[str, list[str]]],
) -> None:
    # Answers with a dozen headers whose values differ per answer, as the writer writes them
    # (quoted or plain, each in a flow list), then each edited at one character.
    data = {
        "version": 1,
        "interactions": [
            {
                "request": _request({"k": n}, {}),
                "response": {"status": {"code": 200, "message": "OK"}, "headers": headers},
            }
            for n, headers in enumerate(answers)
        ],
    }
    text = dumped(data)
    assert_read_alike(text)
    for at in range(text.index("headers:"), len(text), 7):
        assert_read_alike(text[:at] + text[at + 1 :])


def test_a_header_s_value_read_afresh_is_read_without_the_general_flow_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A value that differs per answer is read afresh each time: quoted without an escape, or
    # plain without a flow indicator, it is read without `_read_flow`'s regexes.
    values = [
        "Mon, 07 Dec 2026 10:00:00 GMT",
        "req_0c5c7fd0a6a3a4506513270e",
        "d23f0824128b2f33-AMS",
        "14ms",
        "1399",
        "é x",
    ]
    headers = {f"x-h{n}": [value] for n, value in enumerate(values)}
    text = dumped({"interactions": [{"response": {"status": {"code": 200}, "headers": headers}}]})
    expected = load_yaml(text)

    general = _layout._read_flow

    def refuse(text: str) -> Any:
        assert not text.startswith("["), f"read by the general flow reader: {text}"
        return general(text)  # (the status: a flow mapping)

    monkeypatch.setattr(_layout, "_read_flow", refuse)
    monkeypatch.setattr(_layout, "_lines", {})
    monkeypatch.setattr(_layout, "_flows", {})
    assert same(read_layout(text), expected)


def test_the_resolvers_of_a_plain_scalar_that_starts_with_a_digit_are_the_three_known() -> None:
    # `_resolve` takes a scalar that starts with a digit as text when it holds a character none
    # of these match (`_DIGIT_FIRST_MATCHED`); another resolver would have to be looked at.
    tags = {str(tag) for digit in "0123456789" for tag, _ in yaml.SafeLoader.yaml_implicit_resolvers[digit]}
    assert tags == {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from("0123456789"),
    st.text(st.sampled_from([*"0123456789_.:+- \tabcdefxobtTZinfINFAmsMS,#é"]), max_size=24),
)
def test_a_plain_scalar_that_starts_with_a_digit_is_resolved_as_yaml_resolves_it(
    first: str, rest: str
) -> None:
    value = first + rest
    if value.rstrip(_layout._DIGIT_FIRST_MATCHED):
        assert _resolve_plain(value) == "tag:yaml.org,2002:str"
    try:
        read: Any = _layout._resolve(value)
    except Unrecognised:
        return
    assert same({"a": read}, load_yaml(f"a: {value}\n"))


def test_a_run_that_differs_per_item_is_kept_again_only_now_and_then(monkeypatch: pytest.MonkeyPatch) -> None:
    # Answers whose headers differ each miss the run kept before: it is kept again after 1, 2,
    # 4, 8, then every 16 misses in a row, not after each (`_run_misses`); a run that recurs
    # from some item on is still kept and built again.
    monkeypatch.setattr(_layout, "_runs", {})
    monkeypatch.setattr(_layout, "_run_misses", {})
    kept: list[str] = []
    placed: list[Any] = []
    keep, place = _layout._keep_run, _layout._place

    def counted_keep(first: str, run: str, *rest: Any) -> None:
        kept.append(run)
        keep(first, run, *rest)

    def counted_place(*args: Any) -> Any:
        placed.append(args[0])
        return place(*args)

    monkeypatch.setattr(_layout, "_keep_run", counted_keep)
    monkeypatch.setattr(_layout, "_place", counted_place)
    # (the header's name differs per answer: a value that differs fills a slot of the kept run)
    item = '- response:\n    headers:\n      x-{}: [1]\n    parsed_body: {{\n        "k": {}\n      }}\n'
    text = "".join(item.format(n, n) for n in range(40)) + "".join(
        item.format("same", n) for n in range(40, 60)
    )
    assert same(read_layout(text), load_yaml(text))
    assert len(kept) <= 8
    assert len(placed) >= 10


# -- a kept run whose values differ -----------------------------------------------------------

_NAMES = ["date", "content-type", "x-request-id", "cf-ray", "server", "openai-processing-ms", "x-a"]
# Values as a provider's headers give them (dates, ids, counts, durations), and now and then any.
_PROVIDER_VALUE = st.one_of(
    st.integers(min_value=0, max_value=59).map("Mon, 07 Dec 2026 10:00:{:02d} GMT".format),
    st.text("abcdef0123456789-_", min_size=1, max_size=24),
    st.integers(min_value=0, max_value=20000).map(str),
    st.builds("{}ms".format, st.integers(min_value=0, max_value=99)),
    st.sampled_from(["application/json", "cloudflare", "keep-alive", "REDACTED", "2020-10-01"]),
    _HEADER_TEXT,
)


@st.composite
def provider_answers(draw: st.DrawFn) -> str:
    """
    Several answers (or requests) with the same header names, some of whose values differ from
    item to item, as a provider's recorded answers are, and sometimes their status too.
    """
    names = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=6, unique=True))
    varying = draw(st.sets(st.sampled_from(names)))
    values = st.lists(_PROVIDER_VALUE, min_size=1, max_size=2)
    fixed = {name: draw(values) for name in names}
    side = draw(st.sampled_from(["request", "response"]))
    interactions = []
    for n in range(draw(st.integers(min_value=2, max_value=5))):
        headers = {name: draw(values) if name in varying else list(fixed[name]) for name in names}
        if side == "request":
            interactions.append({"request": _request({"k": n}, headers)})
        else:
            status = {"code": draw(st.sampled_from([200, 200, 200, 429])), "message": "OK"}
            response = {"status": status, "headers": headers, "parsed_body": {"k": n}}
            interactions.append({"response": response})
    return dumped({"version": 1, "interactions": interactions})


def _read_keeping(text: str, runs: dict[str, Any] | None) -> Any:
    # The reader's data of `text` (`Unrecognised` when it declines it) with the kept runs `runs`
    # (which it changes), or with no run kept at all when None: each line read on its own.
    saved = _layout._runs, _layout._run_misses, _layout._RUN_KEPT_CHARS
    _layout._runs, _layout._run_misses = ({} if runs is None else runs), {}
    if runs is None:
        _layout._RUN_KEPT_CHARS = 0
    try:
        return read_layout(text)
    except Unrecognised:
        return Unrecognised
    finally:
        _layout._runs, _layout._run_misses, _layout._RUN_KEPT_CHARS = saved


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(provider_answers(), st.data())
def test_items_that_differ_from_a_kept_run_in_values_read_as_their_lines_do(
    text: str, draw: st.DataObject
) -> None:
    # An item whose lines are a kept run's but for one-line values is built from the run's data
    # with those values (`_slotted`, then `_filled` once the values that differ are known): it
    # reads as reading each of its lines does, and so does the text edited at one character,
    # read with the runs the first text left (its values, its edited lines, the run's pieces).
    runs: dict[str, Any] = {}
    read = _read_keeping(text, runs)
    assert same(read, _read_keeping(text, None))
    at = draw.draw(st.integers(min_value=0, max_value=len(text)))
    kind = draw.draw(st.sampled_from(["insert", "delete", "replace"]))
    if kind == "insert":
        edited = text[:at] + draw.draw(_EDITS) + text[at:]
    elif kind == "delete":
        edited = text[:at] + text[at + 1 :]
    else:
        edited = text[:at] + draw.draw(_EDITS) + text[at + 1 :]
    assert same(_read_keeping(edited, runs), _read_keeping(edited, None))
    assert same(_read_keeping(edited, dict(runs)), _read_keeping(edited, None))
    assert_read_alike(edited)


def test_answers_whose_header_values_differ_are_built_from_the_kept_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Answers whose headers differ in their values only (a date, a request id) are built from the
    # first answer's run: after the first, none of their lines is read on its own; and each gets
    # collections of its own.
    monkeypatch.setattr(_layout, "_runs", {})
    monkeypatch.setattr(_layout, "_run_misses", {})
    monkeypatch.setattr(_layout, "_lines", {})
    read: list[str] = []
    line = _layout._line

    def counted_line(text: str) -> Any:
        read.append(text)
        return line(text)

    monkeypatch.setattr(_layout, "_line", counted_line)
    item = (
        "- response:\n    status: {{code: 200, message: OK}}\n    headers:\n"
        "      date: ['Mon, 07 Dec 2026 10:00:{:02d} GMT']\n      server: [cloudflare]\n"
        "      x-request-id: [req_{:024x}]\n      x-ratelimit-reset-requests: [{}ms]\n"
        '    parsed_body: {{\n        "k": {}\n      }}\n'
    )
    text = "".join(item.format(n, n * 7919, n % 3 + 10, n) for n in range(12))
    data = read_layout(text)
    assert same(data, load_yaml(text))
    assert len(read) == 8  # the first answer's lines
    data[3]["response"]["headers"]["server"].append("x")
    assert [answer["response"]["headers"]["server"] for answer in data[2:5]] == [
        ["cloudflare"],
        ["cloudflare", "x"],
        ["cloudflare"],
    ]


# Values that start with a digit, made of what the resolvers of such a scalar match and a few
# others, and numbers and dates in the forms YAML reads.
_DIGIT_FIRST = st.builds(
    str.__add__,
    st.sampled_from("0123456789"),
    st.text(st.sampled_from([*_layout._DIGIT_FIRST_MATCHED, *"msAMSgz#é,[]{}'"]), max_size=12),
) | st.sampled_from(
    ["1.0e+5", "6.8523015e+5", "685.230_15e+03", "1e5", "0x1f", "0xA_B", "0o17", "0b101", "1_000"]
    + ["017", "1.5", "0.", "2026-12-07", "2026-12-07t10:00:00z", "2026-12-07T10:00:00.5Z", "1:30"]
)


@settings(max_examples=2500, deadline=None)
@given(
    _HEADER_TEXT
    | _DIGIT_FIRST
    | _PROVIDER_VALUE
    | st.builds("'{}'".format, _HEADER_TEXT)
    | st.builds('"{}"'.format, _HEADER_TEXT)
)
def test_a_header_s_value_the_pattern_takes_is_read_as_the_line_reader_reads_it(inner: str) -> None:
    # `_ONE_ITEM` reads a hole's value (`_filled`) in the forms most header values take; what it
    # takes, `_value` reads as the same text.
    written = f"[{inner}]"
    found = _layout._ONE_ITEM.match(written + "\n")
    if found is None:
        return
    quoted, plain = found.groups()
    assert found.end() == len(written)
    assert _layout._value(written) == (_layout._FLOW, [plain if quoted is None else quoted])
