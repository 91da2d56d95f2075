"""
Request matching: which recorded interaction answers a request.

A request is reduced to a key made of the parts named in ``match_on`` (by default method, URL and
body). URLs are normalised (case of scheme and host, default ports, query order, fragments), JSON
bodies are compared as canonical JSON with volatile fields left out. Keys are hashable, so a
cassette is an index and finding a match costs the same whatever the cassette's size.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ._bodies import MAX_JSON_DEPTH, NOT_JSON as BODY_NOT_JSON, json_value
from ._exceptions import ConfigError

__all__ = [
    "DEFAULT_IGNORED_BODY_FIELDS",
    "DEFAULT_MATCH_ON",
    "DIGEST_OVER",
    "MATCHERS",
    "NOT_JSON",
    "Digested",
    "Matcher",
    "PreparedBody",
    "Probe",
    "RequestParts",
    "compact",
    "json_differences",
    "parse_body",
    "plain_json",
    "prepare_body",
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
# How much of a value a miss's message shows.
_SHORT_CHARS = 60


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


class _NotJson:
    """The parsed value of a body that is not JSON."""

    def __repr__(self) -> str:
        return "NOT_JSON"


#: What :func:`parse_body` gives for a body that is not JSON.
NOT_JSON: Any = _NotJson()


def parse_body(body: bytes) -> Any:
    """
    A body as matching reads it: parsed JSON, or :data:`NOT_JSON` (also for JSON nested deeper
    than :data:`~llmcassette._bodies.MAX_JSON_DEPTH`, whose bytes are compared instead).
    """
    if body.lstrip()[:1] not in (b"{", b"["):
        return NOT_JSON
    value = json_value(body)
    return NOT_JSON if value is BODY_NOT_JSON else value


_LEAVES = frozenset({str, int, float, bool, type(None)})


def plain_json(value: Any) -> bool:
    """
    True when ``value`` is a JSON object or array made of JSON's own types only (string keys),
    nested no deeper than :data:`~llmcassette._bodies.MAX_JSON_DEPTH`: then :func:`parse_body`
    of its JSON text gives an equal value, and matching may read the value instead of parsing
    that text again (a recorded request's ``parsed_body``). Anything else (a key YAML read as a
    number, a date) is for the text's own parse to judge.
    """
    return type(value) in (dict, list) and _plain(value, MAX_JSON_DEPTH)


def _plain(value: Any, limit: int) -> bool:
    # The depth counted as `_bodies._within_depth` counts it; a leaf is checked in place, which
    # saves a call per string and number.
    if limit <= 0:
        return False
    leaves = _LEAVES
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            kind = type(item)
            if kind not in leaves and not ((kind is dict or kind is list) and _plain(item, limit - 1)):
                return False
        return True
    for item in value:
        kind = type(item)
        if kind not in leaves and not ((kind is dict or kind is list) and _plain(item, limit - 1)):
            return False
    return True


#: Strings and non-JSON bodies longer than this are compared by their SHA-256: a key that holds a
#: digest hashes and compares in no time, and is small enough to pass between processes.
DIGEST_OVER = 4096


@dataclass(frozen=True, slots=True)
class Digested:
    """A long string (or a body that is not JSON) known by its SHA-256, its length and its start."""

    digest: str
    length: int
    head: str

    @classmethod
    def of(cls, data: str | bytes) -> Digested:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        head = data[:_SHORT_CHARS] if isinstance(data, str) else ""
        return cls(hashlib.sha256(raw).hexdigest(), len(data), head)


def compact(value: Any) -> Any:
    """``value`` with every string longer than :data:`DIGEST_OVER` replaced by its :class:`Digested`."""
    if isinstance(value, str):
        return Digested.of(value) if len(value) > DIGEST_OVER else value
    if isinstance(value, dict):
        return {key: compact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [compact(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class PreparedBody:
    """
    A request body as matching reads it, made ready elsewhere (see :func:`prepare_body`): for
    JSON, its value with long strings digested; otherwise its key. Small whatever the body's
    size, so that it crosses from a worker process in no time.
    """

    is_json: bool
    value: Any
    #: The body's length in bytes.
    size: int


def prepare_body(body: bytes) -> PreparedBody:
    """A (scrubbed) body parsed and made compact for matching: see :class:`PreparedBody`."""
    value = parse_body(body)
    if value is not NOT_JSON:
        try:
            return PreparedBody(True, compact(value), len(body))
        except RecursionError:  # nested deeper than a walk can go: compared as bytes, as keys do
            pass
    return PreparedBody(False, _bytes_key(body), len(body))


def _bytes_key(body: bytes) -> Hashable:
    body = _without_boundary(body)
    return ("bytes", Digested.of(body).digest) if len(body) > DIGEST_OVER else body


# RFC 2046's boundary: 1 to 70 of these characters, not ending in a space.
_BOUNDARY = re.compile(rb"--([0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?])\r\n")
_SAME_BOUNDARY = b"llmcassette-boundary"


def _without_boundary(body: bytes) -> bytes:
    """
    A multipart body with its boundary replaced by a fixed one, any other body as it is. Clients
    draw a new boundary for every request (requests and httpx from ``os.urandom``, aiohttp a
    UUID), so an upload recorded with one is sent again with another. Read from the body alone:
    it opens with the boundary's first delimiter and holds its closing one.
    """
    if body[:2] != b"--":
        return body
    found = _BOUNDARY.match(body)
    if found is None or b"\r\n--" + found[1] + b"--" not in body:
        return body
    return body.replace(b"--" + found[1], b"--" + _SAME_BOUNDARY)


def _canonical(value: Any) -> Hashable:
    """
    A JSON value as a hashable whose equality is that of its canonical JSON text (keys sorted):
    numbers by their JSON spelling (1 and 1.0 differ, as do 0.0 and -0.0), long strings by their
    digest. Building it is one walk over the value, with no text made.
    """
    # JSON's own types first, by exact type, and a container's short strings in place: most
    # leaves are short strings, and a call for each was most of the walk.
    kind = type(value)
    if kind is str:
        return value if len(value) <= DIGEST_OVER else ("$", Digested.of(value).digest)
    if kind is dict:
        return (
            "{",
            tuple(
                sorted(
                    [
                        (key, item if type(item) is str and len(item) <= DIGEST_OVER else _canonical(item))
                        for key, item in value.items()
                    ]
                )
            ),
        )
    if kind is list:
        return (
            "[",
            tuple(
                [
                    item if type(item) is str and len(item) <= DIGEST_OVER else _canonical(item)
                    for item in value
                ]
            ),
        )
    if kind is int or kind is float:
        return ("#", repr(value))
    return _canonical_other(value)


def _canonical_other(value: Any) -> Hashable:
    # What is not one of JSON's own types exactly (a subclass, a Digested): as `_canonical` says.
    if isinstance(value, str):
        return ("$", Digested.of(value).digest) if len(value) > DIGEST_OVER else value
    if isinstance(value, Digested):
        return ("$", value.digest)
    if isinstance(value, dict):
        return ("{", tuple(sorted((key, _canonical(item)) for key, item in value.items())))
    if isinstance(value, list):
        return ("[", tuple(_canonical(item) for item in value))
    if value is None or isinstance(value, bool):
        return ("=", value)
    return ("#", repr(value))


def _without(value: Any, path: tuple[str, ...]) -> Any:
    """``value`` without the field at ``path``; containers on the way are copied, not changed."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        targets = list(value) if head == "*" else [head] if head in value else []
        if not targets:
            return value
        copy = dict(value)
        for key in targets:
            if rest:
                copy[key] = _without(value[key], rest)
            else:
                del copy[key]
        return copy
    if isinstance(value, list) and (head == "*" or head.isdigit()):
        indexes = range(len(value)) if head == "*" else [int(head)] if int(head) < len(value) else []
        if not indexes:
            return value
        items = list(value)
        for index in indexes:
            # An ignored item is blanked, not removed: the items after it keep their places.
            items[index] = _without(value[index], rest) if rest else None
        return items
    return value


