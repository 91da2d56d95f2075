"""
The server end of one WebSocket connection, over an asyncio byte channel.

Replay and recording both face the client as a server does: ``websockets``' sans-I/O
``ServerProtocol`` reads the client's real handshake and frames and writes real ones, and this
module moves its bytes to and from the channel (one end of a ``socket.socketpair()`` in-process,
the accepted TCP connection at the proxy). A reader task keeps the protocol fed the whole time,
so pings are answered and a close from the client is seen while the server side is busy sending
or waiting; the client's messages are reassembled from their frames and queued in order, and
noted in the session's log as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._replay import SessionLog

__all__ = ["HANDSHAKE_HEADERS", "ClientClosed", "ServerSide", "answer_headers"]

#: Headers of the ``101`` answer that belong to this one connection: the protocol computes them
#: from the client's handshake (the key's accept value, the subprotocol and extensions agreed) and
#: they are never taken from an upstream's answer or a recording. Everything else the upstream
#: answered, its ``Date`` and ``Server`` among them, reaches the client as it was sent, in
#: recording and in replay alike, and the engine adds no ``Date`` or ``Server`` of its own.
HANDSHAKE_HEADERS = frozenset(
    {
        "upgrade",
        "connection",
        "sec-websocket-accept",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "content-length",
        "transfer-encoding",
    }
)
# What `websockets`' server protocol stamps on an answer by itself.
_ENGINE_HEADERS = ("Date", "Server")


def answer_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The upstream's (or the recorded) ``101`` headers the client is given: all but ``HANDSHAKE_HEADERS``."""
    return [(name, value) for name, value in headers if name.lower() not in HANDSHAKE_HEADERS]


# How long the server end waits for the client's answer to its close frame before it hangs up.
_CLOSE_TIMEOUT_S = 10.0
_READ_BYTES = 65536


@dataclass(frozen=True, slots=True)
class ClientClosed:
    """The client ended the connection: with a close frame (``frame`` True) or without one."""

    frame: bool
    code: int | None = None
    reason: str | None = None


