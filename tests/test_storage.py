"""
Cassette files: reading every supported layout, writing readable and atomic files, and errors that
say which file, which interaction and which field is wrong.
"""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from llmcassette import _yaml
from llmcassette._bodies import store_body
from llmcassette._exceptions import CassetteError, CassetteFormatError, CassetteNotFound
from llmcassette._models import (
    CassetteDocument,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    ResponseBody,
    Status,
    StreamEnd,
    StreamError,
    StreamRecord,
)
from llmcassette._storage import check_complete, dumps_cassette, load_cassette, parse_cassette, save_cassette
from llmcassette._yaml import load_yaml

SSE = 'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n'

# The layout vcrpy and pytest-recording write: bare request body, python/unicode tags from old
# recordings, keys in alphabetical order, `version` last.
VCRPY_CASSETTE = """\
interactions:
- request:
    body: '{"messages": [{"role": "user", "content": "hi"}], "model": "gpt-4o-mini"}'
    headers:
      accept:
      - application/json
      content-type:
      - application/json
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body:
      string: !!python/unicode '{"id": "chatcmpl-1", "choices": []}'
    headers:
      Content-Type:
      - application/json
      openai-processing-ms:
      - '212'
    status:
      code: 200
      message: OK
version: 1
"""

# pydantic-ai's serializer: JSON bodies as structured data, no json_format (json.dumps defaults).
PYDANTIC_AI_CASSETTE = """\
interactions:
- request:
    headers:
      content-type:
      - application/json
    method: POST
    parsed_body:
      messages:
      - content: hi
        role: user
      model: gpt-4o
    uri: https://api.openai.com/v1/chat/completions
  response:
    headers:
      content-type:
      - application/json
    parsed_body:
      id: chatcmpl-2
      usage:
        total_tokens: 12
    status:
      code: 200
      message: OK
version: 1
"""


def make_interaction(
    body: bytes, *, content_type: str = "text/event-stream", stream: StreamRecord | None = None
) -> Interaction:
    stored = store_body(body, content_type=content_type)
    fields: dict[str, Any] = {
        "status": Status(code=200, message="OK"),
        "headers": {"content-type": [content_type]},
        "elapsed_ms": 41.5,
        "stream": stream,
    }
    if stored.is_parsed:
        fields["parsed_body"] = stored.parsed
        if stored.json_format:
            fields["json_format"] = stored.json_format
    else:
        fields["body"] = ResponseBody(
            string=stored.string if stored.string is not None else "", line_endings=stored.line_endings
        )
    return Interaction(
        request=RecordedRequest(
            method="POST",
            uri="https://api.anthropic.com/v1/messages",
            parsed_body={"model": "claude", "stream": True},
        ),
        response=RecordedResponse.model_validate(fields),
    )


def contents(document: CassetteDocument) -> list[tuple[bytes, bytes]]:
    return [(i.request.content, i.response.content) for i in document.interactions]


# --- reading other tools' layouts ----------------------------------------------------------------


def test_vcrpy_cassette_loads(tmp_path: Path) -> None:
    path = tmp_path / "vcr.yaml"
    path.write_text(VCRPY_CASSETTE)
    document = load_cassette(path)
    (item,) = document.interactions
    assert (
        item.request.content == b'{"messages": [{"role": "user", "content": "hi"}], "model": "gpt-4o-mini"}'
    )
    assert item.response.content == b'{"id": "chatcmpl-1", "choices": []}'
    assert item.response.headers["openai-processing-ms"] == ["212"]
    assert document.llmcassette_schema is None


def test_pydantic_ai_cassette_loads_with_json_dumps_bytes(tmp_path: Path) -> None:
    path = tmp_path / "pai.yaml"
    path.write_text(PYDANTIC_AI_CASSETTE)
    (item,) = load_cassette(path).interactions
    assert item.request.content == b'{"messages": [{"content": "hi", "role": "user"}], "model": "gpt-4o"}'
    assert item.response.content == b'{"id": "chatcmpl-2", "usage": {"total_tokens": 12}}'


