"""
The fast path of requests: a request the cassette answers plainly is answered in
``HTTPAdapter.send`` itself, with no urllib3 ``urlopen``, no connection, and no chunked framing
written or parsed.

``send`` takes its own steps first, as requests does (the pool for the request and its TLS
settings, the certificate check, the target, the timeout), then asks urllib3's pool door
(:func:`.urllib3_pool.plain_answer`) what it would answer for the very ``urlopen`` call ``send``
makes: the same checks (no proxy, urllib3's own connection classes, a request whose bytes on
the wire it can vouch for, a verified TLS pool, a status the adapter's ``Retry`` would neither
retry nor redirect, a recording that plays whole and cleanly with no fault, filter or pace), the
same request for the engine and the same attempt logged. Besides, the answer must be one this
hands over itself: not a chunked answer urllib3 would decode (a ``Content-Encoding``). The
client then gets what ``build_response`` makes (the adapter's own, so cookies, encoding and
the rest are requests') of the ``urllib3.HTTPResponse`` the pool would have returned, over the
``http.client`` response the connection door's wire gives, made in memory
(:func:`.urllib_request.replayed_response`): urllib3 reads it in every style with its own code,
and only a chunked answer's chunks are handed over by :class:`_Answered` straight from the
recording, as urllib3's ``read_chunked`` cuts them, instead of urllib3 parsing each chunk's
framing off the wire. Everything else (a miss, a fault, recording, a proxy, a retried status, a
chunked upload, an adapter that adds headers of its own) goes to the original ``send``, and
through it to the pool door and the connection door, unchanged.
"""

from __future__ import annotations

import bisect
import functools
import http.client
import inspect
import operator
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from .._exchange import Playback
from .._intercept import current_cassette
from .http_client import urllib3_v1
from .urllib3_pool import plain_answer, response
from .urllib_request import replayed_response

__all__ = ["patches"]

#: What ``send`` asks of ``urlopen`` besides the request: an unread answer, left encoded.
_RESPONSE_KW = {"preload_content": False, "decode_content": False}


def patches(module: ModuleType) -> list[tuple[Any, str, Any, Any]]:
    """``(class, attribute, original, replacement)``: requests' ``HTTPAdapter.send``."""
    owner = module.HTTPAdapter
    original = owner.__dict__["send"]
    if not hasattr(owner, "get_connection_with_tls_context") or getattr(original, "__module__", None) != (
        module.__name__
    ):
        # A requests before 2.32.2, whose `send` takes other steps, or a `send` someone else
        # replaced (a mock): left to the doors below.
        return []
    return [(owner, "send", original, _send(original, module))]


