"""
The fast path of requests: a request the cassette answers plainly is answered in
``HTTPAdapter.send`` itself, with no urllib3 ``urlopen``, no connection, and no chunked framing
written or parsed.

``send`` takes requests' own steps first, in its order (the pool for the request and its TLS
settings, ``cert_verify``, the target, the timeout), then asks urllib3's pool door
(:func:`.urllib3_pool.plain_answer`) what it would answer for the very ``urlopen`` call ``send``
makes: the same checks (no proxy, urllib3's own connection classes, a request whose bytes on the
wire it can vouch for, a verified TLS pool, a status the adapter's ``Retry`` would neither retry
nor redirect, a recording that plays whole and cleanly with no fault, filter or pace), the same
request for the engine and the same attempt logged. Besides, the answer must not be a chunked
one urllib3 would decode (a ``Content-Encoding``), the upload not chunked, and the adapter's
``add_headers`` requests' own (it would add its headers twice when ``send`` goes below after
all). The client then gets what the adapter's own ``build_response`` makes (cookies, encoding
and the rest are requests') of the ``urllib3.HTTPResponse`` the pool would have returned
(:class:`_Answered`, a subclass), over the ``http.client`` response the connection door's wire
gives, made in memory (:func:`.urllib_request.replayed_response`): urllib3 reads it in every
style with its own code. Only a chunked answer's chunks are handed over from the recording, cut
as urllib3's ``read_chunked`` cuts the chunks it reads off the wire, with the state it leaves;
``read_chunked`` after ``read(n)`` reads the answer off the pool door's wire (:func:`_wired`),
where urllib3 reads the framing from where ``read`` left it, or fails as it fails there
(``read1()`` and ``peek()`` end at ``http.client``'s buffers through the response in memory
itself, which reads off that wire for them). On urllib3 1.26, ``read_chunked(0)`` returns
nothing where urllib3 reads 0 bytes for ever, and a negative size reads whole chunks where
urllib3 misreads the framing.

Two things are remembered to make this cheap: the pool requests' steps found for an origin (per
adapter, held weakly: :func:`_route`), asked of the pool manager again by its key as requests
asks it; and the state urllib3 leaves on the response it makes of a head (:func:`_made`).
Everything else (a miss, a fault, recording, a proxy, a retried status, a chunked upload, an
adapter that adds headers) goes to the original ``send``, and through it to the pool door and
the connection door, unchanged.
"""

from __future__ import annotations

import bisect
import collections
import functools
import http.client
import inspect
import operator
import os
import socket
import weakref
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any, cast

from .._exchange import Playback
from .._intercept import current_cassette
from ._wire import encode_body, engine_lines
from .http_client import AnsweredSocket, head_file, urllib3_v1
from .urllib3_pool import plain_answer, replayed_class, response
from .urllib_request import _Replayed, _ReplayedChunked, replayed_response

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
    base = adapters.HTTPAdapter
    timeout_class = adapters.TimeoutSauce
    # The headers an adapter adds (`add_headers`, requests' own a no-op) would be added twice
    # when the original `send` answers after all: an adapter that adds some goes there at once.
    own_add_headers = base.add_headers
    # The steps that find and check a request's pool and its target: an adapter's own would be
    # taken twice when the original `send` answers after all, so such an adapter goes there at
    # once; requests' own are remembered (`_route`).
    routing = (
        "get_connection_with_tls_context",
        "build_connection_pool_key_attributes",
        "request_url",
        "cert_verify",
    )
    own_routing = {name: getattr(base, name) for name in routing}

    known: dict[type, bool] = {}

    def routes_as_requests(adapter_class: type) -> bool:
        own = known.get(adapter_class)
        if own is None:
            own = known[adapter_class] = all(
                getattr(adapter_class, name) is step for name, step in own_routing.items()
            )
        return own

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
        adapter_class = type(self)
        if (
            cassette is not None
            and adapter_class.add_headers is own_add_headers
            and routes_as_requests(adapter_class)
        ):
            answered = _replay(self, cassette, request, timeout, verify, cert, proxies, timeout_class)
            if answered is not None:
                return answered
        return original(self, request, stream, timeout, verify, cert, proxies)

    send.__wrapped__ = original  # type: ignore[attr-defined]
    return send


