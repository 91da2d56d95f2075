"""
A recorded WebSocket session read for people and tools: ``inspect``'s timeline, ``diff``'s event
shapes, ``lint``'s checks and ``llm_snapshot``'s event sequence all start here.

A session is read in the cassette's own layout (``websocket:`` of an interaction: ``subprotocol``,
``messages`` with ``from``, ``offset_ms`` and one of ``json``, ``text`` or ``binary``, and
``close``), so that the tools see what a reviewer sees in the file.

Each message has an **event type**: a JSON message's ``type`` (OpenAI Realtime:
``session.created``, ``response.output_audio.delta``), else its top-level key (Gemini Live:
``setupComplete``, ``serverContent``; several keys are joined with ``+``); ``(text)`` for text
that is not JSON and ``(binary)`` for binary messages.

Payloads that are data, not words (base64 audio in a JSON string, binary frames) are summarised,
never printed: a JSON string of :data:`BASE64_MIN_CHARS` or more base64 characters shows as
``<base64: 12.0 kB>`` (its decoded size).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BASE64_MIN_CHARS",
    "SessionClose",
    "SessionMessage",
    "event_type",
    "payload_bytes",
    "read_close",
    "read_messages",
    "session_document",
    "session_events",
    "session_of",
    "size_text",
    "summarised",
]

#: A JSON string at least this long made only of base64 characters is a payload, summarised.
BASE64_MIN_CHARS = 256
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


def session_of(interaction: Any) -> Mapping[str, Any] | None:
    """The ``websocket`` part of an interaction in the cassette's layout, or None for HTTP."""
    session = getattr(interaction, "websocket", None)
    if session is None and isinstance(interaction, Mapping):
        session = interaction.get("websocket")
    if session is None:
        return None
    if isinstance(session, Mapping):
        return session
    to_data = getattr(session, "to_data", None)  # the loaded model: as the file holds it
    if to_data is not None:
        data = to_data()
        if isinstance(data, Mapping):
            return data
    return None


def event_type(value: Any, *, kind: str = "json") -> str:
    """The event type of a message (module docstring): ``type``, else the top-level keys."""
    if kind == "text":
        return "(text)"
    if kind == "binary":
        return "(binary)"
    if isinstance(value, Mapping):
        kind_field = value.get("type")
        if isinstance(kind_field, str) and kind_field:
            return kind_field
        if value:
            return "+".join(str(key) for key in value)
        return "{}"
    from ._shape import type_name  # (_shape reads sessions through this module)

    return f"({type_name(value)})"


def size_text(size: int) -> str:
    """A byte count for people: ``512 B``, ``12.0 kB``, ``3.4 MB``."""
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def _is_payload(text: str) -> bool:
    return len(text) >= BASE64_MIN_CHARS and _BASE64.fullmatch(text) is not None


def summarised(value: Any) -> Any:
    """``value`` with every base64 payload string replaced by ``<base64: SIZE>`` (module docstring)."""
    if isinstance(value, str):
        return f"<base64: {size_text(len(value) * 3 // 4)}>" if _is_payload(value) else value
    if isinstance(value, Mapping):
        return {key: summarised(item) for key, item in value.items()}
    if isinstance(value, list):
        return [summarised(item) for item in value]
    return value


def payload_bytes(value: Any) -> int:
    """How many decoded bytes of base64 payload ``value`` carries, in all its strings."""
    if isinstance(value, str):
        return len(value) * 3 // 4 if _is_payload(value) else 0
    if isinstance(value, Mapping):
        return sum(payload_bytes(item) for item in value.values())
    if isinstance(value, list):
        return sum(payload_bytes(item) for item in value)
    return 0


@dataclass(frozen=True)
class SessionMessage:
    """One recorded message, read."""

    #: Its position among the session's messages, from 0.
    number: int
    #: ``client`` or ``server``.
    sender: str
    offset_ms: float | None
    #: ``json``, ``text`` or ``binary``.
    kind: str
    #: See the module docstring.
    event: str
    #: Its size on the wire: the text's UTF-8 bytes (compact JSON for ``json``), or the binary's.
    size: int
    #: The JSON value (``json``), the text (``text``), or the bytes (``binary``).
    value: Any

    def detail(self) -> str:
        """The message in one line, payloads summarised: JSON without what names its event, or the text."""
        if self.kind == "binary":
            return f"<binary: {size_text(self.size)}>"
        if self.kind == "text":
            return str(summarised(self.value))
        shown = summarised(self.value)
        if isinstance(shown, dict) and isinstance(shown.get("type"), str):
            shown = {key: item for key, item in shown.items() if key != "type"}
        elif isinstance(shown, dict) and len(shown) == 1 and self.event in shown:
            shown = shown[self.event]  # Gemini Live: the event is the key, its content the value
        return json.dumps(shown, ensure_ascii=False, separators=(", ", ": "))


