"""
The ``http.client`` door: ``urllib.request``, urllib3 and requests recorded from a real local
upstream, then replayed with no socket opened, chunk for chunk, through every reading style; and
faults raised the way each library raises a real failure.
"""

from __future__ import annotations

import email.parser
import http.client
import io
import json
import shutil
import socket
import ssl
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
import trustme
import urllib3
from hypothesis import given, settings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import llmcassette
from llmcassette import VirtualClock
from tests.arbitrary import STREAM_BODIES, STREAMS
from tests.servers import PlannedUpstream, hang_up_server, read_request, serve, serve_connections, stream_app

NDJSON = "/ndjson?n=5&gap_ms=15"
SSE = "/sse?n=4&gap_ms=15&split=pairs"


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve(stream_app()) as base:
        yield base


@pytest.fixture(scope="module")
def recorded(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[bytes]]]:
    """One cassette recorded through requests, urllib3 and urllib.request, and what each client read live."""
    path = tmp_path_factory.mktemp("recorded") / "clients.yaml"
    live: dict[str, list[bytes]] = {}
    with llmcassette.use_cassette(path, record_mode="once"):
        with requests.post(upstream + NDJSON, json={"model": "m"}, stream=True) as response:
            live["requests"] = list(response.iter_content(chunk_size=None))
        pool = urllib3.PoolManager()
        response3 = pool.request("POST", upstream + SSE, body=b'{"stream": true}', preload_content=False)
        live["urllib3"] = list(response3.stream(None))
        response3.release_conn()
        with urllib.request.urlopen(urllib.request.Request(upstream + "/json", data=b'{"q": 1}')) as r:
            live["urllib"] = [r.read()]
    return path, live


@pytest.fixture
def cassette(recorded: tuple[Path, dict[str, list[bytes]]], tmp_path: Path) -> Path:
    copy = tmp_path / "clients.yaml"
    shutil.copy(recorded[0], copy)
    return copy


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, ...]]:
    """Fail the test if anything connects a socket."""
    return forbid_sockets(monkeypatch)


def forbid_sockets(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, ...]]:
    opened: list[tuple[object, ...]] = []

    def connect(self: socket.socket, *args: object) -> None:
        opened.append(args)
        raise AssertionError(f"llmcassette opened a socket during replay: {args}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    return opened


def test_recording_stores_each_chunk_as_it_arrived(recorded: tuple[Path, dict[str, list[bytes]]]) -> None:
    path, live = recorded
    document = llmcassette.load_cassette(path)
    assert len(document.interactions) == 3
    stream = document.interactions[0].response.stream
    assert stream is not None and stream.chunks == [len(c) for c in live["requests"]]
    assert len(stream.chunks) == 5  # one per line the upstream wrote
    assert stream.offsets_ms is not None and stream.offsets_ms == sorted(stream.offsets_ms)
    assert document.interactions[1].response.stream is not None
    assert document.interactions[1].response.stream.chunks == [len(c) for c in live["urllib3"]]
    assert document.interactions[2].response.parsed_body == {"echo": {"q": 1}, "path": "/json"}
    # Read to its Content-Length, the client asked no further: the body was still whole.
    assert document.interactions[2].response.stream is None


def test_requests_replays_chunk_for_chunk_with_no_socket(
    cassette: Path, recorded: tuple[Path, dict[str, list[bytes]]], upstream: str, no_sockets: list[object]
) -> None:
    live = recorded[1]
    with llmcassette.use_cassette(cassette) as replay:
        with requests.post(upstream + NDJSON, json={"model": "m"}, stream=True) as response:
            assert list(response.iter_content(chunk_size=None)) == live["requests"]
        pool = urllib3.PoolManager()
        response3 = pool.request("POST", upstream + SSE, body=b'{"stream": true}', preload_content=False)
        assert list(response3.stream(None)) == live["urllib3"]
        with urllib.request.urlopen(urllib.request.Request(upstream + "/json", data=b'{"q": 1}')) as r:
            assert [r.read()] == live["urllib"]
    assert [a.interaction for a in replay.attempts] == [0, 1, 2]
    assert no_sockets == []


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda r: b"".join(r.iter_content(chunk_size=7)), id="iter_content(7)"),
        pytest.param(lambda r: b"\n".join(r.iter_lines()) + b"\n", id="iter_lines"),
        pytest.param(lambda r: r.raw.read(10) + r.raw.read(), id="raw.read(n)"),
        pytest.param(lambda r: b"".join(r.raw.stream(3)), id="raw.stream(3)"),
        pytest.param(lambda r: r.content, id="content"),
    ],
)
def test_every_reading_style_gets_the_recorded_bytes(
    cassette: Path,
    recorded: tuple[Path, dict[str, list[bytes]]],
    upstream: str,
    read: object,
    no_sockets: object,
) -> None:
    with llmcassette.use_cassette(cassette, allow_playback_repeats=True):
        with requests.post(upstream + NDJSON, json={"model": "m"}, stream=True) as response:
            assert read(response) == b"".join(recorded[1]["requests"])  # type: ignore[operator]


