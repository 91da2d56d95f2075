"""The `llmcassette` command line: help, version, and errors as one `llmcassette:` line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from llmcassette import __version__
from llmcassette._demo import CASSETTE
from llmcassette.cli import _COMMANDS, _SUMMARIES, cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_one_line_error(result: Result, exit_code: int, starts: str) -> None:
    assert result.exit_code == exit_code, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"llmcassette: {starts}"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", sorted(_COMMANDS))
def test_every_command_has_help_with_an_example(name: str) -> None:
    result = run(name, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert f"llmcassette {name}" in result.stdout


def test_bare_command_shows_help() -> None:
    result = run()
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert "demo" in result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"llmcassette, version {__version__}\n"


@pytest.mark.parametrize(
    ("args", "starts"),
    [
        pytest.param(["demo", "--pace", "fast"], "invalid value for '--pace': pace 'fast'", id="bad-pace"),
        pytest.param(["demo", "--pace", "0"], "invalid value for '--pace': pace '0'", id="zero-pace"),
        # (the rest of this line is click's own words, which changed in click 8.4)
        pytest.param(["demo", "--cassete", "x"], "no such option", id="typo"),
        pytest.param(["demo", "--cassette", "missing.yaml"], "invalid value for '--cassette'", id="no-file"),
        pytest.param(["rewind"], "no such command 'rewind'", id="no-command"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], starts: str) -> None:
    result = run(*args)
    assert_one_line_error(result, 2, starts)
    assert result.stderr.rstrip().endswith("--help`.")


def _edited(tmp_path: Path, edit: Any) -> str:
    data = yaml.safe_load(CASSETTE.read_text())
    edit(data["interactions"])
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, explicit_end=True))
    return str(path)


def test_an_invalid_cassette_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("interactions: 3\n")
    result = run("demo", "--cassette", str(path))
    assert_one_line_error(result, 1, f"cassette {str(path)!r} is not valid")


def test_stale_chunk_boundaries_are_a_one_line_error(tmp_path: Path) -> None:
    def edit(interactions: list[Any]) -> None:
        body = interactions[0]["response"]["body"]
        body["string"] = body["string"].replace("Paris.", "Paris, France.")

    result = run("demo", "--cassette", _edited(tmp_path, edit))
    assert_one_line_error(result, 1, "cassette")
    assert "`response.stream.chunks`" in result.stderr


def test_a_client_error_is_a_one_line_error(tmp_path: Path) -> None:
    def edit(interactions: list[Any]) -> None:
        response = interactions[0]["response"]
        response["status"] = {"code": 429, "message": "Too Many Requests"}
        response["headers"]["content-type"] = ["application/json"]
        response["body"] = {"string": '{"error": {"message": "Rate limit reached, retry in 2s"}}'}
        del response["stream"]

    result = run("demo", "--cassette", _edited(tmp_path, edit))
    assert_one_line_error(
        result, 1, "the example client failed: server returned 429: Rate limit reached, retry in 2s"
    )


def test_a_replay_miss_names_the_request_first(tmp_path: Path) -> None:
    def edit(interactions: list[Any]) -> None:
        interactions[0]["request"]["parsed_body"]["messages"][0]["content"] = "Another question"

    result = run("demo", "--cassette", _edited(tmp_path, edit))
    assert result.exit_code == 1
    first, *rest = result.stderr.splitlines()
    assert first.startswith("llmcassette: no recorded interaction matches POST http://127.0.0.1:8000/v1/")
    # The lines below the first are the miss report: candidates and how to record the request.
    assert any("messages[0].content" in line for line in rest)


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr("llmcassette._demo.replay.run_demo", interrupted)
    result = run("demo", "--replay")
    assert result.exit_code == 130
    assert result.stderr.strip().endswith("llmcassette: interrupted.")


def test_main_exits_with_the_status(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmcassette.cli import main

    monkeypatch.setattr("sys.argv", ["llmcassette", "demo", "--pace", "nope"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2


def test_an_unreadable_file_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(*args: Any, **kwargs: Any) -> list[str]:
        raise PermissionError(13, "Permission denied", "chat.yaml")

    monkeypatch.setattr("llmcassette._demo.replay.run_demo", unreadable)
    result = run("demo", "--replay")
    assert_one_line_error(result, 1, "[Errno 13] Permission denied: 'chat.yaml'.")


def test_help_lists_each_command_by_the_first_line_of_its_own_help() -> None:
    # `--help` reads the lines from a table so as to import no command; the table must not drift.
    assert sorted(_SUMMARIES) == sorted(_COMMANDS)
    context = click.Context(cli)
    for name in _COMMANDS:
        command = cli.get_command(context, name)
        assert command is not None
        assert _SUMMARIES[name] == command.get_short_help_str(limit=1000), name


HANG_UP_MESSAGE = "Server disconnected without sending a response."
HUNG_UP = {
    "stream": {
        "end": "error",
        "error": {"type": "RemoteProtocolError", "message": HANG_UP_MESSAGE},
    }
}


def test_every_reader_takes_a_connection_that_failed_before_any_answer(tmp_path: Path) -> None:
    # The demo's second exchange, recorded again as an upstream that hung up before answering.
    data = yaml.safe_load(CASSETTE.read_text(encoding="utf-8"))
    data["interactions"][1]["response"] = HUNG_UP
    path = tmp_path / "hung-up.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, explicit_end=True), encoding="utf-8")

    text = run("inspect", str(path))
    assert text.exit_code == 0, text.output
    assert "none: the connection failed before any answer" in text.stdout
    assert "RemoteProtocolError: Server disconnected without sending a response." in text.stdout
    as_json = run("inspect", "--json", str(path))
    assert as_json.exit_code == 0, as_json.output
    second = yaml.safe_load(as_json.stdout)["interactions"][1]
    assert second["response"]["status"] is None
    assert second["error"] == "RemoteProtocolError: Server disconnected without sending a response."
    page = tmp_path / "page.html"
    assert run("inspect", "--html", str(page), str(path)).exit_code == 0

    lint = run("lint", str(path))
    assert lint.exit_code == 0, lint.output

    diff = run("diff", str(CASSETTE), str(path))
    assert diff.exit_code == 1, diff.output
    assert "status" in diff.stdout and "200" in diff.stdout and "none" in diff.stdout
    assert "Traceback" not in diff.output

    imported = tmp_path / "imported.yaml"
    result = run("import", str(path), "-o", str(imported))
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(imported.read_text())["interactions"][1]["response"] == HUNG_UP