@pytest.mark.parametrize("text", [VCRPY_CASSETTE, PYDANTIC_AI_CASSETTE])
def test_foreign_cassettes_keep_their_bytes_when_saved_again(tmp_path: Path, text: str) -> None:
    original = parse_cassette(text.encode(), path=tmp_path / "c.yaml")
    save_cassette(tmp_path / "c.yaml", original)
    again = load_cassette(tmp_path / "c.yaml")
    assert contents(again) == contents(original)
    assert again.llmcassette_schema == 1


def test_json_cassette_loads(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"interactions": [load_yaml(VCRPY_CASSETTE)["interactions"][0]]}))
    expected = parse_cassette(VCRPY_CASSETTE.encode(), path=Path("c.yaml"))
    assert contents(load_cassette(path)) == contents(expected)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b"", id="empty-file"),
        pytest.param(b"interactions:\n", id="null-interactions"),
        pytest.param(b"interactions: []\nversion: 1\n", id="empty-list"),
    ],
)
def test_empty_cassettes_have_no_interactions(text: bytes) -> None:
    assert parse_cassette(text, path=Path("c.yaml")).interactions == []


# --- writing -------------------------------------------------------------------------------------


def test_saved_cassette_reads_well(tmp_path: Path) -> None:
    stream = StreamRecord(chunks=[20, 31], offsets_ms=[150.0, 180.5])
    path = tmp_path / "nested" / "dir" / "c.yaml"
    save_cassette(path, CassetteDocument(interactions=[make_interaction(SSE.encode(), stream=stream)]))
    text = path.read_text()
    assert text.startswith("version: 1\nllmcassette_schema: 1\ninteractions:\n")
    # The stream ends with a blank line, hence the keep indicator: `|+`.
    assert '      string: |+\n        data: {"choices":' in text
    assert "chunks: [20, 31]" in text
    assert "offsets_ms: [150.0, 180.5]" in text
    assert "end:" not in text  # a complete stream is the default, not written
    # A JSON body reads as the JSON it is, its lines inside the key's value.
    assert 'parsed_body: {\n        "model": "claude",\n        "stream": true\n      }\n' in text
    assert list(tmp_path.rglob(".*.tmp")) == []


def test_cut_stream_is_written_with_its_error(tmp_path: Path) -> None:
    stream = StreamRecord(
        chunks=[20],
        offsets_ms=[5.0],
        end=StreamEnd.ERROR,
        error=StreamError(type="ReadError", message="connection reset"),
    )
    path = tmp_path / "c.yaml"
    save_cassette(path, CassetteDocument(interactions=[make_interaction(SSE[:20].encode(), stream=stream)]))
    data = load_yaml(path.read_text())
    assert data["interactions"][0]["response"]["stream"] == {
        "chunks": [20],
        "offsets_ms": [5.0],
        "end": "error",
        "error": {"type": "ReadError", "message": "connection reset"},
    }
    loaded = load_cassette(path).interactions[0].response.stream
    assert loaded is not None and loaded.end is StreamEnd.ERROR


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_connection_that_failed_before_any_answer_is_written_as_its_error_alone(
    tmp_path: Path, suffix: str
) -> None:
    error = StreamError(type="RemoteProtocolError", message="Server disconnected without sending a response.")
    request = RecordedRequest(method="POST", uri="https://api.openai.com/v1/chat/completions", body="{}")
    response = RecordedResponse(status=None, stream=StreamRecord(end=StreamEnd.ERROR, error=error))
    path = tmp_path / f"c{suffix}"
    save_cassette(path, CassetteDocument(interactions=[Interaction(request=request, response=response)]))
    data = load_yaml(path.read_text()) if suffix == ".yaml" else json.loads(path.read_text())
    assert data["interactions"][0]["response"] == {
        "stream": {"end": "error", "error": {"type": error.type, "message": error.message}}
    }
    (loaded,) = load_cassette(path).interactions
    assert loaded.response.status is None
    assert loaded.response.stream == response.stream


def test_unknown_keys_survive_a_save(tmp_path: Path) -> None:
    text = VCRPY_CASSETTE.replace("version: 1\n", "version: 1\nrecorded_with: hand\n").replace(
        "    method: POST\n", "    method: POST\n    note: kept\n"
    )
    path = tmp_path / "c.yaml"
    save_cassette(path, parse_cassette(text.encode(), path=path))
    data = load_yaml(path.read_text())
    assert data["recorded_with"] == "hand"
    assert data["interactions"][0]["request"]["note"] == "kept"


