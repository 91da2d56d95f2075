"""
Stream faults that change how a recorded stream ends: with no content, early, with a dropped
connection, or with the provider's own error event.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field, field_validator

from .._exceptions import ConfigError
from .._exchange import Ending, Playback
from .._flavors import RESET
from .._framing import Framing, split_events
from ..providers import ERROR_KINDS
from ..providers.bedrock import exception_frame
from ._base import MAX_COUNT, MAX_TEXT_CHARS, FaultContext, StreamFault
from .stream_wire import cut, finish, plain, read_delays, view

__all__ = ["Disconnect", "EmptyStream", "ErrorEvent", "Truncate"]

_AFTER = (
    "events delivered before the fault (SSE data events, NDJSON lines, JSON-array elements); "
    "default: half of the events before the terminator, rounded up"
)
# httpx's own messages for the two ways a connection drops mid-body.
_INCOMPLETE_CHUNKED = "peer closed connection without sending complete message body (incomplete chunked read)"
_INCOMPLETE_LENGTH = (
    "peer closed connection without sending complete message body (received {} bytes, expected {})"
)


def _clean_end(playback: Playback) -> Playback:
    return replace(playback, ending=Ending.COMPLETE, error_type=None, error_message="", stall_ms=None)


class EmptyStream(StreamFault):
    """
    An HTTP 200 that carries no content, in the provider's own shape.

    A streamed response becomes the provider's empty stream (``profile.empty_stream()``: only
    ``data: [DONE]`` for OpenAI, a message without content blocks for Anthropic, no bytes at all
    for a provider without a terminator), one chunk per event, under the recorded headers. A
    non-streamed response becomes a 200 with an empty body, which the client cannot parse. The
    stream ends cleanly whatever the recording did: the client sees a successful call that says
    nothing.
    """

    name = "empty_stream"
    summary = "a 200 with no content: the provider's empty stream, or an empty body"
    example = "empty_stream:times=1"

    def apply(self, playback: Playback, context: FaultContext) -> Playback:
        playback = plain(playback)
        stream = view(playback, context)
        headers = playback.headers
        chunks: list[bytes] = []
        if stream.streamed or context.streaming:
            profile = context.profile
            framing = stream.framing if stream.streamed else profile.framing
            body = profile.empty_stream()
            chunks = split_events(body, framing) if framing is not Framing.NONE else [body]
            if not stream.streamed:
                # The recording is a JSON answer to a streamed request: say what the body now is.
                headers = (
                    *((k, v) for k, v in headers if k.lower() != "content-type"),
                    ("content-type", profile.stream_content_type),
                )
        result = _clean_end(replace(playback, status=200, headers=headers))
        return finish(result, chunks, [0.0] * len(chunks))


class Truncate(StreamFault):
    """
    The stream ends cleanly after ``after`` events, without its terminator.

    The first ``after`` events arrive as recorded (same bytes, same chunk boundaries), then the
    body ends with no transport error: the client sees a short stream and no ``data: [DONE]``,
    ``message_stop``, ``response.completed`` or ``"done": true`` line. The terminator never
    survives: when ``after`` reaches it (or goes past the last event), the stream stops just before
    it. Gemini streams have no terminator, so there a count past the end changes nothing.
    A non-streamed body is cut in half (``after=0``: no body at all).
    """

    name = "truncate"
    summary = "the stream ends cleanly after N events, without its terminator"
    example = "truncate:after=3"

    after: int | None = Field(default=None, ge=0, le=MAX_COUNT, description=_AFTER)

    def apply(self, playback: Playback, context: FaultContext) -> Playback:
        playback = plain(playback)
        offset = view(playback, context).offset_after(self.after, keep_terminator=False)
        chunks, delays = cut(playback.chunks, read_delays(playback), offset)
        return finish(_clean_end(playback), chunks, delays)


class Disconnect(StreamFault):
    """
    The connection drops after ``after`` events.

    The first ``after`` events arrive as recorded, then the read fails. ``mode=fin``: the server
    closed without the final empty chunk, so httpx raises ``RemoteProtocolError`` ("incomplete
    chunked read", or "received N bytes, expected M" when the recording announced a
    Content-Length, which is kept). ``mode=reset``: the connection was reset, ``ReadError``. A
    count past the last event delivers the whole body, terminator included, before the drop (a
    client that stops reading at the terminator never sees it). A non-streamed body drops
    halfway (``after=0``: before its first byte).
    """

    name = "disconnect"
    summary = "the connection drops after N events (fin: RemoteProtocolError, reset: ReadError)"
    example = "disconnect:after=2,mode=reset"

    after: int | None = Field(default=None, ge=0, le=MAX_COUNT, description=_AFTER)
    mode: Literal["fin", "reset"] = Field(
        default="fin", description="fin: closed without the last chunk; reset: connection reset"
    )

    def apply(self, playback: Playback, context: FaultContext) -> Playback:
        playback = plain(playback)
        offset = view(playback, context).offset_after(self.after, keep_terminator=True)
        chunks, delays = cut(playback.chunks, read_delays(playback), offset)
        if self.mode == "reset":
            error_type, message = "ReadError", RESET
        else:
            length = playback.header("content-length")
            error_type = "RemoteProtocolError"
            if length is not None and length.strip().isdigit():
                message = _INCOMPLETE_LENGTH.format(offset, length.strip())
            else:
                message = _INCOMPLETE_CHUNKED
        failed = replace(
            playback, ending=Ending.ERROR, error_type=error_type, error_message=message, stall_ms=None
        )
        return finish(failed, chunks, delays, keep_length=True)


class ErrorEvent(StreamFault):
    """
    The provider's own in-stream error after ``after`` events, on the HTTP 200 stream.

    The first ``after`` events arrive as recorded, then one error event in the provider's shape
    (``profile.error_event``: ``data: {"error": ...}`` for OpenAI, ``event: error`` for Anthropic,
    an ``{"error": ...}`` line for Ollama, an ``exception`` frame for Bedrock, whose type
    ``exception`` may name: ``modelStreamErrorException``), then the stream ends cleanly: the
    terminator and the events after the error are gone. A count past the last event puts the
    error where the terminator was. A non-streamed response keeps its status but its body becomes
    the provider's error JSON for ``kind`` (``profile.error``).
    """

    name = "error_event"
    summary = "the provider's in-stream error event after N events, then the stream ends"
    example = "error_event:after=2,kind=overloaded"

    after: int | None = Field(default=None, ge=0, le=MAX_COUNT, description=_AFTER)
    message: str | None = Field(
        default=None, max_length=MAX_TEXT_CHARS, description="error message; default: the profile's"
    )
    kind: str = Field(
        max_length=MAX_TEXT_CHARS,
        default="server_error",
        description="error kind: overloaded, rate_limit, server_error...",
    )
    exception: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[A-Za-z][A-Za-z0-9]*$",
        description="eventstream only: the exception frame's type (modelStreamErrorException...)",
    )

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in ERROR_KINDS:
            raise ValueError(f"unknown kind {value!r}; known kinds: {', '.join(ERROR_KINDS)}")
        return value

    def apply(self, playback: Playback, context: FaultContext) -> Playback:
        playback = plain(playback)
        stream = view(playback, context)
        profile = context.profile
        if not stream.streamed:
            body = profile.error(self.kind, message=self.message).body
            return finish(_clean_end(playback), [body], [0.0])
        offset = stream.offset_after(self.after, keep_terminator=False)
        chunks, delays = cut(playback.chunks, read_delays(playback), offset)
        chunks.append(self._event(stream.framing, context))
        delays.append(0.0)
        return finish(_clean_end(playback), chunks, delays)

    def _event(self, framing: Framing, context: FaultContext) -> bytes:
        if self.exception is None:
            return context.profile.error_event(message=self.message, kind=self.kind)
        if framing is not Framing.EVENTSTREAM:
            raise ConfigError(
                f"llmcassette: fault `{self.spec()}` names an eventstream exception type, but the "
                f"response of {context.request.method} {context.request.url} is a {framing.value} "
                "stream, which has no exception frames; limit the fault to Bedrock with "
                "`provider=bedrock`, or leave `exception` out."
            )
        return exception_frame(self.exception, self.message, kind=self.kind)
