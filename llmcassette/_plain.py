"""
A recorded response compiled for replay straight from the data a file was read into, without
building its model first.

On a cold start (nothing cached) every response is read and compiled on its first play, and
building and checking its pydantic model cost about as much as reading it (a 200-event stream:
200 offsets each checked by a Python validator). Data in the plain shape llmcassette writes
(exact types: a status code from 100 to 599, headers as lists of text, one body, a parsed body
the model's JSON check passes as it is, times in range, chunk lengths as integers) holds nothing
the model would change or refuse, so it is compiled as it is. Anything else, down to a ``True``
where a number belongs, is declined (None) and goes through the model, which converts it or says
what is wrong with it; a response compiled here is the one
:func:`~llmcassette._playback.compile_response` makes of the model. Recorded requests likewise
(:func:`plain_request_line`); both are checked against the models in ``tests/test_plain.py``.
"""

from __future__ import annotations

import functools
import json
import math
import re
import struct
from collections.abc import Container, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

from ._bodies import JSON_FORMATS, dump_json, text_bytes
from ._compiled import speedups
from ._layout import JsonText
from ._models import SENDABLE_NAMES, header_text_problem, method_problem, url_problem
from ._playback import Compiled, compile_parts
from ._values import MAX_TIME_MS, json_plain

__all__ = [
    "BodyBytes",
    "TextLengths",
    "TextTimes",
    "compile_plain",
    "plain_lengths",
    "plain_request_line",
    "plain_times",
]

_RESPONSE_KEYS = frozenset(
    {"status", "headers", "body", "parsed_body", "json_format", "elapsed_ms", "stream"}
)
_REQUEST_KEYS = frozenset({"method", "uri", "headers", "body", "parsed_body", "json_format"})
_STATUS_KEYS = frozenset({"code", "message"})
_BODY_KEYS = frozenset({"string", "line_endings"})
_STREAM_KEYS = frozenset({"chunks", "offsets_ms", "end"})
_ONLY_INT = {int}
_NUMBERS = {int, float}


# A flow list of times the model takes as they are and JSON reads as YAML does: decimals without
# a sign, a leading zero or an exponent, below ten million milliseconds (the model's limit is a
# day), separated by commas and spaces or line breaks. Every repeat is possessive: what follows a
# part never starts as the part goes on, so giving characters back could find no other match,
# and the regex engine is spared keeping its ways back (200 offsets: 24 -> 11 us).
_DECIMAL = rb"(?:0|[1-9][0-9]{0,6}+)(?:\.[0-9]++)?+"
_PLAIN_TIMES = re.compile(rb"[ \n]*+" + _DECIMAL + rb"(?:[ \n]*+,[ \n]*+" + _DECIMAL + rb")*+[ \n]*+")


_N = TypeVar("_N", int, float)


class _TextNumbers(Sequence[_N]):
    """
    The numbers of a flow list kept as its text, read on first use (:meth:`_read`); a sequence of
    them, equal to any sequence of the same numbers.
    """

    __slots__ = ("_values", "text")

    def __init__(self, text: bytes) -> None:
        #: The list's items as the file writes them.
        self.text = text
        self._values: list[_N] | None = None

    def values(self) -> list[_N]:
        """The numbers, read now if they were not yet."""
        if self._values is None:
            self._values = self._read()
        return self._values

    def _read(self) -> list[_N]:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> _N: ...
    @overload
    def __getitem__(self, index: slice) -> list[_N]: ...
    def __getitem__(self, index: int | slice) -> _N | list[_N]:
        return self.values()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _TextNumbers):
            return self.values() == other.values()
        return isinstance(other, Sequence) and self.values() == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.values()!r})"


class TextTimes(_TextNumbers[float]):
    """
    Arrival offsets kept as the text of their flow list, known to be :func:`plain_times`: only a
    paced replay reads them, and reading 200 of them cost as much as the rest of a stream's
    response.
    """

    __slots__ = ("_count",)

    def __init__(self, text: bytes) -> None:
        super().__init__(text)
        self._count = text.count(b",") + 1

    def _read(self) -> list[float]:
        return [float(value) for value in json.loads(b"[" + self.text + b"]")]

    def __len__(self) -> int:
        return self._count


def plain_times(text: bytes) -> TextTimes | None:
    """
    The items of a flow list of times, left as text, when each is a time the model takes as it is
    (see ``_PLAIN_TIMES``): YAML and JSON read them alike, so reading them can wait.
    """
    fast = speedups()
    # (the C extension's one pass, where it is built: the same answer, `tests/test_speedups.py`)
    plain = _times_python(text) if fast is None else fast.plain_times(text)
    return TextTimes(text) if plain else None


def _times_python(text: bytes) -> bool:
    # Whether `text` is a flow list of plain times (`_PLAIN_TIMES`).
    return _PLAIN_TIMES.fullmatch(text) is not None


# A stream's chunk lengths as the writer writes them: whole numbers without a sign or a leading
# zero (YAML and JSON read them alike, as int; YAML reads `010` as octal, and a length of 0 is
# left to the lists read as numbers), separated by a comma and a space, or by a comma that ends a
# line and the next line's indentation under the stream's keys (`      chunks: [`).
_LENGTHS_WRAP = b",\n        "
_LENGTH_BYTES = b"0123456789s"


