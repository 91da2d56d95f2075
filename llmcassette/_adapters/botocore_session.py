"""
The fast path of botocore's HTTP session (boto3's clients send through
``botocore.httpsession.URLLib3Session.send``): a request the cassette answers plainly is answered
in ``send`` itself, with no pool call, no ``urllib3.HTTPResponse`` and no ``http.client`` parsing.

``send`` is below everything botocore does to a request and its answer (signing, the
``before-send`` event, parsing, the retry handler and its sleeps, which the virtual clock takes)
and above all it does to carry it, so the client's own code runs as it runs live. It is taken
only where the pool's fast path (:mod:`.urllib3_pool`), the door below it, would answer the
same request, as that door's own checks (:func:`.urllib3_pool.plain_answer`) find: no proxy, no
chunked upload, botocore's connections, TLS that would verify, a request whose wire form that
door can vouch for; the cassette replaying it exactly as recorded with nothing acting on it;
besides, the pool botocore's own class, and an answer whose head this module can give exactly
as botocore would read it off the wire (see :func:`_head`), its body in memory and in one piece
when it is not chunked. The engine sees the request that door would show it and logs the same
attempt. botocore asks urllib3 for no retry and no redirect (``Retry(False)``): it retries
itself, above ``send``, so a retried status is answered here as the door below answers it.
Everything else goes to the original ``send``.

The ``AWSResponse`` holds the headers botocore makes of urllib3's (repeated names joined by
``", "``, under the first spelling), with the ``Transfer-Encoding`` or ``Content-Length`` the
answer goes on the wire with, and a ``raw`` (:class:`AnsweredBody`) that reads as urllib3's
response reads in every way botocore reads it: ``stream()`` hands over each recorded chunk of a
chunked answer (an event stream's frames as recorded), in pieces of at most ``amt``; ``read`` and
``readinto`` give as many bytes as asked while there are.
"""

from __future__ import annotations

import collections
import functools
import io
import os
import re
import sys
import weakref
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

from .._exceptions import LlmCassetteError
from .._exchange import Playback
from .._intercept import current_cassette
from .urllib3_pool import plain_answer

__all__ = ["AnsweredBody", "patches"]

#: Statuses whose answer has no body whatever its headers say.
_NO_BODY = frozenset({204, 304})
#: A header name ``http.client``'s parser reads as a name (printable ASCII but space and colon).
_TOKEN = re.compile("[!-9;-~]+")
#: The framing headers: the wire writer replaces the recorded ones with its own.
_FRAMING = frozenset({"transfer-encoding", "content-length"})
#: The response arguments botocore's ``send`` hands ``urlopen``.
_RESPONSE_KW = {"preload_content": False, "decode_content": False, "enforce_content_length": False}
#: The pools botocore makes (the manager's ``pool_classes_by_scheme``), by module and name.
_BOTOCORE_POOLS = frozenset(
    {("botocore.awsrequest", "AWSHTTPConnectionPool"), ("botocore.awsrequest", "AWSHTTPSConnectionPool")}
)


def patches(module: ModuleType) -> list[tuple[Any, str, Any, Any]]:
    """``(class, attribute, original, replacement)``: botocore's ``URLLib3Session.send``."""
    owner = module.URLLib3Session
    original = owner.__dict__["send"]
    return [(owner, "send", original, _send(original))]


def _send(original: Callable[..., Any]) -> Callable[..., Any]:
    def send(self: Any, request: Any) -> Any:
        __tracebackhide__ = True
        cassette = current_cassette()
        if cassette is None:
            return original(self, request)
        response = _replay(self, cassette, request)
        if response is not None:
            return response
        try:
            return original(self, request)
        except Exception as error:
            # `send` wraps what it does not know in its HTTPClientError, which botocore's standard
            # and adaptive retry modes retry as a transient failure. llmcassette's own errors (a
            # miss, a cassette it cannot save) are no failure of the connection: each reaches the
            # client as itself, once, as through every other door.
            inner = getattr(error, "kwargs", {}).get("error")
            if isinstance(inner, LlmCassetteError):
                raise inner from None
            raise

    send.__wrapped__ = original  # type: ignore[attr-defined]
    return send


