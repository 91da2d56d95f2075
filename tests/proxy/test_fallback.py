"""Where a record session's files go when they cannot go where asked: the check, and the copy."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest

from llmcassette import load_cassette
from llmcassette._models import CassetteDocument
from llmcassette.proxy._fallback import save_elsewhere, unwritable_reason
from llmcassette.proxy._journal import journal_path
from tests.test_storage import make_interaction
from tests.unwritable import locked


def test_a_folder_that_takes_files_passes_and_keeps_nothing_of_the_check(tmp_path: Path) -> None:
    assert unwritable_reason(tmp_path / "c.yaml", journal_path(tmp_path / "c.yaml")) is None
    assert unwritable_reason(tmp_path / "new" / "deeper" / "c.yaml", tmp_path / "j") is None
    assert list(tmp_path.iterdir()) == []  # the probe is gone, and no folder was made


def test_what_stops_a_session_from_writing_is_named(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / "c.yaml").mkdir()
    (tmp_path / "d.yaml.journal").mkdir()
    cases = {
        tmp_path / "a-file" / "c.yaml": f"{str(tmp_path / 'a-file')!r} is a file, not a folder",
        tmp_path / "a-file" / "x" / "c.yaml": f"{str(tmp_path / 'a-file')!r} is a file, not a folder",
        tmp_path / "c.yaml": f"{str(tmp_path / 'c.yaml')!r} is not a file",
        tmp_path / "d.yaml": f"{str(tmp_path / 'd.yaml.journal')!r} is not a file",
    }
    for cassette, reason in cases.items():
        assert unwritable_reason(cassette, journal_path(cassette)) == reason


def test_a_folder_that_takes_no_files_is_named_with_the_systems_words(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    with locked(folder):
        reason = unwritable_reason(folder / "c.yaml", journal_path(folder / "c.yaml"))
        assert reason is not None
        assert reason.startswith(f"no file can be created in {str(folder)!r} (")
        assert reason.endswith(("(Operation not permitted)", "(Permission denied)")), reason


def test_the_copy_keeps_the_cassettes_name_in_a_folder_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    document = CassetteDocument(interactions=[make_interaction(b"data: 1\n\n")])
    copy = save_elsewhere(Path("/nowhere/c.yaml"), document)
    assert copy.name == "c.yaml" and copy.parent.parent == tmp_path
    assert copy.parent.name.startswith("llmcassette-unsaved-")
    assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700  # it may hold unscrubbed keys
    assert load_cassette(copy).interactions == document.interactions


def test_a_json_cassette_that_json_cannot_hold_is_copied_as_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    binary = make_interaction(b"\x00\x01", content_type="application/octet-stream")
    copy = save_elsewhere(Path("/nowhere/c.json"), CassetteDocument(interactions=[binary]))
    assert copy.name == "c.yaml"
    assert load_cassette(copy).interactions[0].response.content == b"\x00\x01"


def test_a_folder_that_cannot_be_looked_into_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a user without search permission on a folder of the path meets (root never does).
    closed = tmp_path / "closed"
    real_exists = Path.exists

    def exists(self: Path, *args: Any, **kwargs: Any) -> bool:
        if self.is_relative_to(closed):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(closed))
        return real_exists(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", exists)
    cassette = closed / "c.yaml"
    assert unwritable_reason(cassette, journal_path(cassette)) == (
        f"{str(closed)!r} cannot be looked into (Permission denied)"
    )
