"""
Responses compiled straight from a file's data: whatever :func:`compile_plain` accepts, it
compiles as the model's path does, and whatever the model refuses or converts, it declines.
"""

from __future__ import annotations

import re
from collections.abc import Container
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import ValidationError

from llmcassette import CassetteFormatError
from llmcassette._layout import Unrecognised, read_layout
from llmcassette._models import RecordedRequest, RecordedResponse, StreamRecord
from llmcassette._plain import (
    TextLengths,
    TextTimes,
    compile_plain,
    plain_lengths,
    plain_request_line,
    plain_times,
)
from llmcassette._playback import Compiled, compile_parts, compile_response
from llmcassette._yaml import load_yaml
from tests.corpus import corpus_path, params
from tests.test_layout import JSON_VALUES, OWN_CASSETTES, ROOT

PATH = Path("cassettes/plain.yaml")
URI = "https://api.example.test/v1/chat"

# Each part is drawn from values the model takes as they are, values it converts (an integer
# where a float belongs, a bare header value, a boolean for a number) and values it refuses.
_ODD = st.sampled_from([None, True, False, "", "x", 1.5, -1, [], {}, [1], {"a": 1}])
_TIMES = st.one_of(
    st.floats(min_value=0, max_value=86_400_000.0),
    st.integers(min_value=0, max_value=86_400_000),
    st.sampled_from([-0.5, 86_400_001.0, float("nan"), float("inf"), 10**400, True]),
)
# Values YAML can make of a parsed body that JSON cannot hold as they are: the model makes a key
# that YAML read as a number text, and refuses bytes, sets and what is nested too deep.
_DEEP: list[object] = []
for _ in range(120):
    _DEEP = [_DEEP]
_NOT_JSON = st.sampled_from([b"x", {"b": b"x"}, {1: "a"}, {"a": {True: 1}}, {"1": 1, 1: 2}, {1, 2}, _DEEP])
_HEADERS = st.dictionaries(
    st.sampled_from(["content-type", "Content-Length", "content-encoding", "x-a", "x:a", ""])
    | st.integers(0, 2),
    st.lists(
        st.sampled_from(["text/event-stream", "application/json", "gzip", "12", "a", "a\r\nb"]), max_size=2
    )
    | _ODD,
    max_size=3,
)


