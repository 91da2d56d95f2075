"""
OpenAI-compatible gateways: ``groq``, ``mistral``, ``openrouter``, ``ollama-openai`` and the
catch-all ``openai-compatible`` (vLLM, LiteLLM and any other server answering
``/chat/completions`` on an unknown host).

They all stream Chat Completions SSE ending with ``data: [DONE]`` and are read by the OpenAI
summaries; each gateway has its own error bodies, rate-limit headers and in-stream error. One
profile per gateway (rather than one profile with switches) keeps each provider's facts in one
place and lets faults and reports name the gateway. Where they come from:

- **Groq** (``api.groq.com/openai/v1``): errors ``{"error": {"message", "type", "code"}}`` (no
  ``param``; ``tool_use_failed`` carries ``failed_generation``); ``x-ratelimit-*`` headers whose
  request limit is per day; usage also in ``x_groq.usage`` of the last chunk; an in-stream error
  is ``event: error`` with ``{"error": {..., "status_code"}}`` and no ``[DONE]`` (recorded).
- **Mistral** (``api.mistral.ai``): error bodies are not uniform (``{"object": "error",
  "message", "type", "param", "code"}`` with a numeric-string code, or ``{"message",
  "request_id"}`` from the gateway for a 401); capacity limits are 429 with code ``3505``, so
  ``overloaded`` answers 429; ``x-ratelimit-*-req-10-second`` / ``-tokens-minute`` / ``-month``
  headers (recorded); tool calls arrive whole; thinking arrives as typed content parts.
- **OpenRouter** (``openrouter.ai/api/v1``): errors ``{"error": {"code": <int status>, "message",
  "metadata"}}``; upstream failures say "Provider returned error" with the upstream's text in
  ``metadata.raw`` (recorded 429s); keep-alive comments ``: OPENROUTER PROCESSING`` before the
  first event; an in-stream error is a chunk with a top-level ``error`` and ``finish_reason:
  "error"``, which the openai SDK raises as ``APIError``.
- **Ollama's OpenAI endpoint** (``/v1/*`` on port 11434 or ``ollama.com``): errors have only the
  types ``invalid_request_error``, ``not_found_error`` and ``api_error``, with null ``param`` and
  ``code``. Ollama writes an error that happens mid-stream as a bare JSON line, without
  ``data:``; OpenAI's SSE decoder skips it, so the stream just ends. The in-stream error event
  here is that line, as Ollama's server source writes it (re-check against a recording).
- **openai-compatible**: OpenAI's own shapes, which every OpenAI-style client understands (vLLM
  and LiteLLM answer in them, with small differences such as a string ``code``).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from .._exchange import RequestInfo
from ._wire import sse_event, stable_token
from .ollama import OllamaProfile, is_ollama_host
from .openai import OpenAIProfile, go_duration

__all__ = [
    "GroqProfile",
    "MistralProfile",
    "OllamaOpenAIProfile",
    "OpenAICompatibleProfile",
    "OpenRouterProfile",
]

_CHAT_PATHS = ("/chat/completions", "/v1/completions")


class OpenAICompatibleProfile(OpenAIProfile):
    """Any server answering ``.../chat/completions`` (or ``/v1/completions``) on an unknown host."""

    name: ClassVar[str] = "openai-compatible"
    hosts: ClassVar[tuple[str, ...]] = ()
    error_indent: ClassVar[int | None] = None

    def matches(self, request: RequestInfo) -> bool:
        return request.path.rstrip("/").endswith(_CHAT_PATHS)


class _GatewayProfile(OpenAICompatibleProfile):
    """A gateway told by its host (and its subdomains)."""

    def matches(self, request: RequestInfo) -> bool:
        return any(request.host == host or request.host.endswith("." + host) for host in self.hosts)


# -- Groq -----------------------------------------------------------------------------------------

_GROQ_ERRORS: dict[str, tuple[str, str | None, str]] = {
    "rate_limit": (
        "tokens",
        "rate_limit_exceeded",
        "Rate limit reached for model `llmcassette-model` in organization `org_llmcassette` service tier "
        "`on_demand` on tokens per minute (TPM): Limit 6000, Used 5843, Requested 400. Please try again "
        "in {delay}. Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing",
    ),
    "unauthorized": ("invalid_request_error", "invalid_api_key", "Invalid API Key"),
    "forbidden": (
        "permission_error",
        "permission_denied",
        "Access denied. Please check your network settings.",
    ),
    "not_found": (
        "invalid_request_error",
        "model_not_found",
        "The model `llmcassette-model` does not exist or you do not have access to it.",
    ),
    "bad_request": ("invalid_request_error", None, "'messages' : minimum number of items is 1"),
    "server_error": ("internal_server_error", "internal_server_error", "Internal Server Error"),
    "bad_gateway": ("internal_server_error", "bad_gateway", "Bad Gateway"),
    "unavailable": ("internal_server_error", "service_unavailable", "Service Unavailable"),
    "overloaded": (
        "internal_server_error",
        "service_unavailable",
        "llmcassette-model is currently over capacity. Please try again and back off exponentially. "
        "Visit https://groqstatus.com to see if there is an ongoing incident.",
    ),
}


class GroqProfile(_GatewayProfile):
    """Groq's OpenAI-compatible API."""

    name: ClassVar[str] = "groq"
    hosts: ClassVar[tuple[str, ...]] = ("api.groq.com",)
    error_content_type: ClassVar[str] = "application/json"

    def error_payload(self, kind: str, status: int, message: str | None, retry_after_s: float | None) -> Any:
        kind_type, code, default = _GROQ_ERRORS.get(kind, _GROQ_ERRORS["server_error"])
        delay = go_duration(retry_after_s if retry_after_s is not None else 2.43)
        error: dict[str, Any] = {"message": message or default.format(delay=delay), "type": kind_type}
        if code is not None:
            error["code"] = code
        return {"error": error}

    def error_headers(self, kind: str, status: int, body: bytes) -> list[tuple[str, str]]:
        alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
        return [
            ("x-request-id", "req_01" + stable_token(self.name, status, body, length=24, alphabet=alphabet))
        ]

    def rate_limit_headers(self, *, now_s: float | None = None) -> tuple[tuple[str, str], ...]:
        return (
            ("x-ratelimit-limit-requests", "14400"),
            ("x-ratelimit-limit-tokens", "6000"),
            ("x-ratelimit-remaining-requests", "14399"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-requests", "6s"),
            ("x-ratelimit-reset-tokens", "2.43s"),
        )

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        """``event: error`` whose data is the error object with its ``status_code`` (no ``[DONE]``)."""
        status = self.status_for(kind)
        payload = self.error_payload(kind, status, message, None)
        payload["error"]["status_code"] = status
        return sse_event(payload, event="error")


# -- Mistral --------------------------------------------------------------------------------------

# kind: (status, payload without request id); "{request_id}" is filled in.
_MISTRAL_ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "rate_limit": (429, {"message": "Rate limit exceeded", "type": "rate_limited", "code": "1300"}),
    "unauthorized": (401, {"message": "Unauthorized"}),
    "forbidden": (403, {"message": "Forbidden", "type": "invalid_request_error", "code": None}),
    "not_found": (
        404,
        {"message": "Invalid model: llmcassette-model", "type": "invalid_model", "code": "1500"},
    ),
    "bad_request": (400, {"message": "Invalid request", "type": "invalid_request_error", "code": None}),
    "server_error": (
        500,
        {"message": "Internal server error", "type": "internal_server_error", "code": None},
    ),
    "bad_gateway": (502, {"message": "Bad gateway", "type": "internal_server_error", "code": None}),
    "unavailable": (503, {"message": "Service unavailable", "type": "internal_server_error", "code": None}),
    "overloaded": (
        429,
        {
            "message": "Service tier capacity exceeded for this model.",
            "type": "service_tier_capacity_exceeded",
            "code": "3505",
        },
    ),
}


