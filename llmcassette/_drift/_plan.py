"""
What a drift run would send: for each recorded interaction, the live request that asks the same
question again (its target, fresh credentials, capped output tokens), or why it cannot be sent.

Planning is pure: the environment is passed in, nothing is read from the network or written, so
``llmcassette drift --dry-run`` shows exactly this plan.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._exchange import RequestInfo
from .._models import Interaction
from .._scrub import DEFAULT_SECRET_HEADERS, DEFAULT_SECRET_QUERY_PARAMS
from ..providers import detect_profile

__all__ = ["CREDENTIALS", "Credential", "Planned", "plan_interaction", "token_caps"]

#: Headers a re-sent request never copies from the recording: the transport sets them afresh.
_TRANSPORT_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade"}
)


@dataclass(frozen=True)
class Credential:
    """How one provider family is authenticated: environment variables tried in turn, and the header."""

    env: tuple[str, ...]
    header: str
    bearer: bool = False

    def headers(self, environ: Mapping[str, str]) -> tuple[str, dict[str, str]] | None:
        """The variable used and the headers it gives, or None when none of ``env`` is set."""
        for name in self.env:
            value = environ.get(name, "")
            if value:
                return name, {self.header: f"Bearer {value}" if self.bearer else value}
        return None


_OPENAI = Credential(("OPENAI_API_KEY",), "authorization", bearer=True)

#: Credentials per provider profile. Profiles absent here (Ollama, a local OpenAI-compatible
#: server) are sent without credentials unless the recording shows the call carried some, in
#: which case ``--bearer-env`` names the variable that holds the gateway's token.
CREDENTIALS: dict[str, Credential] = {
    "openai": _OPENAI,
    "openai-responses": _OPENAI,
    "azure-openai": Credential(("AZURE_OPENAI_API_KEY",), "api-key"),
    "anthropic": Credential(("ANTHROPIC_API_KEY",), "x-api-key"),
    "gemini": Credential(("GEMINI_API_KEY", "GOOGLE_API_KEY"), "x-goog-api-key"),
    "groq": Credential(("GROQ_API_KEY",), "authorization", bearer=True),
    "mistral": Credential(("MISTRAL_API_KEY",), "authorization", bearer=True),
    "openrouter": Credential(("OPENROUTER_API_KEY",), "authorization", bearer=True),
}

#: Body fields that cap a model's output, by where they sit: a request that carries one larger
#: than the run's cap is sent with the cap instead.
_TOKEN_FIELDS: tuple[tuple[str, ...], ...] = (
    ("max_tokens",),
    ("max_completion_tokens",),
    ("max_output_tokens",),
    ("generationConfig", "maxOutputTokens"),
    ("generation_config", "max_output_tokens"),
    ("options", "num_predict"),
)

#: Request body fields that refer to state kept by the provider, which the cassette does not hold.
_STATE_FIELDS = (
    "previous_response_id",
    "conversation",
    "file_id",
    "file_ids",
    "thread_id",
    "assistant_id",
    "vector_store_ids",
    "cachedContent",
    "cached_content",
    "container",
)

#: Path segments of endpoints that manage provider-side state (files, threads, batches, ...).
_STATE_PATHS = (
    "files",
    "uploads",
    "threads",
    "assistants",
    "batches",
    "vector_stores",
    "fine_tuning",
    "fine-tunes",
    "cachedContents",
    "containers",
)


@dataclass
class Planned:
    """One recorded interaction and what a drift run does with it."""

    cassette: Path
    index: int
    interaction: Interaction
    provider: str
    method: str
    #: The URL the request goes to (the recorded one, or moved to ``--upstream``).
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: Why it is not sent, or None when it is.
    skip: str | None = None
    #: The environment variable whose credential is sent, if any.
    credential_env: str | None = None
    #: Output-token fields lowered by the cap: key path -> (recorded value, value sent).
    capped: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def call(self) -> str:
        """Method and path, as reports name the call."""
        return f"{self.method} {urlsplit(self.url).path}"


def token_caps(value: Any, cap: int) -> dict[str, tuple[int, int]]:
    """
    Lower every output-token field of a JSON request body above ``cap`` to ``cap``, in place;
    return what was lowered (dotted key path -> before, after).
    """
    lowered: dict[str, tuple[int, int]] = {}
    if not isinstance(value, dict):
        return lowered
    for keys in _TOKEN_FIELDS:
        holder: Any = value
        for key in keys[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if not isinstance(holder, dict):
            continue
        current = holder.get(keys[-1])
        if isinstance(current, int) and not isinstance(current, bool) and current > cap:
            holder[keys[-1]] = cap
            lowered[".".join(keys)] = (current, cap)
    return lowered


def _state_reason(url: str, value: Any) -> str | None:
    segments = urlsplit(url).path.strip("/").split("/")
    for segment in segments:
        if segment in _STATE_PATHS:
            return f"the endpoint /{segment} manages provider-side state the cassette does not hold"
    if isinstance(value, dict):
        for name in _STATE_FIELDS:
            if value.get(name) not in (None, "", [], {}):
                return f"the request refers to provider-side state ({name}) that the cassette does not hold"
    return None


def _moved(url: str, upstream: str | None) -> str:
    if upstream is None:
        return url
    target, recorded = urlsplit(upstream), urlsplit(url)
    path = target.path.rstrip("/") + recorded.path
    return urlunsplit((target.scheme, target.netloc, path, recorded.query, ""))


def _without_secret_query(url: str) -> str:
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k.lower() not in DEFAULT_SECRET_QUERY_PARAMS]
    if len(kept) == len(pairs):
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))


def _carried_secret(headers: Iterable[str], url: str) -> bool:
    if any(name.lower() in DEFAULT_SECRET_HEADERS for name in headers):
        return True
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    return any(key.lower() in DEFAULT_SECRET_QUERY_PARAMS for key, _ in query)


def plan_interaction(
    cassette: Path,
    index: int,
    interaction: Interaction,
    *,
    environ: Mapping[str, str],
    upstream: str | None = None,
    bearer_env: str | None = None,
    max_output_tokens: int | None = None,
) -> Planned:
    """What a drift run sends for ``interaction`` (see the module docstring)."""
    request = interaction.request
    method = request.method.upper()
    recorded_url = request.uri.split("#", 1)[0]
    body = request.content
    info = RequestInfo(method=method, url=recorded_url, body=body)
    provider = detect_profile(info).name
    if upstream is None and provider == "azure-openai":
        # Azure resources have names of their own: the environment says which one to ask.
        upstream = environ.get("AZURE_OPENAI_ENDPOINT") or None
    url = _without_secret_query(_moved(recorded_url, upstream))
    planned = Planned(cassette, index, interaction, provider, method, url, body=body)
    if request.uri == "*":
        planned.skip = "it is a response saved on its own, with no request to send"
        return planned
    headers: dict[str, str] = {}
    for name, values in request.headers.items():
        lname = name.lower()
        if lname in _TRANSPORT_HEADERS or lname in DEFAULT_SECRET_HEADERS or not values:
            continue
        headers[name] = values[0]
    value = info.json
    reason = _state_reason(recorded_url, value)
    if reason is not None:
        planned.skip = reason
        return planned
    credential = CREDENTIALS.get(provider)
    if bearer_env is not None and credential is None:
        credential = Credential((bearer_env,), "authorization", bearer=True)
    if credential is not None:
        found = credential.headers(environ)
        if found is None:
            names = " or ".join(credential.env)
            planned.skip = f"no credential: set {names} to re-send {provider} calls"
            return planned
        planned.credential_env, extra = found
        headers = {k: v for k, v in headers.items() if k.lower() not in {h.lower() for h in extra}}
        headers.update(extra)
    elif _carried_secret(request.headers, request.uri):
        planned.skip = (
            "the recorded call carried a credential and no variable holds one for this upstream: "
            "give --bearer-env NAME"
        )
        return planned
    if max_output_tokens is not None and isinstance(value, dict):
        planned.capped = token_caps(value, max_output_tokens)
        if planned.capped:
            body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    planned.headers = headers
    planned.body = body
    return planned
