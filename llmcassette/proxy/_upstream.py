"""
How the recording proxy reaches upstreams: httpx and httpcore for HTTP, over a lean socket layer.

httpcore talks to sockets through a *network backend*. Its default one goes through anyio, which
costs a pass through the event loop and a cancel scope on every read and write: about 0.1 ms of
CPU per proxied request, and the proxy's whole budget for the first streamed event is about a
millisecond. :class:`SocketBackend` gives httpcore plain asyncio transports instead (uvloop's, when
the server runs on uvloop): data that has arrived is returned at once, without a trip through the
loop, and a read waits on one future.

It also sends a request's head and body in one write where httpcore makes two: one segment, and
one wake-up of the upstream, instead of two.

Everything HTTP stays httpx's and httpcore's own (connection pooling, keep-alive, h11, TLS through
``loop.start_tls``), so the proxy's requests are exactly those an httpx client would send.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Iterable
from typing import Any, cast

import httpcore
import httpx

__all__ = ["SocketBackend", "upstream_transport"]

# A client that reads slowly must not make the proxy hold an upstream's whole answer: past this
# much unread data the socket is left unread, and TCP slows the upstream down.
_READ_HIGH_WATER = 1 << 20
_READ_LOW_WATER = 1 << 18
# Writes are gathered until the stream is read (a request is sent whole before its answer is read)
# or the loop moves on; a body larger than this is passed on as it comes instead.
_WRITE_BATCH = 1 << 16

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class _Connection(asyncio.Protocol):
    """One socket's incoming data and state, as asyncio's transport reports it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.received = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self._data_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._writing_paused = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have the methods of asyncio.Transport without being its subclass.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received += data
        if len(self.received) > _READ_HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        _wake(self._data_waiter)

    def eof_received(self) -> bool:
        self.eof = True
        _wake(self._data_waiter)
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        _wake(self._data_waiter)
        _wake(self._drain_waiter)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        _wake(self._drain_waiter)

    # waiting

    async def wait_for_data(self, timeout_s: float | None) -> None:
        self._data_waiter = asyncio.get_running_loop().create_future()
        try:
            await _wait(self._data_waiter, timeout_s, httpcore.ReadTimeout, "no data arrived")
        finally:
            self._data_waiter = None

    async def drain(self, timeout_s: float | None) -> None:
        if not self._writing_paused or self.eof:
            return
        self._drain_waiter = asyncio.get_running_loop().create_future()
        try:
            await _wait(self._drain_waiter, timeout_s, httpcore.WriteTimeout, "the upstream took no data")
        finally:
            self._drain_waiter = None


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


async def _wait(
    waiter: asyncio.Future[None], timeout_s: float | None, timeout_error: type[Exception], what: str
) -> None:
    if timeout_s is None:
        await waiter
        return
    # A timer that resolves the waiter, rather than asyncio.wait_for: no task per read.
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = not waiter.done()
        _wake(waiter)

    timer = asyncio.get_running_loop().call_later(timeout_s, expire)
    try:
        await waiter
    finally:
        timer.cancel()
    if expired:
        raise timeout_error(f"{what} within {timeout_s:g} s")


def _system_words(exc: OSError) -> str:
    # "Connection refused", without the errno and the address that asyncio and uvloop each word
    # their own way around it (the upstream is named by whoever reports the error).
    return os.strerror(exc.errno) if isinstance(exc.errno, int) and exc.errno > 0 else str(exc)


class _SocketStream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, connection: _Connection) -> None:
        self._transport = transport
        self._connection = connection
        self._unsent = bytearray()
        self._flush_scheduled = False

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._unsent and not self._transport.is_closing():
            self._transport.write(bytes(self._unsent))
        self._unsent.clear()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._unsent:
            self._flush()
        connection = self._connection
        if not connection.received and not connection.eof:
            await connection.wait_for_data(timeout)
        if connection.received:
            data = bytes(connection.received[:max_bytes])
            del connection.received[:max_bytes]
            if connection.reading_paused and len(connection.received) < _READ_LOW_WATER:
                connection.reading_paused = False
                self._transport.resume_reading()
            return data
        if connection.error is not None:
            raise httpcore.ReadError(str(connection.error) or type(connection.error).__name__)
        return b""  # the upstream closed the connection

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._transport.is_closing():
            cause = self._connection.error
            raise httpcore.WriteError(f"the connection is closed{f': {cause}' if cause else ''}")
        self._unsent += buffer
        if len(self._unsent) >= _WRITE_BATCH:
            self._flush()
            await self._connection.drain(timeout)
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def aclose(self) -> None:
        self._flush()
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self._flush()
        loop = asyncio.get_running_loop()
        try:
            handshake = loop.start_tls(
                self._transport, self._connection, ssl_context, server_hostname=server_hostname
            )
            transport = await asyncio.wait_for(handshake, timeout)
        except TimeoutError as exc:
            self._transport.close()
            raise httpcore.ConnectTimeout(f"TLS handshake took over {timeout:g} s") from exc
        except (OSError, ssl.SSLError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc)) from exc
        if transport is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._connection.transport = transport
        return _SocketStream(transport, self._connection)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # httpcore asks this of an idle pooled connection: anything to read means the upstream
            # closed it (or broke protocol), so it must not be reused.
            return bool(self._connection.received) or self._connection.eof
        name = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        if name in ("ssl_object", "sockname", "peername", "socket"):
            return self._transport.get_extra_info(name)
        return None


class SocketBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend on the running loop's own transports, with no anyio layer."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            transport, connection = await asyncio.wait_for(
                loop.create_connection(_Connection, host, port, local_addr=local), timeout
            )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no connection to {host}:{port} within {timeout:g} s") from exc
        except OSError as exc:
            raise httpcore.ConnectError(_system_words(exc)) from exc
        sock = transport.get_extra_info("socket")
        if sock is not None:
            for option in socket_options or ():
                sock.setsockopt(*option)
            # asyncio sets it on TCP sockets already; uvloop too. Said here so it never depends on
            # that: without it a request's head and body written apart wait for a delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _SocketStream(transport, connection)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            transport, connection = await asyncio.wait_for(
                loop.create_unix_connection(_Connection, path), timeout
            )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no connection to {path} within {timeout:g} s") from exc
        except OSError as exc:
            raise httpcore.ConnectError(_system_words(exc)) from exc
        return _SocketStream(transport, connection)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _UpstreamTransport(httpx.AsyncHTTPTransport):
    def __init__(self, *, max_keepalive_connections: int, ssl_context: ssl.SSLContext | None) -> None:
        super().__init__()
        # httpx builds its pool with httpcore's default backend and offers no argument for another
        # one; the pool is replaced here, with the same TLS settings an httpx client would use.
        # tests/proxy/test_upstream.py fails if a new httpx stops sending requests through it.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context if ssl_context is not None else httpx.create_ssl_context(),
            max_connections=None,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=5.0,
            network_backend=SocketBackend(),
        )


def upstream_transport(
    *, max_keepalive_connections: int = 64, ssl_context: ssl.SSLContext | None = None
) -> httpx.AsyncHTTPTransport:
    """
    The httpx transport the recording proxy sends requests with: pooled, unbounded in concurrent
    connections (each client connection may need one), on :class:`SocketBackend`. HTTPS upstreams
    are verified as httpx verifies them (``SSL_CERT_FILE``/``SSL_CERT_DIR``, else certifi's
    roots) unless ``ssl_context`` says otherwise.
    """
    return _UpstreamTransport(max_keepalive_connections=max_keepalive_connections, ssl_context=ssl_context)
