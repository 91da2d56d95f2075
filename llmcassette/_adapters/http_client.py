"""
The door of the standard library's ``http.client``, and of everything built on its connection
class: ``urllib.request``, urllib3 (1.26 and 2.x), and through urllib3 requests and botocore.

While a cassette is active, a connection that would connect gets a :class:`CassetteSocket`
instead of a socket. The client writes its request into it as usual; once the request is whole,
the cassette decides what answers it, and the library reads the answer back from the same socket
as HTTP/1.1 bytes (:mod:`._wire`), through its own parser. So every reading style the library
has (``read(n)``, ``read1``, ``readinto``, ``readline``, urllib3's ``stream()``, requests'
``iter_content`` and ``iter_lines``) sees the recorded chunks, and every failure is raised by the
library's own code as it would be live:

- a connection fault (``connect_error``, ``connect_timeout``) is raised by the call that sends the
  request, as connecting fails there live: ``ConnectionRefusedError`` / ``TimeoutError`` from
  ``http.client`` (``urllib.request`` wraps them in ``URLError``), urllib3's
  ``NewConnectionError`` / ``ConnectTimeoutError`` on its connections, so its ``Retry`` counts
  them as connect errors and requests raises ``ConnectionError`` / ``ConnectTimeout``;
- a stream cut mid-way stops the bytes mid-framing (``IncompleteRead``, ``ProtocolError``,
  ``ChunkedEncodingError``), or fails the read with ``ConnectionResetError`` when it was reset
  (httpx's ``ReadError``), and a read that outwaits the socket's timeout raises
  ``socket.timeout`` (urllib3's ``ReadTimeoutError``, requests' ``ReadTimeout``);
- an upstream that hung up before answering, live or recorded, ends the connection with no
  response: closed (``RemoteDisconnected``) or reset (``ConnectionResetError``). Recording stores
  it as every door does, in httpx's terms (a response without status).

The one step of the library's reading that a replay skips is parsing the header block of the
head: ``http.client.parse_headers`` is handed, for a file that holds a cassette's answer, the
``HTTPMessage`` its own parser makes of those lines (built by :func:`split_head`, and only for a
block of plain ``name: value`` lines after a final status), which costs a JSON answer more than
the rest of its head. The status line, the framing and the body are read by the library from the
file as on the wire; the block is in the file too, skipped, for a head read once the cassette's
``parse_headers`` is gone (another thread exited the cassette), which the library parses itself.

Most replays through urllib3 never reach this door: its pool answers them first
(:mod:`.urllib3_pool`), over a file made here (:func:`answered_file`), and leaves the rest to it;
``urllib.request``'s handler does the same (:mod:`.urllib_request`).

Replay opens no socket at all. Recording opens the real connection with the library's own
``connect`` (TLS, proxies and socket options as configured), sends the request bytes as the
client wrote them, and passes the response through chunk by chunk as it arrives.
"""

from __future__ import annotations

import contextvars
import errno
import functools
import http.client
import io
import os
import re
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import httpx

from .._clock import wait
from .._flavors import TIMED_OUT, network_text
from .._intercept import current_cassette
from .._recording import BODY_NONE, HANG_UP_ERRORS
from .._streams import ReplayStream
from ._wire import (
    ParsedRequest,
    WireReader,
    encode_body,
    engine_flavor,
    engine_lines,
    engine_request,
    parse_request,
    timeout_error,
)

if TYPE_CHECKING:
    from .._cassette import Cassette, Decision

__all__ = [
    "AnsweredSocket",
    "CassetteSocket",
    "LEGAL_HEADER_NAME",
    "UNSAFE_TARGET",
    "answered_file",
    "head_file",
    "patches",
    "split_head",
    "urllib3_v1",
    "wire_url",
    "would_verify",
]

_monotonic = time.monotonic

#: What ``http.client`` refuses in a request target or a host, and the header names it takes:
#: what a door above the connection must find before it writes a request as the library would.
UNSAFE_TARGET = re.compile("[\x00-\x20\x7f]")
LEGAL_HEADER_NAME = re.compile(rb"[^:\s][^:\r\n]*")


