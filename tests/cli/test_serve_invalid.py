"""
`llmcassette serve` refuses a cassette whose recorded URL does not split, as it loads the file:
one `llmcassette:` line naming the file, the interaction and the field, and no server started.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from llmcassette import CassetteFormatError
from llmcassette._demo import CASSETTE
from llmcassette.cli import cli
from llmcassette.proxy import CassetteServer
from tests.cli.test_cli import assert_one_line_error

BAD_URL = "http://[::1/v1/chat/completions"


@pytest.fixture
def bad_url(tmp_path: Path) -> Path:
    """The demo cassette with its second request's URL broken: an IPv6 bracket left open."""
    data = yaml.safe_load(CASSETTE.read_text(encoding="utf-8"))
    data["interactions"][1]["request"]["uri"] = BAD_URL
    path = tmp_path / "bad-url.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, explicit_end=True), encoding="utf-8")
    return path


def test_the_command_fails_with_one_line_before_serving(bad_url: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", str(CASSETTE), str(bad_url), "--port", "0"])
    assert_one_line_error(
        result,
        1,
        f"cassette {str(bad_url)!r} is not valid: interaction 1, field `request.uri`: is not a URL: "
        "Invalid IPv6 URL. Fix the file by hand, or delete it and record the cassette again.",
    )


def test_the_server_refuses_it_when_built(bad_url: Path) -> None:
    with pytest.raises(CassetteFormatError) as info:
        CassetteServer([bad_url])
    assert (info.value.path, info.value.interaction, info.value.field) == (bad_url, 1, "request.uri")
