"""
What a replayed network failure says, against what the same failure says live.

httpx and httpx2 pass the socket layer's text on from their sync transports (``timed out``,
``[Errno 104] Connection reset by peer``), TLS its own for a read that times out (``The read
operation timed out``), and their async transports (httpcore on anyio) anyio's: nothing, or
``All connection attempts failed``. A client that logs or matches ``str(exc)`` sees in replay what
it sees live. "Live" is a real server on 127.0.0.1 that misbehaves the same way: stays silent,
stalls mid-stream, resets the connection, or a port where nothing listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

import llmcassette
from llmcassette import VirtualClock
from tests.servers import CLIENT_KINDS, Client, read_request

#: The client's read timeout: short, as the live run waits for it.
TIMEOUT_S = 0.2
EVENTS = [b'data: {"n":%d}\n\n' % n for n in range(3)] + [b"data: [DONE]\n\n"]
AFTER = 2
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Misbehaving:
    """A server that answers each request as ``mode`` says: ``whole`` (the stream and its end),
    ``silent`` (no head), ``stall`` or ``reset`` after ``AFTER`` events."""

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        self.mode = "whole"
        self._tls = tls
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self._done = threading.Event()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self._listener.getsockname()[1]}/v1/chat"

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection, self.mode), daemon=True).start()

    def _answer(self, raw: socket.socket, mode: str) -> None:
        connection = raw
        try:
            if self._tls is not None:
                connection = self._tls.wrap_socket(raw, server_side=True)
            self._misbehave(connection, mode)
        except OSError:
            pass
        finally:
            connection.close()
            raw.close()

    def _misbehave(self, connection: socket.socket, mode: str) -> None:
        with contextlib.suppress(OSError):
            connection.settimeout(5)
            if not read_request(connection):
                return
            if mode == "silent":
                self._done.wait(5)
                return
            connection.sendall(HEAD)
            for event in EVENTS if mode == "whole" else EVENTS[:AFTER]:
                connection.sendall(_chunk(event))
            if mode == "whole":
                connection.sendall(b"0\r\n\r\n")
            elif mode == "stall":
                self._done.wait(5)
            else:  # a zero linger time makes the close a reset
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self._done.set()
        self._listener.close()


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module", params=["http", "https"])
def server(request: pytest.FixtureRequest, authority: trustme.CA) -> Iterator[Misbehaving]:
    tls = None
    if request.param == "https":
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert("127.0.0.1").configure_cert(tls)
    upstream = Misbehaving(tls)
    threading.Thread(target=upstream.serve, daemon=True).start()
    try:
        yield upstream
    finally:
        upstream.close()


@pytest.fixture(scope="module")
def recorded(server: Misbehaving, authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's whole stream, recorded once (any client replays it)."""
    path = tmp_path_factory.mktemp("texts") / "stream.yaml"
    server.mode = "whole"
    with llmcassette.use_cassette(path, record_mode="once"):
        assert _outcome(Client("httpx", False), server.url, authority) == ("", "", b"".join(EVENTS))
    return path


def _outcome(client: Client, url: str, authority: trustme.CA) -> tuple[str, str, bytes]:
    """The error the client got (class and text) and the bytes it read before."""
    lib = client.lib
    verify = ssl.create_default_context()
    authority.configure_trust(verify)
    got: list[bytes] = []
    try:
        if client.is_async:

            async def run() -> None:
                async with lib.AsyncClient(verify=verify, timeout=TIMEOUT_S) as http:
                    async with http.stream("POST", url, json={"stream": True}) as response:
                        got.extend([chunk async for chunk in response.aiter_raw()])

            asyncio.run(run())
        else:
            with lib.Client(verify=verify, timeout=TIMEOUT_S) as http:
                with http.stream("POST", url, json={"stream": True}) as response:
                    got.extend(response.iter_raw())
    except lib.TransportError as exc:
        return type(exc).__name__, str(exc), b"".join(got)
    return "", "", b"".join(got)


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1/chat"


@pytest.mark.parametrize("client", [Client(*kind) for kind in CLIENT_KINDS], ids=repr)
@pytest.mark.parametrize(
    ("mode", "fault"),
    [
        ("silent", "read_timeout"),
        ("stall", f"stall:after={AFTER}"),
        ("reset", f"disconnect:after={AFTER},mode=reset"),
        ("refused", "connect_error"),
    ],
)
def test_a_replayed_failure_says_what_it_says_live(
    server: Misbehaving,
    authority: trustme.CA,
    client: Client,
    mode: str,
    fault: str,
    recorded: Path,
) -> None:
    if mode == "reset" and server.url.startswith("https"):
        pytest.skip("a reset under TLS reaches the client as a close or a reset, as timing has it")
    path = recorded
    server.mode = mode
    live = _outcome(client, _refused_url() if mode == "refused" else server.url, authority)
    with VirtualClock(), llmcassette.use_cassette(path, faults=[fault]) as cassette:
        replayed = _outcome(client, server.url, authority)
    assert replayed == live
    assert cassette.attempts[0].error is not None  # logged, in the sync transport's words
    # (the sync transport's words: TLS says its own of a read that times out)
    expected: dict[str, Any] = {
        "silent": "timed out",
        "stall": "timed out",
        "reset": "[Errno 104] Connection reset by peer",
        "refused": "[Errno 111] Connection refused",
    }
    if server.url.startswith("https") and mode in ("silent", "stall"):
        expected[mode] = "The read operation timed out"
    assert cassette.attempts[0].error.split(": ", 1)[1] == expected[mode]


def _urlopen_outcome(url: str, authority: trustme.CA) -> tuple[str, str, bytes]:
    """What ``urllib.request`` raised (class and text) and the bytes read before it."""
    verify = ssl.create_default_context()
    authority.configure_trust(verify)
    request = urllib.request.Request(
        url, data=b'{"stream": true}', headers={"Content-Type": "application/json"}
    )
    got: list[bytes] = []
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=verify) as response:
            got.extend(iter(response.read1, b""))
    except OSError as exc:
        return type(exc).__name__, str(exc), b"".join(got)
    return "", "", b"".join(got)


@pytest.mark.parametrize(("mode", "fault"), [("silent", "read_timeout"), ("stall", f"stall:after={AFTER}")])
def test_a_replayed_timeout_says_to_urllib_what_the_socket_says_live(
    server: Misbehaving, authority: trustme.CA, mode: str, fault: str, tmp_path: Path
) -> None:
    # The socket's own timeout reaches the caller of urllib.request as it is: `timed out`, or on
    # TLS the ssl module's `The read operation timed out`. Replay said the former over https too.
    path = tmp_path / "stream.yaml"
    server.mode = "whole"
    with llmcassette.use_cassette(path, record_mode="once"):
        assert _urlopen_outcome(server.url, authority)[:2] == ("", "")
    server.mode = mode
    live = _urlopen_outcome(server.url, authority)
    with VirtualClock(), llmcassette.use_cassette(path, faults=[fault]):
        replayed = _urlopen_outcome(server.url, authority)
    assert replayed == live
    assert live[0] == "TimeoutError"
