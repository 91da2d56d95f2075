"""
Request matching: which recorded interaction answers a request.

A request is reduced to a key made of the parts named in ``match_on`` (by default method, URL and
body). URLs are normalised (case of scheme and host, default ports, query order, fragments), JSON
bodies are compared as canonical JSON with volatile fields left out. Keys are hashable, so a
cassette is an index and finding a match costs the same whatever the cassette's size.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ._exceptions import ConfigError

__all__ = [
    "DEFAULT_IGNORED_BODY_FIELDS",
    "DEFAULT_MATCH_ON",
    "MATCHERS",
    "Matcher",
    "RequestParts",
    "json_differences",
]

#: What a request is matched on unless a cassette says otherwise.
DEFAULT_MATCH_ON: tuple[str, ...] = ("method", "url", "body")

#: JSON body fields that vary from run to run without changing what is asked (user and cache ids).
DEFAULT_IGNORED_BODY_FIELDS: tuple[str, ...] = (
    "user",
    "metadata.user_id",
    "safety_identifier",
    "prompt_cache_key",
)

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class RequestParts:
    """A request reduced to what matching looks at (URL and body already scrubbed)."""

    method: str
    url: str
    body: bytes

    @property
    def split(self) -> tuple[str, str, int | None, str, tuple[tuple[str, str], ...]]:
        return _split_url(self.url)


# Cached by URL: a cassette's requests, and a suite's, go to a few URLs again and again.
@functools.lru_cache(maxsize=4096)
def _split_url(url: str) -> tuple[str, str, int | None, str, tuple[tuple[str, str], ...]]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port != _DEFAULT_PORTS.get(scheme) else None
    # Percent-encoding differs between clients (botocore writes %3A where httpx keeps ':').
    path = unquote(parts.path.replace("%2F", "%252F").replace("%2f", "%252f")) or "/"
    query = tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return scheme, host, port, path, query


@functools.lru_cache(maxsize=64)
def _paths(fields: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(field.split(".")) for field in fields)


def _canonical_body(body: bytes, ignored: tuple[tuple[str, ...], ...]) -> Hashable:
    head = body.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            value = json.loads(body)
        except ValueError:
            return body
        for path in ignored:
            _drop(value, path)
        return ("json", json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    return body


def _drop(value: Any, path: tuple[str, ...]) -> None:
    if not path:
        return
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        targets = list(value) if head == "*" else [head] if head in value else []
        for key in targets:
            if rest:
                _drop(value[key], rest)
            else:
                del value[key]
    elif isinstance(value, list) and (head == "*" or head.isdigit()):
        indexes = range(len(value)) if head == "*" else [int(head)] if int(head) < len(value) else []
        for index in indexes:
            if rest:
                _drop(value[index], rest)
            else:
                # An ignored item is blanked, not removed: the items after it keep their places.
                value[index] = None


def _method(parts: RequestParts, _: Any) -> Hashable:
    return parts.method.upper()


def _url(parts: RequestParts, _: Any) -> Hashable:
    return parts.split


def _scheme(parts: RequestParts, _: Any) -> Hashable:
    return parts.split[0]


def _host(parts: RequestParts, _: Any) -> Hashable:
    return parts.split[1]


def _port(parts: RequestParts, _: Any) -> Hashable:
    return parts.split[2]


def _path(parts: RequestParts, _: Any) -> Hashable:
    return parts.split[3]


def _query(parts: RequestParts, _: Any) -> Hashable:
    return parts.split[4]


def _body(parts: RequestParts, ignored: tuple[tuple[str, ...], ...]) -> Hashable:
    return _canonical_body(parts.body, ignored)


#: The parts of a request that ``match_on`` can name.
MATCHERS: dict[str, Callable[[RequestParts, Any], Hashable]] = {
    "method": _method,
    "url": _url,
    "uri": _url,
    "scheme": _scheme,
    "host": _host,
    "port": _port,
    "path": _path,
    "query": _query,
    "body": _body,
}


class Matcher:
    """Turns requests into match keys, and explains why a request matched nothing."""

    def __init__(
        self,
        match_on: Sequence[str] = DEFAULT_MATCH_ON,
        *,
        ignored_body_fields: Sequence[str] = DEFAULT_IGNORED_BODY_FIELDS,
    ) -> None:
        unknown = [name for name in match_on if name not in MATCHERS]
        if unknown:
            raise ConfigError(
                f"llmcassette: `match_on` names unknown request parts {unknown!r}; "
                f"choose from {sorted(MATCHERS)!r}."
            )
        if not match_on:
            raise ConfigError(
                "llmcassette: `match_on` is empty, so any request would match any recording; "
                f"name at least one of {sorted(MATCHERS)!r}."
            )
        self.match_on = tuple(match_on)
        self.ignored_body_fields = tuple(ignored_body_fields)
        self._ignored = tuple(tuple(f.split(".")) for f in ignored_body_fields)
        self._functions = tuple(MATCHERS[name] for name in self.match_on)

    def key(self, parts: RequestParts, *, volatile: tuple[str, ...] = ()) -> tuple[Hashable, ...]:
        """The match key of a request; ``volatile`` adds body fields to leave out (a profile's)."""
        ignored = self._ignored + _paths(volatile) if volatile else self._ignored
        return tuple(function(parts, ignored) for function in self._functions)

    def differences(self, wanted: RequestParts, recorded: RequestParts) -> list[str]:
        """Sentences saying how a recorded request differs from a wanted one, on the matched parts."""
        found: list[str] = []
        for name, function in zip(self.match_on, self._functions, strict=True):
            if name == "uri":
                name = "url"
            if function(wanted, self._ignored) == function(recorded, self._ignored):
                continue
            if name == "body":
                found.append(_body_difference(wanted.body, recorded.body, self._ignored))
            elif name == "url":
                found.append(f"URL differs: recorded {recorded.url!r}")
            elif name == "method":
                found.append(f"method differs: recorded {recorded.method}")
            else:
                value = function(recorded, self._ignored)
                found.append(f"{name} differs: recorded {value!r}")
        return found


def _body_difference(wanted: bytes, recorded: bytes, ignored: tuple[tuple[str, ...], ...]) -> str:
    try:
        wanted_value = json.loads(wanted)
        recorded_value = json.loads(recorded)
    except ValueError:
        return f"body differs ({len(recorded)} bytes recorded, {len(wanted)} bytes sent)"
    for path in ignored:
        _drop(wanted_value, path)
        _drop(recorded_value, path)
    diffs = json_differences(recorded_value, wanted_value)
    shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
    return f"body differs: {shown}"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def json_differences(recorded: Any, sent: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, one phrase per difference, paths in ``a.b[0]`` form."""
    where = path or "(root)"
    if isinstance(recorded, dict) and isinstance(sent, dict):
        diffs: list[str] = []
        for key in recorded.keys() | sent.keys():
            sub = f"{path}.{key}" if path else str(key)
            if key not in sent:
                diffs.append(f"`{sub}` recorded but not sent")
            elif key not in recorded:
                diffs.append(f"`{sub}` sent but not recorded")
            else:
                diffs.extend(json_differences(recorded[key], sent[key], sub))
        return sorted(diffs)
    if isinstance(recorded, list) and isinstance(sent, list):
        if len(recorded) != len(sent):
            return [f"`{where}` has {len(sent)} items, recorded {len(recorded)}"]
        diffs = []
        for index, (a, b) in enumerate(zip(recorded, sent, strict=True)):
            diffs.extend(json_differences(a, b, f"{path}[{index}]"))
        return diffs
    # Leaves compare as JSON text, as match keys do: 1 and 1.0, 0.0 and -0.0 differ; NaN is NaN.
    if _leaf(recorded) != _leaf(sent):
        return [f"`{where}` is {_short(sent)}, recorded {_short(recorded)}"]
    return []


def _leaf(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
