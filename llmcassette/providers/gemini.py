"""
The Google Gemini profile (``gemini``): the Gemini API on ``generativelanguage.googleapis.com``
and Gemini on Vertex AI (``aiplatform.googleapis.com`` and its regional hosts).

Wire facts used here, as the APIs and the google-genai SDK show them:

- Whether a call streams is in its path, not its body: ``...:streamGenerateContent`` streams,
  ``...:generateContent`` does not.
- With ``?alt=sse`` (google-genai always adds it) the stream is SSE with CRLF line ends
  (``data: {...}\\r\\n\\r\\n``), no ``event:`` lines and no terminator: the last chunk carries
  ``finishReason``. Without it the stream is one JSON array written element by element
  (``[{...}\\n,\\r\\n{...}\\n]``). google-genai reads only lines that start ``data: `` and treats
  anything else (a ``:`` comment, an ``event:`` line) as broken JSON, so this profile never writes
  either.
- Every chunk repeats ``usageMetadata`` with running totals (the last one counts); function calls
  arrive whole (``functionCall {name, args}``), never as argument fragments; ``thought: true``
  marks thinking parts.
- Errors are ``google.rpc.Status``: ``{"error": {"code", "message", "status", "details"}}``. A 429
  is ``RESOURCE_EXHAUSTED`` whose ``details`` hold ``QuotaFailure``, ``Help`` and ``RetryInfo
  {"retryDelay": "22s"}``: the server's delay is in the body, and no rate-limit headers are sent.
  Overload is 503 ``UNAVAILABLE`` ("The model is overloaded."). A bad API key is **400
  INVALID_ARGUMENT** with an ``ErrorInfo`` of reason ``API_KEY_INVALID``, not 401, so the
  ``unauthorized`` fault answers 400 on the Gemini API; Vertex AI, which takes OAuth tokens,
  answers 401 ``UNAUTHENTICATED``. An error inside a 200 stream is a ``data:`` event holding the
  same ``{"error": {...}}``, which google-genai raises as ``ClientError`` / ``ServerError``.

Volatile request field: ``labels`` (Vertex AI billing labels, often run ids; no effect on the answer).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .._exchange import RequestInfo
from .._framing import Framing
from ._base import Profile, query_value
from ._events import Event
from ._types import Summary, ToolCall
from ._wire import compact_json, flat_ints

__all__ = ["GeminiProfile", "candidate_parts", "retry_delay"]

_RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_TYPE = "type.googleapis.com/google.rpc."
_MESSAGES = {
    "rate_limit": (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
        "* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, "
        "limit: 10\nPlease retry in {delay}."
    ),
    "unauthorized": "API key not valid. Please pass a valid API key.",
    "forbidden": "The caller does not have permission",
    "not_found": (
        "models/llmcassette-model is not found for API version v1beta, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their supported methods."
    ),
    "bad_request": "Request contains an invalid argument.",
    "server_error": (
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting"
    ),
    "bad_gateway": "Bad Gateway",
    "unavailable": "The service is currently unavailable.",
    "overloaded": "The model is overloaded. Please try again later.",
}
_VERTEX_MESSAGES = _MESSAGES | {
    "rate_limit": (
        "Resource exhausted. Please try again later. Please refer to "
        "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details."
    ),
    "unauthorized": (
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
        "or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project."
    ),
}


def retry_delay(seconds: float | None) -> str:
    """A ``google.protobuf.Duration`` as JSON writes it (``22s``, ``3.957s``); 1 s when not given."""
    if seconds is None:
        return "1s"
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds:.3f}".rstrip("0") + "s"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ": "), ensure_ascii=False).encode()


class GeminiProfile(Profile):
    """Gemini API and Gemini on Vertex AI, streamed with ``alt=sse`` (see ``refine`` for the rest)."""

    name: ClassVar[str] = "gemini"
    framing: ClassVar[Framing] = Framing.SSE
    terminator: ClassVar[bytes | None] = None
    volatile_fields: ClassVar[tuple[str, ...]] = ("labels",)
    error_content_type: ClassVar[str] = "application/json; charset=UTF-8"
    error_indent: ClassVar[int | None] = 2
    #: Vertex AI (OAuth, 401 on bad credentials) rather than the Gemini API (API keys, 400).
    vertex: ClassVar[bool] = False

    def matches(self, request: RequestInfo) -> bool:
        path = request.path
        if ":generateContent" in path or ":streamGenerateContent" in path:
            return True
        google = request.host.endswith(("generativelanguage.googleapis.com", "aiplatform.googleapis.com"))
        # Both hosts also serve an OpenAI-compatible endpoint, which is OpenAI-shaped.
        return google and not path.endswith(("/chat/completions", "/embeddings"))

    def refine(self, request: RequestInfo) -> Profile:
        vertex = request.host.endswith("aiplatform.googleapis.com")
        array = self.is_streaming(request) and query_value(request, "alt") != "sse"
        return _VARIANTS[vertex, array]

    def is_streaming(self, request: RequestInfo) -> bool:
        return ":streamGenerateContent" in request.path

    # -- errors -------------------------------------------------------------------------------

    def status_for(self, kind: str) -> int:
        if kind == "unauthorized" and not self.vertex:
            return 400  # the Gemini API reports a bad key as INVALID_ARGUMENT
        return super().status_for(kind)

    def error_payload(self, kind: str, status: int, message: str | None, retry_after_s: float | None) -> Any:
        messages = _VERTEX_MESSAGES if self.vertex else _MESSAGES
        delay = retry_delay(retry_after_s)
        text = message or messages.get(kind, messages["server_error"]).format(delay=delay)
        rpc = _RPC_STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        error: dict[str, Any] = {"code": status, "message": text, "status": rpc}
        details = self._details(kind, delay)
        if details:
            error["details"] = details
        return {"error": error}

    def _details(self, kind: str, delay: str) -> list[dict[str, Any]]:
        service = "aiplatform.googleapis.com" if self.vertex else "generativelanguage.googleapis.com"
        if kind == "unauthorized":
            reason = "ACCESS_TOKEN_EXPIRED" if self.vertex else "API_KEY_INVALID"
            info = {"@type": _TYPE + "ErrorInfo", "reason": reason, "domain": "googleapis.com"}
            return [{**info, "metadata": {"service": service}}]
        if kind != "rate_limit" or self.vertex:
            return []
        violation = {
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            "quotaDimensions": {"location": "global", "model": "llmcassette-model"},
            "quotaValue": "10",
        }
        link = {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
        return [
            {"@type": _TYPE + "QuotaFailure", "violations": [violation]},
            {"@type": _TYPE + "Help", "links": [link]},
            {"@type": _TYPE + "RetryInfo", "retryDelay": delay},
        ]

    # -- stream shapes ------------------------------------------------------------------------

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        """``data: {"error": {...}}`` and a CRLF blank line (no details, as in real streams)."""
        status = self.status_for(kind)
        payload = self.error_payload(kind, status, message, None)
        payload["error"].pop("details", None)
        return self._event(payload)

    def empty_stream(self) -> bytes:
        """One chunk whose candidate has no parts and ``finishReason: STOP`` (Gemini's empty answer)."""
        candidate = {"content": {"role": "model"}, "finishReason": "STOP", "index": 0}
        usage = {"promptTokenCount": 0, "totalTokenCount": 0}
        chunk = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "llmcassette-empty"}
        return self._event(chunk, first=True, last=True)

    def _event(self, value: Any, *, first: bool = False, last: bool = False) -> bytes:
        return b"data: " + _dumps(value) + b"\r\n\r\n"

    # -- summaries ----------------------------------------------------------------------------

    def body_framing(self, body: bytes) -> Framing:
        """A JSON array or SSE, whichever the body is (the request's ``alt=sse`` chose it)."""
        if body.lstrip()[:1] == b"[":
            return Framing.JSON_ARRAY
        return Framing.SSE if super().body_framing(body) is Framing.SSE else Framing.NONE

    def summarize_stream(self, events: Sequence[Event]) -> Summary:
        return _summary([event.value for event in events])

    def summarize_json(self, value: Any) -> Summary:
        return _summary(value if isinstance(value, list) else [value])


