"""
Stream faults on provider-shaped streams written here: the exact bytes, chunks and ending each
fault produces, and what a decoder fed chunk by chunk (as a client reads) then sees.

The streams follow each provider's wire format (the design reference, part 2): OpenAI chat
chunks ending in ``data: [DONE]``, Anthropic named events with a ping and ``message_stop``,
Gemini SSE with CRLF line ends and no terminator, Ollama NDJSON ending in a ``"done": true``
line, OpenRouter keep-alive comments, the Responses API's named events (under the generic
profile), and a non-streamed JSON body. Their recorded chunk boundaries fall in awkward places
(inside events, inside ``data:``, between CR and LF), so the tests see whether faults keep them.
The profiles used with them are written here too; the real profiles are covered by the
invariants at the end, on streams built from their own framing.
"""

from __future__ import annotations

import base64
import codecs
import gzip
import json
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import httpx
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from hypothesis import given, settings, strategies as st

import llmcassette
from llmcassette import ConfigError
from llmcassette._clock import VirtualClock
from llmcassette._exchange import Ending, Playback, RequestInfo, replace_span
from llmcassette._framing import Framing, split_events
from llmcassette._streams import ReplayStream
from llmcassette.faults import (
    BadCrc,
    Disconnect,
    EmptyStream,
    ErrorEvent,
    FaultContext,
    MalformedChunk,
    Rechunk,
    Slow,
    Stall,
    StreamFault,
    Truncate,
    fault_types,
    parse_fault,
    stream,
)
from llmcassette.faults.stream_bytes import adversarial_cuts
from llmcassette.faults.stream_wire import cut, regroup, splice, split_at
from llmcassette.providers import Profile, detect_profile
from llmcassette.providers.bedrock import encode_frame, exception_frame
from tests.corpus import CORPUS, MISSING_REASON, corpus_files, corpus_path, header
from tests.faults import ALL_PROFILES, make_context

# -- profiles written for these tests ---------------------------------------------------------------


class OpenAIWire(Profile):
    name = "test-openai"
    terminator = b"data: [DONE]\n\n"

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        error = {"message": message or "The server had an error.", "type": kind, "param": None, "code": None}
        return b"data: " + json.dumps({"error": error}).encode() + b"\n\n"


class AnthropicWire(Profile):
    # No `terminator`: `message_stop` must be recognised by its name.
    name = "test-anthropic"

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        error = {"type": "error", "error": {"type": f"{kind}_error", "message": message or "Overloaded"}}
        return b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n"

    def empty_stream(self) -> bytes:
        return (
            b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_0","content":[]}}\n\n'
            b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"}}\n\n'
            b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
        )


class GeminiWire(Profile):
    name = "test-gemini"

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        error = {"code": 503, "message": message or "The model is overloaded.", "status": "UNAVAILABLE"}
        return b"data: " + json.dumps({"error": error}).encode() + b"\r\n\r\n"


class OllamaWire(Profile):
    name = "test-ollama"
    framing = Framing.NDJSON
    stream_content_type = "application/x-ndjson"

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        return (
            json.dumps({"error": message or "an error was encountered while running the model"}).encode()
            + b"\n"
        )

    def empty_stream(self) -> bytes:
        return b'{"model":"llama3.2","message":{"role":"assistant","content":""},"done":true}\n'


OPENAI, ANTHROPIC, GEMINI, OLLAMA = OpenAIWire(), AnthropicWire(), GeminiWire(), OllamaWire()
GENERIC = next(profile for profile in ALL_PROFILES if profile.name == "generic")

# -- the hand-made recordings ----------------------------------------------------------------------

EVENT, END, GAP = "event", "end", "gap"  # a content event, a terminator event, a block with no data


@dataclass(frozen=True)
class Case:
    id: str
    profile: Profile
    #: (kind, bytes) of every block of the body, in order.
    blocks: tuple[tuple[str, bytes], ...]
    #: Recorded chunk boundaries, as (block index, offset in the block).
    cuts: tuple[tuple[int, int], ...] = ()
    content_type: str | None = "text/event-stream"
    url: str = "https://api.example.com/v1/chat/completions"
    streaming: bool = True
    extra_headers: tuple[tuple[str, str], ...] = ()

    @property
    def body(self) -> bytes:
        return b"".join(block for _, block in self.blocks)

    @property
    def streamed(self) -> bool:
        return self.streaming

    @property
    def kind(self) -> str:
        """How a client reads the body: ``sse``, ``ndjson`` or ``json``."""
        if not self.streaming:
            return "json"
        return "ndjson" if self.profile.framing is Framing.NDJSON else "sse"

    def offset(self, index: int, within: int = 0) -> int:
        return sum(len(block) for _, block in self.blocks[:index]) + within

    @property
    def bounds(self) -> list[int]:
        return sorted({self.offset(i, o) for i, o in self.cuts} - {0, len(self.body)})

    @property
    def chunks(self) -> tuple[bytes, ...]:
        edges = [0, *self.bounds, len(self.body)]
        return tuple(self.body[a:b] for a, b in zip(edges, edges[1:], strict=False))

    @property
    def playback(self) -> Playback:
        headers = [("x-request-id", "req_1"), *self.extra_headers]
        if self.content_type is not None:
            headers.insert(0, ("content-type", self.content_type))
        return Playback(status=200, headers=tuple(headers), chunks=self.chunks)

    def context(self, *, call: int = 1, read_timeout_s: float | None = None) -> FaultContext:
        return make_context(
            self.profile, url=self.url, call=call, streaming=self.streaming, read_timeout_s=read_timeout_s
        )

    @property
    def payload_blocks(self) -> list[int]:
        return [i for i, (kind, _) in enumerate(self.blocks) if kind != GAP]

    @property
    def content(self) -> int:
        return sum(1 for kind, _ in self.blocks if kind == EVENT)

    def through(self, count: int) -> int:
        """Where the ``count``-th payload event ends (past the last: the end of the body)."""
        payloads = self.payload_blocks
        if count == 0:
            return 0
        if count >= len(payloads):
            return len(self.body)
        return self.offset(payloads[count - 1] + 1)


def _sse(data: Any, event: str | None = None, end: bytes = b"\n") -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {event}".encode() + end if event else b""
    return head + b"data: " + text.encode() + end + end


def _chat(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice]}


OPENAI_CASE = Case(
    "openai",
    OPENAI,
    (
        (EVENT, _sse(_chat({"role": "assistant", "content": ""}))),
        (EVENT, _sse(_chat({"content": "Café ☕"}))),
        (EVENT, _sse(_chat({"content": " naïve 😀"}))),
        (EVENT, _sse(_chat({}, "stop"))),
        (EVENT, _sse({"id": "chatcmpl-1", "choices": [], "usage": {"total_tokens": 9}})),
        (END, b"data: [DONE]\n\n"),
    ),
    cuts=((0, 40), (1, 0), (2, 3), (3, 0), (5, 0)),
)


def _anthropic(kind: str, **fields: Any) -> bytes:
    return _sse({"type": kind, **fields}, event=kind)


