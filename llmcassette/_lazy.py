"""
Loading a cassette for replay: each part of the file read at most once, and only when needed.

Matching needs every request up front, but a test usually plays a few of a cassette's responses,
and responses are most of the file (structured JSON bodies are many YAML nodes). Files in the
block layout that llmcassette and vcrpy write (``interactions:`` followed by items that start with
``- `` at the first column, each with a ``  response:`` key) are cut into per-interaction pieces;
the requests are parsed at once and each response on first use, straight into what replay plays
(:class:`~llmcassette._playback.Compiled`). Any file that does not fit that layout, or a piece that
does not parse on its own (an alias to an anchor in another piece), is parsed whole, as
:func:`llmcassette.load_cassette` does.

What was read is remembered in the replay cache (:mod:`llmcassette._cache`) when the cassette is
left, under a hash of the file's bytes: the next run that enters the same bytes reads no YAML for
what an earlier run already read. Every value in the cache came out of the same parse and the same
validation as a file read afresh.

Files larger than :data:`~llmcassette._cache.MAX_CACHED_FILE_BYTES` are not cached and not held in
memory: they are cut into pieces by a scan in blocks (:mod:`llmcassette._file_pieces`), and their
pieces are read from the file when they are used, so a replay holds the bodies it has played, not
the file; a large body of theirs is played from the file too (:mod:`llmcassette._file_bodies`).
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import secrets
import threading
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from ._cache import MAX_CACHED_FILE_BYTES, FoundEntry, entry_key, find_entry, write_entry
from ._compiled import speedups
from ._exceptions import CassetteError
from ._exchange import Ending, Playback
from ._file_bodies import compile_from_file
from ._file_pieces import FileView, list_start, other_line_breaks, split_file
from ._layout import (
    NUMBER_BYTES,
    JsonText,
    Unrecognised,
    load_cassette_yaml,
    plain_characters,
    read_layout,
    read_literal,
)
from ._models import (
    CassetteDocument,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    StreamError,
    message_content,
)
from ._plain import (
    BodyBytes,
    TextLengths,
    TextTimes,
    compile_plain,
    plain_lengths,
    plain_request_line,
    plain_times,
)
from ._playback import Compiled, compile_response
from ._storage import (
    check_complete,
    completeness_checked,
    format_validation_error,
    parse_cassette,
    read_cassette_bytes,
)
from ._yaml import YAMLError, load_yaml

__all__ = ["NOT_PARSED", "LazyCassette", "RecordedAnswer", "RequestLine", "collector_paused", "load_lazy"]

#: What :meth:`LazyCassette.parsed_request_body` gives for a request without a parsed body at hand.
NOT_PARSED: Any = object()

#: What matching needs of a recorded request: method, URL and body bytes.
RequestLine = tuple[str, str, bytes]

#: A recorded response that ends cleanly, as :meth:`LazyCassette.cached_answer` gives it:
#: status, headers, chunks and reason phrase.
RecordedAnswer = tuple[int, tuple[tuple[str, str], ...], tuple[bytes, ...], str]

_ITEMS_START = b"interactions:\n- "
_RESPONSE_KEY = b"\n  response:"
# A line break followed by a line that starts at the first column with text: the few such lines
# (items, keys, comments) are told apart in Python. A regex that told them apart itself cost a
# third more: it is tried at every line break, and a stream's body is two lines per event.
_FIRST_COLUMN = re.compile(rb"\n[^ \n]")
_ITEM_START = b"\n- "


class _Pieces:
    """Where each interaction's request and response text lies in the file."""

    def __init__(self, header: bytes, spans: list[tuple[int, int, int]]) -> None:
        self.header = header
        #: Per interaction: where its item starts, where its response starts, where it ends.
        self.spans = spans


class _FileReader:
    # A large file is read piece by piece through a descriptor opened when it was loaded: a
    # cassette written again meanwhile (a rename over it) leaves this one's bytes readable.
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDONLY)
        self._state = _state(os.fstat(self._fd))
        self.size = self._state[0]
        # A body streamed from the file in one thread may be read while another thread exits the
        # cassette and closes the descriptor: without the lock, the read would use a closed
        # descriptor, or one the system has since given to another file.
        self._lock = threading.Lock()

    def read(self, start: int, end: int) -> bytes:
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY)
            if _state(os.fstat(self._fd)) != self._state:
                raise CassetteError(
                    f"llmcassette: cassette {str(self.path)!r} changed in place while it was in use; "
                    "enter it again to replay what it holds now.",
                    path=self.path,
                )
            return os.pread(self._fd, end - start, start)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __del__(self) -> None:
        self.close()


def _state(info: os.stat_result) -> tuple[int, int]:
    # What tells an edit in place: the size, and the time of the last change.
    return info.st_size, info.st_mtime_ns