def test_json_cassette_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    document = CassetteDocument(
        interactions=[make_interaction(b'{"text": "h\xc3\xa9"}', content_type="application/json")]
    )
    save_cassette(path, document)
    text = path.read_text(encoding="utf-8")
    assert json.loads(text)["interactions"][0]["response"]["parsed_body"] == {"text": "hé"}
    assert "hé" in text  # written as is, not \u-escaped
    assert contents(load_cassette(path)) == contents(document)


def test_binary_body_in_a_json_cassette_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    document = CassetteDocument(
        interactions=[make_interaction(b"\x00\x01", content_type="application/octet-stream")]
    )
    with pytest.raises(CassetteError, match=r"^llmcassette: cannot write cassette .*c\.json.*\.yaml") as info:
        save_cassette(path, document)
    assert info.value.path == path
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(VCRPY_CASSETTE)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(CassetteError, match="disk full"):
        save_cassette(path, CassetteDocument(interactions=[make_interaction(SSE.encode())]))
    assert path.read_text() == VCRPY_CASSETTE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_save_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(VCRPY_CASSETTE)
    save_cassette(path, CassetteDocument())
    assert load_cassette(path).interactions == []


def test_dumps_is_stable() -> None:
    document = CassetteDocument(
        interactions=[make_interaction(SSE.encode(), stream=StreamRecord(chunks=[51]))]
    )
    text = dumps_cassette(document)
    assert dumps_cassette(parse_cassette(text.encode(), path=Path("c.yaml"))) == text


# --- errors --------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(
        CassetteNotFound, match=r"^llmcassette: cassette file '.*absent\.yaml' does not exist\."
    ):
        load_cassette(path)


