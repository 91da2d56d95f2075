"""
An upstream that proves a recording passes each chunk on as it arrives: it withholds every chunk
until the client has reported seeing all the bytes before it. A door that buffered the stream
would keep the client from seeing anything, and the upstream would wait in vain.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from tests.servers import read_request, serve_connections

__all__ = ["GatedUpstream"]


class GatedUpstream:
    """
    Answers every request with ``chunks``, one HTTP/1.1 transfer chunk each, sending chunk ``i``
    only once :meth:`saw` has been told of every byte of the chunks before it (or after
    ``patience_s``, noting ``i`` in :attr:`late`).
    """

    def __init__(self, chunks: list[bytes], content_type: str, *, patience_s: float = 3.0) -> None:
        self.chunks = chunks
        self.content_type = content_type
        self.patience_s = patience_s
        #: Chunks sent only because the client did not see the ones before them in time.
        self.late: list[int] = []
        self._seen = 0
        self._changed = threading.Condition()

    def saw(self, data: bytes) -> None:
        """The client has received ``data``."""
        with self._changed:
            self._seen += len(data)
            self._changed.notify_all()

    def _answer(self, connection: socket.socket) -> None:
        with self._changed:
            self._seen = 0
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {self.content_type}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode()
        connection.sendall(head)
        before = 0
        for index, chunk in enumerate(self.chunks):
            with self._changed:
                if not self._changed.wait_for(lambda before=before: self._seen >= before, self.patience_s):
                    self.late.append(index)
            connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            before += len(chunk)
        connection.sendall(b"0\r\n\r\n")

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        """Serve on loopback while the block runs; yields the base URL."""

        def answer(connection: socket.socket) -> None:
            with connection:
                connection.settimeout(10)
                if read_request(connection):
                    self._answer(connection)

        with serve_connections(answer, join_timeout_s=10) as base:
            yield base
