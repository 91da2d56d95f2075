"""
The door of the ``websockets`` client: while a cassette is active, a WebSocket connection the
client opens is one end of a ``socket.socketpair()``, and the cassette's engine serves the other
end (:mod:`llmcassette._websocket`): replaying a recorded session, or relaying to the real
upstream and recording. The client does its real handshake and framing; no network socket is
opened on replay.

Patched, only while a cassette is active:

- the asyncio client (``websockets.asyncio.client.connect``, which the openai SDK's async
  ``realtime.connect()`` and google-genai's ``aio.live.connect()`` use): the method of the
  ``connect`` class that opens the connection (``open_tcp_connection``, ``create_connection``
  before websockets 17), so that references taken before the cassette was entered are covered;
- the sync client (``websockets.sync.client.connect``, which the openai SDK's sync
  ``realtime.connect()`` uses): ``reconnect.open_connection`` from websockets 17 on, the module's
  ``connect`` function before (a reference to it taken before the cassette was entered is not
  covered there).

The client's keepalive pings are turned off on the channel (the engine would answer them, and a
virtual clock would race its ping loop through virtual time). The modules are patched if the
client imported them already, and when it imports them while the cassette is active (an import
hook watches for them): llmcassette itself never imports ``websockets`` for a test that does not
use it. For a ``wss://`` URL nothing is encrypted between the client and the engine (TLS, when
recording, is between the engine and the upstream).
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .._intercept import current_cassette

__all__ = ["patches"]

Patch = tuple[type | ModuleType, str, Any, Any]

_ASYNC_MODULE = "websockets.asyncio.client"
_SYNC_MODULE = "websockets.sync.client"


class _PlainTransport:
    """What the sync client is given for TLS on the engine's socketpair: nothing to encrypt."""

    def wrap_socket(self, sock: socket.socket, server_hostname: str | None = None, **_: Any) -> socket.socket:
        return sock


def _channel_pair() -> tuple[socket.socket, socket.socket]:
    client, engine = socket.socketpair()
    client.setblocking(False)
    engine.setblocking(False)
    return client, engine


async def _serve(plan: Any, book: Any, engine: socket.socket, options: dict[str, Any]) -> None:
    reader, writer = await asyncio.open_connection(sock=engine)
    try:
        await book.run(plan, reader, writer, upstream_options=options)
    except asyncio.CancelledError:
        writer.transport.abort()
        raise
    finally:
        if not writer.is_closing():
            writer.close()


def _upstream_options(ssl: Any) -> dict[str, Any]:
    # The client's TLS context (a custom CA, a client certificate) is the one the upstream gets.
    return {"ssl": ssl} if ssl is not None and not isinstance(ssl, _PlainTransport | bool) else {}


def _no_keepalive(connection: Any) -> None:
    # Keepalive pings on the channel would only reach the engine, which answers them itself; and
    # under a virtual clock the client's ping loop would race through virtual time.
    if hasattr(connection, "ping_interval"):
        connection.ping_interval = None


# -- asyncio --------------------------------------------------------------------------------------

_tasks: set[asyncio.Task[None]] = set()


def _async_opener(original: Callable[..., Any]) -> Callable[..., Any]:
    async def open_connection(self: Any) -> Any:
        __tracebackhide__ = True
        cassette = current_cassette()
        if cassette is None:
            return await original(self)
        from websockets.uri import parse_uri

        book = cassette.websocket_sessions()
        plan = book.plan(self.uri)
        kwargs = getattr(self, "create_connection_kwargs", None) or getattr(self, "connection_kwargs", {})
        client, engine = _channel_pair()
        task = asyncio.get_running_loop().create_task(
            _serve(plan, book, engine, _upstream_options(kwargs.get("ssl")))
        )
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
        make = getattr(self, "factory", None) or self.protocol_factory
        ws_uri = parse_uri(self.uri)
        try:
            _, connection = await asyncio.get_running_loop().create_connection(
                lambda: make(ws_uri), sock=client
            )
        except BaseException:
            client.close()
            task.cancel()
            raise
        _no_keepalive(connection)
        return connection

    open_connection.__wrapped__ = original  # type: ignore[attr-defined]
    return open_connection