def test_readinto_and_read1_of_http_client(cassette: Path, upstream: str, no_sockets: object) -> None:
    host = upstream.removeprefix("http://")
    with llmcassette.use_cassette(cassette):
        connection = http.client.HTTPConnection(host, timeout=5)
        connection.request(
            "POST", NDJSON, body=b'{"model": "m"}', headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        first = response.read1(1000)
        buffer = bytearray(4096)
        size = response.readinto(buffer)
        rest = response.read()
    lines = (first + bytes(buffer[:size]) + rest).splitlines()
    assert len(lines) == 5 and json.loads(lines[-1])["done"] is True
    assert len(first) == 82  # read1 stops at the end of the first recorded chunk


def test_a_disconnect_is_the_libraries_own_broken_stream(
    cassette: Path, upstream: str, no_sockets: object
) -> None:
    with llmcassette.use_cassette(
        cassette, faults=["disconnect:after=2"], allow_playback_repeats=True
    ) as replay:
        with requests.post(upstream + NDJSON, json={"model": "m"}, stream=True) as response:
            got: list[bytes] = []
            with pytest.raises(requests.exceptions.ChunkedEncodingError):
                got.extend(response.iter_content(chunk_size=None))
        assert len(got) == 2
        pool = urllib3.PoolManager()
        response3 = pool.request("POST", upstream + NDJSON, body=b'{"model": "m"}', preload_content=False)
        with pytest.raises(urllib3.exceptions.ProtocolError):
            list(response3.stream(None))
    assert [a.faults for a in replay.attempts] == [["disconnect:after=2"], ["disconnect:after=2"]]


def test_connect_errors_are_connect_errors_to_urllib3s_retry(
    cassette: Path, upstream: str, no_sockets: object
) -> None:
    retry = urllib3.Retry(connect=2, read=0, status=0, backoff_factor=0.5)
    pool = urllib3.PoolManager(retries=retry)
    with (
        VirtualClock() as clock,
        llmcassette.use_cassette(cassette, faults=["connect_error:times=2"]) as replay,
    ):
        response = pool.request("POST", upstream + "/json", body=b'{"q": 1}')
    # A POST is not retried after a read error, only after a failed connect: these are.
    assert response.status == 200 and json.loads(response.data) == {"echo": {"q": 1}, "path": "/json"}
    assert [a.error for a in replay.attempts[:2]] == ["ConnectError: [Errno 111] Connection refused"] * 2
    assert clock.sleeps == [1.0]  # urllib3 retries the first error at once, then backs off
    with (
        llmcassette.use_cassette(cassette, faults=["connect_error"]),
        pytest.raises(requests.ConnectionError) as info,
    ):
        requests.post(upstream + "/json", json={"q": 1})
    assert isinstance(info.value.args[0].reason, urllib3.exceptions.NewConnectionError)
    with (
        llmcassette.use_cassette(cassette, faults=["connect_error"]),
        pytest.raises(urllib.error.URLError) as err,
    ):
        urllib.request.urlopen(urllib.request.Request(upstream + "/json", data=b'{"q": 1}'))
    assert isinstance(err.value.reason, ConnectionRefusedError)


def test_a_rate_limit_is_retried_after_its_retry_after_on_the_virtual_clock(
    cassette: Path, upstream: str, no_sockets: object
) -> None:
    retry = urllib3.Retry(
        total=3, status_forcelist=[429], allowed_methods=None, respect_retry_after_header=True
    )
    pool = urllib3.PoolManager(retries=retry)
    faults = ["rate_limit:retry_after=7,times=2"]
    with VirtualClock() as clock, llmcassette.use_cassette(cassette, faults=faults) as replay:
        response = pool.request("POST", upstream + "/json", body=b'{"q": 1}')
    assert response.status == 200
    assert [a.status for a in replay.attempts] == [429, 429, 200]
    assert clock.sleeps == [7.0, 7.0]


def test_timeouts_are_the_libraries_own(cassette: Path, upstream: str, no_sockets: object) -> None:
    with VirtualClock(), llmcassette.use_cassette(cassette, faults=["read_timeout"]):
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(upstream + "/json", json={"q": 1}, timeout=3)
    with VirtualClock(), llmcassette.use_cassette(cassette, faults=["stall:after=2"]):
        with requests.post(upstream + NDJSON, json={"model": "m"}, stream=True, timeout=3) as response:
            got: list[bytes] = []
            with pytest.raises(requests.exceptions.ConnectionError, match="Read timed out"):
                got.extend(response.iter_content(chunk_size=None))
    assert len(got) == 2


@pytest.mark.parametrize("mode", ["close", "reset"])
def test_an_upstream_that_hangs_up_before_answering_is_recorded_and_replayed_as_the_library_sees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    path = tmp_path / "hung-up.yaml"

    def post(url: str) -> requests.ConnectionError:
        with pytest.raises(requests.ConnectionError) as info:
            requests.post(url, json={"q": 1})
        return info.value

    with hang_up_server(mode) as base:
        url = base + "/v1/chat/completions"
        direct = post(url)
        with llmcassette.use_cassette(path, record_mode="once") as recording:
            live = post(url)
    # The client sees its own library's error, as without llmcassette; the cassette holds it.
    assert str(live) == str(direct)
    assert recording.attempts[0].recorded
    (interaction,) = llmcassette.load_cassette(path).interactions
    assert interaction.response.status is None and interaction.response.stream is not None
    expected = "RemoteProtocolError" if mode == "close" else "ReadError"
    assert interaction.response.stream.error is not None
    assert interaction.response.stream.error.type == expected

    forbid_sockets(monkeypatch)
    with llmcassette.use_cassette(path, allow_playback_repeats=True) as replay:
        replayed = post(url)
        with pytest.raises(httpx.TransportError) as through_httpx:
            httpx.post(url, json={"q": 1})
    assert str(replayed) == str(direct)
    assert type(through_httpx.value).__name__ == expected
    assert [a.interaction for a in replay.attempts] == [0, 0]


def test_httpx_and_requests_share_one_cassette(
    upstream: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mixed.yaml"
    with serve(stream_app()) as base:
        with llmcassette.use_cassette(path, record_mode="once"):
            first = httpx.post(base + "/json", json={"by": "httpx"}).json()
            second = requests.post(base + "/json", json={"by": "requests"}).json()
    forbid_sockets(monkeypatch)
    with llmcassette.use_cassette(path) as replay:
        assert requests.post(base + "/json", json={"by": "requests"}).json() == second
        assert httpx.post(base + "/json", json={"by": "httpx"}).json() == first
    assert [a.interaction for a in replay.attempts] == [1, 0]


def test_the_patches_are_gone_after_the_cassette(cassette: Path) -> None:
    before = http.client.HTTPConnection.connect
    parse_headers = http.client.parse_headers
    with llmcassette.use_cassette(cassette):
        assert http.client.HTTPConnection.connect is not before
        assert http.client.parse_headers is not parse_headers
    assert http.client.HTTPConnection.connect is before
    assert http.client.parse_headers is parse_headers
    assert urllib3.connection.HTTPConnection.request.__name__ == "request"
    assert not hasattr(urllib3.connection.HTTPConnection.request, "__wrapped__")


@pytest.fixture(scope="module")
def planned() -> Iterator[tuple[str, PlannedUpstream]]:
    upstream = PlannedUpstream()
    with serve(upstream) as base:
        yield base, upstream


@settings(max_examples=30, deadline=None)
@given(stream=STREAMS, body=STREAM_BODIES)
def test_any_body_in_any_chunking_is_recorded_and_replayed_exactly_through_requests(
    planned: tuple[str, PlannedUpstream], stream: tuple[str | None, list[bytes]], body: bytes
) -> None:
    base, upstream = planned
    content_type, chunks = stream
    url = base + upstream.plan(content_type, chunks)

    def read() -> list[bytes]:
        with requests.post(url, data=body, stream=True) as response:
            return [chunk for chunk in response.iter_content(chunk_size=None) if chunk]

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        with llmcassette.use_cassette(path, record_mode="once"):
            assert read() == chunks
        with llmcassette.use_cassette(path):
            assert read() == chunks


@pytest.mark.parametrize(("fault", "waited_s"), [("read_timeout:delay_ms=0", 0.0), ("read_timeout", 30.0)])
def test_a_read_timeout_lasts_its_delay_else_the_clients_timeout(
    cassette: Path, upstream: str, no_sockets: object, fault: str, waited_s: float
) -> None:
    # The standard matrix's `read_timeout:delay_ms=0` must stay instant without a virtual clock.
    with VirtualClock() as clock, llmcassette.use_cassette(cassette, faults=[fault]) as replay:
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(upstream + "/json", json={"q": 1}, timeout=30)
    assert clock.elapsed_s == waited_s
    assert replay.attempts[0].error is not None and replay.attempts[0].error.startswith("ReadTimeout")


@pytest.mark.parametrize(("mode", "recorded_as"), [("close", "RemoteProtocolError"), ("reset", "ReadError")])
def test_a_stream_broken_off_live_is_recorded_and_replayed_as_the_same_close_or_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, recorded_as: str
) -> None:
    path = tmp_path / "broken.yaml"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
    line = b'{"message": {"content": "Hel"}, "done": false}\n'
    partial = head + f"{len(line):x}\r\n".encode() + line + b"\r\n"

    def read(url: str) -> tuple[list[bytes], tuple[type[BaseException], ...]]:
        got: list[bytes] = []
        with requests.post(url, json={"q": 1}, stream=True) as response:
            with pytest.raises(requests.exceptions.ChunkedEncodingError) as info:
                got.extend(response.iter_content(chunk_size=None))
        chain: list[type[BaseException]] = []
        error: BaseException | None = info.value
        while error is not None:  # requests wraps urllib3's error, which wraps the socket's
            chain.append(type(error))
            error = next((a for a in error.args if isinstance(a, BaseException)), None)
        return got, tuple(chain)

    with hang_up_server(mode, partial=partial) as base:
        url = base + "/api/chat"
        direct = read(url)
        with llmcassette.use_cassette(path, record_mode="once"):
            assert read(url) == direct
    (interaction,) = llmcassette.load_cassette(path).interactions
    assert interaction.response.stream is not None and interaction.response.stream.error is not None
    assert interaction.response.stream.error.type == recorded_as
    forbid_sockets(monkeypatch)
    with llmcassette.use_cassette(path):
        assert read(url) == direct
    assert direct[0] == [line]


def test_a_connection_pooled_before_the_cassette_does_not_reach_the_upstream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A keep-alive upstream: the pool keeps the live connection open, so nothing connects again
    # under the cassette. Replay must still answer, not send the request down that open socket.
    calls: list[str] = []

    async def answer(request: Request) -> JSONResponse:
        calls.append(request.url.path)
        return JSONResponse({"call": len(calls)})

    path = tmp_path / "pooled.yaml"
    pool = urllib3.PoolManager()
    with serve(Starlette(routes=[Route("/json", answer, methods=["POST"])])) as base:
        with llmcassette.use_cassette(path, record_mode="once"):
            assert json.loads(urllib3.PoolManager().request("POST", base + "/json", body=b"{}").data) == {
                "call": 1
            }
        assert json.loads(pool.request("POST", base + "/json", body=b"{}").data) == {
            "call": 2
        }  # live, pooled
        forbid_sockets(monkeypatch)
        with llmcassette.use_cassette(path) as replay:
            assert json.loads(pool.request("POST", base + "/json", body=b"{}").data) == {"call": 1}
    assert len(calls) == 2
    assert [a.interaction for a in replay.attempts] == [0]


HEADS = [
    pytest.param([], id="no-headers"),
    pytest.param([b"content-type: application/json", b"Transfer-Encoding: chunked"], id="plain"),
    pytest.param(
        [b"X-A:   spaced  ", b"x-b:", b"x-c:\ttab", b"Set-Cookie: a=1", b"Set-Cookie: b=2", b"x-l: caf\xe9"],
        id="odd-values",
    ),
    pytest.param([b"x-v: a\x0bb\x0cc\x1cd\x85e\x00f", b"x-w: =?utf-8?q?x?="], id="control-characters"),
    pytest.param([b"a: b"] * 99, id="99-headers"),
]


@pytest.mark.parametrize("headers", HEADS)
def test_a_replayed_head_is_the_message_http_clients_parser_makes_of_it(headers: list[bytes]) -> None:
    from llmcassette._adapters.http_client import split_head

    lines = [b"HTTP/1.1 200 OK", *headers]
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    status_line, message = split_head(lines)
    assert status_line == b"HTTP/1.1 200 OK\r\n" and message is not None
    parsed = http.client.parse_headers(io.BufferedReader(io.BytesIO(head.split(b"\r\n", 1)[1])))
    assert vars(message) == vars(parsed)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([b"bad name: x"], id="space-in-name"),
        pytest.param([b"no colon"], id="no-colon"),
        pytest.param([b" folded: x"], id="continuation"),
        pytest.param([b"a: b"] * 100, id="100-headers"),
    ],
)
def test_a_head_that_is_not_plain_is_left_whole_for_the_library_to_parse(headers: list[bytes]) -> None:
    from llmcassette._adapters.http_client import split_head

    lines = [b"HTTP/1.1 200 OK", *headers]
    assert split_head(lines) == (b"\r\n".join(lines) + b"\r\n\r\n", None)


