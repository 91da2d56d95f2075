"""
`llmcassette diff`: as diff(1), exit 0 for the same shape, 1 for a changed one (one line per
change), 2 for trouble: a file that cannot be read or is not a cassette, or a usage error.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from llmcassette._demo import CASSETTE
from llmcassette.cli import cli
from tests.adapters.bedrock import CONVERSE_EVENTS, event_frame, write_stream_cassette
from tests.cli.test_cli import assert_one_line_error


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["diff", *args])


def _copy(tmp_path: Path, *, header: str | None = None, text: str | None = None) -> str:
    data = yaml.safe_load(CASSETTE.read_text(encoding="utf-8"))
    response = data["interactions"][1]["response"]
    if header is not None:
        response["headers"][header] = ["1"]
    if text is not None:
        response["parsed_body"]["choices"][0]["message"]["content"] = text
        response["parsed_body"]["id"] = "chatcmpl-another"
        response["headers"]["date"] = ["Wed, 25 Nov 2026 10:00:00 GMT"]
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, explicit_end=True), encoding="utf-8")
    return str(path)


def test_the_same_shape_exits_0() -> None:
    result = run(str(CASSETTE), str(CASSETTE))
    assert result.exit_code == 0
    assert result.stdout == "Same shape: 2 interactions paired, no structural change.\n"


def test_other_text_is_the_same_shape(tmp_path: Path) -> None:
    result = run(str(CASSETTE), _copy(tmp_path, text="Completely different words."))
    assert result.exit_code == 0, result.output


def test_a_changed_shape_exits_1_with_one_line_per_change(tmp_path: Path) -> None:
    result = run(str(CASSETTE), _copy(tmp_path, header="x-new-limit"))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "+ header x-new-limit appeared in interaction 1 (POST /v1/chat/completions)",
        "1 structural change in 1 of 2 paired interactions.",
    ]
    assert result.stderr == ""


def test_ignore_header(tmp_path: Path) -> None:
    result = run("--ignore-header", "X-New-Limit", str(CASSETTE), _copy(tmp_path, header="x-new-limit"))
    assert result.exit_code == 0, result.output


def test_json_output(tmp_path: Path) -> None:
    b = _copy(tmp_path, header="x-new-limit")
    result = run("--json", str(CASSETTE), b)
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert (document["a"], document["b"], document["changed"], document["paired"]) == (
        str(CASSETTE),
        b,
        True,
        2,
    )
    (change,) = document["changes"]
    assert (change["kind"], change["sign"], change["subject"], change["a_index"]) == (
        "header",
        "+",
        "x-new-limit",
        1,
    )
    same = json.loads(run("--json", str(CASSETTE), str(CASSETTE)).stdout)
    assert same["changed"] is False and same["changes"] == []


def test_a_missing_file_is_trouble_not_a_change(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    assert_one_line_error(
        run(str(CASSETTE), str(missing)), 2, f"cassette file {str(missing)!r} does not exist."
    )


def test_an_invalid_cassette_is_trouble_not_a_change(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("[1, 2]\n")
    assert_one_line_error(run(str(path), str(CASSETTE)), 2, f"cassette {str(path)!r} is not a cassette")


def test_a_file_that_cannot_be_read_is_trouble(tmp_path: Path) -> None:
    # A path under a file: the operating system refuses it with an error other than "not found".
    path = tmp_path / "a.yaml" / "b.yaml"
    (tmp_path / "a.yaml").write_text("interactions: []\n")
    result = run(str(CASSETTE), str(path))
    assert_one_line_error(result, 2, f"cannot read cassette {str(path)!r}: ")
    assert result.stderr.rstrip().endswith(
        "is a file, not a folder; move that file away, or give a path whose folders are all folders."
    )


def test_an_unparsable_recorded_url_is_trouble(tmp_path: Path) -> None:
    data = yaml.safe_load(CASSETTE.read_text(encoding="utf-8"))
    data["interactions"][1]["request"]["uri"] = "http://[::1/v1/chat/completions"
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, explicit_end=True), encoding="utf-8")
    result = run(str(CASSETTE), str(path))
    assert_one_line_error(
        result, 2, f"cassette {str(path)!r} is not valid: interaction 1, field `request.uri`: is not a URL"
    )


def test_one_file_is_a_usage_error() -> None:
    assert_one_line_error(run(str(CASSETTE)), 2, "missing argument 'B'.")


def test_two_folders_pair_files_by_relative_path(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "chat.yaml").write_text(CASSETTE.read_text(encoding="utf-8"))
    assert run(str(a), str(b)).exit_code == 0
    changed = Path(_copy(tmp_path, header="x-new-limit"))
    changed.replace(b / "sub" / "chat.yaml")
    (a / "gone.yaml").write_text(CASSETTE.read_text(encoding="utf-8"))
    result = run(str(a), str(b))
    assert result.exit_code == 1
    assert f"- file {a / 'gone.yaml'} is only in A" in result.stdout
    assert "+ header x-new-limit appeared in interaction 1 (POST /v1/chat/completions)" in result.stdout
    document = json.loads(run("--json", str(a), str(b)).stdout)
    assert [f["changed"] for f in document["files"]] == [True, True]


def test_a_file_and_a_folder_are_trouble(tmp_path: Path) -> None:
    result = run(str(CASSETTE), str(tmp_path))
    assert result.exit_code == 2
    assert "A and B must both be files or both be folders" in result.stderr


def test_bedrock_streams_are_compared_by_their_event_types_and_shapes(tmp_path: Path) -> None:
    before = [event_frame(kind, payload) for kind, payload in CONVERSE_EVENTS]
    tool = event_frame(
        "contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}}
    )
    latency = event_frame(
        "metadata", {**CONVERSE_EVENTS[-1][1], "metrics": {"latencyMs": 9, "timeToFirstByteMs": 3}}
    )
    after = [*before[:4], tool, before[4], latency]
    a = write_stream_cassette(tmp_path / "a.yaml", before)
    b = write_stream_cassette(tmp_path / "b.yaml", after)
    result = run(str(a), str(b))
    assert result.exit_code == 1, result.output
    assert "+ event type 'contentBlockStart' appeared in interaction 0" in result.output
    assert (
        "+ field metrics.timeToFirstByteMs (number) appeared in 'metadata' events of interaction 0"
        in result.output
    )
    # Text and token counts are content, not shape.
    same = write_stream_cassette(
        tmp_path / "c.yaml", [event_frame("messageStart", {"role": "assistant"}), *before[1:]]
    )
    assert run(str(a), str(same)).exit_code == 0


def _json_answer(path: Path, body: str) -> Path:
    interaction = {
        "request": {"method": "POST", "uri": "https://api.openai.com/v1/chat/completions", "body": "{}"},
        "response": {
            "status": {"code": 200},
            "headers": {"content-type": ["application/json"]},
            "body": {"string": body},
        },
    }
    path.write_text(json.dumps({"interactions": [interaction]}))
    return path


def test_a_key_with_a_lone_surrogate_escape_is_printed_not_a_traceback(tmp_path: Path) -> None:
    # JSON may escape a UTF-16 surrogate alone; Python reads it as a character no UTF-8 output
    # holds, and printing the key that appeared raised UnicodeEncodeError mid-output.
    a = _json_answer(tmp_path / "a.json", '{"id": "x"}')
    b = _json_answer(tmp_path / "b.json", '{"id": "x", "a\\ud800": 1}')
    text = run(str(a), str(b))
    assert text.exit_code == 1, text.output
    assert "a\\ud800" in text.stdout
    as_json = run("--json", str(a), str(b))
    assert as_json.exit_code == 1, as_json.output
    assert json.loads(as_json.stdout)["changes"][0]["subject"] == "a\ud800"


def test_two_folders_skip_files_that_are_not_cassettes(tmp_path: Path) -> None:
    # As lint, drift and import do: a folder of cassettes often holds other YAML and JSON (a
    # MANIFEST.json list, CI settings); diff stopped at the first with exit 2.
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "chat.yaml").write_text(CASSETTE.read_text(encoding="utf-8"))
        (folder / "MANIFEST.json").write_text('[{"file": "chat.yaml"}]')
        (folder / "settings.yml").write_text("retries: 3\n")
    result = run(str(a), str(b))
    assert result.exit_code == 0, result.output
    assert "MANIFEST" not in result.output and "settings" not in result.output
    assert result.stdout.rstrip().endswith("1 file pair(s) compared; same shape.")