def _async_patches(module: ModuleType) -> list[Patch]:
    owner = getattr(module, "connect", None)
    if not isinstance(owner, type):
        return []
    for attribute in ("open_tcp_connection", "create_connection"):
        original = owner.__dict__.get(attribute)
        if callable(original):
            return [(owner, attribute, original, _async_opener(original))]
    return []


# -- sync -----------------------------------------------------------------------------------------


def _start_engine(plan: Any, book: Any, engine: socket.socket, ssl: Any) -> None:
    # The sync client blocks its thread: the engine runs on a loop of its own.
    thread = threading.Thread(
        target=asyncio.run,
        args=(_serve(plan, book, engine, _upstream_options(ssl)),),
        name="llmcassette-websocket",
        daemon=True,
    )
    thread.start()


def _sync_opener(original: Callable[..., Any]) -> Callable[..., Any]:
    # websockets 17+: `reconnect.open_connection(deadline)`, behind `connect()` and `reconnect()`.
    def open_connection(self: Any, deadline: Any) -> Any:
        __tracebackhide__ = True
        cassette = current_cassette()
        if cassette is None:
            return original(self, deadline)
        book = cassette.websocket_sessions()
        plan = book.plan(self.uri)
        client, engine = _channel_pair()
        client.setblocking(True)
        _start_engine(plan, book, engine, self.ssl)
        saved = (self.sock, self.ssl, self.proxy_ssl)
        self.sock, self.proxy_ssl = client, None
        if self.ws_uri.secure:
            self.ssl = _PlainTransport()
        try:
            connection = original(self, deadline)
        finally:
            self.sock, self.ssl, self.proxy_ssl = saved
        _no_keepalive(connection)
        return connection

    open_connection.__wrapped__ = original  # type: ignore[attr-defined]
    return open_connection


def _sync_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    # websockets 13.1-16: the module's `connect` function opens the socket itself.
    def connect(uri: str, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        cassette = current_cassette()
        if cassette is None:
            return original(uri, **kwargs)
        book = cassette.websocket_sessions()
        plan = book.plan(uri)
        client, engine = _channel_pair()
        client.setblocking(True)
        _start_engine(plan, book, engine, kwargs.get("ssl"))
        kwargs.update(sock=client, ssl=_PlainTransport() if uri.lower().startswith("wss:") else None)
        # `unix`: the socketpair is not TCP (no Nagle to turn off) and takes no proxy.
        kwargs.update(unix=True)
        kwargs.pop("proxy_ssl", None)
        kwargs.pop("path", None)
        if "ping_interval" in inspect.signature(original).parameters:
            kwargs["ping_interval"] = None
        return original(uri, **kwargs)

    connect.__wrapped__ = original  # type: ignore[attr-defined]
    return connect


def _sync_patches(module: ModuleType) -> list[Patch]:
    owner = getattr(module, "reconnect", None)
    if isinstance(owner, type) and callable(owner.__dict__.get("open_connection")):
        original = owner.__dict__["open_connection"]
        return [(owner, "open_connection", original, _sync_opener(original))]
    original = getattr(module, "connect", None)
    if callable(original):
        return [(module, "connect", original, _sync_connect(original))]
    return []


_PATCHERS: dict[str, Callable[[ModuleType], list[Patch]]] = {
    _ASYNC_MODULE: _async_patches,
    _SYNC_MODULE: _sync_patches,
}


def patches(module: ModuleType) -> list[Patch]:
    """The patches of ``module``, one of the ``websockets`` client modules."""
    return _PATCHERS[module.__name__](module)
