"""WebSocket upgrades on the loopback server: the connection itself handed to a handler."""

from __future__ import annotations

import asyncio
import socket
import threading

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from llmcassette.proxy import LoopbackServer
from llmcassette.proxy._server import _TRANSPORTS
from llmcassette.proxy._upgrade import Upgrade, UpgradeHandler


async def _plain_app(scope: object, receive: object, send: object) -> None:
    assert isinstance(scope, dict)
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"plain"})  # type: ignore[operator]


async def _flush(protocol: ServerProtocol, upgrade: Upgrade) -> None:
    for data in protocol.data_to_send():
        upgrade.writer.write(data)
    await upgrade.writer.drain()


def _echo(seen: list[Upgrade], *, drop_after: int | None = None) -> UpgradeHandler:
    """A handler speaking the server side with websockets' sans-I/O protocol: echoes, upper-cased."""

    async def handle(upgrade: Upgrade) -> None:
        seen.append(upgrade)
        protocol = ServerProtocol()
        echoed = 0
        while True:
            data = await upgrade.reader.read(65536)
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            for event in protocol.events_received():
                if isinstance(event, Request):  # the handshake request
                    protocol.send_response(protocol.accept(event))
                elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    if drop_after is not None and echoed == drop_after:
                        upgrade.writer.transport.abort()  # no close frame: the connection just ends
                        return
                    # Split in two frames: the proxy side controls framing.
                    text = bytes(event.data).decode().upper().encode()
                    protocol.send_text(text[:2], fin=False)
                    protocol.send_continuation(text[2:], fin=True)
                    echoed += 1
            await _flush(protocol, upgrade)
            if not data or protocol.close_expected():
                return

    return handle


def test_an_upgrade_reaches_the_handler_with_its_head_and_plain_requests_still_reach_the_app() -> None:
    seen: list[Upgrade] = []

    async def talk(url: str) -> list[str]:
        async with connect(
            url.replace("http", "ws") + "/openai/v1/realtime?model=m",
            additional_headers={"X-Llmcassette-Fault": "x"},
        ) as ws:
            answers = []
            for text in ("hello", "again"):
                await ws.send(text)
                answers.append(str(await ws.recv()))
            return answers

    with LoopbackServer(_plain_app, websocket=_echo(seen)) as url:
        assert asyncio.run(talk(url)) == ["HELLO", "AGAIN"]
        assert httpx.get(url + "/x").text == "plain"
    upgrade = seen[0]
    assert (upgrade.method, upgrade.path, upgrade.query) == ("GET", "/openai/v1/realtime", "model=m")
    assert upgrade.header("x-llmcassette-fault") == "x"
    assert upgrade.head.startswith(b"GET /openai/v1/realtime?model=m HTTP/1.1\r\n")
    assert not _TRANSPORTS  # the upgraded connection is no longer tracked as HTTP


def test_the_handler_can_drop_the_connection_without_a_close_frame() -> None:
    async def talk(url: str) -> ConnectionClosedError:
        async with connect(url.replace("http", "ws") + "/ws") as ws:
            await ws.send("one")
            assert await ws.recv() == "ONE"
            await ws.send("two")
            with pytest.raises(ConnectionClosedError) as caught:
                await ws.recv()
            return caught.value

    with LoopbackServer(_plain_app, websocket=_echo([], drop_after=1)) as url:
        closed = asyncio.run(talk(url))
    assert closed.rcvd is None  # no close frame came


def test_stopping_the_server_ends_an_open_session() -> None:
    started = threading.Event()

    async def hold(upgrade: Upgrade) -> None:
        started.set()
        await asyncio.Event().wait()  # for ever, until the server stops

    server = LoopbackServer(_plain_app, websocket=hold, graceful_timeout_s=1)
    url = server.start()
    sock = socket.create_connection((server.host, server.port))
    try:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert started.wait(5)
        server.stop()
        sock.settimeout(5)
        assert sock.recv(10) == b""  # closed by the stop
    finally:
        sock.close()
    assert url
