"""
Checking cassette files before they are committed: secrets, invalid files, bodies stored as
binary that are text, and streams cut short.

Each problem is a :class:`Finding` with a rule id, so a project can ignore a rule it accepts:

- ``secret``: a credential (an auth header with a live-looking value, a ``key=`` query parameter,
  a key-shaped string such as ``sk-...`` or a JWT in a URL, header or body);
- ``unscrubbed-header``: a header llmcassette scrubs when recording (cookies, organisation and
  project ids) that kept its value;
- ``schema``: what loading refuses, and stream records that contradict their body (chunk lengths
  that do not add up, timing for other chunks, an ``end`` that disagrees with ``error``);
- ``binary-text``: a body stored as bytes (``!!binary``) that is text, or gzip of text, which
  ``llmcassette import`` would store readably;
- ``unterminated-stream``: a 2xx stream that stops before its provider's terminator
  (``data: [DONE]``, ``message_stop``, ...) or, for providers that send none, before a finish
  reason, without being marked as cut (``stream.end: error`` or ``closed``);
- ``stale``: with an age limit (``max_age_days``), an interaction recorded longer ago than that
  (see :mod:`llmcassette._age`);
- ``session-order``: a WebSocket session closed (``close.offset_ms``) before its last message;
- ``unclosed-session``: a WebSocket session without a ``close``: it was still open when the
  cassette was saved, so replay never ends it as the provider did (a ``close`` with ``by: none``
  says the connection dropped, and is no finding);
- ``large-payload``: a WebSocket message over :data:`MAX_MESSAGE_BYTES`, or a session whose
  messages add up to more than :data:`MAX_SESSION_BYTES` (minutes of audio, most often).

A session's handshake is checked like any request (its URL and headers), and the text of each of
its messages like a body.

The scan reuses the scrubber's own patterns and the provider profiles' terminators, so lint flags
exactly what recording would have scrubbed, and what replay treats as a complete stream. Files are
parsed with libyaml and bodies scanned with one regular expression, which keeps lint fast enough
for a pre-commit hook on hundreds of cassettes.
"""

from __future__ import annotations

import enum
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from ._age import stale_interactions
from ._bodies import is_text
from ._convert import decompress, find_cassettes, looks_like_cassette
from ._eventstream import store_frames
from ._exceptions import CassetteFormatError
from ._exchange import RequestInfo
from ._framing import Framing, detect_framing, parse_sse_event, split_events
from ._models import CassetteDocument, Interaction, RecordedRequest, RecordedResponse, StreamEnd, header_get
from ._scrub import PLACEHOLDER, Scrubber, strip_userinfo
from ._session_view import read_close, read_messages, session_of, size_text
from ._storage import parse_cassette, read_cassette_bytes
from .faults.stream_wire import is_terminal
from .providers import GENERIC, Profile, detect_profile

__all__ = [
    "FIXED_BY_IMPORT",
    "MAX_MESSAGE_BYTES",
    "MAX_SESSION_BYTES",
    "Finding",
    "LintReport",
    "Rule",
    "lint_bytes",
    "lint_document",
    "lint_paths",
    "rule_summary",
]

_Headers = dict[str, list[str]]


class Rule(enum.StrEnum):
    """The kinds of problem lint finds."""

    SECRET = "secret"
    UNSCRUBBED_HEADER = "unscrubbed-header"
    SCHEMA = "schema"
    BINARY_TEXT = "binary-text"
    UNTERMINATED_STREAM = "unterminated-stream"
    STALE = "stale"
    SESSION_ORDER = "session-order"
    UNCLOSED_SESSION = "unclosed-session"
    LARGE_PAYLOAD = "large-payload"


#: Rules whose findings ``llmcassette import FILE -o FILE --force`` fixes.
FIXED_BY_IMPORT = frozenset({Rule.SECRET, Rule.UNSCRUBBED_HEADER, Rule.BINARY_TEXT})