def _is_urllib3(connection: Any) -> bool:
    module = sys.modules.get("urllib3.connection")
    return module is not None and isinstance(connection, module.HTTPConnection)


@functools.cache
def urllib3_v1() -> bool:
    """Whether the urllib3 imported is a 1.x (1.26), whose connections and responses differ."""
    return str(sys.modules["urllib3"].__version__).startswith("1.")


def would_verify(cert_reqs: Any, assert_fingerprint: Any) -> bool:
    """
    Whether urllib3's TLS handshake, with these settings of its connection, would count the
    connection as verified: a certificate required, or a fingerprint to match. (The connection
    takes ``cert_reqs`` from its SSL context when it is given none.)
    """
    from urllib3.util.ssl_ import resolve_cert_reqs

    required = resolve_cert_reqs(cert_reqs) == ssl.CERT_REQUIRED
    if urllib3_v1():
        return required or assert_fingerprint is not None
    return required or bool(assert_fingerprint)


def _is_urllib3_https(connection: Any) -> bool:
    # urllib3's TLS connection (botocore's too) is no `http.client.HTTPSConnection`, and has no scheme.
    module = sys.modules.get("urllib3.connection")
    return module is not None and isinstance(connection, module.HTTPSConnection)


def _connect_failure(connection: Any, error_type: str, message: str) -> BaseException:
    """The exception a failed connect raises in the library that owns ``connection``."""
    refused = error_type == "ConnectError"
    if _is_urllib3(connection):
        from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

        if refused:
            text = f"Failed to establish a new connection: [Errno {errno.ECONNREFUSED}] Connection refused"
            return NewConnectionError(connection, text)
        timeout = getattr(connection, "timeout", None)
        return ConnectTimeoutError(
            connection, f"Connection to {connection.host} timed out. (connect timeout={timeout})"
        )
    if refused:
        return ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    return timeout_error()


