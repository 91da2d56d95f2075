"""
File-system trouble at a cassette path is a CassetteReadError or CassetteWriteError that names the
file, the system's reason and what to do, never a bare OSError; a failed save leaves the file on
disk as it was and no temporary file beside it.

The suite may run as root, which reads and writes whatever the permissions say, so permission
failures are injected; a full disk and a read-only folder are also made real (a small tmpfs)
where mounting is permitted.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import llmcassette
from llmcassette import CassetteError, CassetteReadError, CassetteWriteError
from llmcassette._lint import lint_paths
from llmcassette._models import CassetteDocument
from llmcassette._storage import load_cassette, save_cassette

DEMO_TEXT = (Path(llmcassette.__file__).parent / "_demo" / "chat.yaml").read_bytes()


def document(body_bytes: int = 100) -> CassetteDocument:
    return CassetteDocument.model_validate(
        {
            "interactions": [
                {
                    "request": {"method": "GET", "uri": "http://127.0.0.1:9/x"},
                    "response": {"status": {"code": 200}, "body": {"string": "x" * body_bytes}},
                }
            ]
        }
    )


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- reading ---------------------------------------------------------------------------------------


@pytest.fixture
def link_loop(tmp_path: Path) -> Path:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.symlink_to(b)
    b.symlink_to(a)
    return a


def test_a_folder_at_the_cassette_path(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    path.mkdir()
    with pytest.raises(CassetteReadError) as info:
        load_cassette(path)
    assert str(info.value) == (
        f"llmcassette: cannot read cassette {str(path)!r}: Is a directory. "
        "The path is a folder: give the path of a cassette file inside it."
    )
    assert (info.value.path, info.value.reason) == (path, "Is a directory")


def test_a_symbolic_link_loop_at_the_cassette_path(link_loop: Path) -> None:
    with pytest.raises(
        CassetteReadError, match="Too many levels of symbolic links. The path is a symbolic link"
    ):
        load_cassette(link_loop)


def test_a_file_where_a_folder_of_the_path_should_be(tmp_path: Path) -> None:
    # One sentence naming the file in the way and what to do: the system's own words are
    # "Not a directory" reading and, from `mkdir`, "File exists", which name neither.
    (tmp_path / "cassettes").write_text("not a folder")
    for path in (tmp_path / "cassettes" / "chat.yaml", tmp_path / "cassettes" / "deeper" / "chat.yaml"):
        culprit = (
            f"{str(tmp_path / 'cassettes')!r} is a file, not a folder; move that file away, or give a "
            "path whose folders are all folders."
        )
        with pytest.raises(CassetteReadError) as read:
            load_cassette(path)
        assert str(read.value) == f"llmcassette: cannot read cassette {str(path)!r}: {culprit}"
        with pytest.raises(CassetteWriteError) as write:
            save_cassette(path, document())
        assert str(write.value) == f"llmcassette: cannot write cassette {str(path)!r}: {culprit}"
        assert write.value.reason == f"{str(tmp_path / 'cassettes')!r} is a file, not a folder"
    assert (tmp_path / "cassettes").read_text() == "not a folder"


def test_an_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "chat.yaml"
    path.write_bytes(DEMO_TEXT)

    def refused(self: Path) -> bytes:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refused)
    with pytest.raises(CassetteReadError) as info:
        load_cassette(path)
    assert str(info.value).endswith(
        "Permission denied. Give the user running llmcassette read access to it (and to its folder)."
    )


@pytest.mark.parametrize("record_mode", ["none", "once", "new_episodes"])
def test_use_cassette_refuses_a_path_it_cannot_read_on_entry(
    tmp_path: Path, link_loop: Path, record_mode: str
) -> None:
    # A link loop is not "absent" (pathlib says it does not exist): recording would replace the
    # link with a file, replaying would call every request a miss.
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    for path in (folder, link_loop):
        with pytest.raises(CassetteReadError, match=rf"^llmcassette: cannot read cassette {str(path)!r}"):
            with llmcassette.use_cassette(path, record_mode=record_mode):
                pass
    assert link_loop.is_symlink()


def test_lint_names_a_file_it_cannot_read(link_loop: Path) -> None:
    with pytest.raises(CassetteReadError, match="Too many levels of symbolic links"):
        lint_paths([link_loop])


# -- writing ---------------------------------------------------------------------------------------


@pytest.fixture
def existing(tmp_path: Path) -> Path:
    path = tmp_path / "chat.yaml"
    path.write_bytes(DEMO_TEXT)
    return path


@pytest.mark.parametrize(
    ("target", "code", "reason", "doing", "advice"),
    [
        pytest.param(
            "fdopen",
            errno.ENOSPC,
            "No space left on device",
            "writing a temporary file beside it",
            "Free space on the disk (or point the cassette elsewhere), then run again.",
            id="full-disk",
        ),
        pytest.param(
            "fsync",
            errno.EIO,
            "Input/output error",
            "writing a temporary file beside it",
            "Check the path, the disk and the permissions.",
            id="io-error",
        ),
        pytest.param(
            "open",
            errno.EROFS,
            "Read-only file system",
            "creating a temporary file beside it",
            "The folder is on a read-only file system: record into a writable folder.",
            id="read-only-folder",
        ),
        pytest.param(
            "replace",
            errno.EACCES,
            "Permission denied",
            "renaming the temporary file over it",
            "Give the user running llmcassette write access to it (and to its folder).",
            id="rename-refused",
        ),
    ],
)
def test_a_failed_save_names_the_file_and_leaves_it_whole(
    existing: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    code: int,
    reason: str,
    doing: str,
    advice: str,
) -> None:
    real = getattr(os, target)

    def failing(*args: Any, **kwargs: Any) -> Any:
        if target == "open" and not str(args[0]).endswith(".tmp"):
            return real(*args, **kwargs)
        if target == "fdopen":
            return _FullDisk(real(*args, **kwargs))
        raise OSError(code, reason)

    monkeypatch.setattr(os, target, failing)
    with pytest.raises(CassetteWriteError) as info:
        save_cassette(existing, document(100_000))
    assert str(info.value) == (
        f"llmcassette: cannot write cassette {str(existing)!r}: {reason} (while {doing}); the "
        f"cassette on disk is unchanged. {advice}"
    )
    assert info.value.reason == reason
    monkeypatch.undo()
    assert existing.read_bytes() == DEMO_TEXT
    assert files_in(existing.parent) == ["chat.yaml"]


class _FullDisk:
    """The temporary file's handle on a disk that has no room left."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_folder_at_the_cassette_path_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    path.mkdir()
    (path / "inside.txt").write_text("kept")
    with pytest.raises(CassetteWriteError, match=r"Is a directory \(while renaming.*The path is a folder"):
        save_cassette(path, document())
    assert files_in(tmp_path) == ["chat.yaml"]
    assert (path / "inside.txt").read_text() == "kept"