class LazyCassette:
    """A cassette's interactions: requests parsed at once, responses on first use."""

    def __init__(
        self,
        path: Path,
        *,
        version: int,
        extras: dict[str, Any],
        lines: list[RequestLine],
        requests: list[RecordedRequest | dict[str, Any] | None],
        item_extras: list[dict[str, Any]],
        raw: bytes | None = None,
        reader: _FileReader | None = None,
        pieces: _Pieces | None = None,
        key: str | None = None,
    ) -> None:
        self.path = path
        self.version = version
        self.extras = extras
        self._lines = lines
        self._requests = requests
        self._item_extras = item_extras
        self._raw = raw
        # Entered from the replay cache: the entry, whose copy of the file is read as its bytes
        # when something first asks for them (see `_bytes`).
        self._found: FoundEntry | None = None
        self._reader = reader
        self._pieces = pieces
        count = len(lines)
        self._responses: list[RecordedResponse | None] = [None] * count
        self._compiled: list[Compiled | None] = [None] * count
        # Compiled responses as the cache holds them, made ready to play on first use.
        self._cached: list[tuple[Any, ...] | None] = [None] * count
        # The cache's view, for what this run reads and the next may reuse (``key`` None: none).
        self._key = key
        # What the playlist keeps of the requests, by matcher configuration (see `remember`).
        self._playlists: dict[str, Any] = {}
        self._learned = False
        # The request bodies the loader parsed as JSON, by id (held, so that no other value
        # takes an id meanwhile): known plain without a walk (see `read_layout`).
        self._made_json: dict[int, Any] = {}
        # Whether the file held in memory was found to hold only characters the layout reader
        # takes (`plain_characters`): checked once for the whole file, not for each piece.
        self._checked: bool | None = None

    @classmethod
    def from_document(cls, path: Path, document: CassetteDocument) -> LazyCassette:
        """Wrap a fully parsed document."""
        interactions = document.interactions
        lazy = cls(
            path,
            version=document.version,
            extras=dict(document.model_extra or {}),
            lines=[
                (
                    i.request.method,
                    i.request.uri,
                    message_content(i.request, path=path, index=n, side="request"),
                )
                for n, i in enumerate(interactions)
            ],
            requests=[i.request for i in interactions],
            item_extras=[dict(i.model_extra or {}) for i in interactions],
        )
        lazy._responses = [i.response for i in interactions]
        return lazy

    def __len__(self) -> int:
        return len(self._lines)

    def line(self, index: int) -> RequestLine:
        """Method, URL and body bytes of the request of interaction ``index``."""
        return self._lines[index]

    def lines(self) -> list[RequestLine]:
        """Method, URL and body bytes of every request, in order."""
        return list(self._lines)

    def parsed_request_body(self, index: int) -> Any:
        """
        The ``parsed_body`` of interaction ``index``'s request as it was read, or
        :data:`NOT_PARSED` when there is none at hand (a body stored as text, or loaded from the
        cache, which keeps match keys instead): matching reads it rather than parsing the bytes
        made from it again.
        """
        request = self._requests[index]
        if isinstance(request, dict):
            _body_parsed(request, self._made_json)
            return request["parsed_body"] if "parsed_body" in request else NOT_PARSED
        if request is None or "parsed_body" not in request.model_fields_set:
            return NOT_PARSED
        return request.parsed_body

    def made_json(self, value: Any) -> bool:
        """
        True when ``value`` (from :meth:`parsed_request_body`) is a body the loader parsed as
        JSON, of JSON's own types and nested no deeper than the models take.
        """
        return self._made_json.get(id(value)) is value

    def request(self, index: int) -> RecordedRequest:
        """The request of interaction ``index``."""
        request = self._requests[index]
        if request is None:
            # Loaded from the cache, which keeps what matching needs: the models come from the
            # file's own text (the very bytes the cache was made from), read now.
            self._read_requests()
            request = self._requests[index]
            assert request is not None
        if isinstance(request, dict):
            # Data the loader found plain: the model takes it as it is.
            _body_parsed(request, self._made_json)
            request = self._requests[index] = RecordedRequest.model_validate(request)
        return request

    def response(self, index: int) -> RecordedResponse:
        """The response of interaction ``index``, parsed and validated on first use."""
        response = self._responses[index]
        if response is None:
            response = self._read_response(index)
        return response

    def cached_answer(self, index: int) -> RecordedAnswer | None:
        """
        Status, headers, chunks and reason phrase of interaction ``index``'s response as the
        replay cache holds it, when it is a recording that ends cleanly and was not compiled in
        this run; else None (then :meth:`compiled` gives it). A response played once, as most
        are, is played from these, without the objects a compiled one is made of.
        """
        cached = self._cached[index]
        if cached is None or len(cached) != 9 or cached[3] != _COMPLETE or type(cached[2]) is not tuple:
            return None  # (the shape `_compiled_from` checks, to give None where it would refuse)
        return (cached[0], cached[1], cached[2], cached[6])

    def cached_playback(self, index: int) -> Playback | None:
        """
        :meth:`cached_answer` as the :class:`Playback` it would compile to, without the compiled
        response around it (for a door that looks at the playback before it plays it).
        """
        cached = self._cached[index]
        if cached is None or len(cached) != 9 or cached[3] != _COMPLETE or type(cached[2]) is not tuple:
            return None
        status, headers, chunks, _, error_type, error_message, reason, _, _ = cached
        return Playback.recorded(status, headers, chunks, Ending.COMPLETE, error_type, error_message, reason)

    def compiled(self, index: int) -> Compiled:
        """Interaction ``index``'s response ready to play, compiled once."""
        compiled = self._compiled[index]
        cached = self._cached[index]
        if compiled is None and cached is not None:
            self._cached[index] = None
            try:
                compiled = self._compiled[index] = _compiled_from(cached)
            except (ValueError, TypeError):
                compiled = None  # an entry of an unexpected shape: the file is read instead
        if compiled is None:
            method, uri = self._lines[index][:2]
            response = self._responses[index]
            if response is None and self._reader is not None:
                compiled = self._compiled_from_file(index)
            if compiled is None and response is None:
                # Compiled from the file's data when it is plain, else through the model; parsed
                # for this use only: a large cassette keeps what it plays, not its text too.
                made: list[Any] = []  # its JSON bodies, known plain (see `read_layout`)
                item = self._response_item(index, made)
                made_ids = {id(value) for value in made}
                compiled = compile_plain(
                    item, method=method, uri=uri, path=self.path, index=index, made_ids=made_ids
                )
                if compiled is None:
                    response = self._read_response(index, keep=False, item=item)
            if compiled is None:
                assert response is not None
                compiled = compile_response(response, method=method, uri=uri, path=self.path, index=index)
            self._compiled[index] = compiled
            self._learned = True
        return compiled

    def _compiled_from_file(self, index: int) -> Compiled | None:
        # A large body of a large file is played from the file (see `_file_bodies`).
        pieces = self._find_pieces()
        if pieces is None or self._reader is None:
            return None
        _, start, end = pieces.spans[index]
        return compile_from_file(
            self._reader,
            start,
            end,
            path=self.path,
            index=index,
            method=self._lines[index][0],
            uri=self._lines[index][1],
            parse_piece=_parse_response_piece,
        )

    def remembered(self, signature: str) -> Any:
        """What :meth:`remember` kept under ``signature``, in this run or an earlier one; or None."""
        return self._playlists.get(signature)

    def remember(self, signature: str, value: Any) -> None:
        """
        Keep ``value`` (plain data: what the playlist made of the requests under one matcher
        configuration, named by ``signature``) for the next run that enters the same file.
        """
        self._playlists[signature] = value
        self._learned = True

    def interaction(self, index: int) -> Interaction:
        """Interaction ``index``, whole."""
        try:
            return Interaction(
                request=self.request(index), response=self.response(index), **self._item_extras[index]
            )
        except ValidationError as exc:  # a key beside `request` and `response` (`websocket`)
            raise format_validation_error(exc, self.path, prefix=("interactions", index)) from None

    def interactions(self) -> list[Interaction]:
        """Every interaction, whole."""
        return [self.interaction(index) for index in range(len(self))]

    # -- reading a response piece --------------------------------------------------------------

    def _response_item(self, index: int, made_json: list[Any] | None = None) -> dict[str, Any] | None:
        # The data of interaction `index`'s response piece, or None when it has to be read with
        # the whole file.
        pieces = self._find_pieces()
        if pieces is None:
            return None
        _, response_start, end = pieces.spans[index]
        if self._checked is None:
            self._checked = self._raw is not None and plain_characters(self._raw)
        raw = self._bytes()
        if raw is not None:
            # (the piece read where it lies in the file's bytes: a slice of it was one more copy
            # of a 25 KB stream, before the copy its lists are cut out of)
            return _parse_response_piece(
                raw,
                lists_as_text=True,
                made_json=made_json,
                checked=self._checked,
                start=response_start,
                end=end,
            )
        piece = self._read(response_start, end)
        return _parse_response_piece(piece, lists_as_text=True, made_json=made_json, checked=self._checked)

    def _read_response(self, index: int, *, keep: bool = True, item: Any = NOT_PARSED) -> RecordedResponse:
        if item is NOT_PARSED:
            item = self._response_item(index)
        if item is None:
            return self._from_whole_file(index)
        response = item["response"]
        stream = response.get("stream") if isinstance(response, dict) else None
        if isinstance(stream, dict):
            for name, listed in stream.items():
                if isinstance(listed, TextTimes | TextLengths):
                    stream[name] = listed.values()
        body = response.get("body") if isinstance(response, dict) else None
        if isinstance(body, dict) and type(body.get("string")) is BodyBytes:
            body["string"] = body["string"].text()  # (the model takes the text the file holds)
        if isinstance(response, dict) and type(response.get("parsed_body")) is JsonText:
            response["parsed_body"] = response["parsed_body"].value()
        try:
            response = RecordedResponse.model_validate(item["response"])
        except ValidationError as exc:
            raise format_validation_error(
                exc, self.path, prefix=("interactions", index, "response")
            ) from None
        self._item_extras[index].update({k: v for k, v in item.items() if k != "response"})
        if keep:
            self._responses[index] = response
        return response

    def _bytes(self) -> bytes | None:
        # The file's bytes, held; or, for a cassette entered from the cache, copied from its
        # entry on first use (a warm replay that needs no model never copies them).
        if self._raw is None and self._found is not None:
            self._raw = self._found.source()
            self._found = None  # (its map, if it holds one, let go with it)
        return self._raw

    def _read_requests(self) -> None:
        pieces = self._find_pieces()
        raw = self._bytes()
        assert raw is not None
        lazy = _from_pieces(self.path, raw, pieces, key=None, reader=None) if pieces else None
        if lazy is None:
            document = parse_cassette(raw, path=self.path)
            self._requests = [i.request for i in document.interactions]
        else:
            self._requests = lazy._requests

    def _find_pieces(self) -> _Pieces | None:
        if self._pieces is None and (raw := self._bytes()) is not None:
            # Loaded from the cache with a response it did not hold: cut the file now.
            self._pieces = _split(raw)
        return self._pieces

    def _read(self, start: int, end: int) -> bytes:
        raw = self._bytes()
        if raw is not None:
            return raw[start:end]
        assert self._reader is not None
        return self._reader.read(start, end)

    def _from_whole_file(self, index: int) -> RecordedResponse:
        raw = self._bytes()
        if raw is None:
            raw = read_cassette_bytes(self.path)
        document = parse_cassette(raw, path=self.path)
        for position, interaction in enumerate(document.interactions):
            if self._responses[position] is None:
                self._responses[position] = interaction.response
        response = self._responses[index]
        assert response is not None
        return response

    # -- the cache -----------------------------------------------------------------------------

    def close(self) -> None:
        """Remember what this run read, for the next one, and let go of the file."""
        if self._reader is not None:
            self._reader.close()
        if self._key is None or not self._learned:
            return
        self._learned = False
        entry = self._entry()
        raw = self._bytes()
        if entry is not None and raw is not None:  # (a file with a key is held whole)
            write_entry(self._key, entry, raw)

    def _entry(self) -> Any:
        # Kept as columns, each a list marshal gives back as it is used: the request lines (a
        # tuple each), the items' extras and their compiled responses (entering a cassette from
        # the cache builds no list or tuple of its own for them).
        played = _shared_headers(
            [
                _compiled_data(compiled) if compiled is not None else cached
                for compiled, cached in zip(self._compiled, self._cached, strict=True)
            ]
        )
        return (self.version, self.extras, self._lines, self._item_extras, played, self._playlists)

    @classmethod
    def from_entry(cls, path: Path, found: FoundEntry) -> LazyCassette:
        """A cassette as an earlier run left it in the cache, from the entry found for its file."""
        version, extras, lines, item_extras, played, playlists = found.value
        if not (type(lines) is list and type(item_extras) is list and type(played) is list):
            raise TypeError("llmcassette: a replay-cache entry of an unexpected shape")
        if not len(lines) == len(item_extras) == len(played):
            raise ValueError("llmcassette: a replay-cache entry of an unexpected shape")
        lazy = cls(
            path,
            version=version,
            extras=extras,
            lines=lines,
            requests=[None] * len(lines),
            item_extras=item_extras,
            key=found.key,
        )
        lazy._found = found
        lazy._cached = played
        lazy._playlists = dict(playlists)  # checked by the playlist when it reads it
        return lazy


