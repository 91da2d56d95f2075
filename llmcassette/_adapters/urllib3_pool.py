"""
The fast path of urllib3's pool (and through it of requests and botocore, whose pools inherit
``urlopen``): a request the cassette answers plainly is answered in ``urlopen`` itself, with no
connection, no request written and none parsed back.

It is taken only when nothing would tell it from the connection door (:mod:`.http_client`) below
it: the request is one whose bytes on the wire this module writes exactly as urllib3 and
``http.client`` would (:func:`wire_request`: a known method, a body of bytes or ASCII text, no
proxy, the library's own connection classes, headers it can vouch for), the cassette would replay
it exactly as recorded with nothing acting on it (no fault, filter or pace; replaying, not
recording), the recording plays whole and cleanly, the call's ``Retry`` would neither retry
its status nor follow it as a redirect, and the pool is open and not blocking. The engine then
sees the request the connection would have sent (method, URL, the headers as they would go on
the wire, the body), logs it in the same attempt, and the client gets the
``urllib3.HTTPResponse`` its connection would have made, over an ``http.client`` response that
reads the same bytes (:func:`.http_client.answered_file`), so every reading style sees the
recorded chunks and requests finds the ``.msg`` it takes cookies from. Everything else (a miss,
a fault, a retried status, recording, a body of another kind, a closed or blocking pool) goes
through the original ``urlopen``, to the connection door, unchanged.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .._exchange import Playback
from .._intercept import current_cassette
from ._wire import engine_request, engine_url, wire_flavor
from .http_client import (
    LEGAL_HEADER_NAME,
    UNSAFE_TARGET,
    AnsweredSocket,
    answered_file,
    urllib3_v1,
    wire_url,
    would_verify,
)
from .urllib_request import shut_down

__all__ = ["patches", "plain_answer", "replayed_class", "response", "wire_request"]

#: Statuses urllib3 follows as redirects when they carry a location: left to the connection door.
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: The methods whose framing urllib3 2.x and ``http.client`` (urllib3 1.26) write alike: without
#: a body, no ``Content-Length`` for the first, ``Content-Length: 0`` for the second.
_BODILESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
_BODIED = frozenset({"POST", "PUT", "PATCH"})
#: The response arguments urllib3 2.x's pool takes (1.26 hands any to ``HTTPResponse``, as here).
_RESPONSE_KW = frozenset({"preload_content", "decode_content", "enforce_content_length"})
#: More header lines than ``http.client`` reads (100) are left to the connection door, which
#: fails as the library does.
_MOST_HEADERS = 90


def patches(module: ModuleType) -> list[tuple[Any, str, Any, Any]]:
    """``(class, attribute, original, replacement)``: urllib3's ``HTTPConnectionPool.urlopen``."""
    owner = module.HTTPConnectionPool
    original = owner.__dict__["urlopen"]
    return [(owner, "urlopen", original, _urlopen(original))]


def _urlopen(original: Callable[..., Any]) -> Callable[..., Any]:
    default_timeout = inspect.signature(original).parameters["timeout"].default

    def urlopen(
        self: Any,
        method: str,
        url: str,
        body: Any = None,
        headers: Any = None,
        retries: Any = None,
        redirect: bool = True,
        assert_same_host: bool = True,
        timeout: Any = default_timeout,
        pool_timeout: Any = None,
        release_conn: Any = None,
        chunked: bool = False,
        body_pos: Any = None,
        **response_kw: Any,
    ) -> Any:
        __tracebackhide__ = True
        cassette = current_cassette()
        if cassette is not None and not chunked and body_pos is None:
            response = _replay(
                self,
                cassette,
                method,
                url,
                body,
                headers,
                retries,
                redirect,
                assert_same_host,
                timeout,
                release_conn,
                response_kw,
            )
            if response is not None:
                return response
        return original(
            self,
            method,
            url,
            body,
            headers,
            retries,
            redirect,
            assert_same_host,
            timeout=timeout,
            pool_timeout=pool_timeout,
            release_conn=release_conn,
            chunked=chunked,
            body_pos=body_pos,
            **response_kw,
        )

    urlopen.__wrapped__ = original  # type: ignore[attr-defined]
    return urlopen


