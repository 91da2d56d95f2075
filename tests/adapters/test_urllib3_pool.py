"""
The fast path of urllib3's pool (:mod:`llmcassette._adapters.urllib3_pool`): every request is
recorded from a real local upstream, then replayed twice, once with the fast path and once with
it turned off (so through the connection door, as before it), and both replays must log the same
attempts (method, URL, headers as on the wire, body, chunks, status, interaction) and hand the
client the same responses. Which requests take the fast path is checked too: the others (a
generator or file body, a chunked upload, a retried status) go to the connection door.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import io
import json
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3

import llmcassette
from llmcassette._cassette import Cassette
from tests.adapters.bedrock import bedrock_app
from tests.adapters.test_botocore import _calls as bedrock_calls, _client as bedrock_client
from tests.adapters.test_botocore_session import lower_door
from tests.adapters.test_http_client import forbid_sockets
from tests.servers import asgi_body, serve


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # Any method on any path: a JSON echo of the request (with a cookie), an SSE stream of three
    # events on /sse, a 404 under /missing and a 429 (then 200s) under /limited.
    body = await asgi_body(receive)
    path = scope["path"]
    if path.startswith("/sse"):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for i in range(3):
            await send({"type": "http.response.body", "body": f"data: {i}\n\n".encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path.startswith("/gzip"):
        packed = gzip.compress(b'{"packed": true}')
        headers = [(b"content-encoding", b"gzip"), (b"content-length", str(len(packed)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": packed})
        return
    if path.startswith("/nothing"):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    status = 404 if path.startswith("/missing") else 200
    if path.startswith("/busy"):
        calls = _echo.busy = getattr(_echo, "busy", 0) + 1  # type: ignore[attr-defined]
        status = 503 if calls == 1 else 200
    if path.startswith("/limited"):
        calls = _echo.calls = getattr(_echo, "calls", 0) + 1  # type: ignore[attr-defined]
        status = 429 if calls == 1 else 200
    request_headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
    answer = json.dumps(
        {"method": scope["method"], "path": path, "headers": request_headers, "body": body.decode("latin-1")}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(answer)).encode()),
        (b"set-cookie", b"session=abc; Path=/"),
    ]
    if status in (429, 503):
        headers.append((b"retry-after", b"0"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve(_echo) as base:
        yield base


def _requests_calls(base: str) -> list[tuple[str, list[bool], Callable[[], Any]]]:
    """(name, takes the fast path, the call and what the client got)."""
    session = requests.Session()

    def got(response: requests.Response, *, stream: bool = False) -> Any:
        with response:
            chunks = list(response.iter_content(chunk_size=None)) if stream else [response.content]
            return response.status_code, dict(response.headers), chunks, dict(session.cookies)

    def file_body() -> Any:
        return got(session.post(base + "/json/file", data=io.BytesIO(b'{"from": "file"}')))

    def generator_body() -> Any:
        return got(session.post(base + "/json/gen", data=(part for part in (b"one", b"two"))))

    return [
        (
            "get with a query",
            [True],
            lambda: got(session.get(base + "/json/q", params={"a": "1", "b": "x y"})),
        ),
        ("post json", [True], lambda: got(session.post(base + "/json/j", json={"model": "m", "n": [1, 2]}))),
        ("post a form", [True], lambda: got(session.post(base + "/json/form", data={"field": "välue"}))),
        ("post bytes", [True], lambda: got(session.post(base + "/json/bytes", data=b"\x00\xffraw"))),
        ("post text", [True], lambda: got(session.post(base + "/json/text", data="plain text"))),
        (
            "custom headers",
            [True],
            lambda: got(
                session.get(
                    base + "/json/h",
                    headers={"User-Agent": "mine/1", "Accept-Encoding": "identity", "X-Trace": "t1 "},
                )
            ),
        ),
        ("put with no body", [True], lambda: got(session.put(base + "/json/put"))),
        ("patch", [True], lambda: got(session.patch(base + "/json/patch", data=b"p"))),
        ("delete", [True], lambda: got(session.delete(base + "/json/delete"))),
        ("head", [True], lambda: got(session.head(base + "/json/head"))),
        ("options", [True], lambda: got(session.options(base + "/json/options"))),
        ("a status not retried", [True], lambda: got(session.get(base + "/missing"))),
        ("a stream", [True], lambda: got(session.get(base + "/sse", stream=True), stream=True)),
        ("a 429 requests does not retry", [True], lambda: got(session.get(base + "/limited"))),
        ("gzip", [True], lambda: got(session.get(base + "/gzip"))),
        ("no content", [True], lambda: got(session.delete(base + "/nothing"))),
        ("a file body", [], file_body),
        ("a generator body", [], generator_body),
    ]


def _urllib3_calls(base: str) -> list[tuple[str, list[bool], Callable[[], Any]]]:
    manager = urllib3.PoolManager()
    host, port = base.removeprefix("http://").split(":")
    pool = urllib3.HTTPConnectionPool(host, int(port), headers={"X-Pool": "p"})

    def got(response: Any, *, stream: bool = False) -> Any:
        chunks = list(response.stream(None)) if stream else [response.data]
        response.release_conn()
        return response.status, dict(response.headers), chunks

    def retried() -> Any:
        retry = urllib3.Retry(total=2, status_forcelist=[429], backoff_factor=0)
        return got(manager.request("GET", base + "/limited", retries=retry))

    def after() -> Any:
        retry = urllib3.Retry(total=2, status_forcelist=[503], respect_retry_after_header=True)
        return got(manager.request("GET", base + "/busy", retries=retry))

    calls: list[tuple[str, list[bool], Callable[[], Any]]] = []
    if not urllib3.__version__.startswith("1."):  # (`json=` came with 2.0)
        calls.append(
            ("json", [True], lambda: got(manager.request("POST", base + "/json/js", json={"a": [1]})))
        )
    return [
        *calls,
        (
            "get with fields",
            [True],
            lambda: got(manager.request("GET", base + "/json/f", fields={"k": "v w"})),
        ),
        ("post bytes", [True], lambda: got(manager.request("POST", base + "/json/b", body=b'{"x": 1}'))),
        ("post text", [True], lambda: got(manager.request("POST", base + "/json/t", body="text"))),
        ("post no body", [True], lambda: got(manager.request("POST", base + "/json/none"))),
        (
            "get with an empty body",
            [True],
            lambda: got(manager.request("GET", base + "/json/empty", body=b"")),
        ),
        (
            "own headers",
            [True],
            lambda: got(
                manager.request("GET", base + "/json/own", headers={"Host": "example.test", "X-A": "1"})
            ),
        ),
        ("a pool of its own", [True], lambda: got(pool.urlopen("GET", "/json/pool"))),
        # The same header names again with other values (as botocore's signature and date are):
        # written with these values, not the first's.
        *(
            (
                f"values of their own, {n}",
                [True],
                lambda n=n: got(
                    manager.request("GET", base + f"/json/v{n}", headers={"X-Sig": n, "X-A": "1"})
                ),
            )
            for n in ("one", "two")
        ),
        (
            "a header of bytes",
            [True],
            lambda: got(manager.request("GET", base + "/json/hb", headers={"X-B": b"raw"})),
        ),
        # What the fast path cannot vouch for goes to the connection door, which writes it.
        (
            "a header of a bytearray",
            [],
            lambda: got(manager.request("GET", base + "/json/ba", headers={"X-B": bytearray(b"ba")})),
        ),
        (
            "a header not in ASCII",
            [],
            lambda: got(manager.request("GET", base + "/json/na", headers={"X-N": "caf\u00e9"})),
        ),
        (
            "a default header left out",
            [],
            lambda: got(
                manager.request("GET", base + "/json/skip", headers={"User-Agent": urllib3.util.SKIP_HEADER})
            ),
        ),
        (
            "unread",
            [True],
            lambda: got(manager.request("GET", base + "/sse", preload_content=False), stream=True),
        ),
        ("a retried status", [False, True], retried),
        ("a retry after", [False, True], after),
        ("gzip", [True], lambda: got(manager.request("GET", base + "/gzip"))),
        (
            "gzip left packed",
            [True],
            lambda: got(manager.request("GET", base + "/gzip", decode_content=False)),
        ),
        ("no content", [True], lambda: got(manager.request("GET", base + "/nothing"))),
        ("head", [True], lambda: got(manager.request("HEAD", base + "/json/head"))),
        (
            "a chunked upload",
            [],
            lambda: got(manager.request("POST", base + "/json/c", body=b"chunked", chunked=True)),
        ),
        (
            "a generator body",
            [],
            lambda: got(manager.request("POST", base + "/json/g", body=(p for p in (b"a", b"b")))),
        ),
    ]


def _attempts(cassette: Cassette) -> list[tuple[Any, ...]]:
    return [
        (a.method, a.url, list(a.headers.items()), a.body, list(a.chunks), a.status, a.interaction, a.error)
        for a in cassette.attempts
    ]


def _replay(
    path: Path,
    calls: list[tuple[str, list[bool], Callable[[], Any]]],
    monkeypatch: pytest.MonkeyPatch,
    *,
    fast: bool,
) -> tuple[list[Any], list[tuple[Any, ...]], list[list[bool]]]:
    answered: list[bool] = []
    original = Cassette.replay_plain

    def replay_plain(self: Cassette, *args: Any) -> Any:
        response = original(self, *args) if fast else None
        answered.append(response is not None)
        return response

    with monkeypatch.context() as patch:
        patch.setattr(Cassette, "replay_plain", replay_plain)
        got = []
        taken = []
        with llmcassette.use_cassette(path) as cassette:
            for _name, _fast, call in calls:
                before = len(answered)
                got.append(call())
                taken.append(answered[before:])
        return got, _attempts(cassette), taken


@pytest.mark.parametrize("library", ["requests", "urllib3"])
def test_the_fast_path_logs_and_answers_exactly_as_the_connection_door(
    library: str, upstream: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _echo.calls = _echo.busy = 0  # type: ignore[attr-defined]
    make_calls = _requests_calls if library == "requests" else _urllib3_calls
    path = tmp_path / "pool.yaml"
    with llmcassette.use_cassette(path, record_mode="once"):
        live = [call() for _, _, call in make_calls(upstream)]
    forbid_sockets(monkeypatch)
    calls = make_calls(upstream)
    slow_got, slow_attempts, slow_taken = _replay(path, calls, monkeypatch, fast=False)
    calls = make_calls(upstream)
    fast_got, fast_attempts, fast_taken = _replay(path, calls, monkeypatch, fast=True)
    assert not any(any(answers) for answers in slow_taken)
    # Each call's answers on the fast path: taken, declined by the cassette (a 429 its Retry
    # retries: then the retry is taken), or never asked (a body it cannot vouch for).
    assert fast_taken == [expected for _, expected, _ in calls]
    assert len(fast_attempts) == len(slow_attempts)
    for name, slow, fast in zip([n for n, _, _ in calls], slow_got, fast_got, strict=True):
        assert fast == slow, name
    assert fast_attempts == slow_attempts
    # and the replays are what the client got live (but the date a server adds, and a gzip
    # body asked for packed: the cassette stores it unpacked, `decode_compressed`)
    for name, was, replayed in zip([n for n, _, _ in calls], live, fast_got, strict=True):
        if name != "gzip left packed":
            assert (was[0], was[2]) == (replayed[0], replayed[2]), name


def test_an_https_pool_is_answered_at_its_https_url_as_the_connection_door_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No TLS upstream: the cassette is written, then both replays must see the same request.
    path = tmp_path / "tls.yaml"
    interactions = [
        {
            "request": {
                "method": "POST",
                "uri": f"https://api.example.com{port}/v1/chat",
                "headers": {},
                "body": '{"q": 1}',
            },
            "response": {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": "{}"}},
        }
        for port in ("", ":8443")
    ]
    llmcassette.save_cassette(
        path, llmcassette.CassetteDocument.model_validate({"interactions": interactions})
    )
    forbid_sockets(monkeypatch)

    def calls() -> list[tuple[str, list[bool], Callable[[], Any]]]:
        session = requests.Session()
        return [
            (url, [True], lambda url=url: session.post(url, data=b'{"q": 1}').content)
            for url in ("https://api.example.com/v1/chat", "https://api.example.com:8443/v1/chat")
        ]

    slow_got, slow_attempts, _ = _replay(path, calls(), monkeypatch, fast=False)
    fast_got, fast_attempts, taken = _replay(path, calls(), monkeypatch, fast=True)
    assert taken == [[True], [True]]
    assert fast_got == slow_got == [b"{}", b"{}"]
    assert fast_attempts == slow_attempts
    assert [a[1] for a in fast_attempts] == [
        "https://api.example.com/v1/chat",
        "https://api.example.com:8443/v1/chat",
    ]


#: What botocore signs anew on every call: the date, the signature over it, the call's id.
_SIGNED_PER_CALL = {"x-amz-date", "authorization", "amz-sdk-invocation-id"}


def test_botocore_takes_the_fast_path_and_logs_what_the_connection_door_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # botocore's pool class inherits urllib3's `urlopen`, and its connection class only adds
    # `Expect: 100-continue`: converse, converse_stream and invoke_model_with_response_stream.
    path = tmp_path / "bedrock.yaml"
    with serve(bedrock_app([])) as base:
        with llmcassette.use_cassette(path, record_mode="once"):
            live = bedrock_calls(bedrock_client(base))
    forbid_sockets(monkeypatch)

    def below_send() -> Any:
        # (botocore's own fast path, in `send`, answers above the pool: taken away here)
        with lower_door():
            return bedrock_calls(bedrock_client(base))

    calls: list[tuple[str, list[bool], Callable[[], Any]]] = [("bedrock", [True, True, True], below_send)]
    slow_got, slow_attempts, slow_taken = _replay(path, calls, monkeypatch, fast=False)
    fast_got, fast_attempts, fast_taken = _replay(path, calls, monkeypatch, fast=True)
    assert slow_taken == [[False, False, False]]
    assert fast_taken == [[True, True, True]]
    assert fast_got == slow_got == [live]

    def unsigned(attempts: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [(*a[:2], [h for h in a[2] if h[0].lower() not in _SIGNED_PER_CALL], *a[3:]) for a in attempts]

    assert unsigned(fast_attempts) == unsigned(slow_attempts)
    assert all(name.lower() in {h[0].lower() for h in fast_attempts[0][2]} for name in _SIGNED_PER_CALL)


def test_the_pool_is_patched_only_while_a_cassette_is_active(tmp_path: Path) -> None:
    before = urllib3.connectionpool.HTTPConnectionPool.urlopen
    with llmcassette.use_cassette(tmp_path / "empty.yaml"):
        assert urllib3.connectionpool.HTTPConnectionPool.urlopen is not before
        assert urllib3.connectionpool.HTTPConnectionPool.urlopen.__wrapped__ is before
    assert urllib3.connectionpool.HTTPConnectionPool.urlopen is before


def _answers(path: Path, url: str, count: int) -> None:
    interaction = {
        "request": {"method": "GET", "uri": url, "headers": {}, "body": ""},
        "response": {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": "{}"}},
    }
    document = {"interactions": [interaction] * count}
    llmcassette.save_cassette(path, llmcassette.CassetteDocument.model_validate(document))


def test_a_closed_or_exhausted_pool_fails_on_the_fast_path_as_it_does_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pool refuses before any connection: closed, it raises ClosedPoolError; blocking, with
    # its one connection held by an unreleased response, it raises EmptyPoolError once the
    # pool timeout passes. An answer needs no connection, but must not skip those refusals.
    path = tmp_path / "pool.yaml"
    _answers(path, "http://api.example.com/j", 3)
    forbid_sockets(monkeypatch)

    def failed(call: Callable[[], Any]) -> Any:
        try:
            return call().data
        except urllib3.exceptions.HTTPError as exc:
            return type(exc).__name__

    def calls() -> list[tuple[str, list[bool], Callable[[], Any]]]:
        closed = urllib3.HTTPConnectionPool("api.example.com")
        closed.close()
        blocking = urllib3.HTTPConnectionPool("api.example.com", maxsize=1, block=True)
        held: list[Any] = []

        def exhausted() -> Any:
            held.append(blocking.urlopen("GET", "/j", preload_content=False))
            return failed(lambda: blocking.urlopen("GET", "/j", pool_timeout=0.01))

        return [
            ("closed", [], lambda: failed(lambda: closed.urlopen("GET", "/j"))),
            ("exhausted", [], exhausted),
        ]

    slow_got, slow_attempts, _ = _replay(path, calls(), monkeypatch, fast=False)
    fast_got, fast_attempts, taken = _replay(path, calls(), monkeypatch, fast=True)
    assert slow_got == ["ClosedPoolError", "EmptyPoolError"]
    assert fast_got == slow_got
    assert fast_attempts == slow_attempts
    assert taken == [[], []]


def test_a_timeout_with_only_a_total_is_answered_as_urllib3_times_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `Timeout(total=...)` has no read timeout until its connect timer starts, which urllib3
    # starts before it connects: read before that, it raised TimeoutStateError at every call
    # through a pool while a cassette was active, recording or replaying.
    path = tmp_path / "total.yaml"
    _answers(path, "http://api.example.com/j", 2)
    forbid_sockets(monkeypatch)

    def calls() -> list[tuple[str, list[bool], Callable[[], Any]]]:
        manager = urllib3.PoolManager(timeout=urllib3.Timeout(total=5))
        return [
            ("pool's", [True], lambda: manager.request("GET", "http://api.example.com/j").data),
            (
                "call's",
                [True],
                lambda: (
                    manager.request(
                        "GET", "http://api.example.com/j", timeout=urllib3.Timeout(connect=1, total=5)
                    ).data
                ),
            ),
        ]

    slow_got, slow_attempts, _ = _replay(path, calls(), monkeypatch, fast=False)
    fast_got, fast_attempts, taken = _replay(path, calls(), monkeypatch, fast=True)
    assert fast_got == slow_got == [b"{}", b"{}"]
    assert fast_attempts == slow_attempts
    assert taken == [[True], [True]]


def test_a_folded_header_reaches_the_client_as_urllib3_unfolds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A header value continued on a second line (obsolete folding): urllib3 (2.x since it
    # normalizes them) joins it with a space in `response.headers` and in the `http.client`
    # message requests takes cookies from; the fast path handed the client the fold as read.
    path = tmp_path / "fold.yaml"
    interaction = {
        "request": {"method": "GET", "uri": "http://api.example.com/j", "headers": {}, "body": ""},
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"X-Fold": ["a\r\n b"], "Set-Cookie": ["k=v;\r\n Path=/"]},
            "body": {"string": "{}"},
        },
    }
    document = {"interactions": [interaction] * 2}
    llmcassette.save_cassette(path, llmcassette.CassetteDocument.model_validate(document))
    forbid_sockets(monkeypatch)

    def calls() -> list[tuple[str, list[bool], Callable[[], Any]]]:
        session = requests.Session()

        def through_urllib3() -> Any:
            response = urllib3.PoolManager().request("GET", "http://api.example.com/j")
            return list(response.headers.items()), response._original_response.msg.items()

        def through_requests() -> Any:
            response = session.get("http://api.example.com/j")
            return dict(response.headers), dict(session.cookies)

        return [("urllib3", [True], through_urllib3), ("requests", [True], through_requests)]

    slow_got, slow_attempts, _ = _replay(path, calls(), monkeypatch, fast=False)
    fast_got, fast_attempts, taken = _replay(path, calls(), monkeypatch, fast=True)
    assert taken == [[True], [True]]
    assert fast_got == slow_got
    assert fast_attempts == slow_attempts


def test_an_argument_urllib3_does_not_take_fails_on_the_fast_path_as_it_does_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A misspelt keyword (`preload=False`) reaches the pool's response arguments, which urllib3
    # refuses with a TypeError; the fast path answered it: a replayed test passed, failing live.
    path = tmp_path / "kw.yaml"
    _answers(path, "http://api.example.com/j", 2)
    forbid_sockets(monkeypatch)

    def refused() -> Any:
        try:
            return urllib3.PoolManager().request("GET", "http://api.example.com/j", preload=False).data
        except TypeError as exc:
            return type(exc).__name__, "preload" in str(exc)

    slow_got, slow_attempts, _ = _replay(path, [("kw", [], refused)], monkeypatch, fast=False)
    fast_got, fast_attempts, taken = _replay(path, [("kw", [], refused)], monkeypatch, fast=True)
    assert slow_got == [("TypeError", True)]
    assert fast_got == slow_got
    assert fast_attempts == slow_attempts
    # (1.26 hands it to its HTTPResponse, which refuses it on either path once answered)
    assert taken == ([[True]] if urllib3.__version__.startswith("1.") else [[]])


@pytest.mark.parametrize("library", ["urllib3", "requests"])
def test_a_header_urllib3_cannot_parse_is_logged_as_urllib3_logs_it(
    library: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A recorded header name with a space in it: urllib3 warns that it failed to parse the
    # headers (2.x from its connection, with the URL its connection makes; 1.26 from its pool,
    # with the pool's URL) and reads on. The fast path asked the pool for 1.26's URL on 2.x too,
    # whose pools have no `_absolute_url`: an AttributeError reached the client.
    path = tmp_path / "bad-header.yaml"
    interaction = {
        "request": {"method": "GET", "uri": "http://api.example.com/j?a=b", "headers": {}, "body": ""},
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"Bad Name": ["x"], "Content-Type": ["application/json"]},
            "body": {"string": "{}"},
        },
    }
    llmcassette.save_cassette(
        path, llmcassette.CassetteDocument.model_validate({"interactions": [interaction] * 2})
    )
    forbid_sockets(monkeypatch)

    def calls() -> list[tuple[str, list[bool], Callable[[], Any]]]:
        def call() -> Any:
            caplog.clear()
            if library == "urllib3":
                response = urllib3.PoolManager().request("GET", "http://api.example.com/j?a=b")
                got = response.status, response.data
            else:
                answered = requests.get("http://api.example.com/j?a=b")
                got = answered.status_code, answered.content
            logged = [
                (r.name, r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("urllib3")
            ]
            return got, logged

        return [("bad header", [True], call)]

    with caplog.at_level("WARNING"):
        slow_got, slow_attempts, _ = _replay(path, calls(), monkeypatch, fast=False)
        fast_got, fast_attempts, taken = _replay(path, calls(), monkeypatch, fast=True)
    assert taken == [[True]]
    logger = "urllib3.connectionpool" if urllib3.__version__.startswith("1.") else "urllib3.connection"
    [(_got, [(name, level, message)])] = slow_got
    assert (name, level) == (logger, "WARNING")
    assert message.startswith("Failed to parse headers (url=http://api.example.com")
    assert fast_got == slow_got
    assert fast_attempts == slow_attempts


def _held_back(gate: threading.Event) -> Callable[..., Any]:
    # An upstream that sends the head and a first part at once, then the rest once `gate` is
    # set: a chunked SSE stream on /sse (a first event, then two), a JSON body framed by its
    # length on /json (its first 64 bytes, then the rest).
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asgi_body(receive)
        if scope["path"] == "/sse":
            parts = [b"data: 0\n\n", b"data: 1\n\ndata: 2\n\n"]
            headers = [(b"content-type", b"text/event-stream")]
        else:
            answer = json.dumps({"answer": "x" * 200}).encode()
            parts = [answer[:64], answer[64:]]
            headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": parts[0], "more_body": True})
        await asyncio.to_thread(gate.wait, 10)
        await send({"type": "http.response.body", "body": parts[1]})

    return app


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # (what the client meets, compared by its kind and words)
        return type(exc).__name__, str(exc)


def _shut_mid_way(response: Any, reads: Iterator[bytes], gate: threading.Event) -> list[Any]:
    # A first part read, the response (urllib3's) shut down, the rest read; then shut down again
    # once ended, and once closed.
    got = [next(reads), _outcome(response.shutdown), _outcome(lambda: list(reads))]
    gate.set()  # (the upstream may finish now: the client read what it had)
    got.append(_outcome(response.shutdown))
    response.close()
    got.append(_outcome(response.shutdown))
    gate.clear()
    return got


def _shut_down_reads(base: str, gate: threading.Event) -> list[Any]:
    """What a client gets shutting a response down mid-way, through urllib3 and requests."""
    got: list[Any] = []
    pool = urllib3.PoolManager(retries=False)
    session = requests.Session()
    # A stream read chunk by chunk, then a body framed by its length read 64 bytes at a time.
    response = pool.request("GET", base + "/sse", preload_content=False)
    got += _shut_mid_way(response, response.stream(None), gate)
    answered = session.get(base + "/sse", stream=True)
    got += _shut_mid_way(answered.raw, answered.iter_content(chunk_size=None), gate)
    response = pool.request("GET", base + "/json", preload_content=False)
    got += _shut_mid_way(response, iter(functools.partial(response.read, 64), b""), gate)
    answered = session.get(base + "/json", stream=True)
    got += _shut_mid_way(answered.raw, iter(functools.partial(answered.raw.read, 64), b""), gate)
    # Read whole (urllib3's default), the response has let its connection go.
    gate.set()  # (the upstream need not hold the rest back until its wait runs out)
    read = pool.request("GET", base + "/json")
    got.append(_outcome(read.shutdown))
    return got


@pytest.mark.skipif(urllib3.__version__.startswith("1."), reason="urllib3 1.26 has no `shutdown`")
def test_a_response_shut_down_reads_as_ended_as_it_does_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `HTTPResponse.shutdown()` shuts the connection's socket for reading: a read that finds
    # nothing more on it then reads the connection's end, and urllib3 fails as a body cut short
    # fails. Released or closed, the response refuses. The fast path (at urllib3's pool, and at
    # requests' adapter) raised urllib3's ValueError for a response with no socket to shut.
    gate = threading.Event()
    with serve(_held_back(gate)) as base:
        live = _shut_down_reads(base, gate)
        path = tmp_path / "shutdown.yaml"
        gate.set()
        with llmcassette.use_cassette(path, record_mode="once"):
            # The same requests, read whole (the upstream no longer holds back).
            pool, session = urllib3.PoolManager(), requests.Session()
            for route in ("/sse", "/json"):
                assert pool.request("GET", base + route, preload_content=False).data
                assert session.get(base + route, stream=True).content
            assert pool.request("GET", base + "/json").data
    assert live[2][0] == "ProtocolError"  # (the live reading this holds the replays to)
    forbid_sockets(monkeypatch)
    calls: list[tuple[str, list[bool], Callable[[], Any]]] = [
        ("shut down", [True] * 5, lambda: _shut_down_reads(base, threading.Event()))
    ]
    fast_got, _, taken = _replay(path, calls, monkeypatch, fast=True)
    assert taken == [[True] * 5]
    assert fast_got == [live]


def test_the_engine_request_of_a_head_found_once_is_the_one_made_anew() -> None:
    # `wire_request` keeps the engine's URL with each head it writes (found by the head's parts
    # and header names): on generated requests, some sent again with other values, the request
    # the engine gets from it is the one `engine_request` makes with nothing kept.
    from llmcassette._adapters import urllib3_pool
    from llmcassette._adapters._wire import engine_request

    rng = random.Random(14)
    pools = [urllib3.HTTPConnectionPool("api.test", 8080), urllib3.HTTPSConnectionPool("api.test")]
    names = ["Host", "host", "Content-Length", "content-length", "Transfer-Encoding", "Accept", "X-Key"]
    seen_kinds = set()
    for _ in range(400):
        pool = rng.choice(pools)
        method = rng.choice(["GET", "HEAD", "DELETE", "OPTIONS", "POST", "PUT", "PATCH"])
        url = rng.choice(["/v1/chat", "/v1/models?q=a b", "/%7Euser/ü"])
        headers = {name: rng.choice(["1", "api.test", "chunked", "*/*"]) for name in rng.sample(names, 3)}
        body = rng.choice([None, b"", b"{}", "{}"])
        wire = urllib3_pool.wire_request(pool, pool.ConnectionCls, method, url, headers, body)
        if wire is None:
            continue
        target, full_url, lines, content, wire_url = wire
        kept = engine_request(method, full_url, lines, content, wire_url=wire_url)
        anew = engine_request(method, full_url, lines, content)
        assert type(kept) is type(anew), (method, url, headers, body)
        assert (kept.method, str(kept.url), list(kept.headers.raw)) == (
            anew.method,
            str(anew.url),
            list(anew.headers.raw),
        ), (method, url, headers, body)
        seen_kinds.add(type(anew).__name__)
    assert "WireRequest" in seen_kinds  # (the heads it writes have a Host and their length)
