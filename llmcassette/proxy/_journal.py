"""
The journal of a ``record`` session: every interaction, written down as soon as it is recorded, so
that a session that never gets to save (``kill -9``, an out-of-memory kill, a CI job's hard stop)
loses nothing.

``record`` saves its cassette when it stops, Ctrl-C and SIGTERM included. Until then the
interactions live in memory, and in ``CASSETTE.journal`` beside the cassette: one line of JSON per
interaction, in the cassette's own JSON form. A clean stop saves the cassette and deletes the
journal. A journal still there when ``record`` starts on the same cassette is what a killed session
left behind: :func:`recover` adds its interactions to the cassette, atomically, before anything
else happens.

A live session holds a lock on its journal (``flock``, which the system lets go of when the
process dies, however it dies), so a second session started on the same cassette leaves a journal
that is still being written alone.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import threading
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: journals are not locked
    fcntl = None  # type: ignore[assignment]

from pydantic import ValidationError

from .._exceptions import CassetteFormatError
from .._models import CassetteDocument, Interaction
from .._storage import cassette_lock, document_to_data, file_state, load_cassette, save_cassette

__all__ = ["Journal", "Recovery", "journal_path", "recover"]


def journal_path(cassette: str | Path) -> Path:
    """Where the journal of a ``record`` session on ``cassette`` is kept."""
    cassette = Path(cassette)
    return cassette.with_name(cassette.name + ".journal")


class Journal:
    """
    Appends each recorded interaction to the journal file, one line each, as it comes.

    A write that fails (a full disk, a folder that can no longer be written) is taken back, so
    that the journal stays a list of whole entries, and raises :class:`OSError`; the journal then
    takes no more (a gap in the middle would be worse than a missing end), so the failure is
    raised once, not at every interaction that follows.
    """

    def __init__(self, cassette: str | Path) -> None:
        self.path = journal_path(cassette)
        self._fd: int | None = None
        self._size = 0  # the length of what the journal holds whole
        self._lock = threading.Lock()
        # Set when the session has saved (nothing more to write down), when the journal turned out
        # to be another live session's (nothing of this one may go into it), or when a write failed.
        self._closed_for_good = False

    def append(self, interaction: Interaction) -> None:
        """Write ``interaction`` down; the line is handed to the system before this returns."""
        data = document_to_data(CassetteDocument(interactions=[interaction]))
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_bytes_as_text)
        line = (text + "\n").encode("utf-8")
        with self._lock:
            if self._closed_for_good:
                return
            if self._fd is None:
                self._fd = self._open()
                self._size = os.fstat(self._fd).st_size
            try:
                # Unbuffered: what the system holds survives the process being killed.
                _write(self._fd, line)
            except OSError:
                self._closed_for_good = True
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
                raise
            self._size += len(line)

    def _open(self) -> int:
        try:
            # The cassette's folder is made when it is saved; the journal comes first.
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, _APPEND_FLAGS, 0o666)
        except OSError:
            self._closed_for_good = True
            raise
        if not _lock(fd):
            os.close(fd)
            self._closed_for_good = True  # the other session's: say so once, then keep out
            raise OSError(errno.EBUSY, "another record session on the same cassette is writing it")
        return fd

    def close(self) -> None:
        """Close the journal's file (and let go of its lock), and keep it, for :func:`recover`."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def discard(self) -> None:
        """Delete this session's journal and write no more: the cassette now holds all it held."""
        with self._lock:
            self._closed_for_good = True
            if self._fd is None:
                return  # nothing was written, or the journal is another live session's
            try:
                # Deleted while still locked: no other session can take it for a killed one's.
                self.path.unlink(missing_ok=True)
            finally:
                os.close(self._fd)
                self._fd = None


# Not inherited by the command record runs (os.open's default); bytes as they are, on every system.
_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)