def _replay(session: Any, cassette: Any, request: Any) -> Any:
    """The ``AWSResponse`` of the fast path, or None for the original ``send`` to answer."""
    __tracebackhide__ = True
    url = request.url
    method = request.method
    body = request.body
    headers = request.headers
    if not isinstance(url, str) or not isinstance(method, str):
        return None
    if os.environ.get("BOTO_EXPERIMENTAL__ADD_PROXY_HOST_HEADER"):
        return None  # (it sets the pool's proxy headers, which the pool's fast path leaves alone)
    try:
        proxy_config = session._proxy_config
        # (no proxies given or found in the environment when the client was made: none for any
        # URL, which `proxy_url_for` would find parsing the URL)
        if getattr(proxy_config, "_proxies", True) and proxy_config.proxy_url_for(url) is not None:
            return None
        pool = _pool(session._manager, url)
        session._setup_ssl_cert(pool, url, session._verify)
        target = session._get_request_target(url, None)
        request_timeout = session._get_request_timeout(request)
    except Exception:  # the original send raises what it raises of it
        return None
    pool_class = type(pool)
    if (pool_class.__module__, pool_class.__qualname__) not in _BOTOCORE_POOLS:
        return None  # a pool class of the user's own may answer otherwise
    awsrequest = sys.modules["botocore.awsrequest"]  # (imported by the module patched)
    if type(headers) is awsrequest.HeadersDict:
        # As a dict, names and values in its order: what urllib3 reads of it (its `items()`),
        # without the case-folding key made for every value looked up.
        headers = {key._key: value for key, value in headers._dict.items()}
    heads: list[tuple[dict[str, str], bool]] = []

    def accept(playback: Playback) -> bool:
        # An answer whose head this module gives as botocore would read it.
        head = _head(playback, method)
        if head is None:
            return False
        heads.append(head)
        return True

    # What the pool's door answers for the `urlopen` call `send` makes (a `Transfer-Encoding`
    # header, which makes botocore upload chunked, is one it refuses): urllib3 retries and
    # redirects nothing for botocore, and times the call by the request's timeout, else the pool's.
    found = plain_answer(
        pool,
        cassette,
        method,
        target,
        body,
        headers,
        _no_retry(),
        False,
        False,
        pool.timeout if request_timeout is None else request_timeout,
        _RESPONSE_KW,
        accept,
    )
    if found is None:
        return None
    answer = found[0]
    response_headers, chunked = heads[-1]
    stream = answer.stream
    # Taken as the door below takes them: all at once, so the attempt log reads the same.
    chunks = stream.take_all(most=None if chunked else 1)
    if chunks is None:  # (not for a plain replay of chunks in memory, which `_head` asks for)
        chunks = list(stream)
    if not _has_body(method, answer.status_code):
        chunks = ()
    raw = AnsweredBody(chunks, chunked=chunked)
    response = awsrequest.AWSResponse(url, answer.status_code, response_headers, raw)
    if not request.stream_output:
        response.content  # noqa: B018 - read at once, as botocore's send reads it
    return response


#: The pool each manager gave for each origin (scheme, host and port as the URL spells them),
#: with its key in the manager.
_pools: weakref.WeakKeyDictionary[Any, dict[str, tuple[Any, Any]]] = weakref.WeakKeyDictionary()


def _pool(manager: Any, url: str) -> Any:
    """
    The pool ``manager.connection_from_url(url)`` gives, kept for the URL's origin with its key
    in the manager, and asked of the manager by that key as ``connection_from_url`` asks it:
    that makes it the manager's most recently used, so the pool the manager lets go of (and
    closes) when it holds too many is the one it lets go of below. A pool no longer there, or
    closed, is asked for again.
    """
    start = url.find("://") + 3
    end = url.find("/", start) if start > 2 else -1
    origin = url[:end] if end > 0 else None
    known = _pools.get(manager)
    if known is None:
        known = _pools.setdefault(manager, {})
    kept = known.get(origin) if origin is not None else None
    if kept is not None:
        key, pool = kept
        if manager.pools.get(key) is pool and pool.pool is not None:
            return pool
    pool = manager.connection_from_url(url)
    if origin is not None and "?" not in origin and "#" not in origin:
        key = _key_of(manager, pool)
        if key is not None:
            known[origin] = (key, pool)
    return pool


def _key_of(manager: Any, pool: Any) -> Any:
    # The key of `pool`, which the manager just handed out: its most recently used. None for
    # a manager that keeps its pools otherwise (then asked every time).
    pools = getattr(manager, "pools", None)
    container = getattr(pools, "_container", None)
    lock = getattr(pools, "lock", None)
    if lock is None or not isinstance(container, collections.OrderedDict):
        return None
    with lock:
        last = next(reversed(container.items()), None)
    return last[0] if last is not None and last[1] is pool else None


@functools.cache
def _no_retry() -> Any:
    # The `Retry(False)` botocore hands `urlopen` (read, never changed, by the pool's door).
    return sys.modules["urllib3"].Retry(False)


def _has_body(method: str, status: int) -> bool:
    return method != "HEAD" and status not in _NO_BODY and status >= 200


