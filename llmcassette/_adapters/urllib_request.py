"""
The fast path of ``urllib.request``: a request the cassette answers plainly is answered in
``AbstractHTTPHandler.do_open`` itself, with no connection, no request written and none parsed
back, and no status line or framing parsed by ``http.client``.

It is taken only when nothing would tell it from the connection door (:mod:`.http_client`)
below it: the handler's own connection classes (``http.client.HTTPConnection`` and
``HTTPSConnection``), no proxy or tunnel, no debug output, a body of bytes or none, a method and
target ``http.client`` sends as they are, and headers :func:`_wire_request` writes exactly as
``http.client`` would (with the ``Host`` that ``urllib.request`` adds itself; a chunked upload
goes to the door); and the cassette would replay it exactly as recorded with nothing acting on
it (:meth:`llmcassette._cassette.Cassette.replay_plain`: no fault, filter or pace; replaying,
not recording; a whole recording). The engine then sees the request the connection would have
sent (method, URL, the headers as on the wire, the body) and logs the same attempt, and the
client gets the ``http.client.HTTPResponse`` that ``do_open`` returns, made over the answer in
memory (:class:`_Replayed`): its head is the one the door writes (:func:`._wire.engine_lines`),
handed over parsed as the door hands it to ``http.client.parse_headers``, and its body reads
as the door's does in every style, a chunked answer's recorded chunks included; ``read1()``,
``peek()`` and a chunked answer's ``readline(n)``, which end where ``http.client``'s 8 KB
buffer ends as well, go on reading off the door's wire, made in memory, from where the reads
before them left it (:meth:`_Replayed._wired`). Everything above ``do_open`` is ``urllib.request``'s own: its
error processor raises ``HTTPError`` for a 4xx or 5xx, its redirect handler follows redirects.
Everything else (a miss, a fault, recording, another body or connection class) goes through the
original ``do_open``, to the connection door, unchanged, and an answer this cannot hold in
memory (an empty recorded chunk, a head that is not plainly ``name: value`` lines) is read by
``http.client`` from the door's file (:func:`.http_client.answered_file`).
"""

from __future__ import annotations

import bisect
import functools
import http.client
import io
import itertools
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any, cast

from .._exchange import Playback
from .._intercept import current_cassette
from .._streams import ReplayStream
from ._wire import encode_body, engine_lines, engine_request, httpx_url, wire_flavor, wire_named
from .http_client import (
    LEGAL_HEADER_NAME,
    UNSAFE_TARGET,
    AnsweredSocket,
    answered_file,
    head_file,
    split_head,
    wire_url,
)

__all__ = ["patches", "replayed_response", "shut_down"]

#: ``http.client`` sends a ``Content-Length: 0`` for these methods when they carry no body.
_METHODS_EXPECTING_BODY = frozenset({"PATCH", "POST", "PUT"})
#: A method ``http.client`` writes as it is and the door reads back whole (a token).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: ``http.client``'s own connection classes, by module and name: whether each is the TLS one.
_CONNECTION_CLASSES = {("http.client", "HTTPConnection"): False, ("http.client", "HTTPSConnection"): True}
#: Connection arguments of the handlers of ``urllib.request``, which do not change the request.
_CONNECTION_ARGUMENTS = frozenset({"context", "check_hostname"})


def patches(module: ModuleType) -> list[tuple[Any, str, Any, Any]]:
    """``(class, attribute, original, replacement)``: ``urllib.request.AbstractHTTPHandler.do_open``."""
    owner = module.AbstractHTTPHandler
    original = owner.__dict__["do_open"]
    return [(owner, "do_open", original, _do_open(original))]


def _do_open(original: Callable[..., Any]) -> Callable[..., Any]:
    def do_open(self: Any, http_class: Any, req: Any, **http_conn_args: Any) -> Any:
        __tracebackhide__ = True
        cassette = current_cassette()
        if cassette is not None:
            response = _replay(self, cassette, http_class, req, http_conn_args)
            if response is not None:
                return response
        return original(self, http_class, req, **http_conn_args)

    do_open.__wrapped__ = original  # type: ignore[attr-defined]
    return do_open


