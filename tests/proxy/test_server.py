"""The loopback server: a real uvicorn on 127.0.0.1 that knows each request's connection."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from llmcassette._exceptions import ConfigError
from llmcassette.proxy import LoopbackServer
from llmcassette.proxy._server import GatheredWrites, transport_for


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


def _held_app(*, wait_in_pass_s: float, wait_after_s: float, corked: list[int] | None = None) -> Any:
    """
    Holds its writes, sends the head, waits (blocking the loop, or not), then sends a chunk;
    ``corked`` gets the socket's TCP_CORK state once the loop has moved on.
    """

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        writes = GatheredWrites(scope)
        writes.hold()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        time.sleep(wait_in_pass_s)  # the loop's pass goes on: nothing may leave yet
        if wait_after_s:
            await asyncio.sleep(0)  # a new pass: what was held has left
            if corked is not None:
                transport = transport_for(scope)
                assert transport is not None
                sock = transport.get_extra_info("socket")
                corked.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK))
            await asyncio.sleep(wait_after_s)
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        writes.release()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def _first_read(url: str) -> tuple[bytes, float]:
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        started = time.monotonic()
        conn.sendall(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        return conn.recv(65536), time.monotonic() - started


@pytest.mark.skipif(not hasattr(socket, "TCP_CORK"), reason="gathering writes needs TCP_CORK (Linux)")
def test_held_writes_leave_together() -> None:
    with LoopbackServer(_held_app(wait_in_pass_s=0.02, wait_after_s=0)) as url:
        data, _ = _first_read(url)
    # Without the hold, the head would have left alone, 20 ms before the first chunk (and well
    # within the 200 ms a corked socket holds data at most).
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\n\r\n5\r\nfirst\r\n" in data


@pytest.mark.skipif(not hasattr(socket, "TCP_CORK"), reason="gathering writes needs TCP_CORK (Linux)")
def test_held_writes_leave_when_the_loop_moves_on() -> None:
    corked: list[int] = []
    with LoopbackServer(_held_app(wait_in_pass_s=0, wait_after_s=0.3, corked=corked)) as url:
        data, _ = _first_read(url)
    # The head left at the end of its pass, alone: the socket was uncorked by then (not by the
    # kernel's own 200 ms limit on a corked socket), long before the chunk came.
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b"first" not in data
    assert corked == [0]


def test_connections_from_one_client_port_to_two_servers_are_told_apart() -> None:
    # The kernel lets connections to different servers share a local port: the lookup must not
    # hand one server the other's connection (faults and gathered writes would hit the wrong one).
    def local_port_app(seen: list[Any]) -> Starlette:
        async def where(request: Request) -> Response:
            transport = transport_for(request.scope)
            seen.append(transport)
            return PlainTextResponse(str(transport.get_extra_info("sockname")[1]) if transport else "none")

        return Starlette(routes=[Route("/where", where)])

    seen: list[Any] = []
    with LoopbackServer(local_port_app(seen)) as first, LoopbackServer(local_port_app(seen)) as second:
        clients = []
        try:
            for url in (first, second):
                conn = socket.socket()
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                conn.bind(("127.0.0.1", clients[0].getsockname()[1] if clients else 0))
                conn.connect(("127.0.0.1", int(url.rsplit(":", 1)[1])))
                clients.append(conn)
            assert clients[0].getsockname() == clients[1].getsockname()
            # Twice round: by the second, both connections are known to their servers for sure.
            for conn, url in [*zip(clients, (first, second), strict=True)] * 2:
                conn.sendall(b"GET /where HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
                reply = b""
                while b"\r\n\r\n" not in reply or len(reply.partition(b"\r\n\r\n")[2]) < 5:
                    reply += conn.recv(65536)
                assert reply.endswith(b"\r\n\r\n" + url.rsplit(":", 1)[1].encode()), reply
        finally:
            for conn in clients:
                conn.close()
    assert seen[0] is not seen[1] and seen[0] is seen[2]


# -- timeouts ------------------------------------------------------------------------------------


def _slow_app() -> Starlette:
    async def slow(request: Request) -> Response:
        # A response that takes longer than the timeouts below: they must not cut it.
        await asyncio.sleep(float(request.query_params.get("s", "0")))
        return PlainTextResponse("done")

    async def late(request: Request) -> Response:
        # An app that takes its time before it reads the body (a slow upstream while recording).
        await asyncio.sleep(float(request.query_params.get("s", "0")))
        return PlainTextResponse(str(len(await request.body())))

    async def held(request: Request) -> Response:
        # The body fills uvicorn's buffer and reading pauses; then the event loop itself is held
        # past the timeout (a busy server), so the timer comes due meanwhile; then the app reads
        # the body in the loop's next pass, the one in which that timer runs.
        await asyncio.sleep(0.1)
        time.sleep(float(request.query_params["s"]))
        await asyncio.sleep(0)
        return PlainTextResponse(str(len(await request.body())))

    return Starlette(
        routes=[
            Route("/slow", slow),
            Route("/late", late, methods=["POST"]),
            Route("/held", held, methods=["POST"]),
        ]
    )


def _closed_after(sock: socket.socket, limit_s: float) -> float:
    """Seconds until the server closes ``sock`` (reads what it sends meanwhile); fails after ``limit_s``."""
    start = time.monotonic()
    sock.settimeout(limit_s)
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {limit_s} s")
        if not data:
            break
    return time.monotonic() - start


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)))


def test_defaults_close_slow_heads_and_idle_connections_within_seconds() -> None:
    from llmcassette.proxy._server import DEFAULT_HEADER_TIMEOUT_S, DEFAULT_IDLE_TIMEOUT_S

    server = LoopbackServer(_slow_app())
    assert server._config.timeout_keep_alive == DEFAULT_IDLE_TIMEOUT_S <= 15
    assert server._config.http.header_timeout_s == DEFAULT_HEADER_TIMEOUT_S <= 15  # type: ignore[union-attr]


def test_half_sent_heads_are_closed_after_the_header_timeout() -> None:
    with LoopbackServer(_slow_app(), header_timeout_s=0.5) as url:
        # A slowloris: many connections, each with a head it never finishes; and one that says nothing.
        socks = [_connect(url) for _ in range(50)]
        for sock in socks:
            sock.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(_connect(url))
        start = time.monotonic()
        for sock in socks:
            _closed_after(sock, 5.0)
            sock.close()
        elapsed = time.monotonic() - start
        assert 0.4 <= elapsed < 4
        # A head that trickles in, a byte at a time, counts from its first byte.
        sock = _connect(url)
        start = time.monotonic()
        for byte in b"GET /slow HTTP/1.1\r\nHost: x\r\n":
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.05)
        _closed_after(sock, 5.0)
        assert time.monotonic() - start < 2.5
        sock.close()
        # A head sent in time is answered, however long the answer takes.
        with httpx.Client() as client:
            assert client.get(url + "/slow", params={"s": 1.0}).text == "done"


def test_a_body_that_stops_coming_is_closed_after_the_header_timeout() -> None:
    # (a timeout five times the pauses below: a busy machine stretches a pause by a few tenths)
    with LoopbackServer(_slow_app(), header_timeout_s=1.0) as url:
        # Half a body, then nothing: the same slowloris, one step later.
        sock = _connect(url)
        sock.sendall(b"POST /late HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 50)
        assert 0.9 <= _closed_after(sock, 6.0) < 4
        sock.close()
        # A body that keeps coming, in pauses shorter than the timeout, is read however long it takes.
        sock = _connect(url)
        sock.sendall(b"POST /late HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n")
        for _ in range(8):
            time.sleep(0.2)
            sock.sendall(b"x")
        answer = b""
        while b"\r\n\r\n8" not in answer:
            data = sock.recv(65536)
            assert data, answer
            answer += data
        assert answer.startswith(b"HTTP/1.1 200")
        sock.close()
        # An app that leaves a large body unread for longer than the timeout is the app's wait, not
        # the client's: the body is read when the app asks for it.
        with httpx.Client() as client:
            answer_ = client.post(url + "/late", params={"s": 2.0}, content=b"y" * 4_000_000)
            assert answer_.text == "4000000"


def test_a_body_the_app_asks_for_as_the_timeout_comes_due_is_given_the_whole_timeout() -> None:
    # The client's wait starts when the app asks for more of the body, not when the timer was
    # armed before the app's own wait: the timer running in the same pass as the app's first
    # read must not close the connection (under load, CI saw "Server disconnected" here).
    with LoopbackServer(_slow_app(), header_timeout_s=0.5) as url, httpx.Client() as client:
        answer = client.post(url + "/held", params={"s": 0.8}, content=b"y" * 4_000_000)
        assert answer.text == "4000000"


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() -> None:
    with LoopbackServer(_slow_app(), idle_timeout_s=0.5, header_timeout_s=0.3) as url:
        sock = _connect(url)
        sock.sendall(b"GET /slow?s=0.6 HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while b"done" not in answer:
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
        assert 0.4 <= _closed_after(sock, 5.0) < 3
        sock.close()


def test_timeouts_out_of_range_are_refused() -> None:
    for options in ({"header_timeout_s": 0}, {"idle_timeout_s": -1}, {"idle_timeout_s": 1e308}):
        with pytest.raises(ConfigError, match=r"^llmcassette: \w+_timeout_s is .*above 0 and at most 3600"):
            LoopbackServer(_slow_app(), **options)


def test_a_head_larger_than_the_limit_is_closed_at_once() -> None:
    from llmcassette.proxy._server import MAX_HEADER_BYTES

    with LoopbackServer(_slow_app()) as url:  # the default header timeout: 10 s
        sock = _connect(url)
        start = time.monotonic()
        try:
            sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
            for _ in range(2 * MAX_HEADER_BYTES // 1000):
                sock.sendall(b"X-Filler: " + b"f" * 988 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while sending
        _closed_after(sock, 5.0)
        assert time.monotonic() - start < 2
        sock.close()
        # A large head within the limit is answered.
        with httpx.Client() as client:
            headers = {f"x-filler-{i}": "f" * 900 for i in range(40)}
            assert client.get(url + "/slow", headers=headers).text == "done"
