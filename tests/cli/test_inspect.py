"""`llmcassette inspect`: transcripts of real cassettes, as text, JSON and HTML; errors as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from llmcassette._demo import CASSETTE
from llmcassette._storage import load_cassette
from llmcassette.cli import cli
from llmcassette.providers.bedrock import exception_frame
from tests import corpus
from tests.adapters.bedrock import CONVERSE_EVENTS, event_frame, write_stream_cassette
from tests.cli.test_cli import assert_one_line_error


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["inspect", *args])


@pytest.mark.parametrize("rel", corpus.params())
def test_every_corpus_cassette_inspects(rel: str) -> None:
    path = str(corpus.corpus_path(rel))
    count = len(load_cassette(path).interactions)
    text = run(path)
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith(f"{path}: {count} interaction")
    assert text.stdout.count("\n#") == count
    as_json = run("--json", path)
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert [entry["index"] for entry in document["interactions"]] == list(range(count))


def test_the_demo_as_text() -> None:
    result = run(str(CASSETTE))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "#0 POST http://127.0.0.1:8000/v1/chat/completions" in lines
    assert "    finish     tool_calls" in lines
    assert any(line.startswith("    chart      ·") for line in lines)


def test_full_shows_what_the_default_cuts(tmp_path: Path) -> None:
    long_text = "lorem ipsum " * 60
    path = tmp_path / "long.yaml"
    body = json.dumps({"choices": [{"index": 0, "message": {"content": long_text}, "finish_reason": "stop"}]})
    path.write_text(
        json.dumps(
            {
                "interactions": [
                    {
                        "request": {"method": "POST", "uri": "https://api.openai.com/v1/chat/completions"},
                        "response": {"status": {"code": 200}, "body": {"string": body}},
                    }
                ]
            }
        )
    )
    short, full = run(str(path)), run("--full", str(path))
    assert "--full shows all" in short.stdout and long_text.strip() not in short.stdout
    assert long_text.strip() in full.stdout and "--full shows all" not in full.stdout


def test_html_writes_a_page(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = run("--html", str(page), str(CASSETTE))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Wrote {page} (2 interactions).\n"
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and text.count("<section>") == 2 and "<svg" in text


def test_html_into_a_folder_that_does_not_exist_yet_creates_it(tmp_path: Path) -> None:
    # As `record -o`, `import -o` and drift's reports do; it was "[Errno 2] No such file or directory".
    page = tmp_path / "reports" / "today" / "chat.html"
    result = run("--html", str(page), str(CASSETTE))
    assert result.exit_code == 0, result.output
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_html_that_cannot_be_written_is_a_sentence_naming_the_page(tmp_path: Path) -> None:
    blocker = tmp_path / "reports"
    blocker.write_text("a file where a folder should be")
    page = blocker / "chat.html"
    result = run("--html", str(page), str(CASSETTE))
    assert_one_line_error(result, 1, f"cannot write the page {str(page)!r}: ")
    assert str(blocker) in result.stderr and "is a file, not a folder" in result.stderr
    assert blocker.read_text() == "a file where a folder should be"


def test_json_and_html_together_is_a_usage_error(tmp_path: Path) -> None:
    result = run("--json", "--html", str(tmp_path / "x.html"), str(CASSETTE))
    assert_one_line_error(result, 2, "--json and --html write different documents")


def test_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    assert_one_line_error(run(str(missing)), 1, f"cassette file {str(missing)!r} does not exist.")


def test_an_invalid_cassette_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("interactions:\n- request: {method: GET}\n")
    assert_one_line_error(run(str(path)), 1, f"cassette {str(path)!r} is not valid: interaction 0")


def test_an_unparsable_recorded_url_is_a_one_line_error(tmp_path: Path) -> None:
    data = yaml.safe_load(CASSETTE.read_text(encoding="utf-8"))
    data["interactions"][0]["request"]["uri"] = "http://127.0.0.1:444350/v1/chat/completions"
    path = tmp_path / "bad-url.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, explicit_end=True), encoding="utf-8")
    assert_one_line_error(
        run(str(path)),
        1,
        f"cassette {str(path)!r} is not valid: interaction 0, field `request.uri`: is not a URL: "
        "Port out of range 0-65535. Fix the file by hand",
    )


def test_the_console_entry_runs_inspect() -> None:
    environment = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    completed = subprocess.run(
        [sys.executable, "-m", "llmcassette", "inspect", "--json", str(CASSETTE)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        env=environment,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["interactions"][0]["stream"]["chunks"] == 11


def test_a_bedrock_stream_reads_as_an_sse_stream_does(tmp_path: Path) -> None:
    frames = [event_frame(kind, payload) for kind, payload in CONVERSE_EVENTS]
    failed = [*frames[:2], exception_frame("modelStreamErrorException", "The model stream broke.")]
    path = write_stream_cassette(tmp_path / "bedrock.yaml", frames, failed)
    result = run(str(path))
    assert result.exit_code == 0, result.output
    first, second = result.output.split("#1 ")
    assert "request    bedrock · model anthropic.claude-3-haiku · stream" in first
    assert "text       Hi there." in first and "finish     end_turn" in first
    assert "usage      inputTokens 3 · outputTokens 2 · totalTokens 5" in first
    assert f"stream     6 events in 6 chunks, {sum(map(len, frames))} bytes, complete" in first
    # An exception frame is the provider's error, as an SSE error event is.
    assert "error      The model stream broke." in second and "3 events in 3 chunks" in second
    document = json.loads(run("--json", str(path)).output)
    assert document["interactions"][1]["error"] == "The model stream broke."