def _write(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (a full disk may take part of it, then refuse the rest)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _lock(fd: int) -> bool:
    """Take the journal's lock without waiting; False when a live session holds it."""
    if fcntl is None:  # pragma: no cover - not POSIX
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


_BYTES_KEY = "$base64"


def _bytes_as_text(value: Any) -> Any:
    # Binary bodies stay bytes in the cassette's data (YAML writes them as !!binary); JSON has no
    # bytes, so the journal writes them tagged, in base64, and reading turns them back.
    if isinstance(value, bytes):
        return {_BYTES_KEY: base64.b64encode(value).decode("ascii")}
    raise TypeError(f"cannot write {type(value).__name__} to a journal")


def _text_as_bytes(value: dict[str, Any]) -> Any:
    if len(value) == 1 and isinstance(value.get(_BYTES_KEY), str):
        return base64.b64decode(value[_BYTES_KEY], validate=True)
    return value


class Recovery:
    """What :func:`recover` found: interactions added to the cassette, and a cut-off last one."""

    def __init__(self, journal: Path, recovered: int, cut_off: bool) -> None:
        self.journal = journal
        self.recovered = recovered
        self.cut_off = cut_off

    def describe(self, cassette: Path) -> str:
        text = f"llmcassette: an earlier record session on {str(cassette)!r} ended without saving; "
        if not self.recovered:
            # Nothing whole to add: the cassette was left as it was.
            text += f"its journal {str(self.journal)!r} held no whole interaction"
            if self.cut_off:
                text += " (one was being written when the session was killed, and is lost)"
            return text + ", and is deleted."
        noun, verb = ("interaction", "is") if self.recovered == 1 else ("interactions", "are")
        text += f"{self.recovered} {noun} from its journal {str(self.journal)!r} {verb} now in the cassette"
        if self.cut_off:
            text += " (its last one was being written when the session was killed, and is lost)"
        return text + "."


def recover(cassette: str | Path) -> Recovery | None:
    """
    Add the interactions of a journal that a killed session left beside ``cassette`` to it, after
    those it holds, and delete the journal. None when there is no journal. A last line cut off
    mid-write is dropped (and said so); any other damage is a :class:`CassetteFormatError` that
    names the journal and the line, and leaves both files as they are.
    """
    cassette = Path(cassette)
    journal = journal_path(cassette)
    try:
        handle = journal.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        if not _lock(handle.fileno()) or not _still_there(handle.fileno(), journal):
            return None  # a live session's journal, or one another session has just recovered
        interactions, cut_off = _read(journal, handle.read())
        if interactions:
            with cassette_lock(cassette):
                if file_state(cassette) is not None:
                    current = load_cassette(cassette)
                    document = CassetteDocument(
                        version=current.version,
                        interactions=[*current.interactions, *interactions],
                        **dict(current.model_extra or {}),
                    )
                else:
                    document = CassetteDocument(interactions=interactions)
                save_cassette(cassette, document)
        journal.unlink()
    return Recovery(journal, len(interactions), cut_off)


def _still_there(fd: int, journal: Path) -> bool:
    # The file this session opened and locked is still the journal (not deleted meanwhile).
    with contextlib.suppress(FileNotFoundError):
        return os.path.samestat(os.fstat(fd), os.stat(journal))
    return False


def _read(journal: Path, raw: bytes) -> tuple[list[Interaction], bool]:
    lines = raw.split(b"\n")
    # The file ends with a newline after every complete entry: what follows the last one is an
    # entry the killed session had not finished writing.
    cut_off = lines[-1].strip() != b""
    interactions: list[Interaction] = []
    for number, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line, object_hook=_text_as_bytes)
        except ValueError as exc:
            raise _damaged(journal, number, str(exc)) from None
        # Valid JSON is not enough: each line this module writes is one interaction, so any other
        # shape is damage, refused as a broken line is, never skipped.
        problem = _entry_problem(data)
        if problem is not None:
            raise _damaged(journal, number, problem)
        try:
            document = CassetteDocument.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            loc = error["loc"]
            loc = loc[2:] if loc[:2] == ("interactions", 0) else loc
            field = ".".join(str(part) for part in loc) or "(the interaction)"
            raise _damaged(journal, number, f"field `{field}`: {error['msg']}") from None
        interactions.extend(document.interactions)
    return interactions, cut_off


def _damaged(journal: Path, number: int, problem: str) -> CassetteFormatError:
    return CassetteFormatError(
        f"llmcassette: the journal {str(journal)!r} of an unfinished record session is not valid at "
        f"line {number}: {problem}. Nothing was changed; delete the journal to discard what it "
        "holds, or repair that line.",
        path=journal,
    )


_ENTRY_KEYS = {"version", "llmcassette_schema", "interactions"}


def _entry_problem(data: Any) -> str | None:
    """What keeps ``data`` from being a journal entry (as :meth:`Journal.append` writes it)."""
    entries = data.get("interactions") if isinstance(data, dict) else None
    if not isinstance(entries, list) or len(entries) != 1 or not set(data) <= _ENTRY_KEYS:
        return (
            "it is JSON, but not a journal entry (an object whose `interactions` list holds one "
            "recorded interaction)"
        )
    return None