def _head(playback: Playback, method: str) -> tuple[dict[str, str], bool] | None:
    """
    The headers botocore would make of the answer read off the wire (its ``HeadersDict`` of
    urllib3's headers: one entry per name, under its first spelling, repeated values joined by
    ``", "``), the wire's framing header included, and whether the body goes chunked; None for
    an answer this cannot vouch for: a header ``http.client`` would read otherwise than it was
    written (a name not a token, a value outside printable ASCII or with space around it), a
    body that is not whole in memory with no empty chunk, or a ``Content-Length`` body that is
    not exactly one chunk of that length.
    """
    chunks = playback.chunks
    if type(chunks) is not tuple or not all(chunks):
        return None
    merged: dict[str, list[str]] = {}
    declared: str | None = None
    chunked_upstream = False
    has_body = _has_body(method, playback.status)
    for name, value in playback.headers:
        if _TOKEN.fullmatch(name) is None:
            return None
        if value and (not value.isascii() or not value.isprintable() or value != value.strip()):
            return None
        lower = name.lower()
        if lower in _FRAMING and (has_body or lower != "content-length"):
            # (an answer with no body keeps its Content-Length as sent, as the wire writer does)
            if lower == "transfer-encoding":
                chunked_upstream = True
            elif declared is None:
                declared = value
            continue
        entry = merged.get(lower)
        if entry is None:
            merged[lower] = [name, value]
        else:
            entry.append(value)
    length = None
    if declared is not None and not chunked_upstream:
        if not declared.isdigit():
            return None
        length = int(declared)
    chunked = has_body and length is None
    if chunked:
        merged["transfer-encoding"] = ["Transfer-Encoding", "chunked"]
    elif len(chunks) > 1:
        return None  # the door below reads these as they come: left to it
    elif has_body:
        if sum(map(len, chunks)) != length:
            return None
        merged["content-length"] = ["Content-Length", str(length)]
    return {entry[0]: ", ".join(entry[1:]) for entry in merged.values()}, chunked


class AnsweredBody(io.IOBase):
    """
    The ``raw`` of a response the fast path answers: the body as botocore reads urllib3's
    response (``preload_content=False``, ``decode_content=False``). ``stream(amt)`` hands over
    the chunks of a chunked body as they were recorded, each in pieces of at most ``amt`` bytes
    (urllib3's ``read_chunked``), and a body of known length in pieces of ``amt``; ``read(amt)``
    and ``readinto`` give as many bytes as asked while there are; ``tell`` counts the bytes read
    by ``read`` (not by a chunked ``stream``), as urllib3's does.
    """

    def __init__(self, chunks: Sequence[bytes], *, chunked: bool) -> None:
        self._chunks = chunks
        self._next = 0
        self._part = b""  # the rest of a chunk handed over in part
        self._chunked = chunked
        self._read_bytes = 0
        self._shut = False

    def readable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        # As urllib3's: closed once its body is read to the end, or closed.
        return self._shut or (not self._part and self._next >= len(self._chunks))

    def close(self) -> None:
        self._shut = True
        self._part = b""
        self._next = len(self._chunks)

    def flush(self) -> None:
        pass  # (nothing to flush: urllib3's does nothing either, closed or not)

    def release_conn(self) -> None:
        pass

    def drain_conn(self) -> None:
        self.read()

    def tell(self) -> int:
        return self._read_bytes

    def __iter__(self) -> Iterator[bytes]:
        # Lines, as urllib3's response gives them: split out of what `stream` hands over.
        pending = b""
        for piece in self.stream():
            *lines, pending = (pending + piece).split(b"\n")
            for line in lines:
                yield line + b"\n"
        if pending:
            yield pending

    def _take(self, amt: int | None) -> bytes | None:
        # The next piece of at most `amt` bytes of the current chunk, or None at the end.
        piece = self._part
        if piece:
            self._part = b""
        elif self._next < len(self._chunks):
            piece = self._chunks[self._next]
            self._next += 1
        else:
            return None
        if amt is not None and len(piece) > amt:
            self._part = piece[amt:]
            piece = piece[:amt]
        return piece

    def stream(self, amt: int | None = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        if not self._chunked:
            while data := self.read(amt):
                yield data
            return
        while (piece := self._take(amt)) is not None:
            yield piece

    def read(
        self, amt: int | None = None, decode_content: bool | None = None, cache_content: bool = False
    ) -> bytes:
        if amt is None:
            pieces = [self._part, *self._chunks[self._next :]]
            self._part = b""
            self._next = len(self._chunks)
            data = b"".join(pieces)
        else:
            gathered: list[bytes] = []
            wanted = amt
            while wanted > 0 and (piece := self._take(wanted)) is not None:
                gathered.append(piece)
                wanted -= len(piece)
            data = gathered[0] if len(gathered) == 1 else b"".join(gathered)
        self._read_bytes += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        size = len(data)
        b[:size] = data
        return size