class MistralProfile(_GatewayProfile):
    """Mistral's API (``api.mistral.ai``, ``codestral.mistral.ai``)."""

    name: ClassVar[str] = "mistral"
    hosts: ClassVar[tuple[str, ...]] = ("mistral.ai",)
    error_content_type: ClassVar[str] = "application/json"

    def status_for(self, kind: str) -> int:
        return _MISTRAL_ERRORS[kind][0] if kind in _MISTRAL_ERRORS else super().status_for(kind)

    def error_payload(self, kind: str, status: int, message: str | None, retry_after_s: float | None) -> Any:
        shape = dict(_MISTRAL_ERRORS.get(kind, _MISTRAL_ERRORS["server_error"])[1])
        if message:
            shape["message"] = message
        if "type" not in shape:  # the gateway's own answer, with its request id
            return {**shape, "request_id": stable_token(self.name, status, shape["message"], length=32)}
        return {
            "object": "error",
            "message": shape["message"],
            "type": shape["type"],
            "param": None,
            "code": shape["code"],
        }

    def error_headers(self, kind: str, status: int, body: bytes) -> list[tuple[str, str]]:
        token = stable_token(self.name, status, body, length=32)
        return [
            (
                "mistral-correlation-id",
                f"{token[:8]}-{token[8:12]}-{token[12:16]}-{token[16:20]}-{token[20:]}",
            )
        ]

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        """
        ``data: {"error": {...}}`` with Mistral's error fields. No recording of a Mistral error
        inside a stream was found; this is the OpenAI-compatible form its clients understand.
        """
        payload = self.error_payload(kind, self.status_for(kind), message, None)
        fields = {key: payload.get(key) for key in ("message", "type", "param", "code")}
        return sse_event({"error": fields})

    def rate_limit_headers(self, *, now_s: float | None = None) -> tuple[tuple[str, str], ...]:
        return (
            ("x-ratelimit-limit-req-10-second", "60"),
            ("x-ratelimit-limit-tokens-minute", "2000000"),
            ("x-ratelimit-limit-tokens-month", "10000000000"),
            ("x-ratelimit-remaining-req-10-second", "0"),
            ("x-ratelimit-remaining-tokens-minute", "2000000"),
            ("x-ratelimit-remaining-tokens-month", "10000000000"),
        )