class _LiveBody(httpx.SyncByteStream):
    """The body of a live response, read as it arrives, with failures in httpx's terms for the engine."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        try:
            while True:
                chunk = self._response.read1(65536)
                if not chunk:
                    return
                yield chunk
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out") from exc
        except ConnectionResetError as exc:  # a reset, as httpx names one
            raise httpx.ReadError(str(exc)) from exc
        except (http.client.IncompleteRead, ConnectionError) as exc:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body"
            ) from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc)) from exc

    def close(self) -> None:
        self._response.close()


def _broken(exc: BaseException) -> BaseException | None:
    # What the end of an engine stream becomes on the wire: a timeout or a reset (httpx's
    # ReadError) is raised to the reader; any other failure is a connection that closed, so the
    # bytes just stop.
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return TimeoutError(str(exc) or TIMED_OUT)  # (saying what the socket says: TLS's own words)
    if isinstance(exc, httpx.ReadError | ConnectionResetError):
        return ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))
    if isinstance(exc, httpx.TransportError | OSError):
        return None
    return exc


class CassetteSocket:
    """
    What a connection holds instead of a socket while a cassette is active: it takes the request
    as the client writes it and hands back the answer the cassette decides on (module docstring).
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._out = bytearray()
        self._timeout: float | None = getattr(connection, "timeout", None)
        if not isinstance(self._timeout, int | float):
            self._timeout = None
        self._real: Any = None
        self._pending: tuple[Cassette, Any, ParsedRequest, Decision, float] | None = None
        self._raw_request = b""

    # -- the socket API the libraries use -------------------------------------------------------

    def sendall(self, data: bytes) -> None:
        self._out += data

    def send(self, data: bytes) -> int:
        self._out += data
        return len(data)

    def settimeout(self, value: float | None) -> None:
        self._timeout = value
        if self._real is not None:
            self._real.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def setsockopt(self, *args: Any) -> None:
        pass

    def getsockopt(self, *args: Any) -> int:
        return 0

    def shutdown(self, how: int) -> None:
        if self._real is not None:
            self._real.shutdown(how)

    def close(self) -> None:
        if self._real is not None:
            self._real.close()
            self._real = None

    def fileno(self) -> int:
        # Pools poll an idle connection's descriptor to see whether the server closed it: this
        # one never becomes readable, so a replayed connection is never taken for dropped.
        return self._real.fileno() if self._real is not None else _idle_descriptor()

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        """The response to the request written so far, to be parsed by the library."""
        __tracebackhide__ = True
        if self._pending is None:
            self.decide()
        if self._pending is None:
            # No cassette answers: a connection made under one and kept by a pool after it.
            self._ensure_real()
            self._real.sendall(self._raw_request)
            return self._real.makefile(mode, *args, **kwargs)  # type: ignore[no-any-return]
        cassette, request, parsed, decision, start = self._pending
        self._pending = None
        if decision.failure is not None and decision.failure.error_type in HANG_UP_ERRORS:
            # A recorded upstream that hung up before answering: no head at all, the connection
            # closed (the library's parser says the remote end closed it) or reset, as `serve` does.
            hang_up = _hang_up(decision.log_failure().error_type)
            return io.BufferedReader(WireReader(b"", hang_up, chunked=False, broken=_raised))
        if decision.failure is not None:  # a head that never comes: the read times out
            # After the fault's silence: its delay, else the client's read timeout, which the
            # socket's timeout is now (urllib3 sets it once the request is sent; it was the
            # connect timeout when the cassette decided).
            failure = decision.log_failure()
            read_timeout_s = self._timeout or 0.0
            wait(read_timeout_s if failure.waits_for_read_timeout else failure.delay_ms / 1000.0)
            # (in the words of the socket that times out: TLS's are its own)
            text = network_text("ReadTimeout", TIMED_OUT, is_async=False, url=decision.url)
            return io.BufferedReader(WireReader(b"", _silence(text), chunked=False, broken=_broken))
        # The socket's timeout now is the read timeout (urllib3 sets it once the request is sent).
        request.extensions["timeout"] = _timeouts(self._timeout)
        try:
            response = cassette.answer(
                engine_flavor(), request, parsed.body, decision, self._live, start=start
            )
        except httpx.TransportError as exc:
            if isinstance(exc.__cause__, OSError):
                # The upstream hung up (`_live`): recorded, and the client gets its own library's error.
                raise exc.__cause__ from None
            raise
        return answered_file(response, parsed.method)

    # -- deciding and answering ------------------------------------------------------------------

    def decide(self, *, body_none: bool | None = None) -> None:
        """
        The request is whole: let the cassette decide what answers it; fail a connect here.
        ``body_none``: whether the connection's ``request`` was handed no body (None when unknown).
        """
        __tracebackhide__ = True
        start = _monotonic()
        raw, self._out = bytes(self._out), bytearray()
        if not raw:
            return
        self._raw_request = raw
        cassette = current_cassette()
        if cassette is None:
            return
        parsed = parse_request(raw)
        request = engine_request(parsed.method, self._url(parsed.target), parsed.headers, parsed.body)
        if body_none is not None:
            request.extensions[BODY_NONE] = body_none
        # What a fault takes for the client's timeout: the socket's, as the request is sent.
        request.extensions["timeout"] = _timeouts(self._timeout)
        decision = cassette.decide(request, parsed.body)
        self._pending = (cassette, request, parsed, decision, start)
        failure = decision.failure
        if failure is not None and failure.error_type in ("ConnectError", "ConnectTimeout"):
            self._pending = None
            decision.log_failure()
            wait(failure.delay_ms / 1000.0)
            raise _connect_failure(self._connection, failure.error_type, failure.message)

    def _url(self, target: str) -> str:
        if "://" in target:  # through a proxy, the target is the whole URL
            return target
        connection = self._connection
        https = (
            isinstance(connection, http.client.HTTPSConnection)
            or _is_urllib3_https(connection)
            or getattr(connection, "scheme", "") == "https"
        )
        host = getattr(connection, "_tunnel_host", None) or connection.host
        port = getattr(connection, "_tunnel_port", None) or connection.port
        return wire_url(target, https=https, host=host, port=port)

    def _ensure_real(self) -> None:
        if self._real is None:
            connection = self._connection
            real_connect = _real_connect(type(connection))
            held = connection.sock
            token = _CONNECTING.set(True)
            try:
                real_connect(connection)
                self._real = connection.sock
            finally:
                _CONNECTING.reset(token)
                connection.sock = held
            if self._timeout is not None:
                self._real.settimeout(self._timeout)

    def _live(self, request: Any) -> Any:
        """Send the request as the client wrote it over a real connection; the response as httpx's."""
        self._ensure_real()
        try:
            self._real.sendall(self._raw_request)
            live = http.client.HTTPResponse(self._real, method=request.method)
            try:
                live.begin()
            except BaseException:
                live.close()  # its file on the socket, as http.client's own getresponse does
                raise
        except http.client.RemoteDisconnected as exc:
            # In httpx's terms, so that the engine records the hang-up as any door does.
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.") from exc
        except (ConnectionResetError, BrokenPipeError) as exc:
            error = httpx.WriteError if isinstance(exc, BrokenPipeError) else httpx.ReadError
            raise error(str(exc)) from exc
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in live.msg.items()]
        extensions = {"reason_phrase": live.reason.encode("latin-1"), "http_version": b"HTTP/1.1"}
        return httpx.Response(
            live.status,
            headers=headers,
            stream=_LiveBody(live),
            extensions=extensions,
            request=request,
        )


