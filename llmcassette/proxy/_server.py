"""
A loopback HTTP server for the recording proxy and ``serve``: uvicorn in a thread of this process.

The server binds its socket before it starts (port 0 picks a free port), so the URL is known and
valid as soon as :meth:`LoopbackServer.start` returns, with no window in which another process
could take the port. It always runs in a thread: the main thread stays free to run a command,
wait for a signal and save the cassette, which uvicorn's own signal handling would not allow.

Socket faults need the connection itself, which ASGI does not hand to the app: the server's
protocol class records each connection's transport by the addresses of its two ends, and
:func:`transport_for` finds it from the request's scope. :class:`GatheredWrites` uses it too, to send
what arrives together in one segment.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any

import uvicorn
from uvicorn.protocols.http.flow_control import FlowControl as _FlowControl

from .._exceptions import ConfigError
from ._tls import TlsFiles
from ._upgrade import UpgradeHandler, upgrade_protocol

__all__ = [
    "DEFAULT_HEADER_TIMEOUT_S",
    "DEFAULT_IDLE_TIMEOUT_S",
    "MAX_HEADER_BYTES",
    "GatheredWrites",
    "LoopbackServer",
    "transport_for",
]

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0

# Live connections of every loopback server in this process, by both ends' (host, port). The client's
# address alone is not enough: the kernel gives the same local port to connections that go to
# different servers (a process that runs `record` and `serve` side by side, or a test suite).
_Key = tuple[str, int, str, int]
_TRANSPORTS: MutableMapping[_Key, asyncio.Transport] = {}


def _key(server: Any, client: Any) -> _Key | None:
    if not server or not client:
        return None
    return (str(server[0]), int(server[1]), str(client[0]), int(client[1]))


try:  # httptools parses HTTP in C: the proxy's added latency depends on it.
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _BaseProtocol

    _PARSER_CALLBACKS = True
except ImportError:  # pragma: no cover - httptools is a dependency; h11 is the fallback
    from uvicorn.protocols.http.h11_impl import H11Protocol as _BaseProtocol  # type: ignore[assignment]

    _PARSER_CALLBACKS = False

#: How long a client has to send a request's head (request line and headers), from its first byte
#: or, on a new connection, from the connection itself.
DEFAULT_HEADER_TIMEOUT_S = 10.0
#: How long a keep-alive connection may sit idle between requests before it is closed. Longer
#: than the 5 s after which httpx's pools (and so the SDKs') stop reusing a connection, so that
#: the server does not close one just as a client reuses it.
DEFAULT_IDLE_TIMEOUT_S = 10.0


#: The largest request head (request line and headers) a connection may send, in bytes.
MAX_HEADER_BYTES = 64 * 1024


class _TimedFlow(_FlowControl):
    """
    uvicorn's flow control, noting when reading last resumed (the app asked for more of a body):
    a client's pause in a body counts from then. The timer armed before the app's own wait may
    come due in the very pass of the event loop in which the app asks, before the loop has read
    what the client sent meanwhile.
    """

    resumed_at_s = float("-inf")

    def resume_reading(self) -> None:
        if self.read_paused:
            self.resumed_at_s = time.monotonic()
        super().resume_reading()


class _TrackingProtocol(_BaseProtocol):
    """
    uvicorn's HTTP protocol, keeping each connection's transport findable by its two ends, and
    closing a connection whose client takes longer than ``header_timeout_s`` to send a request's
    head (a slowloris: uvicorn itself would wait for ever), or sends more than
    :data:`MAX_HEADER_BYTES` of it, or pauses longer than ``header_timeout_s`` between two pieces
    of a request's body (the same attack on the body; a large body sent steadily takes as long as
    it takes).
    """

    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _in_body = False

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is not None and not self._in_body:  # still in a request's head
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BYTES:
                self._head_too_slow()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # (uvicorn makes its flow control here and hands it to each request's cycle later)
        self.flow = _TimedFlow(transport)
        key = _key(self.server, self.client)
        if key is not None:
            _TRANSPORTS[key] = transport
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        # The connection now belongs to the WebSocket protocol: this one never hears of it again.
        self._forget()
        super().handle_websocket_upgrade()

    def _forget(self) -> None:
        self._cancel_header_timer()
        key = _key(self.server, self.client)
        if key is not None:
            _TRANSPORTS.pop(key, None)

    # The parser's callbacks: a request's head starts with its first byte and ends with its last
    # header. Between requests uvicorn's own keep-alive timeout (the idle timeout) is armed.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()
        # A body follows unless the message completes at once (uvicorn's parser says so next); an
        # upgraded connection (a WebSocket) belongs to another protocol from here on.
        if not self.parser.should_upgrade():
            self._in_body = True
            self._arm_timer()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self._in_body:
            self._arm_timer()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._cancel_header_timer()
        super().on_message_complete()

    def _arm_header_timer(self) -> None:
        self._in_body = False
        self._head_bytes = 0
        self._arm_timer()

    def _arm_timer(self) -> None:
        if not _PARSER_CALLBACKS:  # pragma: no cover - without them the head's end is not seen
            return
        self._cancel_header_timer()
        self._header_timer = asyncio.get_running_loop().call_later(self.header_timeout_s, self._head_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _head_too_slow(self) -> None:
        self._cancel_header_timer()
        if self._in_body and self.flow.read_paused:
            # uvicorn stopped reading because the app has not taken the body so far: the wait
            # is the app's (a slow upstream while recording), not the client's.
            self._arm_timer()
            return
        if self._in_body and isinstance(self.flow, _TimedFlow):
            # The client's wait began when reading resumed, if that was later than the timer.
            left_s = self.header_timeout_s - (time.monotonic() - self.flow.resumed_at_s)
            if left_s > 0:
                self._header_timer = asyncio.get_running_loop().call_later(left_s, self._head_too_slow)
                return
        if not self.transport.is_closing():
            self.transport.close()


def transport_for(scope: MutableMapping[str, Any]) -> asyncio.Transport | None:
    """The connection that carries the request of ``scope``, while it is open."""
    key = _key(scope.get("server"), scope.get("client"))
    return _TRANSPORTS.get(key) if key is not None else None


# Linux only: while a TCP socket is corked, what is written to it waits to leave in full segments.
_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)


class GatheredWrites:
    """
    Writes to the connection of one request, gathered into full TCP segments while held (Linux
    only; elsewhere holding does nothing).

    uvicorn writes a response's head as soon as the app sends it, and every body message on its
    own: each becomes a segment of its own, and a wake-up of the client for each. :meth:`hold`
    keeps what is written from leaving until
    :meth:`release`, or until the event loop has finished its current pass: what arrived
    together from the upstream leaves together, and nothing waits for data yet to come.
    """

    def __init__(self, scope: MutableMapping[str, Any]) -> None:
        transport = transport_for(scope)
        sock = transport.get_extra_info("socket") if transport is not None else None
        self._socket = sock if _TCP_CORK is not None else None
        self._held = False

    def hold(self) -> None:
        """Hold writes until :meth:`release` or the end of this pass of the event loop."""
        if self._held or self._socket is None:
            return
        if self._cork(True):
            self._held = True
            asyncio.get_running_loop().call_soon(self.release)

    def release(self) -> None:
        """Let what is held leave now."""
        if self._held:
            self._held = False
            self._cork(False)

    def _cork(self, on: bool) -> bool:
        assert self._socket is not None and _TCP_CORK is not None
        try:
            self._socket.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, int(on))
        except OSError:  # the connection is gone
            return False
        return True


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        # Signals belong to the main thread, which decides when the server stops.
        pass


class LoopbackServer:
    """
    Runs an ASGI app on ``host:port`` (default: a free port on 127.0.0.1) in a background thread.
    ``websocket``, when given, runs each WebSocket upgrade request on its connection (see
    :class:`~llmcassette.proxy._upgrade.Upgrade`). With ``tls`` (checked files, see
    :func:`~llmcassette.proxy._tls.tls_files`) it speaks only TLS: ``https://`` and ``wss://``.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with LoopbackServer(app) as url:
            ...  # clients reach the app at url
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        graceful_timeout_s: float = 5.0,
        lifespan: bool = False,
        header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        websocket: UpgradeHandler | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        for name, value in (("header_timeout_s", header_timeout_s), ("idle_timeout_s", idle_timeout_s)):
            if not 0 < value <= 3600:
                raise ConfigError(
                    f"llmcassette: {name} is {value!r}; give a number of seconds above 0 and at most 3600."
                )
        protocol = type("_Protocol", (_TrackingProtocol,), {"header_timeout_s": header_timeout_s})
        self.app = app
        self.host = host
        self.port = port
        self.tls = tls
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            # With `lifespan`, the app hears of start-up and shutdown on the server's own loop: the
            # recording proxy closes its upstream connections there, after the last request ended.
            lifespan="on" if lifespan else "off",
            http=protocol,
            # A WebSocket upgrade goes to `websocket` with the connection itself (see _upgrade.py);
            # without one, uvicorn's own WebSocket support hands it to the app.
            ws=upgrade_protocol(websocket) if websocket is not None else "auto",
            # The app's own Date and Server headers (an upstream's, a recording's) are the ones sent.
            server_header=False,
            date_header=False,
            # A stream that never ends must not keep the server from stopping.
            timeout_graceful_shutdown=max(1, round(graceful_timeout_s)),
            # Clients (SDK connection pools) keep connections open between calls; one left idle
            # this long is closed, so that idle clients cannot hold the server's sockets for ever.
            timeout_keep_alive=idle_timeout_s,  # type: ignore[arg-type]
            access_log=False,
            # TLS wraps the connection below the HTTP protocol: the header timeout, the connection
            # tracking and the WebSocket handover see the decrypted stream as they would plain.
            ssl_certfile=str(tls.cert) if tls is not None else None,
            ssl_keyfile=str(tls.key) if tls is not None else None,
        )
        self._server: _ThreadServer | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        """The server's base URL, such as ``http://127.0.0.1:8765`` (``https://`` with TLS)."""
        if self._socket is None:
            raise RuntimeError("llmcassette: the server is not running; call start() first.")
        return f"{'https' if self.tls is not None else 'http'}://{self.host}:{self.port}"

    def start(self) -> str:
        """Bind, start serving in a thread, and return the base URL once requests are accepted."""
        # IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
        # connections whose socket says TCP, and with it on, a small response written in pieces
        # waits for the client's delayed ACK: 40 ms per request.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"llmcassette: cannot listen on {self.host}:{self.port} ({exc.strerror or exc}); "
                "choose another --port, or 0 for a free one."
            ) from None
        sock.listen(2048)
        sock.setblocking(False)
        self.port = int(sock.getsockname()[1])
        self._socket = sock
        server = _ThreadServer(self._config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="llmcassette-server", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"llmcassette: the server on {self.host}:{self.port} did not start.")
            time.sleep(0.002)
        return self.url

    def stop(self) -> None:
        """Stop accepting, let open requests finish (bounded), and wait for the thread to end."""
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(_STOP_TIMEOUT_S)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(_STOP_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