ANTHROPIC_CASE = Case(
    "anthropic",
    ANTHROPIC,
    (
        (
            EVENT,
            _anthropic("message_start", message={"id": "msg_1", "content": [], "usage": {"input_tokens": 7}}),
        ),
        (EVENT, _anthropic("content_block_start", index=0, content_block={"type": "text", "text": ""})),
        (EVENT, b'event: ping\ndata: {"type": "ping"}\n\n'),
        (EVENT, _anthropic("content_block_delta", index=0, delta={"type": "text_delta", "text": "Grüße 👋"})),
        (EVENT, _anthropic("content_block_stop", index=0)),
        (EVENT, _anthropic("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 4})),
        (END, _anthropic("message_stop")),
    ),
    cuts=((1, 0), (2, 0), (3, 17), (4, 0), (5, 0), (6, 0)),
    url="https://api.anthropic.com/v1/messages",
)


def _gemini(text: str, finish: str | None = None) -> bytes:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return _sse({"candidates": [candidate], "usageMetadata": {"totalTokenCount": 5}}, end=b"\r\n")


GEMINI_BLOCKS = ((EVENT, _gemini("日本語の")), (EVENT, _gemini("テキスト\n")), (EVENT, _gemini("。", "STOP")))
GEMINI_CASE = Case(
    "gemini-crlf",
    GEMINI,
    GEMINI_BLOCKS,
    # Recorded cuts between CR and LF, and between the two CRLFs that end an event.
    cuts=((0, len(GEMINI_BLOCKS[0][1]) - 3), (1, len(GEMINI_BLOCKS[1][1]) - 2), (2, 0)),
    url="https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
)


def _ollama(content: str, done: bool = False) -> bytes:
    line: dict[str, Any] = {
        "model": "llama3.2",
        "message": {"role": "assistant", "content": content},
        "done": done,
    }
    if done:
        line.update(done_reason="stop", eval_count=3)
    return json.dumps(line, ensure_ascii=False).encode() + b"\n"


OLLAMA_CASE = Case(
    "ollama",
    OLLAMA,
    (
        (EVENT, _ollama("Hallo")),
        (EVENT, _ollama(" Wélt")),
        (EVENT, _ollama("!")),
        (END, _ollama("", done=True)),
    ),
    cuts=((1, 10), (2, 0), (3, 0)),
    content_type="application/x-ndjson",
    url="http://localhost:11434/api/chat",
)

KEEPALIVE = b": OPENROUTER PROCESSING\n\n"
OPENROUTER_CASE = Case(
    "openrouter-comments",
    OPENAI,
    (
        (GAP, KEEPALIVE),
        (GAP, KEEPALIVE),
        (EVENT, _sse(_chat({"role": "assistant", "content": "Hi"}))),
        (GAP, KEEPALIVE),
        (EVENT, _sse(_chat({"content": " there"}))),
        (EVENT, _sse(_chat({}, "stop"))),
        (END, b"data: [DONE]\n\n"),
    ),
    cuts=tuple((i, 0) for i in range(1, 7)),
    url="https://openrouter.ai/api/v1/chat/completions",
)


def _responses(kind: str, **fields: Any) -> bytes:
    return _sse({"type": kind, **fields}, event=kind)


RESPONSES_CASE = Case(
    "responses-generic",
    GENERIC,
    (
        (EVENT, _responses("response.created", sequence_number=0)),
        (EVENT, _responses("response.output_text.delta", delta="Bon", sequence_number=1)),
        (EVENT, _responses("response.output_text.delta", delta="jour", sequence_number=2)),
        (END, _responses("response.completed", response={"status": "completed"}, sequence_number=3)),
    ),
    cuts=((1, 25), (3, 0)),
    url="https://llm.internal.example/v1/responses",
)

JSON_BODY = (
    b'{"id":"chatcmpl-9","object":"chat.completion","choices":[{"index":0,"message":'
    b'{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}]}'
)
JSON_CASE = Case(
    "json",
    OPENAI,
    ((EVENT, JSON_BODY),),
    cuts=((0, 64),),
    content_type="application/json",
    streaming=False,
    extra_headers=(("content-length", str(len(JSON_BODY))),),
)

STREAM_CASES = [OPENAI_CASE, ANTHROPIC_CASE, GEMINI_CASE, OLLAMA_CASE, OPENROUTER_CASE, RESPONSES_CASE]
CASES = [*STREAM_CASES, JSON_CASE]


def cases(selection: Sequence[Case]) -> Any:
    return pytest.mark.parametrize("case", selection, ids=[case.id for case in selection])


# -- a client's view: replay through the engine's stream, decode chunk by chunk -------------------------


@dataclass(frozen=True)
class Message:
    event: str | None
    data: str


class SSEDecoder:
    """An SSE decoder as the WHATWG spec describes it, fed one chunk at a time."""

    def __init__(self) -> None:
        self.utf8 = codecs.getincrementaldecoder("utf-8")()  # strict: a mangled character fails
        self.text = ""
        self.started = False
        self.event: str | None = None
        self.data: list[str] = []
        self.messages: list[Message] = []

    def feed(self, chunk: bytes, *, final: bool = False) -> None:
        self.text += self.utf8.decode(chunk, final)
        if not self.started and self.text:
            self.started = True
            self.text = self.text.removeprefix("\ufeff")
        while True:
            ends = [i for i in (self.text.find("\r"), self.text.find("\n")) if i >= 0]
            if not ends:
                break
            end = min(ends)
            if self.text[end] == "\r" and end + 1 == len(self.text) and not final:
                break  # the LF of a CRLF may be in the next chunk
            width = 2 if self.text.startswith("\r\n", end) else 1
            line, self.text = self.text[:end], self.text[end + width :]
            self.line(line)

    def line(self, line: str) -> None:
        if not line:
            if self.data:
                self.messages.append(Message(self.event, "\n".join(self.data)))
            self.event, self.data = None, []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                self.event = value
            elif name == "data":
                self.data.append(value)


class LineDecoder:
    """An NDJSON reader as ollama-python's (``iter_lines``), fed one chunk at a time."""

    def __init__(self) -> None:
        self.buffer = b""
        self.messages: list[Message] = []

    def feed(self, chunk: bytes, *, final: bool = False) -> None:
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        if final:
            lines.append(self.buffer)
        self.messages += [Message(None, line.decode().rstrip("\r")) for line in lines if line.strip()]


def decode(chunks: Sequence[bytes], case: Case | str) -> list[Message]:
    """The messages a client reading these chunks gets, for a case or a kind (sse, ndjson, json)."""
    kind = case if isinstance(case, str) else case.kind
    if kind == "json":
        return [Message(None, b"".join(chunks).decode())] if any(chunks) else []
    decoder: SSEDecoder | LineDecoder = LineDecoder() if kind == "ndjson" else SSEDecoder()
    for chunk in chunks:
        decoder.feed(chunk)
    decoder.feed(b"", final=True)
    return decoder.messages


@dataclass(frozen=True)
class Played:
    chunks: list[bytes]
    error: str | None
    elapsed_s: float


def play(playback: Playback, *, read_timeout_s: float | None = None) -> Played:
    """What a client reading the playback gets, through the engine's replay stream and a virtual clock."""

    def error(is_async: bool) -> Exception:
        assert playback.error_type is not None
        return getattr(httpx, playback.error_type)(playback.error_message)  # type: ignore[no-any-return]

    def timeout_error(message: str, is_async: bool) -> Exception:
        return httpx.ReadTimeout(message)

    stall = None
    if playback.ending is Ending.STALL:
        stall = math.inf if playback.stall_ms is None else playback.stall_ms
    replay = ReplayStream(
        playback.chunks,
        error=error if playback.ending is Ending.ERROR else None,
        delays_ms=playback.delays_ms,
        end_stall_ms=stall,
        read_timeout_s=read_timeout_s,
        timeout_error=timeout_error,
    )
    received: list[bytes] = []
    failure = None
    with VirtualClock() as clock:
        try:
            received.extend(replay)
        except httpx.TransportError as exc:
            failure = type(exc).__name__
    return Played(received, failure, clock.elapsed_s)


def messages(case: Case) -> list[Message]:
    return decode([case.body], case)


def boundaries(chunks: Sequence[bytes]) -> list[int]:
    """Offsets where one chunk ends and the next begins."""
    edges = []
    position = 0
    for chunk in chunks[:-1]:
        position += len(chunk)
        edges.append(position)
    return edges


def check_shape(result: Playback) -> None:
    """What every playback a fault returns must hold."""
    assert all(result.chunks), "no empty chunks"
    assert result.delays_ms is None or len(result.delays_ms) == len(result.chunks)
    length = result.header("content-length")
    if length is not None and result.ending is not Ending.ERROR:
        assert int(length) == len(result.body)


def apply(fault: StreamFault, case: Case, playback: Playback | None = None, **context: Any) -> Playback:
    result = fault.apply(case.playback if playback is None else playback, case.context(**context))
    check_shape(result)
    return result


def default_count(case: Case) -> int:
    return (case.content + 1) // 2


def utf8_middle(data: bytes) -> int:
    position = len(data) // 2
    while data[position] & 0xC0 == 0x80:
        position -= 1
    return position


# -- the hand-made recordings decode as their providers' clients would -------------------------------


@cases(CASES)
def test_the_recordings_decode_to_their_events(case: Case) -> None:
    assert len(messages(case)) == len(case.payload_blocks)
    assert decode(case.chunks, case) == messages(case)
    assert len(case.chunks) == len(case.bounds) + 1


# -- empty_stream ----------------------------------------------------------------------------------


@cases(STREAM_CASES)
def test_empty_stream_is_the_providers_empty_stream(case: Case) -> None:
    result = apply(EmptyStream(), case, replace(case.playback, ending=Ending.ERROR, error_type="ReadError"))
    expected = case.profile.empty_stream()
    assert result.body == expected
    framing = Framing.NDJSON if case.kind == "ndjson" else Framing.SSE
    assert list(result.chunks) == [event for event in split_events(expected, framing) if event]
    assert result.status == 200
    assert result.headers == case.playback.headers
    assert (result.ending, result.error_type, result.delays_ms) == (Ending.COMPLETE, None, None)
    assert decode(result.chunks, case) == decode([expected], case)


def test_empty_stream_on_a_json_body_is_an_empty_200() -> None:
    result = apply(EmptyStream(), JSON_CASE, replace(JSON_CASE.playback, status=500))
    assert (result.status, result.chunks) == (200, ())
    assert result.header("content-length") == "0"
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.body)


def test_empty_stream_for_a_streamed_request_answered_in_json_says_it_is_a_stream() -> None:
    case = replace(JSON_CASE, profile=OLLAMA, streaming=True)
    result = apply(EmptyStream(), case)
    assert result.body == OLLAMA.empty_stream()
    assert result.header("content-type") == "application/x-ndjson"


def test_empty_stream_keeps_the_head_delay() -> None:
    result = apply(EmptyStream(), OPENAI_CASE, replace(OPENAI_CASE.playback, head_delay_ms=120.0))
    assert result.head_delay_ms == 120.0


# -- truncate --------------------------------------------------------------------------------------

AFTERS = [0, 1, 2, 3, 5, 6, 99, None]


@cases(STREAM_CASES)
@pytest.mark.parametrize("after", AFTERS)
def test_truncate_keeps_exactly_the_first_events(case: Case, after: int | None) -> None:
    recorded = replace(case.playback, ending=Ending.ERROR, error_type="ReadError", error_message="reset")
    result = apply(Truncate(after=after), case, recorded)
    kept = min(default_count(case) if after is None else after, case.content)
    offset = case.through(kept)  # past the last event of a stream without terminator: all of it
    assert result.body == case.body[:offset]
    assert boundaries(result.chunks) == [b for b in case.bounds if b < offset]
    assert (result.ending, result.error_type, result.error_message) == (Ending.COMPLETE, None, "")
    played = play(result)
    assert played.error is None
    assert decode(played.chunks, case) == messages(case)[:kept]


@cases([OPENAI_CASE, ANTHROPIC_CASE, OLLAMA_CASE, RESPONSES_CASE])
def test_truncate_past_the_end_removes_only_the_terminator(case: Case) -> None:
    result = apply(Truncate(after=1000), case)
    assert result.body == case.body[: case.through(case.content)]
    assert len(decode(result.chunks, case)) == len(messages(case)) - 1
    assert case.blocks[-1][1] not in result.body


def test_truncate_without_a_terminator_past_the_end_changes_nothing() -> None:
    result = apply(Truncate(after=50), GEMINI_CASE)
    assert result.chunks == GEMINI_CASE.playback.chunks


def test_truncate_does_not_count_keepalive_comments() -> None:
    result = apply(Truncate(after=1), OPENROUTER_CASE)
    assert result.body == KEEPALIVE * 2 + OPENROUTER_CASE.blocks[2][1]


@pytest.mark.parametrize(
    ("after", "size"), [(None, utf8_middle(JSON_BODY)), (1, utf8_middle(JSON_BODY)), (0, 0)]
)
def test_truncate_cuts_a_json_body_in_half(after: int | None, size: int) -> None:
    result = apply(Truncate(after=after), JSON_CASE)
    assert result.body == JSON_BODY[:size]
    assert result.header("content-length") == str(size)
    if size:
        with pytest.raises(json.JSONDecodeError):
            json.loads(result.body)


def test_truncate_keeps_the_delays_of_the_chunks_it_keeps() -> None:
    delays = tuple(float(i * 10) for i in range(len(OPENAI_CASE.chunks)))
    result = apply(Truncate(after=2), OPENAI_CASE, replace(OPENAI_CASE.playback, delays_ms=delays))
    assert result.delays_ms == delays[: len(result.chunks)]


# -- disconnect ------------------------------------------------------------------------------------


@cases(STREAM_CASES)
@pytest.mark.parametrize("after", AFTERS)
@pytest.mark.parametrize(("mode", "error_type"), [("fin", "RemoteProtocolError"), ("reset", "ReadError")])
def test_disconnect_drops_the_connection_after_the_events(
    case: Case, after: int | None, mode: str, error_type: str
) -> None:
    result = apply(Disconnect(after=after, mode=mode), case)  # type: ignore[arg-type]
    delivered = min(default_count(case) if after is None else after, len(case.payload_blocks))
    offset = case.through(delivered)
    assert result.body == case.body[:offset]
    assert boundaries(result.chunks) == [b for b in case.bounds if b < offset]
    assert (result.ending, result.error_type) == (Ending.ERROR, error_type)
    played = play(result)
    assert played.error == error_type
    assert decode(played.chunks, case) == messages(case)[:delivered]


def test_disconnect_says_what_httpx_says() -> None:
    fin = apply(Disconnect(after=1), OPENAI_CASE)
    assert fin.error_message == (
        "peer closed connection without sending complete message body (incomplete chunked read)"
    )
    reset = apply(Disconnect(after=1, mode="reset"), OPENAI_CASE)
    assert reset.error_message == "[Errno 104] Connection reset by peer"


@pytest.mark.parametrize(
    ("after", "size"), [(None, utf8_middle(JSON_BODY)), (0, 0), (3, utf8_middle(JSON_BODY))]
)
def test_disconnect_on_a_json_body_keeps_its_announced_length(after: int | None, size: int) -> None:
    result = apply(Disconnect(after=after), JSON_CASE)
    assert result.body == JSON_BODY[:size]
    assert result.header("content-length") == str(len(JSON_BODY))
    assert result.error_type == "RemoteProtocolError"
    assert result.error_message == (
        "peer closed connection without sending complete message body "
        f"(received {size} bytes, expected {len(JSON_BODY)})"
    )


# -- error_event -----------------------------------------------------------------------------------


@cases(STREAM_CASES)
@pytest.mark.parametrize("after", AFTERS)
def test_error_event_follows_the_events_and_ends_the_stream(case: Case, after: int | None) -> None:
    fault = ErrorEvent(after=after, message="Overloaded", kind="overloaded")
    result = apply(fault, case, replace(case.playback, ending=Ending.STALL))
    kept = min(default_count(case) if after is None else after, case.content)
    error = case.profile.error_event(message="Overloaded", kind="overloaded")
    prefix = case.body[: case.through(kept)]
    assert result.body == prefix + error
    assert result.chunks[-1] == error
    assert boundaries(result.chunks) == [
        *(b for b in case.bounds if b < len(prefix)),
        *([len(prefix)] * bool(prefix)),
    ]
    assert (result.status, result.ending) == (200, Ending.COMPLETE)
    played = play(result)
    assert played.error is None
    assert decode(played.chunks, case) == messages(case)[:kept] + decode([error], case)


def test_error_event_is_in_the_providers_shape() -> None:
    result = apply(ErrorEvent(after=2, kind="overloaded"), ANTHROPIC_CASE)
    last = decode(result.chunks, ANTHROPIC_CASE)[-1]
    assert last.event == "error"
    assert json.loads(last.data)["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_error_event_default_message_is_the_profiles() -> None:
    result = apply(ErrorEvent(after=1), OPENAI_CASE)
    assert result.chunks[-1] == OPENAI.error_event()


def test_error_event_on_a_json_body_is_the_providers_error_body() -> None:
    result = apply(ErrorEvent(kind="rate_limit", message="slow down"), JSON_CASE)
    assert result.status == 200
    assert result.body == OPENAI.error(kind="rate_limit", message="slow down").body
    assert result.header("content-length") == str(len(result.body))


def test_error_event_rejects_an_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="parameter `kind`"):
        parse_fault("error_event:kind=meltdown")


# -- malformed_chunk -------------------------------------------------------------------------------


def data_span(case: Case, block: int) -> tuple[int, int]:
    """The JSON text of a block: after `data: ` up to its line end (SSE), or the line (NDJSON)."""
    raw = case.blocks[block][1]
    if case.kind != "sse":
        return case.offset(block), case.offset(block) + len(raw.rstrip(b"\r\n"))
    start = raw.index(b"data: ") + 6
    end = min(i for i in (raw.find(b"\r", start), raw.find(b"\n", start)) if i >= 0)
    return case.offset(block, start), case.offset(block, end)


@cases(CASES)
@pytest.mark.parametrize("event", [1, 2, 3, 5, 6, 40, None])
def test_malformed_chunk_breaks_exactly_that_events_json(case: Case, event: int | None) -> None:
    result = apply(MalformedChunk(event=event), case)
    target = min(max(1, default_count(case)) if event is None else event, case.content)
    start, end = data_span(case, case.payload_blocks[target - 1])
    text = case.body[start:end]
    new = text[: utf8_middle(text)]
    assert result.body == case.body[:start] + new + case.body[end:]
    assert result.chunks == tuple(replace_span(case.chunks, start, end, new))
    got, want = decode(play(result).chunks, case), messages(case)
    assert len(got) == len(want)
    for position, (seen, original) in enumerate(zip(got, want, strict=True)):
        if position == target - 1:
            assert seen.event == original.event
            with pytest.raises(json.JSONDecodeError):
                json.loads(seen.data)
        else:
            assert seen == original


def test_malformed_chunk_never_leaves_valid_json() -> None:
    case = replace(OLLAMA_CASE, blocks=((EVENT, b"1234\n"), (EVENT, b'"ab"\n'), (GAP, b"  \n")), cuts=())
    first = apply(MalformedChunk(event=1), case)
    assert first.body.startswith(b"12}\n")
    second = apply(MalformedChunk(event=2), case)
    assert second.body.startswith(b'1234\n"a\n')


def test_malformed_chunk_keeps_the_delays() -> None:
    delays = tuple(float(i) for i in range(len(OPENAI_CASE.chunks)))
    result = apply(MalformedChunk(event=1), OPENAI_CASE, replace(OPENAI_CASE.playback, delays_ms=delays))
    assert result.delays_ms == delays


def test_malformed_chunk_on_a_stream_without_events_changes_nothing() -> None:
    playback = replace(OPENAI_CASE.playback, chunks=(KEEPALIVE,))
    assert MalformedChunk().apply(playback, OPENAI_CASE.context()) == playback


# -- rechunk ---------------------------------------------------------------------------------------

RECHUNKS = [
    Rechunk(),
    Rechunk(size=3),
    Rechunk(size=7),
    Rechunk(mode="random", seed=7),
    Rechunk(mode="random", seed=3, min_size=2, max_size=5),
    Rechunk(mode="event"),
    Rechunk(mode="adversarial"),
]


@cases(CASES)
@pytest.mark.parametrize("fault", RECHUNKS, ids=[fault.spec() for fault in RECHUNKS])
def test_rechunk_moves_only_the_boundaries(case: Case, fault: Rechunk) -> None:
    recorded = replace(case.playback, ending=Ending.ERROR, error_type="ReadError", head_delay_ms=5.0)
    result = apply(fault, case, recorded)
    assert result.body == case.body
    assert replace(result, chunks=recorded.chunks) == recorded
    played = play(result)
    assert played.error == "ReadError"
    assert decode(played.chunks, case) == messages(case)


@cases(CASES)
@pytest.mark.parametrize("size", [1, 2, 5, 1000])
def test_rechunk_fixed_sends_chunks_of_that_size(case: Case, size: int) -> None:
    result = apply(Rechunk(size=size), case)
    body = case.body
    assert list(result.chunks) == [body[i : i + size] for i in range(0, len(body), size)]


@cases(CASES)
def test_rechunk_by_event_sends_one_chunk_per_event(case: Case) -> None:
    result = apply(Rechunk(mode="event"), case)
    assert list(result.chunks) == [block for _, block in case.blocks]


def test_rechunk_adversarial_cuts_where_decoders_break() -> None:
    result = apply(Rechunk(mode="adversarial"), GEMINI_CASE)
    body = GEMINI_CASE.body
    edges = set(boundaries(result.chunks))
    position = 0
    for char in body.decode():
        width = len(char.encode())
        assert set(range(position + 1, position + width)) <= edges, char
        position += width
    crlf = [i + 1 for i in range(len(body) - 1) if body[i : i + 2] == b"\r\n"]
    assert crlf and set(crlf) <= edges
    ends = [i + 2 for i in range(len(body) - 3) if body[i : i + 4] == b"\r\n\r\n"]
    assert ends and set(ends) <= edges
    # Nowhere else: every boundary is inside a character or between two line breaks.
    for edge in edges:
        assert body[edge] & 0xC0 == 0x80 or (body[edge - 1] in b"\r\n" and body[edge] in b"\r\n")


def test_rechunk_adversarial_splits_between_the_newlines_of_an_event_end() -> None:
    # OpenRouter's stream is ASCII with LF line ends: the only cuts are inside the event ends.
    result = apply(Rechunk(mode="adversarial"), OPENROUTER_CASE)
    case = OPENROUTER_CASE
    assert boundaries(result.chunks) == [case.offset(i + 1) - 1 for i in range(len(case.blocks))]
    assert result.chunks[-1] == b"\n"


def test_rechunk_random_is_deterministic_per_seed_and_call() -> None:
    fault = Rechunk(mode="random", seed=11)
    first = apply(fault, OPENAI_CASE)
    assert apply(fault, OPENAI_CASE).chunks == first.chunks
    assert apply(Rechunk(mode="random", seed=12), OPENAI_CASE).chunks != first.chunks
    assert apply(fault, OPENAI_CASE, call=2).chunks != first.chunks
    assert all(1 <= len(chunk) <= 16 for chunk in first.chunks)


def test_rechunk_moves_each_delay_to_the_chunk_holding_its_first_byte() -> None:
    playback = Playback(200, (), (b"abc", b"defg", b"hi"), delays_ms=(0.0, 40.0, 7.0))
    result = Rechunk(size=2).apply(playback, make_context())
    assert result.chunks == (b"ab", b"cd", b"ef", b"gh", b"i")
    assert result.delays_ms == (0.0, 40.0, 0.0, 7.0, 0.0)


def test_rechunk_keeps_the_length_header() -> None:
    result = apply(Rechunk(), JSON_CASE)
    assert result.header("content-length") == str(len(JSON_BODY))


def test_rechunk_of_an_empty_body_is_empty() -> None:
    playback = Playback(200, (("content-type", "text/event-stream"),), ())
    for fault in RECHUNKS:
        assert fault.apply(playback, make_context(streaming=True)) == playback


@settings(max_examples=200)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=40), max_size=8),
    seed=st.integers(-(2**31), 2**31),
    call=st.integers(1, 50),
    low=st.integers(1, 6),
    spread=st.integers(0, 10),
)
def test_rechunk_random_preserves_bytes_within_bounds(
    chunks: list[bytes], seed: int, call: int, low: int, spread: int
) -> None:
    playback = Playback(200, (("content-type", "application/octet-stream"),), tuple(chunks))
    fault = Rechunk(mode="random", seed=seed, min_size=low, max_size=low + spread)
    result = fault.apply(playback, make_context(call=call))
    assert result.body == playback.body
    assert all(low <= len(chunk) <= low + spread for chunk in result.chunks[:-1])
    assert all(1 <= len(chunk) <= low + spread for chunk in result.chunks)
    assert fault.apply(playback, make_context(call=call)) == result