@dataclass(frozen=True)
class Finding:
    """One problem in one cassette file."""

    path: Path
    rule: Rule
    #: What is wrong, as a sentence fragment.
    message: str
    #: What to do about it.
    hint: str
    #: Index of the interaction (from 0, as in llmcassette's errors), None for the whole file.
    interaction: int | None = None
    #: The field, dotted (``request.headers.authorization``), None for the whole file.
    field: str | None = None

    def line(self) -> str:
        """The finding as one line: ``path:interaction N: field: [rule] message (hint)``."""
        where = str(self.path)
        if self.interaction is not None:
            where += f":interaction {self.interaction}"
        if self.field is not None:
            where += f": {self.field}"
        return f"{where}: [{self.rule.value}] {self.message} ({self.hint})"

    def to_dict(self) -> dict[str, Any]:
        """The finding as plain data, for ``--json``."""
        return {
            "path": str(self.path),
            "interaction": self.interaction,
            "field": self.field,
            "rule": self.rule.value,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class LintReport:
    """What a lint run found, over which files."""

    findings: list[Finding] = field(default_factory=list)
    #: Cassette files checked.
    checked: list[Path] = field(default_factory=list)
    #: Files found in folders that are not cassettes (see ``looks_like_cassette``), not checked.
    skipped: list[Path] = field(default_factory=list)

    @property
    def files_with_findings(self) -> int:
        return len({finding.path for finding in self.findings})


# -- secrets -------------------------------------------------------------------------------------

_SCRUBBER = Scrubber()
# Headers whose value is a credential; the scrubber's other headers (cookies, organisation and
# project ids) identify an account without granting access: `unscrubbed-header`, not `secret`.
_CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "ocp-apim-subscription-key",
        "x-amz-security-token",
    }
)
_SCHEME = re.compile(r"^(?:bearer|basic|token|aws4-hmac-sha256)\s+", re.IGNORECASE)
# Words and marks that fixtures use for a value that is not a real one.
_PLACEHOLDER_WORDS = re.compile(r"redacted|dummy|fake|placeholder|filtered|example|scrubbed|your[-_]", re.I)
_PLACEHOLDER_MARKS = ("<", "{", "$", "***")
_LETTER = re.compile(r"[A-Za-z]")
_DIGIT = re.compile(r"[0-9]")
#: A live credential is at least this long (a bare "sk-test" or "none" is a stand-in).
_MIN_CREDENTIAL_CHARS = 12
# Below this many letters and digits a value is too short to call it one repeated character.
_MIN_REPEAT_CHARS = 4


def _is_placeholder(value: str) -> bool:
    """Whether ``value`` is a stand-in for a secret (``REDACTED``, ``DUMMY_KEY``, ``sk-xxxxxxxx``)."""
    if not value or _PLACEHOLDER_WORDS.search(value) or any(mark in value for mark in _PLACEHOLDER_MARKS):
        return True
    # One character making up half the value: `XXXXXX`, `sk-proj-0000000000000000`.
    alnum = [ch for ch in value if ch.isalnum()]
    if len(alnum) < _MIN_REPEAT_CHARS:
        return not alnum
    return max(alnum.count(ch) for ch in set(alnum)) * 2 >= len(alnum)


def _looks_live(value: str) -> bool:
    """Whether a credential header's value looks like a real credential rather than a stand-in."""
    token = _SCHEME.sub("", value.strip())
    return (
        len(token) >= _MIN_CREDENTIAL_CHARS
        and _LETTER.search(token) is not None
        and _DIGIT.search(token) is not None
        and not _is_placeholder(token)
    )


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _preview(secret: str) -> str:
    # Enough to find it in the file, too little to use it.
    scheme = _SCHEME.match(secret)
    head = scheme.group() if scheme else ""
    return f"{head}{secret[len(head) : len(head) + 4]}…, {len(secret) - len(head)} characters"


