"""
Where a ``record`` session's recording goes when it cannot go where it was asked to: a check,
before the session starts, that the cassette's folder takes new files, and a copy in the system's
temporary folder when the cassette cannot be saved at the end, so that nothing is dropped.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from .._exceptions import CassetteError
from .._models import CassetteDocument
from .._storage import save_cassette

__all__ = ["save_elsewhere", "unwritable_reason"]


def unwritable_reason(cassette: Path, journal: Path) -> str | None:
    """
    Why a session could not write ``cassette`` and its ``journal`` (both in one folder), or None.
    A file is made and deleted there to find out: permissions alone do not tell (root ignores
    them; an immutable folder or a read-only mount refuses root too).
    """
    try:
        for path in (cassette, journal):
            if path.exists() and not path.is_file():
                return f"{str(path)!r} is not a file"
        # The folder may not exist yet (it is made at the first write): its nearest ancestor that
        # does must take new entries.
        folder = cassette.parent
        while not folder.is_dir():
            if folder.exists():
                return f"{str(folder)!r} is a file, not a folder"
            folder = folder.parent
    except OSError as exc:  # a folder on the way that cannot be looked into
        return f"{str(exc.filename)!r} cannot be looked into ({exc.strerror or exc})"
    probe = folder / f".{cassette.name}.{secrets.token_hex(6)}.probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        return f"no file can be created in {str(folder)!r} ({exc.strerror or exc})"
    probe.unlink()
    return None


def save_elsewhere(cassette: Path, document: CassetteDocument, *, vcrpy_compatible: bool = False) -> Path:
    """
    Write ``document`` under the cassette's name in a new folder of the system's temporary folder,
    readable by this user only (it may hold what ``--no-scrub`` kept), and return its path. A JSON
    cassette that JSON cannot hold (a binary body) is written as YAML. Raises :class:`OSError` when
    even that fails.
    """
    folder = Path(tempfile.mkdtemp(prefix="llmcassette-unsaved-"))
    path = folder / cassette.name
    try:
        save_cassette(path, document, vcrpy_compatible=vcrpy_compatible)
    except CassetteError:
        if path.suffix != ".json":
            raise
        path = path.with_suffix(".yaml")
        save_cassette(path, document, vcrpy_compatible=vcrpy_compatible)
    return path