# A stream record as llmcassette writes it: chunk lengths and offsets as flow lists of numbers,
# hundreds of YAML scalars per stream. The layout reader reads them at once; in a piece it
# declines, they are read here with one expression each when every item is a plain decimal
# (anything else is left to YAML, which reads the whole list).
_STREAM_KEY = b"\n    stream:\n"
_DECIMAL = re.compile(rb"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?\Z")


def _parse_response_piece(
    text: bytes,
    *,
    lists_as_text: bool = False,
    made_json: list[Any] | None = None,
    checked: bool = False,
    start: int = 0,
    end: int | None = None,
) -> dict[str, Any] | None:
    # The item of a response piece (it starts "  response:"), or None when it does not parse on
    # its own. The stream's number lists are read apart when they are plain (see below), and only
    # used when the reader found the emptied lists exactly where they were cut out. With
    # `lists_as_text`, plain offsets and chunk lengths are left as their text (`_plain.TextTimes`,
    # `_plain.TextLengths`), and so are JSON bodies (`_layout.JsonText`), which only
    # `compile_plain` and `_read_response` take; so is a body cut out with the lists
    # (`_plain.BodyBytes`, see `_lists_apart`), from a file whose characters were `checked`.
    # `made_json` and `checked` as for `read_layout`. The piece is `text[start:end]`, sliced only
    # when it is read with its lists.
    end = len(text) if end is None else end
    short, lists, body = _lists_apart(text, start, end, body=checked) if lists_as_text else (None, {}, None)
    whole = text if not start and end == len(text) else None  # (the piece, once sliced)
    for piece in (short, None) if short is not None else (None,):
        if piece is None and whole is None:
            whole = text[start:end]
        try:
            parsed = read_layout(
                piece if piece is not None else b"- " + cast(bytes, whole)[2:],
                made_json=made_json,
                checked=checked,
                json_as_text=lists_as_text,
            )
        except Unrecognised:
            break
        item = parsed[0] if isinstance(parsed, list) and len(parsed) == 1 else None
        if not isinstance(item, dict) or "response" not in item:
            return None
        if piece is None:
            return item
        response = item["response"]
        stream = response.get("stream") if isinstance(response, dict) else None
        # With the response the item's only key, the line found last is its `stream` key (the
        # reader takes such a line nowhere else, and a key once), so the lists cut out are its own.
        if len(item) == 1 and isinstance(stream, dict) and all(stream.get(name) == [] for name in lists):
            if body is not None:
                # The body cut out was the response's: its one key's value is the token put in
                # its place (which no file holds: it is drawn anew by each process).
                if response.get("body") != {"string": _BODY_TOKEN}:
                    continue  # (read whole)
                response["body"]["string"] = BodyBytes(body)
            # Offsets read when a paced replay asks for them (see `_plain.TextTimes`), lengths
            # when the body is cut (see `_plain.TextLengths`).
            stream.update(lists)
            return item
    text = text[start:end] if whole is None else whole
    short, numbers = _stream_numbers(text)
    for piece in (short, text) if numbers else (text,):
        try:
            item = load_yaml(b"- " + piece[2:])[0]
        except (YAMLError, IndexError, KeyError, TypeError):
            return None
        if not isinstance(item, dict) or "response" not in item:
            return None
        if piece is text:
            return item
        response = item["response"]
        stream = response.get("stream") if isinstance(response, dict) else None
        if isinstance(stream, dict) and all(stream.get(name) == [] for name in numbers):
            stream.update(numbers)
            return item
    return None