class TextLengths(_TextNumbers[int]):
    """
    Chunk lengths kept as the text of their flow list, known to be :func:`plain_lengths`, which
    cuts a body into its chunks with one call into C (a ``struct`` format of one string per
    chunk): reading 200 lengths as integers, checking their types and sign, summing them and
    cutting the body at them cost five passes, three times what the one cut costs.
    """

    __slots__ = ("_format",)

    def __init__(self, text: bytes, format: bytes) -> None:
        super().__init__(text)
        self._format = format

    def _read(self) -> list[int]:
        values: list[int] = json.loads(b"[" + self.text + b"]")
        return values

    def cut(self, content: bytes) -> tuple[bytes, ...] | None:
        """``content`` cut at the lengths, or None when they do not add up to its length."""
        fast = speedups()
        if fast is not None:
            # (the C extension's cut, where it is built: the same chunks, `tests/test_speedups.py`)
            return fast.cut(self._format, content)
        return self._cut_python(content)

    def _cut_python(self, content: bytes) -> tuple[bytes, ...] | None:
        try:
            return struct.Struct(self._format).unpack(content)
        except struct.error:
            return None  # (lengths that add up to another size, or to more than memory holds)

    def __len__(self) -> int:
        return self._format.count(b"s")


def plain_lengths(text: bytes) -> TextLengths | None:
    """
    The items of a flow list of chunk lengths, left as text, when they are written as the writer
    writes them (see ``_LENGTHS_WRAP``): YAML and JSON read them alike, as whole numbers, and the
    body is cut at them in one call. None for any other text, which is read as numbers.
    """
    fast = speedups()
    # (the C extension's one pass, where it is built: the same format, `tests/test_speedups.py`)
    format = _lengths_format_python(text) if fast is None else fast.lengths_format(text)
    return None if format is None else TextLengths(text, format)


def _lengths_format_python(text: bytes) -> bytes | None:
    # The `struct` format of the chunk lengths `text` (see `TextLengths`), or None when they are
    # not written as the writer writes them. Each separator made the format's `s` (a string of
    # the count before it): what is left must be runs of digits, none starting with a zero, each
    # ended by one `s`.
    format = text.replace(_LENGTHS_WRAP, b"s").replace(b", ", b"s") + b"s"
    if format.translate(None, _LENGTH_BYTES) or not b"1" <= format[:1] <= b"9":
        return None
    if b"ss" in format or b"s0" in format:
        return None
    return format


class BodyBytes:
    """
    A response's body text kept as its UTF-8 bytes, as :func:`llmcassette._lazy._lists_apart`
    cut it out of the file's bytes (a literal block, dedented and chomped as YAML reads it, its
    characters checked): :func:`compile_plain` plays them as they are, where the text read by the
    reader was decoded, dedented again and encoded (three passes over a 25 KB stream). Equal to
    the string it is the bytes of.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def text(self) -> str:
        """The body's text, as the reader would have read it."""
        return self.data.decode("utf-8")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BodyBytes):
            return self.data == other.data
        return isinstance(other, str) and self.text() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BodyBytes({self.data!r})"


def compile_plain(
    item: Any, *, method: str, uri: str, path: Path, index: int, made_ids: Container[int] = ()
) -> Compiled | None:
    """
    The compiled response of ``item`` (an interaction's data with its ``response`` alone), or
    None when it is not in the plain shape (see the module's docstring). ``made_ids``: the ids
    of values the loader parsed as JSON (see :func:`llmcassette._layout.read_layout`), known to
    be plain without a walk through them.
    """
    if type(item) is not dict or len(item) != 1:
        return None  # keys beside `response` are the interaction's: the model keeps them
    response = item.get("response")
    if type(response) is not dict or not response.keys() <= _RESPONSE_KEYS:
        return None
    status = response.get("status")
    if type(status) is not dict or not status.keys() <= _STATUS_KEYS:
        return None
    code = status.get("code")
    reason = status.get("message", "")
    if type(code) is not int or not 100 <= code <= 599 or type(reason) is not str:
        return None
    headers = response.get("headers", {})
    if type(headers) is not dict or not _headers_plain(headers):
        return None
    stored = _stored_body(response, made_ids)
    if stored is None:
        return None
    elapsed = response.get("elapsed_ms")
    if elapsed is not None:
        if type(elapsed) not in _NUMBERS or not 0 <= elapsed <= MAX_TIME_MS:
            return None
        elapsed = float(elapsed)
    lengths = offsets = None
    stream = response.get("stream")
    if stream is not None:
        if type(stream) is not dict or not stream.keys() <= _STREAM_KEYS:
            return None
        if stream.get("end", "complete") not in ("complete", "closed"):
            return None  # an error: the model checks what goes with it
        lengths = stream.get("chunks")
        if (
            lengths is not None
            and type(lengths) is not TextLengths  # (checked when it was cut out of the text)
            and (type(lengths) is not list or not set(map(type, lengths)) <= _ONLY_INT)
        ):
            return None
        offsets = stream.get("offsets_ms")
        if offsets is not None:
            offsets = _times(offsets)
            if offsets is None:
                return None
    try:
        content = _content(stored)
    except (TypeError, ValueError, RecursionError):
        return None  # a parsed body JSON cannot write: the model's path raises what it raises
    return compile_parts(
        status=code,
        reason=reason,
        headers=headers,
        content=content,
        lengths=lengths,
        offsets_ms=offsets,
        error=None,
        elapsed_ms=elapsed,
        method=method,
        uri=uri,
        path=path,
        index=index,
    )