@given(chunks=st.lists(st.binary(min_size=1, max_size=40), max_size=8), size=st.integers(1, 50))
def test_rechunk_fixed_preserves_bytes_and_sizes(chunks: list[bytes], size: int) -> None:
    playback = Playback(200, (), tuple(chunks))
    result = Rechunk(size=size).apply(playback, make_context())
    assert result.body == playback.body
    assert all(len(chunk) == size for chunk in result.chunks[:-1])
    assert all(0 < len(chunk) <= size for chunk in result.chunks)


_TEXT = st.lists(st.sampled_from(["a", "é", "€", "😀", "\r", "\n", "\r\n", " ", ":", "{"]), max_size=40).map(
    "".join
)


@settings(max_examples=300)
@given(text=_TEXT, seed=st.integers(0, 10))
def test_rechunk_adversarial_splits_every_character_and_line_break(text: str, seed: int) -> None:
    body = text.encode()
    chunks = tuple(body[i : i + 1 + seed] for i in range(0, len(body), 1 + seed))
    result = Rechunk(mode="adversarial").apply(Playback(200, (), chunks), make_context())
    assert result.body == body
    edges = set(boundaries(result.chunks))
    position = 0
    for char in text:
        width = len(char.encode())
        assert set(range(position + 1, position + width)) <= edges
        position += width
    for index in range(1, len(body)):
        if body[index - 1] in b"\r\n" and body[index] in b"\r\n":
            assert index in edges
    assert edges == set(adversarial_cuts(body))