@st.composite
def response_items(draw: st.DrawFn) -> dict[str, Any]:
    response: dict[str, Any] = {}
    if draw(st.booleans()) or draw(st.booleans()):
        status: Any = {"code": draw(st.sampled_from([200, 429, 99, 600, 200.0, True, "200"]))}
        if draw(st.booleans()):
            status["message"] = draw(st.sampled_from(["OK", "", 1, None]))
        if not draw(st.integers(0, 9)):
            status["other"] = 1
        response["status"] = status
    if draw(st.booleans()):
        response["headers"] = draw(_HEADERS)
    body = draw(st.sampled_from(["parsed", "string", "bytes", "none", "both", "odd"]))
    content_length = 0
    if body in ("parsed", "both"):
        response["parsed_body"] = draw(JSON_VALUES | _NOT_JSON)
        if draw(st.booleans()):
            response["json_format"] = draw(st.sampled_from(["compact", "indent2+nl", "nope", 1, None]))
    if body in ("string", "bytes", "both"):
        text = draw(st.text(st.sampled_from("ab\n\r é"), max_size=20))
        string: Any = text.encode() if body == "bytes" else text
        content_length = len(text.encode())
        response["body"] = {"string": string}
        if draw(st.booleans()):
            response["body"]["line_endings"] = draw(st.sampled_from(["crlf", "lf", None]))
    if body == "odd":
        response["body"] = draw(_ODD)
    if draw(st.booleans()):
        response["elapsed_ms"] = draw(_TIMES)
    if draw(st.booleans()):
        stream: dict[str, Any] = {}
        if draw(st.booleans()):
            count = draw(st.integers(0, 4))
            lengths = [content_length // count] * count if count else []
            if lengths:
                lengths[-1] += content_length - sum(lengths)
            stream["chunks"] = draw(st.sampled_from([lengths, [*lengths, 1], [True], [1.0], "x"]))
        if draw(st.booleans()):
            stream["offsets_ms"] = draw(st.lists(_TIMES, max_size=4) | _ODD)
        if draw(st.booleans()):
            stream["end"] = draw(st.sampled_from(["complete", "closed", "error", "other"]))
        if not draw(st.integers(0, 4)):
            stream["error"] = {"type": "ReadError", "message": "cut"}
        response["stream"] = stream
    if not draw(st.integers(0, 9)):
        response["eventstream"] = []
    if not draw(st.integers(0, 9)):
        response["extra"] = 1
    item: dict[str, Any] = {"response": response}
    if not draw(st.integers(0, 9)):
        item["websocket"] = None
    return item


def _through_the_model(item: dict[str, Any]) -> Compiled | type[Exception]:
    try:
        response = RecordedResponse.model_validate(item["response"])
        return compile_response(response, method="GET", uri=URI, path=PATH, index=0)
    except ValidationError:
        return ValidationError
    except CassetteFormatError:
        return CassetteFormatError
    except (TypeError, ValueError):  # a parsed body JSON cannot write
        return ValueError


def assert_compiled_alike(item: dict[str, Any], made_ids: Container[int] = ()) -> bool:
    """Whether ``item`` was compiled here; if so, as the model compiles it."""
    expected = _through_the_model(item)
    try:
        compiled = compile_plain(item, method="GET", uri=URI, path=PATH, index=0, made_ids=made_ids)
    except CassetteFormatError:
        assert expected is CassetteFormatError  # the same error the model's path raises
        return True
    if compiled is None:
        return False
    assert isinstance(expected, Compiled), (item, expected)
    assert compiled == expected
    # Equal is not enough: 3 == 3.0, and the model makes every time a float.
    assert type(compiled.elapsed_ms) is type(expected.elapsed_ms)
    assert [type(offset) for offset in compiled.offsets_ms or ()] == [float] * len(compiled.offsets_ms or ())
    return True


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(response_items())
def test_a_response_is_compiled_from_its_data_as_the_model_compiles_it(item: dict[str, Any]) -> None:
    assert_compiled_alike(item)


def test_the_plain_shape_llmcassette_writes_is_compiled_from_its_data() -> None:
    item = {
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-type": ["text/event-stream"], "content-length": ["1"]},
            "body": {"string": "data: 1\n\ndata: 2\n\n"},
            "elapsed_ms": 3,
            "stream": {"chunks": [9, 9], "offsets_ms": [3.5, 4]},
        }
    }
    assert assert_compiled_alike(item)
    compiled = compile_plain(item, method="GET", uri=URI, path=PATH, index=0)
    assert compiled is not None and compiled.playback is not None
    assert compiled.playback.chunks == (b"data: 1\n\n", b"data: 2\n\n")
    assert compiled.offsets_ms == [3.5, 4.0] and compiled.elapsed_ms == 3.0
    assert ("content-length", "18") in compiled.playback.headers


@pytest.mark.parametrize(
    "change",
    [
        {"status": {"code": True}},
        {"status": {"code": 200, "message": None}},
        {"headers": {"a": "bare"}},
        {"headers": {"x-a": ["one\r\nx-b: two"]}},
        {"headers": {"x:a": ["b"]}},
        {"elapsed_ms": float("nan")},
        {"stream": {"chunks": [True, 17]}},
        {"stream": {"offsets_ms": [1.0, -1.0]}},
        {"stream": {"end": "error", "error": {"type": "ReadError"}}},
        {"json_format": "compact"},
        {"eventstream": []},
    ],
)
def test_what_the_model_converts_or_refuses_is_left_to_it(change: dict[str, Any]) -> None:
    response = {"status": {"code": 200}, "body": {"string": "data: 1\n\ndata: 2\n\n"}, **change}
    assert compile_plain({"response": response}, method="GET", uri=URI, path=PATH, index=0) is None


def _compile_every_response(path: Path) -> None:
    try:
        data = load_yaml(path.read_bytes())
    except Exception:  # a file the corpus keeps because it is broken: loading says so
        return
    # Read by the layout reader too, its JSON bodies named as known plain, as the loader does.
    made: list[Any] = []
    try:
        read = read_layout(path.read_bytes(), made_json=made)
    except Unrecognised:
        read = None
    made_ids = {id(value) for value in made}
    for found, ids in ((data, ()), (read, made_ids)):
        interactions = found.get("interactions") if isinstance(found, dict) else None
        for interaction in interactions or ():
            if isinstance(interaction, dict) and "response" in interaction:
                assert_compiled_alike({"response": interaction["response"]}, ids)


