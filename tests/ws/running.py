"""
A real ``websockets`` server on 127.0.0.1, in a thread of its own, started and stopped by the test.

The server runs its own event loop in a thread, so the same upstream serves sync clients, async
clients on the test's loop, and subprocesses. Every connection it accepts is logged as a
:class:`ReceivedSession` (handshake and messages in arrival order), so a test can check what an SDK
sent, and an upstream can be told to accept plain ``ws://`` or TLS ``wss://``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

__all__ = ["ReceivedSession", "RunningUpstream", "run_upstream", "tls_contexts"]

Handler = Callable[[ServerConnection, "ReceivedSession"], Awaitable[None]]
Gate = Callable[[Request], "tuple[int, dict[str, str], bytes] | None"]


@dataclass
class ReceivedSession:
    """One WebSocket connection the upstream accepted: its handshake, then what the client sent."""

    path: str
    headers: dict[str, str]
    received: list[Any] = field(default_factory=list)  # parsed JSON, or raw text/bytes when not JSON
    sent: list[Any] = field(default_factory=list)  # what the upstream sent, parsed the same way


@dataclass
class RunningUpstream:
    """A started upstream: where to reach it and what it saw."""

    host: str
    port: int
    tls: bool
    sessions: list[ReceivedSession]
    refused: list[str]  # the paths of handshakes the upstream refused

    @property
    def ws_url(self) -> str:
        """``ws://`` or ``wss://`` and the address, no path."""
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        """``http://`` or ``https://`` and the address, no path (what SDKs take as a base URL)."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


@contextlib.contextmanager
def run_upstream(
    handler: Handler,
    *,
    gate: Gate | None = None,
    tls: ssl.SSLContext | None = None,
    server_header: str | None = None,
) -> Iterator[RunningUpstream]:
    """Serve ``handler`` on a free loopback port while the block runs.

    ``server_header`` is the ``Server`` its handshake answers carry (websockets' own by default).

    ``gate`` sees each handshake request first: returning ``(status, headers, body)`` refuses it
    with that HTTP answer, as a provider refuses a bad key or an exhausted quota.
    """
    sessions: list[ReceivedSession] = []
    refused: list[str] = []
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Future[None] | None = None
    address: list[int] = []
    failure: list[BaseException] = []

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if gate is None:
            return None
        answer = gate(request)
        if answer is None:
            return None
        status, headers, body = answer
        refused.append(request.path)
        fields = Headers({"Content-Type": "application/json", **headers, "Content-Length": str(len(body))})
        return Response(status, http.HTTPStatus(status).phrase, fields, body)

    async def on_connection(connection: ServerConnection) -> None:
        request = connection.request
        assert request is not None
        session = ReceivedSession(
            path=request.path, headers={k.lower(): v for k, v in request.headers.raw_items()}
        )
        sessions.append(session)
        with contextlib.suppress(Exception):  # a client that goes away mid-session is the client's business
            await handler(connection, session)

    async def main() -> None:
        nonlocal stop
        stop = loop.create_future()
        async with serve(
            on_connection,
            "127.0.0.1",
            0,
            ssl=tls,
            process_request=process_request,
            max_size=None,
            compression=None,
            **({"server_header": server_header} if server_header is not None else {}),
        ) as server:
            address.append(server.sockets[0].getsockname()[1])
            started.set()
            await stop

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # surfaced to the test below
            failure.append(exc)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, daemon=True, name="ws-upstream")
    thread.start()
    if not started.wait(10) or failure:
        raise RuntimeError(f"the WebSocket test upstream did not start: {failure}")
    try:
        yield RunningUpstream("127.0.0.1", address[0], tls is not None, sessions, refused)
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(timeout=10)


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for 127.0.0.1, and a client context that trusts it."""
    import trustme

    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    authority.configure_trust(client)
    return server, client
