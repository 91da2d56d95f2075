"""
A recorded WebSocket session: the ``websocket`` key of an interaction.

The interaction's ``request`` is the handshake as sent (the real upstream URL, scrubbed headers)
and its ``response`` the server's ``101 Switching Protocols``, so that tools which know only
vcrpy's keys see an HTTP exchange they skip. The session itself::

    websocket:
      subprotocol: null
      messages:
      - {from: client, offset_ms: 1.2, json: {type: session.update, session: {...}}}
      - {from: server, offset_ms: 85.0, json: {type: session.created}}
      - {from: server, offset_ms: 90.5, text: not JSON}
      - {from: client, offset_ms: 95.0, binary: !!binary AAEC}
      close: {code: 1000, reason: '', by: client, offset_ms: 2012.0}

- ``offset_ms`` counts from when the handshake request was sent (the clock of HTTP ``offsets_ms``)
  and never decreases from one message to the next.
- A message holds exactly one of ``json`` (a text message whose text is JSON, stored structured;
  ``json_format`` names its serialisation when it is not compact JSON, so the exact text comes
  back), ``text`` and ``binary``.
- ``close.by`` is ``client`` or ``server`` for a close frame, ``none`` for a connection that ended
  without one (then ``code`` and ``reason`` are null). A session still open when the cassette was
  saved has no ``close``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, Strict, model_validator
from pydantic_core import PydanticCustomError

from .._bodies import dump_json, exact_json
from .._values import FormatModel, JsonFormat, JsonValue, TimeMs, binary_checked

__all__ = [
    "COMPACT_JSON",
    "Sender",
    "WebSocketClose",
    "WebSocketMessage",
    "WebSocketSession",
    "close_code_problem",
    "session_data",
]

#: The serialisation an absent ``json_format`` stands for: what the providers' servers and SDKs send.
COMPACT_JSON = "compact"

Sender = Literal["client", "server"]


class WebSocketMessage(FormatModel):
    """One message of a session, in one direction, with its arrival time."""

    sender: Sender = Field(alias="from")
    #: When it crossed, in milliseconds after the handshake request was sent.
    offset_ms: TimeMs
    json_value: JsonValue = Field(default=None, alias="json")
    text: Annotated[str, Strict()] | None = None
    binary: Annotated[bytes | None, Strict(), BeforeValidator(binary_checked)] = None
    #: The serialisation of ``json`` when it is not compact (see ``_bodies.JSON_FORMATS``).
    json_format: JsonFormat = None
    #: ``binary`` for a ``json`` message that crossed as a binary frame (Gemini Live sends its
    #: JSON so): stored as readable as a text frame's, sent back as the same bytes.
    frame: Literal["binary"] | None = None
    _text: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_payload(self) -> WebSocketMessage:
        given = [name for name in ("json_value", "text", "binary") if name in self.model_fields_set]
        if len(given) != 1:
            shown = ", ".join(f"`{_KEY[name]}`" for name in given) or "none of them"
            raise PydanticCustomError(
                "websocket_payload",
                "a message holds exactly one of `json`, `text` and `binary`, and this one has {shown}",
                {"shown": shown},
            )
        for name in ("json_format", "frame"):
            if getattr(self, name) is not None and given != ["json_value"]:
                raise PydanticCustomError(
                    "websocket_payload",
                    "`{name}` belongs to a `json` message only; delete it",
                    {"name": name},
                )
        return self

    @property
    def is_binary(self) -> bool:
        """True for a binary message, False for a text one."""
        return "binary" in self.model_fields_set or self.frame is not None

    @property
    def data(self) -> str | bytes:
        """The message as it crossed: ``str`` for a text message, ``bytes`` for a binary one."""
        if self.binary is not None:
            return self.binary
        if self.text is not None:
            return self.text
        # Rebuilt once: replay sends it, and the attempt log finds it by it, in every session.
        if self._text is None:
            self._text = dump_json(self.json_value, self.json_format or COMPACT_JSON).decode("utf-8")
        return self._text.encode("utf-8") if self.frame is not None else self._text

    @classmethod
    def capture(cls, sender: Sender, offset_ms: float, data: str | bytes) -> WebSocketMessage:
        """A message as it crossed, stored in its most readable form that gives it back exactly."""
        data_: dict[str, Any] = {"from": sender, "offset_ms": round(offset_ms, 1)}
        raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
        if raw.lstrip()[:1] in (b"{", b"[") and (found := exact_json(raw)):
            value, name = found
            data_["json"] = value
            if name != COMPACT_JSON:
                data_["json_format"] = name
            if isinstance(data, bytes):
                data_["frame"] = "binary"
        elif isinstance(data, bytes):
            data_["binary"] = data
        else:
            data_["text"] = data
        return cls.model_validate(data_)

    def to_data(self) -> dict[str, Any]:
        """The plain data written to the file, keys in reading order."""
        data: dict[str, Any] = {"from": self.sender, "offset_ms": self.offset_ms}
        if self.binary is not None:
            data["binary"] = self.binary
        elif self.text is not None:
            data["text"] = self.text
        else:
            data["json"] = self.json_value
            if self.json_format is not None:
                data["json_format"] = self.json_format
            if self.frame is not None:
                data["frame"] = self.frame
        data.update(self.model_extra or {})
        return data


_KEY = {"json_value": "json", "text": "text", "binary": "binary"}


def close_code_problem(code: int) -> str | None:
    """Why ``code`` cannot be sent in a close frame (RFC 6455 7.4), if it cannot."""
    if 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999:
        return None
    return f"{code} is not a close code a close frame can carry (1000-1003, 1007-1014, 3000-4999)"


class WebSocketClose(FormatModel):
    """How a session ended."""

    #: The close frame's code; None for a close frame without one, or no close frame at all.
    code: int | None = None
    reason: str | None = None
    #: Who sent the first close frame; ``none``: the connection ended without one.
    by: Literal["client", "server", "none"]
    offset_ms: TimeMs

    @model_validator(mode="after")
    def _consistent(self) -> WebSocketClose:
        if self.by == "none" and (self.code is not None or self.reason):
            raise PydanticCustomError(
                "websocket_close",
                "`by: none` is a connection that ended without a close frame, so it has no `code` "
                "or `reason`; delete them, or say who closed (`by: client` or `by: server`)",
            )
        if self.code is not None:
            problem = close_code_problem(self.code)
            if problem is not None:
                raise PydanticCustomError("websocket_close", "{problem}", {"problem": problem})
        if self.reason and len(self.reason.encode("utf-8")) > 123:
            raise PydanticCustomError(
                "websocket_close", "a close reason holds at most 123 bytes of UTF-8, and this one is longer"
            )
        return self

    def to_data(self) -> dict[str, Any]:
        """The plain data written to the file."""
        data: dict[str, Any] = {"code": self.code, "reason": self.reason, "by": self.by}
        data["offset_ms"] = self.offset_ms
        data.update(self.model_extra or {})
        return data


class WebSocketSession(FormatModel):
    """The messages of a WebSocket session, both directions in the order they crossed, and its close."""

    #: The subprotocol the server chose, if any.
    subprotocol: str | None = None
    messages: list[WebSocketMessage] = Field(default_factory=list)
    #: None while the session was still open when the cassette was saved.
    close: WebSocketClose | None = None

    @model_validator(mode="after")
    def _in_order(self) -> WebSocketSession:
        last = 0.0
        for index, message in enumerate(self.messages):
            if message.offset_ms < last:
                raise PydanticCustomError(
                    "websocket_order",
                    "message {index} has offset_ms {offset}, earlier than the message before it "
                    "({last}); messages are listed in the order they crossed",
                    {"index": index, "offset": message.offset_ms, "last": last},
                )
            last = message.offset_ms
        return self

    def to_data(self) -> dict[str, Any]:
        """The plain data written to the file."""
        data: dict[str, Any] = {
            "subprotocol": self.subprotocol,
            "messages": [message.to_data() for message in self.messages],
        }
        if self.close is not None:
            data["close"] = self.close.to_data()
        data.update(self.model_extra or {})
        return data


def session_data(session: WebSocketSession) -> dict[str, Any]:
    """The plain data of a session, as the cassette file holds it."""
    return session.to_data()