def _replay(
    pool: Any,
    cassette: Any,
    method: str,
    url: str,
    body: Any,
    headers: Any,
    retries: Any,
    redirect: bool,
    assert_same_host: bool,
    timeout: Any,
    release_conn: Any,
    response_kw: dict[str, Any],
) -> Any:
    """The response of the fast path, or None for the original ``urlopen`` to answer."""
    __tracebackhide__ = True
    found = plain_answer(
        pool, cassette, method, url, body, headers, retries, redirect, assert_same_host, timeout, response_kw
    )
    if found is None:
        return None
    answer, retries, target = found
    raw = pool.ConnectionCls.response_class(AnsweredSocket(answered_file(answer, method)), method=method)
    raw.begin()
    if release_conn is None:
        release_conn = response_kw.get("preload_content", True)
    return response(pool, raw, method, target, retries, response_kw, held=not release_conn)


def plain_answer(
    pool: Any,
    cassette: Any,
    method: str,
    url: str,
    body: Any,
    headers: Any,
    retries: Any,
    redirect: bool,
    assert_same_host: bool,
    timeout: Any,
    response_kw: dict[str, Any],
    accept: Callable[[Playback], bool] | None = None,
) -> tuple[Any, Any, str] | None:
    """
    What the cassette answers ``pool.urlopen(method, url, ...)`` with on the fast path, if it
    does: the engine's answer (a :class:`._wire.WireResponse`), the call's ``Retry`` and the
    request's target; None, with nothing taken or logged, for the original ``urlopen`` to
    answer. ``accept`` is asked too, of a recording the pool would hand back as it is: a door
    above the pool (requests' adapter) declines what it cannot hand over itself.
    """
    __tracebackhide__ = True
    connection_class = pool.ConnectionCls
    if not _plain_connection(connection_class) or pool.proxy is not None or pool.proxy_headers:
        return None
    if not url.startswith("/") or (assert_same_host and not pool.is_same_host(url)):
        return None
    if not urllib3_v1() and not _RESPONSE_KW.issuperset(response_kw):
        return None  # urllib3 2.x refuses any other (a TypeError), as the connection door shows
    if pool.pool is None or pool.block:
        # Closed, urllib3 raises ClosedPoolError; blocking, a call waits (then EmptyPoolError)
        # while unreleased responses hold every connection, and a fast-path answer holds none.
        return None
    if pool.scheme == "https" and not _verified(pool):
        return None  # the connection door warns of it (InsecureRequestWarning), as urllib3 does live
    wire = wire_request(
        pool, connection_class, method, url, pool.headers if headers is None else headers, body
    )
    if wire is None:
        return None
    target, full_url, raw_headers, content, wire_url = wire
    urllib3 = sys.modules["urllib3"]
    if not isinstance(retries, urllib3.Retry):
        retries = urllib3.Retry.from_int(retries, redirect=redirect, default=pool.retries)
    if timeout is None or (type(timeout) in (int, float) and timeout > 0):
        timeout_s = timeout  # the read timeout urllib3 makes of it (Timeout.from_float), unmade
    else:
        timer = pool._get_timeout(timeout)  # a copy: urllib3 times each call on its own
        # As urllib3 does before it connects: a total timeout gives a read timeout only from then.
        timer.start_connect()
        read_timeout = timer.read_timeout
        if read_timeout == 0:
            return None  # urllib3 raises its ReadTimeoutError before it reads
        timeout_s = read_timeout if isinstance(read_timeout, (int, float)) else None
    request = engine_request(method, full_url, raw_headers, content, wire_url=wire_url)
    request.extensions["timeout"] = {
        "connect": timeout_s,
        "read": timeout_s,
        "write": timeout_s,
        "pool": timeout_s,
    }

    def plain(playback: Playback) -> bool:
        # What urlopen would hand back as it is: no redirect to follow, no status to retry.
        status = playback.status
        if status < 200 or status in _REDIRECTS or len(playback.headers) > _MOST_HEADERS:
            return False
        retry_after = any(name.lower() == "retry-after" and value for name, value in playback.headers)
        if retries.is_retry(method, status, retry_after):
            return False
        return accept is None or accept(playback)

    answer = cassette.replay_plain(wire_flavor(), request, content, plain)
    if answer is None:
        return None
    pool.num_requests += 1
    return answer, retries, target