def _lists_apart(
    text: bytes, begin: int, end: int, *, body: bool = False
) -> tuple[bytes | None, dict[str, TextTimes | TextLengths], bytes | None]:
    # The piece `text[begin:end]` as an item ("- response:") with its stream's plain number lists
    # emptied, and their text by key (plain times, plain lengths); else None and no list. The
    # stream comes last in a response, after its body: the key is looked for from the end, and
    # the caller checks it was the response's. With `body`, a body written as a literal block is
    # cut out too (see `_body_apart`), its value the token `_BODY_TOKEN`, and its content given
    # (else None), which the caller checks was the response's.
    at = text.rfind(_STREAM_KEY, begin, end)
    if at < 0:
        return None, {}, None
    position = at + len(_STREAM_KEY)
    lists: dict[str, TextTimes | TextLengths] = {}
    cuts: list[int] = []
    while (found := _number_list(text, position, end, checked=False)) is not None:
        key, start, close = found
        items = text[start:close]
        # A plain list holds only the list's own characters (NUMBER_BYTES), so only a list that
        # is not is checked for others, with a deletion that cost a third of the lists' reading
        # (an `s`, which a lengths' format holds and keeps, is looked for apart).
        if key is _OFFSETS_LIST:
            listed: TextTimes | TextLengths | None = plain_times(items)
        else:
            listed = None if b"s" in items else plain_lengths(items)
        if listed is not None:
            lists[_NUMBER_KEYS[key]] = listed
            cuts += (start, close)
        elif not _only_number_bytes(items):
            break  # a character other than the list's own before its `]`: no list of numbers
        position = close + 2
    if not lists:
        return None, {}, None
    with memoryview(text) as view:  # one copy of the piece, not one per part
        kept: list[bytes | memoryview] = [b"- "]
        content = None
        first = begin + 2
        cut_body = _body_apart(text, begin, at, end) if body else None
        if cut_body is not None:
            bar, block_end, content = cut_body
            kept += (view[first:bar], _BODY_TOKEN_LINE)
            first = block_end
        bounds = [first, *cuts, end]  # what is kept: from each list's end to the next one's start
        kept += map(view.__getitem__, map(slice, bounds[::2], bounds[1::2]))
        short = b"".join(kept)
    return short, lists, content


