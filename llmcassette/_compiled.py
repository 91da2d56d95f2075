"""
The optional C extension, :mod:`llmcassette._speedups`: the cold reader's passes over a stream's
bytes (a literal block's end and dedent, the checks of a stream's number lists, its body's cut
into chunks, the scans that check a file's characters and cut it into items), the JSON decoder's
hook for each object of a body, the reading of a JSON body into the bytes it stands for, and the
replay cache's checksum, when it was built (``hatch_build.py``) and not turned off with
``LLMCASSETTE_PURE_PYTHON=1``.

Each of its functions computes exactly what a Python function beside its caller computes, which
runs in its place when it is not there and is its oracle in ``tests/test_speedups.py``.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Protocol, TypeVar

__all__ = ["PURE_PYTHON_ENV", "Speedups", "speedups"]

#: Set to a non-empty value, the package runs its Python code alone.
PURE_PYTHON_ENV = "LLMCASSETTE_PURE_PYTHON"


_T = TypeVar("_T")


class Speedups(Protocol):
    """The extension's functions, as ``llmcassette/_speedups.pyi`` types them."""

    def literal_block(self, text: str, start: int, first_end: int, indent: int, /) -> tuple[str, int]: ...
    def block_bytes(
        self, raw: bytes, start: int, first_end: int, indent: int, size: int, /
    ) -> tuple[bytes, int]: ...
    def ascii(self, data: bytes, /) -> bool: ...
    def plain_times(self, text: bytes, /) -> bool: ...
    def lengths_format(self, text: bytes, /) -> bytes | None: ...
    def first_column(self, raw: bytes, start: int, /) -> list[int]: ...
    def cut(self, format: bytes, content: bytes, /) -> tuple[bytes, ...] | None: ...
    def plain_characters(self, raw: bytes, /) -> bool: ...
    def adler32(self, data: bytes | memoryview, /) -> int: ...
    def json_object(
        self, declined: type[Exception], longest: int, pairs: list[tuple[str, Any]], /
    ) -> dict[str, Any]: ...
    def copy_built(self, value: _T, /) -> _T: ...
    def json_bytes(
        self,
        text: str,
        start: int,
        most_brackets: int,
        item_separator: str | None,
        key_separator: str | None,
        ensure_ascii: bool,
        indent: int | None,
        /,
    ) -> tuple[bytes | None, int, int] | None: ...


@functools.cache
def speedups() -> Speedups | None:
    """The extension module, imported on first use; None when it is not built or turned off."""
    if os.environ.get(PURE_PYTHON_ENV):
        return None
    try:
        from . import _speedups
    except ImportError:
        return None
    return _speedups