def wire_url(target: str, *, https: bool, host: str, port: int | None) -> str:
    """The URL the engine is given for ``target`` sent over a connection to ``host`` and ``port``."""
    scheme = "https" if https else "http"
    netloc = f"[{host}]" if ":" in host else host
    if port and port != (443 if https else 80):
        netloc += f":{port}"
    return f"{scheme}://{netloc}{target}"


def answered_file(response: Any, method: str) -> io.BufferedReader:
    """
    The file a library's ``http.client`` response reads the engine's ``response`` (an httpx one)
    from, as HTTP/1.1 bytes (:mod:`._wire`): the door's ``makefile``, and urllib3's pool door.
    """
    stream = response.stream
    lines, chunked, length = engine_lines(response, method=method)
    # A replay that waits for nothing is written in one piece when its framing keeps the
    # boundaries (each chunk its own HTTP chunk; a body sent whole is one chunk anyway): the
    # library's parser finds them without a round trip through the reader per chunk.
    whole = None
    if isinstance(stream, ReplayStream):
        whole = stream.take_all(most=None if chunked else 1)
    if whole is not None:  # all in memory: read by the C reader, with nothing to wait for
        body = encode_body(whole, chunked=chunked, length=length)
        return head_file(lines, response.status_code, body, on_close=stream.close)
    message, block_size = _handed_block(lines, response.status_code)
    reader = WireReader(
        _whole_head(lines),
        iter(stream),
        chunked=chunked,
        broken=_broken,
        on_close=stream.close,
        length=length,
    )
    return _AnsweredFile(reader, message, block_size)


def head_file(
    lines: list[bytes], status: int, body: bytes = b"", *, on_close: Callable[[], None] | None = None
) -> io.BufferedReader:
    """
    The file an ``http.client`` response reads the head of ``lines`` (:func:`._wire.engine_lines`)
    and then ``body`` (as it goes on the wire) from, all in memory: :func:`answered_file`'s for
    an answer that waits for nothing. ``on_close`` is called when the file is closed.
    """
    message, block_size = _handed_block(lines, status)
    return _AnsweredFile(io.BytesIO(_whole_head(lines) + body), message, block_size, on_close=on_close)


