"""
Provider profiles, detected from each request (see :mod:`llmcassette.providers._base`).

Profiles are tried in ``PROFILES`` order, most specific first; the generic profile takes the rest.
The order matters where two profiles could claim a request:

1. ``azure-openai`` (Azure hosts, ``/openai/deployments/``), before anything path-based;
2. ``openai-responses`` (``/v1/responses`` on any other host), before the host-based profiles,
   so that Responses calls to Groq or Ollama get Responses shapes;
3. ``openai`` (``api.openai.com``), ``anthropic``, ``gemini`` (Claude on Vertex AI is Anthropic,
   so Anthropic comes first), ``bedrock``, ``ollama`` (native ``/api/*``);
4. the gateways by host: ``groq``, ``mistral``, ``openrouter``, ``ollama-openai``;
5. ``openai-compatible``: any ``/chat/completions`` path left over.

A detected profile is refined for the request (``Profile.refine``): Gemini without ``alt=sse``
streams a JSON array, Azure's Responses endpoints stream Responses events, Ollama's generate
endpoint writes ``response`` rather than ``message``.
"""

from __future__ import annotations

from .._exceptions import ConfigError
from .._exchange import RequestInfo
from ._base import ERROR_KINDS, ErrorResponse, Profile, Summary, ToolCall
from .anthropic import AnthropicProfile
from .bedrock import BedrockProfile
from .compat import (
    GroqProfile,
    MistralProfile,
    OllamaOpenAIProfile,
    OpenAICompatibleProfile,
    OpenRouterProfile,
)
from .gemini import GeminiProfile
from .ollama import OllamaProfile
from .openai import AzureOpenAIProfile, OpenAIProfile, OpenAIResponsesProfile

__all__ = [
    "ERROR_KINDS",
    "GENERIC",
    "PROFILES",
    "ErrorResponse",
    "Profile",
    "Summary",
    "ToolCall",
    "detect_profile",
    "get_profile",
]

#: The fallback for upstreams no profile recognises.
GENERIC = Profile()

#: Every known profile, in detection order.
PROFILES: list[Profile] = [
    AzureOpenAIProfile(),
    OpenAIResponsesProfile(),
    OpenAIProfile(),
    AnthropicProfile(),
    GeminiProfile(),
    BedrockProfile(),
    OllamaProfile(),
    GroqProfile(),
    MistralProfile(),
    OpenRouterProfile(),
    OllamaOpenAIProfile(),
    OpenAICompatibleProfile(),
]


def get_profile(name: str) -> Profile:
    """The profile called ``name``, or a clear error listing the known ones."""
    for profile in [*PROFILES, GENERIC]:
        if profile.name == name:
            return profile
    known = ", ".join(p.name for p in [*PROFILES, GENERIC])
    raise ConfigError(f"llmcassette: unknown provider profile {name!r}; known profiles: {known}.")


def detect_profile(request: RequestInfo, *, override: str | None = None) -> Profile:
    """
    The profile of ``request``: ``override`` when given, else the first that recognises it;
    either way refined for the request (see ``Profile.refine``).
    """
    if override is not None:
        return get_profile(override).refine(request)
    for profile in PROFILES:
        if profile.matches(request):
            return profile.refine(request)
    return GENERIC
