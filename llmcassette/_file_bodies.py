"""
Large response bodies played from the cassette file, never held whole in memory.

A cassette too large to keep in memory (above :data:`~llmcassette._cache.MAX_CACHED_FILE_BYTES`)
is read piece by piece (see :mod:`llmcassette._lazy`). In such a file, a response body of at least
:data:`FILE_BODY_MIN_BYTES` in a form that can be decoded line by line is not parsed: the file
is scanned once to find where the body lies and how long it is, and each play reads it from the
file in blocks, decodes them on the fly and cuts them at the recorded chunk lengths
(:class:`FileChunks`). The forms that stream, in the layout llmcassette writes
(``response.body.string`` at its usual indentation):

- a YAML block literal, ``|``, ``|-`` or ``|+`` (with or without an indentation digit), the form
  llmcassette gives every multi-line text body (SSE, NDJSON), CRLF line endings included;
- ``!!binary |`` base64, the form of a binary body.

Everything else is held whole as before: a JSON body stored structured (``parsed_body``, which
must be serialised again), a quoted or plain scalar (escapes, folding), an eventstream body, a
body with ``Content-Encoding`` (replay checks it decodes), one without recorded chunk lengths
(replay cuts it at its events) or with an empty chunk, and any layout the check below declines.

The part of the response around the body (status, headers, the stream record) is parsed by YAML
as usual, with the body left out, so a file is never read otherwise than YAML reads it; a body
line YAML would read differently (a CR, a control character, a Unicode line break) declines.

The file must not change under a running replay: every read checks that its size and time of
change are still those it had when the cassette was entered, and a full pass checks the body's
CRC-32 against the one taken when it was found. Either raises a :class:`CassetteError` naming the
file and the interaction.
"""

from __future__ import annotations

import binascii
import re
import zlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, overload

from pydantic import ValidationError

from ._exceptions import CassetteError, CassetteFormatError
from ._streams import ReplayStream

if TYPE_CHECKING:
    from ._playback import Compiled

__all__ = ["FILE_BODY_MIN_BYTES", "FileChunks", "FileReplayStream", "compile_from_file", "replay_stream_for"]

#: A body of at least this many bytes, in a cassette read piece by piece, is played from the file.
#: Far above any ordinary LLM answer (a long streamed completion is tens to hundreds of KB), so
#: ordinary cassettes keep their fast path; low enough that a file of many large streams does not
#: pile up its bodies in memory as they are played.
FILE_BODY_MIN_BYTES = 1024 * 1024

# How much of the file one read takes.
_BLOCK_BYTES = 1024 * 1024

# The body key of a response as llmcassette (and PyYAML's block style) writes it.
_BODY_START = re.compile(rb"\n    body:\n      string: (!!binary )?\|([1-9]?)([+-]?)([1-9]?)\n")
_KEY_INDENT = 6
# Bytes a YAML reader treats otherwise than as text of the line: CR, NEL and the Unicode line
# breaks, a byte order mark, and the characters it refuses (C0 and C1 controls, U+FFFE, U+FFFF).
_NOT_PLAIN = re.compile(
    rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]|\xef\xbb\xbf|\xef\xbf[\xbe\xbf]"
)


