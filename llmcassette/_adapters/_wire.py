"""
HTTP/1.1 on the wire, for doors whose library parses it itself (the standard library's
``http.client``, and urllib3, requests and botocore on top of it): the request a client wrote,
read back into its parts; and a response written as the bytes a server would send, so that the
library's own parser reads it, chunk boundaries and breakage included.

A replayed stream is written with ``Transfer-Encoding: chunked``, one HTTP chunk per recorded
chunk, so that a client reading chunk by chunk (urllib3's ``stream()``, requests'
``iter_content``) sees the recorded boundaries. A body that arrived whole with a
``Content-Length`` is written with it. A stream cut mid-way stops in the middle of its framing,
as a dropped connection does, so the library raises what it raises live (``IncompleteRead``,
urllib3's ``ProtocolError``, requests' ``ChunkedEncodingError``).
"""

from __future__ import annotations

import enum
import functools
import io
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from .._flavors import Flavor, get_flavor
from .._playback import has_body as answer_has_body, header_bytes
from .._recording import FRAMING_HEADERS, WIRE

__all__ = [
    "ParsedRequest",
    "WireHeaders",
    "WireReader",
    "WireRequest",
    "WireResponse",
    "encode_body",
    "encode_chunk",
    "engine_head",
    "engine_lines",
    "engine_request",
    "engine_url",
    "httpx_url",
    "parse_request",
    "request_complete",
    "response_lines",
    "wire_flavor",
    "wire_named",
]

#: Headers the wire writer sets itself, from the framing it chooses: `FRAMING_HEADERS` for an
#: answer with a body, this for one without (which keeps its recorded length).
_TRANSFER_ENCODING = frozenset({b"transfer-encoding"})


@dataclass(frozen=True)
class ParsedRequest:
    """A request as a client wrote it on the wire."""

    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    position = 0
    while position < len(data):
        end = data.index(b"\r\n", position)
        size = int(data[position:end].split(b";", 1)[0], 16)
        position = end + 2
        if size == 0:
            break
        out += data[position : position + size]
        position += size + 2
    return bytes(out)


