"""
OpenAI profiles: Chat Completions (``openai``), the Responses API (``openai-responses``) and
Azure OpenAI (``azure-openai``, both its chat and Responses endpoints).

Wire facts used here, as the API and the openai SDK show them:

- Chat streams are ``data:``-only SSE ending with ``data: [DONE]``. An error inside a 200 stream
  is a data event whose top-level ``error`` object makes the SDK raise ``APIError``.
- Responses streams name every event (``event: response.output_text.delta``), send no
  ``[DONE]`` and end after ``response.completed`` / ``.incomplete`` / ``.failed``; an in-stream
  error is ``event: error`` with ``{"type": "error", "code", "message", "param",
  "sequence_number"}``, which the SDK yields as an ordinary event.
- HTTP errors are ``{"error": {"message", "type", "param", "code"}}``; a 429 comes with
  ``x-ratelimit-*`` headers whose resets are Go durations (``120ms``, ``6m0s``). Gateway errors
  from Cloudflare in front of the API are ``cf_bad_gateway`` / ``cf_service_unavailable`` with
  the status as an integer ``code``.
- Azure answers the same streams (its first chunk often has ``choices: []`` and the prompt
  filter results) but its errors carry ``code`` as a string (``"429"``, ``"DeploymentNotFound"``),
  with an ``apim-request-id`` header and only the remaining-quota rate-limit headers.

Volatile request fields (left out of matching): ``user`` and ``safety_identifier`` identify the
end user, ``metadata`` tags stored completions and often holds trace or run ids, and
``prompt_cache_key`` only steers cache routing. None of them changes what the model answers.
``stream_options`` is kept: ``include_usage`` adds a chunk to the stream.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from .._exchange import RequestInfo
from .._framing import Framing
from ._base import Profile
from ._events import Event, decode_event
from ._openai_shapes import chat_json, chat_stream, is_responses_json, responses_json, responses_stream
from ._types import Summary
from ._wire import FALLBACK_NOW_S, sse_event, stable_token

__all__ = ["AzureOpenAIProfile", "OpenAIProfile", "OpenAIResponsesProfile", "go_duration"]

_RESPONSES_PATH = re.compile(r"(?:^|/)(?:v1/)?responses(?:/[^/]+)?/?$")
_AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")
_EMPTY_ID = "llmcassette-empty"
_EMPTY_CREATED = int(FALLBACK_NOW_S)

# kind: (type, code, message). A code of None for the cf_* types means "the status itself".
_OPENAI_ERRORS: dict[str, tuple[str, str | None, str]] = {
    "rate_limit": (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached in organization org-llmcassette on requests per min (RPM): Limit 500, "
        "Used 500, Requested 1. Please try again in {delay}. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
    ),
    "unauthorized": (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-llmca**********sette. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    "forbidden": (
        "request_forbidden",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    "not_found": (
        "invalid_request_error",
        "model_not_found",
        "The model `llmcassette-model` does not exist or you do not have access to it.",
    ),
    "bad_request": (
        "invalid_request_error",
        None,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
        "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
        "valid JSON.)",
    ),
    "server_error": (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    "bad_gateway": ("cf_bad_gateway", None, "Bad gateway."),
    "unavailable": ("cf_service_unavailable", None, "Service Unavailable."),
    "overloaded": ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def go_duration(seconds: float) -> str:
    """A delay the way OpenAI's reset headers and messages write it (``120ms``, ``1.5s``, ``6m0s``)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


