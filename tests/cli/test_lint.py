"""
`llmcassette lint`: one line per problem, a summary, `--json`, `--ignore`, and the exit status a
pre-commit hook goes by (1 with problems, 0 without, 2 for a command used wrongly).

The key below is made up in OpenAI's shape; it is not real.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from llmcassette.cli import cli
from llmcassette.providers.bedrock import exception_frame
from tests.adapters.bedrock import CONVERSE_EVENTS, event_frame, write_stream_cassette
from tests.corpus import CORPUS, MISSING_REASON

OPENAI_KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
SSE = 'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def cassette(path: Path, *, key: bool = False, done: bool = True, binary: bool = False) -> Path:
    text = SSE + ("data: [DONE]\n\n" if done else "")
    headers = {"Authorization": [f"Bearer {OPENAI_KEY}" if key else "Bearer REDACTED"]}
    data: dict[str, Any] = {
        "interactions": [
            {
                "request": {
                    "method": "POST",
                    "uri": "https://api.openai.com/v1/chat/completions",
                    "headers": headers,
                    "body": '{"stream": true}',
                },
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {"Content-Type": ["text/event-stream"]},
                    "body": {"string": text.encode() if binary else text},
                },
            }
        ]
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_clean_cassette_exits_0(tmp_path: Path) -> None:
    result = run("lint", str(cassette(tmp_path / "ok.yaml")))
    assert result.exit_code == 0, result.output
    assert result.stdout == "1 cassette checked: no problems.\n"
    assert result.stderr == ""


def test_problems_are_one_line_each_and_exit_1(tmp_path: Path) -> None:
    bad = cassette(tmp_path / "cassettes" / "bad.yaml", key=True, done=False, binary=True)
    cassette(tmp_path / "cassettes" / "ok.yaml")
    result = run("lint", str(tmp_path / "cassettes"))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        f"{bad}:interaction 0: request.headers.Authorization: [secret] holds an openai-key "
        "(sk-p…, 40 characters) (revoke it if it is live; `llmcassette import` scrubs it)",
        f"{bad}:interaction 0: response.body.string: [binary-text] is stored as binary (!!binary), "
        f"but is {len(SSE)} bytes of UTF-8 text (`llmcassette import` stores it as text)",
        f"{bad}:interaction 0: response.body.string: [unterminated-stream] the openai stream ends after "
        "1 event without `data: [DONE]` (record it again; to test a cut stream, use the `truncate` "
        "fault, or mark a stream cut on purpose with `stream: {end: closed}`)",
    ]
    assert lines[3] == ("3 problems (secret 1, binary-text 1, unterminated-stream 1) in 1 of 2 cassettes.")
    assert "llmcassette import FILE -o FILE --force" in lines[4]
    assert OPENAI_KEY not in result.stdout


def test_ignore_drops_a_rule(tmp_path: Path) -> None:
    path = cassette(tmp_path / "bad.yaml", key=True)
    assert run("lint", str(path)).exit_code == 1
    result = run("lint", "--ignore", "secret", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "1 cassette checked: no problems.\n"


def test_json_output(tmp_path: Path) -> None:
    path = cassette(tmp_path / "bad.yaml", key=True)
    (tmp_path / "notes.yaml").write_text("title: not a cassette\n")
    result = run("lint", "--json", str(tmp_path))
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document == {
        "checked": 1,
        "skipped": [str(tmp_path / "notes.yaml")],
        "problems": 1,
        "findings": [
            {
                "path": str(path),
                "interaction": 0,
                "field": "request.headers.Authorization",
                "rule": "secret",
                "message": "holds an openai-key (sk-p…, 40 characters)",
                "hint": "revoke it if it is live; `llmcassette import` scrubs it",
            }
        ],
    }


def test_the_summary_counts_the_lines_on_real_cassettes() -> None:
    if CORPUS is None:
        pytest.skip(MISSING_REASON)
    # The corpus's OpenAI files (test_lint.py lints the whole corpus); beside them, nothing else.
    folder = CORPUS / "openllmetry" / "openai"
    text = run("lint", str(folder), str(CORPUS / "MANIFEST.json"))
    as_json = json.loads(run("lint", "--json", str(folder)).stdout)
    assert text.exit_code == 1
    *findings, summary, advice = text.stdout.splitlines()
    # MANIFEST.json, named explicitly, is linted: its top level is a list, not a cassette.
    manifest = findings.pop()
    assert manifest.startswith(
        f"{CORPUS / 'MANIFEST.json'}: [schema] is not a cassette: its top level is a list"
    )
    assert len(findings) == as_json["problems"] == len(as_json["findings"]) > 0
    assert summary.startswith(f"{len(findings) + 1} problems (")
    assert summary.endswith(f" of {as_json['checked'] + 1} cassettes.")
    assert advice.startswith("`llmcassette import")


@pytest.mark.parametrize(
    ("args", "starts"),
    [
        pytest.param(
            ["missing.yaml"], "invalid value for 'PATH...': Path 'missing.yaml' does not exist", id="missing"
        ),
        pytest.param([], "missing argument 'PATH...'", id="no-path"),
        pytest.param(
            ["--ignore", "secrets", "."], "invalid value for '--ignore': 'secrets' is not one of", id="rule"
        ),
    ],
)
def test_usage_errors_are_one_line(args: list[str], starts: str) -> None:
    result = run("lint", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"llmcassette: {starts}"), result.stderr
    assert result.stderr.count("\n") == 1


def test_the_console_script(tmp_path: Path) -> None:
    path = cassette(tmp_path / "bad.yaml", key=True)
    script = Path(sys.executable).parent / "llmcassette"
    done = subprocess.run(
        [str(script), "lint", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith(f"{path}:interaction 0: request.headers.Authorization: [secret]")
    assert done.stderr == ""


def _dated(path: Path, date: str) -> Path:
    cassette(path)
    data = yaml.safe_load(path.read_text())
    data["interactions"][0]["response"]["headers"]["Date"] = [date]
    path.write_text(yaml.safe_dump(data))
    return path


def test_max_age_days_reports_a_stale_recording(tmp_path: Path) -> None:
    old = _dated(tmp_path / "old.yaml", "Mon, 01 Jan 2024 10:00:00 GMT")
    assert run("lint", str(old)).exit_code == 0  # no age limit, no finding
    result = run("lint", "--max-age-days", "30", str(old))
    assert result.exit_code == 1
    line = result.stdout.splitlines()[0]
    assert line.startswith(f"{old}:interaction 0: response.headers.date: [stale] was recorded ")
    assert "days ago, more than the limit of 30 days (record it again" in line
    fresh = _dated(
        tmp_path / "fresh.yaml", email.utils.format_datetime(datetime.datetime.now(datetime.UTC), usegmt=True)
    )
    assert run("lint", "--max-age-days", "30", str(fresh)).exit_code == 0
    assert run("lint", "--max-age-days", "30", "--ignore", "stale", str(old)).exit_code == 0


def test_a_bedrock_stream_that_stops_before_its_stop_reason_is_found(tmp_path: Path) -> None:
    frames = [event_frame(kind, payload) for kind, payload in CONVERSE_EVENTS]
    failed = [*frames[:2], exception_frame("throttlingException", "Too many requests.")]
    whole = write_stream_cassette(tmp_path / "whole.yaml", frames, failed)
    assert run("lint", str(whole)).exit_code == 0  # complete, and ended by the provider's own error
    cut = write_stream_cassette(tmp_path / "cut.yaml", frames[:3])
    result = run("lint", str(cut))
    assert result.exit_code == 1
    assert "cut.yaml:interaction 0: response.eventstream: [unterminated-stream]" in result.output