def _handed_block(lines: list[bytes], status: int) -> tuple[http.client.HTTPMessage | None, int]:
    # The header block goes to the library already parsed when `parse_headers` can take it
    # from the file (_parse_headers): the rest of the head is still read by its own code.
    # (Not for a 1xx status, whose header block `begin` skips with a reader of its own.)
    # The file holds the whole head even so: the cassette may exit (in another thread) before
    # `begin` reads it, and then the library's own `parse_headers` reads the block from the file.
    if status < 200 or not _hands_over_headers():
        return None, 0
    status_line, message = split_head(lines)
    if message is None:
        return None, 0
    return message, sum(len(line) + 2 for line in lines) + 2 - len(status_line)


class AnsweredSocket:
    """
    What a door above the connection (urllib3's pool, ``urllib.request``'s handler) makes an
    ``http.client`` response over: a socket whose only file is the cassette's answer.
    """

    __slots__ = ("_file",)

    def __init__(self, file: Any) -> None:
        self._file = file

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        return self._file


class _AnsweredFile(io.BufferedReader):
    """
    The file a cassette's answer is read from, holding its header block also as ``http.client``'s
    ``parse_headers`` would return it (``message``, None where :func:`split_head` could not vouch
    for the head): that ``parse_headers`` takes it and skips the block's ``block_size`` bytes.
    """

    def __init__(
        self,
        raw: io.RawIOBase | io.BytesIO,
        message: http.client.HTTPMessage | None,
        block_size: int = 0,
        *,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(raw)
        self.message = message
        self.block_size = block_size
        self._on_close = on_close

    def close(self) -> None:
        if self._on_close is not None and not self.closed:
            self._on_close()
        super().close()


#: A header line that ``http.client`` and the ``email`` parser read into exactly its ``name`` and
#: ``value``: a name of the token characters ``email`` takes for one, no CR or LF, not too long.
_PLAIN_HEADER = re.compile(rb"[\x21-\x39\x3b-\x7e]{1,256}:[^\r\n]{0,65000}")
#: ``http.client`` refuses a head of more header lines than this (``_MAXHEADERS``, the blank line counted).
_MOST_HEADERS = 99


def split_head(lines: list[bytes]) -> tuple[bytes, http.client.HTTPMessage | None]:
    """
    The status line of a head of ``lines`` (:func:`engine_lines`), and its header block as the
    ``HTTPMessage`` that ``http.client.parse_headers`` makes of it: the ``email`` parser costs
    more than the rest of a replayed JSON answer's head. The whole head and None where a line is
    not plainly ``name: value``, for the library to parse itself.
    """
    if len(lines) > _MOST_HEADERS + 1:
        return _whole_head(lines), None
    fields = [_plain_field(line) for line in lines[1:]]
    if None in fields:
        return _whole_head(lines), None
    message = http.client.HTTPMessage()
    for name, value in cast(list[tuple[str, str]], fields):
        message.set_raw(name, value)
    message.set_payload("")  # what the parser leaves after a header block
    return lines[0] + b"\r\n", message


def _whole_head(lines: list[bytes]) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _hands_over_headers() -> bool:
    # Only while this door's `parse_headers` is the one `http.client` calls: a response sent under
    # a cassette may be read after it exits, or someone may have patched on top of ours.
    return getattr(http.client.parse_headers, "hands_over_headers", False) is True


@functools.lru_cache(maxsize=4096)
def _plain_field(line: bytes) -> tuple[str, str] | None:
    # Cached: most header lines (a content type, the framing) come back answer after answer.
    if _PLAIN_HEADER.fullmatch(line) is None:
        return None
    name, _, value = line.decode("latin-1").partition(":")
    return name, value.lstrip(" \t")  # as email's compat32 policy stores it


def _parse_headers(original: Callable[..., Any]) -> Callable[..., Any]:
    def parse_headers(fp: Any, _class: Any = http.client.HTTPMessage) -> Any:
        if type(fp) is _AnsweredFile and fp.message is not None and _class is http.client.HTTPMessage:
            message, fp.message = fp.message, None
            fp.read(fp.block_size)
            return message
        return original(fp, _class)

    parse_headers.__wrapped__ = original  # type: ignore[attr-defined]
    parse_headers.hands_over_headers = True  # type: ignore[attr-defined]
    return parse_headers


def _timeouts(timeout_s: float | None) -> dict[str, float | None]:
    """A socket timeout as httpx's timeout extension, which the engine reads."""
    return {"connect": timeout_s, "read": timeout_s, "write": timeout_s, "pool": timeout_s}


@functools.cache
def _idle_descriptor() -> int:
    read_end, _write_end = os.pipe()  # both stay open: with no writer the reader would see EOF
    return read_end


def _hang_up(error_type: str) -> Iterator[bytes]:
    # No byte of a response: a close ends the read, a reset fails it.
    if error_type != "RemoteProtocolError":
        raise ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))
    return
    yield b""  # a generator