def test_the_folder_lock_failing_is_a_write_error(existing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def no_folder(path: Any, *args: Any, **kwargs: Any) -> int:
        if Path(path) == existing.parent:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_folder)
    cassette = llmcassette.Cassette(existing, record_mode="all")
    with pytest.raises(CassetteWriteError, match=r"Permission denied \(while locking the folder\)"):
        cassette.save()
    monkeypatch.undo()
    assert existing.read_bytes() == DEMO_TEXT


def test_use_cassette_raises_the_write_error_when_it_saves(
    tmp_path: Path, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "new.yaml"

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(CassetteWriteError, match=r"^llmcassette: cannot write cassette .*No space left"):
        with llmcassette.use_cassette(path, record_mode="once") as cassette:
            httpx.post(f"{upstream}/json", json={"q": 1}).raise_for_status()
            monkeypatch.setattr(os, "fsync", full)
    assert len(cassette.new_interactions) == 1
    assert files_in(tmp_path) == []


# -- a real small disk ---------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, where the system lets this user mount one."""
    mount = shutil.which("mount")
    point = tmp_path / "disk"
    point.mkdir()
    if mount is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root and `mount`; the injected failures cover it")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(point)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"this system does not permit mounting a tmpfs: {done.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


def test_a_real_full_disk(small_disk: Path) -> None:
    path = small_disk / "chat.yaml"
    path.write_bytes(DEMO_TEXT)
    with pytest.raises(CassetteWriteError, match=r"No space left on device \(while writing"):
        save_cassette(path, document(200_000))
    assert path.read_bytes() == DEMO_TEXT
    assert files_in(small_disk) == ["chat.yaml"]


def test_a_real_read_only_folder(small_disk: Path) -> None:
    path = small_disk / "chat.yaml"
    path.write_bytes(DEMO_TEXT)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(CassetteWriteError, match=r"Read-only file system \(while creating a temporary"):
        save_cassette(path, document())
    assert path.read_bytes() == DEMO_TEXT
    assert isinstance(CassetteWriteError("x", path=path, reason="r"), CassetteError)
