"""
The recording proxy's way to upstreams: httpx's pool over :class:`SocketBackend`, tested against
raw asyncio servers on 127.0.0.1 that show what reaches the wire, connection by connection.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
import trustme

from llmcassette.proxy import _upstream
from llmcassette.proxy._upstream import upstream_transport

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Wire"], Awaitable[None]]


@dataclass
class Wire:
    """What a raw server saw: each connection's reads, in order."""

    connections: list[list[bytes]] = field(default_factory=list)


@asynccontextmanager
async def raw_server(
    handler: Handler, *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, Wire]]:
    wire = Wire()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer, wire)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", wire
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader, reads: list[bytes]) -> bytes:
    """One request, head and body (by Content-Length); each read is noted as it came."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await reader.read(65536)
        if not chunk:
            raise asyncio.IncompleteReadError(data, None)
        reads.append(chunk)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = await reader.read(65536)
        if not chunk:
            raise asyncio.IncompleteReadError(body, length)
        reads.append(chunk)
        body += chunk
    return head + b"\r\n\r\n" + body


@dataclass
class Calls:
    """How often the backend wrote to its sockets and paused reading them."""

    writes: int = 0
    pauses: int = 0


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    seen = Calls()
    made = _upstream._Connection.connection_made

    def counting(self: _upstream._Connection, transport: asyncio.BaseTransport) -> None:
        made(self, transport)
        write, pause = transport.write, transport.pause_reading  # type: ignore[attr-defined]

        def counted_write(data: bytes) -> None:
            seen.writes += 1
            write(data)

        def counted_pause() -> None:
            seen.pauses += 1
            pause()

        transport.write = counted_write  # type: ignore[attr-defined]
        transport.pause_reading = counted_pause  # type: ignore[attr-defined]

    monkeypatch.setattr(_upstream._Connection, "connection_made", counting)
    return seen


def answer(body: bytes, *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 200 OK", b"content-type: application/json", b"content-length: %d" % len(body), *extra]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


async def keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wire: Wire) -> None:
    reads: list[bytes] = []
    wire.connections.append(reads)
    while True:
        request = await read_request(reader, reads)
        body = request.partition(b"\r\n\r\n")[2]
        writer.write(answer(b'{"echo": %d}' % len(body)))
        await writer.drain()


async def test_a_request_leaves_in_one_write_over_the_socket_backend(calls: Calls) -> None:
    transport = upstream_transport()
    body = b'{"model": "m", "messages": [{"role": "user", "content": "hello"}]}'
    async with raw_server(keep_answering) as (url, wire), httpx.AsyncClient(transport=transport) as client:
        response = await client.post(url + "/v1/chat/completions", content=body)
    assert response.json() == {"echo": len(body)}
    # httpcore writes a request's head and body apart; the backend hands them to the socket as one
    # write, so the server's first read holds the whole request.
    assert calls.writes == 1
    [reads] = wire.connections
    assert reads[0].endswith(b"\r\n\r\n" + body)
    assert reads[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert type(response.extensions["network_stream"]).__name__ == "_SocketStream"


async def test_connections_are_kept_alive_and_reused() -> None:
    async with (
        raw_server(keep_answering) as (url, wire),
        httpx.AsyncClient(transport=upstream_transport()) as client,
    ):
        for size in (1, 2, 3):
            assert (await client.post(url, content=b"x" * size)).json() == {"echo": size}
    assert len(wire.connections) == 1
    assert len(wire.connections[0]) == 3


async def test_a_connection_the_upstream_closed_while_idle_is_not_reused() -> None:
    closed = asyncio.Event()

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wire: Wire) -> None:
        reads: list[bytes] = []
        wire.connections.append(reads)
        await read_request(reader, reads)
        writer.write(answer(b"{}"))  # keep-alive, as far as the client knows; then gone
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        closed.set()

    async with (
        raw_server(answer_once) as (url, wire),
        httpx.AsyncClient(transport=upstream_transport()) as client,
    ):
        assert (await client.get(url)).status_code == 200
        await asyncio.wait_for(closed.wait(), 5)
        await asyncio.sleep(0.01)  # the FIN reaches the connection while it sits in the pool
        assert (await client.get(url)).status_code == 200


async def test_a_refused_connection_is_a_connect_error_in_the_systems_words() -> None:
    async with raw_server(keep_answering) as (url, _):
        pass  # the port is free again: nothing listens there
    async with httpx.AsyncClient(transport=upstream_transport()) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get(url)
    assert str(caught.value) == "Connection refused"
    # The system's error stays at the root of the chain, for whoever reports the cause.
    root: BaseException = caught.value
    while (inner := root.__cause__ or root.__context__) is not None:
        root = inner
    assert isinstance(root, OSError) and root.errno == errno.ECONNREFUSED


async def test_a_silent_upstream_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wire: Wire) -> None:
        await read_request(reader, [])
        await reader.read(1)  # silent until the client gives up and hangs up

    timeout = httpx.Timeout(5.0, read=0.1)
    async with raw_server(silent) as (url, _), httpx.AsyncClient(transport=upstream_transport()) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(httpx.ReadTimeout):
            await client.get(url, timeout=timeout)
        assert asyncio.get_running_loop().time() - started < 2.0


async def test_a_body_cut_short_is_a_protocol_error() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wire: Wire) -> None:
        await read_request(reader, [])
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + b"x" * 10)
        await writer.drain()

    async with raw_server(cut) as (url, _), httpx.AsyncClient(transport=upstream_transport()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url)


async def test_large_bodies_both_ways_arrive_whole_to_a_slow_reader(calls: Calls) -> None:
    # Past a megabyte unread, the backend stops reading the socket until the reader catches up.
    upload = bytes(range(256)) * 12_000  # 3 MB, written in batches
    echoed = bytes(reversed(upload))

    async def mirror(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wire: Wire) -> None:
        reads: list[bytes] = []
        wire.connections.append(reads)
        request = await read_request(reader, reads)
        assert request.partition(b"\r\n\r\n")[2] == upload
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(echoed) + echoed)
        await writer.drain()

    async with raw_server(mirror) as (url, _), httpx.AsyncClient(transport=upstream_transport()) as client:
        received = b""
        async with client.stream("POST", url, content=upload) as response:
            async for chunk in response.aiter_raw():
                received += chunk
                if len(received) < 2_000_000:
                    await asyncio.sleep(0.001)
    assert received == echoed
    assert calls.pauses >= 1  # the slow reader held the upstream back, and nothing was lost


async def test_https_upstreams_are_verified_and_reached_through_tls() -> None:
    authority = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    authority.configure_trust(client_tls)

    async with raw_server(keep_answering, tls=server_tls) as (url, wire):
        transport = upstream_transport(ssl_context=client_tls)
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.post(url + "/v1/messages", content=b"{}")
        assert response.json() == {"echo": 2}
        assert response.extensions["network_stream"].get_extra_info("ssl_object") is not None
        # An upstream whose certificate the proxy cannot trust is refused, not reached.
        async with httpx.AsyncClient(transport=upstream_transport()) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(url)
    assert len(wire.connections) == 1  # the refused handshake never carried a request