def _shown(name: str, value: str) -> str:
    """Enough of an unscrubbed header's value to recognise it: a cookie's name, an id's start."""
    if name in ("cookie", "set-cookie"):
        cookie, equals, rest = value.partition(";")[0].partition("=")
        return f"{cookie}{equals}{rest[:4]}…" if len(rest) > 4 else value.partition(";")[0]
    return value if len(value) <= 24 else value[:20] + "…"


def _keys_in(data: bytes) -> list[tuple[str, str, int]]:
    """``(kind, text, offset)`` of every key-shaped string the scrubber would replace in ``data``."""
    scrubbed, spans = _SCRUBBER.scrub_body_spans(data)
    found = []
    shift = 0
    for start, end, new_len in spans:
        # The scrubber names each replacement `REDACTED-<kind>`: the kind is read back from there.
        placeholder = scrubbed[start + shift : start + shift + new_len].decode()
        kind = placeholder.removeprefix(PLACEHOLDER + "-")
        text = data[start:end].decode("utf-8", "replace")
        shift += new_len - (end - start)
        if not _is_placeholder(text):
            found.append((kind, text, start))
    return found


_SCRUB_HINT = "revoke it if it is live; `llmcassette import` scrubs it"


def _header_findings(path: Path, index: int, side: str, headers: _Headers) -> Iterable[Finding]:
    hint = _SCRUB_HINT
    for name, values in headers.items():
        lname = name.lower()
        where = f"{side}.headers.{name}"
        keys = [key for value in values for key in _keys_in(value.encode("utf-8", "surrogateescape"))]
        if keys:
            kind, text, _ = keys[0]
            yield Finding(path, Rule.SECRET, f"holds {_a(kind)} ({_preview(text)})", hint, index, where)
            continue
        if lname in _CREDENTIAL_HEADERS:
            live = next((value for value in values if _looks_live(value)), None)
            if live is not None:
                message = f"holds what looks like a live credential ({_preview(live)})"
                yield Finding(path, Rule.SECRET, message, hint, index, where)
        elif lname in _SCRUBBER.secret_headers:
            kept = next(
                (
                    value
                    for value in values
                    if _SCRUBBER.scrub_header_value(name, value) != value and not _is_placeholder(value)
                ),
                None,
            )
            if kept is not None:
                yield Finding(
                    path,
                    Rule.UNSCRUBBED_HEADER,
                    f"kept its value ({_shown(lname, kept)!r}), which llmcassette scrubs when recording",
                    "`llmcassette import` scrubs it",
                    index,
                    where,
                )


def _url_findings(path: Path, index: int, uri: str) -> Iterable[Finding]:
    hint = _SCRUB_HINT
    stripped = strip_userinfo(uri)
    if stripped != uri:
        # llmcassette never stores userinfo: a password, or a token given as the user name.
        start = uri.find("://") + 3
        userinfo = uri[start : start + len(uri) - len(stripped)]
        user, colon, password = userinfo.removesuffix("@").partition(":")
        if colon and password:
            message = f"holds a password in its userinfo (user {user!r}, password {_preview(password)})"
        else:
            message = f"holds a user name in its userinfo, which may be a token ({_preview(user)})"
        yield Finding(path, Rule.SECRET, message, hint, index, "request.uri")
        return
    query = uri.partition("#")[0].partition("?")[2]
    for pair in query.split("&") if query else ():
        name, equals, value = pair.partition("=")
        value = unquote_plus(value)
        if equals and unquote_plus(name).lower() in _SCRUBBER.secret_query_params and _looks_live(value):
            message = (
                f"query parameter `{unquote_plus(name)}` holds what looks like a live key ({_preview(value)})"
            )
            yield Finding(path, Rule.SECRET, message, hint, index, "request.uri")
            return
    keys = _keys_in(uri.encode("utf-8", "surrogateescape"))
    if keys:
        kind, text, _ = keys[0]
        yield Finding(path, Rule.SECRET, f"holds {_a(kind)} ({_preview(text)})", hint, index, "request.uri")


