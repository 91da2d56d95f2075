"""
The replay engine on its own: a script played to a real ``websockets`` client over a socketpair,
including the steps faults write into scripts (fragments, a drop without close frame, a refused
handshake, a stall, an injected message), so the fault hook is known to work end to end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import websockets
import websockets.asyncio.client

from llmcassette._websocket._models import WebSocketMessage, WebSocketSession
from llmcassette._websocket._replay import MISMATCH_CLOSE_CODE, SessionLog, serve_session
from llmcassette._websocket._script import (
    Close,
    Expect,
    Pause,
    Refusal,
    Send,
    SessionContext,
    SessionScript,
    apply_faults,
    script_of,
)

pytestmark = pytest.mark.anyio

Client = Callable[[Any], Awaitable[Any]]


async def play(
    script: SessionScript, client: Client, *, check: Callable[..., list[str]] | None = None
) -> tuple[Any, SessionLog, list[tuple[Any, ...]]]:
    client_sock, engine_sock = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=engine_sock)
    log = SessionLog(time.monotonic())
    mismatches: list[tuple[Any, ...]] = []
    server = asyncio.create_task(
        serve_session(
            reader,
            writer,
            script,
            check=check or (lambda expected, received: [] if expected.data == received else ["differs"]),
            on_mismatch=lambda *args: mismatches.append(args),
            log=log,
        )
    )
    try:
        result = await client(client_sock)
    finally:
        await asyncio.wait_for(server, 10)
    return result, log, mismatches


def connect(sock: socket.socket) -> Any:
    return websockets.asyncio.client.connect("ws://api.example.com/v1/live", sock=sock, ping_interval=None)


SESSION = WebSocketSession.model_validate(
    {
        "messages": [
            {"from": "server", "offset_ms": 0.0, "json": {"type": "session.created"}},
            {"from": "client", "offset_ms": 1.0, "json": {"type": "ask"}},
            {"from": "server", "offset_ms": 2.0, "text": "first"},
            {"from": "server", "offset_ms": 3.0, "binary": b"second"},
        ],
        "close": {"by": "server", "code": 1000, "reason": "done", "offset_ms": 4.0},
    }
)


async def conversation(sock: socket.socket) -> list[Any]:
    seen: list[Any] = []
    async with connect(sock) as ws:
        seen.append(await ws.recv())
        await ws.send('{"type":"ask"}')
        try:
            while True:
                seen.append(await ws.recv())
        except websockets.ConnectionClosed as exc:
            seen.append(
                ("closed", exc.rcvd.code if exc.rcvd else None, exc.rcvd.reason if exc.rcvd else None)
            )
    return seen


async def test_a_recorded_script_plays_turn_by_turn_and_closes_as_recorded() -> None:
    seen, log, mismatches = await play(script_of(SESSION), conversation)
    assert seen == ['{"type":"session.created"}', "first", b"second", ("closed", 1000, "done")]
    assert [m.sender for m in log.messages] == ["server", "client", "server", "server"]
    assert log.close is not None and (log.close.by, log.close.code) == ("server", 1000)
    assert mismatches == []


async def test_server_messages_wait_for_the_client_message_before_them() -> None:
    async def slow_client(sock: socket.socket) -> list[Any]:
        async with connect(sock) as ws:
            first = await ws.recv()
            # The next turn is not sent before the client's message: nothing arrives meanwhile.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.2)
            await ws.send('{"type":"ask"}')
            return [first, await ws.recv()]

    seen, _, _ = await play(script_of(SESSION), slow_client)
    assert seen == ['{"type":"session.created"}', "first"]


class Fragment:
    """A test fault: message ``index`` sent as continuation frames of ``size`` bytes."""

    def __init__(self, index: int, size: int) -> None:
        self.index, self.size = index, size

    def apply_session(self, script: SessionScript, context: SessionContext) -> SessionScript:
        steps = []
        for step in script.steps:
            if isinstance(step, Send) and step.index == self.index:
                length = len(step.data if isinstance(step.data, bytes) else step.data.encode())
                sizes = [self.size] * (length // self.size) + (
                    [length % self.size] if length % self.size else []
                )
                step = dataclasses.replace(step, fragments=tuple(sizes))
            steps.append(step)
        return dataclasses.replace(script, steps=tuple(steps))


async def test_a_fault_sends_a_message_as_continuation_frames() -> None:
    script = apply_faults(script_of(SESSION), [(Fragment(2, 2), 1)], SessionContext(url="ws://x"))

    async def fragments(sock: socket.socket) -> list[Any]:
        async with connect(sock) as ws:
            await ws.recv()
            await ws.send('{"type":"ask"}')
            return [part async for part in ws.recv_streaming()]

    seen, _, _ = await play(script, fragments)
    assert seen == ["fi", "rs", "t"]


async def test_a_drop_ends_the_connection_without_a_close_frame() -> None:
    steps = (*script_of(SESSION).steps[:3], Close(by="none"))
    seen, log, _ = await play(SessionScript(steps=steps), conversation)
    assert seen == ['{"type":"session.created"}', "first", ("closed", None, None)]
    assert log.close is not None and log.close.by == "none"


@pytest.mark.skipif(
    int(websockets.version.version.split(".")[0]) < 14,
    reason="before websockets 14 the asyncio client drops messages it had not read when the connection ends",
)
async def test_a_drop_delivers_every_message_sent_before_it_to_a_slow_reader() -> None:
    # Large messages to a client that has not read yet: when the drop comes, the tail of the
    # last ones still waits in the engine's buffers. A drop is the end of the stream after them,
    # never a reset that throws them away.
    big = [f"{index}:" + "x" * 1_000_000 for index in range(4)]
    steps = (
        *(Send(index=index, data=text, offset_ms=0.0) for index, text in enumerate(big)),
        Close(by="none"),
    )

    async def slow_reader(sock: socket.socket) -> list[Any]:
        async with connect(sock) as ws:
            await asyncio.sleep(0.3)
            seen: list[Any] = []
            with pytest.raises(websockets.ConnectionClosedError) as info:
                while True:
                    seen.append(await ws.recv())
            assert info.value.rcvd is None  # no close frame
            return seen

    seen, log, _ = await play(SessionScript(steps=steps), slow_reader)
    assert [text[:2] for text in seen] == ["0:", "1:", "2:", "3:"]
    assert seen == big
    assert log.close is not None and log.close.by == "none"


async def test_a_refusal_answers_the_handshake_with_http() -> None:
    refusal = Refusal(429, "Too Many Requests", (("retry-after", "3"),), b'{"error":"slow down"}')

    async def refused(sock: socket.socket) -> Any:
        with pytest.raises(websockets.InvalidStatus) as info:
            await connect(sock)
        return info.value.response

    response, _, _ = await play(dataclasses.replace(script_of(SESSION), refusal=refusal), refused)
    assert (response.status_code, response.headers["retry-after"], response.body) == (
        429,
        "3",
        b'{"error":"slow down"}',
    )


async def test_a_stall_holds_until_the_client_gives_up_and_injected_messages_are_sent() -> None:
    steps = (Send('{"type":"error","code":"injected"}', 0.0), Pause(None), *script_of(SESSION).steps)

    async def impatient(sock: socket.socket) -> list[Any]:
        async with connect(sock) as ws:
            seen = [await ws.recv()]
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.2)
            return seen

    seen, log, _ = await play(SessionScript(steps=steps), impatient)
    assert seen == ['{"type":"error","code":"injected"}']
    assert log.close is not None and log.close.by == "client"


async def test_a_client_message_that_does_not_fit_closes_with_1008_and_is_reported() -> None:
    async def wrong(sock: socket.socket) -> Any:
        async with connect(sock) as ws:
            await ws.recv()
            await ws.send('{"type":"other"}')
            with pytest.raises(websockets.ConnectionClosedError) as info:
                await ws.recv()
            return info.value.rcvd

    received, log, mismatches = await play(script_of(SESSION), wrong)
    assert received.code == MISMATCH_CLOSE_CODE and received.reason.startswith("llmcassette:")
    ((expected, sent, differences),) = mismatches
    assert (
        isinstance(expected, WebSocketMessage) and sent == '{"type":"other"}' and differences == ["differs"]
    )


async def test_a_message_after_the_recordings_end_is_reported() -> None:
    script = SessionScript(steps=(Expect(SESSION.messages[1], 1),))

    async def extra(sock: socket.socket) -> Any:
        async with connect(sock) as ws:
            await ws.send('{"type":"ask"}')
            await ws.send("one more")
            with pytest.raises(websockets.ConnectionClosedError):
                await ws.recv()

    _, _, mismatches = await play(script, extra)
    ((expected, sent, _),) = mismatches
    assert expected is None and sent == "one more"
