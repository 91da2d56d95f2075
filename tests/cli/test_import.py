"""
`llmcassette import`: files and folders converted, a line per file, and errors (missing source,
existing or unwritable destination) as one `llmcassette:` line with a non-zero exit.

The key below is made up in OpenAI's shape; it is not real.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

import llmcassette
from llmcassette.cli import cli

OPENAI_KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
ANSWER = {"choices": [{"message": {"content": "Hello"}}]}


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def vcrpy_cassette(path: Path) -> Path:
    """A plain vcrpy cassette: a gzip body as `!!binary`, and an API key in a header."""
    data = {
        "version": 1,
        "interactions": [
            {
                "request": {
                    "body": '{"model": "gpt-4o-mini"}',
                    "headers": {"authorization": [f"Bearer {OPENAI_KEY}"]},
                    "method": "POST",
                    "uri": "https://api.openai.com/v1/chat/completions",
                },
                "response": {
                    "body": {"string": gzip.compress(json.dumps(ANSWER).encode())},
                    "headers": {"Content-Type": ["application/json"], "Content-Encoding": ["gzip"]},
                    "status": {"code": 200, "message": "OK"},
                },
            }
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def assert_one_line_error(result: Result, exit_code: int, starts: str) -> None:
    assert result.exit_code == exit_code, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"llmcassette: {starts}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_a_file(tmp_path: Path) -> None:
    source = vcrpy_cassette(tmp_path / "vcr.yaml")
    dest = tmp_path / "out" / "chat.yaml"
    result = run("import", str(source), "-o", str(dest))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{source} -> {dest}: 1 interaction; 1 body decompressed, 1 binary body now text, 1 value scrubbed",
        "Imported 1 cassette (1 body decompressed, 1 binary body now text, 1 value scrubbed).",
    ]
    interaction = llmcassette.load_cassette(dest).interactions[0]
    assert interaction.response.parsed_body == ANSWER
    assert interaction.request.headers["authorization"] == ["Bearer REDACTED"]
    assert OPENAI_KEY not in dest.read_text()


def test_no_scrub_and_vcrpy_compatible(tmp_path: Path) -> None:
    source = vcrpy_cassette(tmp_path / "vcr.yaml")
    dest = tmp_path / "out.yaml"
    result = run("import", str(source), "-o", str(dest), "--no-scrub", "--vcrpy-compatible")
    assert result.exit_code == 0, result.output
    assert "scrubbed" not in result.stdout
    data = yaml.safe_load(dest.read_text())
    [item] = data["interactions"]
    # Plain text bodies that vcrpy replays as they are, and the key as recorded.
    assert json.loads(item["response"]["body"]["string"]) == ANSWER
    assert "parsed_body" not in item["request"] and "parsed_body" not in item["response"]
    assert item["request"]["headers"]["authorization"] == [f"Bearer {OPENAI_KEY}"]


def test_a_folder_and_the_force_flag(tmp_path: Path) -> None:
    vcrpy_cassette(tmp_path / "src" / "a.yaml")
    vcrpy_cassette(tmp_path / "src" / "sub" / "b.yaml")
    (tmp_path / "src" / "config.json").write_text("[]")
    first = run("import", str(tmp_path / "src"), "-o", str(tmp_path / "dest"))
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[-1] == (
        "Imported 2 cassettes (2 bodies decompressed, 2 binary bodies now text, 2 values scrubbed); "
        "skipped 1 file that is not a cassette."
    )
    assert (tmp_path / "dest" / "sub" / "b.yaml").is_file()
    again = run("import", str(tmp_path / "src"), "-o", str(tmp_path / "dest"))
    assert_one_line_error(
        again, 1, f"{str(tmp_path / 'dest' / 'a.yaml')!r} already exists (and 1 more of the 2 destinations)"
    )
    assert "--force" in again.stderr
    forced = run("import", str(tmp_path / "src"), "-o", str(tmp_path / "dest"), "--force")
    assert forced.exit_code == 0, forced.output


@pytest.mark.parametrize(
    ("args", "exit_code", "starts"),
    [
        pytest.param(
            ["missing.yaml", "-o", "x.yaml"],
            2,
            "invalid value for 'SRC': Path 'missing.yaml' does not exist",
            id="missing",
        ),
        pytest.param(["{src}"], 2, "missing option '-o' / '--output'", id="no-dest"),
        pytest.param(
            ["{src}", "-o", "{src}"], 1, "'{src}' already exists; overwrite it with --force", id="exists"
        ),
        pytest.param(
            ["{src}", "-o", "{src}/x.yaml"],
            1,
            "cannot write cassette '{src}/x.yaml': '{src}' is a file, not a folder; move that file away, "
            "or give a path whose folders are all folders.",
            id="unwritable",
        ),
        pytest.param(
            ["{bad}", "-o", "{tmp}/out.yaml"], 1, "cassette '{bad}' is not valid YAML at line 2", id="invalid"
        ),
    ],
)
def test_errors_are_one_line(tmp_path: Path, args: list[str], exit_code: int, starts: str) -> None:
    names = {
        "src": str(vcrpy_cassette(tmp_path / "vcr.yaml")),
        "bad": str(tmp_path / "bad.yaml"),
        "tmp": str(tmp_path),
    }
    (tmp_path / "bad.yaml").write_text("interactions: [\n")
    result = run("import", *[arg.format(**names) for arg in args])
    assert_one_line_error(result, exit_code, starts.format(**names))


def test_an_unparsable_url_writes_nothing(tmp_path: Path) -> None:
    source = vcrpy_cassette(tmp_path / "vcr.yaml")
    source.write_text(source.read_text().replace("https://api.openai.com/", "https://[api.openai.com/"))
    dest = tmp_path / "out.yaml"
    result = run("import", str(source), "-o", str(dest))
    assert_one_line_error(
        result,
        1,
        f"cassette {str(source)!r} is not valid: interaction 0, field `request.uri`: is not a URL: "
        "Invalid IPv6 URL. Fix the file by hand",
    )
    assert not dest.exists()


def test_the_console_script(tmp_path: Path) -> None:
    source = vcrpy_cassette(tmp_path / "vcr.yaml")
    script = Path(sys.executable).parent / "llmcassette"
    done = subprocess.run(
        [str(script), "import", str(source), "-o", str(tmp_path / "out.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("1 value scrubbed).\n")
    assert llmcassette.load_cassette(tmp_path / "out.yaml").interactions[0].response.parsed_body == ANSWER
