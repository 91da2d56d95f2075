"""
Replayed responses: a recorded response compiled for replay, and the library response that
plays it (chunks, waits, the recorded ending) to the client.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from ._attempts import Attempt
from ._exceptions import CassetteFormatError
from ._exchange import Ending, Playback
from ._file_bodies import replay_stream_for
from ._flavors import Flavor, network_text
from ._framing import default_chunks
from ._models import RecordedResponse, StreamError, header_get, message_content
from ._recording import decompress
from ._streams import Pacer, PlainReplayStream, ReplayStream, stream_class

if TYPE_CHECKING:
    from ._lazy import RecordedAnswer

__all__ = [
    "Compiled",
    "CutLengths",
    "compile_parts",
    "compile_response",
    "has_body",
    "read_timeout",
    "recorded_chunks",
    "respond",
    "respond_recorded",
]


@dataclass(frozen=True, slots=True)
class Compiled:
    """An interaction's response, compiled once for replay."""

    #: None when the recording is a connection that failed before any answer (see ``failure``).
    playback: Playback | None
    #: When each chunk arrived, in ms from the request (a list, or an array from the cache).
    offsets_ms: Sequence[float] | None
    elapsed_ms: float | None
    #: The error of a connection that failed before any answer, raised again in its place.
    failure: StreamError | None = None


class CutLengths(Protocol):
    """Chunk lengths that cut a body themselves (:class:`llmcassette._plain.TextLengths`)."""

    def cut(self, content: bytes) -> tuple[bytes, ...] | None:
        """``content`` cut at the lengths, or None when they do not add up to its length."""

    def values(self) -> list[int]:
        """The lengths."""


def compile_response(
    response: RecordedResponse, *, method: str, uri: str, path: Path, index: int
) -> Compiled:
    """
    The playback of a recorded response to a ``method`` request to ``uri``: its chunks as
    recorded, or one per event when the cassette kept no boundaries; ``path`` and ``index`` name
    it in errors. A recorded connection
    that failed before any answer compiles to its error alone.
    """
    if response.status is None:
        # The model holds that a response without status has its error (`_check_headless`).
        assert response.stream is not None and response.stream.error is not None
        error = response.stream.error
        return Compiled(playback=None, offsets_ms=None, elapsed_ms=response.elapsed_ms, failure=error)
    stream = response.stream
    return compile_parts(
        status=response.status.code,
        reason=response.status.message,
        headers=response.headers,
        content=message_content(response, path=path, index=index, side="response"),
        lengths=stream.chunks if stream is not None else None,
        offsets_ms=stream.offsets_ms if stream is not None else None,
        error=stream.error if stream is not None else None,
        elapsed_ms=response.elapsed_ms,
        method=method,
        uri=uri,
        path=path,
        index=index,
    )


#: Statuses whose answer has no body, whatever its headers say.
_NO_BODY = frozenset({204, 304})


def has_body(method: str, status: int) -> bool:
    """Whether HTTP gives a ``status`` answer to a ``method`` request a body (not HEAD; not 1xx, 204, 304)."""
    return status >= 200 and status not in _NO_BODY and method.upper() != "HEAD"