def _replay(handler: Any, cassette: Any, http_class: Any, req: Any, http_conn_args: dict[str, Any]) -> Any:
    """The response of the fast path, or None for the original ``do_open`` to answer."""
    __tracebackhide__ = True
    https = _is_https(http_class)
    if https is None:
        return None
    if handler._debuglevel or (http_conn_args and not _CONNECTION_ARGUMENTS.issuperset(http_conn_args)):
        return None
    wire = _wire_request(req, https)
    if wire is None:
        return None
    method, url, lines, body, wire_url = wire
    request = engine_request(method, url, lines, body, wire_url=wire_url)
    # What the door gives the engine for the client's timeout: the connection's, from the request.
    timeout = req.timeout
    timeout_s = timeout if isinstance(timeout, (int, float)) else None
    request.extensions["timeout"] = dict.fromkeys(("connect", "read", "write", "pool"), timeout_s)
    played: list[Playback] = []

    def plain(playback: Playback) -> bool:
        # A final status `http.client` reads as it is, and a status line it parses back alike.
        reason = playback.reason
        if not 200 <= playback.status <= 999 or "\r" in reason or "\n" in reason:
            return False
        played.append(playback)
        return True

    answer = cassette.replay_plain(wire_flavor(), request, body, plain)
    if answer is None:
        return None
    response: Any = replayed_response(answer, played[0], method)
    response.url = req.get_full_url()
    response.msg = response.reason  # as `do_open` does: urllib's clients expect the reason there
    return response


@functools.lru_cache(maxsize=64)
def _is_https(http_class: type) -> bool | None:
    # Whether `http_class` is `http.client`'s TLS connection or its plain one; None for any other
    # (a subclass, or vcrpy's stand-in, which it puts in `http.client` in place of the original).
    name = (str(getattr(http_class, "__module__", "")), str(getattr(http_class, "__qualname__", "")))
    return _CONNECTION_CLASSES.get(name)


def _wire_request(
    req: Any, https: bool
) -> tuple[str, str, list[tuple[bytes, bytes]], bytes, str | None] | None:
    """
    The request as ``do_open`` has ``http.client`` write it, as the connection door reads it
    back (:func:`._wire.parse_request`): its method, its URL, its header lines in order (names
    and values stripped), its body, and the URL the engine's request has
    (:func:`._wire.engine_url`, found with the head); None for a request this cannot vouch for.
    """
    if req._tunnel_host or req.has_proxy():
        return None
    data = req.data
    if data is not None and type(data) is not bytes:
        return None  # a file or an iterable, sent as it is read: the door's
    target = req.selector or "/"
    if not target.isascii() or UNSAFE_TARGET.search(target) is not None:
        return None
    method = req.get_method()
    # (the unredirected headers, then None, then the others: `_wire_head` takes them apart)
    unredirected, given = req.unredirected_hdrs.items(), req.headers.items()
    try:
        key = (method, req.host, https, data is None, *unredirected, None, *given)
        head = _HEADS.get(key)
    except TypeError:  # a header value that is no text (then no hashable one)
        return None
    if head is None:
        head, cacheable = _wire_head(key)
        if cacheable:
            if len(_HEADS) >= _MOST_HEADS:
                _HEADS.clear()
            _HEADS[key] = head
    if head is _DECLINED:
        return None
    origin, before, sized, after, named = head
    body: bytes = data or b""
    url = origin + target
    wire_url = httpx_url(url) if named[bool(body)] else None
    if sized:
        return method, url, [*before, (b"Content-Length", b"%d" % len(body)), *after], body, wire_url
    return method, url, [*before, *after], body, wire_url


#: What `_wire_head` made of the head of each request it was given, by the request's parts;
#: the heads of answers (`_head`), by what they are made of. Emptied when they hold this many.
_HEADS: dict[tuple[Any, ...], Any] = {}
_ANSWER_HEADS: dict[tuple[Any, ...], _Head] = {}
_MOST_HEADS = 1024
_DECLINED = object()