def plain_request_line(data: Any, *, made_ids: Container[int] = ()) -> tuple[str, str, bytes] | None:
    """
    Method, URL and body bytes of a recorded request's data when it is in the plain shape (the
    model would take it as it is, so building the model can wait until it is asked for), else
    None: the model reads it now, and says what is wrong with it. ``made_ids`` as for
    :func:`compile_plain`.
    """
    if type(data) is not dict or not data.keys() <= _REQUEST_KEYS:
        return None
    method = data.get("method")
    uri = data.get("uri")
    if type(method) is not str or type(uri) is not str or not _splits(uri) or not _is_method(method):
        return None
    headers = data.get("headers", {})
    if type(headers) is not dict or not _headers_plain(headers):
        return None
    stored: _Body | None
    if "parsed_body" in data:
        stored = _parsed_body(data, made_ids)
        if stored is None:
            return None
    else:
        body = data.get("body")
        if "json_format" in data or (body is not None and type(body) is not str and type(body) is not bytes):
            return None
        stored = False, body, None
    try:
        return method, uri, _content(stored)
    except (TypeError, ValueError, RecursionError):
        return None  # a parsed body JSON cannot write: the model's path raises what it raises


@functools.lru_cache(maxsize=64)
def _is_method(method: str) -> bool:
    return method_problem(method) is None


@functools.lru_cache(maxsize=1024)
def _splits(uri: str) -> bool:
    # A cassette's requests go to a few URLs, each checked once.
    return url_problem(uri) is None


def _headers_plain(headers: dict[Any, Any]) -> bool:
    for name, values in headers.items():
        if type(name) is not str or type(values) is not list:
            return False
        broken = False
        for value in values:
            if type(value) is not str:
                return False
            if "\n" in value or "\r" in value:
                broken = True
        if (broken or name not in SENDABLE_NAMES) and header_text_problem(name, values) is not None:
            return False  # the model's path refuses it, naming the interaction
    return True


#: A body as the model stores it (see `_bodies.StoredBody`), as a tuple: a frozen `StoredBody` cost
#: a microsecond to make, twice per JSON interaction. Parsed: (True, value, json_format); text:
#: (False, string, line_endings).
_Body = tuple[bool, Any, Any]


def _content(body: _Body) -> bytes:
    # What `_bodies.load_body` gives for the body.
    parsed, value, detail = body
    if not parsed:
        return text_bytes(value, detail)
    return value.dump(detail) if type(value) is JsonText else dump_json(value, detail)


def _parsed_body(data: dict[str, Any], made_ids: Container[int]) -> _Body | None:
    # A request's or response's `parsed_body`, with its `json_format`, as the model keeps them.
    json_format = data.get("json_format")
    if "body" in data or (
        json_format is not None and (type(json_format) is not str or json_format not in JSON_FORMATS)
    ):
        return None
    value = data["parsed_body"]
    # (a body left as its text was read as JSON of the depth the models take: plain too)
    if type(value) is not JsonText and id(value) not in made_ids and not json_plain(value):
        return None  # the model makes its keys text, or says what JSON cannot hold
    return True, value, json_format


def _stored_body(response: dict[str, Any], made_ids: Container[int]) -> _Body | None:
    if "parsed_body" in response:
        return _parsed_body(response, made_ids)
    if "json_format" in response:
        return None
    body = response.get("body")
    if body is None:
        return None if "body" in response else (False, None, None)
    if type(body) is not dict or not body.keys() <= _BODY_KEYS:
        return None
    string = body.get("string", "")
    line_endings = body.get("line_endings")
    if type(string) is BodyBytes and line_endings is None:
        return False, string.data, None  # (bytes are played as they are)
    if type(string) not in (str, bytes) or line_endings not in (None, "crlf"):
        return None
    return False, string, line_endings


def _times(values: Any) -> Sequence[float] | None:
    # Times in milliseconds as the model checks them (0 to a day, no NaN), floats as it makes
    # them; checked with a few calls into C rather than a step per value.
    if type(values) is TextTimes:
        return values  # checked when it was cut out of the text
    if type(values) is not list:
        return None
    if not values:
        return values
    kinds = set(map(type, values))
    if not kinds <= _NUMBERS:
        return None
    try:
        total = math.fsum(values)
    except (OverflowError, ValueError):
        return None
    if total != total or min(values) < 0 or max(values) > MAX_TIME_MS:
        return None
    return values if kinds == {float} else [float(value) for value in values]