def compile_parts(
    *,
    status: int,
    reason: str,
    headers: dict[str, list[str]],
    content: bytes,
    lengths: list[int] | CutLengths | None,
    offsets_ms: Sequence[float] | None,
    error: StreamError | None,
    elapsed_ms: float | None,
    method: str,
    uri: str,
    path: Path,
    index: int,
) -> Compiled:
    """
    :func:`compile_response` of a response that has a status, given as its checked parts: the
    loader compiles a response it has read straight from the file's data, without the model.
    """
    bodiless = not has_body(method, status)
    if bodiless and content:
        # An answer HTTP gives no body (to a HEAD; a 1xx, 204 or 304) has none for any client,
        # whatever follows its head (a hand edit's). The doors that write the head as bytes
        # played none, httpx's the recorded one: all now play what a client reads live.
        content, lengths, offsets_ms = b"", None, None
    chunks = _cut(
        lengths,
        content,
        path=path,
        index=index,
        fix="If you edited the body, delete `stream.chunks` (replay then sends one chunk per event) "
        "or record it again.",
    )
    offsets: Sequence[float] | None = None
    if chunks is not None:
        if offsets_ms is not None and len(offsets_ms) == len(chunks):
            offsets = offsets_ms
    else:
        # Only a cassette written by hand or by vcrpy lacks boundaries: llmcassette keeps those of
        # every streamed body, one chunk included (see `_recording.build_response`).
        chunks = default_chunks(content, header_get(headers, "content-type"), url=uri)
    # vcrpy's recordings of requests and urllib3 traffic keep `Content-Encoding: gzip` on the body
    # the library had already decoded; played with the header, the client would decode it again.
    # llmcassette records the bytes as sent (and `elapsed_ms` with them, which vcrpy never
    # writes): a header that did not match its body then came from the server, and is played
    # with it, so that the client fails to decode it as it did live.
    # (the headers' pairs made in the same pass that finds it, and left out after when stale)
    encoding: str | None = None
    pairs: list[tuple[str, str]] = []
    # An answer that has no body by HTTP's rules (to a HEAD; a 1xx, 204 or 304) keeps the length
    # it was sent with: it tells of a body not sent, and the wire writer frames nothing by it. Any
    # other answer's length is its body's, an emptied one's too (else a client waits for bytes).
    sized = not bodiless
    for name, values in headers.items():
        lower = name.lower()
        if lower == "content-length" and sized:
            values = [str(len(content))]
        elif lower == "content-encoding" and encoding is None and values:
            encoding = values[0]
        if len(values) == 1:
            pairs.append((name, values[0]))
        else:
            pairs.extend((name, value) for value in values)
    if encoding is not None and content and elapsed_ms is None and _decodes_nothing(content, encoding):
        pairs = [pair for pair in pairs if pair[0].lower() != "content-encoding"]
    ending, error_type, error_message = Ending.COMPLETE, None, ""
    if error is not None:
        ending, error_type, error_message = Ending.ERROR, error.type, error.message
    # (made as `Playback.recorded` makes a recording's: the same value, without the frozen
    # constructor's `object.__setattr__` for each of its ten fields)
    playback = Playback.recorded(
        status, tuple(pairs), tuple(chunks), ending, error_type, error_message, reason
    )
    return _compiled(playback, offsets, elapsed_ms)


def _compiled(playback: Playback, offsets_ms: Sequence[float] | None, elapsed_ms: float | None) -> Compiled:
    # `Compiled(playback=..., offsets_ms=..., elapsed_ms=...)` in half the time: the frozen
    # class's constructor sets each field through `object.__setattr__` (9.5k -> 4.9k instructions).
    compiled = _new_object(Compiled)
    _SET_PLAYBACK(compiled, playback)
    _SET_OFFSETS(compiled, offsets_ms)
    _SET_ELAPSED(compiled, elapsed_ms)
    _SET_FAILURE(compiled, None)
    return compiled


_new_object = object.__new__
# (the slots' own setters, which a frozen class's `__setattr__` does not stand in front of)
_SET_PLAYBACK = vars(Compiled)["playback"].__set__
_SET_OFFSETS = vars(Compiled)["offsets_ms"].__set__
_SET_ELAPSED = vars(Compiled)["elapsed_ms"].__set__
_SET_FAILURE = vars(Compiled)["failure"].__set__


def _decodes_nothing(content: bytes, encoding: str) -> bool:
    """True when ``content`` is not compressed as gzip or deflate ``encoding`` says (others are trusted)."""
    if encoding.strip().lower() not in ("gzip", "x-gzip", "deflate"):
        return False
    return decompress([content], encoding) is None


def recorded_chunks(
    response: RecordedResponse, content: bytes, *, path: Path, index: int, fix: str
) -> list[bytes] | None:
    """
    ``content``, the response's body, cut at its recorded chunk boundaries; None when it has none.
    Lengths that do not cut the body exactly are a :class:`CassetteFormatError` naming ``path``
    and interaction ``index``, ending with ``fix``: what to do about them.
    """
    stream = response.stream
    chunks = _cut(stream.chunks if stream is not None else None, content, path=path, index=index, fix=fix)
    return cast("list[bytes] | None", chunks)  # (a model's lengths are a list: so are the chunks)


def _cut(
    lengths: list[int] | CutLengths | None, content: bytes, *, path: Path, index: int, fix: str
) -> Sequence[bytes] | None:
    if lengths is None:
        return None
    if not isinstance(lengths, list):
        cut = lengths.cut(content)  # (their types and signs were checked when they were read)
        if cut is not None:
            return cut
        lengths = lengths.values()
    if sum(lengths) != len(content) or (lengths and min(lengths) < 0):
        raise CassetteFormatError(
            f"llmcassette: cassette {str(path)!r} is not valid: interaction {index}, field "
            f"`response.stream.chunks`: the chunk lengths add up to {sum(lengths)} bytes but the body "
            f"has {len(content)}. {fix}",
            path=path,
            interaction=index,
            field="response.stream.chunks",
        )
    # Each chunk read off the body in C (a reader's `read` mapped over the lengths): a slice per
    # chunk in a Python loop cost 2.6 times as much (200 chunks: 242k instructions against 93k).
    # The lengths are whole and none is negative (checked above), which `read` would take as "all".
    return list(map(io.BytesIO(content).read, lengths))