# A response's body as the writer writes a text that YAML reads back the same from a literal
# block, as a stream's is: its only key.
_BODY_BLOCK = b"\n    body:\n      string: |"
_BODY_COLUMN = 6  # (the column of `string:`, which a block's lines are deeper than)
# What a body cut out is replaced with: a text no file holds, drawn anew in each process, as a
# literal block of one line (a value that goes on past its line ends the run of lines the reader
# keeps, as the body did: see `_layout._runs`; a plain scalar in its place made the run go on to
# the lists, and no run was kept).
_BODY_TOKEN = f"llmcassette-body-{secrets.token_hex(8)}"
_BODY_TOKEN_LINE = b"|-\n" + b" " * (_BODY_COLUMN + 2) + _BODY_TOKEN.encode() + b"\n"


def _body_apart(text: bytes, begin: int, stop: int, end: int) -> tuple[int, int, bytes] | None:
    # The body in the piece `text[begin:end]` (before `stop`, where its stream is) when it is a
    # literal block the layout reader reads (see `_layout.read_literal`) whose content is UTF-8: where
    # its `|` is, where the block ends, and its content as bytes, dedented and chomped as the
    # reader does to its text, without decoding the text (a 25 KB stream's body was decoded,
    # dedented and encoded again); else None. The file's characters were checked (`checked`).
    at = text.find(_BODY_BLOCK, begin, stop)
    if at < 0:
        return None
    bar = at + len(_BODY_BLOCK) - 1
    header_end = text.find(b"\n", bar, stop)
    header = text[bar:header_end]
    if header_end < 0 or header not in (b"|", b"|-", b"|+"):
        return None
    try:
        # (the line break at `stop` starts the stream's key, so the block's first line ends by it)
        content, block_end = read_literal(text, header_end + 1, header, _BODY_COLUMN, end)
    except Unrecognised:
        return None  # declined by the reader, which says so
    fast = speedups()
    # (the C extension's check, where it is built: `bytes.isascii` in vectors, `tests/test_speedups.py`)
    if not (content.isascii() if fast is None else fast.ascii(content)):
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return None  # (the reader declines the file)
    return bar, block_end, content