@settings(max_examples=150)
@given(
    texts=st.lists(st.text(max_size=12), min_size=1, max_size=5),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    mode=st.sampled_from(["fixed", "random", "adversarial", "event"]),
    seed=st.integers(0, 99),
)
def test_rechunk_never_changes_the_decoded_events(
    texts: list[str], newline: str, mode: str, seed: int
) -> None:
    body = b"".join(
        f"data: {json.dumps({'text': text}, ensure_ascii=False)}{newline}{newline}".encode() for text in texts
    )
    case = replace(OPENAI_CASE, blocks=((EVENT, body),), cuts=())
    result = apply(Rechunk(mode=mode, seed=seed, max_size=4), case)  # type: ignore[arg-type]
    assert [json.loads(m.data)["text"] for m in decode(result.chunks, case)] == texts


# -- stall -----------------------------------------------------------------------------------------


@cases(STREAM_CASES)
@pytest.mark.parametrize("after", [0, 1, 2, 4, None])
def test_stall_goes_silent_after_the_events(case: Case, after: int | None) -> None:
    result = apply(Stall(after=after, seconds=30), case)
    delivered = default_count(case) if after is None else after
    offset = case.through(delivered)
    assert result.body == case.body
    if offset == len(case.body):
        assert (result.ending, result.stall_ms, result.chunks) == (Ending.STALL, 30_000, case.chunks)
        return
    assert result.ending is Ending.COMPLETE
    edges = boundaries(result.chunks)
    assert edges == sorted({*case.bounds, offset} - {0})
    assert result.delays_ms is not None
    index = len([edge for edge in edges if edge <= offset])
    assert [i for i, delay in enumerate(result.delays_ms) if delay] == [index]
    assert result.delays_ms[index] == 30_000
    # A read timeout shorter than the silence ends the stream there, after the events before it.
    cut_short = play(result, read_timeout_s=10)
    assert (cut_short.error, cut_short.elapsed_s) == ("ReadTimeout", 10)
    assert decode(cut_short.chunks, case) == messages(case)[:delivered]
    # A patient client gets everything, 30 s late.
    patient = play(result, read_timeout_s=60)
    assert (patient.error, patient.elapsed_s) == (None, 30)
    assert decode(patient.chunks, case) == messages(case)