def _raised(exc: BaseException) -> BaseException:
    return exc


def _silence(text: str) -> Iterator[bytes]:
    raise TimeoutError(text)
    yield b""  # a generator that fails on its first step


def _real_connect(owner: type) -> Callable[[Any], None]:
    """The ``connect`` of ``owner`` that really connects: its own or its nearest base's, unwrapped."""
    found: Any = next(c.__dict__["connect"] for c in owner.__mro__ if "connect" in c.__dict__)
    while hasattr(found, "__wrapped__"):
        found = found.__wrapped__
    result: Callable[[Any], None] = found
    return result


#: True while the door connects a connection for real (to record it): the real ``connect`` calls
#: its base class's, which is patched too (``HTTPSConnection.connect`` calls
#: ``HTTPConnection.connect``, then wraps the socket in TLS), and that one must connect as well.
_CONNECTING: contextvars.ContextVar[bool] = contextvars.ContextVar("llmcassette_connecting", default=False)


def _connect(original: Callable[[Any], None]) -> Callable[[Any], None]:
    def connect(self: Any) -> None:
        if current_cassette() is None or _CONNECTING.get():
            original(self)
            return
        # Which cassette answers is decided per request: a pool may keep this connection longer.
        self.sock = CassetteSocket(self)
        if _is_urllib3_https(self):
            # urllib3 warns of an unverified HTTPS request after connecting, by this flag, which
            # its TLS handshake sets: the replay warns exactly when the live request would.
            forwarded = getattr(self, "proxy_is_forwarding", False)  # never verified, live
            self.is_verified = not forwarded and would_verify(self.cert_reqs, self.assert_fingerprint)

    connect.__wrapped__ = original  # type: ignore[attr-defined]
    return connect


def _request(original: Callable[..., Any]) -> Callable[..., Any]:
    def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        sock = getattr(self, "sock", None)
        if sock is not None and not isinstance(sock, CassetteSocket) and current_cassette() is not None:
            # A live connection a pool kept from before the cassette: closed, so that sending
            # connects again and gets a cassette socket, rather than reaching the upstream.
            self.close()
        result = original(self, *args, **kwargs)
        sock = getattr(self, "sock", None)
        if isinstance(sock, CassetteSocket):
            # `request(method, url, body=None, headers=None, ...)` in http.client and urllib3
            # alike: the body handed over is what vcrpy's stub stores (see `sent_no_body`).
            body = kwargs["body"] if "body" in kwargs else args[2] if len(args) > 2 else None
            sock.decide(body_none=body is None)
        return result

    request.__wrapped__ = original  # type: ignore[attr-defined]
    return request


def patches(module: ModuleType) -> list[tuple[Any, str, Any, Any]]:
    """``(class, attribute, original, replacement)`` for every connection method this door wraps
    in ``module``: ``http.client`` or ``urllib3.connection``, once imported."""
    found: list[tuple[Any, str, Any, Any]] = []
    if module is http.client:
        found.append((module, "parse_headers", module.parse_headers, _parse_headers(module.parse_headers)))
    for owner in (module.HTTPConnection, module.HTTPSConnection):
        for attribute, factory in (
            ("connect", _connect),
            ("request", _request),
            ("request_chunked", _request),
        ):
            original = owner.__dict__.get(attribute)
            if original is None:
                continue
            found.append((owner, attribute, original, factory(original)))
    return found