class _GeminiArray(GeminiProfile):
    """``streamGenerateContent`` without ``alt=sse``: one JSON array, written element by element."""

    framing: ClassVar[Framing] = Framing.JSON_ARRAY
    stream_content_type: ClassVar[str] = "application/json; charset=UTF-8"

    def _event(self, value: Any, *, first: bool = False, last: bool = False) -> bytes:
        """
        An array element with the separator before it. An error element closes the array too,
        so the stream it ends is still valid JSON.
        """
        head = b"[" if first else b"\n,\r\n"
        return head + _dumps(value) + (b"\n]" if last or "error" in value else b"")


class _Vertex(GeminiProfile):
    vertex: ClassVar[bool] = True


class _VertexArray(_GeminiArray):
    vertex: ClassVar[bool] = True


_VARIANTS: dict[tuple[bool, bool], GeminiProfile] = {
    (False, False): GeminiProfile(),
    (False, True): _GeminiArray(),
    (True, False): _Vertex(),
    (True, True): _VertexArray(),
}


def _summary(chunks: list[Any]) -> Summary:
    summary = Summary()
    text: list[str] = []
    reasoning: list[str] = []
    for chunk in chunks:
        if not isinstance(chunk, Mapping):
            continue
        error = chunk.get("error")
        if isinstance(error, Mapping) and summary.error is None:
            summary.error = str(error.get("message") or error.get("status") or compact_json(error))
        if isinstance(chunk.get("usageMetadata"), Mapping):
            summary.usage = flat_ints(chunk["usageMetadata"])  # running totals: the last one counts
        parts, finish = candidate_parts(chunk)
        for part in parts:
            if isinstance(part.get("text"), str):
                (reasoning if part.get("thought") else text).append(part["text"])
            call = part.get("functionCall")
            if isinstance(call, Mapping):
                arguments = compact_json(call.get("args") or {})
                summary.tool_calls.append(ToolCall(str(call.get("name") or ""), arguments, call.get("id")))
        summary.finish_reason = finish or summary.finish_reason
    summary.text = "".join(text)
    summary.reasoning = "".join(reasoning)
    return summary


def candidate_parts(chunk: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], str | None]:
    """
    The parts of a chunk's first candidate (``index`` 0, the one summaries read) and the finish
    reason the chunk gives: the candidate's ``finishReason``, or the ``blockReason`` of a prompt
    blocked before any candidate.
    """
    candidates = [c for c in chunk.get("candidates") or () if isinstance(c, Mapping)]
    candidate = next((c for c in candidates if c.get("index", 0) == 0), None)
    if candidate is None:
        feedback = chunk.get("promptFeedback")
        reason = feedback.get("blockReason") if isinstance(feedback, Mapping) else None
        return [], str(reason) if reason else None
    content = candidate.get("content")
    parts = content.get("parts") or () if isinstance(content, Mapping) else ()
    reason = candidate.get("finishReason")
    return [part for part in parts if isinstance(part, Mapping)], str(reason) if reason else None
