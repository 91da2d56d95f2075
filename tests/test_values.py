"""
Values that parse as YAML but that llmcassette could not replay are refused when the cassette
loads, with an error naming the file, the interaction and the field, and `lint` reports the same:
nothing loads today only to fail (or be silently dropped) later.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

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
