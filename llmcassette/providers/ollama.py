"""
The Ollama native API profile (``ollama``): ``/api/chat``, ``/api/generate`` and the other
``/api/*`` endpoints of a local server (port 11434) or Ollama's cloud (``ollama.com``). Ollama's
OpenAI-compatible ``/v1/*`` endpoints are the ``ollama-openai`` profile (see ``compat``).

Wire facts used here, as Ollama's API docs and the ollama SDK show them:

- Streaming is the **default**: a request streams unless its body says ``"stream": false``.
  Streams are NDJSON (``application/x-ndjson``): one JSON object per line, the last with
  ``"done": true``, ``done_reason`` and the token counts (``prompt_eval_count``, ``eval_count``;
  durations are nanoseconds). Chat lines carry ``message.content`` (and ``message.thinking``),
  generate lines carry ``response`` (and ``thinking``).
- Tool calls arrive whole, in one line, with ``arguments`` as a JSON object, not text.
- Errors are ``{"error": "<text>"}`` with the status (the SDK raises ``ResponseError`` with that
  text and status). A busy server answers 503 "server busy", Ollama's overload. An error inside a
  200 stream is a line ``{"error": "..."}``, which the SDK raises as ``ResponseError`` with
  status -1. No rate-limit headers are sent.
- The final ``"done": true`` line ends a stream. Its content varies (counts, durations), so the
  profile has no fixed ``terminator`` bytes; ``is_terminator`` recognises the line.

Volatile request field: ``keep_alive`` (how long the model stays loaded; no effect on the answer).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .._exchange import RequestInfo
from .._framing import Framing
from ._base import Profile, port_of
from ._events import Event, decode_event
from ._types import Summary, ToolCall
from ._wire import compact_json, rfc3339

__all__ = ["OllamaProfile", "is_ollama_host", "line_content", "line_end"]

_STREAMING_PATHS = ("/api/chat", "/api/generate", "/api/pull", "/api/push", "/api/create")
_COUNTS = ("prompt_eval_count", "eval_count")
_ERRORS: dict[str, str] = {
    "rate_limit": "too many requests, please try again later",
    "unauthorized": "unauthorized",
    "forbidden": "forbidden",
    "not_found": 'model "llmcassette-model" not found, try pulling it first',
    "bad_request": "model is required",
    "server_error": "llama runner process has terminated: exit status 2",
    "bad_gateway": "bad gateway",
    "unavailable": "service unavailable",
    "overloaded": "server busy, please try again.  maximum pending requests exceeded",
}
_STREAM_ERROR = "an error was encountered while running the model"


def is_ollama_host(request: RequestInfo) -> bool:
    """Whether ``request`` goes to an Ollama server: port 11434, or Ollama's cloud."""
    return port_of(request) == 11434 or request.host == "ollama.com" or request.host.endswith(".ollama.com")


