"""
requests' door at ``HTTPAdapter.send`` (:mod:`llmcassette._adapters.requests_adapter`): answers
recorded from a real local upstream are replayed through requests twice, once through the door
and once with it taken away (``HTTPAdapter.send`` put back as requests has it, so answered below,
at urllib3's pool), and in every reading style the client must get the same pieces, see the same
response and leave the same attempts in the log. The requests it must leave to the doors below
are checked to go there and be answered as they are without it.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import socket
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import requests
import urllib3
from requests.adapters import HTTPAdapter

import llmcassette
from llmcassette._cassette import Cassette
from llmcassette._models import CassetteDocument
from llmcassette._storage import load_cassette, save_cassette
from tests.adapters.test_http_client import forbid_sockets
from tests.servers import read_request, serve_connections

URLLIB3_V1 = str(getattr(urllib3, "__version__", "")).startswith("1.")

#: A stream of events of many sizes, one larger than requests' `.content` reads (10 KB) at once.
EVENTS = [f"data: {json.dumps({'i': i, 'text': 'ab' * (i * 7 % 40)})}\n\n".encode() for i in range(40)]
EVENTS[17] = b"data: " + b"x" * 12000 + b"\n\n"
JSON_BODY = json.dumps({"answer": "é" * 300, "n": list(range(200))}).encode()
ERROR_BODY = b'{"error": {"message": "no such model", "type": "invalid_request_error"}}'


def _head(status: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [f"HTTP/1.1 {status}".encode(), *(name + b": " + value for name, value in headers)]
    return b"\r\n".join([*lines, b"Connection: close", b"", b""])


def _sized(status: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    return _head(status, [*headers, (b"Content-Length", str(len(body)).encode())]) + body


def _chunked(status: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> bytes:
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    return _head(status, [*headers, (b"Transfer-Encoding", b"chunked")]) + framed + b"0\r\n\r\n"


JSON = [(b"Content-Type", b"application/json")]
#: Each answer by path: the bytes the upstream sends, and the chunk lengths the cassette keeps of
#: the body (set after recording, so that the test does not hang on how the loopback split it).
ANSWERS: dict[str, tuple[bytes, list[int] | None]] = {
    "/sse": (
        _chunked("200 OK", EVENTS, [(b"Content-Type", b"text/event-stream")]),
        [len(event) for event in EVENTS],
    ),
    "/json/one": (_sized("200 OK", JSON_BODY, JSON), [len(JSON_BODY)]),
    "/json/several": (_sized("200 OK", JSON_BODY, JSON), [1000, 24, len(JSON_BODY) - 1024]),
    "/json/chunked": (
        _chunked("200 OK", [JSON_BODY[:700], JSON_BODY[700:]], JSON),
        [700, len(JSON_BODY) - 700],
    ),
    "/empty": (_sized("200 OK", b"", JSON), None),
    "/nothing": (_head("204 No Content", []), None),
    "/missing": (_sized("404 Not Found", ERROR_BODY, JSON), [len(ERROR_BODY)]),
    "/headers": (
        _sized(
            "200 Fine",
            b'{"ok": true}',
            [
                *JSON,
                (b"X-Name", "café".encode("latin-1")),
                (b"X-Utf8", "naïve ✓".encode()),
                (b"Set-Cookie", b"session=abc; Path=/"),
                (b"Set-Cookie", b"theme=dark; Path=/"),
                (b"X-Twice", b"a"),
                (b"X-Twice", b"b"),
            ],
        ),
        None,
    ),
}


PACKED = gzip.compress(JSON_BODY)
#: Answers the door leaves to the doors below.
BELOW: dict[str, bytes] = {
    "/gzip/chunked": _chunked(
        "200 OK", [PACKED[:100], PACKED[100:]], [*JSON, (b"Content-Encoding", b"gzip")]
    ),
    "/busy": _sized("503 Service Unavailable", ERROR_BODY, [*JSON, (b"Retry-After", b"0")]),
}


@contextlib.contextmanager
def _upstream() -> Iterator[str]:
    def answer(connection: socket.socket) -> None:
        with connection:
            connection.settimeout(10)
            request = read_request(connection)
            if request:
                path = request.split(b" ", 2)[1].decode()
                path = path.split("?")[0]
                connection.sendall(BELOW[path] if path in BELOW else ANSWERS[path][0])

    with serve_connections(answer, join_timeout_s=10) as base:
        yield base


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A cassette of every answer, recorded through requests from the upstream."""
    path = tmp_path_factory.mktemp("requests") / "answers.yaml"
    with _upstream() as base:
        with llmcassette.use_cassette(path, record_mode="once"), requests.Session() as session:
            for answer_path in ANSWERS:
                session.get(base + answer_path).close()
            session.head(base + "/json/one").close()
            session.post(base + "/json/one", data=b'{"q": 1}').close()
            for below_path in BELOW:
                session.get(base + below_path).close()
    document = load_cassette(path)
    for interaction in document.interactions:
        known = ANSWERS.get(interaction.request.uri.removeprefix(base))
        chunks = known[1] if known else None
        stream = interaction.response.stream
        if chunks is not None and stream is not None and interaction.request.method == "GET":
            stream.chunks = chunks
    save_cassette(path, document)
    return path, base