def test_a_replayed_head_reaches_the_library_as_its_own_parser_reads_it(
    cassette: Path, upstream: str, no_sockets: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmcassette._adapters import http_client

    def replay() -> list[object]:
        pool = urllib3.PoolManager()
        with llmcassette.use_cassette(cassette, allow_playback_repeats=True):
            seen = []
            for method, path, body in (("POST", NDJSON, b'{"model": "m"}'), ("POST", "/json", b'{"q": 1}')):
                response = pool.request(method, upstream + path, body=body, preload_content=False)
                raw = response._original_response if hasattr(response, "_original_response") else None
                fields = ("status", "reason", "version", "chunked", "length", "will_close")
                seen.append([getattr(raw, name) for name in fields])
                seen.append([list(raw.msg.items()), list(response.headers.items()), response.read()])
                response.release_conn()
        return seen

    monkeypatch.setattr(http_client, "split_head", lambda lines: (b"\r\n".join(lines) + b"\r\n\r\n", None))
    parsed_by_the_library = replay()
    monkeypatch.undo()
    forbid_sockets(monkeypatch)
    monkeypatch.setattr(email.parser.Parser, "parsestr", _no_parsing)
    assert replay() == parsed_by_the_library


def _no_parsing(*args: object, **kwargs: object) -> None:
    raise AssertionError("a replayed head went through the email parser")


def test_a_response_read_after_its_cassette_exited_is_still_the_recording(
    cassette: Path, upstream: str, no_sockets: object
) -> None:
    # The request is answered by the cassette it was sent under; its head is parsed later, once
    # the cassette's patches are gone, so the head must be in the file whole.
    connection = http.client.HTTPConnection(upstream.removeprefix("http://"), timeout=5)
    with llmcassette.use_cassette(cassette):
        connection.request("POST", "/json", body=b'{"q": 1}', headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("content-type") == "application/json"
    assert json.loads(response.read()) == {"echo": {"q": 1}, "path": "/json"}


def test_a_1xx_answer_is_read_as_http_client_reads_one_live(
    cassette: Path, upstream: str, no_sockets: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `begin` skips a 1xx head's header block itself, then reads the next status line: here the
    # body's first line, as from a server that sent a 100 and then the body.
    def answer() -> str:
        connection = http.client.HTTPConnection(upstream.removeprefix("http://"), timeout=5)
        with llmcassette.use_cassette(cassette, faults=["status:code=100"]):
            connection.request("POST", "/json", body=b'{"q": 1}')
            with pytest.raises(http.client.HTTPException) as raised:
                connection.getresponse()
        return repr(raised.value)

    handed = answer()
    from llmcassette._adapters import http_client

    monkeypatch.setattr(http_client, "_hands_over_headers", lambda: False)
    assert handed == answer()
    assert handed.startswith("BadStatusLine(")


def test_a_response_whose_cassette_exits_between_its_answer_and_its_head_is_read_whole(
    cassette: Path, upstream: str, no_sockets: object
) -> None:
    # Another thread may exit the cassette (and take its `parse_headers` away) after the answer's
    # file was made with the header block parsed apart, before `begin` reads the head from it.
    use = llmcassette.use_cassette(cassette)

    class ExitsFirst(http.client.HTTPResponse):
        def begin(self) -> None:
            use.__exit__(None, None, None)
            super().begin()

    connection = http.client.HTTPConnection(upstream.removeprefix("http://"), timeout=5)
    connection.response_class = ExitsFirst
    use.__enter__()
    connection.request("POST", "/json", body=b'{"q": 1}', headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("content-type") == "application/json"
    assert json.loads(response.read()) == {"echo": {"q": 1}, "path": "/json"}


#: A head with repeated names, two cookies, a folded line and latin-1 bytes (one of them a NEL).
ODD_HEAD = (
    b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Dup: 1\r\nx-dup: 2\r\n"
    b"X-Fold: first\r\n  second\r\nX-L: caf\xe9 \x85x\r\nContent-Length: 2\r\n\r\nok"
)


@pytest.mark.parametrize("head", [ODD_HEAD, ODD_HEAD.replace(b"X-Fold: first\r\n  second\r\n", b"")])
def test_an_odd_head_reads_the_same_live_recorded_and_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, head: bytes
) -> None:
    # Without the folded line the replayed block is plain and handed over parsed; with it the
    # library parses the head itself. Cookies are scrubbed in the file, so only counted.
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                read_request(connection)
                connection.sendall(head)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()

    def get() -> list[object]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/")
        response = connection.getresponse()
        items = [(k, "?" if k == "Set-Cookie" else v) for k, v in response.msg.items()]
        seen = [
            items,
            response.getheader("x-dup"),
            len(response.msg.get_all("set-cookie") or []),
            response.read(),
        ]
        connection.close()
        return seen

    path = tmp_path / "odd.yaml"
    try:
        live = get()
        with llmcassette.use_cassette(path, record_mode="all"):
            assert get() == live
        forbid_sockets(monkeypatch)
        with llmcassette.use_cassette(path):
            assert get() == live
    finally:
        server.shutdown(socket.SHUT_RDWR)  # (wakes the accept)
        server.close()
        thread.join(timeout=5)


@pytest.mark.parametrize("pace", ["instant", "recorded"])
def test_a_thread_reads_its_replay_to_the_end_while_another_exits_the_cassette(
    recorded: tuple[Path, dict[str, list[bytes]]],
    cassette: Path,
    upstream: str,
    no_sockets: object,
    pace: str,
) -> None:
    live = recorded[1]
    headed, exited = threading.Event(), threading.Event()
    seen: list[object] = []

    def read() -> None:
        pool = urllib3.PoolManager()
        response = pool.request("POST", upstream + SSE, body=b'{"stream": true}', preload_content=False)
        headed.set()
        exited.wait(timeout=5)
        seen.extend([response.headers.get("content-type"), b"".join(response.stream(None))])
        response.release_conn()

    with llmcassette.use_cassette(cassette, pace=pace):
        reader = threading.Thread(target=read)
        reader.start()
        assert headed.wait(timeout=5)
    exited.set()
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert seen == ["text/event-stream; charset=utf-8", b"".join(live["urllib3"])]


def test_a_tls_connection_of_urllib3_is_matched_by_its_https_url(tmp_path: Path) -> None:
    # urllib3's TLS connection is no `http.client.HTTPSConnection`: its requests were taken for
    # plain HTTP to port 443 (`http://host:443/...`), and missed what httpx recorded.
    path = tmp_path / "tls.yaml"
    interaction = {
        "request": {"method": "GET", "uri": "https://api.example.com/v1/models", "headers": {}},
        "response": {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": "{}"}},
    }
    llmcassette.save_cassette(
        path, llmcassette.CassetteDocument.model_validate({"interactions": [interaction]})
    )
    with llmcassette.use_cassette(path) as cassette:
        connection = urllib3.connection.HTTPSConnection("api.example.com", 443)
        connection.request("GET", "/v1/models")
        response = connection.getresponse()  # urllib3's own on 2.x, read at once; http.client's on 1.26
        assert (response.data if isinstance(response, urllib3.HTTPResponse) else response.read()) == b"{}"
    assert cassette.attempts[0].url == "https://api.example.com/v1/models"


@pytest.mark.parametrize("library", ["requests", "urllib3"])
def test_an_https_replay_warns_of_an_unverified_request_exactly_when_the_live_one_does(
    tmp_path: Path, library: str
) -> None:
    # urllib3 warns (InsecureRequestWarning) of a request on a connection its TLS handshake did
    # not verify. Replayed, there is no handshake: through the connection door every request
    # warned, verified or not, and through the pool's fast path none did.
    authority = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_tls)
    ca = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca))

    def answer(connection: socket.socket) -> None:
        with server_tls.wrap_socket(connection, server_side=True) as tls:
            read_request(tls)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

    def get(url: str, verified: bool) -> bytes:
        if library == "requests":
            return requests.get(url, verify=str(ca) if verified else False, timeout=5).content
        pool = (
            urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(ca))
            if verified
            else urllib3.PoolManager(cert_reqs="CERT_NONE")
        )
        return pool.request("GET", url, timeout=5).data

    def warned(url: str, verified: bool) -> bool:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert get(url, verified) == b"{}"
        return any(issubclass(w.category, urllib3.exceptions.InsecureRequestWarning) for w in caught)

    path = tmp_path / "tls.yaml"
    with serve_connections(answer, join_timeout_s=5) as base:
        url = base.replace("http://", "https://") + "/v1/models"
        live = {verified: warned(url, verified) for verified in (True, False)}
        with llmcassette.use_cassette(path, record_mode="all"):
            get(url, True)
    assert live == {True: False, False: True}
    for faults in ([], ["slow:gap_ms=1"]):  # the pool's fast path, and the connection door
        with llmcassette.use_cassette(path, faults=faults, allow_playback_repeats=True) as cassette:
            replayed = {verified: warned(url, verified) for verified in (True, False)}
        assert replayed == live, faults
        assert not any(attempt.recorded for attempt in cassette.attempts)