def response(
    pool: Any,
    raw: Any,
    method: str,
    target: str,
    retries: Any,
    response_kw: dict[str, Any],
    response_class: type | None = None,
    *,
    held: bool = False,
) -> Any:
    """
    The ``urllib3.HTTPResponse`` over ``raw`` that the pool's connection would have made of it;
    of ``response_class`` (a subclass of it) when given, else on urllib3 2.x of
    :func:`replayed_class`. ``held``: whether it would hold its connection until released (the
    call's ``release_conn``, false by default when it preloads the body).
    """
    from urllib3.exceptions import HeaderParsingError
    from urllib3.util.response import assert_header_parsing

    try:
        assert_header_parsing(raw.msg)
    except (HeaderParsingError, TypeError) as exc:  # as the library does: a warning, and read on
        _header_warning(pool, target, exc)
    if urllib3_v1():
        response_kw = {**response_kw, "request_method": method}
        made: Any = response_class or pool.ResponseCls
        return made.from_httplib(raw, pool=pool, connection=None, retries=retries, **response_kw)
    from urllib3 import connection
    from urllib3._collections import HTTPHeaderDict

    # urllib3's own reading of the header block where it has one (it unfolds continued values,
    # in the message too, which requests takes cookies from), else the message's items.
    header_items = getattr(connection, "_normalize_header_values", _message_items)(raw.msg)
    response = (response_class or replayed_class())(
        body=raw,
        headers=HTTPHeaderDict(header_items),
        status=raw.status,
        version=raw.version,
        version_string="HTTP/1.1",
        reason=raw.reason,
        preload_content=response_kw.get("preload_content", True),
        decode_content=response_kw.get("decode_content", True),
        original_response=raw,
        enforce_content_length=response_kw.get("enforce_content_length", True),
        request_method=method,
        request_url=target,
        **_shutdown_kw(),
    )
    response.retries = retries
    response._connection = None
    response._pool = pool
    response._held = held
    return response


def _no_socket(how: int) -> None:
    # What the response keeps to shut its connection's socket with (urllib3 refuses a shutdown
    # when it has none): never called, as the response has no connection (`shutdown` cuts its
    # answer instead).
    raise AssertionError("llmcassette: a replayed response has no socket to shut down.")


@functools.cache
def _shutdown_kw() -> dict[str, Any]:
    from urllib3.response import HTTPResponse

    takes = "sock_shutdown" in inspect.signature(HTTPResponse.__init__).parameters
    return {"sock_shutdown": _no_socket} if takes else {}


@functools.cache
def replayed_class() -> type:
    """
    urllib3's ``HTTPResponse`` (2.x) as the fast path makes it: it holds no connection, but
    ``shutdown`` does what shutting the connection's socket does live while the response holds
    it (until released, by the client or at the end of the body): nothing more of the answer
    arrives (:func:`.urllib_request.shut_down`). Released or closed, it refuses as urllib3 does.
    urllib3's own class before 2.3, whose responses have no ``shutdown``.
    """
    from urllib3.response import HTTPResponse

    if not _shutdown_kw():
        return HTTPResponse

    class ReplayedResponse(HTTPResponse):
        #: Whether the response would hold its connection live (see `response`).
        _held = False

        def release_conn(self) -> None:
            self._held = False
            super().release_conn()

        def shutdown(self) -> None:
            if not (self._held and self._sock_shutdown and self._fp is not None):
                super().shutdown()  # (refused, as urllib3 refuses it)
                return
            left: int | None = self.chunk_left  # (urllib3's own reading of the chunks)
            if left or self._handed():
                shut_down(self._fp, left, bool(left))
            else:  # (read by `http.client`, or not at all)
                left = getattr(self._fp, "chunk_left", None)
                shut_down(self._fp, left, left is not None)

        def _handed(self) -> bool:
            # Whether urllib3 handed over the chunks read so far, their framing read with them.
            return False

    return ReplayedResponse


