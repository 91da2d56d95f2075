"""Cassettes holding a WebSocket session, written as a user's file would be, for the tools' tests."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

__all__ = ["AUDIO", "realtime_session", "write_session"]

#: A base64 audio delta of 4,800 bytes of PCM16 (100 ms at 24 kHz).
AUDIO = base64.b64encode(bytes(range(256)) * 18 + bytes(192)).decode()


def realtime_session(
    *, deltas: int = 5, close: dict[str, Any] | None = None, extra_field: bool = False
) -> dict[str, Any]:
    """An OpenAI Realtime session: the ``websocket`` key of an interaction."""
    done: dict[str, Any] = {
        "type": "response.done",
        "event_id": "event_9",
        "response": {"id": "resp_1", "status": "completed"},
    }
    if extra_field:
        done["response"]["usage"] = {"total_tokens": 12}
    messages = [
        {
            "from": "server",
            "offset_ms": 80.0,
            "json": {"type": "session.created", "event_id": "event_1", "session": {"id": "sess_1"}},
        },
        {
            "from": "client",
            "offset_ms": 81.5,
            "json": {"type": "session.update", "session": {"type": "realtime"}},
        },
        {"from": "client", "offset_ms": 82.0, "json": {"type": "response.create"}},
        {
            "from": "server",
            "offset_ms": 120.0,
            "json": {"type": "response.output_text.delta", "event_id": "event_2", "delta": "Hello"},
        },
    ]
    messages += [
        {
            "from": "server",
            "offset_ms": 130.0 + n,
            "json": {"type": "response.output_audio.delta", "event_id": f"event_a{n}", "delta": AUDIO},
        }
        for n in range(deltas)
    ]
    messages += [
        {"from": "server", "offset_ms": 200.0, "text": "not JSON"},
        {"from": "client", "offset_ms": 210.0, "binary": b"\x00\x01\x02\x03"},
        {"from": "server", "offset_ms": 250.0, "json": done},
    ]
    session: dict[str, Any] = {"subprotocol": None, "messages": messages}
    session["close"] = (
        close if close is not None else {"code": 1000, "reason": "", "by": "client", "offset_ms": 260.0}
    )
    return session


def write_session(
    path: Path, session: dict[str, Any], *, headers: dict[str, list[str]] | None = None
) -> Path:
    """A cassette at ``path`` with one handshake to OpenAI Realtime, answered 101, and ``session``."""
    interaction = {
        "request": {
            "method": "GET",
            "uri": "wss://api.openai.com/v1/realtime?model=gpt-realtime",
            "headers": headers or {"Upgrade": ["websocket"], "Authorization": ["Bearer REDACTED"]},
            "body": None,
        },
        "response": {
            "status": {"code": 101, "message": "Switching Protocols"},
            "headers": {"Upgrade": ["websocket"], "Connection": ["Upgrade"]},
            "body": {"string": ""},
            "elapsed_ms": 78.0,
        },
        "websocket": session,
    }
    if session.get("close") is None:
        session.pop("close", None)
    path.write_text(
        yaml.safe_dump({"version": 1, "interactions": [interaction]}, sort_keys=False), encoding="utf-8"
    )
    return path