def test_stall_for_ever_is_an_infinite_delay() -> None:
    result = apply(Stall(after=1), OPENAI_CASE)
    assert result.delays_ms is not None and math.inf in result.delays_ms
    played = play(result, read_timeout_s=2.5)
    assert (played.error, played.elapsed_s) == ("ReadTimeout", 2.5)
    assert decode(played.chunks, OPENAI_CASE) == messages(OPENAI_CASE)[:1]


@cases(STREAM_CASES)
@pytest.mark.parametrize("seconds", [None, 4.0])
def test_stall_past_the_last_event_stalls_at_the_end(case: Case, seconds: float | None) -> None:
    recorded = replace(case.playback, ending=Ending.ERROR, error_type="ReadError")
    result = apply(Stall(after=len(case.payload_blocks), seconds=seconds), case, recorded)
    assert result.chunks == case.playback.chunks
    assert (result.ending, result.error_type, result.delays_ms) == (Ending.STALL, None, None)
    assert result.stall_ms == (None if seconds is None else 4000)
    played = play(result, read_timeout_s=3)
    assert played.error == ("ReadTimeout" if seconds is None or seconds >= 3 else None)
    assert decode(played.chunks, case) == messages(case)


def test_stall_adds_to_an_existing_delay() -> None:
    # The recorded chunks: event 1 in two, event 2 + the start of event 3, the rest of event 3,
    # events 4 and 5 together, [DONE].
    delays = (0.0, 5.0, 7.0, 0.0, 0.0, 0.0)
    playback = replace(OPENAI_CASE.playback, delays_ms=delays)
    after_one = apply(Stall(after=1, seconds=1), OPENAI_CASE, playback)
    assert after_one.chunks == OPENAI_CASE.chunks
    assert after_one.delays_ms == (0.0, 5.0, 1007.0, 0.0, 0.0, 0.0)
    # Event 2 ends inside a chunk: the chunk is cut there and its second part takes the silence.
    after_two = apply(Stall(after=2, seconds=1), OPENAI_CASE, playback)
    assert len(after_two.chunks) == len(OPENAI_CASE.chunks) + 1
    assert after_two.chunks[2] == OPENAI_CASE.blocks[1][1]
    assert after_two.delays_ms == (0.0, 5.0, 7.0, 1000.0, 0.0, 0.0, 0.0)


