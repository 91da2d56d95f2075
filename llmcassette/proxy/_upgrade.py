"""
WebSocket upgrades on the loopback server: the accepted connection handed over as a byte stream.

uvicorn passes a request that asks for ``Upgrade: websocket`` to its ``ws`` protocol class, with the
connection's transport and the request head rebuilt as bytes. The class :func:`upgrade_protocol`
makes turns that connection into an asyncio stream pair (:class:`Upgrade`) and runs a handler on
it, which speaks the WebSocket protocol itself from the handshake on (the engine of
:mod:`llmcassette._websocket`). ASGI's websocket scope is not used: it hides the frames, so a
fault could neither split a message into continuation frames nor drop the connection without a
close frame, and a recording would not see the upstream's own close.

The stream carries the whole conversation, the request head included: the handler's WebSocket
protocol reads the head from it and answers it. ``Upgrade`` also holds the head parsed
(``method``, ``path``, ``query``, ``headers``), so that a route and faults can be chosen first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from ._errors import error_body

__all__ = ["Upgrade", "UpgradeHandler", "plan_url", "session_outcome", "upgrade_protocol", "websocket_url"]

_LOG = logging.getLogger("llmcassette.proxy")


@dataclass
class Upgrade:
    """
    One WebSocket upgrade request on the server: its head, and the connection as streams.

    ``reader`` yields the connection's bytes from the first byte of the request head on;
    ``writer`` writes to it. Closing ``writer`` closes the connection (with a close frame or not:
    that is the handler's choice); ``writer.transport.abort()`` resets it.
    """

    method: str
    #: The path as sent, without the query.
    path: str
    #: The query string as sent, without ``?``.
    query: str
    #: The request's headers, names in lower case, in the order sent.
    headers: list[tuple[str, str]]
    #: The request head as uvicorn rebuilt it: the request line, the headers and the blank line.
    head: bytes
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), in the order sent."""
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    async def refuse(self, status: int, kind: str, message: str, **extra: Any) -> None:
        """
        Answer the upgrade with ``status`` and the error body of the proxy's HTTP answers
        (:func:`~llmcassette.proxy._errors.error_body`), then close the connection.
        """
        body = error_body(kind, message, **extra)
        reason = HTTPStatus(status).phrase
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.writer.write(head.encode("latin-1") + body)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()
        self.writer.close()


def websocket_url(http_url: str, query: str) -> str:
    """The WebSocket URL of an upstream's ``http(s)`` URL (``ws``/``wss``), with ``query``."""
    scheme, sep, rest = http_url.partition("://")
    scheme = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme)
    return f"{scheme}{sep}{rest}" + (f"?{query}" if query else "")


#: What runs an upgraded connection; the connection is closed when it returns or raises.
UpgradeHandler = Callable[[Upgrade], Awaitable[None]]


def _parse_head(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, _, rest = request_line.partition(" ")
    target = rest.rpartition(" ")[0] or rest
    path, _, query = target.partition("?")
    headers = []
    for line in lines:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return method, path, query, headers


class _UpgradeProtocol(asyncio.StreamReaderProtocol):
    """
    The ``ws`` protocol class given to uvicorn: one instance per upgraded connection. It takes its
    place among the server's connections, so that a stopping server asks it to end
    (:meth:`shutdown`) and waits for it.
    """

    handler: ClassVar[UpgradeHandler]

    def __init__(self, config: Any, server_state: Any, app_state: Any) -> None:
        self._reader = asyncio.StreamReader()
        super().__init__(self._reader)
        self._connections: set[Any] = server_state.connections
        self._tasks: set[asyncio.Task[None]] = server_state.tasks
        # Not `_task`: StreamReaderProtocol has one of its own, which it clears on connection_lost.
        self._session: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._connections.add(self)
        assert isinstance(transport, asyncio.Transport)
        self._writer = asyncio.StreamWriter(transport, self, self._reader, asyncio.get_running_loop())

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._session is None:
            # uvicorn's first call, right after the handover, brings the whole rebuilt head.
            method, path, query, headers = _parse_head(data)
            upgrade = Upgrade(method, path, query, headers, data, self._reader, self._writer)
            task = asyncio.get_running_loop().create_task(self._run(upgrade))
            self._session = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(lambda _: self._connections.discard(self))

    def connection_lost(self, exc: Exception | None) -> None:
        # The session may outlive its connection (a fault's silence the client walked away from):
        # it stays among the server's connections until it ends, so that a stopping server ends it
        # (shutdown) instead of waiting its graceful timeout for it.
        if self._session is None or self._session.done():
            self._connections.discard(self)
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """The server is stopping: the session ends now, however far it got."""
        if self._session is not None and not self._session.done():
            self._session.cancel()
        elif self._session is None:
            self._writer.close()

    async def _run(self, upgrade: Upgrade) -> None:
        try:
            await type(self).handler(upgrade)
        except asyncio.CancelledError:
            pass  # the server is stopping
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client left
        except Exception:  # a handler's bug must not end silently, nor take the server down
            _LOG.exception("llmcassette: a WebSocket session failed")
        finally:
            with contextlib.suppress(Exception):
                upgrade.writer.close()


def upgrade_protocol(handler: UpgradeHandler) -> type[asyncio.Protocol]:
    """The protocol class to give uvicorn as ``ws``: each upgrade runs ``handler``."""
    return type("_Upgrade", (_UpgradeProtocol,), {"handler": staticmethod(handler)})


def plan_url(cassette: Any, url: str) -> str:
    """``url`` as logs show it: scrubbed as the cassette stores it (a key in the query)."""
    scrubber = cassette.scrubber
    return str(scrubber.scrub_url(url)) if scrubber is not None else url


def session_outcome(attempt: Any, source: str | None = None) -> str:
    """
    How a WebSocket session went, for its log line: its status, where it came from (``source``),
    its messages and close, and the faults that acted on it.
    """
    faults = f" [fault {', '.join(attempt.faults)}]" if attempt.faults else ""
    origin = f"from {source}, " if source is not None else ""
    if attempt.status is None:
        return f"no session: {attempt.error}" if attempt.error else "no session"
    if attempt.status != 101:
        return f"{attempt.status}, {origin}handshake refused{faults}"
    sent = sum(1 for message in attempt.messages if message.sender == "client")
    got = len(attempt.messages) - sent
    close = attempt.close
    if close is None:
        end = "still open"
    elif close.by == "none":
        end = "dropped without a close frame"
    else:
        end = f"closed by {close.by} ({close.code})"
    return f"101, {origin}{sent} client and {got} server messages, {end}{faults}"
