"""
The project's own ``cassettes/`` folder cannot rot: every file in it is replayed by the test it is
named after (tests/recordings.py), loads, and lints clean.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

import llmcassette
from llmcassette.cli import cli
from tests.recordings import CASSETTES, ROOT, TESTS, replayed_recordings


def _files() -> list[Path]:
    return sorted(path for path in CASSETTES.rglob("*") if path.is_file())


# Collecting every module with recordings imports the SDKs tests/test_sdk_recordings.py drives,
# which the lowest-versions run leaves out (Makefile, LOWEST_SKIP).
@pytest.mark.skipif(
    importlib.util.find_spec("google") is None or importlib.util.find_spec("google.genai") is None,
    reason="collecting tests/test_sdk_recordings.py needs google-genai",
)
def test_every_recording_is_replayed_by_the_test_it_is_named_after() -> None:
    files = _files()
    # cassettes/<package>/<test module>/<test name>.yaml: the folder above each file is a module.
    modules = sorted({TESTS / path.parent.relative_to(CASSETTES).with_suffix(".py") for path in files})
    missing = [module for module in modules if not module.is_file()]
    assert not missing, f"folders under cassettes/ that name no test module: {missing}"
    replayed = replayed_recordings(modules)
    unused = [str(path.relative_to(ROOT)) for path in files if path not in replayed]
    assert not unused, f"recordings no test replays (delete them, or name them after their test): {unused}"
    assert all(path.suffix == ".yaml" for path in files)


def test_every_recording_loads_and_lints_clean() -> None:
    for path in _files():
        assert llmcassette.load_cassette(path).interactions, path
    result = CliRunner().invoke(cli, ["lint", str(CASSETTES)])
    assert result.exit_code == 0, result.output
    assert result.output.endswith(f"{len(_files())} cassettes checked: no problems.\n")
