"""
Values that parse as YAML but that llmcassette could not replay are refused when the cassette
loads, with an error naming the file, the interaction and the field, and `lint` reports the same:
nothing loads today only to fail (or be silently dropped) later.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

import llmcassette
from llmcassette import CassetteFormatError
from llmcassette._lazy import load_lazy
from llmcassette._lint import Rule, lint_paths
from llmcassette._storage import load_cassette
from llmcassette.cli import cli
from llmcassette.proxy import CassetteServer

URL = "http://127.0.0.1:9/v1/chat/completions"


def cassette(
    *, top: str = "version: 1\nllmcassette_schema: 1\n", response: str = "", status: str = "200"
) -> str:
    """Two interactions; the second's response carries ``response`` lines (indented 4)."""
    return (
        f"{top}interactions:\n"
        f"- request: {{method: POST, uri: '{URL}', body: first}}\n"
        "  response:\n    status: {code: 200, message: OK}\n    body: {string: one}\n"
        f"- request: {{method: POST, uri: '{URL}', body: second}}\n"
        f"  response:\n    status: {{code: {status}, message: OK}}\n"
        "    headers: {content-type: [text/event-stream]}\n"
        '    body: {string: "data: [DONE]\\n\\n"}\n'
        f"{response}"
        "...\n"
    )