class PieceReader(Protocol):
    """Reads bytes of the cassette file (``_lazy._FileReader``), checking it did not change."""

    def read(self, start: int, end: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _Region:
    """Where a body lies in the file and how it is written there."""

    start: int  # the first line of the block's text
    end: int  # after its last line
    indent: int
    chomp: str  # "keep", "clip" or "strip"
    binary: bool
    #: Bytes of the decoded text before CRLF is applied, and its line breaks.
    length: int
    newlines: int
    crc: int


class _Changed(Exception):
    pass


def _lines(reader: PieceReader, start: int, end: int) -> Iterator[bytes]:
    # The text in blocks that end at a line break (the last may not).
    position = start
    carry = b""
    while position < end:
        block = reader.read(position, min(end, position + _BLOCK_BYTES))
        if not block:
            raise _Changed
        position += len(block)
        block = carry + block
        cut = block.rfind(b"\n") + 1
        if cut == 0 and position < end:
            carry = block
            continue
        carry = block[cut:]
        if cut:
            yield block[:cut]
    if carry:
        yield carry


def _strip_indent(indent: int) -> re.Pattern[bytes]:
    # A line's indentation, or the spaces of a blank line shorter than it (YAML's empty line).
    return re.compile(rb"^(?: {%d}| *(?=\n))" % indent, re.MULTILINE)


def _block_end(indent: int) -> re.Pattern[bytes]:
    # The first line that is neither blank nor indented as far as the block: the next key.
    return re.compile(rb"^ {0,%d}[^ \n]" % (indent - 1), re.MULTILINE)


_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _find(reader: PieceReader, piece_start: int, piece_end: int) -> tuple[_Region, bytes, bytes] | None:
    # The body's region, and the response piece's text before and after it (the body left out).
    head = reader.read(piece_start, min(piece_end, piece_start + 64 * 1024))
    found = _BODY_START.search(head)
    if found is None:
        return None
    binary = found.group(1) is not None
    before_digit, chomp_sign, after_digit = found.group(2), found.group(3), found.group(4)
    if before_digit and after_digit:
        return None
    digit = before_digit or after_digit
    chomp = {b"+": "keep", b"-": "strip", b"": "clip"}[chomp_sign]
    start = piece_start + found.end()
    if digit:
        indent = _KEY_INDENT + int(digit)
    else:
        # Without a digit, the first line sets the indentation; YAML would let leading blank
        # lines set it too, which llmcassette never writes (it then writes the digit). A tab
        # after those spaces is refused by libyaml, the loader of the file: left to it.
        first = reader.read(start, min(piece_end, start + 4096))
        indent = len(first) - len(first.lstrip(b" "))
        if indent <= _KEY_INDENT or first[indent : indent + 1] in (b"\n", b"", b"\t"):
            return None
    strip, ends = _strip_indent(indent), _block_end(indent)
    length = newlines = trailing = crc = 0
    base64_chars = 0
    padded = False
    position = start
    for block in _lines(reader, start, piece_end):
        stop = ends.search(block)
        if stop is not None:
            block = block[: stop.start()]
        if block and (not block.endswith(b"\n") or _NOT_PLAIN.search(block) or not _utf8(block)):
            return None
        crc = zlib.crc32(block, crc)
        position += len(block)
        text = strip.sub(b"", block)
        if binary:
            letters = text.replace(b"\n", b"")
            if padded or letters.translate(None, _BASE64_ALPHABET).strip(b"="):
                return None
            unpadded = letters.rstrip(b"=")
            if b"=" in unpadded or len(letters) - len(unpadded) > 2:
                return None  # padding only ends the text
            padded = len(unpadded) != len(letters)
            base64_chars += len(letters)
            length += len(unpadded)
        else:
            length += len(text)
            newlines += text.count(b"\n")
            kept = text.rstrip(b"\n")
            trailing = trailing + len(text) if not kept else len(text) - len(kept)
        if stop is not None:
            break
    if binary:
        if base64_chars % 4:
            return None  # YAML's reader refuses it: the whole parse reports it
        # Every four letters are three bytes; each padding letter stands for one byte fewer.
        length = base64_chars // 4 * 3 - (base64_chars - length)
    elif chomp != "keep":
        if trailing == length:
            return None
        kept_breaks = 1 if chomp == "clip" else 0
        length -= trailing - kept_breaks
        newlines -= trailing - kept_breaks
    region = _Region(start, position, indent, chomp, binary, length, newlines, crc)
    value_at = found.start() + len(b"\n    body:\n      string:")
    before = head[:value_at] + b" ''\n"
    after = reader.read(position, piece_end)
    return region, before, after


def _utf8(block: bytes) -> bool:
    # YAML reads the file as UTF-8 and refuses it otherwise (a block ends at a line break, so no
    # character is cut in two).
    if block.isascii():
        return True
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _FileBody:
    """One body in the file: its blocks read and decoded on demand."""

    __slots__ = ("crlf", "index", "path", "reader", "region", "size")

    def __init__(self, reader: PieceReader, region: _Region, *, crlf: bool, path: Path, index: int) -> None:
        self.reader = reader
        self.region = region
        self.crlf = crlf
        self.path = path
        self.index = index
        #: The body's bytes as played.
        self.size = region.length + (region.newlines if crlf else 0)

    def changed(self) -> CassetteError:
        return CassetteError(
            f"llmcassette: cassette {str(self.path)!r} changed on disk while the body of interaction "
            f"{self.index} was being played from it (llmcassette reads a body of "
            f"{self.size} bytes from the file, not from memory); leave the file alone while it is in "
            "use, and enter the cassette again to replay what it holds now.",
            path=self.path,
        )

    def blocks(self) -> Iterator[bytes]:
        """The body's bytes in order, a block at a time; a whole pass checks the file's bytes."""
        region = self.region
        strip = _strip_indent(region.indent)
        remaining = self.size
        crc = 0
        carry = b""
        try:
            for block in _lines(self.reader, region.start, region.end):
                crc = zlib.crc32(block, crc)
                text = strip.sub(b"", block)
                if region.binary:
                    letters = carry + text.replace(b"\n", b"")
                    cut = len(letters) - len(letters) % 4
                    carry = letters[cut:]
                    text = binascii.a2b_base64(letters[:cut])
                elif self.crlf:
                    text = text.replace(b"\n", b"\r\n")
                if len(text) > remaining:
                    text = text[:remaining]
                remaining -= len(text)
                if text:
                    yield text
        except (_Changed, binascii.Error):
            raise self.changed() from None
        except CassetteError as exc:
            raise self.changed() from exc
        if remaining or carry or crc != region.crc:
            raise self.changed()


class FileChunks(Sequence[bytes]):
    """
    A body's recorded chunks, read from the cassette file as they are asked for: in order at the
    cost of one pass, out of order by a pass from the start. Slices are views of the same file.
    """

    __slots__ = ("_body", "_cursor", "_first", "_lengths", "_stop")

    def __init__(
        self, body: _FileBody, lengths: Sequence[int], first: int = 0, stop: int | None = None
    ) -> None:
        self._body = body
        self._lengths = lengths
        self._first = first
        self._stop = len(lengths) if stop is None else stop
        self._cursor: tuple[int, Iterator[bytes]] | None = None

    @property
    def size(self) -> int:
        """The bytes of the chunks in this view."""
        return sum(self._lengths[self._first : self._stop])

    def __len__(self) -> int:
        return self._stop - self._first

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks(self._first)

    def _chunks(self, first: int) -> Iterator[bytes]:
        lengths = self._lengths
        stop = self._stop
        if first >= stop:
            return
        blocks = self._body.blocks()
        buffer = b""
        at = 0
        for index in range(stop):
            length = lengths[index]
            while len(buffer) - at < length:
                block = next(blocks, None)
                if block is None:
                    raise self._body.changed()
                buffer = buffer[at:] + block
                at = 0
            if index >= first:
                yield buffer[at : at + length]
            at += length
        if stop == len(lengths):
            for _ in blocks:  # the end of the pass checks the bytes read
                raise self._body.changed()

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> FileChunks: ...

    def __getitem__(self, index: int | slice) -> bytes | FileChunks:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                # Not a view: the chunks it names, read in one pass.
                wanted = set(range(start, stop, step))
                picked = {at: chunk for at, chunk in enumerate(self) if at in wanted}
                return [picked[at] for at in range(start, stop, step)]  # type: ignore[return-value]
            return FileChunks(self._body, self._lengths, self._first + start, self._first + max(start, stop))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("chunk index out of range")
        # Replay asks for chunks in order: carry on the pass that gave the one before.
        cursor = self._cursor
        if cursor is None or cursor[0] != index:
            cursor = (index, self._chunks(self._first + index))
        chunk = next(cursor[1])
        self._cursor = (index + 1, cursor[1])
        return chunk

    def __repr__(self) -> str:
        body = self._body
        return f"<FileChunks: {len(self)} chunks of interaction {body.index} in {str(body.path)!r}>"


class _Handed:
    # What a replay stream has handed over, counted, not kept: always the first chunks of the
    # body (see ``ReplayStream``), read again from the file when the attempt log asks for them.
    __slots__ = ("_chunks", "_count")

    def __init__(self, chunks: FileChunks) -> None:
        self._chunks = chunks
        self._count = 0

    def append(self, _chunk: bytes) -> None:
        self._count += 1

    def __iadd__(self, chunks: Sequence[bytes]) -> _Handed:
        self._count += len(chunks)
        return self

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks[: self._count])