@dataclass(frozen=True, slots=True)
class Probe:
    """
    A request reduced once for matching and for explaining a miss: its match key, and its body
    parsed (ignored fields left out) or :data:`NOT_JSON`. A miss compares probes, so the request's
    body is read once however many recordings it is compared with.
    """

    parts: RequestParts
    key: tuple[Hashable, ...]
    body: Any
    #: The body's length in bytes, as matched (scrubbed).
    size: int


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
    return _body_key(parts.body, _ignored_value(parse_body(parts.body), ignored))


def _ignored_value(value: Any, ignored: tuple[tuple[str, ...], ...]) -> Any:
    if value is NOT_JSON:
        return value
    heads = _heads(ignored)
    if type(value) is dict and heads is not None and heads.isdisjoint(value):
        # No ignored field starts at this object's keys (the usual case): one check in C
        # instead of a walk per field (eight with a profile's, 3 µs of a request's key).
        return value
    for path in ignored:
        value = _without(value, path)
    return value


@functools.lru_cache(maxsize=64)
def _heads(ignored: tuple[tuple[str, ...], ...]) -> frozenset[str] | None:
    # The first key of each ignored path, or None when one starts with "*" (any key).
    heads = frozenset(path[0] for path in ignored if path)
    return None if "*" in heads else heads


