"""
The door of aiohttp's ``ClientSession``: while a cassette is active, the connector hands out a
connection whose transport is a :class:`CassetteTransport` instead of a socket's.

aiohttp writes its request into the transport as usual; once the request is whole, the cassette
decides what answers it, and the answer is fed to aiohttp's own protocol as HTTP/1.1 bytes, one
recorded chunk at a time (:mod:`._wire`), each once the client wants more than it has (fed at
once, chunks would merge in aiohttp's buffer). A replay that waits for nothing is fed from the
client's own reads, where aiohttp's reader would wait for the socket; any other answer (recorded
pace, a fault's silence, a recording) by a task of the door's, which waits, without waking the
loop, for the reader to ask for more. aiohttp's parser and ``StreamReader`` then do what they
do live, so every reading style (``read()``, ``content.iter_chunked``, ``iter_any``,
``readline``, ``async for line in content``, ``read_nowait``, ``wait_eof``) sees the recorded
chunks, and failures are aiohttp's own: a ``disconnect`` is a connection lost mid-body
(``ClientPayloadError``), a timeout is ``SocketTimeoutError`` or ``ConnectionTimeoutError``
(``ServerTimeoutError`` before aiohttp 3.10), or ``asyncio.TimeoutError`` where the call's
``total`` comes due before any ``sock_read``, ``connect_error`` is ``ClientConnectorError``, and
an upstream that hung up before answering (live, or recorded as a response without status) is a
connection lost before the head: ``ServerDisconnectedError`` for a close, ``ClientOSError`` for
a reset.

Every cassette answer ends its connection (``Connection: close``), so a pooled connection never
outlives the cassette that answered on it. Recording opens the real connection with the
connector's own ``_create_connection`` (TLS, proxies, resolver as configured), sends the request
bytes aiohttp wrote, and passes the answer through as it arrives.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import inspect
import os
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from types import ModuleType
from typing import Any

import h11
import httpx

from .._clock import await_wait
from .._intercept import current_cassette
from .._recording import HANG_UP_ERRORS, hung_up_before_answer
from .._streams import ReplayStream
from ._wire import (
    encode_chunk,
    engine_flavor,
    engine_head,
    engine_request,
    parse_request,
    request_complete,
)

__all__ = ["CassetteTransport", "patches"]

_monotonic = time.monotonic


def _timeout_error(name: str) -> type[Exception]:
    """
    aiohttp's class for a timeout: ``ConnectionTimeoutError`` or ``SocketTimeoutError`` where it
    has them (3.10 and later), else ``ServerTimeoutError``, which aiohttp 3.8 and 3.9 raise for both.
    """
    import aiohttp

    found: type[Exception] = getattr(aiohttp, name, aiohttp.ServerTimeoutError)
    return found


def _read_timer(timeout: Any) -> tuple[float | None, bool]:
    """
    The seconds of silence after which the client's read fails, and whether the timer is the
    call's ``total`` rather than ``sock_read``: the one of the two that comes due first (a
    ``total`` no longer than ``sock_read`` does, as it started earlier). aiohttp's own default
    session has only ``total``.
    """
    sock_read = getattr(timeout, "sock_read", None)
    total = getattr(timeout, "total", None)
    if total is not None and (sock_read is None or total <= sock_read):
        return total, True
    return sock_read, False


def _connect_timer(timeout: Any) -> tuple[float | None, bool]:
    """
    The seconds after which a connection that never comes fails, and whether the timer is the
    call's ``total`` rather than ``connect`` or ``sock_connect``: the one that comes due first,
    as for :func:`_read_timer`.
    """
    limits = [getattr(timeout, name, None) for name in ("connect", "sock_connect")]
    connect = min((limit for limit in limits if limit is not None), default=None)
    total = getattr(timeout, "total", None)
    if total is not None and (connect is None or total <= connect):
        return total, True
    return connect, False


def _read_timeout(timed_by_total: bool) -> BaseException:
    """What aiohttp raises when no answer comes in time: its ``total`` timer ends the call with
    ``asyncio.TimeoutError`` (not a ``ClientError``), its ``sock_read`` timer with its own class."""
    if timed_by_total:
        return TimeoutError()  # (asyncio.TimeoutError, on the Python 3.11 this needs)
    return _timeout_error("SocketTimeoutError")("Timeout on reading data from socket")


def _connect_failure(
    request: Any, error_type: str, *, read_by_total: bool, connect_by_total: bool
) -> BaseException:
    import aiohttp

    if error_type == "ConnectTimeout":
        if connect_by_total:
            return TimeoutError()  # the call's `total` timer ends it, as for a read (not a ClientError)
        return _timeout_error("ConnectionTimeoutError")(f"Connection timeout to host {request.url}")
    if error_type == "ReadTimeout":
        return _read_timeout(read_by_total)
    # asyncio's words for a refused connect, with the address it tried (the host as the request
    # names it: a name is not resolved in replay).
    key = request.connection_key
    refused = ConnectionRefusedError(errno.ECONNREFUSED, f"Connect call failed {(key.host, key.port)!r}")
    return aiohttp.ClientConnectorError(key, refused)


def _hang_up_cause(error_type: str, cause: BaseException | None) -> OSError | None:
    """What the connection was lost with: nothing for a close (aiohttp's ServerDisconnectedError),
    the reset for a reset (its ClientOSError)."""
    if error_type == "RemoteProtocolError":
        return None
    if isinstance(cause, OSError):
        return cause
    return ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))


class CassetteTransport(asyncio.Transport):
    """A transport that takes aiohttp's request and feeds back what the cassette answers."""

    def __init__(
        self,
        protocol: Any,
        request: Any,
        live: Callable[[], Any],
        read_timeout_s: float | None,
        timed_by_total: bool = False,
        *,
        connect_timeout_s: float | None = None,
        connect_by_total: bool = False,
    ) -> None:
        super().__init__()
        self._protocol = protocol
        self._request = request
        self._live = live
        self._read_timeout_s = read_timeout_s
        self._timed_by_total = timed_by_total
        self._connect_timeout_s = connect_timeout_s
        self._connect_by_total = connect_by_total
        self._raw = b""
        self._out = bytearray()
        self._closing = False
        self._lost = False
        self._task: asyncio.Task[None] | None = None
        # A replay that waits for nothing, played as the client reads (see `_reader_class`).
        self._pulled: _Pulled | None = None
        # Any other answer is fed by the door's task, each chunk once the client wants more.
        self._holding = True
        self._wanted: asyncio.Future[None] | None = None

    # -- the transport API aiohttp uses ----------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._out += data
        size = request_complete(bytes(self._out))
        if size is not None and self._task is None:
            raw, self._out = bytes(self._out[:size]), self._out[size:]
            self._task = asyncio.get_running_loop().create_task(self._answer(raw))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._pulled = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
        # As a socket's transport does: the protocol hears of it on the next turn of the loop. A
        # session that closes waits for that on each connection it still holds (a response
        # left unread), so without it the session's close would wait for ever.
        asyncio.get_running_loop().call_soon(self._connection_lost, None)

    def _connection_lost(self, exc: BaseException | None) -> None:
        """Tell the protocol the connection is gone, once, however it went."""
        self._closing = True
        self._pulled = None
        if not self._lost:
            self._lost = True
            self._protocol.connection_lost(exc)

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    # -- answering -------------------------------------------------------------------------------

    async def _answer(self, raw: bytes) -> None:
        protocol = self._protocol
        cassette = current_cassette()
        start = _monotonic()
        parsed = parse_request(raw)
        request = engine_request(parsed.method, str(self._request.url), parsed.headers, parsed.body)
        request.extensions["timeout"] = {"read": self._read_timeout_s, "connect": self._connect_timeout_s}
        self._raw = raw
        try:
            if cassette is None:
                raise RuntimeError("llmcassette: no cassette is active to answer this aiohttp request.")
            decision = cassette.decide(request, parsed.body)
            failure = decision.failure
            if failure is not None and failure.error_type in HANG_UP_ERRORS:
                # A recorded upstream that hung up before answering: the connection ends with no
                # response, closed or reset, and aiohttp says so as it does live.
                decision.log_failure()
                self._connection_lost(_hang_up_cause(failure.error_type, None))
                return
            if failure is not None:
                decision.log_failure()
                await await_wait(failure.delay_ms / 1000.0)
                protocol.set_exception(
                    _connect_failure(
                        self._request,
                        failure.error_type,
                        read_by_total=self._timed_by_total,
                        connect_by_total=self._connect_by_total,
                    )
                )
                return
            response = await cassette.aanswer(
                engine_flavor(), request, parsed.body, decision, self._send, start=start
            )
        except Exception as exc:
            if isinstance(exc, httpx.TransportError) and hung_up_before_answer(exc):
                # Recorded by the engine; the client sees the hang-up as aiohttp reports it live.
                self._connection_lost(_hang_up_cause(type(exc).__name__, exc.__cause__))
                return
            protocol.set_exception(exc)
            return
        head, chunked, _ = engine_head(response, method=parsed.method, close=True)
        protocol.data_received(head)
        payload: Any = getattr(protocol, "_payload", None)
        watched = _watch(payload)
        stream = response.stream
        if watched and isinstance(stream, ReplayStream) and stream.instant:
            # A replay that waits for nothing: each chunk is fed as the client reads, with no task
            # of the door's between its reads; the first one now, as it would follow the head.
            self._pulled = _Pulled(iter(stream), chunked)
            self.pull()
            return
        try:
            async for chunk in stream:
                if chunk:
                    if watched and payload._buffer:
                        # The next chunk waits for the client to take the one before, so that it
                        # reaches the client as a read of its own, as the recording's chunks did
                        # (fed at once, they would merge in aiohttp's buffer). A client reading
                        # as fast as it can has taken it by the next turn of the loop (the feed
                        # woke it, just before this task): one bare turn, then a wait for its read.
                        await _TURN
                        if payload._buffer:
                            await self._want()
                    protocol.data_received(encode_chunk(chunk, chunked=chunked))
        except httpx.TimeoutException:
            if watched and payload._buffer:
                await self._want()  # the chunks before the failure reach the client first
            # As aiohttp's own read timer does: the connection and the body being read both fail.
            timeout_error = _read_timeout(self._timed_by_total)
            protocol.set_exception(timeout_error)
            if payload is not None:
                payload.set_exception(timeout_error)
            return
        except httpx.TransportError as exc:
            if watched and payload._buffer:
                await self._want()
            # The bytes stop mid-body, as a dropped connection's do: a reset's with its error.
            self._connection_lost(_hang_up_cause(type(exc).__name__, exc.__cause__))
            return
        finally:
            # Before the client has read the last chunk: the stream has ended (a recording is
            # complete) whatever the client does next, as when the last bytes reach its socket.
            await response.aclose()
        if chunked:
            protocol.data_received(b"0\r\n\r\n")

    async def _want(self) -> None:
        """Wait until the client wants more than it was fed (see `wanted`)."""
        if self._holding:
            _client_waits(self._protocol)
            self._wanted = asyncio.get_running_loop().create_future()
            await self._wanted

    def wanted(self, *, all_of_it: bool = False) -> None:
        """
        The client has taken what it was fed and wants more (its reader's buffer is empty), or,
        with ``all_of_it``, waits for the end without reading: the rest is fed without holding.
        """
        if all_of_it:
            self._holding = False
        waiter, self._wanted = self._wanted, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pull(self) -> bool:
        """
        Feed the client the next piece of a replay played as it reads: a chunk (and the end of the
        body, if the chunk was the last), or the failure the stream ends with, once the client has
        read the chunks before it. False when there is nothing left to feed.
        """
        pulled = self._pulled
        if pulled is None:
            return False
        chunk = pulled.next
        if isinstance(chunk, bytes):
            self._protocol.data_received(encode_chunk(chunk, chunked=pulled.chunked))
            # The chunk after it is taken off now: the end of the body goes with the last chunk,
            # as it reaches a socket with it (and aiohttp releases the connection on it).
            pulled.advance()
            if pulled.next is not None:
                _client_waits(self._protocol)
                return True
        self._pulled = None
        if chunk is None or pulled.next is None:
            if pulled.chunked:
                self._protocol.data_received(b"0\r\n\r\n")
        elif isinstance(chunk, httpx.TransportError):
            # The bytes stop mid-body, as a dropped connection's do: a reset's with its error.
            self._connection_lost(_hang_up_cause(type(chunk).__name__, chunk.__cause__))
        return True

    async def _send(self, request: Any) -> Any:
        """Send the request aiohttp wrote over a real connection; the answer as an httpx response."""
        return await _live_exchange(await self._live(), request, self._raw)


def _client_waits(protocol: Any) -> None:
    """
    Stop aiohttp's ``sock_read`` timer while the door holds the rest of a body until the client
    reads on: the timer measures the server's silence, and the silence is now the client's (live,
    the rest would arrive meanwhile, and the end of the body stop the timer). The next chunk fed
    starts it again.
    """
    drop = getattr(protocol, "_drop_timeout", None)
    if drop is not None:
        drop()


class _Pulled:
    """A replay's chunks still to be fed as the client reads, the next one taken off already."""

    __slots__ = ("chunked", "chunks", "next")

    def __init__(self, chunks: Iterator[bytes], chunked: bool) -> None:
        self.chunks = chunks
        self.chunked = chunked
        #: The next chunk; None at the end of the body; the error the stream ends with.
        self.next: bytes | httpx.TransportError | None = None
        self.advance()

    def advance(self) -> None:
        try:
            self.next = next(self.chunks)
        except StopIteration:
            self.next = None
        except httpx.TransportError as exc:
            self.next = exc


def _watch(payload: Any) -> bool:
    """
    Have the body reader ``payload`` of the response just headed tell the door when the client
    wants more (see `_reader_class`); False if it is not aiohttp's own ``StreamReader``, whose
    chunks are then fed without holding.
    """
    from aiohttp.streams import StreamReader

    if type(payload) is not StreamReader:
        return False
    payload.__class__ = _reader_class()
    return True


@functools.cache
def _reader_class() -> type:
    from aiohttp.streams import StreamReader

    class CassetteReader(StreamReader):
        """
        aiohttp's ``StreamReader`` of a body the door feeds. Every reading style waits for data in
        ``_wait``, its buffer empty: there a replay that waits for nothing is fed its next chunk,
        after one turn of the loop (as a read on a socket waits), and the door's task feeding any
        other answer learns that the client wants more. A client that polls (``read_nowait``) or
        waits for the end without reading (``wait_eof``) finds the rest arriving, as on a socket.
        """

        __slots__ = ()

        def _door(self) -> CassetteTransport | None:
            transport = self._protocol.transport
            return transport if isinstance(transport, CassetteTransport) else None

        async def _wait(self, func_name: str) -> None:
            door = self._door()
            if door is not None:
                if door._pulled is not None:
                    await _TURN
                    if door.pull():
                        if self._exception is not None:
                            raise self._exception
                        return
                door.wanted()
            await super()._wait(func_name)

        async def wait_eof(self) -> None:
            door = self._door()
            if door is not None:
                door.wanted(all_of_it=True)
                while not self._eof and door._pulled is not None:
                    await _TURN
                    door.pull()
            await super().wait_eof()

        def read_nowait(self, n: int = -1) -> bytes:
            door = self._door()
            if door is not None and door._pulled is not None and not self._buffer and self._exception is None:
                door.pull()
            data = super().read_nowait(n)
            if door is not None and not self._buffer:
                door.wanted()
            return data

    return CassetteReader


class _Turn:
    """One turn of the event loop, as ``asyncio.sleep(0)`` gives, without a coroutine of its own."""

    def __await__(self) -> Generator[None, None, None]:
        yield


_TURN = _Turn()


class _LiveStream(httpx.AsyncByteStream):
    """A live answer's body as the engine reads it; closing it closes the real connection."""

    def __init__(self, chunks: Callable[[], AsyncIterator[bytes]], transport: asyncio.BaseTransport) -> None:
        self._chunks = chunks
        self._transport = transport

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def aclose(self) -> None:
        self._transport.close()


class _Receiver(asyncio.Protocol):
    """Takes a real connection's bytes off aiohttp's parser, to be read by h11 instead."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()

    def data_received(self, data: bytes) -> None:
        self.queue.put_nowait(data)

    def eof_received(self) -> bool:
        self.queue.put_nowait(None)
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.queue.put_nowait(exc)


async def _live_exchange(real_protocol: Any, request: Any, raw: bytes) -> Any:
    transport = real_protocol.transport
    receiver = _Receiver()
    transport.set_protocol(receiver)
    if hasattr(transport, "resume_reading"):
        transport.resume_reading()
    transport.write(raw)
    # h11 reads the answer: it is told of the request so that it knows how the response is framed.
    parsed = parse_request(raw)
    connection = h11.Connection(h11.CLIENT)
    connection.send(h11.Request(method=parsed.method, target=parsed.target, headers=parsed.headers))
    if parsed.body:
        connection.send(h11.Data(data=parsed.body))
    connection.send(h11.EndOfMessage())

    async def next_event() -> Any:
        while True:
            event = connection.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await receiver.queue.get()
            if isinstance(data, BaseException):
                raise httpx.ReadError(str(data) or type(data).__name__) from data
            if not data and connection.their_state is h11.SEND_RESPONSE and not connection.trailing_data[0]:
                # Closed before a byte of the answer: what httpx says of it, for the engine to record.
                transport.close()
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            connection.receive_data(data or b"")

    head = await next_event()
    if not isinstance(head, h11.Response):
        transport.close()
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while True:
                try:
                    event = await next_event()
                except h11.RemoteProtocolError as exc:
                    raise httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body"
                    ) from exc
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    return
        finally:
            transport.close()

    headers = [(bytes(name), bytes(value)) for name, value in head.headers.raw_items()]
    extensions = {"reason_phrase": bytes(head.reason), "http_version": b"HTTP/1.1"}
    return httpx.Response(
        head.status_code,
        headers=headers,
        stream=_LiveStream(chunks, transport),
        extensions=extensions,
        request=request,
    )


def _create_connection(original: Callable[..., Any]) -> Callable[..., Any]:
    async def create_connection(self: Any, req: Any, traces: Any, timeout: Any) -> Any:
        if current_cassette() is None:
            return await original(self, req, traces, timeout)
        from aiohttp.client_proto import ResponseHandler

        loop = asyncio.get_running_loop()
        protocol = ResponseHandler(loop)

        async def live() -> Any:
            return await original(self, req, traces, timeout)

        connect_s, connect_by_total = _connect_timer(timeout)
        transport = CassetteTransport(
            protocol,
            req,
            live,
            *_read_timer(timeout),
            connect_timeout_s=connect_s,
            connect_by_total=connect_by_total,
        )
        protocol.connection_made(transport)
        return protocol

    create_connection.__wrapped__ = original  # type: ignore[attr-defined]
    return create_connection


def _close_pooled(connector: Any, key: Any) -> None:
    """
    Close the connections a ``TCPConnector`` pooled for ``key`` before a cassette was entered,
    so that a request under the cassette gets a cassette transport rather than going out on a
    kept-alive socket to the upstream. A connection a cassette answered is never pooled (it ends
    with its response), so every pooled one is such a socket. aiohttp pools them in its
    ``_conns`` (a list, a deque from 3.10, of ``(protocol, time)``) and closes the ones it will
    not reuse as done here; the http.client door likewise closes a connection opened before.
    """
    pooled = connector._conns.pop(key, None)
    for protocol, _ in pooled or ():
        protocol.close()


def _get(original: Callable[..., Any], module: ModuleType) -> Callable[..., Any]:
    # `_get(key, ...)`, the connector's only way to a pooled connection: async from aiohttp
    # 3.10 (with the traces), plain before.
    tcp = module.TCPConnector

    def close_pooled(connector: Any, key: Any) -> None:
        if current_cassette() is not None and isinstance(connector, tcp):
            _close_pooled(connector, key)

    if inspect.iscoroutinefunction(original):

        async def get_async(self: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
            close_pooled(self, key)
            return await original(self, key, *args, **kwargs)

        get_async.__wrapped__ = original  # type: ignore[attr-defined]
        return get_async

    def get(self: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
        close_pooled(self, key)
        return original(self, key, *args, **kwargs)

    get.__wrapped__ = original  # type: ignore[attr-defined]
    return get


def patches(module: ModuleType) -> list[tuple[type, str, Any, Any]]:
    """``(class, attribute, original, replacement)`` for ``aiohttp.connector``, once imported."""
    owner = module.TCPConnector
    original = owner.__dict__["_create_connection"]
    base = module.BaseConnector
    get = base.__dict__["_get"]
    return [
        (owner, "_create_connection", original, _create_connection(original)),
        (base, "_get", get, _get(get, module)),
    ]