def _header_warning(pool: Any, target: str, exc: Exception) -> None:
    # Logged where and as the library logs it live: 1.26 from its pool, with the pool's URL;
    # 2.x from its connection, with the URL it makes of a connection to the pool's host.
    if urllib3_v1():
        logger, url = "urllib3.connectionpool", pool._absolute_url(target)
    else:
        from urllib3.connection import _url_from_connection

        connection = pool.ConnectionCls(host=pool.host, port=pool.port)  # (not connected)
        logger, url = "urllib3.connection", _url_from_connection(connection, target)
    logging.getLogger(logger).warning("Failed to parse headers (url=%s): %s", url, exc, exc_info=True)


def _message_items(message: Any) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = message.items()
    return items


def _verified(pool: Any) -> bool:
    # What the pool's connections would make of its settings: their `cert_reqs`, or their SSL
    # context's when the pool gives none.
    cert_reqs = pool.cert_reqs
    if cert_reqs is None:
        context = pool.conn_kw.get("ssl_context")
        cert_reqs = None if context is None else context.verify_mode
    return would_verify(cert_reqs, pool.assert_fingerprint)


@functools.lru_cache(maxsize=64)
def _plain_connection(connection_class: type) -> bool:
    # urllib3's own connection classes and botocore's (which only add `Expect: 100-continue`,
    # left to the connection door): their requests are written as `wire_request` writes them.
    name = (connection_class.__module__, connection_class.__qualname__)
    return name in {
        ("urllib3.connection", "HTTPConnection"),
        ("urllib3.connection", "HTTPSConnection"),
        ("botocore.awsrequest", "AWSHTTPConnection"),
        ("botocore.awsrequest", "AWSHTTPSConnection"),
    }


#: The head `wire_request` wrote of each request, by its parts (a suite sends the same few heads
#: again and again), and what `_wire_head` made of each set of header names, whatever their
#: values (botocore's heads differ in their values only: a signature, a date and an id); each
#: emptied when it holds this many.
_HEADS: dict[tuple[Any, ...], Any] = {}
_SHAPES: dict[tuple[Any, ...], Any] = {}
_MOST_HEADS = 1024
_DECLINED = object()
#: urllib3's marker (``SKIP_HEADER``) of a default header not to be written.
_SKIP_HEADER = "@@@SKIP_HEADER@@@"
#: A request's parts its head depends on: its connection class, host, port, method, URL, whether
#: it has no body, and its body's length.
_Parts = tuple[Any, str, int | None, str, str, bool, int]


def _remember(memo: dict[tuple[Any, ...], Any], key: tuple[Any, ...], value: Any) -> None:
    if len(memo) >= _MOST_HEADS:
        memo.clear()
    memo[key] = value


def wire_request(
    pool: Any, connection_class: Any, method: str, url: str, headers: Any, body: Any
) -> tuple[str, str, list[tuple[bytes, bytes]], bytes, str | None] | None:
    """
    The request as the pool's connection would write it, as the connection door reads it back:
    its target, its URL, its header lines in order (stripped, as :func:`._wire.parse_request`
    reads them), its body, and the URL the engine's request has (:func:`._wire.engine_url`),
    found with the rest once per head; None for a request this cannot vouch for.
    """
    if body is None:
        content = b""
    elif isinstance(body, bytes):
        content = body
    elif isinstance(body, str) and body.isascii():  # latin-1 on 1.26, UTF-8 on 2.x: alike in ASCII
        content = body.encode("ascii")
    else:
        return None
    bodiless = body is None
    fields = tuple(headers.items())
    parts: _Parts = (connection_class, pool.host, pool.port, method, url, bodiless, len(content))
    try:
        head = _HEADS.get((*parts, fields))
        kept = True
    except TypeError:  # a header that is no text (then no hashable one): declined below
        head, kept = None, False
    if head is None:
        head = _wire_lines(parts, tuple([name for name, _ in fields]), fields)
        if kept:
            _remember(_HEADS, (*parts, fields), head)
    if head is _DECLINED:
        return None
    target, full_url, lines, wire_url = head
    return target, full_url, list(lines), content, wire_url


