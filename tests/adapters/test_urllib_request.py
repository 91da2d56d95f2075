"""
The fast path of ``urllib.request`` (:mod:`llmcassette._adapters.urllib_request`): requests are
recorded from a real local upstream (and answers that only a cassette written by hand holds are
added), then replayed twice, once with the fast path and once with it turned off (so through the
connection door, as before it). Both replays must log the same attempts (method, URL, headers as
on the wire, body, chunks, status, interaction) and hand the client the same responses, read in
every style ``http.client``'s response offers, down to where each style ends the response.
Which requests take the fast path is checked too: the others (a file or iterable body, a proxy,
debug output, a connection class of the caller's) go to the connection door.
"""

from __future__ import annotations

import http.client
import io
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import llmcassette
from llmcassette._cassette import Cassette
from llmcassette._lazy import LazyCassette
from tests.adapters.test_http_client import forbid_sockets
from tests.servers import asgi_body, serve

#: The events of the upstream's stream, sent one by one; the last line has no newline.
EVENTS = [b"data: 0\n\n", b"data: one\n\n", b"data: two\n", b"\ndata: 3"]


async def _upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # Any method on any path: a JSON echo of the request, a stream on /sse, a 404 under /missing,
    # a redirect under /moved, no content under /empty.
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
        for event in EVENTS:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path.startswith("/moved"):
        await send(
            {"type": "http.response.start", "status": 302, "headers": [(b"location", b"/json/target")]}
        )
        await send({"type": "http.response.body", "body": b""})
        return
    if path.startswith("/empty"):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    request_headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
    answer = json.dumps(
        {
            "method": scope["method"],
            "path": path,
            "query": scope["query_string"].decode(),
            "headers": request_headers,
            "body": body.decode("latin-1"),
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(answer)).encode()),
        (b"set-cookie", b"session=abc; Path=/"),
    ]
    status = 404 if path.startswith("/missing") else 200
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve(_upstream) as base:
        yield base


# -- reading styles --------------------------------------------------------------------------------

Read = Callable[[Any], list[Any]]


def _until_empty(response: Any, read: Callable[[], Any]) -> list[Any]:
    # Each piece, and whether the response had ended once it was read.
    pieces = []
    while True:
        piece = read()
        pieces.append((piece, response.isclosed()))
        if not piece:
            return pieces


def _readinto(response: Any) -> list[Any]:
    buffer = bytearray(11)
    pieces = []
    while True:
        count = response.readinto(buffer)
        pieces.append((bytes(buffer[:count]), response.isclosed()))
        if not count:
            return pieces


def _iterated(response: Any) -> list[Any]:
    return [(line, response.isclosed()) for line in response]


def _peeking(response: Any) -> list[Any]:
    pieces = []
    while True:
        ahead = response.peek()
        piece = response.read1()
        if not piece:
            return [*pieces, ahead]
        pieces.append((ahead, piece))


def _mixed(response: Any) -> list[Any]:
    # A line, a few bytes, a chunk's worth, a line cut short, then the rest by iteration.
    return [response.readline(), response.read(3), response.read1(), response.readline(4), *response]


def _interrupted(step: Callable[[Any], Any]) -> Read:
    # Lines by iteration, with another step taken after the second (which may end the response).
    def read(response: Any) -> list[Any]:
        pieces = []
        for count, line in enumerate(response):
            pieces.append((line, response.isclosed()))
            if count == 1:
                pieces.append(step(response))
        return pieces

    return read


def _exact(response: Any) -> list[Any]:
    # Reads that end exactly where the body does, then past it.
    first = response.read(5)
    rest = response.read(len(response.peek()) or 1)
    return [first, rest, response.isclosed(), response.read(0), response.read(), response.readline()]


def _exact_into(response: Any) -> list[Any]:
    buffer = bytearray(len(response.peek()) or 1)
    count = response.readinto(buffer)
    return [bytes(buffer[:count]), response.isclosed(), response.readinto(bytearray(1)), response.isclosed()]


def _fileno(response: Any) -> list[Any]:
    def outcome() -> str:
        try:
            return str(response.fileno())
        except Exception as exc:
            return type(exc).__name__

    before = outcome()
    data = response.read()
    return [before, data, outcome()]