CASES = [
    pytest.param(
        cassette(response="    parsed_body: {a: 1}\n    json_format: pretty\n"),
        1,
        "response.json_format",
        "'pretty' is not a JSON format llmcassette knows",
        id="unknown-json-format",
    ),
    pytest.param(
        cassette(response="    stream: {chunks: [14], offsets_ms: [.inf]}\n"),
        1,
        "response.stream.offsets_ms.0",
        "inf is not a time llmcassette can replay",
        id="infinite-offset",
    ),
    pytest.param(
        cassette(response="    stream: {chunks: [14], offsets_ms: [-5.0]}\n"),
        1,
        "response.stream.offsets_ms.0",
        "-5.0 is not a time",
        id="negative-offset",
    ),
    pytest.param(
        cassette(response="    stream: {chunks: [14], offsets_ms: [.nan]}\n"),
        1,
        "response.stream.offsets_ms.0",
        "nan is not a time",
        id="nan-offset",
    ),
    pytest.param(
        cassette(response="    elapsed_ms: 1e308\n"),
        1,
        "response.elapsed_ms",
        "from 0 to 86400000 (one day)",
        id="huge-elapsed",
    ),
    pytest.param(
        cassette(status="999"), 1, "response.status.code", "999 is not an HTTP status", id="status-999"
    ),
    pytest.param(
        cassette(status="9" * 400),
        1,
        "response.status.code",
        "a 400-digit number is not an HTTP status",
        id="status-400-digits",
    ),
    pytest.param(cassette(status="99"), 1, "response.status.code", "from 100 to 599", id="status-99"),
    pytest.param(
        cassette(top="version: 99\n"),
        None,
        "version",
        "99 is not a cassette version llmcassette reads; vcrpy's format is version 1",
        id="version-99",
    ),
    pytest.param(
        cassette(top="version: 1\nllmcassette_schema: 999\n"),
        None,
        "llmcassette_schema",
        "schema 999 was written by a newer llmcassette (this one reads schema 2 and older); "
        "upgrade llmcassette to use this cassette.",
        id="newer-schema",
    ),
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chat.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_base_cassette_is_valid(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        cassette(response="    elapsed_ms: 12.5\n    stream: {chunks: [6, 8], offsets_ms: [0, 86400000]}\n"),
    )
    assert len(load_cassette(path).interactions) == 2
    assert lint_paths([path]).findings == []


@pytest.mark.parametrize(("text", "interaction", "field", "fragment"), CASES)
def test_a_value_llmcassette_cannot_replay_is_refused_at_load(
    tmp_path: Path, text: str, interaction: int | None, field: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CassetteFormatError) as info:
        load_cassette(path)
    error = info.value
    assert str(error).startswith(f"llmcassette: cassette {str(path)!r} is not valid: ")
    assert fragment in str(error)
    assert (error.path, error.interaction, error.field) == (path, interaction, field)
    if field == "llmcassette_schema":
        # The file is not damaged: the advice is to upgrade, not to repair or re-record it.
        assert "record" not in str(error)


@pytest.mark.parametrize(("text", "interaction", "field", "fragment"), CASES)
def test_the_replay_loader_refuses_it_before_the_response_is_played(
    tmp_path: Path, text: str, interaction: int | None, field: str, fragment: str
) -> None:
    # Replay parses a response when it is first played: a bad top-level value is refused when the
    # file loads, a bad response value before any of its bytes reach the client.
    path = write(tmp_path, text)
    with pytest.raises(CassetteFormatError) as info:
        tape = load_lazy(path)
        tape.response(1)
    assert fragment in str(info.value)
    assert (info.value.path, info.value.interaction, info.value.field) == (path, interaction, field)


@pytest.mark.parametrize(("text", "interaction", "field", "fragment"), CASES)
def test_lint_reports_it(
    tmp_path: Path, text: str, interaction: int | None, field: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    (finding,) = lint_paths([path]).findings
    assert (finding.rule, finding.interaction, finding.field) == (Rule.SCHEMA, interaction, field)
    assert fragment.rstrip(".") in finding.message


@pytest.mark.parametrize("pace", ["instant", "recorded"])
def test_a_replay_raises_the_format_error_not_a_key_or_overflow_error(tmp_path: Path, pace: str) -> None:
    # Before: an unknown json_format raised a bare KeyError, an infinite offset an OverflowError.
    for text in (
        cassette(response="    parsed_body: {a: 1}\n    json_format: pretty\n"),
        cassette(response="    stream: {chunks: [14], offsets_ms: [.inf]}\n"),
    ):
        path = write(tmp_path, text)
        with (
            pytest.raises(CassetteFormatError, match=r"interaction 1, field `response\."),
            llmcassette.use_cassette(path, pace=pace),
        ):
            httpx.post(URL, content=b"second")


@pytest.mark.parametrize("status", ["999", "9" * 400])
def test_serve_refuses_an_unplayable_status_before_serving(tmp_path: Path, status: str) -> None:
    # Before: served, it raised a KeyError inside the server and dropped the connection.
    path = write(tmp_path, cassette(status=status))
    with pytest.raises(CassetteFormatError) as info:
        CassetteServer([path])
    assert (info.value.path, info.value.interaction, info.value.field) == (path, 1, "response.status.code")
    result = CliRunner().invoke(cli, ["serve", str(path), "--port", "0"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"llmcassette: cassette {str(path)!r} is not valid: interaction 1")
    assert "Traceback" not in result.output


DUPLICATE = (
    "interactions:\n"
    f"- request: {{method: POST, uri: '{URL}', body: first}}\n"
    "  response:\n    status: {code: 200}\n    status: {code: 500}\n"
)


def test_a_key_written_twice_is_refused_with_its_name_and_line(tmp_path: Path) -> None:
    # YAML keeps the last of two equal keys: the first value was silently lost.
    path = write(tmp_path, DUPLICATE)
    expected = "is not valid YAML at line 5, column 5: found the key 'status' twice in one mapping."
    with pytest.raises(CassetteFormatError, match=re.escape(expected)):
        load_cassette(path)
    with pytest.raises(CassetteFormatError, match=re.escape(expected)):
        load_lazy(path).response(0)
    (finding,) = lint_paths([path]).findings
    assert finding.rule is Rule.SCHEMA
    assert "found the key 'status' twice" in finding.message


def test_a_key_written_twice_in_a_json_cassette_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    path.write_text('{"version": 1, "interactions": [], "version": 1}', encoding="utf-8")
    with pytest.raises(CassetteFormatError, match="an object has the key 'version' twice"):
        load_cassette(path)


def test_a_second_interactions_list_is_refused_by_the_replay_loader_too(tmp_path: Path) -> None:
    # The replay loader cuts the file at its first list; the second one must not be dropped quietly.
    first = cassette()
    second = first.removesuffix("...\n").replace("version: 1\nllmcassette_schema: 1\n", "") + "...\n"
    path = write(tmp_path, first.removesuffix("...\n") + second)
    for load in (load_cassette, load_lazy):
        with pytest.raises(CassetteFormatError, match="found the key 'interactions' twice"):
            load(path)


# --- structured JSON (`parsed_body`, a WebSocket message's `json`) ---------------------------------

JSON_CASES = [
    pytest.param("{a: !!binary AAEC}", "it holds `!!binary` bytes at `a`", id="binary"),
    pytest.param("{a: [1, !!set {x, y}]}", "it holds a `!!set` at `a[1]`", id="set"),
    pytest.param("!!omap [{a: 1}]", "it holds a pair of `!!omap` or `!!pairs` at `[0]`", id="omap"),
    pytest.param("!!pairs [{a: 1}]", "a pair of `!!omap` or `!!pairs` at `[0]`", id="pairs"),
    pytest.param("{a: {1: x, '1': y}}", "two keys at `a` are the same JSON key '1'", id="key-clash"),
    pytest.param("{null: x, 'null': y}", "two keys at the top are the same JSON key 'null'", id="null-clash"),
    pytest.param("[" * 101 + "]" * 101, "nested deeper than 100 levels", id="too-deep"),
]


@pytest.mark.parametrize(("value", "fragment"), JSON_CASES)
def test_a_parsed_body_json_cannot_hold_is_refused_at_load(tmp_path: Path, value: str, fragment: str) -> None:
    # Before: it loaded, and replay, inspect, lint and diff ended in a bare TypeError (bytes, set)
    # or sent JSON the file does not show (pairs as lists, two equal keys).
    path = write(tmp_path, cassette(response=f"    parsed_body: {value}\n"))
    for load in (load_cassette, lambda p: load_lazy(p).response(1)):
        with pytest.raises(CassetteFormatError) as info:
            load(path)
        assert fragment in str(info.value)
        assert "Structured JSON holds only mappings with text keys" in str(info.value)
        assert (info.value.interaction, info.value.field) == (1, "response.parsed_body")
    (finding,) = lint_paths([path]).findings
    assert (finding.rule, finding.interaction, finding.field) == (Rule.SCHEMA, 1, "response.parsed_body")


@pytest.mark.parametrize(("value", "fragment"), JSON_CASES)
def test_a_request_parsed_body_json_cannot_hold_is_refused_when_the_cassette_is_entered(
    tmp_path: Path, value: str, fragment: str
) -> None:
    text = cassette().replace("body: second}", f"parsed_body: {value}}}")
    path = write(tmp_path, text)
    with pytest.raises(CassetteFormatError) as info, llmcassette.use_cassette(path):
        pass
    assert fragment in str(info.value)
    assert (info.value.interaction, info.value.field) == (1, "request.parsed_body")


@pytest.mark.parametrize(("value", "fragment"), JSON_CASES)
def test_a_websocket_message_json_cannot_hold_is_refused(tmp_path: Path, value: str, fragment: str) -> None:
    path = write(tmp_path, websocket_cassette(f"{{from: server, offset_ms: 2.0, json: {value}}}"))
    with pytest.raises(CassetteFormatError) as info:
        load_cassette(path)
    assert fragment in str(info.value)
    assert (info.value.interaction, info.value.field) == (0, "websocket.messages.1.json")


@pytest.mark.parametrize("pace", ["instant", "recorded"])
def test_replay_raises_the_format_error_not_a_type_error(tmp_path: Path, pace: str) -> None:
    path = write(tmp_path, cassette(response="    parsed_body: {a: !!binary AAEC}\n"))
    with (
        pytest.raises(CassetteFormatError, match=r"interaction 1, field `response\.parsed_body`: it holds"),
        llmcassette.use_cassette(path, pace=pace),
    ):
        httpx.post(URL, content=b"second")


@pytest.mark.parametrize("command", ["inspect", "lint", "diff", "serve"])
@pytest.mark.parametrize("value", ["{a: !!binary AAEC}", "{a: !!set {x}}"])
def test_every_command_names_the_field_in_one_line(tmp_path: Path, command: str, value: str) -> None:
    path = write(tmp_path, cassette(response=f"    parsed_body: {value}\n"))
    args = {
        "inspect": ["inspect", str(path)],
        "lint": ["lint", str(path)],
        "diff": ["diff", str(path), str(path)],
        "serve": ["serve", str(path), "--port", "0"],
    }[command]
    if command == "serve":  # were the file served, the command would not return
        with pytest.raises(CassetteFormatError):
            CassetteServer([path])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == (2 if command == "diff" else 1), result.output  # diff: 1 is "changed"
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert "response.parsed_body" in result.output and "which JSON cannot hold" in result.output
    if command != "lint":  # lint reports it as a finding, on stdout
        assert result.stderr.startswith(f"llmcassette: cassette {str(path)!r} is not valid: interaction 1")


def test_keys_yaml_reads_as_numbers_null_or_booleans_are_the_json_text_replay_sends(tmp_path: Path) -> None:
    # JSON keys are text: `1:` in a hand-written body always replayed as "1"; the loaded value
    # says so too, so that what matches, inspect and re-saving see is the JSON that is sent.
    value = "{2: a, null: b, true: c, 1.5: [{3: d}]}"
    path = write(tmp_path, cassette(response=f"    parsed_body: {value}\n"))
    response = load_cassette(path).interactions[1].response
    assert response.parsed_body == {"2": "a", "null": "b", "true": "c", "1.5": [{"3": "d"}]}
    assert response.content == b'{"2": "a", "null": "b", "true": "c", "1.5": [{"3": "d"}]}'


def test_nan_and_infinity_load_and_replay_as_python_json_wrote_them(tmp_path: Path) -> None:
    path = write(tmp_path, cassette(response="    parsed_body: {a: .nan, b: [.inf, -.inf]}\n"))
    with llmcassette.use_cassette(path), httpx.Client() as client:
        client.post(URL, content=b"first")
        assert client.post(URL, content=b"second").content == b'{"a": NaN, "b": [Infinity, -Infinity]}'


def websocket_cassette(message: str) -> str:
    return (
        "version: 1\nllmcassette_schema: 2\ninteractions:\n"
        "- request: {method: GET, uri: 'wss://api.openai.com/v1/realtime?model=m', headers: {}}\n"
        "  response:\n    status: {code: 101, message: Switching Protocols}\n    headers: {}\n"
        "  websocket:\n    subprotocol: null\n    messages:\n"
        "    - {from: client, offset_ms: 1.0, json: {type: session.update}}\n"
        f"    - {message}\n"
        "    close: {code: 1000, reason: '', by: client, offset_ms: 9.0}\n"
        "...\n"
    )


# --- any value anywhere: a clear error or a working cassette, never another exception -----------

_ODD_VALUES = st.sampled_from(
    [
        b"\x00\x01",
        frozenset({"a", "b"}),
        float("nan"),
        float("inf"),
        {1: "x"},
        {None: "x"},
        {1.5: "x", "1.5": "y"},
        [1, [2, {"k": None}]],
        {"choices": {"j": []}},
        -1,
        10**30,
        1.5,
        "",
        None,
        True,
        [],
        {},
        "2024-01-02",
    ]
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        found += _paths(child, (*prefix, key))
    return found


class _AnyDumper(yaml.SafeDumper):
    """Writes what a hand-edit can write: `!!binary`, `!!set`, keys of any type."""


_AnyDumper.add_representer(frozenset, lambda dumper, data: dumper.represent_set(set(data)))


def _bases() -> list[Any]:
    from llmcassette._demo import CASSETTE

    return [
        yaml.safe_load(CASSETTE.read_text(encoding="utf-8")),
        yaml.safe_load(websocket_cassette("{from: server, offset_ms: 2.0, json: {type: session.created}}")),
    ]


_BASES = _bases()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_cassette_is_refused_clearly_or_works(tmp_path: Path, data: st.DataObject) -> None:
    base = copy.deepcopy(data.draw(st.sampled_from(_BASES)))
    path_in_file = data.draw(st.sampled_from(_paths(base)))
    parent = base
    for part in path_in_file[:-1]:
        parent = parent[part]
    parent[path_in_file[-1]] = copy.deepcopy(data.draw(_ODD_VALUES))
    path = tmp_path / "mutated.yaml"
    path.write_text(yaml.dump(base, Dumper=_AnyDumper, sort_keys=False, explicit_end=True), encoding="utf-8")
    try:
        document = load_cassette(path)
    except CassetteFormatError:
        document = None
    for args in (["inspect", str(path)], ["lint", str(path)], ["diff", str(path), str(path)]):
        result = CliRunner().invoke(cli, args)
        assert isinstance(result.exception, SystemExit | None), (args, result.exception)
        assert "Traceback" not in result.output
        if document is None and args[0] != "lint":
            assert result.stderr.startswith("llmcassette: "), result.output
    if document is None:
        return
    try:
        with llmcassette.use_cassette(path), httpx.Client() as client:
            for interaction in document.interactions:
                if interaction.websocket is None and interaction.request.uri != "*":
                    request = interaction.request
                    client.request(request.method, request.uri, content=request.content).read()
    except (llmcassette.LlmCassetteError, httpx.HTTPError, httpx.InvalidURL):
        pass  # a clear error, or the client's own refusal of what it was asked to send