def _body_field(message: RecordedRequest | RecordedResponse, side: str) -> str:
    if "parsed_body" in message.model_fields_set:
        return f"{side}.parsed_body"
    if isinstance(message, RecordedResponse) and message.eventstream is not None:
        return "response.eventstream"
    return f"{side}.body" if side == "request" else "response.body.string"


def _body_secret_findings(path: Path, index: int, where: str, content: bytes) -> Iterable[Finding]:
    keys = _keys_in(content)
    if keys:
        kind, text, offset = keys[0]
        more = f", and {len(keys) - 1} more key-shaped strings" if len(keys) > 1 else ""
        message = f"holds {_a(kind)} at byte {offset} ({_preview(text)}){more}"
        yield Finding(path, Rule.SECRET, message, _SCRUB_HINT, index, where)


# -- bodies --------------------------------------------------------------------------------------


def _encoding(headers: _Headers) -> str | None:
    return header_get(headers, "content-encoding")


def _readable(content: bytes, headers: _Headers) -> bytes:
    """The body as the client reads it: a gzip or deflate encoding undone."""
    decoded = decompress([content], _encoding(headers))
    return decoded[0] if decoded is not None else content


def _binary_text_finding(
    path: Path, index: int, where: str, content: bytes, headers: _Headers
) -> Finding | None:
    hint = "`llmcassette import` stores it as text"
    if "vnd.amazon.eventstream" in (header_get(headers, "content-type") or "").lower():
        frames = store_frames(content)
        if frames is None:  # cut short, a bad checksum, or headers other than text: bytes it stays
            return None
        message = (
            f"is stored as binary (!!binary), but is {len(frames)} AWS eventstream frames that "
            "llmcassette stores readably (headers, and JSON payloads as data)"
        )
        return Finding(
            path, Rule.BINARY_TEXT, message, "`llmcassette import` stores them as frames", index, where
        )
    decoded = decompress([content], _encoding(headers))
    if decoded is not None and is_text(decoded[0]):
        encoding = (_encoding(headers) or "").strip().lower()
        message = f"is stored as {encoding}-compressed binary, but is {len(decoded[0])} bytes of text"
        return Finding(path, Rule.BINARY_TEXT, message, hint, index, where)
    if decoded is None and is_text(content):
        message = f"is stored as binary (!!binary), but is {len(content)} bytes of UTF-8 text"
        return Finding(path, Rule.BINARY_TEXT, message, hint, index, where)
    return None


# -- stream records ------------------------------------------------------------------------------


def _stream_findings(path: Path, index: int, response: RecordedResponse, content: bytes) -> Iterable[Finding]:
    stream = response.stream
    if stream is None:
        return
    hint = (
        "delete `stream.chunks` and `stream.offsets_ms` (replay then sends one chunk per event), "
        "or record it again"
    )
    where = "response.stream"
    chunks = stream.chunks
    if chunks is not None and (sum(chunks) != len(content) or any(n < 0 for n in chunks)):
        message = f"the chunk lengths add up to {sum(chunks)} bytes but the body has {len(content)}"
        if any(n < 0 for n in chunks):
            message = "a chunk length is negative"
        yield Finding(path, Rule.SCHEMA, message, hint, index, f"{where}.chunks")
    offsets = stream.offsets_ms
    if offsets is not None:
        if chunks is None or len(offsets) != len(chunks):
            count = "no" if chunks is None else len(chunks)
            message = f"{len(offsets)} arrival times for {count} chunks: replay ignores the recorded timing"
            yield Finding(path, Rule.SCHEMA, message, hint, index, f"{where}.offsets_ms")
        elif any(later < earlier for earlier, later in zip(offsets, offsets[1:], strict=False)):
            message = "the arrival times go back in time"
            yield Finding(path, Rule.SCHEMA, message, hint, index, f"{where}.offsets_ms")
    if stream.end is StreamEnd.ERROR and stream.error is None:
        message = "says the stream ended with an error but has no `error`, so replay ends it cleanly"
        yield Finding(
            path, Rule.SCHEMA, message, "add `error: {type: ReadError}` or record again", index, where
        )
    elif stream.error is not None and stream.end is not StreamEnd.ERROR:
        message = f"has an `error` but says the stream ended `{stream.end.value}`; replay raises the error"
        yield Finding(path, Rule.SCHEMA, message, "set `end: error`, or delete `error`", index, where)


