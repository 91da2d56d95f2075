"""The error answers of the proxy and ``serve``, in one shape for both."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["error_body", "send_error"]

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def error_body(kind: str, message: str, **extra: Any) -> bytes:
    """``{"error": {"type": kind, "message": message, ...extra}}`` as JSON bytes."""
    return json.dumps({"error": {"type": kind, "message": message, **extra}}).encode()


async def send_error(
    send: Send, status: int, kind: str, message: str, *, close: bool = False, **extra: Any
) -> None:
    """
    Answer with ``status`` and ``{"error": {"type": kind, "message": message, ...extra}}``: the
    OpenAI-style error shape, whose message every SDK shows. ``close`` ends the connection after
    it (a request whose body was not read leaves the connection unusable).
    """
    body = error_body(kind, message, **extra)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