_CHUNKS_LIST = b"      chunks: ["
_OFFSETS_LIST = b"      offsets_ms: ["
_NUMBER_KEYS = {_CHUNKS_LIST: "chunks", _OFFSETS_LIST: "offsets_ms"}


def _number_list(
    text: bytes, position: int, end: int | None = None, *, checked: bool = True
) -> tuple[bytes, int, int] | None:
    # A stream's list of chunk lengths or offsets at `position` (in `text[:end]`), in flow style
    # on lines of its own (`      chunks: [1, 2,\n        3]\n`): the key it starts with, and where
    # its items start and end (at the `]`, which a line break follows); None when there is none.
    # The items' characters are checked with one deletion in C: a regex's class took a call per
    # character (200 chunk lengths and offsets: 2.6 KB a stream, matched twice); unless not
    # `checked`, when the caller checks them.
    end = len(text) if end is None else end
    for key in (_CHUNKS_LIST, _OFFSETS_LIST):
        if text.startswith(key, position, end):
            start = position + len(key)
            close = text.find(b"]", start, end)
            if close < 0 or close + 1 >= end or not text.startswith(b"\n", close + 1):
                return None
            if checked and not _only_number_bytes(text[start:close]):
                return None  # a character other than the list's own before its `]`
            return key, start, close
    return None


def _only_number_bytes(items: bytes) -> bool:
    return not items.translate(None, NUMBER_BYTES)


def _stream_numbers(text: bytes) -> tuple[bytes, dict[str, list[Any]]]:
    # The piece with its stream's number lists emptied, and those lists; the caller checks that
    # YAML found empty lists exactly there.
    at = text.find(_STREAM_KEY)
    if at < 0 or text.find(_STREAM_KEY, at + 1) >= 0:
        return text, {}
    position = at + len(_STREAM_KEY)
    found: dict[str, list[Any]] = {}
    cuts: list[tuple[int, int]] = []
    while (listed := _number_list(text, position)) is not None:
        key, start, close = listed
        values: list[Any] = []
        for word in text[start:close].split(b","):
            word = word.strip(b" \n")
            decimal = _DECIMAL.match(word)
            if decimal is None:
                return text, {}
            values.append(float(word) if decimal.group(1) else int(word))
        found[_NUMBER_KEYS[key]] = values
        cuts.append((start, close))
        position = close + 2
    if not found:
        return text, {}
    pieces = []
    last = 0
    for start, stop in cuts:
        pieces.append(text[last:start])
        last = stop
    pieces.append(text[last:])
    return b"".join(pieces), found


#: The first item of a cache entry for a connection that failed before any answer (a status never is).
_FAILED = "failed"


def _compiled_data(compiled: Compiled) -> tuple[Any, ...]:
    # The chunks as they are played, and the offsets packed as an array: loading an entry makes
    # each chunk in C, where cutting a body at its lengths on first play took a Python step per
    # chunk (26 µs of a 200-event stream against 7 µs).
    p = compiled.playback
    if p is None:
        # A connection that failed before any answer: only its error is played.
        assert compiled.failure is not None
        return (_FAILED, compiled.failure.type, compiled.failure.message)
    offsets: bytes | str | None = None
    if isinstance(compiled.offsets_ms, TextTimes):
        offsets = compiled.offsets_ms.text.decode("ascii")  # left as text, as it was read
    elif compiled.offsets_ms is not None:
        offsets = array("d", compiled.offsets_ms).tobytes()
    return (
        p.status,
        p.headers,
        tuple(p.chunks),
        p.ending.value,
        p.error_type,
        p.error_message,
        p.reason,
        offsets,
        compiled.elapsed_ms,
    )


def _shared_headers(played: list[Any]) -> list[Any]:
    # Equal header pairs, and equal lists of them, as one tuple each: marshal writes an object
    # it meets again as a reference to the first, so entering the cassette makes, and leaving it
    # frees, each once (400 JSON answers with the same headers: 800 tuples fewer of 3,600).
    pairs: dict[Any, Any] = {}
    lists: dict[Any, Any] = {}
    shared = []
    for data in played:
        if data is not None and len(data) == 9 and type(data[1]) is tuple:
            try:
                headers = tuple([pairs.setdefault(pair, pair) for pair in data[1]])
                data = (data[0], lists.setdefault(headers, headers), *data[2:])
            except TypeError:  # (an entry's data of an unexpected shape: left as it is)
                pass
        shared.append(data)
    return shared