def _wire_lines(parts: _Parts, names: tuple[Any, ...], fields: tuple[Any, ...]) -> Any:
    # The target, the URL, the header lines and the engine's URL of `wire_request`, or
    # _DECLINED: what is written of the names (found by them), with the values read and checked
    # here.
    try:
        shape = _SHAPES.get((*parts, names))
    except TypeError:  # a name that is no text
        return _DECLINED
    if shape is None:
        shape = _wire_head(*parts, names)
        _remember(_SHAPES, (*parts, names), shape)
    if shape is _DECLINED:
        return _DECLINED
    target, full_url, before, given_names, after = shape
    lines = list(before)
    for name_bytes, (_, value) in zip(given_names, fields, strict=True):
        if isinstance(value, str):
            if not value.isascii() or value == _SKIP_HEADER:
                return _DECLINED  # (a skipped header: the connection door's)
            value_bytes = value.encode("ascii")
        elif isinstance(value, bytes):
            value_bytes = value
        else:
            return _DECLINED
        if b"\r" in value_bytes or b"\n" in value_bytes:
            return _DECLINED
        lines.append((name_bytes, value_bytes.strip()))
    lines += after
    return target, full_url, tuple(lines), engine_url(parts[3], full_url, lines, parts[6] > 0)


def _wire_head(
    connection_class: Any,
    host: str,
    port: int | None,
    method: str,
    url: str,
    bodiless: bool,
    length: int,
    names: tuple[Any, ...],
) -> Any:
    # What `wire_request` writes of a request with these header names, whatever their values:
    # the target, the URL, the lines before the given headers, the given headers' names as
    # written, and the lines after them; or _DECLINED.
    if method not in _BODILESS and method not in _BODIED:
        return _DECLINED
    from urllib3.util.url import _encode_target

    target = _encode_target(url)
    if isinstance(target, bytes):
        target = target.decode("latin-1")
    if not target.isascii() or UNSAFE_TARGET.search(target):
        return _DECLINED
    lowered: set[str] = set()
    given: list[bytes] = []
    for name in names:
        if not isinstance(name, str) or not name.isascii():
            return _DECLINED
        name_bytes = name.encode("ascii")
        if LEGAL_HEADER_NAME.fullmatch(name_bytes) is None:
            return _DECLINED
        lower = name.lower()
        if lower in ("transfer-encoding", "expect"):
            return _DECLINED  # chunked uploads and 100-continue: the connection door's
        lowered.add(lower)
        given.append(name_bytes.strip())
    if not host.isascii() or "%" in host or (port is None and ":" in host):
        return _DECLINED
    host = host.strip("[]").rstrip(".")
    default_port = connection_class.default_port
    if port is None:
        port = default_port
    before: list[tuple[bytes, bytes]] = []
    if "host" not in lowered:
        shown = f"[{host}]" if ":" in host else host
        before.append((b"Host", (shown if port == default_port else f"{shown}:{port}").encode("ascii")))
    if "accept-encoding" not in lowered:
        before.append((b"Accept-Encoding", b"identity"))
    if "content-length" not in lowered and (not bodiless or method in _BODIED):
        before.append((b"Content-Length", str(length).encode("ascii")))
    agent: tuple[tuple[bytes, bytes], ...] = ()
    if "user-agent" not in lowered:
        from urllib3.connection import _get_default_user_agent

        agent = ((b"User-Agent", _get_default_user_agent().encode("ascii")),)
    # urllib3 2.x writes its User-Agent before the given headers; 1.26 adds it to them, last.
    if not urllib3_v1():
        before += agent
        agent = ()
    full_url = wire_url(target, https=default_port == 443, host=host, port=port)
    return target, full_url, tuple(before), tuple(given), agent