@pytest.mark.parametrize(
    ("text", "interaction", "field", "fragment"),
    [
        pytest.param(
            "interactions:\n- request: {method: GET}\n  response: {status: {code: 200}}\n",
            0,
            "request.uri",
            "interaction 0, field `request.uri`: Field required",
            id="missing-uri",
        ),
        pytest.param(
            "interactions:\n"
            "- request: {method: GET, uri: 'http://h/'}\n  response: {status: {code: 200}}\n"
            "- request: {method: GET, uri: 'http://h/'}\n  response: {status: {code: teapot}}\n",
            1,
            "response.status.code",
            "interaction 1, field `response.status.code`",
            id="second-interaction",
        ),
        pytest.param(
            "interactions:\n- request: {method: GET, uri: 'http://h/', body: 42}\n"
            "  response: {status: {code: 200}}\n",
            0,
            "request.body",
            "field `request.body`: Input should be a valid string. Fix",
            id="union-field-is-one-problem",
        ),
        pytest.param(
            "interactions:\n- request: {method: GET, uri: 'http://h/'}\n"
            "  response: {status: {code: 200}, stream: {chunks: [1, x]}}\n",
            0,
            "response.stream.chunks.1",
            "field `response.stream.chunks.1`",
            id="chunk-index",
        ),
        pytest.param(
            "interactions:\n- request: {}\n  response: {}\n",
            0,
            "request.method",
            "(2 more problems after this one)",
            id="problems-counted",
        ),
        pytest.param(
            "interactions:\n"
            "- request: {method: GET, uri: 'http://h/'}\n  response: {status: {code: 200}}\n"
            "- request: {method: GET, uri: 'http://[::1/v1'}\n  response: {status: {code: 200}}\n",
            1,
            "request.uri",
            "interaction 1, field `request.uri`: is not a URL: Invalid IPv6 URL. Fix",
            id="unparsable-url",
        ),
        pytest.param(
            '{"interactions": [{"request": {"method": "GET", "uri": "http://h:123456/"},'
            ' "response": {"status": {"code": 200}}}]}',
            0,
            "request.uri",
            "interaction 0, field `request.uri`: is not a URL: Port out of range 0-65535. Fix",
            id="url-port-out-of-range",
        ),
        pytest.param(
            "interactions:\n- request: {method: GET, uri: ''}\n  response: {status: {code: 200}}\n",
            0,
            "request.uri",
            "interaction 0, field `request.uri`: is not a URL: it is empty; a recorded URL is absolute",
            id="empty-url",
        ),
        pytest.param(
            "interactions:\n- request: {method: GET, uri: 'http://h/'}\n  response:\n"
            '    status: {code: 200}\n    headers: {x-a: ["one\\r\\nx-b: two"]}\n',
            0,
            "response.headers.x-a",
            "field `response.headers.x-a`: a header value holds '\\r', a line break that ends the "
            "header (only a break followed by a space or tab, a folded line, continues it)",
            id="header-value-line-break",
        ),
        pytest.param(
            "interactions:\n- request:\n    method: GET\n    uri: 'http://h/'\n    headers: {'x:a': [b]}\n"
            "  response: {status: {code: 200}}\n",
            0,
            "request.headers",
            "the header name 'x:a' is empty or holds a colon or a line break, which end a name on the wire",
            id="header-name-colon",
        ),
        pytest.param("interactions: nope\n", None, "interactions", "field `interactions`", id="not-a-list"),
        pytest.param(
            "version: 1\n", None, "interactions", "has no `interactions` list", id="no-interactions"
        ),
        pytest.param("- a\n- b\n", None, None, "its top level is a list", id="top-level-list"),
    ],
)
def test_invalid_cassettes_name_the_interaction_and_field(
    text: str, interaction: int | None, field: str | None, fragment: str
) -> None:
    with pytest.raises(CassetteFormatError) as info:
        parse_cassette(text.encode(), path=Path("cassettes/test_chat.yaml"))
    error = info.value
    message = str(error)
    assert message.startswith("llmcassette: cassette 'cassettes/test_chat.yaml' ")
    assert fragment in message
    assert message.endswith("Fix the file by hand, or delete it and record the cassette again.")
    assert (error.interaction, error.field) == (interaction, field)
    assert error.path == Path("cassettes/test_chat.yaml")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("interactions:\n- request: [\n", "at line 3, column 1", id="unclosed-flow"),
        pytest.param("interactions:\n  a: b: c\n", "at line 2, column 7", id="mapping-in-scalar"),
        pytest.param("interactions:\n\t- x\n", "at line 2, column 1", id="tab-indent"),
    ],
)
def test_yaml_syntax_errors_give_line_and_column(text: str, where: str) -> None:
    with pytest.raises(CassetteFormatError, match=rf"is not valid YAML {where}: "):
        parse_cassette(text.encode(), path=Path("c.yaml"))


_GOOD = "- request: {method: GET, uri: 'http://h/'}\n  response: {status: {code: 200}}\n"