def test_a_request_read_by_the_layout_reader_gives_the_line_its_model_gives() -> None:
    made: list[Any] = []
    for rel in OWN_CASSETTES:
        try:
            data = read_layout((ROOT / rel).read_bytes(), made_json=made)
        except Unrecognised:
            continue
        made_ids = {id(value) for value in made}
        for interaction in data.get("interactions") or ():
            request = interaction.get("request") if isinstance(interaction, dict) else None
            line = plain_request_line(request, made_ids=made_ids)
            if line is not None:
                model = RecordedRequest.model_validate(request)
                assert line == (model.method, model.uri, model.content)


@pytest.mark.parametrize("rel", params())
def test_every_response_of_the_corpus_is_compiled_as_the_model_compiles_it(rel: str) -> None:
    _compile_every_response(corpus_path(rel))


@pytest.mark.parametrize("rel", OWN_CASSETTES)
def test_every_response_of_the_project_is_compiled_as_the_model_compiles_it(rel: str) -> None:
    _compile_every_response(ROOT / rel)


_TIME_WORDS = st.sampled_from(
    [
        "0",
        "1",
        "0.5",
        "12.25",
        "9999999.9",
        "10000000",
        "86400000",
        "-1",
        "01",
        ".5",
        "5.",
        "1e3",
        "1.5e+3",
        "0x1",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_TIME_WORDS, min_size=1, max_size=5), st.lists(st.sampled_from([", ", ",", " , ", ",\n  "])))
def test_plain_times_read_later_are_what_the_model_makes_of_the_list(
    words: list[str], separators: list[str]
) -> None:
    text = words[0] + "".join(
        f"{separators[n % len(separators)] if separators else ', '}{word}" for n, word in enumerate(words[1:])
    )
    times = plain_times(text.encode())
    if times is None:
        return
    listed = load_yaml(f"offsets_ms: [{text}]\n".encode())["offsets_ms"]
    expected = StreamRecord.model_validate({"offsets_ms": listed}).offsets_ms
    assert len(times) == len(listed)
    assert times.values() == expected and [type(t) for t in times.values()] == [float] * len(listed)
    assert times[0] == expected[0] and times == expected and times == TextTimes(text.encode())


# The times pattern as it was written before its repeats were made possessive (for speed): both
# must take exactly the same texts.
_BACKTRACKING_DECIMAL = rb"(?:0|[1-9][0-9]{0,6})(?:\.[0-9]+)?"
_BACKTRACKING_TIMES = re.compile(
    rb"[ \n]*" + _BACKTRACKING_DECIMAL + rb"(?:[ \n]*,[ \n]*" + _BACKTRACKING_DECIMAL + rb")*[ \n]*"
)


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="0123456789., \n-e", max_size=40))
def test_plain_times_take_what_the_backtracking_pattern_takes(text: str) -> None:
    expected = _BACKTRACKING_TIMES.fullmatch(text.encode()) is not None
    assert (plain_times(text.encode()) is not None) is expected


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "0.0, 0.5,\n  1.25",
        "9999999.999",
        " 1 ,2 ",
        "1,\n2\n",
        "10000000",
        "00",
        "1.",
        "1..2",
        ",1",
        "1 2",
    ],
)
def test_plain_times_take_what_the_backtracking_pattern_takes_at_the_edges(text: str) -> None:
    expected = _BACKTRACKING_TIMES.fullmatch(text.encode()) is not None
    assert (plain_times(text.encode()) is not None) is expected


@pytest.mark.parametrize("text", ["-1", "01", ".5", "5.", "1e3", "10000000", "1,,2", "1, ", "", "1 2", "0x1"])
def test_times_the_model_would_refuse_or_yaml_reads_otherwise_are_not_left_as_text(text: str) -> None:
    assert plain_times(text.encode()) is None


@st.composite
def request_data(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        data["method"] = draw(st.sampled_from(["POST", "get", "*", "", "PO ST", 1, None]))
    if draw(st.integers(0, 9)):
        data["uri"] = draw(st.sampled_from([URI, "*", "http://[::1", "http://h:99999/", "/v1", "", 5]))
    if draw(st.booleans()):
        data["headers"] = draw(_HEADERS)
    if draw(st.booleans()):
        data["parsed_body"] = draw(JSON_VALUES | _NOT_JSON)
    if draw(st.booleans()):
        data["json_format"] = draw(st.sampled_from(["compact", "indent2+nl", "nope", 1, None]))
    if draw(st.booleans()):
        data["body"] = draw(st.sampled_from(["text", b"\x00", None, {"string": "x"}, 1, ""]))
    if not draw(st.integers(0, 9)):
        data["extra"] = 1
    return data


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_data())
def test_a_request_in_the_plain_shape_gives_the_line_its_model_gives(data: dict[str, Any]) -> None:
    line = plain_request_line(data)
    if line is None:
        return
    request = RecordedRequest.model_validate(data)  # never refused: its model is built later
    assert line == (request.method, request.uri, request.content)
    assert request.parsed_body is data.get("parsed_body") and request.model_fields_set <= data.keys()