class OllamaProfile(Profile):
    """Ollama's native API (chat variant; ``/api/generate`` gets its own variant from ``refine``)."""

    name: ClassVar[str] = "ollama"
    framing: ClassVar[Framing] = Framing.NDJSON
    terminator: ClassVar[bytes | None] = None
    volatile_fields: ClassVar[tuple[str, ...]] = ("keep_alive",)
    stream_content_type: ClassVar[str] = "application/x-ndjson"
    error_content_type: ClassVar[str] = "application/json; charset=utf-8"
    #: Where the answer's text goes in each line: ``message`` (chat) or ``response`` (generate).
    text_field: ClassVar[str] = "message"

    def matches(self, request: RequestInfo) -> bool:
        if request.path.startswith("/api/") and is_ollama_host(request):
            return True
        return request.path in ("/api/chat", "/api/generate")

    def refine(self, request: RequestInfo) -> Profile:
        return _GENERATE if request.path.endswith("/api/generate") else self

    def is_streaming(self, request: RequestInfo) -> bool:
        if request.method.upper() != "POST" or not request.path.endswith(_STREAMING_PATHS):
            return False
        body = request.json
        return not (isinstance(body, dict) and body.get("stream") is False)

    def is_terminator(self, event: bytes) -> bool:
        decoded = decode_event(event, self.framing)
        return (
            decoded is not None and isinstance(decoded.value, Mapping) and decoded.value.get("done") is True
        )

    # -- errors -------------------------------------------------------------------------------

    def error_payload(self, kind: str, status: int, message: str | None, retry_after_s: float | None) -> Any:
        return {"error": message or _ERRORS.get(kind, _ERRORS["server_error"])}

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        """An ``{"error": "..."}`` line (the model-failure text unless ``kind`` says otherwise)."""
        text = message or (_STREAM_ERROR if kind == "server_error" else _ERRORS.get(kind, _STREAM_ERROR))
        return json.dumps({"error": text}, separators=(",", ":")).encode() + b"\n"

    def empty_stream(self) -> bytes:
        """One ``"done": true`` line with empty text and zero counts."""
        line: dict[str, Any] = {"model": "llmcassette-empty", "created_at": rfc3339(0)}
        if self.text_field == "message":
            line["message"] = {"role": "assistant", "content": ""}
        else:
            line["response"] = ""
        line |= {
            "done": True,
            "done_reason": "stop",
            "total_duration": 0,
            "prompt_eval_count": 0,
            "eval_count": 0,
        }
        return json.dumps(line, separators=(",", ":")).encode() + b"\n"

    # -- summaries ----------------------------------------------------------------------------

    def body_framing(self, body: bytes) -> Framing:
        return Framing.NDJSON  # one line or many, an NDJSON body reads the same

    def summarize_stream(self, events: Sequence[Event]) -> Summary:
        return _summary([event.value for event in events])

    def summarize_json(self, value: Any) -> Summary:
        return _summary([value])


class _OllamaGenerate(OllamaProfile):
    text_field: ClassVar[str] = "response"


_GENERATE = _OllamaGenerate()


def _summary(lines: list[Any]) -> Summary:
    summary = Summary()
    text: list[str] = []
    reasoning: list[str] = []
    for line in lines:
        if not isinstance(line, Mapping):
            continue
        if line.get("error") and summary.error is None:
            error = line["error"]
            summary.error = error if isinstance(error, str) else compact_json(error)
        content, thinking, calls = line_content(line)
        if isinstance(content, str):
            text.append(content)
        if isinstance(thinking, str):
            reasoning.append(thinking)
        for call in calls:
            function = call["function"]
            arguments = function.get("arguments")
            text_args = arguments if isinstance(arguments, str) else compact_json(arguments or {})
            summary.tool_calls.append(ToolCall(str(function.get("name") or ""), text_args, call.get("id")))
        end = line_end(line)
        if end is not None:
            summary.finish_reason, summary.usage = end
    summary.text = "".join(text)
    summary.reasoning = "".join(reasoning)
    return summary


def line_content(line: Mapping[str, Any]) -> tuple[Any, Any, list[Mapping[str, Any]]]:
    """
    What one line carries: its answer text, its thinking and its tool calls (those with a
    ``function``). Chat lines carry them in ``message``, generate lines at the top level, the
    text in ``response``.
    """
    message = line.get("message")
    source = message if isinstance(message, Mapping) else line
    text = source.get("content") if source is message else line.get("response")
    calls = [
        call
        for call in source.get("tool_calls") or ()
        if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping)
    ]
    return text, source.get("thinking"), calls


def line_end(line: Mapping[str, Any]) -> tuple[str, dict[str, int]] | None:
    """The finish reason and token counts of the ``"done": true`` line that ends a stream, else None."""
    if line.get("done") is not True:
        return None
    counts = {key: line[key] for key in _COUNTS if isinstance(line.get(key), int)}
    return str(line.get("done_reason") or "stop"), counts
