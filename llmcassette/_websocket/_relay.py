"""
Recording: relay a session between the client and the real upstream, noting everything.

:func:`relay_session` faces the client as the server (:class:`._server.ServerSide`) and the
upstream as a ``websockets`` client. It reads the client's handshake, opens the upstream with
the same headers and offered subprotocols, answers the client as the upstream answered (its
subprotocol, its headers; a refusal is passed on as the HTTP answer it was), then passes every
message on in each direction as it arrives, noting it with its arrival time, until one side
closes (the close is passed on and noted) or the connection drops.

What it notes lives in a :class:`Recording`, which the cassette reads when the session ends, or
when the cassette is saved while the session is still open.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from ._replay import SessionLog
from ._server import ClientClosed, ServerSide, answer_headers

__all__ = ["Recording", "relay_session"]

_monotonic = time.monotonic

# Headers the client's handshake carries that belong to its own connection: the upstream
# connection makes its own.
_HOP_HEADERS = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "content-length",
        "transfer-encoding",
    }
)


@dataclass
class Recording:
    """A session as recorded so far: the handshake both ways, the messages, and the close."""

    url: str
    start: float
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    status: int | None = None
    reason: str = ""
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    #: The body of a refused handshake.
    body: bytes = b""
    elapsed_ms: float | None = None
    subprotocol: str | None = None
    log: SessionLog = field(init=False)
    #: Why the upstream could not be reached, if it could not.
    error: str | None = None
    #: Set when the session is over (closed, dropped, refused or failed).
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: The attempt of the attempt log that shows the session as it goes.
    attempt: Any = None

    def __post_init__(self) -> None:
        self.log = SessionLog(self.start, attempt=self.attempt)


async def relay_session(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    recording: Recording,
    *,
    upstream_options: dict[str, Any] | None = None,
) -> None:
    """Relay one session between the client on the channel and ``recording.url``, recording it."""
    side = ServerSide(reader, writer, recording.log)
    try:
        request = await side.read_request()
        if request is None:
            recording.log.closed("none")
            return
        recording.request_headers = list(request.headers.raw_items())
        upstream = await _open_upstream(side, request, recording, upstream_options or {})
        if upstream is None:
            return
        try:
            await _pass_messages(side, upstream, recording)
        finally:
            if upstream.transport is not None:
                upstream.transport.abort()
    finally:
        await side.aclose()
        recording.done.set()


async def _open_upstream(
    side: ServerSide, request: Any, recording: Recording, options: dict[str, Any]
) -> Any:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    headers = [(n, v) for n, v in request.headers.raw_items() if n.lower() not in _HOP_HEADERS]
    offered = [
        item.strip()
        for value in request.headers.get_all("Sec-WebSocket-Protocol")
        for item in value.split(",")
        if item.strip()
    ]
    try:
        upstream = await connect(
            recording.url,
            additional_headers=headers,
            user_agent_header=None,
            subprotocols=offered or None,
            max_size=None,
            # Keepalive on the engine's side would run on a virtual clock's time in a test; the
            # provider's own pings are answered all the same.
            ping_interval=None,
            **options,
        )
    except InvalidStatus as exc:
        # The upstream refused the handshake (401, 429, 503...): the client gets its answer.
        response = exc.response
        recording.elapsed_ms = recording.log.now_ms()
        recording.status = response.status_code
        recording.reason = response.reason_phrase
        recording.response_headers = list(response.headers.raw_items())
        recording.body = bytes(response.body or b"")
        await side.refuse(
            response.status_code, response.reason_phrase, recording.response_headers, recording.body
        )
        return None
    except Exception as exc:  # the upstream cannot be reached: the client's handshake fails
        recording.error = f"{type(exc).__name__}: {exc}"
        await side.drop()
        return None
    recording.elapsed_ms = recording.log.now_ms()
    answered = upstream.response
    recording.status = 101
    recording.reason = answered.reason_phrase if answered is not None else "Switching Protocols"
    recording.response_headers = list(answered.headers.raw_items()) if answered is not None else []
    recording.subprotocol = upstream.subprotocol
    answer = answer_headers(recording.response_headers)
    if not await side.accept(request, subprotocol=upstream.subprotocol, headers=answer):
        await upstream.close()
        return None
    return upstream


async def _pass_messages(side: ServerSide, upstream: Any, recording: Recording) -> None:
    log = recording.log
    to_upstream = asyncio.create_task(_client_to_upstream(side, upstream, log))
    to_client = asyncio.create_task(_upstream_to_client(side, upstream, log))
    try:
        await asyncio.wait({to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED)
        # One side has ended the session; the other finishes passing on the close.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(to_upstream, to_client, return_exceptions=True), 10.0)
    finally:
        for task in (to_upstream, to_client):
            task.cancel()
        await asyncio.gather(to_upstream, to_client, return_exceptions=True)


async def _client_to_upstream(side: ServerSide, upstream: Any, log: SessionLog) -> None:
    from websockets.exceptions import ConnectionClosed

    while True:
        received = await side.next_message()
        # The client's messages and its close were noted as they arrived (ServerSide).
        if isinstance(received, ClientClosed):
            if received.frame:
                code = received.code if received.code not in (None, 1005) else 1000
                with contextlib.suppress(ConnectionClosed):
                    await upstream.close(code, received.reason or "")
            elif upstream.transport is not None:
                upstream.transport.abort()
            return
        try:
            await upstream.send(received)
        except ConnectionClosed:
            return


async def _upstream_to_client(side: ServerSide, upstream: Any, log: SessionLog) -> None:
    from websockets.exceptions import ConnectionClosed

    while True:
        try:
            data = await upstream.recv()
        except ConnectionClosed as exc:
            received, sent = exc.rcvd, exc.sent
            if received is not None and (sent is None or exc.rcvd_then_sent):
                # The upstream closed first: the client gets its close frame.
                log.closed("server", received.code, received.reason)
                code = received.code if received.code != 1005 else None
                await side.close(code, received.reason)
            elif received is None and sent is None:
                log.closed("none")
                await side.drop()
            return
        log.message("server", data)
        await side.send(data)