# -- reading styles ---------------------------------------------------------------------------------


def _loop(read: Callable[[], bytes]) -> list[bytes]:
    pieces = []
    while piece := read():
        pieces.append(piece)
    return pieces


def _into(raw: Any, size: int) -> list[bytes]:
    pieces: list[bytes] = []
    while True:
        buffer = bytearray(size)
        count = raw.readinto(buffer)
        if not count:
            return pieces
        pieces.append(bytes(buffer[:count]))


Style = Callable[[requests.Response], Any]

STYLES: dict[str, Style] = {
    "iter_content(None)": lambda r: list(r.iter_content(None)),
    "iter_content(1)": lambda r: list(r.iter_content(1))[:50],
    "iter_content(7)": lambda r: list(r.iter_content(7)),
    "iter_content(512)": lambda r: list(r.iter_content(512)),
    "iter_content(10240)": lambda r: list(r.iter_content(10240)),
    "iter_content(100000)": lambda r: list(r.iter_content(100000)),
    "iter_lines()": lambda r: list(r.iter_lines()),
    "iter_lines(3)": lambda r: list(r.iter_lines(3)),
    "content": lambda r: [r.content, r.content],
    "text": lambda r: [r.text, r.apparent_encoding if len(r.content) < 2000 else None],
    "json": lambda r: _json(r),
    "raw.read()": lambda r: [r.raw.read(), r.raw.read()],
    "raw.read(1)": lambda r: _loop(lambda: r.raw.read(1))[:50],
    "raw.read(5)": lambda r: _loop(lambda: r.raw.read(5)),
    "raw.read(1000)": lambda r: _loop(lambda: r.raw.read(1000)),
    "raw.read(0)": lambda r: [r.raw.read(0), r.raw.read()],
    "raw.stream(None)": lambda r: list(r.raw.stream(None)),
    "raw.stream(3)": lambda r: list(r.raw.stream(3)),
    "raw.stream(64)": lambda r: list(r.raw.stream(64)),
    "raw.stream()": lambda r: list(r.raw.stream()),
    "raw.readinto(10)": lambda r: _into(r.raw, 10),
    "raw.readinto(4096)": lambda r: _into(r.raw, 4096),
    "raw.read1(5)": lambda r: _loop(lambda: r.raw.read1(5)) if hasattr(r.raw, "read1") else None,
    "raw.read1()": lambda r: _loop(r.raw.read1) if hasattr(r.raw, "read1") else None,
    "raw lines": lambda r: list(r.raw),
    "raw.readline()": lambda r: _loop(r.raw.readline),
    "raw.data": lambda r: [r.raw.data, r.raw.data],
    "half a stream, then closed": lambda r: _half(r),
    "read after stream(7)": lambda r: [next(r.raw.stream(7), b""), r.raw.read()],
    "stream(7) after read(3)": lambda r: [r.raw.read(3), *r.raw.stream(7)],
    "release_conn, then read": lambda r: [r.raw.release_conn(), r.raw.read()],
    "closed, then read": lambda r: [r.raw.close(), r.raw.closed, r.raw.read()],
    "unread": lambda r: [],
}
if not URLLIB3_V1:  # (urllib3 1.26 reads a chunked answer 0 bytes at a time for ever)
    STYLES["raw.stream(0)"] = lambda r: [*r.raw.stream(0), r.raw.read()]


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except requests.exceptions.JSONDecodeError as exc:
        return type(exc).__name__, str(exc)