@pytest.mark.parametrize(
    "parsed_body", [_DEEP, {1: "a"}, {"a": [b"x"]}], ids=["too-deep", "number-key", "bytes"]
)
def test_a_parsed_body_the_model_refuses_or_makes_text_keys_of_is_left_to_it(parsed_body: Any) -> None:
    item = {"response": {"status": {"code": 200}, "parsed_body": parsed_body}}
    assert compile_plain(item, method="GET", uri=URI, path=PATH, index=0) is None
    assert plain_request_line({"method": "POST", "uri": URI, "parsed_body": parsed_body}) is None


_LENGTH_WORDS = st.sampled_from(
    ["1", "7", "106", "1000000", "0", "00", "010", "-1", "1.5", "1e3", "0x1", "", " "]
)
_LENGTH_SEPARATORS = st.sampled_from([", ", ",\n        ", ",", " , ", ",\n  ", ", \n        ", ",,", " "])


@settings(max_examples=1500, deadline=None)
@given(st.lists(_LENGTH_WORDS, min_size=1, max_size=6), st.lists(_LENGTH_SEPARATORS, min_size=1))
def test_plain_lengths_are_what_yaml_reads_and_cut_a_body_as_the_lengths_read_as_numbers(
    words: list[str], separators: list[str]
) -> None:
    text = words[0] + "".join(f"{separators[n % len(separators)]}{word}" for n, word in enumerate(words[1:]))
    lengths = plain_lengths(text.encode())
    if lengths is None:
        return
    # Only whole numbers above zero, as YAML reads them (not `010`, octal to YAML).
    listed = load_yaml(f"chunks: [{text}]\n".encode())["chunks"]
    assert lengths == listed and lengths.values() == listed and len(lengths) == len(listed)
    assert all(type(value) is int and value > 0 for value in listed)
    content = bytes(range(256)) * (sum(listed) // 256 + 1)
    assert lengths.cut(content[: sum(listed)]) == tuple(
        content[sum(listed[:n]) : sum(listed[: n + 1])] for n in range(len(listed))
    )
    assert lengths.cut(content[: sum(listed) - 1]) is None
    assert lengths.cut(content[: sum(listed) + 1]) is None


@pytest.mark.parametrize(
    "text", ["0", "010", "1, 0", "1,2", "1 ,2", "1, , 2", "1, 2, ", ", 1", "1 2", "1,\n  2", "-1", "1.0", ""]
)
def test_lengths_not_written_as_the_writer_writes_them_are_read_as_numbers(text: str) -> None:
    assert plain_lengths(text.encode()) is None


def test_lengths_kept_as_text_that_do_not_add_up_are_refused_as_a_list_of_them_is() -> None:
    lengths = plain_lengths(b"3, 4,\n        5")
    assert isinstance(lengths, TextLengths)
    parts: dict[str, Any] = {
        "status": 200,
        "reason": "OK",
        "headers": {},
        "offsets_ms": None,
        "error": None,
        "elapsed_ms": None,
        "method": "GET",
        "uri": URI,
        "path": PATH,
        "index": 3,
    }
    compiled = compile_parts(content=b"abcdefghijkl", lengths=lengths, **parts)
    assert compiled.playback is not None and compiled.playback.chunks == (b"abc", b"defg", b"hijkl")
    for content in (b"abcdefghijk", b"abcdefghijklm"):
        with pytest.raises(CassetteFormatError) as cut:
            compile_parts(content=content, lengths=plain_lengths(b"3, 4,\n        5"), **parts)
        with pytest.raises(CassetteFormatError) as listed:
            compile_parts(content=content, lengths=[3, 4, 5], **parts)
        assert str(cut.value) == str(listed.value) and "add up to 12 bytes" in str(cut.value)
    huge = plain_lengths(b"9" * 30)  # more than any body: refused as a list of it is
    with pytest.raises(CassetteFormatError, match="add up to 9{30} bytes"):
        compile_parts(content=b"abc", lengths=huge, **parts)