def _wire_head(key: tuple[Any, ...]) -> tuple[Any, bool]:
    """
    The head of a request of ``key`` (method, host, TLS or not, no body or a body, the request's
    unredirected headers, None, its headers) as ``do_open`` has ``http.client`` write it: the
    URL but its target, the header lines before a ``Content-Length`` this adds for the body,
    whether it adds one, the lines after it, and whether the engine gets a ``WireRequest`` of
    them (:func:`._wire.wire_named`) with no body and with one (or ``_DECLINED``); and whether
    that holds for every request of an equal key (it does where every header value is text).
    """
    method, host, https, bodiless = key[:4]
    split = key.index(None, 4)
    given = dict(key[4:split])
    given.update({k: v for k, v in key[split + 1 :] if k not in given})
    cacheable = isinstance(method, str) and all(type(value) is str for value in given.values())
    if not isinstance(method, str) or _TOKEN.fullmatch(method) is None:
        return _DECLINED, cacheable
    where = _host_port(host, 443 if https else 80)
    if where is None:
        return _DECLINED, cacheable
    # The headers as `do_open` gives them to `http.client`.
    given["Connection"] = "close"
    headers = {name.title(): value for name, value in given.items()}
    names = {name.lower() for name in headers}
    if "host" not in names or "transfer-encoding" in names:
        return _DECLINED, cacheable  # (`http.client` would write a `Host` of its own; a chunked upload)
    before: list[tuple[bytes, bytes]] = []
    if "accept-encoding" not in names:
        before.append((b"Accept-Encoding", b"identity"))
    sized = "content-length" not in names and not bodiless
    if "content-length" not in names and bodiless and method.upper() in _METHODS_EXPECTING_BODY:
        before.append((b"Content-Length", b"0"))
    after: list[tuple[bytes, bytes]] = []
    for name, value in headers.items():
        line = _header_line(name, value)
        if line is None:
            return _DECLINED, cacheable
        after.append(line)
    host, port = where
    origin = wire_url("", https=https, host=host, port=port)
    # (the Content-Length added for a body, of whatever value: its name is what counts)
    lines = [*before, *([(b"Content-Length", b"0")] if sized else []), *after]
    named = (wire_named(method, lines, False), wire_named(method, lines, True))
    return (origin, tuple(before), sized, tuple(after), named), cacheable


def _header_line(name: Any, value: Any) -> tuple[bytes, bytes] | None:
    # As `putheader` encodes it (a value of text as latin-1, a number in digits), as the door reads
    # it back; None for what `putheader` refuses, or a value on several lines.
    if not isinstance(name, str) or not name.isascii():
        return None
    name_bytes = name.encode("ascii")
    if LEGAL_HEADER_NAME.fullmatch(name_bytes) is None:
        return None
    if isinstance(value, str):
        try:
            value_bytes = value.encode("latin-1")
        except UnicodeEncodeError:
            return None
    elif isinstance(value, bytes):
        value_bytes = value
    elif isinstance(value, int):
        value_bytes = str(value).encode("ascii")
    else:
        return None
    if b"\r" in value_bytes or b"\n" in value_bytes:
        return None
    return name_bytes.strip(), value_bytes.strip()


def _host_port(host: str, default_port: int) -> tuple[str, int] | None:
    # The host and port `http.client`'s connection takes from `host` (its `_get_hostport`); None
    # where it would refuse them.
    if not host or UNSAFE_TARGET.search(host) is not None:
        return None
    port = default_port
    colon = host.rfind(":")
    if colon > host.rfind("]"):
        digits = host[colon + 1 :]
        if digits:
            if not digits.isdigit() or not digits.isascii():
                return None
            port = int(digits)
        host = host[:colon]
    if host and host[0] == "[" and host[-1] == "]":
        host = host[1:-1]
    return host, port


# -- the response ---------------------------------------------------------------------------------