# -- OpenRouter -----------------------------------------------------------------------------------

_UPSTREAM = "llmcassette"
_OPENROUTER_ERRORS: dict[str, tuple[str, str | None]] = {  # kind: (message, metadata.raw)
    "rate_limit": (
        "Provider returned error",
        "llmcassette-model is temporarily rate-limited upstream. Please retry shortly, or add your own "
        "key to accumulate your rate limits: https://openrouter.ai/settings/integrations",
    ),
    "unauthorized": ("No auth credentials found", None),
    "forbidden": ("llmcassette-model requires moderation on llmcassette. Your input was flagged.", None),
    "not_found": ("No endpoints found for llmcassette-model.", None),
    "bad_request": ("llmcassette-model is not a valid model ID", None),
    "server_error": ("Internal Server Error", None),
    "bad_gateway": ("Provider returned error", "upstream connect error or disconnect/reset before headers"),
    "unavailable": ("No allowed providers are available for the selected model.", None),
    "overloaded": ("Provider returned error", "The model is overloaded. Please try again later."),
}


class OpenRouterProfile(_GatewayProfile):
    """OpenRouter's OpenAI-compatible API (``openrouter.ai/api/v1``)."""

    name: ClassVar[str] = "openrouter"
    hosts: ClassVar[tuple[str, ...]] = ("openrouter.ai",)
    error_content_type: ClassVar[str] = "application/json"

    def error_payload(self, kind: str, status: int, message: str | None, retry_after_s: float | None) -> Any:
        default, raw = _OPENROUTER_ERRORS.get(kind, _OPENROUTER_ERRORS["server_error"])
        error: dict[str, Any] = {"code": status, "message": message or default}
        if raw is not None and message is None:
            error["metadata"] = {"provider_name": _UPSTREAM, "raw": raw}
        elif kind == "forbidden":
            error["metadata"] = {
                "reasons": ["harassment"],
                "provider_name": _UPSTREAM,
                "model_slug": "llmcassette-model",
            }
        return {"error": error}

    def rate_limit_headers(self, *, now_s: float | None = None) -> tuple[tuple[str, str], ...]:
        """None: OpenRouter names the limit in the body (``metadata``), not in headers."""
        return ()

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        chunk = super()._chunk(delta, finish_reason)
        return {
            "id": "gen-llmcassette-empty",
            "provider": _UPSTREAM,
            **{k: v for k, v in chunk.items() if k != "id"},
        }

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        """A chunk with a top-level ``error`` and ``finish_reason: "error"``."""
        status = self.status_for(kind)
        text = message or self.error_payload(kind, status, None, None)["error"]["message"]
        chunk = self._chunk({"content": ""}, "error")
        chunk["error"] = {"code": status, "message": text}
        return sse_event(chunk)

    def empty_stream(self) -> bytes:
        """A keep-alive comment, then the OpenAI empty stream."""
        return b": OPENROUTER PROCESSING\n\n" + super().empty_stream()


# -- Ollama's OpenAI-compatible endpoint ----------------------------------------------------------


class OllamaOpenAIProfile(_GatewayProfile):
    """Ollama's ``/v1/*`` endpoints (local on port 11434, or ``ollama.com``)."""

    name: ClassVar[str] = "ollama-openai"

    def matches(self, request: RequestInfo) -> bool:
        return request.path.startswith("/v1/") and is_ollama_host(request)

    def error_payload(self, kind: str, status: int, message: str | None, retry_after_s: float | None) -> Any:
        kind_type = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        text = message or OllamaProfile().error_payload(kind, status, None, None)["error"]
        return {"error": {"message": text, "type": kind_type, "param": None, "code": None}}

    def error_headers(self, kind: str, status: int, body: bytes) -> list[tuple[str, str]]:
        return []

    def rate_limit_headers(self, *, now_s: float | None = None) -> tuple[tuple[str, str], ...]:
        return ()

    def error_event(self, *, message: str | None = None, kind: str = "server_error") -> bytes:
        """The bare JSON error line Ollama writes into a started stream (no ``data:``, no ``[DONE]``)."""
        text = message or "an error was encountered while running the model"
        payload = self.error_payload(kind, self.status_for(kind), text, None)
        return json.dumps(payload, separators=(",", ":")).encode() + b"\n"