@pytest.mark.parametrize("library", ["urllib.request", "http.client"])
def test_an_https_request_of_the_standard_library_is_recorded_and_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, library: str
) -> None:
    # Recording connected for real through HTTPSConnection.connect, which calls
    # HTTPConnection.connect: patched too, it handed over a cassette socket, which TLS then
    # refused to wrap ("NotImplementedError: only stream sockets are supported").
    authority = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    authority.configure_trust(client_tls)

    def answer(connection: socket.socket) -> None:
        with server_tls.wrap_socket(connection, server_side=True) as tls:
            read_request(tls)
            tls.sendall(
                b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{"a": 1}'
            )

    def post(url: str) -> bytes:
        if library == "urllib.request":
            request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, context=client_tls, timeout=5) as response:
                return response.read()  # type: ignore[no-any-return]
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=client_tls, timeout=5)
        try:
            connection.request("POST", parts.path, body=b"{}", headers={"Content-Type": "application/json"})
            return connection.getresponse().read()
        finally:
            connection.close()

    path = tmp_path / "tls.yaml"
    with serve_connections(answer, join_timeout_s=5) as base:
        url = base.replace("http://", "https://") + "/v1/chat/completions"
        with llmcassette.use_cassette(path, record_mode="once") as recording:
            assert post(url) == b'{"a": 1}'
    assert recording.attempts[0].recorded
    assert llmcassette.load_cassette(path).interactions[0].request.uri == url
    forbid_sockets(monkeypatch)
    with llmcassette.use_cassette(path) as replay:
        assert post(url) == b'{"a": 1}'
    assert replay.attempts[0].interaction == 0