def parse_request(raw: bytes) -> ParsedRequest:
    """Split the bytes a client sent for one request into its parts (a chunked body decoded)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    method, target, _version = lines[0].decode("latin-1").split(" ", 2)
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip(), value.strip()))
    chunked = any(n.lower() == b"transfer-encoding" and b"chunked" in v.lower() for n, v in headers)
    return ParsedRequest(method, target, headers, _dechunk(body) if chunked else body)


class WireRequest:
    """
    A request a client wrote on the wire, as the engine reads it: method, URL, the headers as
    sent and the door's extensions (its timeouts). Made where an ``httpx.Request`` of the same
    request would hold exactly these headers (see :func:`engine_request`).
    """

    __slots__ = ("extensions", "headers", "method", "url")

    def __init__(self, method: str, url: str, headers: list[tuple[bytes, bytes]]) -> None:
        self.method = method
        self.url = url
        self.headers = _RawHeaders(headers)
        self.extensions: dict[str, Any] = {WIRE: True}


class _RawHeaders:
    __slots__ = ("raw",)

    # Where httpx's `Headers` keep their entries, which the attempt log copies when it finds them
    # (`Attempt._new`): none here, said at once (a lookup that fails costs more than the copy).
    _list = None

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw


class _Unknown(enum.Enum):
    # `engine_request`'s engine URL when its caller has not found it (None is a finding: "make
    # an httpx.Request").
    URL = 0


def engine_request(
    method: str,
    url: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    *,
    wire_url: str | None | _Unknown = _Unknown.URL,
) -> Any:
    """
    What the engine is given of a request read off the wire: a :class:`WireRequest`, with its
    URL as httpx writes it; an ``httpx.Request`` (which costs some 30 µs to build) only when
    httpx would add a header the client did not send (a ``Host``, or a ``Content-Length``).
    ``wire_url``: what :func:`engine_url` gave for these headers' names, the method and whether
    there is a body (None included), found once for a request sent again and again.
    """
    if wire_url is _Unknown.URL:
        wire_url = engine_url(method, url, headers, bool(body))
    if wire_url is None:
        request = httpx.Request(method, url, headers=headers, content=body)
        request.extensions[WIRE] = True
        return request
    return WireRequest(method, wire_url, headers)


def engine_url(method: str, url: str, headers: list[tuple[bytes, bytes]], has_body: bool) -> str | None:
    """
    The URL of the :class:`WireRequest` :func:`engine_request` makes of such a request (it
    depends on its method, its headers' names and whether it has a body alone), as httpx writes
    it; None where it makes an ``httpx.Request``.
    """
    return httpx_url(url) if wire_named(method, headers, has_body) else None


def wire_named(method: str, headers: Sequence[tuple[bytes, bytes]], has_body: bool) -> bool:
    """
    Whether :func:`engine_request` gives the engine a :class:`WireRequest` for a request of
    ``method`` with these headers (their names alone count) and a body or none: where httpx
    would add no header of its own (a ``Host``, or a ``Content-Length``). A door that writes the
    same names again and again finds it once (then its URL by :func:`httpx_url`).
    """
    names = {name.lower() for name, _ in headers}
    sized = b"content-length" in names
    if b"host" not in names or (has_body and not sized):
        return False
    return sized or b"transfer-encoding" in names or method not in ("POST", "PUT", "PATCH")


@functools.lru_cache(maxsize=1024)
def httpx_url(url: str) -> str:
    """
    The URL as an httpx request holds it (normalised, encoded), so that matching and the
    cassette see the same URL whichever door carried the request. Cached: a suite sends the
    same few URLs again and again.
    """
    return str(httpx.URL(url))


def response_lines(
    status: int,
    reason: str,
    headers: list[tuple[bytes, bytes]],
    *,
    length: int | None,
    method: str,
    close: bool = False,
) -> tuple[list[bytes], bool]:
    """
    The lines of a response's head (the status line, then each header), and whether its body is
    written chunked. ``length`` is the body's size when it is written whole with a
    ``Content-Length``; ``close`` ends the connection after the response (``Connection: close``).
    """
    has_body = answer_has_body(method, status)
    # An answer with no body keeps the Content-Length it was sent with: it frames nothing there
    # (a HEAD answer's tells the size of what a GET gets), and clients read it as a header.
    framing = FRAMING_HEADERS if has_body else _TRANSFER_ENCODING
    dropped = framing | {b"connection"} if close else framing
    lines = [f"HTTP/1.1 {status} {reason}".encode("latin-1")]
    lines += [name + b": " + value for name, value in headers if name.lower() not in dropped]
    if close:
        lines.append(b"Connection: close")
    chunked = has_body and length is None
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
    elif has_body:
        lines.append(b"Content-Length: " + str(length).encode())
    return lines, chunked


def engine_lines(response: Any, *, method: str, close: bool = False) -> tuple[list[bytes], bool, int | None]:
    """
    The lines of the head of the engine's answer (an httpx response) as it goes on the wire,
    whether its body is written chunked, and its length when it is not: whole with its
    ``Content-Length`` when the answer declares one and was not chunked, chunk by chunk otherwise.
    """
    raw = list(response.headers.raw)
    declared = next((value for name, value in raw if name.lower() == b"content-length"), None)
    chunked_upstream = any(name.lower() == b"transfer-encoding" for name, _ in raw)
    length = int(declared) if declared is not None and not chunked_upstream else None
    reason = response.extensions.get("reason_phrase", b"").decode("latin-1") or "OK"
    lines, chunked = response_lines(
        response.status_code, reason, raw, length=length, method=method, close=close
    )
    return lines, chunked, None if chunked else length


def engine_head(response: Any, *, method: str, close: bool = False) -> tuple[bytes, bool, int | None]:
    """The head of the engine's answer as :func:`engine_lines` has it, in bytes (and the same framing)."""
    lines, chunked, length = engine_lines(response, method=method, close=close)
    return b"\r\n".join(lines) + b"\r\n\r\n", chunked, length


def engine_flavor() -> Flavor:
    """The library the doors speak to the engine in: httpx, a dependency."""
    flavor = get_flavor("httpx")
    assert flavor is not None
    return flavor


class WireHeaders:
    """
    A replayed response's headers as a door that writes them on the wire reads them: ``raw``,
    the pairs in bytes as httpx's ``Headers`` holds them (latin-1, or UTF-8 where a text does not
    fit), made only when read: a door that knows the head already never pays for them.
    """

    __slots__ = ("_pairs", "_raw")

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._pairs = pairs
        self._raw: list[tuple[bytes, bytes]] | None = None

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        if self._raw is None:
            self._raw = [(header_bytes(name), header_bytes(value)) for name, value in self._pairs]
        return self._raw


class WireResponse:
    """A replayed response as a wire door reads it: what :func:`engine_lines` and a door take of it."""

    __slots__ = ("extensions", "headers", "status_code", "stream")

    def __init__(
        self, status_code: int, *, headers: WireHeaders, stream: Any, extensions: dict[str, Any]
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.stream = stream
        self.extensions = extensions


@functools.cache
def wire_flavor() -> Flavor:
    """
    The engine's flavor for a door that writes the answer itself (:meth:`Cassette.replay_plain`):
    its responses are :class:`WireResponse`, with no httpx ``Response`` or ``Headers`` made for
    each (the reason phrases, and the exceptions, are httpx's).
    """
    httpx_module = engine_flavor().module
    module = types.ModuleType(f"{__name__}.wire")
    module.Response = WireResponse  # type: ignore[attr-defined]
    module.Headers = WireHeaders  # type: ignore[attr-defined]
    module.codes = httpx_module.codes  # type: ignore[attr-defined]
    for name in dir(httpx_module):
        found = getattr(httpx_module, name)
        if isinstance(found, type) and issubclass(found, Exception):
            setattr(module, name, found)
    return Flavor(name="wire", module=module, stream_base=(), derived_key="_wire_derived")


def request_complete(raw: bytes) -> int | None:
    """The length of the first whole request in ``raw`` (head and body), or None while it is not."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = raw[:end].lower()
    body_start = end + 4
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip() == b"content-length":
            size = body_start + int(value.strip())
            return size if len(raw) >= size else None
        if name.strip() == b"transfer-encoding" and b"chunked" in value:
            terminal = raw.find(b"\r\n0\r\n\r\n", body_start - 2)
            return terminal + 7 if terminal >= 0 else None
    return body_start


def encode_body(chunks: Sequence[bytes], *, chunked: bool, length: int | None) -> bytes:
    """
    A whole body as :class:`WireReader` writes it chunk by chunk: each chunk framed when
    ``chunked`` (then the last-chunk marker), else as it is, up to the chunk that completes
    ``length`` bytes. The chunks are not empty.
    """
    if chunked:
        pieces: list[bytes] = []
        for chunk in chunks:
            pieces += (b"%x\r\n" % len(chunk), chunk, b"\r\n")
        pieces.append(b"0\r\n\r\n")
        return b"".join(pieces)
    if length is None:
        return b"".join(chunks)
    written = 0
    for count, chunk in enumerate(chunks, 1):
        written += len(chunk)
        if written >= length:
            return b"".join(chunks[:count])
    return b"".join(chunks)


def encode_chunk(chunk: bytes, *, chunked: bool) -> bytes:
    """One body chunk as it goes on the wire."""
    return f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk


class WireReader(io.RawIOBase):
    """
    The read side of a socket that a response is written to on demand: the head, then each body
    chunk as ``chunks`` yields it (waiting as it waits). ``broken`` says what an exception from
    ``chunks`` means on the wire: ``None`` for a dropped connection (the bytes stop), else the
    exception to raise to the reader (a timeout). With a ``length`` (a body framed by its
    ``Content-Length``), the end of ``chunks`` is taken as soon as that many bytes were written:
    the reader stops asking once it has them, and the recording must still learn the body was
    whole.
    """

    def __init__(
        self,
        head: bytes,
        chunks: Iterator[bytes],
        *,
        chunked: bool,
        broken: Callable[[BaseException], BaseException | None],
        on_close: Callable[[], None] = lambda: None,
        length: int | None = None,
    ) -> None:
        super().__init__()
        self._length = length
        self._written = 0
        self._pending = memoryview(head)
        self._chunks = chunks
        self._chunked = chunked
        self._broken = broken
        self._ended = False
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def _next_piece(self) -> bytes:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._ended = True
            return b"0\r\n\r\n" if self._chunked else b""
        except Exception as exc:  # what the stream's end means on a wire
            self._ended = True
            raised = self._broken(exc)
            if raised is not None:
                raise raised from None
            return b""
        if not chunk:
            return self._next_piece()
        self._written += len(chunk)
        if self._length is not None and self._written >= self._length:
            self._finish_quietly()
        return encode_chunk(chunk, chunked=self._chunked)

    def _finish_quietly(self) -> None:
        # The body is whole on the wire: let the stream behind it end, as the client will not ask.
        self._ended = True
        try:
            for _ in self._chunks:
                pass
        except Exception:  # a failure after the last byte changes nothing the client reads
            pass

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            if self._ended:
                return 0
            self._pending = memoryview(self._next_piece())
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
            self._on_close()
        super().close()


def timeout_error() -> BaseException:
    """What a socket read raises when its timeout passes."""
    return TimeoutError("timed out")
