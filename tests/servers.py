"""
Real HTTP servers on 127.0.0.1 for tests: uvicorn in a thread, started and stopped by the test.

``serve(app)`` runs any ASGI app; ``stream_app()`` is an upstream whose chunking and timing the
test controls through the query string, so that what a client receives can be compared with what
the server sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import importlib
import itertools
import json
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a thread cannot own signal handlers
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(app: object, *, port: int | None = None) -> Iterator[str]:
    """Run ``app`` on loopback (a free port unless given) while the block runs; yields its base URL."""
    port = port or _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = _Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def sse_events(n: int) -> list[bytes]:
    """``n`` OpenAI-style SSE events, then the ``[DONE]`` terminator."""
    events = []
    for i in range(n):
        payload = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}],
        }
        events.append(b"data: " + json.dumps(payload).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def ndjson_lines(n: int) -> list[bytes]:
    """``n`` Ollama-style NDJSON lines, the last one with ``done: true``."""
    lines = []
    for i in range(n):
        done = i == n - 1
        lines.append(
            json.dumps(
                {"model": "m", "message": {"role": "assistant", "content": f"w{i} "}, "done": done}
            ).encode()
            + b"\n"
        )
    return lines


def _pieces(request: Request, kind: str) -> list[bytes]:
    n = int(request.query_params.get("n", "5"))
    events = sse_events(n) if kind == "sse" else ndjson_lines(n)
    split = request.query_params.get("split")
    if split == "pairs":  # two events per chunk
        events = [b"".join(events[i : i + 2]) for i in range(0, len(events), 2)]
    elif split and split.isdigit():  # fixed-size chunks, cutting through events
        body = b"".join(events)
        size = int(split)
        events = [body[i : i + size] for i in range(0, len(body), size)]
    return events


def _streaming(kind: str, media_type: str):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        pieces = _pieces(request, kind)
        gap_s = float(request.query_params.get("gap_ms", "20")) / 1000
        fail_after = request.query_params.get("fail_after")
        await request.body()

        async def body() -> AsyncIterator[bytes]:
            for index, piece in enumerate(pieces):
                if fail_after is not None and index == int(fail_after):
                    raise ConnectionAbortedError("upstream dropped the stream on purpose")
                if index:
                    await asyncio.sleep(gap_s)
                yield piece

        return StreamingResponse(body(), media_type=media_type, headers={"connection": "close"})

    return endpoint


async def _json(request: Request) -> Response:
    payload = await request.json() if await request.body() else {}
    return JSONResponse({"echo": payload, "path": request.url.path}, headers={"connection": "close"})


async def _flaky(request: Request) -> Response:
    # The first `fail` calls with a given `counter` are rate limited, later ones succeed.
    key = request.query_params.get("counter", "")
    fail = int(request.query_params.get("fail", "1"))
    calls: dict[str, int] = request.app.state.calls
    calls[key] = calls.get(key, 0) + 1
    await request.body()
    if calls[key] <= fail:
        error = {"error": {"type": "rate_limit_error", "message": f"slow down (call {calls[key]})"}}
        return JSONResponse(error, status_code=429, headers={"retry-after": "0", "connection": "close"})
    return JSONResponse({"ok": True, "call": calls[key]}, headers={"connection": "close"})


async def _gzip(request: Request) -> Response:
    payload = json.dumps({"compressed": True, "words": ["tok"] * 50}).encode()
    # No time in the gzip header: two answers a second apart are the same bytes, so a test can
    # compare a relayed answer with one fetched directly.
    return Response(
        gzip.compress(payload, mtime=0),
        media_type="application/json",
        headers={"content-encoding": "gzip", "connection": "close"},
    )


async def _slow_head(request: Request) -> Response:
    # Nothing is sent, not even the status line, until `delay_ms` has passed.
    await asyncio.sleep(float(request.query_params.get("delay_ms", "100")) / 1000)
    return JSONResponse({"slow": True}, headers={"connection": "close"})


async def _sse_probe(request: Request) -> Response:
    # Like /sse, and notes in `app.state.finished[tag]` when the last event has been handed over,
    # so a test can tell whether the server was still sending when the client got a chunk.
    tag = request.query_params.get("tag", "")
    pieces = _pieces(request, "sse")
    gap_s = float(request.query_params.get("gap_ms", "20")) / 1000
    finished: dict[str, float] = request.app.state.finished

    async def body() -> AsyncIterator[bytes]:
        for index, piece in enumerate(pieces):
            if index:
                await asyncio.sleep(gap_s)
            yield piece
        finished[tag] = time.monotonic()

    return StreamingResponse(body(), media_type="text/event-stream", headers={"connection": "close"})


def stream_app() -> Starlette:
    """An upstream with controlled chunking: ``/sse`` and ``/ndjson`` take ``n``, ``gap_ms``,
    ``split`` (``pairs`` or a byte size) and ``fail_after``; ``/json`` echoes the request body.

    Also: ``/flaky?counter=C&fail=N`` answers 429 to the first N calls with counter C, then 200;
    ``/gzip`` sends a gzip-encoded JSON body; ``/slow-head?delay_ms=D`` holds the response head
    back for D ms; ``/sse-probe?tag=T`` streams like ``/sse`` and records in
    ``app.state.finished[T]`` the time its last event was sent."""
    app = Starlette(
        routes=[
            Route("/sse", _streaming("sse", "text/event-stream"), methods=["GET", "POST"]),
            Route("/ndjson", _streaming("ndjson", "application/x-ndjson"), methods=["GET", "POST"]),
            Route("/json", _json, methods=["GET", "POST"]),
            Route("/flaky", _flaky, methods=["GET", "POST"]),
            Route("/gzip", _gzip, methods=["GET"]),
            Route("/slow-head", _slow_head, methods=["GET", "POST"]),
            Route("/sse-probe", _sse_probe, methods=["GET"]),
        ]
    )
    app.state.calls = {}
    app.state.finished = {}
    return app


class PlannedUpstream:
    """
    An upstream (an ASGI app) that answers each path with what a test planned for it: a content
    type and the body's chunks, each sent as one HTTP/1.1 transfer chunk, which a client's reader
    hands over as one chunk. :meth:`plan` returns the path to request.
    """

    def __init__(self) -> None:
        self.plans: dict[str, tuple[str | None, list[bytes]]] = {}
        self._paths = itertools.count()

    def plan(self, content_type: str | None, chunks: list[bytes]) -> str:
        path = f"/planned/{next(self._paths)}"
        self.plans[path] = (content_type, chunks)
        return path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        content_type, chunks = self.plans[scope["path"]]
        headers = [(b"connection", b"close")]
        if content_type is not None:
            headers.append((b"content-type", content_type.encode("latin-1")))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def asgi_body(receive: Any) -> bytes:
    """The whole body of the request an ASGI app is answering."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def read_request(connection: socket.socket) -> bytes:
    """One whole request (head and ``Content-Length`` body) from ``connection``; b"" if it closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = connection.recv(65536)
        if not piece:
            return b""
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        piece = connection.recv(65536)
        if not piece:
            return b""
        body += piece
    return head + b"\r\n\r\n" + body


@contextlib.contextmanager
def serve_connections(handle: Callable[[socket.socket], None], *, join_timeout_s: float) -> Iterator[str]:
    """
    Accept connections on loopback in a thread of its own while the block runs, handing each to
    ``handle`` in turn; yields the base URL. The thread is waited for ``join_timeout_s`` at the end.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.05)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            handle(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=join_timeout_s)
        listener.close()