class _Head:
    """A replayed head as ``http.client`` reads it off the door's wire, made once per playback."""

    __slots__ = ("chunked", "fields", "state")

    def __init__(self, answer: Any, method: str) -> None:
        lines, chunked, length = engine_lines(answer, method=method)
        status_line, message = split_head(lines)
        self.chunked = chunked
        #: The header block as ``parse_headers`` makes it, or None: then ``http.client`` parses it.
        self.fields: list[tuple[str, str]] | None = None
        self.state: dict[str, Any] = {}
        if message is None:
            return
        self.fields = message.items()
        status = answer.status_code
        if chunked:
            length = None
        elif method == "HEAD" or status in (204, 304):
            length = 0
        connection = message.get("connection")
        # The attributes `begin` leaves on a response of this head.
        self.state = {
            "debuglevel": 0,
            "version": 11,
            "status": status,
            "code": status,
            "reason": _reason(status_line),
            "chunked": chunked,
            "length": length,
            "will_close": bool(connection and "close" in connection.lower()),
        }
        if not chunked:
            self.state["chunk_left"] = http.client._UNKNOWN  # type: ignore[attr-defined]


def _reason(status_line: bytes) -> str:
    # As `http.client` reads it off the status line (`_read_status`, then `begin`).
    parts = str(status_line, "latin-1").split(None, 2)
    return parts[2].strip() if len(parts) == 3 else ""


def _head(answer: Any, playback: Playback, method: str) -> _Head:
    # By what the head is made of: a recording replayed again and again, and recordings that
    # answer alike, are written and parsed once.
    key = (playback.status, playback.reason, playback.headers, method == "HEAD")
    head = _ANSWER_HEADS.get(key)
    if head is None:
        if len(_ANSWER_HEADS) >= _MOST_HEADS:
            _ANSWER_HEADS.clear()
        head = _ANSWER_HEADS[key] = _Head(answer, method)
    return head


def replayed_response(answer: Any, playback: Playback, method: str) -> http.client.HTTPResponse:
    """
    The ``http.client.HTTPResponse`` that reading ``answer`` (of ``playback``, to a ``method``
    request) off the connection door's wire makes, made over its body in memory where the head
    is plain and the recording whole (:class:`_Replayed`), else read off the door's file. Its
    ``msg`` is left for the caller (``do_open`` puts the reason there, urllib3 the headers).
    """
    head = _head(answer, playback, method)
    stream = answer.stream
    fields = head.fields
    chunks = None
    if fields is not None and isinstance(stream, ReplayStream):
        chunks = stream.take_all(most=None if head.chunked else 1)
    if fields is None or chunks is None:
        # Read by `http.client` from the file the door writes, as through the door.
        answered = AnsweredSocket(answered_file(answer, method))
        response = http.client.HTTPResponse(cast(socket.socket, answered), method=method)
        response.begin()
        return response
    # (all of it, where `http.client` reads none: the wire holds it, and `peek` shows it)
    data = b"".join(chunks)
    body = _Body(data)
    body.chunks = chunks
    body.size = len(data)
    cls = _ReplayedChunked if head.chunked else _Replayed
    response = cls.__new__(cls)
    state = response.__dict__
    state.update(head.state)
    state["headers"] = _message(fields)
    state["fp"] = body
    state["_method"] = method
    state["_answer"] = answer
    state["_taken"] = []
    return response


def shut_down(response: http.client.HTTPResponse, left: int | None, closing: bool) -> None:
    """
    What shutting the socket under ``response`` (made by :func:`replayed_response`, or read by
    ``http.client`` off a door's file in memory) for reading leaves it: nothing more arrives, as
    from an upstream that has sent nothing since. The body ends where the client has read it,
    but for a chunked answer the rest of the chunk being read (``left`` bytes of its data, then
    its closing CRLF where ``closing``), which arrives whole with its framing: the reader that
    goes on (``http.client``'s, or urllib3's own reading of the chunks) then reads the
    connection's end and fails as it fails on a body cut short.
    """
    fp: Any = response.fp
    if fp is None:
        return  # ended already: nothing to cut
    state = response.__dict__
    if isinstance(response, _ReplayedChunked) and not response._on_wire:
        state["chunk_left"] = response.chunk_left  # (as `http.client` keeps it, read off the wire)
    pending = b""
    if response.chunked and (left or closing):
        pending = fp.read(left or 0) + (b"\r\n" if isinstance(fp, _Body) else fp.read(2))
    state["_on_wire"] = True  # (`_Replayed`: read by `http.client`'s own code from here)
    state["fp"] = io.BufferedReader(io.BytesIO(pending))
    fp.close()