class OpenAIProfile(Profile):
    """OpenAI Chat Completions on ``api.openai.com`` (other hosts: ``openai-compatible``)."""

    name: ClassVar[str] = "openai"
    framing: ClassVar[Framing] = Framing.SSE
    terminator: ClassVar[bytes | None] = b"data: [DONE]\n\n"
    volatile_fields: ClassVar[tuple[str, ...]] = ("user", "metadata", "safety_identifier", "prompt_cache_key")
    error_content_type: ClassVar[str] = "application/json; charset=utf-8"
    error_indent: ClassVar[int | None] = 4
    #: Hosts this profile answers for.
    hosts: ClassVar[tuple[str, ...]] = ("api.openai.com",)

    def matches(self, request: RequestInfo) -> bool:
        return request.host in self.hosts

    # -- errors -------------------------------------------------------------------------------

    def error_payload(self, kind: str, status: int, message: str | None, retry_after_s: float | None) -> Any:
        kind_type, code, default = _OPENAI_ERRORS.get(kind, _OPENAI_ERRORS["server_error"])
        text = message or default.format(
            delay=go_duration(retry_after_s if retry_after_s is not None else 0.12)
        )
        wire_code: str | int | None = status if kind_type.startswith("cf_") else code
        return {"error": {"message": text, "type": kind_type, "param": None, "code": wire_code}}

    def error_headers(self, kind: str, status: int, body: bytes) -> list[tuple[str, str]]:
        return [("x-request-id", "req_" + stable_token(self.name, status, body, length=32))]

    def rate_limit_headers(self, *, now_s: float | None = None) -> tuple[tuple[str, str], ...]:
        return (
            ("x-ratelimit-limit-requests", "500"),
            ("x-ratelimit-limit-tokens", "30000"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-remaining-tokens", "30000"),
            ("x-ratelimit-reset-requests", "120ms"),
            ("x-ratelimit-reset-tokens", "0s"),
        )

    # -- stream shapes ------------------------------------------------------------------------

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        return sse_event(self.error_payload(kind, self.status_for(kind), message, None))

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {
            "id": f"chatcmpl-{_EMPTY_ID}",
            "object": "chat.completion.chunk",
            "created": _EMPTY_CREATED,
            "model": _EMPTY_ID,
            "choices": [choice],
        }

    def empty_stream(self) -> bytes:
        """A role chunk, a finish chunk (``stop``) with no text in between, then ``[DONE]``."""
        first = self._chunk({"role": "assistant", "content": ""}, None)
        return sse_event(first) + sse_event(self._chunk({}, "stop")) + (self.terminator or b"")

    # -- summaries ----------------------------------------------------------------------------

    def body_framing(self, body: bytes) -> Framing:
        """SSE, whatever else the body looks like, when it looks like a stream at all."""
        return Framing.SSE if super().body_framing(body) is not Framing.NONE else Framing.NONE

    def summarize_stream(self, events: Sequence[Event]) -> Summary:
        if any((event.name or "").startswith("response.") for event in events[:3]):
            return responses_stream(events)
        return chat_stream(events)

    def summarize_json(self, value: Any) -> Summary:
        return responses_json(value) if is_responses_json(value) else chat_json(value)


class _ResponsesWire(OpenAIProfile):
    """The Responses API stream shapes, shared by OpenAI and Azure."""

    terminator: ClassVar[bytes | None] = None

    def is_terminator(self, event: bytes) -> bool:
        """``response.completed`` (or ``.incomplete`` / ``.failed``) ends a complete stream."""
        decoded = decode_event(event, self.framing, named_without_data=True)
        if decoded is None:
            return False
        # A JSON object's `type` decides, even when absent (then the `event:` name does not count),
        # where the decoder's `type` puts the name first: OpenAI sends both, equal, so only a
        # damaged event tells them apart, and the check has always gone by the payload.
        value = decoded.value
        kind = value.get("type") if isinstance(value, dict) else decoded.name
        return kind in ("response.completed", "response.incomplete", "response.failed")

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        """
        ``event: error`` with the Responses error object. Its ``sequence_number`` is 0: the
        profile does not see the stream it is put into.
        """
        payload = self.error_payload(kind, self.status_for(kind), message, None)
        code = {"rate_limit": "rate_limit_exceeded", "bad_request": "invalid_prompt"}.get(
            kind, "server_error"
        )
        text = payload["error"]["message"] if isinstance(payload, dict) else str(message)
        data = {"type": "error", "code": code, "message": text, "param": None, "sequence_number": 0}
        return sse_event(data, event="error")

    def empty_stream(self) -> bytes:
        """``response.created``, ``response.in_progress``, then ``response.completed`` with no output."""
        response: dict[str, Any] = {
            "id": f"resp_{_EMPTY_ID}",
            "object": "response",
            "created_at": _EMPTY_CREATED,
            "status": "in_progress",
            "error": None,
            "incomplete_details": None,
            "model": _EMPTY_ID,
            "output": [],
            "usage": None,
        }
        out = b""
        for number, kind in enumerate(("response.created", "response.in_progress", "response.completed")):
            if kind == "response.completed":
                usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
                response = {**response, "status": "completed", "usage": usage}
            data = {"type": kind, "sequence_number": number, "response": response}
            out += f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
        return out

    def summarize_stream(self, events: Sequence[Event]) -> Summary:
        return responses_stream(events)

    def summarize_json(self, value: Any) -> Summary:
        return responses_json(value) if is_responses_json(value) else chat_json(value)


class OpenAIResponsesProfile(_ResponsesWire):
    """
    The Responses API: ``/v1/responses`` on ``api.openai.com``, and the same path on any other
    non-Azure host (Ollama, Groq and proxies serve it in OpenAI's shape). The resume request
    ``GET /v1/responses/{id}?stream=true`` streams too.
    """

    name: ClassVar[str] = "openai-responses"

    def matches(self, request: RequestInfo) -> bool:
        return bool(_RESPONSES_PATH.search(request.path)) and not _is_azure(request)


def _is_azure(request: RequestInfo) -> bool:
    return request.host.endswith(_AZURE_HOSTS) or request.path.startswith("/openai/deployments/")


# kind: (code, message); Azure's code is a string, often the status itself.
_AZURE_ERRORS: dict[str, tuple[str, str]] = {
    "rate_limit": (
        "429",
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 "
        "have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after "
        "{delay} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to "
        "further increase the default rate limit.",
    ),
    "unauthorized": (
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
        "valid key for an active subscription and use a correct regional API endpoint for your resource.",
    ),
    "forbidden": ("PermissionDenied", "Principal does not have access to API/Operation."),
    "not_found": (
        "DeploymentNotFound",
        "The API deployment for this resource does not exist. If you created the deployment within "
        "the last 5 minutes, please wait a moment and try again.",
    ),
    "bad_request": ("BadRequest", "The request is invalid and could not be processed."),
    "server_error": ("InternalServerError", "The server had an error while processing your request."),
    "bad_gateway": ("BadGateway", "The upstream service returned an invalid response."),
    "unavailable": (
        "ServiceUnavailable",
        "The service is temporarily unable to process your request. Please try again later.",
    ),
    "overloaded": ("ServiceUnavailable", "The server is currently overloaded. Please try again later."),
}


class AzureOpenAIProfile(OpenAIProfile):
    """
    Azure OpenAI: ``*.openai.azure.com`` (also the Cognitive Services and AI Foundry hosts) and
    ``/openai/deployments/{deployment}/...?api-version=...`` on any host. The ``/openai/v1/responses``
    and ``/openai/responses`` endpoints get the Responses variant of this profile.
    """

    name: ClassVar[str] = "azure-openai"
    error_content_type: ClassVar[str] = "application/json"
    error_indent: ClassVar[int | None] = 2

    def matches(self, request: RequestInfo) -> bool:
        return _is_azure(request)

    def refine(self, request: RequestInfo) -> Profile:
        return _AZURE_RESPONSES if _RESPONSES_PATH.search(request.path) else self

    def error_payload(self, kind: str, status: int, message: str | None, retry_after_s: float | None) -> Any:
        code, default = _AZURE_ERRORS.get(kind, _AZURE_ERRORS["server_error"])
        delay = str(max(1, round(retry_after_s))) if retry_after_s is not None else "1"
        return {"error": {"code": code, "message": message or default.format(delay=delay)}}

    def error_headers(self, kind: str, status: int, body: bytes) -> list[tuple[str, str]]:
        token = stable_token(self.name, status, body, length=32)
        uuid = f"{token[:8]}-{token[8:12]}-{token[12:16]}-{token[16:20]}-{token[20:32]}"
        return [("apim-request-id", uuid), ("x-request-id", uuid)]

    def rate_limit_headers(self, *, now_s: float | None = None) -> tuple[tuple[str, str], ...]:
        return (("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-remaining-tokens", "0"))

    def empty_stream(self) -> bytes:
        """The prompt-filter chunk (``choices: []``), then the OpenAI empty stream."""
        filters = {"prompt_index": 0, "content_filter_results": {}}
        first = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [filters],
        }
        return sse_event(first) + super().empty_stream()


class _AzureResponses(_ResponsesWire, AzureOpenAIProfile):
    """Azure OpenAI's Responses endpoints: Responses stream shapes, Azure errors."""


_AZURE_RESPONSES = _AzureResponses()