def _body_key(body: bytes, value: Any) -> Hashable:
    if value is NOT_JSON:
        return _bytes_key(body)
    try:
        return ("json", _canonical(value))
    except RecursionError:  # nested deeper than a walk can go: compared as bytes
        return _bytes_key(body)


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
        # The body's part of a key is made apart (None here): it needs the parsed body.
        self._functions = tuple(None if name == "body" else MATCHERS[name] for name in self.match_on)
        self._reads_body = "body" in self.match_on
        self._ignored_by: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = {}

    def key(self, parts: RequestParts, *, volatile: tuple[str, ...] = ()) -> tuple[Hashable, ...]:
        """The match key of a request; ``volatile`` adds body fields to leave out (a profile's)."""
        return self.probe(parts, volatile=volatile).key

    def probe(
        self, parts: RequestParts, *, volatile: tuple[str, ...] = (), prepared: PreparedBody | None = None
    ) -> Probe:
        """
        A request reduced for matching and explaining, its body parsed once. ``prepared`` is the
        body as :func:`prepare_body` made it elsewhere (off the event loop), if it was; then
        ``parts.body`` is not read.
        """
        ignored = self._ignored
        if volatile:
            ignored = self._ignored_by.get(volatile) or self._ignored_by.setdefault(
                volatile, self._ignored + _paths(volatile)
            )
        value: Any = NOT_JSON
        size = len(parts.body)
        body_key: Hashable = None
        if self._reads_body:
            if prepared is None:
                value = _ignored_value(parse_body(parts.body), ignored)
                body_key = _body_key(parts.body, value)
            elif prepared.is_json:
                value = _ignored_value(prepared.value, ignored)
                body_key, size = ("json", _canonical(value)), prepared.size
            else:
                body_key, size = prepared.value, prepared.size
        functions = self._functions
        key = tuple([body_key if function is None else function(parts, ignored) for function in functions])
        return Probe(parts, key, value, size)

    def differences(self, wanted: RequestParts, recorded: RequestParts) -> list[str]:
        """Sentences saying how a recorded request differs from a wanted one, on the matched parts."""
        return self.explain(self.probe(wanted), self.probe(recorded))

    def explain(self, wanted: Probe, recorded: Probe) -> list[str]:
        """:meth:`differences` between two probes: the bodies are not read again."""
        found: list[str] = []
        for name, mine, theirs in zip(self.match_on, wanted.key, recorded.key, strict=True):
            if mine == theirs:
                continue
            if name == "body":
                found.append(_body_difference(wanted, recorded))
            elif name in ("url", "uri"):
                found.append(f"URL differs: recorded {recorded.parts.url!r}")
            elif name == "method":
                found.append(f"method differs: recorded {recorded.parts.method}")
            else:
                found.append(f"{name} differs: recorded {theirs!r}")
        return found


def _body_difference(wanted: Probe, recorded: Probe) -> str:
    if wanted.body is NOT_JSON or recorded.body is NOT_JSON:
        return f"body differs ({recorded.size} bytes recorded, {wanted.size} bytes sent)"
    diffs = json_differences(recorded.body, wanted.body)
    shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
    return f"body differs: {shown}"


def _short(value: Any) -> str:
    # Only the start is shown, so only the start is written out: a body's string may be megabytes.
    text = json.dumps(_clipped(value, [_SHORT_CHARS]), ensure_ascii=False)
    return text if len(text) <= _SHORT_CHARS else text[: _SHORT_CHARS - 3] + "..."


def _clipped(value: Any, budget: list[int]) -> Any:
    # The value with no more items and characters than can be shown: each costs the budget one.
    budget[0] -= 1
    if isinstance(value, str):
        return value[: _SHORT_CHARS + 1]
    if isinstance(value, Digested):
        return value.head + "..."
    if isinstance(value, dict):
        clipped: dict[str, Any] = {}
        for key, item in value.items():
            if budget[0] <= 0:
                break
            clipped[key] = _clipped(item, budget)
        return clipped
    if isinstance(value, list):
        items: list[Any] = []
        for item in value:
            if budget[0] <= 0:
                break
            items.append(_clipped(item, budget))
        return items
    return value


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
    # Leaves compare as match keys do (as JSON text): 1 and 1.0, 0.0 and -0.0 differ; NaN is NaN.
    if _canonical(recorded) != _canonical(sent):
        return [f"`{where}` is {_short(sent)}, recorded {_short(recorded)}"]
    return []