# -- streams -------------------------------------------------------------------------------------


def _request_info(request: RecordedRequest, content: bytes) -> RequestInfo:
    headers = {name.lower(): values[0] for name, values in request.headers.items() if values}
    return RequestInfo(method=request.method, url=request.uri, headers=headers, body=content)


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _has_terminator(profile: Profile) -> bool:
    # A profile knows a terminator when it has fixed bytes for one, or recognises its own event.
    return profile.terminator is not None or type(profile).is_terminator is not Profile.is_terminator


def _payload_events(body: bytes, framing: Framing) -> list[bytes]:
    events = []
    for event in split_events(body, framing):
        if not event.strip(b" \t\r\n[],"):
            continue
        if framing is Framing.SSE and parse_sse_event(event.decode("utf-8", "replace")).data is None:
            continue  # a comment-only keep-alive (`: OPENROUTER PROCESSING`)
        events.append(event)
    return events


def _unterminated_finding(
    path: Path, index: int, interaction: Interaction, request_body: bytes, body: bytes
) -> Finding | None:
    response = interaction.response
    if response.status is None or not 200 <= response.status.code < 300:
        return None
    if response.stream is not None and response.stream.end is not StreamEnd.COMPLETE:
        return None  # marked as cut: replay raises or stops there on purpose
    request = interaction.request
    framing = detect_framing(header_get(response.headers, "content-type"), body, url=request.uri)
    if framing is Framing.NONE:
        return None
    profile = detect_profile(_request_info(request, request_body))
    name = framing.value if profile is GENERIC else profile.name
    hint = (
        "record it again; to test a cut stream, use the `truncate` fault, or mark a stream cut on "
        "purpose with `stream: {end: closed}`"
    )
    where = _body_field(response, "response")
    events = _payload_events(body, framing)
    if not events:
        return Finding(path, Rule.UNTERMINATED_STREAM, f"the {name} stream has no events", hint, index, where)
    if framing is Framing.JSON_ARRAY and not body.rstrip().endswith(b"]"):
        message = (
            f"the {name} stream's JSON array is not closed: it ends after {_count(len(events), 'element')}"
        )
        return Finding(path, Rule.UNTERMINATED_STREAM, message, hint, index, where)
    terminator = (profile.terminator or b"").replace(b"\r\n", b"\n").strip()
    if profile.is_terminator(events[-1]) or is_terminal(events[-1], framing, terminator):
        return None
    summary = profile.summarize(body, streaming=True, status=response.status.code)
    if summary.error is not None:
        return None  # the provider ended the stream with its own error event: complete as sent
    after = _count(len(events), "event")
    if _has_terminator(profile):
        what = f"`{terminator.decode()}`" if terminator else f"the event that ends a complete {name} stream"
        message = f"the {name} stream ends after {after} without {what}"
        return Finding(path, Rule.UNTERMINATED_STREAM, message, hint, index, where)
    if profile is not GENERIC and summary.finish_reason is None:
        message = f"the {name} stream ends after {after} without a finish reason"
        return Finding(path, Rule.UNTERMINATED_STREAM, message, hint, index, where)
    return None  # an unknown upstream: nothing says what its complete stream looks like


# -- files ---------------------------------------------------------------------------------------