@pytest.mark.parametrize(
    ("item", "field"),
    [
        pytest.param(
            "  response:\n    status: {code: 200}\n    body:\n      string: !!binary |\n"
            "        aGVsbG8g*d29y!bGQ=\n",
            "response.body.string",
            id="response-body",
        ),
        pytest.param(
            "  response:\n    status: {code: 200}\n    body: {string: !!binary 'aGVsbG8gd29y bGQ=~'}\n",
            "response.body.string",
            id="response-body-flow",
        ),
        pytest.param(
            "    body: !!binary 'aGVsbG8g*d29ybGQ='\n  response: {status: {code: 200}}\n",
            "request.body",
            id="request-body",
        ),
        pytest.param(
            "    body: {string: !!binary 'aGVsbG8g*d29ybGQ='}\n  response: {status: {code: 200}}\n",
            "request.body",
            id="request-body-string",
        ),
        pytest.param(
            "  response:\n    status: {code: 200}\n    headers: {x-amz-id: [!!binary 'YWJj*ZGVm']}\n",
            "response.headers.x-amz-id",
            id="header-value",
        ),
        pytest.param(
            "  response:\n    status: {code: 200}\n    eventstream:\n    - binary: !!binary 'YWJj*ZGVm'\n",
            "response.eventstream.0.binary",
            id="eventstream-frame",
        ),
    ],
)
@pytest.mark.parametrize("fast", [True, False], ids=["fast-loader", "standard-loader"])
def test_binary_text_outside_base64_is_refused_naming_interaction_and_field(
    item: str, field: str, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PyYAML's decoder skips whatever is not base64: `aGVsbG8g*d29y!bGQ=` loaded as b"hello world"
    # with bits of it lost had the characters stood elsewhere, and no word said.
    if not fast:
        monkeypatch.setattr(_yaml, "_fast_load", _raise_unsupported)
    text = "interactions:\n" + _GOOD + "- request:\n    method: POST\n    uri: 'http://h/'\n" + item
    with pytest.raises(CassetteFormatError) as info:
        parse_cassette(text.encode(), path=Path("c.yaml"))
    message = str(info.value)
    assert "which base64 has not" in message, message
    assert message.startswith(
        f"llmcassette: cassette 'c.yaml' is not valid: interaction 1, field `{field}`: "
        "its `!!binary` text holds "
    )
    assert "write the bytes' base64 again, or the value as text" in message
    assert (info.value.interaction, info.value.field) == (1, field)


def test_binary_text_with_wrong_padding_is_refused_naming_interaction_and_field() -> None:
    text = (
        "interactions:\n- request: {method: GET, uri: 'http://h/'}\n  response:\n    status: {code: 200}\n"
        "    body:\n      string: !!binary |\n        aGVsbG8gd29ybGQ\n"
    )
    with pytest.raises(CassetteFormatError) as info:
        parse_cassette(text.encode(), path=Path("c.yaml"))
    assert "field `response.body.string`: its `!!binary` text is not base64 (Incorrect padding)" in str(
        info.value
    )


def test_binary_text_across_lines_still_loads() -> None:
    text = (
        "interactions:\n- request: {method: GET, uri: 'http://h/'}\n  response:\n    status: {code: 200}\n"
        "    body:\n      string: !!binary |\n        aGVsbG8g\n        d29ybGQ=\n"
    )
    (item,) = parse_cassette(text.encode(), path=Path("c.yaml")).interactions
    assert item.response.content == b"hello world"


_LONG = "9" * 5000


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param(
            "interactions:\n- request: {method: GET, uri: 'http://h/'}\n"
            f"  response: {{status: {{code: {_LONG}}}}}\n",
            "at line 3, column 29",
            id="status-flow",
        ),
        pytest.param(
            "interactions:\n- request:\n    method: GET\n    uri: http://h/\n  response:\n"
            f"    status:\n      code: {_LONG}\n",
            "at line 7, column 13",
            id="status-block",
        ),
        pytest.param(
            "interactions:\n- request:\n    method: GET\n    uri: http://h/\n  response:\n"
            f"    status: {{code: 200}}\n    body: {{string: ab}}\n    stream:\n      chunks: [{_LONG}]\n",
            "at line 9, column 16",
            id="chunks",
        ),
        pytest.param(
            "interactions:\n- request:\n    method: POST\n    uri: http://h/\n"
            f"    parsed_body: {{n: 0x{_LONG}}}\n  response:\n    status: {{code: 200}}\n",
            "at line 5, column 22",
            id="hex-in-parsed-body",
        ),
    ],
)
@pytest.mark.parametrize("fast", [True, False], ids=["fast-loader", "standard-loader"])
def test_an_integer_longer_than_python_reads_is_a_yaml_error_at_its_place(
    text: str, where: str, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python refuses to read an integer of more than 4300 digits (ValueError): lint, inspect,
    # diff, import and replay all stopped with that traceback.
    if not fast:
        monkeypatch.setattr(_yaml, "_fast_load", _raise_unsupported)
    with pytest.raises(CassetteFormatError) as info:
        parse_cassette(text.encode(), path=Path("c.yaml"))
    message = str(info.value)
    assert message.startswith(f"llmcassette: cassette 'c.yaml' is not valid YAML {where}"), message
    assert (
        "characters, longer than the 4300 digits Python reads; quote it if it is text, or shorten it"
        in message
    )


def _raise_unsupported(text: object) -> object:
    raise _yaml._Unsupported


def test_undefined_alias_is_a_format_error() -> None:
    with pytest.raises(CassetteFormatError, match="is not valid YAML"):
        parse_cassette(b"interactions:\n- *missing\n", path=Path("c.yaml"))


def test_json_syntax_error() -> None:
    with pytest.raises(CassetteFormatError, match=r"^llmcassette: cassette 'c\.json' is not valid JSON: "):
        parse_cassette(b'{"interactions": [', path=Path("c.json"))


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_file_that_is_not_utf8_names_the_byte_and_its_line(suffix: str) -> None:
    # libyaml said "unacceptable character #x007d: invalid trailing UTF-8 octet" (the character
    # after the culprit) with no line; json a byte offset.
    if suffix == ".yaml":
        text = "interactions:\n- request: {method: GET, uri: 'http://h/'}\n"
        text += "  response: {status: {code: 200, message: caf\xe9}}\n"
    else:
        text = '{"interactions": [{"request": {"method": "GET", "uri": "http://h/"},\n'
        text += ' "response": {"status": {"code": 200, "message": "caf\xe9"}}}]}'
    with pytest.raises(CassetteFormatError) as info:
        parse_cassette(text.encode("latin-1"), path=Path("c" + suffix))
    line, column = (3, 46) if suffix == ".yaml" else (2, 54)
    assert str(info.value) == (
        f"llmcassette: cassette 'c{suffix}' is not UTF-8 text: the byte 0xe9 at line {line}, column {column} "
        "is not UTF-8 (was the file saved as Latin-1 or Windows-1252?). Save it as UTF-8."
    )


def test_json_nested_deeper_than_python_reads_is_a_format_error() -> None:
    # json.loads raises RecursionError, which lint, inspect, diff, import and replay let through.
    text = '{"interactions": [{"request": {"method": "POST", "uri": "http://h/", "parsed_body": '
    text += "[" * 100_000 + "]" * 100_000 + '}, "response": {"status": {"code": 200}}}]}'
    with pytest.raises(CassetteFormatError) as info:
        parse_cassette(text.encode(), path=Path("c.json"))
    assert str(info.value) == (
        "llmcassette: cassette 'c.json' is not valid JSON: it is nested deeper than Python's JSON reader "
        "goes. Fix the file by hand, or delete it and record the cassette again."
    )


# --- property ------------------------------------------------------------------------------------


@st.composite
def documents(draw: st.DrawFn) -> CassetteDocument:
    items = []
    for _ in range(draw(st.integers(0, 3))):
        body = draw(
            st.binary(max_size=60)
            | st.text(max_size=60).map(str.encode)
            | st.sampled_from([SSE.encode(), b'{"a": [1, 2]}', b"\r\n\r\n", "🎉\n".encode()])
        )
        content_type = draw(
            st.sampled_from(["text/event-stream", "application/json", "application/octet-stream"])
        )
        chunks = draw(st.none() | st.lists(st.integers(0, 50), min_size=1, max_size=4))
        end = draw(st.sampled_from(list(StreamEnd)))
        stream = (
            None if chunks is None else StreamRecord(chunks=chunks, offsets_ms=[1.5] * len(chunks), end=end)
        )
        interaction = make_interaction(body, content_type=content_type, stream=stream)
        if draw(st.integers(0, 5)) == 0:  # an upstream that hung up before answering
            error = StreamError(type="RemoteProtocolError", message=draw(st.text(max_size=20)))
            hung_up = RecordedResponse(status=None, stream=StreamRecord(end=StreamEnd.ERROR, error=error))
            interaction = interaction.model_copy(update={"response": hung_up})
        items.append(interaction)
    return CassetteDocument(interactions=items)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=documents())
