"""
File-system trouble at a cassette path, told as llmcassette errors.

An ``OSError`` says what the system call met ("Is a directory", "No space left on device") but
not which cassette, nor what the user can do about it: :func:`read_error` and :func:`write_error`
turn one into a :class:`CassetteReadError` or :class:`CassetteWriteError` that names the file, the
system's reason and a next step. :func:`writing` converts whatever a block of writes raises.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

from ._exceptions import CassetteReadError, CassetteWriteError

__all__ = ["cannot_write", "read_error", "write_error", "writing"]

_ADVICE = {
    errno.EISDIR: "the path is a folder: give the path of a cassette file inside it",
    errno.ELOOP: "the path is a symbolic link that leads back to itself: point it at a file, or remove it",
    errno.ENOSPC: "free space on the disk (or point the cassette elsewhere), then run again",
    errno.EDQUOT: "free space within the disk quota (or point the cassette elsewhere), then run again",
    errno.EROFS: "the folder is on a read-only file system: record into a writable folder",
    errno.ENAMETOOLONG: "choose a shorter path",
}


def _in_the_way(path: Path, exc: OSError) -> str | None:
    # The system names neither the culprit nor, from `mkdir`, the problem: it says "File exists"
    # or "Not a directory". Found here, the culprit is the whole of what went wrong.
    if exc.errno != errno.ENOTDIR and not isinstance(exc, FileExistsError):
        return None
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{str(parent)!r} is a file, not a folder"
            break
    return "a part of the path that must be a folder is not one"


#: What to do about a file where a folder belongs.
_MOVE_IT = "move that file away, or give a path whose folders are all folders"


def _advice(exc: OSError, access: str) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"give the user running llmcassette {access} access to it (and to its folder)"
    return _ADVICE.get(exc.errno or 0, "check the path, the disk and the permissions")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def read_error(path: Path, exc: OSError) -> CassetteReadError:
    """``exc``, met reading the cassette at ``path``, as a sentence naming both."""
    blocked = _in_the_way(path, exc)
    if blocked is not None:
        message = f"llmcassette: cannot read cassette {str(path)!r}: {blocked}; {_MOVE_IT}."
        return CassetteReadError(message, path=path, reason=blocked)
    advice = _advice(exc, "read")
    return CassetteReadError(
        f"llmcassette: cannot read cassette {str(path)!r}: {_reason(exc)}. {advice[0].upper()}{advice[1:]}.",
        path=path,
        reason=_reason(exc),
    )


def write_error(path: Path, exc: OSError, *, doing: str) -> CassetteWriteError:
    """``exc``, met while ``doing`` (a phrase) to save ``path``; the file on disk is unchanged."""
    blocked = _in_the_way(path, exc)
    if blocked is not None:
        # (no cassette can be on disk there, so none is said to be unchanged)
        message = f"llmcassette: cannot write cassette {str(path)!r}: {blocked}; {_MOVE_IT}."
        return CassetteWriteError(message, path=path, reason=blocked)
    advice = _advice(exc, "write")
    return CassetteWriteError(
        f"llmcassette: cannot write cassette {str(path)!r}: {_reason(exc)} (while {doing}); the "
        f"cassette on disk is unchanged. {advice[0].upper()}{advice[1:]}.",
        path=path,
        reason=_reason(exc),
    )


def cannot_write(what: str, path: Path, exc: OSError) -> str:
    """``exc``, met writing ``what`` (a phrase: "the page") at ``path``, as a sentence with a next step."""
    blocked = _in_the_way(path, exc)
    if blocked is not None:
        return f"llmcassette: cannot write {what} {str(path)!r}: {blocked}; {_MOVE_IT}."
    advice = _advice(exc, "write")
    return f"llmcassette: cannot write {what} {str(path)!r}: {_reason(exc)}. {advice[0].upper()}{advice[1:]}."


@contextlib.contextmanager
def writing(path: Path, doing: str) -> Iterator[None]:
    """Turn an ``OSError`` raised inside into a :class:`CassetteWriteError` about ``path``."""
    try:
        yield
    except OSError as exc:
        raise write_error(path, exc, doing=doing) from exc
