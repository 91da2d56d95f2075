"""The loopback server: a real uvicorn on 127.0.0.1 that knows each request's connection."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from llmcassette._exceptions import ConfigError
from llmcassette.proxy import LoopbackServer
from llmcassette.proxy._server import transport_for


def _app(seen: list[Any]) -> Starlette:
    async def echo(request: Request) -> Response:
        transport = transport_for(request.scope)
        seen.append(transport)
        peer = transport.get_extra_info("peername") if transport is not None else None
        return PlainTextResponse(f"{peer[1] if peer else None}")

    return Starlette(routes=[Route("/echo", echo)])


def test_serves_on_a_free_loopback_port_and_stops() -> None:
    server = LoopbackServer(_app([]))
    url = server.start()
    try:
        assert url.startswith("http://127.0.0.1:") and server.port > 0
        assert httpx.get(url + "/echo").status_code == 200
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/echo")


def test_each_request_finds_its_own_connection() -> None:
    seen: list[Any] = []
    with LoopbackServer(_app(seen)) as url, httpx.Client() as first, httpx.Client() as second:
        a = first.get(url + "/echo")
        b = second.get(url + "/echo")
        # The transport's peer is the client's own socket: its port is the client's port.
        assert a.text != b.text
        assert a.text == first.get(url + "/echo").text  # a kept-alive connection is the same one
    assert all(t is not None for t in seen)


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"^llmcassette: cannot listen on 127.0.0.1:{port} .*--port"):
            LoopbackServer(_app([]), port=port).start()


def test_connections_send_small_writes_at_once() -> None:
    # Nagle's algorithm off (TCP_NODELAY): otherwise a response written in pieces (head, chunks)
    # waits for the client's delayed ACK, 40 ms per request.
    async def nodelay(scope: Any, receive: Any, send: Any) -> None:
        transport = transport_for(scope)
        sock = transport.get_extra_info("socket") if transport is not None else None
        flag = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) if sock is not None else None
        await PlainTextResponse(str(flag))(scope, receive, send)

    with LoopbackServer(nodelay) as url:
        assert httpx.get(url).text == "1"