class FileReplayStream(ReplayStream):
    """A :class:`ReplayStream` of a body read from the file: nothing of it is kept once handed over."""

    def __init__(self, chunks: FileChunks, **options: Any) -> None:
        # A view of its own: the position of its pass is this stream's, not shared by every play.
        chunks = chunks[:]
        super().__init__(chunks, **options)
        self._handed = _Handed(chunks)  # type: ignore[assignment]

    def take_all(self, *, most: int | None = None) -> Sequence[bytes] | None:
        return None  # handed over as it is read, never in one piece

    def __iter__(self) -> Iterator[bytes]:
        if self._delays_ms is None and self._pacer is None:
            # The lean loop, one pass over the file; the base class then ends as recorded.
            for chunk in self._chunks[self._next :]:
                self._next += 1
                self._handing().append(chunk)
                if chunk:
                    yield chunk
        yield from super().__iter__()


def compile_from_file(
    reader: PieceReader,
    piece_start: int,
    piece_end: int,
    *,
    path: Path,
    index: int,
    method: str,
    uri: str,
    parse_piece: Callable[[bytes], dict[str, Any] | None],
) -> Compiled | None:
    """
    The response of the piece ``piece_start:piece_end`` of the file compiled with its body read
    from the file (:class:`FileChunks`), or None when its body is smaller than
    :data:`FILE_BODY_MIN_BYTES` or not in a form that streams (the caller then reads it whole).
    ``parse_piece`` reads a response piece's YAML, as a piece read whole is read.
    """
    if piece_end - piece_start < FILE_BODY_MIN_BYTES:
        return None
    found = _find(reader, piece_start, piece_end)
    if found is None:
        return None
    region, before, after = found
    if region.end - region.start < FILE_BODY_MIN_BYTES:
        return None
    item = parse_piece(before + after)
    if item is None:
        return None
    from ._models import RecordedResponse
    from ._playback import Compiled, compile_response, has_body
    from ._storage import format_validation_error

    try:
        response = RecordedResponse.model_validate(item["response"])
    except ValidationError as exc:
        raise format_validation_error(exc, path, prefix=("interactions", index, "response")) from None
    stream = response.stream
    body = response.body
    if (
        response.status is None
        or not has_body(method, response.status.code)  # (played without it: `compile_parts`)
        or body is None
        or body.string != ""
        or "parsed_body" in response.model_fields_set
        or response.eventstream is not None
        or stream is None
        or not stream.chunks
        or min(stream.chunks) <= 0
        or (region.binary and body.line_endings is not None)
        or any(name.lower() == "content-encoding" for name in response.headers)
    ):
        return None
    file_body = _FileBody(reader, region, crlf=body.line_endings == "crlf", path=path, index=index)
    lengths = stream.chunks
    if sum(lengths) != file_body.size:
        raise CassetteFormatError(
            f"llmcassette: cassette {str(path)!r} is not valid: interaction {index}, field "
            f"`response.stream.chunks`: the chunk lengths add up to {sum(lengths)} bytes but the body "
            f"has {file_body.size}. If you edited the body, delete `stream.chunks` (replay then sends "
            "one chunk per event) or record it again.",
            path=path,
            interaction=index,
            field="response.stream.chunks",
        )
    # Everything but the body compiled as usual; then the body's chunks and length put in.
    shape = compile_response(
        response.model_copy(update={"stream": stream.model_copy(update={"chunks": None})}),
        method=method,
        uri=uri,
        path=path,
        index=index,
    )
    assert shape.playback is not None
    headers = tuple(
        (name, str(file_body.size) if name.lower() == "content-length" else value)
        for name, value in shape.playback.headers
    )
    # Packed: a 2 MB stream of 100-byte events has 20,000 of each, 600 KB as Python numbers.
    chunks = FileChunks(file_body, array("q", lengths))
    playback = replace(shape.playback, chunks=chunks, headers=headers)  # type: ignore[arg-type]
    offsets = stream.offsets_ms
    packed = array("d", offsets) if offsets is not None and len(offsets) == len(lengths) else None
    return Compiled(playback=playback, offsets_ms=packed, elapsed_ms=response.elapsed_ms)


def replay_stream_for(chunks: Sequence[bytes]) -> type[ReplayStream]:
    """The replay stream class for ``chunks``: :class:`FileReplayStream` for a body in the file."""
    return FileReplayStream if isinstance(chunks, FileChunks) else ReplayStream
