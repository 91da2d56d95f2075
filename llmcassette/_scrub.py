"""
Secret scrubbing: what never reaches a cassette.

On write, auth headers, cookies and org/project ids lose their values, secret query parameters
(Gemini's ``key=``) and key-shaped strings in bodies are replaced. On replay the same scrubbing is
applied to each incoming request before matching, so a scrubbed cassette still matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

__all__ = [
    "DEFAULT_KEY_PATTERNS",
    "DEFAULT_SECRET_HEADERS",
    "DEFAULT_SECRET_QUERY_PARAMS",
    "PLACEHOLDER",
    "Scrubber",
    "remap_chunks",
    "strip_userinfo",
]

#: How many scrubbed URLs a scrubber remembers (it forgets them all when it has seen more).
_SCRUBBED_URLS_KEPT = 1024

#: What a scrubbed value becomes.
PLACEHOLDER = "REDACTED"

#: Header names (any case) whose values are secrets or identify an account, in either direction.
DEFAULT_SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "x-goog-user-project",
        "ocp-apim-subscription-key",
        "x-amz-security-token",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
        "anthropic-organization-id",
    }
)

#: Query parameters (any case) whose values are secrets.
DEFAULT_SECRET_QUERY_PARAMS = frozenset(
    {
        "key",
        "api_key",
        "api-key",
        "apikey",
        "access_token",
        "x-goog-api-key",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "sig",
    }
)

# A key is never part of a longer token ("task-...", url-safe base64): a match preceded by a token
# character is skipped. That check is done in code rather than as a lookbehind, which would stop
# the regex engine from scanning for the patterns' first characters.
_TOKEN_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

#: Named regular expressions for provider key shapes found in bodies.
DEFAULT_KEY_PATTERNS: tuple[tuple[str, str], ...] = (
    ("anthropic-key", r"sk-ant-[A-Za-z0-9]+-[A-Za-z0-9_-]{16,}"),
    ("openrouter-key", r"sk-or-v1-[a-f0-9]{32,}"),
    ("openai-key", r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    ("google-key", r"AIza[0-9A-Za-z_-]{35}"),
    ("google-oauth-token", r"ya29\.[0-9A-Za-z_-]{20,}"),
    ("groq-key", r"gsk_[A-Za-z0-9]{20,}"),
    ("xai-key", r"xai-[A-Za-z0-9]{20,}"),
    ("huggingface-token", r"hf_[A-Za-z0-9]{20,}"),
    ("aws-access-key", r"(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])"),
    ("github-token", r"gh[pousr]_[A-Za-z0-9]{36,}"),
    ("jwt", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
)

_SCHEMES = ("bearer ", "basic ", "token ", "aws4-hmac-sha256 ")

Span = tuple[int, int, int]  # start and end in the old bytes, length of what replaced them


@dataclass(frozen=True)
class Scrubber:
    """
    What to scrub, and how. The defaults cover the providers llmcassette knows; extend them with
    :func:`dataclasses.replace`, for example::

        Scrubber(secret_headers=DEFAULT_SECRET_HEADERS | {"x-my-gateway-token"})

    ``secrets`` lists literal strings (a token from your environment) to replace wherever they
    appear: URL, headers and bodies.
    """

    secret_headers: frozenset[str] = DEFAULT_SECRET_HEADERS
    secret_query_params: frozenset[str] = DEFAULT_SECRET_QUERY_PARAMS
    key_patterns: tuple[tuple[str, str], ...] = DEFAULT_KEY_PATTERNS
    secrets: tuple[str, ...] = ()
    _body_regex: re.Pattern[bytes] | None = field(init=False, repr=False, compare=False, default=None)
    _named_regex: re.Pattern[bytes] | None = field(init=False, repr=False, compare=False, default=None)
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())
    _scrubbed_urls: dict[str, str] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "secret_headers", frozenset(h.lower() for h in self.secret_headers))
        object.__setattr__(
            self, "secret_query_params", frozenset(q.lower() for q in self.secret_query_params)
        )
        patterns = [pattern for _, pattern in self.key_patterns]
        names = [name for name, _ in self.key_patterns]
        for secret in self.secrets:
            if secret:
                patterns.append(re.escape(secret))
                names.append("secret")
        # Two compilations of one alternation. Named groups keep the regex engine from skipping
        # ahead to the characters a key can start with, which makes scanning a body some 20 times
        # slower; so bodies are scanned without them, and the named one only tells which pattern
        # a (rare) match is.
        regex = re.compile("|".join(f"(?:{p})" for p in patterns).encode()) if patterns else None
        named = re.compile("|".join(f"(?P<k{i}>{p})" for i, p in enumerate(patterns)).encode())
        object.__setattr__(self, "_body_regex", regex)
        object.__setattr__(self, "_named_regex", named if patterns else None)
        object.__setattr__(self, "_names", tuple(names))

    def _replacement(self, match: re.Match[bytes]) -> bytes:
        which = self._named_regex.match(match.string, match.start()) if self._named_regex else None
        name = self._names[int(which.lastgroup[1:])] if which is not None and which.lastgroup else "secret"
        start = match.start()
        if name != "secret" and start and match.string[start - 1] in _TOKEN_CHARS:
            return match.group()
        return f"{PLACEHOLDER}-{name}".encode()

    def scrub_header_value(self, name: str, value: str) -> str:
        """The value to store for header ``name``."""
        lname = name.lower()
        if lname not in self.secret_headers:
            return self._scrub_text(value)
        if lname in ("cookie",):
            # Joined with the separators they came with: each part keeps its own leading space.
            return ";".join(_redact_cookie(part) for part in value.split(";"))
        if lname == "set-cookie":
            first, sep, rest = value.partition(";")
            return _redact_cookie(first) + sep + rest
        lowered = value.lower()
        for scheme in _SCHEMES:
            if lowered.startswith(scheme):
                return value[: len(scheme)] + PLACEHOLDER
        return PLACEHOLDER

    def scrub_headers(self, headers: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
        """Headers as they may be stored."""
        return {name: [self.scrub_header_value(name, v) for v in values] for name, values in headers.items()}

    def scrub_url(self, url: str) -> str:
        """The URL without userinfo and with secret query parameters replaced."""
        # A suite sends the same few URLs again and again: each is scrubbed once.
        cache = self._scrubbed_urls
        scrubbed = cache.get(url)
        if scrubbed is None:
            if len(cache) >= _SCRUBBED_URLS_KEPT:
                cache.clear()
            scrubbed = cache[url] = self._scrub_url(url)
        return scrubbed

    def _scrub_url(self, url: str) -> str:
        url = strip_userinfo(url)
        # Only the secret values change: the rest of the query keeps its order, its encoding and
        # its valueless flags, so the stored URL is the one the client sent. The split is
        # urlsplit's (the fragment first, then the first "?").
        rest, hash_mark, fragment = url.partition("#")
        base, question_mark, query = rest.partition("?")
        if query:
            pairs = query.split("&")
            for index, pair in enumerate(pairs):
                name, equals, _ = pair.partition("=")
                if equals and unquote_plus(name).lower() in self.secret_query_params:
                    pairs[index] = f"{name}={PLACEHOLDER}"
            url = base + question_mark + "&".join(pairs) + hash_mark + fragment
        return self._scrub_text(url)

    def scrub_text(self, text: str) -> str:
        """``text`` with key-shaped strings and listed secrets replaced (for a message)."""
        return self._scrub_text(text)

    def _scrub_text(self, text: str) -> str:
        if self._body_regex is None or not text:
            return text
        # `surrogatepass` round-trips every surrogate: those a byte that is not UTF-8 was read as
        # (`surrogateescape`'s) and those a JSON body escaped alone (`"\ud801"`), which
        # `surrogateescape` cannot encode.
        encoded = text.encode("utf-8", "surrogatepass")
        if self._body_regex.search(encoded) is None:
            return text
        return self._body_regex.sub(self._replacement, encoded).decode("utf-8", "surrogatepass")

    def scrub_body(self, content: bytes) -> bytes:
        """The body with key-shaped strings and listed secrets replaced."""
        if self._body_regex is None or not content or self._body_regex.search(content) is None:
            return content
        return self._body_regex.sub(self._replacement, content)

    def scrub_body_spans(self, content: bytes) -> tuple[bytes, list[Span]]:
        """Like :meth:`scrub_body`, and say which byte ranges changed (for chunk boundaries)."""
        if self._body_regex is None or not content:
            return content, []
        spans: list[Span] = []
        out: list[bytes] = []
        last = 0
        for match in self._body_regex.finditer(content):
            replacement = self._replacement(match)
            if replacement == match.group():
                continue
            out.append(content[last : match.start()])
            out.append(replacement)
            spans.append((match.start(), match.end(), len(replacement)))
            last = match.end()
        if not spans:
            return content, []
        out.append(content[last:])
        return b"".join(out), spans


def strip_userinfo(url: str) -> str:
    """
    ``url`` without the ``user:password@`` part of its authority; unchanged when it has none.

    The whole userinfo goes, not only the password: a token is often passed as the user name
    (``https://TOKEN@host``), and the credentials a client built from it travel in the
    ``Authorization`` header, which is scrubbed. The split is urlsplit's: the authority ends at
    the first ``/``, ``?`` or ``#``, and the userinfo at its last ``@``.
    """
    if "@" not in url:  # no userinfo can be there: the common case, decided at C speed
        return url
    marker = url.find("://")
    if marker <= 0 or not _is_scheme(url[:marker]):
        return url
    start = marker + 3
    end = len(url)
    for delimiter in "/?#":
        found = url.find(delimiter, start, end)
        if found >= 0:
            end = found
    at = url.rfind("@", start, end)
    return url if at < 0 else url[:start] + url[at + 1 :]


def _is_scheme(text: str) -> bool:
    return (
        text[0].isascii()
        and text[0].isalpha()
        and all(c.isascii() and (c.isalnum() or c in "+-.") for c in text)
    )


def _redact_cookie(pair: str) -> str:
    name, sep, _ = pair.partition("=")
    return f"{name}={PLACEHOLDER}" if sep else pair


def remap_chunks(chunks: list[int], spans: list[Span]) -> list[int]:
    """
    Chunk lengths after replacing ``spans``: a boundary inside a replaced range moves to its end,
    so no chunk splits a placeholder.
    """
    if not spans:
        return chunks
    boundaries: list[int] = []
    position = 0
    for length in chunks:
        position += length
        boundaries.append(position)
    new_boundaries: list[int] = []
    shift = 0
    index = 0
    for boundary in boundaries:
        while index < len(spans) and spans[index][1] <= boundary:
            start, end, new_len = spans[index]
            shift += new_len - (end - start)
            index += 1
        moved = boundary + shift
        if index < len(spans) and spans[index][0] < boundary:
            start, end, new_len = spans[index]
            moved = start + shift + new_len
        new_boundaries.append(moved)
    lengths = []
    previous = 0
    for boundary in new_boundaries:
        lengths.append(boundary - previous)
        previous = boundary
    return lengths