def respond(
    flavor: Flavor,
    playback: Playback,
    *,
    attempt: Attempt,
    offsets_ms: Sequence[float] | None,
    pacer: Pacer | None,
    read_timeout_s: float | None,
) -> Any:
    """
    The library response that plays ``playback``, logging what the client gets in ``attempt``;
    ``read_timeout_s`` is the client's read timeout (see :func:`read_timeout`).
    """
    attempt.status = playback.status
    chunks = playback.chunks
    stream: ReplayStream
    if playback.ending is _COMPLETE and playback.delays_ms is None:
        # Most replays: nothing to wait for but the recorded pace, if asked, and a clean end.
        if pacer is None and type(chunks) is tuple:
            stream = _plain_stream(flavor)(chunks)
        else:
            stream = stream_class(_stream_kind(playback), flavor)(
                chunks, offsets_ms=offsets_ms, pacer=pacer, read_timeout_s=read_timeout_s
            )
    else:
        stream = _ending_stream(flavor, playback, attempt, offsets_ms, pacer, read_timeout_s)
    attempt.received_from(stream)
    headers, extensions = _head(flavor, playback)
    return flavor.module.Response(playback.status, headers=headers, stream=stream, extensions=extensions)


def respond_recorded(flavor: Flavor, answer: RecordedAnswer, attempt: Attempt) -> Any:
    """
    :func:`respond` of a recording that ends cleanly, played at once, given by its parts (status,
    headers, chunks and reason, as the replay cache holds them): the same response, without the
    :class:`Playback` it would be.
    """
    status, headers, chunks, reason = answer
    attempt.status = status
    stream = _plain_stream(flavor)(chunks)
    attempt.received_from(stream)
    # (the response makes the library's Headers of the pairs itself: for one play, that is all)
    extensions = _RECORDED_EXTENSIONS.get((flavor, status, reason))
    if extensions is None:
        if len(_RECORDED_EXTENSIONS) >= _RECORDED_EXTENSIONS_KEPT:
            _RECORDED_EXTENSIONS.clear()
        extensions = _RECORDED_EXTENSIONS[flavor, status, reason] = _extensions(flavor, status, reason)
    try:
        return flavor.module.Response(status, headers=headers, stream=stream, extensions=extensions)
    except UnicodeEncodeError:
        pairs = [(header_bytes(k), header_bytes(v)) for k, v in headers]
        return flavor.module.Response(status, headers=pairs, stream=stream, extensions=extensions)


# (a name of the module's own: an enum member read off its class is a lookup of several steps)
_COMPLETE = Ending.COMPLETE


@functools.cache
def _plain_stream(flavor: Flavor) -> Callable[[tuple[bytes, ...]], ReplayStream]:
    # `plain` of the replay stream class of `flavor`, looked up and bound once per flavor (a
    # class method is bound anew each time it is looked up; `cast` is a call too).
    return cast("type[ReplayStream]", stream_class(PlainReplayStream, flavor)).plain


# The extensions of recorded answers by flavor, status and reason, made once: the libraries whose
# responses `respond_recorded` makes (httpx, httpx2) copy them into each response.
_RECORDED_EXTENSIONS: dict[tuple[Flavor, int, str], dict[str, bytes]] = {}
_RECORDED_EXTENSIONS_KEPT = 256


def _stream_kind(playback: Playback) -> type:
    # A body read from the file has a stream of its own that keeps nothing it handed over.
    return ReplayStream if type(playback.chunks) is tuple else replay_stream_for(playback.chunks)