def _content(message: RecordedRequest | RecordedResponse) -> bytes | None:
    try:
        return message.content
    except ValueError:  # text that is not UTF-8 (a lone surrogate from a `\\ud800` escape)
        return None


#: A WebSocket message larger than this is a ``large-payload`` finding: 1 MiB.
MAX_MESSAGE_BYTES = 1024 * 1024
#: A WebSocket session whose messages add up to more than this is a ``large-payload`` finding: 16 MiB.
MAX_SESSION_BYTES = 16 * 1024 * 1024


def _session_findings(path: Path, index: int, session: Mapping[str, Any]) -> Iterable[Finding]:
    messages = read_messages(session)
    where = "websocket.messages"
    for message in messages:
        field_name = f"{where}[{message.number}]"
        if message.kind != "binary":
            text = message.value if message.kind == "text" else json.dumps(message.value, ensure_ascii=False)
            yield from _body_secret_findings(
                path, index, f"{field_name}.{message.kind}", text.encode("utf-8", "surrogatepass")
            )
        if message.size > MAX_MESSAGE_BYTES:
            yield Finding(
                path,
                Rule.LARGE_PAYLOAD,
                f"is {size_text(message.size)}, more than the {size_text(MAX_MESSAGE_BYTES)} a message "
                "should need in a test",
                "record a shorter exchange, or ignore the rule for this cassette",
                index,
                field_name,
            )
    total = sum(message.size for message in messages)
    if total > MAX_SESSION_BYTES:
        yield Finding(
            path,
            Rule.LARGE_PAYLOAD,
            f"add up to {size_text(total)}, more than the {size_text(MAX_SESSION_BYTES)} a session "
            "should need in a test",
            "record a shorter session, or ignore the rule for this cassette",
            index,
            where,
        )
    # Loading refuses messages out of order; a close before the last message it does not.
    last = messages[-1].offset_ms if messages else None
    close = read_close(session)
    if close is None:
        yield Finding(
            path,
            Rule.UNCLOSED_SESSION,
            "has no close: the session was still open when the cassette was saved, so replay never "
            "ends it as the provider did",
            "record it again and let the client close the session, or add a `close` with `by: none` "
            "and its `offset_ms` if the connection dropped",
            index,
            "websocket.close",
        )
    elif close.offset_ms is not None and last is not None and close.offset_ms < last:
        yield Finding(
            path,
            Rule.SESSION_ORDER,
            f"offset_ms {close.offset_ms:g} is before the {last:g} of the last message",
            "put the close after the last message, or record the session again",
            index,
            "websocket.close.offset_ms",
        )


def _interaction_findings(path: Path, index: int, interaction: Interaction) -> Iterable[Finding]:
    request, response = interaction.request, interaction.response
    # A URL that does not parse never gets here: loading the cassette refuses it (a schema finding).
    yield from _url_findings(path, index, request.uri)
    yield from _header_findings(path, index, "request", request.headers)
    yield from _header_findings(path, index, "response", response.headers)
    session = session_of(interaction)
    if session is not None:
        yield from _session_findings(path, index, session)
    contents: list[bytes | None] = []
    for message, side in ((request, "request"), (response, "response")):
        where = _body_field(message, side)
        content = _content(message)
        contents.append(content)
        if content is None:
            # An unknown `json_format` never gets here either: loading refuses it.
            text = "cannot be turned back into bytes: it holds text that is not valid UTF-8"
            hint = "fix the file by hand, or delete it and record it again"
            yield Finding(path, Rule.SCHEMA, text, hint, index, where)
            continue
        yield from _body_secret_findings(path, index, where, _readable(content, message.headers))
        stored = (
            message.body if isinstance(message, RecordedRequest) else getattr(message.body, "string", None)
        )
        if "parsed_body" not in message.model_fields_set and isinstance(stored, bytes):
            binary = _binary_text_finding(path, index, where, content, message.headers)
            if binary is not None:
                yield binary
    request_body, response_body = contents
    if response_body is None:
        return
    yield from _stream_findings(path, index, response, response_body)
    if request_body is not None:
        body = _readable(response_body, response.headers)
        unterminated = _unterminated_finding(path, index, interaction, request_body, body)
        if unterminated is not None:
            yield unterminated


