"""
Where the proxy sends a request, and which environment points each SDK at the proxy.

With no ``--upstream``, a path's first segment names the provider: ``/openai/v1/chat/completions``
goes to ``https://api.openai.com/v1/chat/completions``. With ``--upstream URL`` every path goes
to that URL (a company gateway, vLLM, LiteLLM), so the client keeps the paths it always uses.
Either way the URL stored in the cassette is the upstream's, never the proxy's.

An upstream URL may have a path of its own (``http://127.0.0.1:8000/v1``). The SDKs do not agree
on what their base URL holds: the OpenAI SDK's ends in ``/v1`` and it appends
``/chat/completions``, the Anthropic SDK appends ``/v1/messages`` to a bare host. So a request
path that begins with the end of the upstream's path does not repeat it (:func:`join_path`):
``/v1/messages`` and ``/messages`` both go to ``http://127.0.0.1:8000/v1/messages``, and every
variable :meth:`RouteTable.environment` exports reaches the upstream's path once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .._exceptions import ConfigError
from .._scrub import strip_userinfo

__all__ = ["PROXY_URL_ENV", "KNOWN_ROUTES", "Route", "RouteTable", "join_path", "parse_route"]

#: Our own variable: the proxy's base URL, for clients that build their base URL themselves.
PROXY_URL_ENV = "LLMCASSETTE_PROXY_URL"


@dataclass(frozen=True)
class Route:
    """
    A provider reachable through the proxy at ``/<name>``.

    ``env`` maps each environment variable an SDK reads its base URL from to the path that
    variable needs after the route (the OpenAI SDK expects ``/v1`` in its base URL, the Anthropic
    SDK does not).
    """

    name: str
    upstream: str
    env: Mapping[str, str] = field(default_factory=dict)


#: The providers with a route of their own, and the SDK variables that point at each.
KNOWN_ROUTES: tuple[Route, ...] = (
    Route("openai", "https://api.openai.com", {"OPENAI_BASE_URL": "/v1", "OPENAI_API_BASE": "/v1"}),
    Route("anthropic", "https://api.anthropic.com", {"ANTHROPIC_BASE_URL": "", "ANTHROPIC_API_BASE": ""}),
    Route(
        "gemini",
        "https://generativelanguage.googleapis.com",
        {"GOOGLE_GEMINI_BASE_URL": "", "GEMINI_API_BASE": ""},
    ),
    Route("ollama", "http://127.0.0.1:11434", {"OLLAMA_HOST": "", "OLLAMA_API_BASE": ""}),
    Route("groq", "https://api.groq.com", {"GROQ_BASE_URL": ""}),
    Route("mistral", "https://api.mistral.ai"),
    Route("openrouter", "https://openrouter.ai"),
)

# With a single upstream, every SDK variable points at the proxy's root.
_ROOT_ENV: dict[str, str] = {name: suffix for route in KNOWN_ROUTES for name, suffix in route.env.items()}


def _check_upstream(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"llmcassette: {what} {url!r} is not an http(s) URL; give one such as "
            "'https://api.openai.com' or 'http://127.0.0.1:4000'."
        )
    return url.rstrip("/")


def join_path(upstream: str, path: str) -> str:
    """
    The URL of ``path`` under ``upstream``, with the path's first segments left out where they
    repeat the last segments of the upstream's own path (the longest such overlap):
    ``join_path("http://h/v1", "/v1/messages")`` and ``join_path("http://h/v1", "/messages")``
    are both ``"http://h/v1/messages"``; ``join_path("http://h/gw", "/v1/messages")`` is
    ``"http://h/gw/v1/messages"``. ``upstream`` has no trailing slash; an empty ``path`` is the
    upstream itself.
    """
    rest = path.lstrip("/")
    if not rest:
        return upstream if not path else upstream + "/"
    base = [segment for segment in urlsplit(upstream).path.split("/") if segment]
    segments = rest.split("/")
    for overlap in range(min(len(base), len(segments)), 0, -1):
        if base[-overlap:] == segments[:overlap]:
            segments = segments[overlap:]
            break
    return "/".join([upstream, *segments]) if segments else upstream


def parse_route(spec: str) -> Route:
    """Parse a ``NAME=URL`` route option: a known provider's upstream replaced, or a new route."""
    name, sep, url = spec.partition("=")
    name = name.strip().strip("/")
    if not sep or not name or "/" in name:
        raise ConfigError(
            f"llmcassette: route {spec!r} is not NAME=URL; write it like 'openai=http://127.0.0.1:8000'."
        )
    known = {route.name: route for route in KNOWN_ROUTES}
    env = known[name].env if name in known else {}
    return Route(name, _check_upstream(url.strip(), f"the upstream of route {name!r}"), env)


class RouteTable:
    """Maps a path on the proxy to the upstream URL it stands for."""

    def __init__(self, *, upstream: str | None = None, routes: Iterable[Route] = ()) -> None:
        self.upstream = _check_upstream(upstream, "--upstream") if upstream is not None else None
        table = {} if self.upstream is not None else {route.name: route for route in KNOWN_ROUTES}
        for route in routes:
            table[route.name] = route
        self.routes: dict[str, Route] = table

    def resolve(self, path: str) -> tuple[Route | None, str] | None:
        """
        The route for ``path`` and the upstream URL (without query) it maps to, or None when no
        route takes it. A path under no route goes to ``--upstream`` when there is one.
        """
        name, _, rest = path.lstrip("/").partition("/")
        route = self.routes.get(name)
        if route is not None:
            return route, join_path(route.upstream, rest)
        if self.upstream is not None:
            return None, join_path(self.upstream, path if path.startswith("/") else "/" + path)
        return None

    def environment(self, proxy_url: str) -> dict[str, str]:
        """The variables that point every SDK this table serves at the proxy."""
        proxy_url = proxy_url.rstrip("/")
        env = {PROXY_URL_ENV: proxy_url}
        if self.upstream is not None:
            env.update({name: proxy_url + suffix for name, suffix in _ROOT_ENV.items()})
        for route in self.routes.values():
            env.update({name: f"{proxy_url}/{route.name}{suffix}" for name, suffix in route.env.items()})
        return env

    def describe(self) -> list[str]:
        """One line per route, for the proxy's start-up banner and its 404 answers."""
        # Printed and sent in error answers: an upstream's credentials (`user:password@`) are not.
        lines = [
            f"/{route.name}/... -> {strip_userinfo(route.upstream)}/..." for route in self.routes.values()
        ]
        if self.upstream is not None:
            lines.append(f"/... -> {strip_userinfo(self.upstream)}/...")
        return lines