def _ending_stream(
    flavor: Flavor,
    playback: Playback,
    attempt: Attempt,
    offsets_ms: Sequence[float] | None,
    pacer: Pacer | None,
    read_timeout_s: float | None,
) -> ReplayStream:
    # A stream that waits (faults' silences) or ends otherwise than cleanly: in an error, or in
    # a stall the client's read timeout ends.
    # The errors say what the reader's transport (sync or async) says live; the attempt log
    # keeps the sync transport's words, as for a connection failure.
    error_factory = None
    if playback.ending is Ending.ERROR:
        error_type = playback.error_type or "ReadError"
        message = playback.error_message

        def error_factory(is_async: bool) -> Exception:
            return failure_exception(flavor, attempt, error_type, message, is_async)

    stall_ms = None
    if playback.ending is Ending.STALL:
        stall_ms = playback.stall_ms if playback.stall_ms is not None else math.inf
    timeout_error = None
    if playback.delays_ms is not None or stall_ms is not None:

        def timeout_error(message: str, is_async: bool) -> Exception:
            return failure_exception(flavor, attempt, "ReadTimeout", message, is_async)

    stream: ReplayStream = stream_class(_stream_kind(playback), flavor)(
        playback.chunks,
        offsets_ms=offsets_ms,
        pacer=pacer,
        error=error_factory,
        delays_ms=playback.delays_ms,
        end_stall_ms=stall_ms,
        read_timeout_s=read_timeout_s,
        timeout_error=timeout_error,
    )
    return stream


def failure_exception(
    flavor: Flavor, attempt: Attempt, error_type: str, message: str, is_async: bool
) -> Exception:
    """
    The exception ``error_type`` the client gets for a failure whose sync transport on plain
    HTTP says ``message``, in the words its own transport (sync or async, on TLS or not) says
    live (see :func:`~llmcassette._flavors.network_text`). The attempt log notes it in the sync
    transport's words, the same whichever transport asked.
    """
    url = attempt.url
    attempt.error = f"{error_type}: {network_text(error_type, message, is_async=False, url=url)}"
    return flavor.failure(error_type, message, is_async=is_async, url=url)


def connect_timeout(request: Any) -> float | None:
    """The client's connect timeout for ``request``, in seconds, when it set one."""
    timeout = request.extensions.get("timeout")
    value = timeout.get("connect") if isinstance(timeout, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def read_timeout(request: Any) -> float | None:
    """The client's read timeout for ``request``, in seconds, when it set one."""
    timeout = request.extensions.get("timeout")
    value = timeout.get("read") if isinstance(timeout, dict) else None
    if value is None or type(value) is float:  # (what httpx gives: its Timeout's seconds, or none)
        return value
    # (a tuple of types, not `int | float`: that union is made again on each call)
    return float(value) if isinstance(value, (int, float)) else None


#: What a playback keeps beside its fields once played: its head is kept from its second play on.
_PLAYED_ONCE: Any = ()


def _head(flavor: Flavor, playback: Playback) -> tuple[Any, dict[str, bytes]]:
    # The response head as ``flavor``'s objects (its Headers, and the extensions). A recording
    # replayed many times builds them once, kept beside the playback's fields as a cached
    # property is: the library's checks of each header cost more than all the rest of a
    # response. Most recordings play once, and keep nothing: the objects kept for each would
    # only add to the collector's work. A library response copies both, so sharing is safe.
    derived = playback.__dict__
    key = flavor.derived_key
    head: tuple[Any, dict[str, bytes]] | None = derived.get(key)
    if head is None or head is _PLAYED_ONCE:
        made = _make_head(flavor, playback.status, playback.headers, playback.reason)
        derived[key] = _PLAYED_ONCE if head is None else made
        return made
    return head


def _make_head(
    flavor: Flavor, status: int, pairs: tuple[tuple[str, str], ...], reason: str
) -> tuple[Any, dict[str, bytes]]:
    try:
        headers = flavor.module.Headers(pairs)  # ASCII text, as the library encodes it
    except UnicodeEncodeError:
        headers = flavor.module.Headers([(header_bytes(k), header_bytes(v)) for k, v in pairs])
    return headers, _extensions(flavor, status, reason)


def _extensions(flavor: Flavor, status: int, reason: str) -> dict[str, bytes]:
    # A replayed response's extensions: HTTP/1.1, and its recorded reason or the standard one.
    phrase = (reason or default_reason(flavor, status)).encode("latin-1", "replace")
    return {"http_version": b"HTTP/1.1", "reason_phrase": phrase}


def header_bytes(text: str) -> bytes:
    """A header name or value as bytes: latin-1, or UTF-8 when it does not fit."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


@functools.lru_cache(maxsize=128)
def default_reason(flavor: Flavor, status_code: int) -> str:
    """The standard reason phrase of ``status_code``, or an empty one."""
    try:
        return str(flavor.module.codes(status_code).phrase)
    except ValueError:
        return ""