_FORMAT_ERROR = re.compile(r"^is not valid: (?:interaction \d+, )?field `[^`]*`: ")
_REPAIR = " Fix the file by hand, or delete it and record the cassette again."


def _schema_finding(path: Path, exc: CassetteFormatError) -> Finding:
    text = str(exc).removeprefix("llmcassette: ").removeprefix(f"cassette {str(path)!r} ")
    field_name = exc.field if exc.field not in (None, "(top level)") else None
    if field_name is not None:
        text = _FORMAT_ERROR.sub("", text)
    text = text.removesuffix(_REPAIR).rstrip(".")
    hint = "fix the file by hand, or delete it and record it again"
    return Finding(path, Rule.SCHEMA, text, hint, exc.interaction, field_name)


def _stale_findings(document: CassetteDocument, path: Path, max_age_days: float) -> Iterable[Finding]:
    for index, age_days in stale_interactions(document, max_age_days):
        text = f"was recorded {age_days:.0f} days ago, more than the limit of {max_age_days:g} days"
        hint = "record it again (llmcassette drift --update, or your suite in record mode)"
        yield Finding(path, Rule.STALE, text, hint, index, "response.headers.date")


def lint_document(
    document: CassetteDocument, path: Path, *, max_age_days: float | None = None
) -> list[Finding]:
    """The problems of a loaded cassette; ``path`` is what findings name."""
    findings: list[Finding] = []
    for index, interaction in enumerate(document.interactions):
        findings.extend(_interaction_findings(path, index, interaction))
    if max_age_days is not None:
        findings.extend(_stale_findings(document, path, max_age_days))
    return findings


def lint_bytes(raw: bytes, path: Path, *, max_age_days: float | None = None) -> list[Finding]:
    """The problems of the cassette file ``path`` whose bytes are ``raw``."""
    try:
        document = parse_cassette(raw, path=path)
    except CassetteFormatError as exc:
        return [_schema_finding(path, exc)]
    return lint_document(document, path, max_age_days=max_age_days)


def lint_paths(
    paths: Sequence[Path], *, ignore: Iterable[str] = (), max_age_days: float | None = None
) -> LintReport:
    """
    Lint every cassette in ``paths``: files as given, folders searched for ``*.yaml``, ``*.yml``
    and ``*.json`` files that look like cassettes. Findings of the rules in ``ignore`` are dropped;
    with ``max_age_days``, interactions recorded longer ago are ``stale`` findings.
    """
    ignored = {Rule(rule) for rule in ignore}
    report = LintReport()
    seen: set[Path] = set()
    for given in paths:
        found = find_cassettes(given) if given.is_dir() else [given]
        for path in found:
            # Not `resolve()`: it raises RuntimeError on a symbolic link loop, which reading
            # then reports as what it is.
            key = Path(os.path.realpath(path))
            if key in seen:
                continue
            seen.add(key)
            raw = read_cassette_bytes(path)
            if given.is_dir() and not looks_like_cassette(raw, json_file=path.suffix == ".json"):
                report.skipped.append(path)
                continue
            report.checked.append(path)
            found_here = lint_bytes(raw, path, max_age_days=max_age_days)
            report.findings.extend(f for f in found_here if f.rule not in ignored)
    return report


def rule_summary(findings: Sequence[Finding]) -> Mapping[str, int]:
    """How many findings each rule has, in rule order."""
    counts = {rule.value: 0 for rule in Rule}
    for finding in findings:
        counts[finding.rule.value] += 1
    return {rule: count for rule, count in counts.items() if count}
