"""
Small wire helpers shared by the provider profiles: flattening usage objects, error messages in
any provider's shape, assembling streamed tool calls, and deterministic ids and instants for
synthesised responses. Reading recorded bodies back into events is :mod:`._events`.

Everything here is pure and forgiving: a summary of a damaged stream should say what arrived,
not raise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ._events import parse_json
from ._types import ToolCall

__all__ = [
    "FALLBACK_NOW_S",
    "ToolCallAssembly",
    "body_error",
    "compact_json",
    "error_message",
    "flat_ints",
    "rfc3339",
    "sse_event",
    "stable_token",
]

#: The instant rate-limit resets are counted from when the caller gives no clock (2026-01-01Z):
#: fixed, so that a synthesised response is the same bytes on every run.
FALLBACK_NOW_S = 1_767_225_600.0


def compact_json(value: Any) -> str:
    """``value`` as compact JSON text, non-ASCII kept (how argument objects are shown)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def flat_ints(value: Any, prefix: str = "") -> dict[str, int]:
    """
    The integer fields of a usage object, nested objects flattened with dotted names
    (``completion_tokens_details.reasoning_tokens``). Lists, floats, strings and booleans are
    not token counts and are left out.
    """
    out: dict[str, int] = {}
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = f"{prefix}{key}"
            if isinstance(item, bool):
                continue
            if isinstance(item, int):
                out[name] = item
            elif isinstance(item, Mapping):
                out.update(flat_ints(item, name + "."))
    return out


def error_message(value: Any) -> str | None:
    """
    The message of an error value in any provider's shape: ``{"error": {"message": ...}}``,
    ``{"error": "..."}``, ``{"message": ...}``, ``{"detail": ...}``, or a one-element list of those.
    """
    if isinstance(value, list) and len(value) == 1:
        return error_message(value[0])
    if not isinstance(value, Mapping):
        return None
    error = value.get("error")
    if isinstance(error, str) and error:
        return error
    if isinstance(error, Mapping):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message
        return compact_json(error)
    for key in ("message", "detail"):
        item = value.get(key)
        if isinstance(item, str) and item:
            return item
        if item:
            return compact_json(item)
    return None


def body_error(body: bytes, status: int) -> str:
    """What an error response says: its message when the body is a known shape, else its text."""
    message = error_message(parse_json(body)) if body.strip() else None
    if message is not None:
        return message
    text = body.decode("utf-8", errors="replace").strip()
    return text[:500] if text else f"HTTP {status} with an empty body"


def stable_token(*parts: object, length: int = 24, alphabet: str = "0123456789abcdef") -> str:
    """A token that looks random but is derived from ``parts``, so replays are byte-identical."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


def rfc3339(seconds: float) -> str:
    """An instant as RFC 3339 in UTC with a ``Z`` (``2026-01-01T00:00:01Z``)."""
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sse_event(data: Any, *, event: str | None = None, newline: str = "\n") -> bytes:
    """One SSE event: an optional ``event:`` line, one ``data:`` line, and the blank line."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}{newline}" if event is not None else ""
    return f"{head}data: {text}{newline}{newline}".encode()


@dataclass
class _Call:
    name: str = ""
    arguments: str = ""
    id: str | None = None


@dataclass
class ToolCallAssembly:
    """Tool calls assembled from fragments, keyed however the provider tells calls apart."""

    calls: dict[Any, _Call] = field(default_factory=dict)

    def add(self, key: Any, *, name: str | None = None, arguments: str | None = None, id: Any = None) -> None:
        call = self.calls.setdefault(key, _Call())
        if name:
            call.name += name
        if arguments:
            call.arguments += arguments
        if isinstance(id, str) and id and call.id is None:
            call.id = id

    def set_arguments(self, key: Any, arguments: str) -> None:
        """Use ``arguments`` when no fragments arrived for the call (a provider's final value)."""
        call = self.calls.get(key)
        if call is not None and not call.arguments:
            call.arguments = arguments

    def __iter__(self) -> Iterator[ToolCall]:
        for call in self.calls.values():
            yield ToolCall(name=call.name, arguments=call.arguments, id=call.id)

    def result(self) -> list[ToolCall]:
        return list(self)