def test_any_document_survives_a_file(tmp_path: Path, document: CassetteDocument) -> None:
    path = tmp_path / "c.yaml"
    save_cassette(path, document)
    loaded = load_cassette(path)
    assert contents(loaded) == contents(document)
    assert [i.response.stream for i in loaded.interactions] == [
        i.response.stream for i in document.interactions
    ]
    assert dumps_cassette(loaded) == path.read_text()


@pytest.mark.parametrize(
    ("text", "status", "content"),
    [
        pytest.param(
            '{"status": 200, "headers": {"content-type": "text/event-stream"}, "body": "data: 1\\n\\n"}',
            200,
            b"data: 1\n\n",
            id="text-body",
        ),
        pytest.param(
            '{"status": {"code": 429, "message": "Too Many"}, "body": {"error": {"message": "slow"}}}',
            429,
            b'{"error": {"message": "slow"}}',
            id="json-body",
        ),
        pytest.param('{"status_code": 204, "headers": {}}', 204, b"", id="no-body"),
    ],
)
def test_a_response_only_file_loads_as_one_interaction_for_any_request(
    tmp_path: Path, text: str, status: int, content: bytes
) -> None:
    # Some fixtures hold a response and no request; it answers whatever is asked.
    path = tmp_path / "response.json"
    path.write_text(text)
    document = load_cassette(path)
    (interaction,) = document.interactions
    assert (interaction.request.method, interaction.request.uri) == ("*", "*")
    assert interaction.response.status.code == status
    assert interaction.response.content == content


