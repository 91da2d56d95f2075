"""
The recordings the suite replays, in the project's top-level ``cassettes/`` folder.

They are laid out by pytest-recording's rule (its ``vcr_cassette_dir`` and
``default_cassette_name``): a folder per test module, a file per test, named after the test (its
class first, ``TestChat.test_chat``, and its parameters, ``test_chat[httpx]``, with the characters
a file name cannot hold made ``-``). pytest-recording puts that folder beside the test module;
the project keeps one ``cassettes/`` at the top instead, so the folder also carries the module's
package under ``tests/``: ``tests/plugin/test_markers.py::test_chat`` replays
``cassettes/plugin/test_markers/test_chat.yaml``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["CASSETTES", "Recording", "recording_path", "replayed_recordings"]

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
#: The project's own recordings.
CASSETTES = ROOT / "cassettes"
# pytest-recording's list of the characters a cassette name may not hold.
_FORBIDDEN = "<>?%*:|\"'/\\"


def recording_path(item: pytest.Item) -> Path:
    """``cassettes/<package>/<test module>/<test name>.yaml`` of the test ``item``."""
    module = item.path.resolve().relative_to(TESTS).with_suffix("")
    test_class = getattr(item, "cls", None)
    name = f"{test_class.__name__}.{item.name}" if test_class is not None else item.name
    for character in _FORBIDDEN:
        name = name.replace(character, "-")
    return CASSETTES / module / f"{name}.yaml"


@dataclass(frozen=True)
class Recording:
    """One test's recording (the ``recording`` fixture)."""

    path: Path

    def text(self) -> str:
        """The recording as its file holds it."""
        if not self.path.is_file():
            raise FileNotFoundError(
                f"this test replays {self.path.relative_to(ROOT)}, which is missing: every test that "
                "asks for `recording` has its file at cassettes/<package>/<test module>/<test name>.yaml"
            )
        return self.path.read_text()

    def copy_to(self, destination: Path) -> Path:
        """Copy the recording to ``destination`` (a pytester folder's cassette path) and return it."""
        self.text()  # the clear error when it is missing
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path, destination)
        return destination


def _replayed(item: pytest.Item) -> list[Path]:
    """The files under ``cassettes/`` that ``item`` replays: its ``recording``, or its marker's path."""
    found = [recording_path(item)] if "recording" in getattr(item, "fixturenames", ()) else []
    for marker in item.iter_markers("llm_cassette"):
        if marker.args and Path(marker.args[0]).is_absolute():
            found.append(Path(marker.args[0]))
    return [path for path in found if path.is_relative_to(CASSETTES)]


class _Collector:
    def __init__(self) -> None:
        self.paths: set[Path] = set()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            self.paths.update(_replayed(item))


def replayed_recordings(modules: list[Path]) -> set[Path]:
    """Every file under ``cassettes/`` a test of ``modules`` replays, found by collecting them.

    In a subprocess, as a user's ``pytest --collect-only`` would: collecting in-process would
    import the modules a second time into the running suite.
    """
    out = subprocess.run(
        [sys.executable, "-m", "tests.recordings", *map(str, modules)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    return {Path(path) for path in json.loads(out.splitlines()[-1])}


if __name__ == "__main__":
    collector = _Collector()
    arguments = ["--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
    code = pytest.main([*arguments, *sys.argv[1:]], plugins=[collector])
    if code != pytest.ExitCode.OK:
        sys.exit(f"collecting {' '.join(sys.argv[1:])} failed with exit code {code}")
    print(json.dumps(sorted(map(str, collector.paths))))