#: Where requests' own steps route a request, by adapter (by its id, held weakly, forgotten when
#: it goes), then by origin and TLS settings: the adapter's pool manager and the key of the pool
#: in it (see :func:`_route`). An adapter's are emptied when they are this many.
_ROUTES: dict[int, tuple[weakref.ref[Any], dict[tuple[Any, ...], tuple[Any, Any]]]] = {}
_MOST_ROUTES = 1024


def _routes_of(adapter: Any) -> dict[tuple[Any, ...], tuple[Any, Any]] | None:
    # (by id rather than in a weak-keyed mapping, which makes a weak reference at every lookup)
    known = _ROUTES.get(id(adapter))
    if known is None or known[0]() is not adapter:
        return None
    return known[1]


def _forget(adapter_id: int, held: weakref.ref[Any]) -> None:
    known = _ROUTES.get(adapter_id)
    if known is not None and known[0] is held:
        del _ROUTES[adapter_id]


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
    headers = request.headers
    if type(headers) is _insensitive_dict():
        # Its items, in order, as a dict (its names differ even in case): what `urlopen` reads
        # of them, read at once rather than name by name through its mapping methods; and
        # whether it has a length, looked up in that store (by its names in lower case).
        store = headers._store
        if body is not None and "content-length" not in store:
            return None  # a chunked upload: the connection door's
        headers = dict(store.values())
    elif body is not None and "Content-Length" not in headers:
        return None
    routed = _route(adapter, request, verify, cert, proxies)
    if routed is None:
        return None
    pool, url = routed
    if pool.ConnectionCls.response_class is not http.client.HTTPResponse or (
        urllib3_v1() and pool.ResponseCls is not _urllib3_response()
    ):
        return None
    timeout = _urlopen_timeout(timeout, timeout_class)
    if timeout is _INVALID:
        return None  # the original raises its ValueError
    method = request.method
    played: list[Playback] = []

    def accept(playback: Playback) -> bool:
        if _decoded_chunks(playback.headers):
            return False
        played.append(playback)
        return True

    found = plain_answer(
        pool,
        cassette,
        method,
        url,
        body,
        headers,
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
    playback = played[0]
    raw: Any = replayed_response(answer, playback, method)
    raw.msg = raw.headers  # as `begin` leaves it, where urllib3 and requests' cookies read it
    made = _made(pool, raw, playback, method, target, retries)
    made._answer = (answer, method)
    return adapter.build_response(request, made)


def _wired(answer: Any, method: str, chunks: Sequence[bytes]) -> http.client.HTTPResponse:
    """The ``http.client`` response urllib3's pool door makes of ``answer`` (its ``chunks`` in memory)."""
    lines, chunked, length = engine_lines(answer, method=method)
    body = encode_body(chunks, chunked=chunked, length=length)
    file = head_file(lines, answer.status_code, body, on_close=answer.stream.close)
    wired = http.client.HTTPResponse(cast(socket.socket, AnsweredSocket(file)), method=method)
    wired.begin()
    return wired


def _route(adapter: Any, request: Any, verify: Any, cert: Any, proxies: Any) -> tuple[Any, str] | None:
    """
    The pool ``send`` would take for ``request``, checked by ``cert_verify`` as ``send`` checks
    it, and the target it would ask for; None where ``send`` would fail to find them (it then
    fails as it does). With no proxy and a client certificate of one file or none, the pool
    requests' steps found for an origin is remembered: it is then asked of the pool manager by
    its key, which moves it to the front of the manager's pools as
    ``get_connection_with_tls_context`` does, and the target is the request's ``path_url``, as
    ``request_url`` finds it with no proxy. Whether a CA bundle's path is a directory is looked
    up on every request, as requests looks it up: a path can become a folder between two
    requests, and the pool is then another.
    """
    key: tuple[Any, ...] | None = None
    url = request.url
    if not proxies and (cert is None or type(cert) is str) and type(url) is str:
        start = url.find("://")
        end = url.find("/", start + 3) if start > 0 else -1
        if end > 0:
            if type(verify) is bool:
                key = (url[:end], verify, cert, None)
            elif type(verify) is str:
                # Which of its settings a CA bundle's path becomes (`ca_certs` or `ca_cert_dir`).
                key = (url[:end], verify, cert, os.path.isdir(verify))
    routes = _routes_of(adapter) if key is not None else None
    known = routes.get(key) if routes is not None and key is not None else None
    pool = None
    if known is not None:
        manager, pool_key = known
        if adapter.poolmanager is manager:
            pool = manager.pools.get(pool_key)
    if pool is None:
        from urllib3.exceptions import LocationValueError

        try:
            pool = adapter.get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
        except LocationValueError:
            return None
        if key is not None:
            _remember(adapter, key, pool)
        # What fails here fails as in the original `send`, before anything is sent.
        adapter.cert_verify(pool, url, verify, cert)
        return pool, adapter.request_url(request, proxies)
    adapter.cert_verify(pool, url, verify, cert)
    return pool, _path_url(request, url)


#: The ``path_url`` of each URL, as requests' own request makes it (its ``urlsplit`` keeps far
#: fewer); emptied when it holds this many.
_PATHS: dict[str, str] = {}
_MOST_PATHS = 1024


def _path_url(request: Any, url: str) -> str:
    # A function of the URL alone on requests' own request: made once per URL.
    if type(request) is not _prepared_request():
        return cast(str, request.path_url)
    path = _PATHS.get(url)
    if path is None:
        path = request.path_url
        if len(_PATHS) >= _MOST_PATHS:
            _PATHS.clear()
        _PATHS[url] = path
    return path


@functools.cache
def _insensitive_dict() -> Any:
    from requests.structures import CaseInsensitiveDict

    return CaseInsensitiveDict


@functools.cache
def _prepared_request() -> Any:
    from requests.models import PreparedRequest

    return PreparedRequest


def _remember(adapter: Any, key: tuple[Any, ...], pool: Any) -> None:
    # The key of `pool`, the one the manager just handed out: the most recent of its pools.
    manager = adapter.poolmanager
    pools = getattr(manager, "pools", None)
    lock = getattr(pools, "lock", None)
    container = getattr(pools, "_container", None)
    if lock is None or not isinstance(container, collections.OrderedDict):
        return  # a pool manager of another make: asked every time
    with lock:
        last = next(reversed(container.items()), None)
    if last is None or last[1] is not pool:
        return
    routes = _routes_of(adapter)
    if routes is None:
        try:
            held = weakref.ref(adapter, functools.partial(_forget, id(adapter)))
        except TypeError:  # an adapter that cannot be referred to weakly
            return
        routes = {}
        _ROUTES[id(adapter)] = (held, routes)
    if len(routes) >= _MOST_ROUTES:
        routes.clear()
    routes[key] = (manager, last[0])


_INVALID = object()


def _urlopen_timeout(timeout: Any, timeout_class: type) -> Any:
    # The timeout `send` gives `urlopen`; a number or None where that is all urllib3 reads of it
    # (the read timeout of a `Timeout` with both set to it); _INVALID where `send` raises.
    if timeout is None or (type(timeout) in (int, float) and timeout > 0):
        return timeout
    try:
        if isinstance(timeout, tuple):
            connect, read = timeout
            if _plain_timeout(connect) and _plain_timeout(read):
                return read
            return timeout_class(connect=connect, read=read)
        if isinstance(timeout, timeout_class):
            return timeout
        return timeout_class(connect=timeout, read=timeout)
    except ValueError:  # (`send` words its own for a tuple)
        return _INVALID


def _plain_timeout(value: Any) -> bool:
    return value is None or (type(value) in (int, float) and value > 0)


@functools.lru_cache(maxsize=256)
def _decoded_chunks(headers: tuple[tuple[str, str], ...]) -> bool:
    # A content coding on an answer the wire writer frames in chunks (all but one that declares
    # its length and none chunked): urllib3 decodes each chunk as it reads the framing.
    names = {name.lower() for name, value in headers if value.strip()}
    return "content-encoding" in names and ("transfer-encoding" in names or "content-length" not in names)


#: The state urllib3 leaves on the response it makes of each head (see :func:`_made`), by what
#: the head is made of; False for one whose state is not all plain values. Emptied at this many.
_MADE: dict[tuple[Any, ...], dict[str, Any] | bool] = {}
_MOST_MADE = 1024
#: What differs from one response of a head to the next: set on each.
_PER_RESPONSE = frozenset(
    {
        "_fp",
        "_original_response",
        "retries",
        "_retries",
        "_pool",
        "_request_url",
        "headers",
        "_decoded_buffer",
        "_sock_shutdown",  # (the same for every response, and none of a plain value)
    }
)
_PLAIN_VALUES = (type(None), bool, int, float, str, bytes, tuple)


def _made(pool: Any, raw: Any, playback: Playback, method: str, target: str, retries: Any) -> Any:
    """
    The ``urllib3.HTTPResponse`` (an :class:`_Answered`) the pool makes of ``raw``: made by
    urllib3 for the first answer of a head, and for the next ones given the state it left on
    that one (all plain values) but what differs per response, which is what its constructor
    would set again.
    """
    made_class = _answered_class()
    if not _in_memory_any(raw):
        return response(pool, raw, method, target, retries, _RESPONSE_KW, made_class, held=True)
    key = (playback.status, playback.reason, playback.headers, method)
    state = _MADE.get(key)
    if state is None:
        made = response(pool, raw, method, target, retries, _RESPONSE_KW, made_class, held=True)
        if len(_MADE) >= _MOST_MADE:
            _MADE.clear()
        _MADE[key] = _state_of(made)
        return made
    if state is False:
        return response(pool, raw, method, target, retries, _RESPONSE_KW, made_class, held=True)
    assert isinstance(state, dict)
    made_any: Any = made_class
    answered = made_any.__new__(made_class)
    fields = answered.__dict__
    fields.update(state)
    fields["headers"] = _copied(state["headers"])
    buffer = state.get("_decoded_buffer")
    if buffer is not None:
        fields["_decoded_buffer"] = type(buffer)()
    fields["_fp"] = fields["_original_response"] = raw
    fields["_pool"] = pool
    if not urllib3_v1():  # (1.26's pool gives its response no URL)
        fields["_request_url"] = target
    answered.retries = retries  # (a property on urllib3 2.x, which may set the URL from it)
    return answered


def _copied(headers: Any) -> Any:
    # A copy of urllib3's `HTTPHeaderDict` with what its own copy holds (each name's list of its
    # spelling and values, in order), made from that store at once rather than name by name.
    container = headers._container
    copy = object.__new__(type(headers))
    if type(container) is dict:
        copy._container = {name: values[:] for name, values in container.items()}
    else:  # (an OrderedDict on urllib3 1.26)
        copy._container = type(container)((name, values[:]) for name, values in container.items())
    return copy


def _state_of(made: Any) -> dict[str, Any] | bool:
    # What urllib3 left on `made` but what differs per response, when all of it is plain values.
    state = dict(made.__dict__)
    from urllib3._collections import HTTPHeaderDict

    if type(made.headers) is not HTTPHeaderDict:
        return False  # (copied by its own class's means: `_copied` knows urllib3's alone)
    if any(
        name not in _PER_RESPONSE and not isinstance(value, _PLAIN_VALUES) for name, value in state.items()
    ):
        return False
    buffer = state.get("_decoded_buffer")
    if buffer is not None and len(buffer):
        return False
    state["headers"] = type(made.headers)(made.headers)  # a copy, never handed out
    return state


def _in_memory_any(raw: Any) -> bool:
    # An answer `replayed_response` made over the body in memory, chunked or not.
    kind = type(raw)
    return kind is _ReplayedChunked or kind is _Replayed


def _urllib3_response() -> type:
    from urllib3.response import HTTPResponse

    return HTTPResponse


@functools.cache
def _answered_class() -> type:
    """:class:`_Answered`, made once urllib3 is imported (requests imports it first)."""
    v1 = urllib3_v1()
    base: Any = _urllib3_response() if v1 else replayed_class()
    default_amt = inspect.signature(base.stream).parameters["amt"].default

    class _Answered(base):  # type: ignore[misc]
        """
        The ``urllib3.HTTPResponse`` the pool returns, but that the chunks of a chunked answer
        replayed in memory are handed over from the recording, cut as urllib3's
        ``read_chunked`` cuts the chunks it reads off the wire, with the same state left.
        """

        #: The engine's answer and the request's method, while the body may still be read off
        #: the door's wire (see `read_chunked`).
        _answer: tuple[Any, str] | None = None
        #: Where the chunks `read_chunked` handed over end in the body.
        _chunked_to = 0
        _fp: Any

        #: The chunks being handed over whole, while they are (see `read_chunked`).
        _handing: Iterator[bytes] | None = None

        def _handed(self) -> bool:
            # Whether the chunks read so far were handed over (their framing read with them, as
            # urllib3 reads it); the body's place brought up to date, and the handing over
            # ended, for a shutdown to cut the answer there (`read_chunked` then reads on).
            original: Any = self._fp
            if not _in_memory(original):
                return False
            body = original.fp
            iterator: Any = self._handing
            if iterator is not None:
                self._handing = None
                count = len(body.chunks)
                handed = count - operator.length_hint(iterator)
                iterator.__setstate__(count)  # (a list's or a tuple's iterator: it stops there)
                if handed:
                    body.seek(body.ends[handed - 1])
                    self._chunked_to = body.tell()
            return bool(self._chunked_to) and body.tell() == self._chunked_to

        def stream(
            self, amt: int | None = default_amt, decode_content: bool | None = None
        ) -> Iterator[bytes]:
            # urllib3's `stream` of a chunked answer is its `read_chunked`, in a generator of its
            # own: handed over straight, one level less for every chunk to pass through.
            if amt != 0 and self.chunked and _in_memory(self._fp):
                return self.read_chunked(amt, decode_content=decode_content)
            return super().stream(amt, decode_content=decode_content)  # type: ignore[no-any-return]

        def read_chunked(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
            original: Any = self._fp
            if not _in_memory(original):
                yield from super().read_chunked(amt, decode_content=decode_content)
                return
            self._init_decoder()
            if not self.chunked or self._decoder is not None:
                yield from super().read_chunked(amt, decode_content=decode_content)
                return
            body: Any = original.fp
            if body is not None and body.tell() != self._chunked_to and self._answer is not None:
                # Read by `read` (http.client's reading of the chunks) since: urllib3 reads the
                # framing from where that left the wire, as below, and fails as it fails there.
                answer, method = self._answer
                self._answer = None
                wired = _wired(answer, method, body.chunks)
                wired.read(body.tell())
                self._fp = self._original_response = wired
                yield from super().read_chunked(amt, decode_content=decode_content)
                return
            # What urllib3's `_error_catcher` does around its reading, inline (its translations
            # of socket and HTTP errors aside: a body in memory raises none): left on an error,
            # the response is closed; either way released once its original one is closed.
            try:
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
                # (a size past the whole body's is past its largest chunk's: not looked for)
                if not position and (amt is None or amt >= body.size or amt >= _largest(body)):
                    # Every chunk whole, from the first: handed over by the interpreter's own
                    # loop, the body's place read off the iterator when it stops (or is left,
                    # or a shutdown asks: `_handed`).
                    iterator = self._handing = iter(chunks)
                    try:
                        yield from iterator
                    finally:
                        self._handing = None
                        handed = len(chunks) - operator.length_hint(iterator)
                        if handed and not body.closed:
                            body.seek(body.size if handed == len(chunks) else body.ends[handed - 1])
                            self._chunked_to = body.tell()
                else:
                    yield from _cut(self, body, position, amt)
                if original.fp is not body:
                    # Cut by a shutdown: urllib3 reads on what is left of the wire, and fails
                    # as it fails at the connection's end.
                    yield from super().read_chunked(amt, decode_content=decode_content)
                    return
                self.chunk_left = 0  # as urllib3 leaves it, at the last chunk
                # As urllib3 ends it, after the last chunk and the trailer.
                original.close()
                original._left_at_close = None
            except BaseException:  # (a generator left mid-way too: GeneratorExit)
                if self._original_response:
                    self._original_response.close()
                if self._connection:
                    self._connection.close()
                raise
            finally:
                if self._original_response and self._original_response.isclosed():
                    self.release_conn()

    return _Answered


def _in_memory(original: Any) -> bool:
    # The chunked answer `replayed_response` made over the body in memory, still read from there
    # (not off the door's wire, nor cut by a shutdown).
    return type(original) is _ReplayedChunked and not original._on_wire


def _cut(response: Any, body: Any, position: int, amt: int | None) -> Iterator[bytes]:
    """The chunks still to read of ``body`` (:class:`.urllib_request._Body`), cut at ``amt``."""
    ends = body.ends
    index = bisect.bisect_right(ends, position)
    while index < len(ends) and not body.closed:  # (closed: cut by a shutdown)
        left = ends[index] - position
        if amt is None or amt >= left:
            piece = body.read(left)
            response.chunk_left = None
            index += 1
        else:
            piece = body.read(amt)
            response.chunk_left = left - amt
        position += len(piece)
        response._chunked_to = position
        yield piece


def _largest(body: Any) -> int:
    largest: int | None = getattr(body, "largest", None)
    if largest is None:
        largest = body.largest = max(map(len, body.chunks), default=0)
    return largest