def _message(fields: list[tuple[str, str]]) -> http.client.HTTPMessage:
    """
    The ``HTTPMessage`` ``parse_headers`` makes of a header block of ``fields``: made from the
    state it leaves at once (its two lists its own, the rest shared values) where that state
    is known, else by its own steps.
    """
    message = http.client.HTTPMessage.__new__(http.client.HTTPMessage)
    if _MESSAGE_STATE is not None:
        message.__dict__.update(_MESSAGE_STATE, _headers=fields[:], defects=[])
        return message
    message.__init__()  # type: ignore[misc]
    for name, value in fields:
        message.set_raw(name, value)
    message.set_payload("")  # what the parser leaves after a header block
    return message


def _message_state() -> dict[str, Any] | None:
    message = http.client.HTTPMessage()
    message.set_payload("")
    state = dict(vars(message))
    lists = {name for name, value in state.items() if isinstance(value, list)}
    shared = (type(None), str, type(message.policy))  # (the policy: compat32, shared by all)
    if lists != {"_headers", "defects"} or not all(
        isinstance(value, shared) for name, value in state.items() if name not in lists
    ):
        return None  # (another Python's message: made by its own steps)
    return state


#: What an ``HTTPMessage`` holds once ``parse_headers`` made it, its header lines aside.
_MESSAGE_STATE = _message_state()


class _Body(io.BytesIO):
    """
    A replayed body in memory, made of its recorded ``chunks``: ``peek`` and ``read1`` stop at
    the end of the chunk being read (what a response read by another hand falls back on).
    """

    chunks: Sequence[bytes]
    size: int
    _ends: list[int] | None = None

    def rest(self) -> int:
        return self.size - self.tell()

    @property
    def ends(self) -> list[int]:
        # Where each chunk ends: only a style that stops at them needs them (made once).
        if self._ends is None:
            self._ends = list(itertools.accumulate(map(len, self.chunks)))
        return self._ends

    def _chunk(self) -> tuple[int, int]:
        # Where the reading is, and where the chunk it is in (or the next one, at a boundary) ends.
        position = self.tell()
        ends = self.ends
        index = bisect.bisect_right(ends, position)
        return position, ends[index] if index < len(ends) else position

    def peek(self, size: int = 0) -> bytes:
        position, end = self._chunk()
        with self.getbuffer() as view:
            return bytes(view[position:end])

    def read1(self, size: int | None = -1) -> bytes:
        position, end = self._chunk()
        if size is None or size < 0 or size > end - position:
            size = end - position
        return self.read(size)


