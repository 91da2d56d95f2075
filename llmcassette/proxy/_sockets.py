"""
Network failures as real socket behaviour, for ``llmcassette serve``.

In-process, a connection fault is an exception the engine raises in the client's own library. A
client in another process can only be shown one on the wire, so the server turns each exception
class into what a broken network does to a connection:

- **reset** (``ConnectError``, ``ReadError`` and every other transport error): a TCP RST, sent with
  ``SO_LINGER`` set to zero; the bytes already sent reach the client first. A client reading the
  body gets "connection reset by peer" (httpx ``ReadError``).
- **close** (``RemoteProtocolError``): an orderly close (FIN) before the body is complete, so an
  HTTP/1.1 client sees an incomplete chunked body, fewer bytes than ``Content-Length``, or, before
  any response, "server disconnected without sending a response".
- **silence** (every timeout): nothing more is sent and the connection stays open until the client
  gives up, so the client's own read timeout fires.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
import sys
import time

import httpx

__all__ = ["SocketAction", "close_connection", "reset_connection", "socket_action"]

# How long a reset waits for the bytes already sent to leave: an RST discards what is still queued.
_FLUSH_TIMEOUT_S = 1.0
_FLUSH_POLL_S = 0.001
# Linux reports the bytes a socket has not yet had acknowledged with this ioctl (SIOCOUTQ).
_SIOCOUTQ = 0x5411


class SocketAction(enum.StrEnum):
    """What the server does to the connection in place of raising an exception."""

    RESET = "reset"
    CLOSE = "close"
    SILENCE = "silence"


def socket_action(error: BaseException) -> SocketAction:
    """The socket behaviour that shows a client ``error`` (an httpx transport exception)."""
    if isinstance(error, httpx.TimeoutException):
        return SocketAction.SILENCE
    if isinstance(error, httpx.RemoteProtocolError):
        return SocketAction.CLOSE
    return SocketAction.RESET


def close_connection(transport: asyncio.BaseTransport) -> None:
    """End the connection with a FIN once what was written has been sent."""
    transport.close()


async def reset_connection(transport: asyncio.Transport) -> None:
    """
    Reset the connection (RST) once the bytes written so far have left this side, so that the
    client reads them before it sees the reset.
    """
    await _flushed(transport)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # A zero linger time makes close() send an RST instead of a FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _flushed(transport: asyncio.Transport) -> None:
    deadline = time.monotonic() + _FLUSH_TIMEOUT_S
    while time.monotonic() < deadline:
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() == 0 and _unsent(transport) == 0:
            return
        await asyncio.sleep(_FLUSH_POLL_S)


def _unsent(transport: asyncio.Transport) -> int:
    # Bytes still in the kernel's send queue. Only Linux says; elsewhere the transport's own buffer
    # being empty is the best available sign, and loopback delivers at once anyway.
    if not sys.platform.startswith("linux"):
        return 0
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    import fcntl  # POSIX only, hence imported here, past the platform check

    try:
        raw = fcntl.ioctl(sock.fileno(), _SIOCOUTQ, struct.pack("i", 0))
    except OSError:
        return 0
    return int(struct.unpack("i", raw)[0])