class ServerSide:
    """The server end of a WebSocket connection on ``reader`` / ``writer``."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: SessionLog | None = None
    ) -> None:
        from websockets.server import ServerProtocol

        # The client's messages and close are noted as they arrive, before anything answers
        # them: a client that has its answer may end the cassette at once.
        self._log = log
        self._reader = reader
        self._writer = writer
        # No size limit: a test harness passes on whatever the client sends (audio included).
        self.protocol = ServerProtocol(max_size=None)
        self._incoming: asyncio.Queue[str | bytes | ClientClosed] = asyncio.Queue()
        self._parts: list[bytes] = []
        self._binary = False
        self._pump: asyncio.Task[None] | None = None
        #: Set once the client's close frame arrived or the connection ended.
        self.ended = asyncio.Event()
        #: How the client ended the connection, once it did.
        self.client_closed: ClientClosed | None = None
        self._hung_up = False

    # -- the handshake -------------------------------------------------------------------------

    async def read_request(self) -> Any:
        """The client's handshake request (a ``websockets`` ``Request``), or None if it went away."""
        from websockets.http11 import Request

        while True:
            for event in self.protocol.events_received():
                if isinstance(event, Request):
                    return event
            if self.protocol.handshake_exc is not None:
                await self._flush()
                return None
            data = await self._read()
            if not data:
                self.protocol.receive_eof()
                return None
            self.protocol.receive_data(data)

    async def accept(
        self, request: Any, *, subprotocol: str | None, headers: Sequence[tuple[str, str]] = ()
    ) -> bool:
        """Answer ``101`` with ``subprotocol`` and ``headers``; False if the handshake was invalid."""
        from websockets.typing import Subprotocol

        self.protocol.available_subprotocols = [Subprotocol(subprotocol)] if subprotocol else None
        response = self.protocol.accept(request)
        if response.status_code == 101:
            # The client sees the upstream's Date and Server (or the recorded ones), once: not
            # the engine's beside them, nor none where the upstream sent them.
            for name in _ENGINE_HEADERS:
                if name in response.headers:
                    del response.headers[name]
            for name, value in answer_headers(headers):
                response.headers[name] = value
        self.protocol.send_response(response)
        await self._flush()
        if response.status_code != 101:
            return False
        self._pump = asyncio.create_task(self._read_loop())
        return True

    async def refuse(self, status: int, reason: str, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        """Answer the handshake with an HTTP error instead of ``101``, then hang up."""
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        kept = [(n, v) for n, v in headers if n.lower() not in ("content-length", "transfer-encoding")]
        response = Response(status, reason, Headers([*kept, ("Content-Length", str(len(body)))]), body)
        self.protocol.send_response(response)
        await self._flush()
        self._close_transport()

    # -- messages --------------------------------------------------------------------------------

    async def next_message(self) -> str | bytes | ClientClosed:
        """The client's next whole message, or how it ended the connection."""
        return await self._incoming.get()

    async def send(self, data: str | bytes, fragments: Sequence[int] | None = None) -> bool:
        """Send a message (as continuation frames of ``fragments`` bytes); False once closing."""
        from websockets.protocol import State

        if self.protocol.state is not State.OPEN or self._hung_up:
            return False
        binary = isinstance(data, bytes)
        payload = data if isinstance(data, bytes) else data.encode("utf-8")
        sizes = list(fragments) if fragments else [len(payload)]
        position = 0
        for number, size in enumerate(sizes):
            part = payload[position : position + size]
            position += size
            fin = number == len(sizes) - 1
            if number == 0:
                if binary:
                    self.protocol.send_binary(part, fin=fin)
                else:
                    self.protocol.send_text(part, fin=fin)
            else:
                self.protocol.send_continuation(part, fin=fin)
        await self._flush()
        return True

    # -- the end ---------------------------------------------------------------------------------

    async def close(self, code: int | None, reason: str | None) -> None:
        """Send a close frame, wait for the client's (a while), then hang up."""
        from websockets.protocol import State

        if self.protocol.state is State.OPEN and not self._hung_up:
            self.protocol.send_close(code, reason or "")
            await self._flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ended.wait(), _CLOSE_TIMEOUT_S)
        self._close_transport()

    async def drop(self) -> None:
        """
        End the connection without a close frame, as a network cut does. What was sent arrives
        first, then the end of the stream (a FIN, not a reset: a reset lets the client's side
        throw away messages it has not read yet, and a drop after N messages must deliver N,
        every time). The client hangs up its side once it has read the end; that is waited for
        (a while) before the connection is released.
        """
        self._hung_up = True
        if self._pump is not None:
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.drain()
                if self._writer.can_write_eof():
                    self._writer.write_eof()
                else:
                    # A TLS connection cannot end one direction only: closing it sends what was
                    # written, then TLS's own end (close_notify) and the FIN. Waiting for a hang-up
                    # first would wait for one that cannot come.
                    self._close_transport()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ended.wait(), _CLOSE_TIMEOUT_S)
        self.ended.set()
        self._close_transport()

    async def aclose(self) -> None:
        """Release the channel, whatever state the session is in."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump
        self._close_transport()

    def _close_transport(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()

    # -- moving bytes ----------------------------------------------------------------------------

    async def _read(self) -> bytes:
        try:
            return await self._reader.read(_READ_BYTES)
        except (ConnectionError, OSError):
            return b""

    async def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if self._hung_up or self._writer.is_closing():
                return
            if data:
                self._writer.write(data)
            elif self._writer.can_write_eof():
                self._writer.write_eof()
            else:
                # TLS: the end of the stream is the connection's close (what was written goes
                # first). Without it a client waits its close timeout for the TCP close.
                self._close_transport()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.drain()

    async def _read_loop(self) -> None:
        from websockets.frames import Frame, Opcode

        while True:
            data = await self._read()
            if not data:
                self.protocol.receive_eof()
                self._ended(ClientClosed(frame=False))
                await self._flush()
                return
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if not isinstance(event, Frame):
                    continue
                opcode = event.opcode
                if opcode in (Opcode.TEXT, Opcode.BINARY):
                    self._binary = opcode is Opcode.BINARY
                    self._parts = [bytes(event.data)]
                elif opcode is Opcode.CONT:
                    self._parts.append(bytes(event.data))
                elif opcode is Opcode.CLOSE:
                    received = self.protocol.close_rcvd
                    code = received.code if received is not None else None
                    reason = received.reason if received is not None else None
                    self._ended(ClientClosed(frame=True, code=code, reason=reason))
                    continue
                else:
                    continue  # ping and pong: the protocol answers pings itself
                if event.fin:
                    payload = b"".join(self._parts)
                    self._parts = []
                    message = payload if self._binary else payload.decode("utf-8")
                    if self._log is not None:
                        self._log.message("client", message)
                    self._incoming.put_nowait(message)
            await self._flush()

    def _ended(self, how: ClientClosed) -> None:
        if self.client_closed is None:
            self.client_closed = how
            if self._log is not None:
                if how.frame:
                    self._log.closed("client", how.code, how.reason)
                else:
                    self._log.closed("none")
            self._incoming.put_nowait(how)
        self.ended.set()