class _Replayed(http.client.HTTPResponse):
    """
    What ``do_open`` returns for a replayed answer framed by its length (or with no body), made
    over the body in memory: ``http.client``'s own reading, with no framing to parse.

    ``read1`` and ``peek`` end where ``http.client``'s buffered reader ends them on the door's
    wire, at the edge of its 8 KB buffer as well as at a chunk's end; so does a chunked answer's
    ``readline(n)`` (which peeks). Those are read off that wire (:meth:`_wired`): the reads
    taken so far are taken again there, which leaves its buffer where the door's would be, and
    the response goes on as the door's.
    """

    fp: Any
    _answer: Any
    #: The reads taken (each method, size, bytes given, and where the body was left); the lines
    #: iteration gave between them are not noted, but found in the body when needed.
    _taken: list[tuple[str, int | None, int, int]]
    #: Whether lines were read by iterating (see `_lines`).
    _iterated = False
    #: Read off the door's wire since a read that depends on its buffer (see `_wired`).
    _on_wire = False

    def _took(self, name: str, size: int | None, count: int) -> None:
        # (nothing once the response has ended: it is never read off the wire then)
        body = self.fp
        if body is not None and not self._on_wire:
            self._taken.append((name, size, count, body.tell()))

    def read(self, amt: int | None = None) -> bytes:
        data = super().read(amt)
        self._took("read", amt, len(data))
        return data

    def readinto(self, b: Any) -> int:
        count = super().readinto(b)
        with memoryview(b) as view:
            self._took("readinto", view.nbytes, count)
        return count

    def readline(self, limit: int | None = -1) -> bytes:
        line = super().readline(limit)  # type: ignore[arg-type]  # (refused as http.client refuses it)
        self._took("readline", limit, len(line))
        return line

    def read1(self, n: int = -1) -> bytes:
        if self.fp is not None and not self._on_wire:
            self._wired()
        return super().read1(n)

    def peek(self, n: int = -1) -> bytes:
        if self.fp is not None and not self._on_wire:
            self._wired()
        return super().peek(n)

    def _wired(self) -> bool:
        """
        Go on as the door's response, ``http.client``'s own reading over the door's file, with
        the reads taken so far taken again there; False, changing nothing, where they do not
        read alike (the body was read by another hand, as requests' door reads chunks).
        """
        if self._on_wire:
            return True
        body: _Body = self.fp
        steps: list[tuple[str, int | None, int]] = []
        data = body.getvalue()
        position = 0
        for name, size, count, end in self._taken:
            if not self._lines_between(data, position, end - count, steps):
                return False
            steps.append((name, size, count))
            position = end
        if not self._lines_between(data, position, body.tell(), steps):
            return False
        method = self._method  # type: ignore[attr-defined]
        answer = self._answer
        lines, chunked, length = engine_lines(answer, method=method)
        wire = encode_body(body.chunks, chunked=chunked, length=length)
        file = head_file(lines, answer.status_code, wire)
        door = http.client.HTTPResponse(cast(socket.socket, AnsweredSocket(file)), method=method)
        door.begin()
        for name, size, count in steps:
            if name == "readinto":
                got = door.readinto(bytearray(cast(int, size)))
            else:
                got = len(getattr(door, name)(size))
            if got != count:
                return False
        state = self.__dict__
        for name in ("fp", "length", "chunked", "chunk_left", "will_close"):
            state[name] = door.__dict__[name]
        door.fp = None  # type: ignore[assignment]  # (its file is this response's now: not closed when the door's is let go)
        state["_on_wire"] = True
        body.close()  # (an iteration over it stops: `_lines`)
        return True

    def _lines_between(
        self, data: bytes, start: int, end: int, steps: list[tuple[str, int | None, int]]
    ) -> bool:
        # The lines iteration read from `start` to `end`, as `readline()` calls, onto `steps`;
        # False where no iteration read them (the body was read by another hand).
        if start == end:
            return True
        if start > end or not self._iterated:
            return False
        while start < end:
            newline = data.find(b"\n", start, end)
            if newline < 0:
                if end != len(data):
                    return False
                newline = end - 1  # the last line, unterminated
            steps.append(("readline", -1, newline + 1 - start))
            start = newline + 1
        return True

    def __iter__(self) -> Iterator[bytes]:
        body: _Body | None = self.fp
        if body is None or self._on_wire or self._method == "HEAD" or body.rest() != self.length:  # type: ignore[attr-defined]
            return self  # its `readline`, line by line
        return self._lines(body)

    def _lines(self, body: _Body) -> Iterator[bytes]:
        # The lines `readline` gives one by one, read by the body's own iterator; a read of
        # another kind in between moves it on, as it moves `readline` on.
        self._iterated = True
        for line in body:
            self.length -= len(line)  # type: ignore[operator]
            yield line
            if self.fp is not body:
                yield from self._rest()
                return

    def _rest(self) -> Iterator[bytes]:
        # The lines left once the response was read off the wire in the middle of iterating
        # (nothing once it has ended), as its `readline` gives them.
        if self.fp is not None:
            yield from iter(self.readline, b"")