@contextlib.contextmanager
def unanswered_url() -> Iterator[str]:
    """
    The base URL of a port where a connection is never made: its listener takes none and its
    queue is full, so the system drops the next attempt's SYN and the client waits its connect
    timeout, as for a host that does not answer.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(3):  # a queue of 0 holds one; more, in case the system rounds it up
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            with contextlib.suppress(BlockingIOError):
                filler.connect(listener.getsockname())
        time.sleep(0.05)  # for the handshakes to land in the queue
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@contextlib.contextmanager
def hang_up_server(
    mode: str = "close", *, partial: bytes = b"", then: threading.Event | None = None
) -> Iterator[str]:
    """
    An upstream on loopback that reads each request whole and then hangs up without answering:
    ``close`` ends the connection with a FIN, ``reset`` with an RST. With ``partial``, it first
    sends those bytes (the start of an answer) and, when ``then`` is given, hangs up once it is
    set. Yields its base URL.
    """

    def hang_up(connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            if not read_request(connection):
                return
            if partial:
                connection.sendall(partial)
            if then is not None:
                then.wait(5)
            if mode == "reset":
                # A zero linger time makes close() send an RST.
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    with serve_connections(hang_up, join_timeout_s=5) as base:
        yield base


# -- clients -------------------------------------------------------------------------------------

#: The four ways a request is made: (library, async?).
CLIENT_KINDS = [("httpx", False), ("httpx", True), ("httpx2", False), ("httpx2", True)]


@dataclass
class Received:
    """What a client got: status, headers, the body chunks and when each arrived."""

    status: int
    headers: list[tuple[str, str]]
    reason: str = ""
    chunks: list[bytes] = field(default_factory=list)
    #: Arrival time of each chunk, in seconds after the request was started.
    times: list[float] = field(default_factory=list)
    #: The transport error that cut the stream, if any.
    error: Exception | None = None

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class Client:
    """
    One library (httpx or httpx2), sync or async, behind a single async API, so that a test body
    is written once and runs for all four. A sync client blocks the event loop while it works,
    which is harmless: the servers run in threads of their own. Clients skip loading the CA
    bundle (``verify=False``): it costs 20 ms per client, and every server here is plain HTTP.
    """

    def __init__(self, library: str, is_async: bool) -> None:
        self.library = library
        self.is_async = is_async
        self.lib: ModuleType = importlib.import_module(library)

    def __repr__(self) -> str:
        return f"{self.library}-{'async' if self.is_async else 'sync'}"

    def make_transport(self) -> Any:
        """A fresh standard transport of this library and kind."""
        return (
            self.lib.AsyncHTTPTransport(verify=False)
            if self.is_async
            else self.lib.HTTPTransport(verify=False)
        )

    async def stream(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        stop_after: int | None = None,
        on_chunk: Callable[[int, bytes], None] | None = None,
        transport: Any = None,
    ) -> Received:
        """Stream a response with ``iter_raw``/``aiter_raw``; stop early after ``stop_after`` chunks.
        A transport error of this library ends the stream and lands in ``Received.error``."""
        kwargs: dict[str, Any] = {"json": json, "headers": headers}
        received: Received | None = None
        start = 0.0  # set once the client exists: building one (its TLS context) takes a while

        def take(chunk: bytes) -> bool:
            assert received is not None
            received.times.append(time.monotonic() - start)
            received.chunks.append(chunk)
            if on_chunk is not None:
                on_chunk(len(received.chunks) - 1, chunk)
            return stop_after is not None and len(received.chunks) >= stop_after

        try:
            if self.is_async:
                async with self.lib.AsyncClient(transport=transport, verify=False) as client:
                    start = time.monotonic()
                    async with client.stream(method, url, **kwargs) as response:
                        received = _received(response)
                        async for chunk in response.aiter_raw():
                            if take(chunk):
                                break
            else:
                with self.lib.Client(transport=transport, verify=False) as client:
                    start = time.monotonic()
                    with client.stream(method, url, **kwargs) as response:
                        received = _received(response)
                        for chunk in response.iter_raw():
                            if take(chunk):
                                break
        except self.lib.TransportError as exc:
            if received is None:
                raise
            received.error = exc
        assert received is not None
        return received

    async def send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        transport: Any = None,
    ) -> Received:
        """A plain (non-streaming) request: the body is read whole, decoded, as one chunk."""
        kwargs: dict[str, Any] = {"json": json, "headers": headers}
        if self.is_async:
            async with self.lib.AsyncClient(transport=transport, verify=False) as client:
                start = time.monotonic()
                response = await client.request(method, url, **kwargs)
        else:
            with self.lib.Client(transport=transport, verify=False) as client:
                start = time.monotonic()
                response = client.request(method, url, **kwargs)
        received = _received(response)
        received.chunks.append(response.content)
        received.times.append(time.monotonic() - start)
        return received


def _received(response: Any) -> Received:
    return Received(
        status=response.status_code,
        headers=list(response.headers.multi_items()),
        reason=response.reason_phrase,
    )