def test_stall_on_a_json_body_is_halfway() -> None:
    result = apply(Stall(seconds=2), JSON_CASE)
    assert boundaries(result.chunks) == sorted({64, utf8_middle(JSON_BODY)})
    assert result.body == JSON_BODY


# -- slow ------------------------------------------------------------------------------------------


@cases(CASES)
def test_slow_delays_the_head_and_every_later_chunk(case: Case) -> None:
    result = apply(Slow(ttfb_ms=800, gap_ms=25), case, replace(case.playback, head_delay_ms=10))
    assert result.chunks == case.chunks
    assert result.head_delay_ms == 810
    assert result.delays_ms == (None if len(case.chunks) == 1 else (0.0, *[25.0] * (len(case.chunks) - 1)))
    assert play(result).elapsed_s == pytest.approx(0.025 * (len(case.chunks) - 1))


def test_slow_jitter_is_seeded_and_bounded() -> None:
    fault = Slow(gap_ms=10, jitter_ms=5, seed=4)
    first = apply(fault, OPENAI_CASE)
    assert first.delays_ms is not None
    assert first.delays_ms[0] == 0 and all(10 <= d <= 15 for d in first.delays_ms[1:])
    assert apply(fault, OPENAI_CASE).delays_ms == first.delays_ms
    assert apply(fault, OPENAI_CASE, call=2).delays_ms != first.delays_ms


def test_slow_with_no_gap_changes_nothing_but_the_head() -> None:
    result = apply(Slow(ttfb_ms=5), OPENAI_CASE)
    assert result == replace(OPENAI_CASE.playback, head_delay_ms=5)


# -- composition, compression, other framings ----------------------------------------------------------


def test_faults_compose_in_plan_order() -> None:
    playback = OPENAI_CASE.playback
    context = OPENAI_CASE.context()
    for fault in (Rechunk(), Slow(gap_ms=1), Stall(after=2, seconds=3), Disconnect(after=4)):
        playback = fault.apply(playback, context)
        check_shape(playback)
    assert playback.body == OPENAI_CASE.body[: OPENAI_CASE.through(4)]
    assert all(len(chunk) == 1 for chunk in playback.chunks)
    assert playback.delays_ms is not None
    assert sum(playback.delays_ms) == len(playback.chunks) - 1 + 3000
    played = play(playback, read_timeout_s=10)
    assert played.error == "RemoteProtocolError"
    assert decode(played.chunks, OPENAI_CASE) == messages(OPENAI_CASE)[:4]


def test_a_gzip_body_is_decompressed_before_events_are_cut() -> None:
    packed = gzip.compress(OPENAI_CASE.body)
    playback = Playback(
        200,
        (
            ("content-type", "text/event-stream"),
            ("content-encoding", "gzip"),
            ("content-length", str(len(packed))),
        ),
        (packed[:20], packed[20:]),
    )
    result = Truncate(after=2).apply(playback, OPENAI_CASE.context())
    assert result.body == OPENAI_CASE.body[: OPENAI_CASE.through(2)]
    assert result.header("content-encoding") is None
    assert result.header("content-length") == str(len(result.body))
    # Rechunk sends the bytes as they are, compressed.
    assert Rechunk(size=4).apply(playback, OPENAI_CASE.context()).body == packed


def test_without_a_content_type_the_profile_tells_the_framing() -> None:
    case = replace(OLLAMA_CASE, content_type=None, blocks=OLLAMA_CASE.blocks[-1:], cuts=())
    # One NDJSON line cannot be told from a JSON body by its look; the request was streamed.
    result = apply(ErrorEvent(after=0), case)
    assert result.body == OLLAMA.error_event()


GEMINI_ARRAY = b'[{"candidates": [{"index": 0}]}\n,\r\n{"candidates": [{"index": 1}]}\n,\r\n{"done": 2}\n]'