_ENDINGS = {ending.value: ending for ending in Ending}
_COMPLETE = Ending.COMPLETE.value


def _compiled_from(data: tuple[Any, ...]) -> Compiled:
    if data[0] == _FAILED:
        _, error_type, message = data
        return Compiled(
            playback=None,
            offsets_ms=None,
            elapsed_ms=None,
            failure=StreamError(type=error_type, message=message),
        )
    status, headers, chunks, ending, error_type, error_message, reason, offsets, elapsed = data
    if type(chunks) is not tuple:
        raise ValueError("an entry whose chunks are not a tuple")
    playback = Playback.recorded(
        status, headers, chunks, _ENDINGS.get(ending) or Ending(ending), error_type, error_message, reason
    )
    # Left packed, or as text: only a paced replay reads the offsets, by index.
    times: Sequence[float] | None = None
    if type(offsets) is str:
        times = TextTimes(offsets.encode("ascii"))  # checked before it was stored
    elif offsets is not None:
        times = array("d", offsets)
    return Compiled(playback=playback, offsets_ms=times, elapsed_ms=elapsed)


def load_lazy(path: Path) -> LazyCassette:
    """Load ``path`` for replay; see the module docstring for what is deferred and remembered."""
    with collector_paused():
        return _load_lazy(path)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """
    The cyclic garbage collector held off meanwhile: loading builds thousands of small dicts and
    lists, trees without a cycle, and each batch of them set off a collection that walked every
    object the process holds (6% of loading 5000 requests). Reference counting still frees what
    is dropped; a collection runs when it is let go, if one is due.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _load_lazy(path: Path) -> LazyCassette:
    scanned = _load_large(path)
    if scanned is not None:
        return scanned
    # A file entered from its entry is not read into memory, nor checked again for being cut
    # short: its entry was made from bytes that passed that check, or, for a name the check
    # skips (`.json`), is named apart (see `entry_key`).
    checked = completeness_checked(path)
    found = find_entry(path, checked=checked)
    if found is not None:
        try:
            return LazyCassette.from_entry(path, found)
        except (ValueError, TypeError, IndexError, KeyError):
            pass  # an entry of an unexpected shape is ignored, and written again
    raw = read_cassette_bytes(path)
    check_complete(raw, path=path)
    key = entry_key(raw, checked=checked) if len(raw) <= MAX_CACHED_FILE_BYTES else None
    pieces = _split(raw)
    if pieces is not None:
        large = len(raw) > MAX_CACHED_FILE_BYTES
        lazy = _from_pieces(path, raw, pieces, key=key, reader=_FileReader(path) if large else None)
        if lazy is not None:
            return lazy
    return LazyCassette.from_document(path, parse_cassette(raw, path=path))


def _load_large(path: Path) -> LazyCassette | None:
    # A file too large to cache is never read whole: it is cut by a scan in blocks (see
    # `_file_pieces`), its requests read, its responses left in the file. None: read it whole.
    try:
        if path.stat().st_size <= MAX_CACHED_FILE_BYTES:
            return None
        reader = _FileReader(path)
    except OSError:
        return None  # reading it whole reports why
    try:
        found = split_file(reader, reader.size)
        if found is None:
            reader.close()
            return None
        header, spans, skeleton = found
        check_complete(skeleton, path=path)
        view = cast(bytes, FileView(reader))  # sliced as the file's bytes are
        lazy = _from_pieces(path, view, _Pieces(header, spans), key=None, reader=reader)
    except BaseException:
        reader.close()
        raise
    if lazy is None:
        reader.close()
    return lazy


def _split(raw: bytes) -> _Pieces | None:
    start = list_start(raw)
    if start is None or other_line_breaks(raw):
        return None  # (a line break of YAML's that the scan below would not see: read whole)
    first = start + len(_ITEMS_START) - 2
    if raw[first + 2 : first + 3] == b" ":
        return None  # an item whose keys start past the column after its dash: YAML refuses it
    # Every line that starts at the first column, found in one pass (a regex's scan for the line
    # break, twice as fast as finding items and the first other line apart: a 4 MB file of
    # streams took 9 ms). An item starts with "- "; top-level keys may follow the list too
    # (vcrpy writes `version: 1` last), and the first of them ends it; a comment does not. A
    # list item's own lines never start at the first column.
    starts: list[int] = []
    trailer_at = len(raw)
    fast = speedups()
    # (the C extension's scan, where it is built: memchr, where the regex's went a byte at a
    # time; the same places, `tests/test_speedups.py`)
    lines: Iterable[int] = _first_column_python(raw, first) if fast is None else fast.first_column(raw, first)
    for at in lines:
        if raw.startswith(_ITEM_START, at):
            if raw[at + 3 : at + 4] == b" ":
                return None  # (as the first item)
            starts.append(at + 1)
            continue
        follows = raw[at + 1 : at + 3]
        if follows[:1] == b"#" or follows == b"-":
            continue  # a comment, or a dash that ends the file: neither an item nor a key
        trailer_at = at + 1
        break
    header = raw[:start] + raw[trailer_at:]
    # An item starts at "- " in the first column. Its span keeps the line break before the next
    # item: its last value may be a literal block that keeps its final newlines.
    spans: list[tuple[int, int, int]] = []
    for item, end in zip([first, *starts], [*starts, trailer_at], strict=True):
        cut = raw.find(_RESPONSE_KEY, item, end)
        if cut < 0:
            return None
        spans.append((item, cut + 1, end))
    return _Pieces(header, spans)


def _first_column_python(raw: bytes, start: int) -> Iterator[int]:
    # Where each line break from `start` on is followed by a line that starts at the first column
    # with text (see `_split`).
    return (line.start() for line in _FIRST_COLUMN.finditer(raw, start))


def _body_parsed(data: dict[str, Any], made_ids: dict[int, Any]) -> None:
    # A request's body that the loader left as its text (see `_read_request_items`), parsed in
    # place when something asks for its value (the model, matching), and known plain as what the
    # loader parses is (`made_ids`: a `JsonText` was read as JSON nested no deeper than that).
    body = data.get("parsed_body")
    if type(body) is JsonText:
        value = data["parsed_body"] = body.value()
        made_ids[id(value)] = value


def _read_request_items(raw: bytes, pieces: _Pieces, text: bytes, made: list[Any], checked: bool) -> Any:
    # The layout reader reads them all at once. When it declines one (a long header value the
    # writer wrapped), each is read on its own and YAML reads only those it declines; a file it
    # declines throughout (another tool's) is read by YAML in one pass. `checked`: the file's
    # characters were (see `read_layout`). The JSON bodies the C extension reads are left as their
    # text (`JsonText`): a request's bytes are all a replay matched as sent needs of it, and its
    # text tells them; the value is parsed when it is asked for (`_body_parsed`).
    try:
        return read_layout(text, made_json=made, checked=checked, json_as_text=True) if text else []
    except Unrecognised:
        pass
    parsed: list[Any] = []
    declined = 0
    for item, response, _ in pieces.spans:
        try:
            one = read_layout(raw[item:response], made_json=made, json_as_text=True)
        except Unrecognised:
            declined += 1
            if declined > 8 and declined * 2 > len(parsed):
                return load_yaml(text)
            one = load_yaml(raw[item:response])
        if not isinstance(one, list) or len(one) != 1:
            return None
        parsed.extend(one)
    return parsed


def _from_pieces(
    path: Path, raw: bytes, pieces: _Pieces, *, key: str | None, reader: _FileReader | None
) -> LazyCassette | None:
    try:
        top = load_cassette_yaml(pieces.header) if pieces.header.strip() else {}
    except YAMLError:
        return None
    if not isinstance(top, dict) or "interactions" in top:
        # A second `interactions:` list (a merge gone wrong): the whole parse refuses the key.
        return None
    # Every request at once: the items with their responses left out still form one YAML list.
    # Each keeps its last line break: a body written as a block scalar that keeps its final line
    # breaks (`|+`) ends with it.
    text = b"".join(raw[item:response] for item, response, _ in pieces.spans)
    made: list[Any] = []  # the bodies read as JSON, known plain (see `read_layout`)
    # The characters of a file held in memory are checked once, for its requests and responses.
    checked = reader is None and plain_characters(raw)
    try:
        parsed = _read_request_items(raw, pieces, text, made, checked)
    except YAMLError:
        return None
    if not isinstance(parsed, list) or len(parsed) != len(pieces.spans):
        return None
    requests: list[RecordedRequest | dict[str, Any] | None] = []
    lines: list[RequestLine] = []
    item_extras: list[dict[str, Any]] = []
    made_ids = {id(value): value for value in made}
    for index, item in enumerate(parsed):
        if not isinstance(item, dict) or "request" not in item or "response" in item:
            return None
        data = item["request"]
        line = plain_request_line(data, made_ids=made_ids)
        if line is None:
            if isinstance(data, dict):
                _body_parsed(data, made_ids)
            try:
                request = RecordedRequest.model_validate(data)
            except ValidationError as exc:
                raise format_validation_error(exc, path, prefix=("interactions", index, "request")) from None
            requests.append(request)
            line = (
                request.method,
                request.uri,
                message_content(request, path=path, index=index, side="request"),
            )
        else:
            requests.append(data)  # its model is built when it is asked for
        lines.append(line)
        item_extras.append({k: v for k, v in item.items() if k != "request"})
    try:
        # The top-level keys are checked as a whole parse checks them (`version`, the schema).
        document = CassetteDocument.model_validate(top)
    except ValidationError as exc:
        raise format_validation_error(exc, path) from None
    top.pop("version", None)
    top.pop("llmcassette_schema", None)
    lazy = LazyCassette(
        path,
        version=document.version,
        extras=top,
        lines=lines,
        requests=requests,
        item_extras=item_extras,
        raw=None if reader is not None else raw,
        reader=reader,
        pieces=pieces,
        key=key,
    )
    lazy._learned = key is not None
    lazy._made_json = made_ids
    lazy._checked = checked
    return lazy