def _half(response: requests.Response) -> list[Any]:
    # (what a stream left mid-way gives when read on is urllib3's failure to read a closed one)
    first = next(response.iter_content(None), None)
    response.close()
    return [first, response.raw.closed, response.raw.read()]


def _observed(response: requests.Response, adapter: HTTPAdapter, prepared: Any) -> dict[str, Any]:
    """What a client sees of a response and its raw one besides the pieces."""
    raw = response.raw
    original = raw._original_response
    return {
        "status_code": response.status_code,
        "reason": response.reason,
        "headers": list(response.headers.items()),
        "encoding": response.encoding,
        "url": response.url,
        "cookies": sorted(response.cookies.items()),
        "connection": response.connection is adapter,
        "request": response.request is prepared,
        "elapsed": type(response.elapsed).__name__,
        "history": response.history,
        "raw class": isinstance(raw, urllib3.HTTPResponse),
        "raw.status": raw.status,
        "raw.reason": raw.reason,
        "raw.version": raw.version,
        "raw.headers": list(raw.headers.items()),
        "raw.headers.get": raw.headers.get("x-twice"),
        "raw.chunked": raw.chunked,
        "raw.chunk_left": raw.chunk_left,
        "raw.length_remaining": raw.length_remaining,
        "raw.tell()": raw.tell(),
        "raw.closed": raw.closed,
        "raw.isclosed()": raw.isclosed(),
        "raw.geturl()": raw.geturl(),
        "raw.retries": repr(raw.retries),
        "raw.redirect": raw.get_redirect_location(),
        "raw.connection": raw.connection,
        "original class": isinstance(original, __import__("http.client").client.HTTPResponse),
        "original": [
            original.status,
            original.reason,
            original.version,
            original.closed,
            original.isclosed(),
            original.length,
            original.chunked,
            original.will_close,
            original.msg.items(),
            original.getheaders(),
        ],
    }


def _through(
    path: Path, base: str, answer_path: str, style: Style, *, door: bool, method: str = "GET"
) -> tuple[Any, dict[str, Any], list[tuple[Any, ...]], bool]:
    """What a client gets of ``answer_path`` read in ``style``, through requests' door or not."""
    with contextlib.ExitStack() as stack:
        cassette = stack.enter_context(llmcassette.use_cassette(path, allow_playback_repeats=True))
        if not door:
            patch = stack.enter_context(pytest.MonkeyPatch.context())
            patch.setattr(HTTPAdapter, "send", HTTPAdapter.send.__wrapped__)  # type: ignore[attr-defined]
        session = stack.enter_context(requests.Session())
        adapter = cast(HTTPAdapter, session.get_adapter(base))
        prepared = session.prepare_request(requests.Request(method, base + answer_path))
        response = session.send(prepared, stream=True)
        taken = type(response.raw).__name__ == "_Answered"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                pieces = style(response)
            except Exception as exc:  # what a style raises must be raised alike
                pieces = (type(exc).__name__, str(exc))
        seen = _observed(response, adapter, prepared)
        response.close()
        seen["closed at the end"] = [response.raw.closed, response.raw._original_response.closed]
        seen["session cookies"] = sorted(session.cookies.items())
    return pieces, seen, _attempts(cassette), taken


def _attempts(cassette: Cassette) -> list[tuple[Any, ...]]:
    return [
        (a.method, a.url, list(a.headers.items()), a.body, list(a.chunks), a.status, a.interaction, a.error)
        for a in cassette.attempts
    ]