STYLES: dict[str, Read] = {
    "read()": lambda r: [r.read()],
    "read(7)": lambda r: _until_empty(r, lambda: r.read(7)),
    "read1()": lambda r: _until_empty(r, r.read1),
    "read1(5)": lambda r: _until_empty(r, lambda: r.read1(5)),
    "readline()": lambda r: _until_empty(r, r.readline),
    "readline(6)": lambda r: _until_empty(r, lambda: r.readline(6)),
    "readinto": _readinto,
    "iteration": _iterated,
    "next": lambda r: _until_empty(r, lambda: next(r, b"")),
    "readlines()": lambda r: r.readlines(),
    "readlines(10)": lambda r: [r.readlines(10), r.read()],
    "peek": _peeking,
    "mixed": _mixed,
    "read() while iterating": _interrupted(lambda r: r.read()),
    "close() while iterating": _interrupted(lambda r: r.close()),
    "read(4) while iterating": _interrupted(lambda r: r.read(4)),
    "read1() while iterating": _interrupted(lambda r: r.read1()),
    "peek then readline(9)": lambda r: [r.readline(), r.peek(), *_until_empty(r, lambda: r.readline(9))],
    "exact": _exact,
    "exact readinto": _exact_into,
    "fileno": _fileno,
    "unread": lambda r: [],
}


def _seen(response: Any, read: Read) -> dict[str, Any]:
    """What a client sees of ``response``: its head, then what ``read`` gets, then its state."""
    head = {
        "type": isinstance(response, http.client.HTTPResponse),
        "status": response.status,
        "code": response.getcode(),
        "reason": response.reason,
        "msg": response.msg,
        "url": (response.url, response.geturl()),
        "headers": list(response.headers.items()),
        "info": list(response.info().items()),
        "getheaders": response.getheaders(),
        "content type": (response.getheader("content-type"), response.headers.get_content_type()),
        "version": response.version,
        "framing": (response.chunked, response.length, response.will_close, response.chunk_left),
    }
    with response:
        pieces = read(response)
        state = (response.isclosed(), response.closed, response.length, response.chunk_left)
    return {**head, "pieces": pieces, "state": state, "after close": (response.closed, response.read())}


def _error_seen(error: urllib.error.HTTPError, read: Read) -> dict[str, Any]:
    # The response the error wraps is read as any other.
    with error:
        seen = _seen(error.fp, read)
        return {"code": error.code, "reason": error.reason, "headers": list(error.headers.items()), **seen}


def _open(opener: urllib.request.OpenerDirector, read: Read, request: Any, **kwargs: Any) -> Any:
    try:
        response = opener.open(request, **kwargs)
    except urllib.error.HTTPError as error:
        return _error_seen(error, read)
    return _seen(response, read)


# -- the requests ----------------------------------------------------------------------------------


@dataclass
class Call:
    """A request, whether each of its ``do_open`` calls takes the fast path, and how it is sent."""

    name: str
    fast: list[bool]
    send: Callable[[Read], Any]