class _ReplayedChunked(_Replayed):
    """
    What ``do_open`` returns for a replayed chunked answer, made over the body in memory: each
    reading style gives what ``http.client`` gives reading the chunks off the door's wire, and
    ends the response where it does (at a read that reaches past the last chunk), without
    parsing their framing.
    """

    _left_at_close: int | None = None

    @property
    def chunk_left(self) -> int | None:
        # What is left of the chunk being read (0 at a boundary, None before the first); once
        # the response has ended, what was left then (None at the end of the body).
        if self._on_wire:
            left: int | None = self.__dict__["chunk_left"]
            return left
        body: _Body | None = self.fp
        if body is None:
            return self._left_at_close
        position = body.tell()
        if not position or position == body.size:
            return 0 if position else None
        return body.ends[bisect.bisect_left(body.ends, position)] - position

    @chunk_left.setter
    def chunk_left(self, left: int | None) -> None:
        # (set by `http.client` once read off the wire)
        self.__dict__["chunk_left"] = left

    def _close_conn(self) -> None:
        self._left_at_close = self.chunk_left
        super()._close_conn()  # type: ignore[misc]

    def _end(self) -> None:
        # The last chunk read: the response ends with no chunk left.
        self._close_conn()
        self._left_at_close = None

    def _at_end(self, body: _Body) -> bool:
        # At the end of the body the response ends, as `http.client` ends it on the last chunk.
        if body.rest():
            return False
        self._end()
        return True

    def read(self, amt: int | None = None) -> bytes:
        if self._on_wire:
            return http.client.HTTPResponse.read(self, amt)
        body: _Body | None = self.fp
        if body is None:
            return b""
        if amt is not None and 0 <= amt <= body.rest():
            data = b"" if self._at_end(body) else body.read(amt)
        else:
            data = body.read()
            self._end()
        self._took("read", amt, len(data))
        return data

    def readinto(self, b: Any) -> int:
        if self._on_wire:
            return http.client.HTTPResponse.readinto(self, b)
        body: _Body | None = self.fp
        if body is None:
            return 0
        with memoryview(b) as view:
            size = view.nbytes
        if size <= body.rest():
            count = 0 if self._at_end(body) else body.readinto(b)
        else:
            count = body.readinto(b)
            self._end()
        self._took("readinto", size, count)
        return count

    def read1(self, n: int = -1) -> bytes:
        if self._on_wire:
            return http.client.HTTPResponse.read1(self, n)
        body: _Body | None = self.fp
        if body is None or self._at_end(body) or n == 0:
            return b""
        return http.client.HTTPResponse.read1(self, n) if self._wired() else body.read1(n)

    def peek(self, n: int = -1) -> bytes:
        if self._on_wire:
            return http.client.HTTPResponse.peek(self, n)
        body: _Body | None = self.fp
        if body is None or self._at_end(body):
            return b""
        return http.client.HTTPResponse.peek(self, n) if self._wired() else body.peek(n)

    def readline(self, limit: int | None = -1) -> bytes:
        if self._on_wire:
            return http.client.HTTPResponse.readline(self, limit)  # type: ignore[arg-type]
        body: _Body | None = self.fp
        if limit is None:
            limit = -1
        if body is None or limit == 0 or self._at_end(body):
            return b""
        if limit > 0 and self._wired():
            # `http.client` reads it by `peek` and `read` (`io.IOBase.readline`): where the
            # line stops, and how long it may run past `limit`, depends on its buffer's edges.
            return http.client.HTTPResponse.readline(self, limit)
        line = body.readline(limit)
        if line[-1:] != b"\n" and not body.rest():
            self._end()  # the last line, unterminated
        self._took("readline", limit, len(line))
        return line

    def __iter__(self) -> Iterator[bytes]:
        return self if self._on_wire else self._lines(self.fp)

    def _lines(self, body: _Body | None) -> Iterator[bytes]:
        # As `readline` gives them, it ends the response at the end of the body: with the last
        # line when it has no newline, else with the empty line after it.
        if body is None:
            return
        self._iterated = True
        if body.size and body.chunks[-1][-1:] != b"\n":
            for line in body:
                if body.tell() == body.size and line[-1:] != b"\n":
                    self._end()
                    yield line
                    return
                yield line
                if self.fp is not body:
                    yield from self._rest()
                    return
        else:
            try:
                for line in body:
                    yield line
            except ValueError:  # the body closed under the loop: the response ended, or is read off the wire
                yield from self._rest()
                return
        if self.fp is not None:
            self._end()
