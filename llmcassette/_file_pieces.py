"""
Cutting a cassette file too large to hold in memory into its interactions, without reading it whole.

The file is scanned in blocks for the lines that start at the first column (a list item, a
top-level key) and for each item's ``  response:`` key: the same places, by the same rules, as
:func:`llmcassette._lazy._split` finds them in a file read whole, so a file is cut the same way
either way. Only the requests and the top-level keys are then read; each response is read from
the file when it is played (and a large body of one, as it is played: see
:mod:`llmcassette._file_bodies`).
"""

from __future__ import annotations

import re
from typing import Protocol

__all__ = ["FileView", "list_start", "other_line_breaks", "split_file"]

_BLOCK_BYTES = 4 * 1024 * 1024
# The top-level keys before the list of interactions are looked for in this much of the file.
_HEAD_BYTES = 64 * 1024
_ITEMS_START = b"interactions:\n- "
# A line at the first column that is a list item, another line at the first column that is not a
# comment, and an item's response key. Each starts at a line break and is at most 12 bytes long.
_MARK = re.compile(rb"\n(?:(- (?! ))|(  response:)|(- )|[^ \-#\n]|-[^ ])")
# Characters YAML (1.1, as PyYAML reads it) takes for line breaks beside "\n" and "\r": NEL, LINE
# SEPARATOR and PARAGRAPH SEPARATOR. A scan that knows lines by "\n" alone would cut a file that
# holds one where YAML does not: such a file is read whole. Each is looked for by its lead byte
# first (memchr: 0.09 ms over a 3.9 MB file, where a search for each mark took 3.3 ms), and then
# by a pattern that starts with it (in a file of text beyond ASCII, 10 ms against 28 for the marks'
# own searches).
_OTHER_BREAKS = ((b"\xc2", re.compile(rb"\xc2\x85")), (b"\xe2", re.compile(rb"\xe2\x80[\xa8\xa9]")))
_LOOKAHEAD = 12
# How much of the end of the file stands in for it when checking that it is whole.
_TAIL_BYTES = 64 * 1024


class _Reader(Protocol):
    def read(self, start: int, end: int) -> bytes: ...


class FileView:
    """Slices of the file, read when asked: what the loader takes of a file it holds in memory."""

    __slots__ = ("_reader",)

    def __init__(self, reader: _Reader) -> None:
        self._reader = reader

    def __getitem__(self, span: slice) -> bytes:
        assert span.step is None and span.start is not None and span.stop is not None
        return self._reader.read(span.start, span.stop)


def other_line_breaks(data: bytes) -> bool:
    """Whether ``data`` holds a line break other than ``\\n`` and ``\\r`` that YAML reads as one."""
    return any(lead in data and mark.search(data) is not None for lead, mark in _OTHER_BREAKS)


def list_start(head: bytes) -> int | None:
    """
    Where the line ``interactions:`` that opens the list of items starts in ``head`` (the file's
    text, or its first part), or None when the file is not in the block layout that is cut here:
    CR line ends, a byte order mark, or no such line.
    """
    if b"\r" in head[:4096] or head.startswith(b"\xef\xbb\xbf"):
        return None
    if head.startswith(_ITEMS_START):
        return 0
    start = head.find(b"\n" + _ITEMS_START)
    return None if start < 0 else start + 1


def split_file(reader: _Reader, size: int) -> tuple[bytes, list[tuple[int, int, int]], bytes] | None:
    """
    The file's top-level text (the lines outside the list of interactions), where each
    interaction's item starts, where its response starts and where it ends, and a stand-in for
    the file that :func:`llmcassette._storage.check_complete` can judge (its head and its end).
    None when the file is not in the block layout (the caller reads it whole).
    """
    head = reader.read(0, min(size, _HEAD_BYTES))
    start = list_start(head)
    if start is None:
        return None
    first = start + len(_ITEMS_START) - 2
    if head[first + 2 : first + 3] == b" ":
        return None  # (as `_MARK` finds a later item: see there)
    items: list[int] = [first]
    responses: list[int] = []
    trailer_at = size
    position = first
    while position < size and trailer_at == size:
        stop = min(size, position + _BLOCK_BYTES)
        block = reader.read(position, min(size, stop + _LOOKAHEAD))
        if other_line_breaks(block):
            return None
        for mark in _MARK.finditer(block):
            at = position + mark.start()
            if at >= stop:
                break
            if mark.group(1) is not None:
                items.append(at + 1)
            elif mark.group(3) is not None:
                return None  # an item whose keys start past the column after its dash
            elif mark.group(2) is not None:
                if len(responses) < len(items):
                    responses.append(at + 1)
            else:
                trailer_at = at + 1
                break
        position = stop
    if len(responses) != len(items):
        return None
    spans: list[tuple[int, int, int]] = []
    for number, item in enumerate(items):
        end = items[number + 1] if number + 1 < len(items) else trailer_at
        if not item < responses[number] < end:
            return None
        spans.append((item, responses[number], end))
    trailer = reader.read(trailer_at, size) if size - trailer_at <= _TAIL_BYTES else None
    if trailer is None:
        return None
    header = head[:start] + trailer
    # The head up to the list, and the end of the file from a line start: every top-level key
    # and the last lines, which is what tells a whole file from one cut short.
    tail = reader.read(max(first, size - _TAIL_BYTES), size)
    if size - _TAIL_BYTES > first:
        tail = tail[tail.find(b"\n") + 1 :]
    return header, spans, head[:first] + tail