def _live_calls(base: str) -> list[Call]:
    opener = urllib.request.build_opener()
    own = urllib.request.build_opener()
    own.addheaders = [("X-Opener", "o"), ("User-agent", "mine/2")]
    Request = urllib.request.Request
    json_body = json.dumps({"model": "m", "n": [1, 2]}).encode()

    class OwnConnection(http.client.HTTPConnection):
        pass

    class OwnConnectionHandler(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(OwnConnection, req)

    def send(
        request: Any, *, through: urllib.request.OpenerDirector = opener, **kwargs: Any
    ) -> Callable[[Read], Any]:
        return lambda read: _open(through, read, request, **kwargs)

    return [
        Call("get", [True], send(base + "/json/plain")),
        Call("get with a query", [True], send(base + "/json/q?a=1&b=x%20y")),
        Call("get with a fragment", [True], send(base + "/json/frag#part")),
        Call("get with a timeout", [True], send(base + "/json/timeout", timeout=5)),
        Call(
            "post json",
            [True],
            send(Request(base + "/json/j", data=json_body, headers={"Content-Type": "application/json"})),
        ),
        Call("post a form", [True], send(Request(base + "/json/form", data=b"field=v%C3%A4lue"))),
        Call("post an empty body", [True], send(Request(base + "/json/empty-body", data=b""))),
        Call("put with no body", [True], send(Request(base + "/json/put", method="PUT"))),
        Call("patch", [True], send(Request(base + "/json/patch", data=b"p", method="PATCH"))),
        Call("delete", [True], send(Request(base + "/json/delete", method="DELETE"))),
        Call("head", [True], send(Request(base + "/json/head", method="HEAD"))),
        Call("options", [True], send(Request(base + "/json/options", method="OPTIONS"))),
        Call(
            "own headers",
            [True],
            send(
                Request(
                    base + "/json/own",
                    headers={
                        "User-Agent": "mine/1",
                        "Accept-Encoding": "identity",
                        "x-trace": "t1 ",
                        "X-Latin": "välue",
                        "X-Number": 5,
                        "X-Bytes": b"raw",
                    },
                )
            ),
        ),
        Call(
            "a host of its own", [True], send(Request(base + "/json/host", headers={"Host": "example.test"}))
        ),
        Call(
            "a length of its own",
            [True],
            send(Request(base + "/json/length", data=b"12345", headers={"Content-Length": "5"})),
        ),
        Call("an opener's headers", [True], send(base + "/json/opener", through=own)),
        Call("a 404", [True], send(base + "/missing")),
        Call("a redirect", [True, True], send(base + "/moved")),
        Call("no content", [True], send(base + "/empty")),
        Call("a stream", [True], send(base + "/sse")),
        Call(
            "a file body",
            [],
            send(
                Request(
                    base + "/json/file",
                    data=io.BytesIO(b'{"from": "file"}'),
                    headers={"Content-Length": "16"},
                )
            ),
        ),
        Call("an iterable body", [], send(Request(base + "/json/iterable", data=[b"one", b"two"]))),
        Call(
            "a proxy",
            [],
            send(
                base + "/json/proxied",
                through=urllib.request.build_opener(urllib.request.ProxyHandler({"http": base})),
            ),
        ),
        Call(
            "debug output",
            [],
            send(
                base + "/json/debug",
                through=urllib.request.build_opener(urllib.request.HTTPHandler(debuglevel=1)),
            ),
        ),
        Call(
            "a connection class of its own",
            [],
            send(base + "/json/own-class", through=urllib.request.build_opener(OwnConnectionHandler())),
        ),
    ]


def _attempts(cassette: Cassette) -> list[tuple[Any, ...]]:
    return [
        (
            a.method,
            a.url,
            list(a.headers.items()),
            a.body,
            list(a.chunks),
            a.status,
            a.interaction,
            a.error,
            a.recorded,
            a.faults,
        )
        for a in cassette.attempts
    ]


def _replay(
    path: Path, calls: list[Call], read: Read, monkeypatch: pytest.MonkeyPatch, *, fast: bool
) -> tuple[list[Any], list[tuple[Any, ...]], list[list[bool]], list[int]]:
    answered: list[bool] = []
    original = Cassette.replay_plain

    def replay_plain(self: Cassette, *args: Any) -> Any:
        response = original(self, *args) if fast else None
        answered.append(response is not None)
        return response

    with monkeypatch.context() as patch:
        patch.setattr(Cassette, "replay_plain", replay_plain)
        got, taken = [], []
        with llmcassette.use_cassette(path) as cassette:
            for call in calls:
                before = len(answered)
                got.append(call.send(read))
                taken.append(answered[before:])
        return got, _attempts(cassette), taken, list(cassette.play_counts)


@pytest.fixture(scope="module")
def recorded(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("urllib") / "live.yaml"
    with llmcassette.use_cassette(path, record_mode="once"):
        for call in _live_calls(upstream):
            call.send(STYLES["read()"])
    return path


def _alike_through_both_paths(
    path: Path, make_calls: Callable[[], list[Call]], read: Read, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any]:
    # The same calls replayed through the connection door alone (slow) and with the fast path
    # (fast): the fast path takes the calls it should, and every call gets the same answer, and
    # the same attempts are logged. Both results, for what a test checks besides.
    slow = _replay(path, make_calls(), read, monkeypatch, fast=False)
    calls = make_calls()
    fast = _replay(path, calls, read, monkeypatch, fast=True)
    assert fast[2] == [call.fast for call in calls]
    for call, was, now in zip(calls, slow[0], fast[0], strict=True):
        assert now == was, call.name
    assert fast[1] == slow[1]
    return fast, slow


@pytest.mark.parametrize("style", list(STYLES))
def test_the_fast_path_logs_and_answers_exactly_as_the_connection_door(
    style: str,
    recorded: Path,
    upstream: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    forbid_sockets(monkeypatch)
    fast, slow = _alike_through_both_paths(
        recorded, lambda: _live_calls(upstream), STYLES[style], monkeypatch
    )
    assert not any(any(answers) for answers in slow[2])
    assert fast[3] == slow[3]


# -- answers only a cassette written by hand holds -------------------------------------------------

HAND = "http://127.0.0.1:9"
SPANNING = [b"data: 0\n\nda", b"ta: one\n\ndata: two\n", b"\ndata: 3"]


def _hand(uri: str, status: int, headers: dict[str, list[str]], chunks: list[bytes] | None, **kw: Any) -> Any:
    response: dict[str, Any] = {
        "status": {"code": status, "message": kw.get("reason", "")},
        "headers": headers,
        "body": {"string": b"".join(chunks or []).decode()},
    }
    if chunks is not None and kw.get("stream", True):
        response["stream"] = {"chunks": [len(c) for c in chunks]}
    request = {"method": kw.get("method", "GET"), "uri": uri, "headers": {}, "body": kw.get("body")}
    return {"request": request, "response": response}


def _hand_written(path: Path) -> Path:
    sse = {"content-type": ["text/event-stream"]}
    text = {"content-type": ["text/plain"]}
    many = {f"x-header-{i}": [str(i)] for i in range(120)}
    interactions = [
        # A body framed by its length, recorded in several chunks: the door's file is read.
        _hand(
            f"{HAND}/hand/length-chunks", 200, {"content-length": ["16"]}, [b'{"a": 1', b', "b": ', b"2}   "]
        ),
        _hand(f"{HAND}/hand/empty-chunk", 200, sse, [b"data: a\n\n", b"", b"data: b\n\n"]),
        _hand(f"{HAND}/hand/odd-head", 200, {"x odd": ["v"], **text}, [b"hi"]),
        _hand(f"{HAND}/hand/many-headers", 200, many, [b"hi"]),
        _hand(f"{HAND}/hand/reason", 201, {"connection": ["close"], **text}, [b"{}"], reason="Made It"),
        _hand(f"{HAND}/hand/no-content", 204, {"content-length": ["2"]}, [b"{}"]),
        _hand(f"{HAND}/hand/spanning", 200, sse, SPANNING),
        _hand(f"{HAND}/hand/teapot", 418, text, [b"short and stout"], reason="Short And Stout"),
        _hand(f"{HAND}/hand/head", 200, {"content-length": ["42"], **text}, None, method="HEAD"),
        _hand(f"{HAND}/hand/unknown-status", 299, text, [b"x"]),
        _hand(f"{HAND}/hand/early-hints", 103, {"link": ["</a.css>; rel=preload"]}, None),
        _hand(f"{HAND}/hand/euro", 200, {"x-euro": ["€ price"], **text}, [b"e"]),
        _hand(f"{HAND}/hand/whole", 200, text, [b"line one\nline two\n"], stream=False),
        _hand(f"{HAND}/hand/echo", 200, text, [b"echoed"], method="POST", body='{"q": 1}'),
        _hand("https://api.example.com/v1/tls", 200, text, [b"tls\n"]),
        _hand("https://api.example.com:8443/v1/tls", 200, text, [b"tls on a port\n"]),
        _hand("http://[::1]:9/hand/v6", 200, text, [b"six\n"]),
    ]
    llmcassette.save_cassette(
        path, llmcassette.CassetteDocument.model_validate({"interactions": interactions})
    )
    return path


def _hand_calls() -> list[Call]:
    opener = urllib.request.build_opener()
    Request = urllib.request.Request

    def send(request: Any) -> Callable[[Read], Any]:
        def sent(read: Read) -> Any:
            try:
                return _open(opener, read, request)
            except (http.client.HTTPException, urllib.error.URLError) as exc:  # as the client gets it
                return type(exc).__name__, str(exc)

        return sent

    return [
        Call("length in chunks", [True], send(f"{HAND}/hand/length-chunks")),
        Call("an empty chunk", [True], send(f"{HAND}/hand/empty-chunk")),
        Call("a head not plainly name: value", [True], send(f"{HAND}/hand/odd-head")),
        Call("more headers than http.client takes", [True], send(f"{HAND}/hand/many-headers")),
        Call("a reason and a close", [True], send(f"{HAND}/hand/reason")),
        Call("no content, with a length", [True], send(f"{HAND}/hand/no-content")),
        Call("lines over chunk boundaries", [True], send(f"{HAND}/hand/spanning")),
        Call("an error with a reason", [True], send(f"{HAND}/hand/teapot")),
        Call("head", [True], send(Request(f"{HAND}/hand/head", method="HEAD"))),
        Call("an unknown status", [True], send(f"{HAND}/hand/unknown-status")),
        Call("a 1xx status", [False], send(f"{HAND}/hand/early-hints")),
        Call("a header beyond latin-1", [True], send(f"{HAND}/hand/euro")),
        Call("a body recorded whole", [True], send(f"{HAND}/hand/whole")),
        Call("post", [True], send(Request(f"{HAND}/hand/echo", data=b'{"q": 1}'))),
        Call("https", [True], send("https://api.example.com/v1/tls")),
        Call("https on a port", [True], send("https://api.example.com:8443/v1/tls")),
        Call("ipv6", [True], send("http://[::1]:9/hand/v6")),
    ]


@pytest.mark.parametrize("style", list(STYLES))
def test_answers_written_by_hand_read_alike_through_both_paths(
    style: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _hand_written(tmp_path / "hand.yaml")
    forbid_sockets(monkeypatch)
    fast, slow = _alike_through_both_paths(path, _hand_calls, STYLES[style], monkeypatch)
    assert fast[3] == slow[3]


def test_a_first_play_from_the_replay_cache_answers_and_logs_as_one_read_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `replay_plain` plays a recording's first play from the replay cache's data when the
    # cassette was entered from it, without compiling it: the client and the attempt log must not
    # tell that from a recording read from the file.
    path = _hand_written(tmp_path / "hand.yaml")
    forbid_sockets(monkeypatch)
    read = STYLES["read()"]
    monkeypatch.setenv("LLMCASSETTE_CACHE_DIR", "")
    from_file = _replay(path, _hand_calls(), read, monkeypatch, fast=True)
    monkeypatch.setenv("LLMCASSETTE_CACHE_DIR", str(tmp_path / "cache"))
    _replay(path, _hand_calls(), read, monkeypatch, fast=True)  # (its entry written when left)
    compiled: list[int] = []
    original = LazyCassette.compiled

    def counted(self: LazyCassette, index: int) -> Any:
        compiled.append(index)
        return original(self, index)

    monkeypatch.setattr(LazyCassette, "compiled", counted)
    calls = _hand_calls()
    from_cache = _replay(path, calls, read, monkeypatch, fast=True)
    assert from_cache[2] == from_file[2] == [call.fast for call in calls]
    for call, was, now in zip(calls, from_file[0], from_cache[0], strict=True):
        assert now == was, call.name
    assert from_cache[1] == from_file[1]
    assert from_cache[3] == from_file[3]
    # Every answer the fast path took was played from the cache's data; only the one it
    # declines (a 1xx status) was compiled, by the general path.
    assert compiled == [index for index, call in enumerate(calls) if call.fast != [True]]


def _answered_by(path: Path, request: Any, **options: Any) -> str:
    """Which path answered ``request``: the fast path from memory or from the door's file, or the door."""
    asked: list[bool] = []
    original = Cassette.replay_plain

    def replay_plain(self: Cassette, *args: Any) -> Any:
        response = original(self, *args)
        asked.append(response is not None)
        return response

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Cassette, "replay_plain", replay_plain)
        with llmcassette.use_cassette(path, **options):
            try:
                response = urllib.request.urlopen(request)
            except urllib.error.HTTPError as error:
                response = error.fp
                error.read()  # (the error closes the response when it is let go)
            else:
                with response:
                    response.read()
    if asked != [True]:
        return "door"
    return "fast, from the file" if type(response) is http.client.HTTPResponse else "fast, from memory"


@pytest.mark.parametrize(
    ("request_", "options", "expected"),
    [
        pytest.param(f"{HAND}/hand/spanning", {}, "fast, from memory", id="a stream"),
        pytest.param(f"{HAND}/hand/whole", {}, "fast, from memory", id="a body whole"),
        pytest.param(f"{HAND}/hand/teapot", {}, "fast, from memory", id="an error status"),
        pytest.param("https://api.example.com/v1/tls", {}, "fast, from memory", id="https"),
        pytest.param(
            f"{HAND}/hand/whole", {"record_mode": "new_episodes"}, "fast, from memory", id="new_episodes"
        ),
        pytest.param(f"{HAND}/hand/length-chunks", {}, "fast, from the file", id="a length over chunks"),
        pytest.param(f"{HAND}/hand/empty-chunk", {}, "fast, from the file", id="an empty chunk"),
        pytest.param(f"{HAND}/hand/odd-head", {}, "fast, from the file", id="an odd head"),
        pytest.param(f"{HAND}/hand/whole", {"faults": ["truncate"]}, "door", id="a fault"),
        pytest.param(f"{HAND}/hand/whole", {"pace": "recorded"}, "door", id="recorded pace"),
        pytest.param(
            urllib.request.Request(
                f"{HAND}/hand/echo", data=io.BytesIO(b'{"q": 1}'), headers={"Content-Length": "8"}
            ),
            {},
            "door",
            id="a file body",
        ),
    ],
)
def test_which_requests_take_the_fast_path(
    request_: Any, options: dict[str, Any], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _hand_written(tmp_path / "hand.yaml")
    forbid_sockets(monkeypatch)
    assert _answered_by(path, request_, **options) == expected


def test_do_open_is_patched_only_while_a_cassette_is_active(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _hand_written(tmp_path / "hand.yaml")
    handler = urllib.request.AbstractHTTPHandler
    original = handler.__dict__["do_open"]
    with llmcassette.use_cassette(path):
        patched = handler.__dict__["do_open"]
        assert patched is not original and patched.__wrapped__ is original
    assert handler.__dict__["do_open"] is original
    # Someone who patches it on top while the cassette is active keeps their patch after it.
    with llmcassette.use_cassette(path):
        ours = handler.__dict__["do_open"]

        def theirs(self: Any, http_class: Any, req: Any, **kwargs: Any) -> Any:
            return ours(self, http_class, req, **kwargs)

        monkeypatch.setattr(handler, "do_open", theirs)
    assert handler.__dict__["do_open"] is theirs


def test_vcrpy_answers_from_its_own_cassette_through_its_own_connection_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # vcrpy puts a connection class of its own in `http.client` while its cassette is active: the
    # fast path leaves it to vcrpy, as it leaves any connection class but `http.client`'s own.
    vcr = pytest.importorskip("vcr")
    ours = _hand_written(tmp_path / "hand.yaml")
    theirs = tmp_path / "vcr.yaml"
    theirs.write_text(
        "interactions:\n"
        "- request: {method: GET, uri: 'http://127.0.0.1:9/hand/whole', body: null, headers: {}}\n"
        "  response:\n"
        "    status: {code: 200, message: OK}\n"
        "    headers: {content-type: [text/plain]}\n"
        "    body: {string: from vcrpy}\n"
        "version: 1\n"
    )
    forbid_sockets(monkeypatch)
    with llmcassette.use_cassette(ours) as cassette, vcr.VCR().use_cassette(str(theirs), record_mode="none"):
        assert http.client.HTTPConnection.__module__ != "http.client"
        assert urllib.request.urlopen(f"{HAND}/hand/whole").read() == b"from vcrpy"
    assert cassette.attempts == []


def _long_calls() -> list[Call]:
    opener = urllib.request.build_opener()
    return [
        Call(name, [True], lambda read, name=name: _open(opener, read, f"{HAND}/long/{name}"))
        for name in ("chunked", "length", "lines")
    ]


@pytest.mark.parametrize("style", list(STYLES))
def test_answers_longer_than_http_clients_buffer_read_alike_through_both_paths(
    style: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through the door, `http.client` reads the body through an 8 KB buffer: `read1()`, `peek()`
    # and a chunked answer's `readline(n)` stop at its edge too, not only at a recorded chunk's
    # end. The fast path stopped at the chunks only, and gave a recorded chunk of 20 KB in one
    # `read1()` where the door (and a live server, whose bytes came as fast) gives it in pieces.
    big = [b"a" * 3000 + b"\n", b"b" * 20000 + b"\n", b"c\n" * 3000, b"d" * 9000]
    lines = [f"data: {i} {'w' * (i % 97)}\n\n".encode() for i in range(400)]
    sse = {"content-type": ["text/event-stream"]}
    interactions = [
        _hand(f"{HAND}/long/chunked", 200, sse, big),
        _hand(f"{HAND}/long/length", 200, {"content-length": [str(len(b"".join(big)))]}, [b"".join(big)]),
        _hand(f"{HAND}/long/lines", 200, sse, lines),
    ]
    path = tmp_path / "long.yaml"
    llmcassette.save_cassette(
        path, llmcassette.CassetteDocument.model_validate({"interactions": interactions})
    )
    forbid_sockets(monkeypatch)
    _alike_through_both_paths(path, _long_calls, STYLES[style], monkeypatch)


def test_the_engine_request_of_a_head_found_once_is_the_one_made_anew() -> None:
    # `_wire_request` keeps, with each head it writes (found by the request's method, host,
    # scheme, whether it has data, and headers), whether the engine gets a WireRequest of it:
    # on generated requests, each sent twice (the second time from the kept head), the request
    # the engine gets is the one `engine_request` makes with nothing kept.
    import random

    from llmcassette._adapters._wire import engine_request
    from llmcassette._adapters.urllib_request import _wire_request

    rng = random.Random(16)
    names = ["Content-Length", "content-length", "Transfer-Encoding", "Accept", "X-Key", "Host"]
    seen_kinds = set()
    for _ in range(300):
        https = rng.choice([False, True])
        host = rng.choice(["api.test", "api.test:8080", "[::1]:9"])
        path = rng.choice(["/v1/chat", "/v1/models?q=a%20b", "/%7Euser/x"])
        data = rng.choice([None, b"", b"{}"])
        method = rng.choice([None, "GET", "POST", "post", "PUT", "PATCH", "DELETE", "QUERY"])
        url = f"{'https' if https else 'http'}://{host}{path}"
        request = urllib.request.Request(url, data=data, method=method)
        if rng.random() < 0.8:  # (as `do_request_` adds it; without one the request is declined)
            request.add_unredirected_header("Host", host)
        for name in rng.sample(names, rng.randint(0, 3)):
            request.add_header(name, rng.choice(["1", "chunked", "*/*", "api.test"]))
        for _ in range(2):
            wire = _wire_request(request, https)
            if wire is None:
                break
            method_sent, full_url, lines, body, wire_url = wire
            kept = engine_request(method_sent, full_url, lines, body, wire_url=wire_url)
            anew = engine_request(method_sent, full_url, lines, body)
            case = (method, url, data, request.header_items())
            assert type(kept) is type(anew), case
            assert (kept.method, str(kept.url), list(kept.headers.raw)) == (
                anew.method,
                str(anew.url),
                list(anew.headers.raw),
            ), case
            seen_kinds.add(type(anew).__name__)
    # (every head `do_open` sends has a Host and frames its body, so httpx would add nothing)
    assert seen_kinds == {"WireRequest"}