def _send(original: Callable[..., Any], adapters: ModuleType) -> Callable[..., Any]:
    timeout_class = adapters.TimeoutSauce
    # The headers an adapter adds (`add_headers`, requests' own a no-op) would be added twice
    # when the original `send` answers after all: an adapter that adds some goes there at once.
    own_add_headers = adapters.HTTPAdapter.add_headers

    def send(
        self: Any,
        request: Any,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> Any:
        __tracebackhide__ = True
        cassette = current_cassette()
        if cassette is not None and type(self).add_headers is own_add_headers:
            answered = _replay(self, cassette, request, timeout, verify, cert, proxies, timeout_class)
            if answered is not None:
                return answered
        return original(self, request, stream, timeout, verify, cert, proxies)

    send.__wrapped__ = original  # type: ignore[attr-defined]
    return send


def _replay(
    adapter: Any,
    cassette: Any,
    request: Any,
    timeout: Any,
    verify: Any,
    cert: Any,
    proxies: Any,
    timeout_class: type,
) -> Any:
    """The response of the fast path, or None for the original ``send`` to answer."""
    __tracebackhide__ = True
    body = request.body
    if body is not None and "Content-Length" not in request.headers:
        return None  # a chunked upload: the connection door's
    from urllib3.exceptions import LocationValueError

    try:
        pool = adapter.get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
    except LocationValueError:
        return None  # the original raises requests' InvalidURL
    # What fails here fails as in the original `send`, before anything is sent.
    adapter.cert_verify(pool, request.url, verify, cert)
    if pool.ConnectionCls.response_class is not http.client.HTTPResponse or (
        urllib3_v1() and pool.ResponseCls is not _urllib3_response()
    ):
        return None
    url = adapter.request_url(request, proxies)
    if isinstance(timeout, tuple):
        if len(timeout) != 2:
            return None  # the original raises its ValueError
        timeout = timeout_class(connect=timeout[0], read=timeout[1])
    elif not isinstance(timeout, timeout_class):
        timeout = timeout_class(connect=timeout, read=timeout)
    method = request.method
    played: list[Playback] = []

    def accept(playback: Playback) -> bool:
        if _decoded_chunks(playback):
            return False
        played.append(playback)
        return True

    found = plain_answer(
        pool,
        cassette,
        method,
        url,
        body,
        request.headers,
        adapter.max_retries,
        False,
        False,
        timeout,
        _RESPONSE_KW,
        accept,
    )
    if found is None:
        return None
    answer, retries, target = found
    raw: Any = replayed_response(answer, played[0], method)
    raw.msg = raw.headers  # as `begin` leaves it, where urllib3 and requests' cookies read it
    made = response(pool, raw, method, target, retries, _RESPONSE_KW, _answered_class())
    return adapter.build_response(request, made)


def _decoded_chunks(playback: Playback) -> bool:
    # A content coding on an answer the wire writer frames in chunks (all but one that declares
    # its length and none chunked): urllib3 decodes each chunk as it reads the framing.
    names = {
        name.lower()
        for name, value in playback.headers
        if name.lower() != "content-encoding" or value.strip()
    }
    return "content-encoding" in names and ("transfer-encoding" in names or "content-length" not in names)


def _urllib3_response() -> type:
    from urllib3.response import HTTPResponse

    return HTTPResponse


@functools.cache
def _answered_class() -> type:
    """:class:`_Answered`, made once urllib3 is imported (requests imports it first)."""
    base: Any = _urllib3_response()
    v1 = urllib3_v1()
    default_amt = inspect.signature(base.stream).parameters["amt"].default

    class _Answered(base):  # type: ignore[misc]
        """
        The ``urllib3.HTTPResponse`` the pool returns, but that the chunks of a chunked answer
        replayed in memory are handed over from the recording, cut as urllib3's
        ``read_chunked`` cuts the chunks it reads off the wire, with the same state left.
        """

        def stream(
            self, amt: int | None = default_amt, decode_content: bool | None = None
        ) -> Iterator[bytes]:
            # urllib3's `stream` of a chunked answer is its `read_chunked`, in a generator of its
            # own: handed over straight, one level less for every chunk to pass through.
            if amt != 0 and self.chunked and _in_memory(self._fp):
                return self.read_chunked(amt, decode_content=decode_content)
            return super().stream(amt, decode_content=decode_content)  # type: ignore[no-any-return]

        def read_chunked(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
            original = self._fp
            if not _in_memory(original):
                yield from super().read_chunked(amt, decode_content=decode_content)
                return
            self._init_decoder()
            if not self.chunked or self._decoder is not None:
                yield from super().read_chunked(amt, decode_content=decode_content)
                return
            body = original.fp
            with self._error_catcher():
                if body is None:
                    return  # read and closed already
                if amt is not None and amt <= 0:
                    if amt == 0 and not v1:
                        return
                    amt = None
                if not v1:
                    self._uncached_read_occurred = True
                chunks = body.chunks
                position = body.tell()
                if not position and (amt is None or amt >= _largest(body)):
                    # Every chunk whole, from the first: handed over by the interpreter's own
                    # loop, the body's place read off the iterator when it stops (or is left).
                    iterator = iter(chunks)
                    try:
                        yield from iterator
                    finally:
                        handed = len(chunks) - operator.length_hint(iterator)
                        if handed and not body.closed:
                            body.seek(body.size if handed == len(chunks) else body.ends[handed - 1])
                else:
                    yield from _cut(self, body, position, amt)
                self.chunk_left = 0  # as urllib3 leaves it, at the last chunk
                # As urllib3 ends it, after the last chunk and the trailer.
                original.close()
                original._left_at_close = None

    return _Answered


def _in_memory(original: Any) -> bool:
    # The chunked answer `replayed_response` made over the body in memory.
    return type(original).__name__ == "_ReplayedChunked" and type(original).__module__ == _REPLAYED_MODULE


_REPLAYED_MODULE = f"{__package__}.urllib_request"


def _cut(response: Any, body: Any, position: int, amt: int | None) -> Iterator[bytes]:
    """The chunks still to read of ``body`` (:class:`.urllib_request._Body`), cut at ``amt``."""
    ends = body.ends
    index = bisect.bisect_right(ends, position)
    while index < len(ends):
        left = ends[index] - position
        if amt is None or amt >= left:
            piece = body.read(left)
            response.chunk_left = None
            index += 1
        else:
            piece = body.read(amt)
            response.chunk_left = left - amt
        position += len(piece)
        yield piece


def _largest(body: Any) -> int:
    largest: int | None = getattr(body, "largest", None)
    if largest is None:
        largest = body.largest = max(map(len, body.chunks), default=0)
    return largest