@dataclass(frozen=True)
class SessionClose:
    """How the session ended: ``by`` is ``client``, ``server`` or ``none`` (no close frame)."""

    by: str
    code: int | None
    reason: str | None
    offset_ms: float | None

    def text(self) -> str:
        """``closed by client: 1000``, or ``dropped without a close frame``."""
        if self.by == "none":
            return "dropped without a close frame"
        reason = f" {self.reason!r}" if self.reason else ""
        return f"closed by {self.by}: {self.code}{reason}"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def read_messages(session: Mapping[str, Any]) -> list[SessionMessage]:
    """The messages of ``session``, in the order they crossed."""
    raw = session.get("messages") or []
    read = []
    for number, message in enumerate(raw if isinstance(raw, Sequence) else []):
        if not isinstance(message, Mapping):
            continue
        sender = str(message.get("from") or message.get("from_") or "?")
        offset = _number(message.get("offset_ms"))
        if message.get("binary") is not None:
            data = message["binary"]
            size = len(data) if isinstance(data, bytes | bytearray | str) else 0
            read.append(SessionMessage(number, sender, offset, "binary", "(binary)", size, data))
        elif message.get("text") is not None:
            text = str(message["text"])
            size = len(text.encode("utf-8", "surrogatepass"))
            read.append(SessionMessage(number, sender, offset, "text", "(text)", size, text))
        else:
            value = message.get("json")
            if value is None and "json_" in message:
                value = message["json_"]
            size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
            read.append(SessionMessage(number, sender, offset, "json", event_type(value), size, value))
    return read


def read_close(session: Mapping[str, Any]) -> SessionClose | None:
    """The close of ``session``; None when it was still open when the cassette was saved."""
    close = session.get("close")
    if not isinstance(close, Mapping):
        return None
    code = close.get("code")
    return SessionClose(
        by=str(close.get("by") or "none"),
        code=code if isinstance(code, int) else None,
        reason=close.get("reason") if isinstance(close.get("reason"), str) else None,
        offset_ms=_number(close.get("offset_ms")),
    )


def session_document(session: Mapping[str, Any]) -> dict[str, Any]:
    """The session as ``inspect --json`` shows it: counts, close, and each message summarised."""
    messages = read_messages(session)
    close = read_close(session)
    return {
        "subprotocol": session.get("subprotocol"),
        "client_messages": sum(1 for m in messages if m.sender == "client"),
        "server_messages": sum(1 for m in messages if m.sender == "server"),
        "bytes": sum(m.size for m in messages),
        "messages": [
            {
                "from": m.sender,
                "offset_ms": m.offset_ms,
                "kind": m.kind,
                "event": m.event,
                "size": m.size,
                "detail": m.detail(),
            }
            for m in messages
        ],
        "close": None
        if close is None
        else {"by": close.by, "code": close.code, "reason": close.reason, "offset_ms": close.offset_ms},
    }


def session_events(session: Mapping[str, Any]) -> list[dict[str, Any]]:
    """
    The event sequence of ``session`` for a snapshot: one ``{"from", "event"}`` line per message,
    a run of one event from one side as one line with its ``count`` (how many audio deltas a
    provider sends varies from one recording to the next, their order does not), then how it
    ended (``{"close": 1000, "by": "client"}``; ``"by": "none"`` when dropped, nothing when open).
    Nothing volatile is written: no ids, no times, no payloads.
    """
    events: list[dict[str, Any]] = []
    for message in read_messages(session):
        line = {"from": message.sender, "event": message.event}
        last = events[-1] if events else None
        if last is not None and last["from"] == line["from"] and last["event"] == line["event"]:
            last["count"] = last.get("count", 1) + 1
        else:
            events.append(line)
    close = read_close(session)
    if close is not None:
        events.append({"close": close.code, "by": close.by})
    return events