def _vcrpy_replay_bodies(path: Path) -> list[tuple[bytes | None, bytes]]:
    # What plain vcrpy reads back from the file: the request body and the response body.
    from vcr.serialize import deserialize
    from vcr.serializers import yamlserializer

    requests, responses = deserialize(path.read_text(encoding="utf-8"), yamlserializer)
    return [
        (request.body, response["body"]["string"])
        for request, response in zip(requests, responses, strict=True)
    ]


def test_a_vcrpy_compatible_file_holds_plain_bodies_that_vcrpy_replays(tmp_path: Path) -> None:
    json_request = b'{"model":"m","messages":[{"role":"user","content":"h\\u00e9"}]}'
    json_response = b'{"id": "x", "choices": [{"text": "caf\\u00e9"}]}'
    crlf_sse = b'data: {"a": 1}\r\n\r\ndata: [DONE]\r\n\r\n'
    binary = b"\x1f\x8b\x08\x00binary"
    bodies = [(json_request, json_response), (b"", crlf_sse), (b"plain", binary)]
    interactions = []
    for request_body, response_body in bodies:
        stored_request = store_body(request_body, content_type="application/json", crlf_as_lf=False)
        stored_response = store_body(response_body, content_type="application/json")
        request: dict[str, Any] = {"method": "POST", "uri": "https://api.example.com/v1", "headers": {}}
        response: dict[str, Any] = {"status": {"code": 200, "message": "OK"}, "headers": {}}
        if stored_request.is_parsed:
            request.update(parsed_body=stored_request.parsed, json_format=stored_request.json_format)
        else:
            request["body"] = stored_request.string
        if stored_response.is_parsed:
            response.update(parsed_body=stored_response.parsed, json_format=stored_response.json_format)
        else:
            response["body"] = {"string": stored_response.string}
            response["body"]["line_endings"] = stored_response.line_endings
        response["stream"] = {"chunks": [3, len(response_body) - 3], "offsets_ms": [1.0, 2.5]}
        interactions.append(Interaction.model_validate({"request": request, "response": response}))
    # The fixtures do use the readable forms that plain vcrpy cannot read.
    assert "parsed_body" in interactions[0].request.model_fields_set
    assert interactions[1].response.stored_body().line_endings == "crlf"
    document = CassetteDocument(interactions=interactions)
    path = tmp_path / "vcr.yaml"
    save_cassette(path, document, vcrpy_compatible=True)
    text = path.read_text()
    assert "parsed_body" not in text and "json_format" not in text and "line_endings" not in text
    assert _vcrpy_replay_bodies(path) == bodies
    # llmcassette reads the same bytes back, and the chunk boundaries with them.
    loaded = load_cassette(path)
    assert [(i.request.content, i.response.content) for i in loaded.interactions] == bodies
    assert [i.response.stream for i in loaded.interactions] == [i.response.stream for i in interactions]
    # Without the option the readable forms stay (and vcrpy could not build the first request).
    save_cassette(path, document)
    assert "parsed_body" in path.read_text()
    with pytest.raises(TypeError):
        _vcrpy_replay_bodies(path)


def test_the_completeness_check_makes_no_copy_of_the_file() -> None:
    # A replay of a 200 MB cassette holds the played bodies, not the file twice over: the check
    # that the file is whole runs on its bytes as they are.
    raw = b"llmcassette_schema: 1\ninteractions:\n" + b"- x: 1\n" * (1 << 20) + b"...\n"
    tracemalloc.start()
    try:
        check_complete(raw, path=Path("big.yaml"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < len(raw) // 10