@pytest.mark.parametrize("answer_path", list(ANSWERS))
def test_every_reading_style_gets_what_the_pool_door_gives(
    answer_path: str, recorded: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, base = recorded
    forbid_sockets(monkeypatch)
    for name, style in STYLES.items():
        below = _through(path, base, answer_path, style, door=False)
        through = _through(path, base, answer_path, style, door=True)
        assert not below[3], f"{name}: requests' door answered with its patch taken away"
        assert through[3], f"{name}: requests' door did not answer"
        assert through[0] == below[0], f"{name}: other pieces"
        assert through[1] == below[1], f"{name}: another response"
        assert through[2] == below[2], f"{name}: other attempts"


def test_a_head_request_is_answered_as_below(
    recorded: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, base = recorded
    forbid_sockets(monkeypatch)
    for name in ("content", "raw.read()", "iter_content(None)", "raw.stream(3)"):
        below = _through(path, base, "/json/one", STYLES[name], door=False, method="HEAD")
        through = _through(path, base, "/json/one", STYLES[name], door=True, method="HEAD")
        assert through[3] and not below[3]
        assert through[:3] == below[:3], name


def test_the_recorded_answers_are_what_the_client_got_live(recorded: tuple[Path, str]) -> None:
    # (the replay compared above is the recording's: its chunks as the test set them)
    path, base = recorded
    with _upstream() as live_base, requests.Session() as session:
        live = {p: session.get(live_base + p).content for p in ANSWERS}
    with llmcassette.use_cassette(path), requests.Session() as session:
        for answer_path, body in live.items():
            response = session.get(base + answer_path, stream=True)
            assert type(response.raw).__name__ == "_Answered"
            assert response.content == body, answer_path
    assert [len(piece) for piece in _replayed_pieces(path, base, "/sse")] == [len(e) for e in EVENTS]


def _replayed_pieces(path: Path, base: str, answer_path: str) -> list[bytes]:
    with llmcassette.use_cassette(path), requests.Session() as session:
        return list(session.get(base + answer_path, stream=True).iter_content(None))


def test_the_door_is_patched_only_while_a_cassette_is_active(tmp_path: Path) -> None:
    before = HTTPAdapter.send
    with llmcassette.use_cassette(tmp_path / "empty.yaml"):
        assert HTTPAdapter.send is not before
        assert HTTPAdapter.send.__wrapped__ is before  # type: ignore[attr-defined]
    assert HTTPAdapter.send is before


# -- what the door leaves to the doors below ----------------------------------------------------------


def _outcome(call: Callable[[requests.Session], requests.Response]) -> Any:
    with requests.Session() as session:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                response = call(session)
                got: Any = [
                    response.status_code,
                    list(response.headers.items()),
                    list(response.iter_content(None)),
                    sorted(session.cookies.items()),
                ]
        except Exception as exc:
            got = (type(exc).__name__, str(exc))
        return got, [(w.category.__name__, str(w.message)) for w in caught]


def _left_below(
    path: Path,
    call: Callable[[requests.Session], requests.Response],
    monkeypatch: pytest.MonkeyPatch,
    *,
    miss: bool = False,
    **options: Any,
) -> tuple[Any, list[tuple[Any, ...]]]:
    """What ``call`` gets through the door and without it, which must be alike, and that the
    door answered nothing; the outcome and attempts."""
    from llmcassette._adapters import requests_adapter

    made: list[Any] = []
    original = requests_adapter._made

    def spy(*args: Any) -> Any:
        made.append(args)
        return original(*args)

    monkeypatch.setattr(requests_adapter, "_made", spy)
    seen = []
    for door in (True, False):
        with contextlib.ExitStack() as stack:
            cassette = stack.enter_context(
                llmcassette.use_cassette(path, allow_playback_repeats=True, **options)
            )
            if not door:
                patch = stack.enter_context(pytest.MonkeyPatch.context())
                patch.setattr(HTTPAdapter, "send", HTTPAdapter.send.__wrapped__)  # type: ignore[attr-defined]
            if miss:
                stack.enter_context(cassette.expect_miss())
            seen.append((_outcome(call), _attempts(cassette)))
    assert made == [], "requests' door answered"
    assert seen[0] == seen[1]
    return seen[0]


def test_a_request_the_cassette_does_not_replay_plainly_is_left_below(
    recorded: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, base = recorded
    forbid_sockets(monkeypatch)
    # a miss
    (got, _warned), _ = _left_below(path, lambda s: s.get(base + "/unrecorded"), monkeypatch, miss=True)
    assert got[0] == "NoMatchingInteraction"
    # a fault
    (got, _warned), attempts = _left_below(
        path, lambda s: s.get(base + "/json/one"), monkeypatch, faults=["rate_limit"]
    )
    assert got[0] == 429


def test_a_chunked_answer_urllib3_decodes_is_left_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kept packed (`decode_compressed=False`): urllib3 decodes each chunk as it reads the framing
    path = tmp_path / "packed.yaml"
    with _upstream() as base:
        with llmcassette.use_cassette(path, record_mode="once", decode_compressed=False):
            requests.get(base + "/gzip/chunked").close()
        forbid_sockets(monkeypatch)
        url = base + "/gzip/chunked"
        (got, _warned), _ = _left_below(path, lambda s: s.get(url), monkeypatch, decode_compressed=False)
    assert got[0] == 200 and b"".join(got[2]) == JSON_BODY


def test_a_request_requests_would_not_send_as_it_is_is_left_below(
    recorded: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, base = recorded
    forbid_sockets(monkeypatch)

    # a status the adapter's Retry retries (then gives up: requests' RetryError)
    def retried(session: requests.Session) -> requests.Response:
        retry = urllib3.Retry(total=1, status_forcelist=[503], backoff_factor=0)
        session.mount(base, HTTPAdapter(max_retries=retry))
        return session.get(base + "/busy")

    (got, _warned), attempts = _left_below(path, retried, monkeypatch)
    assert got[0] == "RetryError" and len(attempts) == 2
    # a chunked upload
    (got, _warned), _ = _left_below(
        path, lambda s: s.post(base + "/json/one", data=iter([b'{"q": ', b"1}"])), monkeypatch
    )
    assert got[0] == 200

    # a body of bytes with no length among the headers (requests uploads it in chunks), the
    # headers in requests' own mapping or in another
    def unsized(session: requests.Session, plain: bool) -> requests.Response:
        prepared = session.prepare_request(requests.Request("POST", base + "/json/one", data=b'{"q": 1}'))
        del prepared.headers["Content-Length"]
        if plain:
            prepared.headers = dict(prepared.headers)  # type: ignore[assignment]
        return session.send(prepared)

    for plain in (False, True):
        (got, _warned), attempts = _left_below(path, functools.partial(unsized, plain=plain), monkeypatch)
        assert got[0] == 200 and ("transfer-encoding", "chunked") in attempts[0][2]

    # an adapter that adds headers of its own
    class Adding(HTTPAdapter):
        def add_headers(self, request: Any, **kwargs: Any) -> None:
            request.headers["X-Added"] = request.headers.get("X-Added", "") + "once"

    def added(session: requests.Session) -> requests.Response:
        session.mount(base, Adding())
        return session.get(base + "/json/one")

    (got, _warned), attempts = _left_below(path, added, monkeypatch)
    assert ("x-added", "once") in attempts[0][2]

    # an adapter that finds its pools its own way (each step taken once, as without the door)
    found: list[str] = []

    class Finding(HTTPAdapter):
        def get_connection_with_tls_context(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            found.append(request.url)
            return super().get_connection_with_tls_context(request, *args, **kwargs)

    def finding(session: requests.Session) -> requests.Response:
        session.mount(base, Finding())
        return session.get(base + "/json/one")

    _left_below(path, finding, monkeypatch)
    assert found == [base + "/json/one"] * 2  # (once through the door, once without)
    # a timeout requests refuses, in its own words
    (got, _warned), attempts = _left_below(
        path, lambda s: s.get(base + "/json/one", timeout=(1, -1)), monkeypatch
    )
    assert got[0] == "ValueError" and "Invalid timeout" in got[1] and attempts == []

    # a proxy
    def proxied(session: requests.Session) -> requests.Response:
        session.proxies = {"http": "http://127.0.0.1:9"}
        return session.get(base + "/json/one")

    _left_below(path, proxied, monkeypatch)


def test_an_https_request_urllib3_would_warn_of_is_left_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tls.yaml"
    interaction = {
        "request": {"method": "GET", "uri": "https://api.example.com/v1/models", "headers": {}, "body": ""},
        "response": {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": "{}"}},
    }
    save_cassette(path, CassetteDocument.model_validate({"interactions": [interaction]}))
    forbid_sockets(monkeypatch)
    url = "https://api.example.com/v1/models"
    (got, warned), _ = _left_below(path, lambda s: s.get(url, verify=False), monkeypatch)
    assert got[0] == 200
    assert [category for category, _ in warned] == ["InsecureRequestWarning"]
    # and verified, it is the door's
    with llmcassette.use_cassette(path), requests.Session() as session:
        assert type(session.get(url, stream=True).raw).__name__ == "_Answered"


def test_a_recording_goes_to_the_upstream(tmp_path: Path) -> None:
    path = tmp_path / "recorded.yaml"
    with _upstream() as base:
        with llmcassette.use_cassette(path, record_mode="all"), requests.Session() as session:
            response = session.get(base + "/json/one", stream=True)
            assert type(response.raw).__name__ != "_Answered"
            assert response.content == JSON_BODY
    assert len(load_cassette(path).interactions) == 1


def test_the_pools_are_taken_as_requests_takes_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The door remembers the pool requests' steps found for an origin, and asks the manager for it
    # by its key: the manager's pools, and their order (which one it drops first), come out alike.
    path = tmp_path / "origins.yaml"
    urls = [
        "http://a.example/x",
        "http://b.example:8080/x",
        "https://c.example/x",
        "http://a.example/y?q=1",
        "http://d.example/x",
    ]
    interactions = [
        {
            "request": {"method": "GET", "uri": url, "headers": {}, "body": ""},
            "response": {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": "{}"}},
        }
        for url in urls
    ]
    save_cassette(path, CassetteDocument.model_validate({"interactions": interactions}))
    forbid_sockets(monkeypatch)

    def run(door: bool) -> list[Any]:
        seen: list[Any] = []
        with contextlib.ExitStack() as stack:
            stack.enter_context(llmcassette.use_cassette(path, allow_playback_repeats=True))
            if not door:
                patch = stack.enter_context(pytest.MonkeyPatch.context())
                patch.setattr(HTTPAdapter, "send", HTTPAdapter.send.__wrapped__)  # type: ignore[attr-defined]
            session = stack.enter_context(requests.Session())
            session.mount("http://", HTTPAdapter(pool_connections=2))
            session.mount("https://", HTTPAdapter(pool_connections=2))
            # (two pools kept at most: which one a third drops is the one used least recently)
            steps = [*urls, urls[1], urls[0], urls[3], urls[4], "clear", urls[1], urls[2], urls[2], urls[0]]
            for url in steps:
                adapter = cast(HTTPAdapter, session.get_adapter("http://a.example"))
                if url == "clear":
                    adapter.poolmanager.clear()
                    continue
                response = session.get(url, stream=True)
                seen.append((url, response.content, type(response.raw).__name__ == "_Answered"))
                seen.append(
                    [(k.key_scheme, k.key_host, k.key_port) for k in adapter.poolmanager.pools.keys()]
                )
        return seen

    through, below = run(door=True), run(door=False)
    assert [step[2] for step in through if isinstance(step, tuple)] == [True] * 13
    assert [step[:2] if isinstance(step, tuple) else step for step in through] == [
        step[:2] if isinstance(step, tuple) else step for step in below
    ]


def test_a_ca_bundle_is_taken_and_checked_as_requests_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CA bundle's path as `verify` (as REQUESTS_CA_BUNDLE gives it): the pools are the same,
    # and a missing bundle still fails an https request as requests fails it.
    path = tmp_path / "bundle.yaml"
    urls = ["http://a.example/x", "https://c.example/x"]
    interactions = [
        {
            "request": {"method": "GET", "uri": url, "headers": {}, "body": ""},
            "response": {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": "{}"}},
        }
        for url in urls
    ]
    save_cassette(path, CassetteDocument.model_validate({"interactions": interactions}))
    bundle = tmp_path / "ca.pem"
    bundle.write_text("(never read: no handshake on replay)\n")
    forbid_sockets(monkeypatch)

    def run(door: bool) -> list[Any]:
        seen: list[Any] = []
        with contextlib.ExitStack() as stack:
            stack.enter_context(llmcassette.use_cassette(path, allow_playback_repeats=True))
            patch = stack.enter_context(pytest.MonkeyPatch.context())
            if not door:
                patch.setattr(HTTPAdapter, "send", HTTPAdapter.send.__wrapped__)  # type: ignore[attr-defined]
            session = stack.enter_context(requests.Session())
            for url, verify in [
                *[(urls[0], str(bundle))] * 3,
                (urls[1], str(bundle)),
                (urls[1], "/no/ca.pem"),
            ]:
                try:
                    response = session.get(url, verify=verify)
                    seen.append((url, response.content, type(response.raw).__name__ == "_Answered"))
                except OSError as exc:
                    seen.append((url, type(exc).__name__, str(exc)))
            adapter = cast(HTTPAdapter, session.get_adapter(urls[0]))
            seen.append(
                sorted(
                    (k.key_scheme, k.key_ca_certs, k.key_ca_cert_dir)
                    for k in adapter.poolmanager.pools.keys()
                )
            )
        return seen

    through, below = run(door=True), run(door=False)
    assert [step[2] for step in through[:4]] == [True] * 4
    assert (
        through[4]
        == below[4]
        == (
            urls[1],
            "OSError",
            "Could not find a suitable TLS CA certificate bundle, invalid path: /no/ca.pem",
        )
    )
    assert [step[:2] for step in through[:4]] == [step[:2] for step in below[:4]]
    assert through[5] == below[5]


# -- a CA bundle's path turned into a folder --

_BUNDLE_URL = "https://c.example/x"


def _bundle_cassette(path: Path) -> None:
    interaction = {
        "request": {"method": "GET", "uri": _BUNDLE_URL, "headers": {}, "body": ""},
        "response": {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": "{}"}},
    }
    save_cassette(path, CassetteDocument.model_validate({"interactions": [interaction]}))


def _bundle_pools(session: requests.Session) -> list[Any]:
    adapter = cast(HTTPAdapter, session.get_adapter(_BUNDLE_URL))
    return sorted(
        (k.key_scheme, str(k.key_ca_certs), str(k.key_ca_cert_dir)) for k in adapter.poolmanager.pools.keys()
    )


def _bundle_run(path: Path, bundle: Path, door: bool, *, across_cassettes: bool) -> list[Any]:
    # An https request with the bundle a file, then the same path turned into a folder of
    # certificates and asked again: requests takes `ca_certs` the first time, `ca_cert_dir` the
    # second (a new pool).
    if bundle.is_dir():
        bundle.rmdir()
    bundle.write_text("(never read: no handshake on replay)\n")
    seen: list[Any] = []

    @contextlib.contextmanager
    def active() -> Any:
        with (
            llmcassette.use_cassette(path, allow_playback_repeats=True),
            pytest.MonkeyPatch.context() as patch,
        ):
            if not door:
                patch.setattr(HTTPAdapter, "send", HTTPAdapter.send.__wrapped__)  # type: ignore[attr-defined]
            yield

    with requests.Session() as session:
        with active():
            seen.append(session.get(_BUNDLE_URL, verify=str(bundle)).content)
            seen.append(_bundle_pools(session))
            if across_cassettes:
                bundle.unlink()
                bundle.mkdir()
            if not across_cassettes:
                bundle.unlink()
                bundle.mkdir()
                seen.append(session.get(_BUNDLE_URL, verify=str(bundle)).content)
                seen.append(_bundle_pools(session))
                return seen
        with active():
            seen.append(session.get(_BUNDLE_URL, verify=str(bundle)).content)
            seen.append(_bundle_pools(session))
    return seen


@pytest.mark.parametrize(
    "across_cassettes",
    [
        pytest.param(False, id="within-a-cassette"),
        pytest.param(True, id="across-cassettes"),
    ],
)
def test_a_bundle_turned_into_a_folder_is_taken_as_requests_takes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, across_cassettes: bool
) -> None:
    path = tmp_path / "bundle.yaml"
    _bundle_cassette(path)
    forbid_sockets(monkeypatch)
    bundle = tmp_path / "ca"
    through = _bundle_run(path, bundle, door=True, across_cassettes=across_cassettes)
    below = _bundle_run(path, bundle, door=False, across_cassettes=across_cassettes)
    assert len(below[3]) == 2  # (requests makes a pool with `ca_cert_dir` for the folder)
    assert through == below