def test_a_json_array_stream_is_cut_between_elements() -> None:
    playback = Playback(200, (("content-type", "application/json"),), (GEMINI_ARRAY,))
    context = make_context(
        GEMINI,
        url="https://generativelanguage.googleapis.com/v1beta/models/m:streamGenerateContent",
        streaming=True,
    )
    truncated = Truncate(after=1).apply(playback, context)
    assert truncated.body == b'[{"candidates": [{"index": 0}]}'
    broken = MalformedChunk(event=2).apply(playback, context)
    element = b'{"candidates": [{"index": 1}]}'
    assert broken.body == GEMINI_ARRAY.replace(element, element[: len(element) // 2])
    # `{"done": 2}` is not a terminator (only `true` is): all three elements are content.
    assert Truncate().apply(playback, context).body == GEMINI_ARRAY[: GEMINI_ARRAY.index(b'\n,\r\n{"done')]


def _frame(payload: bytes) -> bytes:
    headers = b"\x0b:event-type\x07\x00\x05chunk"
    prelude = struct.pack(">II", 16 + len(headers) + len(payload), len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _unframe(frame: bytes) -> bytes:
    total, headers = struct.unpack(">II", frame[:8])
    assert total == len(frame)
    assert struct.unpack(">I", frame[8:12])[0] == zlib.crc32(frame[:8])
    assert struct.unpack(">I", frame[-4:])[0] == zlib.crc32(frame[:-4])
    return frame[12 + headers : -4]


def test_a_malformed_eventstream_frame_keeps_valid_checksums() -> None:
    payloads = [json.dumps({"bytes": f"ZXZlbnQ{i}", "p": "abcdef"}).encode() for i in range(3)]
    frames = [_frame(payload) for payload in payloads]
    playback = Playback(200, (("content-type", "application/vnd.amazon.eventstream"),), tuple(frames))
    result = MalformedChunk(event=2).apply(playback, make_context(streaming=True))
    out = split_events(result.body, Framing.EVENTSTREAM)
    assert [out[0], out[2]] == [frames[0], frames[2]]
    assert _unframe(out[1]) == payloads[1][: len(payloads[1]) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(_unframe(out[1]))


def _converse_playback() -> tuple[Playback, list[bytes]]:
    events = [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "!"}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": "end_turn"}),
        ("metadata", {"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}}),
    ]
    frames = [
        encode_frame({":event-type": kind, ":message-type": "event"}, json.dumps(payload).encode())
        for kind, payload in events
    ]
    headers = (("content-type", "application/vnd.amazon.eventstream"),)
    return Playback(200, headers, tuple(frames)), frames


BEDROCK = detect_profile(
    RequestInfo(method="POST", url="https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse-stream")
)


def test_a_converse_stream_ends_with_messagestop_and_metadata() -> None:
    # The terminator of a ConverseStream: a truncated one never keeps its stop reason or usage.
    playback, frames = _converse_playback()
    context = make_context(BEDROCK, streaming=True)
    assert Truncate().apply(playback, context).chunks == tuple(frames[:2])  # half of the 4 content frames
    assert Truncate(after=9).apply(playback, context).chunks == tuple(frames[:4])
    errored = ErrorEvent(after=9, kind="rate_limit").apply(playback, context)
    assert errored.chunks == (*frames[:4], BEDROCK.error_event(kind="rate_limit"))
    # The connection may drop after the last frame: the terminator is part of what it counts.
    assert Disconnect(after=9).apply(playback, context).chunks == tuple(frames)


def test_an_invoke_stream_ends_with_the_chunk_that_carries_message_stop() -> None:
    events = [{"type": "message_start"}, {"type": "content_block_delta"}, {"type": "message_stop"}]
    frames = [
        encode_frame(
            {":event-type": "chunk"},
            json.dumps({"bytes": base64.b64encode(json.dumps(e).encode()).decode()}).encode(),
        )
        for e in events
    ]
    playback = Playback(200, (("content-type", "application/vnd.amazon.eventstream"),), tuple(frames))
    assert Truncate(after=9).apply(playback, make_context(BEDROCK, streaming=True)).chunks == tuple(
        frames[:2]
    )


@pytest.mark.parametrize("checksum", ["message", "prelude"])
def test_bad_crc_breaks_one_checksum_that_botocore_checks(checksum: Literal["message", "prelude"]) -> None:
    playback, frames = _converse_playback()
    # Recorded chunks that do not follow the frames: their boundaries stay where they were.
    body = b"".join(frames)
    playback = replace(playback, chunks=(body[:10], body[10:200], body[200:]))
    result = BadCrc(event=2, checksum=checksum).apply(playback, make_context(BEDROCK, streaming=True))
    assert [len(c) for c in result.chunks] == [len(c) for c in playback.chunks]
    out = split_events(result.body, Framing.EVENTSTREAM)
    assert out[0] == frames[0] and out[2:] == frames[2:] and out[1] != frames[1]
    buffer = EventStreamBuffer()
    buffer.add_data(result.body)
    messages = iter(buffer)
    assert next(messages).headers[":event-type"] == "messageStart"
    with pytest.raises(ChecksumMismatch):
        next(messages)
    # A count past the last frame breaks the last one; a body that is not an eventstream plays as it is.
    last = BadCrc(event=99).apply(playback, make_context(BEDROCK, streaming=True))
    assert split_events(last.body, Framing.EVENTSTREAM)[:-1] == frames[:-1]
    sse = Playback(200, (("content-type", "text/event-stream"),), (b"data: {}\n\n",))
    assert BadCrc().apply(sse, make_context(streaming=True)) == sse


def test_an_exception_type_is_refused_on_a_stream_without_frames() -> None:
    fault = parse_fault("error_event:exception=modelStreamErrorException")
    playback, _ = _converse_playback()
    framed = fault.apply(playback, make_context(BEDROCK, streaming=True))
    assert framed.chunks[-1] == exception_frame("modelStreamErrorException")
    sse = Playback(200, (("content-type", "text/event-stream"),), (b"data: {}\n\n", b"data: {}\n\n"))
    with pytest.raises(ConfigError, match="names an eventstream exception type, but the response of POST"):
        fault.apply(sse, make_context(streaming=True))
    with pytest.raises(ConfigError, match="parameter `exception`"):
        parse_fault("error_event:exception=not a type")


# -- chunk edits -------------------------------------------------------------------------------------

_CHUNKS = st.lists(st.binary(min_size=1, max_size=12), max_size=7)  # playbacks have no empty chunks


@given(chunks=_CHUNKS, data=st.data())
def test_splice_edits_like_replace_span_and_carries_delays(chunks: list[bytes], data: st.DataObject) -> None:
    total = sum(map(len, chunks))
    start = data.draw(st.integers(0, total))
    end = data.draw(st.integers(start, total))
    new = data.draw(st.binary(max_size=5))
    delays = [float(i + 1) for i in range(len(chunks))]
    out, out_delays = splice(chunks, delays, start, end, new)
    assert [c for c in out if c] == [c for c in replace_span(chunks, start, end, new) if c]
    assert all(out[:-1])
    assert len(out_delays) == len(out)
    # A chunk that goes hands its delay on, unless nothing comes after it.
    if end < total:
        assert sum(out_delays) == sum(delays)
    else:
        assert sum(out_delays) <= sum(delays)


@given(chunks=_CHUNKS, data=st.data())
def test_cut_split_and_regroup_keep_the_bytes(chunks: list[bytes], data: st.DataObject) -> None:
    body = b"".join(chunks)
    offset = data.draw(st.integers(0, len(body)))
    delays = [float(i) for i in range(len(chunks))]
    kept, kept_delays = cut(chunks, delays, offset)
    assert b"".join(kept) == body[:offset] and len(kept_delays) == len(kept)
    split, split_delays, index = split_at(chunks, delays, offset)
    assert b"".join(split) == body and offset in [0, *boundaries(split), len(body)]
    assert sum(map(len, split[:index])) == offset and sum(split_delays) == sum(
        d for c, d in zip(chunks, delays, strict=True) if c
    )
    bounds = data.draw(st.lists(st.integers(-2, len(body) + 2), max_size=6))
    grouped, grouped_delays = regroup(chunks, delays, bounds)
    assert b"".join(grouped) == body and all(grouped)
    assert boundaries(grouped) == sorted({b for b in bounds if 0 < b < len(body)})
    assert sum(grouped_delays) == sum(d for c, d in zip(chunks, delays, strict=True) if c)


# -- specs -----------------------------------------------------------------------------------------

STREAM_FAULTS = [
    fault_types()[name] for name in sorted(fault_types()) if issubclass(fault_types()[name], StreamFault)
]


def test_every_stream_fault_is_exported() -> None:
    assert sorted(cls.__name__ for cls in STREAM_FAULTS) == sorted(stream.__all__)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("rechunk:mode=random,seed=7", Rechunk(mode="random", seed=7)),
        ("rechunk:size=1", Rechunk()),
        ("rechunk:mode=adversarial", Rechunk(mode="adversarial")),
        ("rechunk:mode=random,min_size=2,max_size=9", Rechunk(mode="random", min_size=2, max_size=9)),
        ("truncate:after=3", Truncate(after=3)),
        ("disconnect:after=0,mode=reset", Disconnect(after=0, mode="reset")),
        (
            "error_event:after=2,kind=overloaded,message=Overloaded",
            ErrorEvent(after=2, kind="overloaded", message="Overloaded"),
        ),
        ("malformed_chunk:event=4,nth=2", MalformedChunk(event=4, nth=2)),
        ("stall:after=2", Stall(after=2)),
        ("stall:seconds=0.5", Stall(seconds=0.5)),
        ("slow:ttfb_ms=2000,gap_ms=50,jitter_ms=5", Slow(ttfb_ms=2000, gap_ms=50, jitter_ms=5)),
        ("empty_stream:times=1", EmptyStream(times=1)),
    ],
)
def test_specs_parse(spec: str, expected: StreamFault) -> None:
    fault = parse_fault(spec)
    assert fault == expected
    assert parse_fault(fault.spec()) == fault


@pytest.mark.parametrize(
    "spec",
    [
        "rechunk:mode=bytes",
        "rechunk:size=0",
        "rechunk:min_size=5,max_size=2",
        "truncate:after=-1",
        "disconnect:mode=rst",
        "malformed_chunk:event=0",
        "stall:seconds=-1",
        "stall:seconds=inf",
        "slow:gap_ms=nan",
        "truncate:events=3",
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_fault(spec)


# -- every profile: the faults hold on a stream in the profile's own framing -------------------------


def _profile_stream(profile: Profile) -> Playback:
    items = [{"n": i, "text": "ü" * i} for i in range(4)]
    if profile.framing is Framing.NDJSON:
        body = b"".join(json.dumps(item).encode() + b"\n" for item in items)
    elif profile.framing is Framing.JSON_ARRAY:
        body = b"[" + b"\n,\r\n".join(json.dumps(item).encode() for item in items) + b"]"
    elif profile.framing is Framing.EVENTSTREAM:
        body = b"".join(_frame(json.dumps(item).encode()) for item in items)
    else:
        body = b"".join(b"data: " + json.dumps(item).encode() + b"\n\n" for item in items)
    body += profile.terminator or b""
    headers = (("content-type", profile.stream_content_type), ("content-length", str(len(body))))
    return Playback(200, headers, (body[:7], body[7:]))


PROFILE_IDS = [profile.name for profile in ALL_PROFILES]
DEFAULT_FAULTS = [cls() for cls in STREAM_FAULTS] + [parse_fault(cls.example) for cls in STREAM_FAULTS]


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=PROFILE_IDS)
@pytest.mark.parametrize("fault", DEFAULT_FAULTS, ids=[f"{fault.spec()}" for fault in DEFAULT_FAULTS])
def test_every_fault_applies_to_every_profile(profile: Profile, fault: StreamFault) -> None:
    playback = _profile_stream(profile)
    # A JSON array is a stream only where Gemini sends one (`streamGenerateContent` without `alt=sse`).
    url = "https://generativelanguage.googleapis.com/v1beta/models/m:streamGenerateContent"
    context = make_context(
        profile, streaming=True, **({"url": url} if profile.framing is Framing.JSON_ARRAY else {})
    )
    result = fault.apply(playback, context)
    check_shape(result)
    assert fault.apply(playback, context) == result  # a pure function
    assert result.status == 200
    body = playback.body
    if isinstance(fault, Rechunk | Slow | Stall):
        assert result.body == body
    elif isinstance(fault, EmptyStream):
        assert result.body == profile.empty_stream()
    elif isinstance(fault, Truncate):
        assert body.startswith(result.body) and len(result.body) < len(body)
        if profile.terminator:
            assert not result.body.endswith(profile.terminator)
    elif isinstance(fault, Disconnect):
        assert body.startswith(result.body) and result.ending is Ending.ERROR
    elif isinstance(fault, ErrorEvent):
        error = profile.error_event(message=fault.message, kind=fault.kind)
        assert result.body.endswith(error) and body.startswith(result.body[: -len(error)])
    elif isinstance(fault, MalformedChunk):
        assert result.body != body and len(result.body) < len(body)
    elif isinstance(fault, BadCrc):
        # Only an eventstream has checksums; its bytes change in place, boundaries kept.
        eventstream = profile.framing is Framing.EVENTSTREAM
        assert (result.body != body) == eventstream and len(result.body) == len(body)
        assert [len(c) for c in result.chunks] == [len(c) for c in playback.chunks]
    else:  # pragma: no cover - a new stream fault needs a line here
        pytest.fail(f"no expectation for {fault.name}")


# -- the real-cassette corpus ----------------------------------------------------------------------


def _corpus_streams() -> list[Any]:
    """(file, interaction) of every SSE or NDJSON response in the corpus (none when it is absent)."""
    found = []
    for rel in corpus_files():
        document = llmcassette.load_cassette(corpus_path(rel))
        for index, interaction in enumerate(document.interactions):
            ctype = (header(interaction.response.headers, "content-type") or "").lower()
            if "text/event-stream" in ctype or "ndjson" in ctype:
                found.append(pytest.param(rel, index, id=f"{rel}#{index}"))
    return found


CORPUS_STREAMS = _corpus_streams()


@pytest.mark.skipif(CORPUS is None, reason=MISSING_REASON)
@pytest.mark.parametrize(("rel", "index"), CORPUS_STREAMS)
def test_faults_on_real_recorded_streams(rel: str, index: int) -> None:
    interaction = llmcassette.load_cassette(corpus_path(rel)).interactions[index]
    response = interaction.response
    headers = tuple((name, value) for name, values in response.headers.items() for value in values)
    playback = Playback(response.status.code, headers, (response.content,))
    ctype = playback.header("content-type") or ""
    kind = "ndjson" if "ndjson" in ctype else "sse"
    request = RequestInfo(method=interaction.request.method, url=interaction.request.uri)
    context = make_context(detect_profile(request), url=request.url, streaming=True)
    original = decode(playback.chunks, kind)
    assert original
    for fault in (Rechunk(), Rechunk(mode="adversarial"), Rechunk(mode="random", seed=index)):
        assert decode(fault.apply(playback, context).chunks, kind) == original
    assert decode(Truncate(after=1).apply(playback, context).chunks, kind) == original[:1]
    cut_off = Disconnect(after=2, mode="reset").apply(playback, context)
    assert decode(cut_off.chunks, kind) == original[:2] and cut_off.error_type == "ReadError"
    broken = decode(MalformedChunk(event=1).apply(playback, context).chunks, kind)
    assert broken[1:] == original[1:]
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken[0].data)
