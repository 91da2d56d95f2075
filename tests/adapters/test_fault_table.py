"""
What each fault of the standard matrix raises in every library the in-process doors serve:
requests, urllib3, ``urllib.request``, aiohttp and boto3 (bedrock-runtime ``converse``).

"What it raises live" is not written down from memory: the same client call runs against a real
local server that misbehaves the same way (``llmcassette serve`` with the fault on the socket:
a reset, an early close, silence, the broken bytes; for ``connect_error`` a port where nothing
listens), and the replayed fault must raise exactly the same exceptions, wrapped the same way,
after the same bytes. Each fault fires on every call here, so clients that retry (urllib3's
default ``Retry``, botocore) give up the same way in both runs: the attempt log must count as
many attempts as the live server saw. The table the test pins is the one in the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import botocore.config
import pytest
import requests
import urllib3

import llmcassette
from llmcassette import VirtualClock
from llmcassette._matrix import FAULT_SETS, STANDARD_FAULTS
from llmcassette.faults import parse_fault
from llmcassette.proxy import FAULT_HEADER, CassetteServer
from tests.adapters.bedrock import bedrock_app
from tests.adapters.test_http_client import forbid_sockets
from tests.servers import read_request, serve, serve_connections, unanswered_url
from tests.upstreams import provider_app

#: The client's timeout where a fault makes it wait: short, as the live run waits for real, but
#: long enough for `serve` to send the head and the events before a stall on a busy machine.
TIMEOUT_S = 0.6
#: The client's timeout elsewhere, long enough for a busy machine.
PATIENT_S = 10.0
_WAITING = {"read_timeout", "stall"}

OLLAMA = {"model": "llama3", "stream": True, "messages": [{"role": "user", "content": "weather?"}]}
OPENAI = {"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "weather?"}]}
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]


@dataclass
class Outcome:
    """What a call ended with: the exceptions raised (outermost first, then what each wraps), and
    the body bytes the client received before."""

    raised: tuple[str, ...]
    received: bytes = b""
    #: What each of those exceptions says, with ports and object addresses left out.
    said: tuple[str, ...] = ()


def _chain(exc: BaseException) -> list[BaseException]:
    # requests wraps urllib3's errors in args[0], urllib3 and urllib keep theirs in `.reason`,
    # botocore and aiohttp name them: follow the first that is an exception.
    chain = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 4:
        chain.append(seen)
        inner = getattr(seen, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in seen.args if isinstance(a, BaseException)), None)
        if not isinstance(inner, BaseException):
            inner = getattr(seen, "os_error", None)
        seen = inner if isinstance(inner, BaseException) else None
    return chain


def _named(chain: list[BaseException]) -> tuple[str, ...]:
    return tuple(f"{type(seen).__module__.split('.')[0]}.{type(seen).__name__}" for seen in chain)


def _said(chain: list[BaseException]) -> tuple[str, ...]:
    # The live run's port (and a refused one's) and the addresses of the objects named differ.
    return tuple(re.sub(r"port=\d+|:\d+|0x[0-9a-f]+|, \d+\)", "", str(seen)) for seen in chain)


Call = Callable[[str, dict[str, str], float, list[bytes]], None]


def _requests(base: str, headers: dict[str, str], timeout_s: float, got: list[bytes]) -> None:
    with requests.post(
        base + "/api/chat", json=OLLAMA, headers=headers, stream=True, timeout=timeout_s
    ) as response:
        response.raise_for_status()
        got.extend(response.iter_content(chunk_size=None))


def _urllib3(base: str, headers: dict[str, str], timeout_s: float, got: list[bytes]) -> None:
    with urllib3.PoolManager() as pool:
        response = pool.request(
            "POST",
            base + "/v1/chat/completions",
            body=json.dumps(OPENAI).encode(),  # not `json=`: urllib3 1.26 has none
            headers={"Content-Type": "application/json", **headers},
            preload_content=False,
            timeout=timeout_s,
        )
        got.append(str(response.status).encode() + b" ")
        got.extend(response.stream(None))
        response.release_conn()


def _urllib(base: str, headers: dict[str, str], timeout_s: float, got: list[bytes]) -> None:
    request = urllib.request.Request(
        base + "/api/chat",
        data=json.dumps(OLLAMA).encode(),
        headers={"Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        got.extend(iter(response.read1, b""))


def _aiohttp(base: str, headers: dict[str, str], timeout_s: float, got: list[bytes]) -> None:
    async def main() -> None:
        timeout = aiohttp.ClientTimeout(sock_read=timeout_s, sock_connect=timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(base + "/v1/chat/completions", json=OPENAI, headers=headers) as response:
                response.raise_for_status()
                got.extend([chunk async for chunk in response.content.iter_any()])

    asyncio.run(main())


def _boto3(base: str, headers: dict[str, str], timeout_s: float, got: list[bytes]) -> None:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=base,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="secret",
        config=botocore.config.Config(
            retries={"mode": "standard"}, read_timeout=timeout_s, connect_timeout=timeout_s
        ),
    )

    def add_headers(request: Any, **_: Any) -> None:
        for name, value in headers.items():
            request.headers[name] = value

    client.meta.events.register("before-sign.bedrock-runtime.Converse", add_headers)
    answer = client.converse(modelId="anthropic.claude-3-haiku", messages=MESSAGES)
    # botocore does not check a JSON body: a cut or empty one parses to an answer without output.
    got.append(json.dumps(answer.get("output"), sort_keys=True).encode())


@dataclass(frozen=True)
class Library:
    id: str
    call: Call
    #: The upstream its recording is made from.
    app: Callable[[], Any]


LIBRARIES = [
    Library("requests", _requests, provider_app),
    Library("urllib3", _urllib3, provider_app),
    Library("urllib.request", _urllib, provider_app),
    Library("aiohttp", _aiohttp, provider_app),
    Library("boto3", _boto3, lambda: bedrock_app([])),
]


def _run(call: Call, base: str, headers: dict[str, str], timeout_s: float) -> Outcome:
    got: list[bytes] = []
    try:
        call(base, headers, timeout_s, got)
    except Exception as exc:  # what the library raised is what the table is about
        chain = _chain(exc)
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()  # it is the response, and holds its connection (live) until closed
        return Outcome(_named(chain), b"".join(got), _said(chain))
    return Outcome((), b"".join(got))


def _always(spec: str) -> str:
    """The standard fault, firing on every call."""
    return parse_fault(spec).model_copy(update={"times": None}).spec()


@dataclass
class Recorded:
    library: Library
    path: Path
    base: str
    #: Where `serve` plays the recording, and its log: one line per exchange it served.
    served_url: str
    log: list[str]


@pytest.fixture(scope="module", params=LIBRARIES, ids=[lib.id for lib in LIBRARIES])
def recorded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """The library's call recorded from its upstream, and served by `serve` to misbehave live."""
    library: Library = request.param
    path = tmp_path_factory.mktemp("fault-table") / f"{library.id}.yaml"
    with serve(library.app()) as base:
        with llmcassette.use_cassette(path, record_mode="once"):
            assert _run(library.call, base, {}, PATIENT_S).raised == ()
    log: list[str] = []
    with CassetteServer([path], log=log.append) as url:
        yield Recorded(library, path, base, url, log)


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _served_lines(log: list[str], before: int, count: int) -> list[str]:
    # A line is written once the server has ended its exchange, which can be just after the
    # client has given up on it.
    deadline = time.monotonic() + 5
    while len(log) < before + count and time.monotonic() < deadline:
        time.sleep(0.005)
    return log[before:]


#: The standard set, and a reset rather than a close mid-stream (the `stream` set's).
FAULTS = {**STANDARD_FAULTS, "disconnect_reset": FAULT_SETS["stream"]["disconnect_reset"]}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_replayed_fault_raises_what_the_library_raises_live(
    recorded: Recorded, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = recorded.library
    spec = _always(FAULTS[fault])
    timeout_s = TIMEOUT_S if fault in _WAITING else PATIENT_S

    before = len(recorded.log)
    with VirtualClock() as live_clock:
        if fault == "connect_error":
            live = _run(library.call, _refused_url(), {}, timeout_s)
        else:
            live = _run(library.call, recorded.served_url, {FAULT_HEADER: spec}, timeout_s)

    with monkeypatch.context() as patch:
        forbid_sockets(patch)
        with VirtualClock() as clock, llmcassette.use_cassette(recorded.path, faults=[spec]) as replay:
            replayed = _run(library.call, recorded.base, {}, timeout_s)

    assert replayed.raised == live.raised
    assert replayed.said == live.said
    assert replayed.received == live.received
    assert replayed.raised == EXPECTED[library.id].get(fault, ())
    # The attempt log has every attempt the library made, each answered by the fault; the
    # library retried as often as it did live, after as many waits.
    assert replay.attempts and all(a.faults == [spec] for a in replay.attempts)
    assert len(clock.sleeps) == len(live_clock.sleeps)
    if fault != "connect_error":
        assert len(_served_lines(recorded.log, before, len(replay.attempts))) == len(replay.attempts)


#: The client's connect timeout where nothing answers: the live run waits it on every attempt.
CONNECT_S = 0.1


def test_a_replayed_connect_timeout_takes_what_it_takes_live(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Live, every attempt waits the client's connect timeout before it fails (urllib3 tries 4
    # times, botocore 3). Replay waited nothing, so the attempt log's times and the virtual
    # clock showed the backoff alone, not the time a retrying client really takes.
    library = recorded.library
    with unanswered_url() as url, VirtualClock() as live_clock:
        start = time.monotonic()
        live = _run(library.call, url, {}, CONNECT_S)
        live_s = time.monotonic() - start
    with monkeypatch.context() as patch:
        forbid_sockets(patch)
        with (
            VirtualClock() as clock,
            llmcassette.use_cassette(recorded.path, faults=["connect_timeout"]) as replay,
        ):
            replayed = _run(library.call, recorded.base, {}, CONNECT_S)
    assert replayed.raised == live.raised != ()
    assert len(clock.sleeps) == len(live_clock.sleeps)
    # Each attempt gave up after the connect timeout, on the virtual clock (the backoff between
    # them is the clock's sleeps); as long as live, where the timeouts were waited for real.
    attempts = len(replay.attempts)
    waited_s = clock.elapsed_s - sum(clock.sleeps)
    assert waited_s == pytest.approx(attempts * CONNECT_S)
    assert live_s >= waited_s - 0.05
    gaps = [b.time_s - a.time_s for a, b in zip(replay.attempts, replay.attempts[1:], strict=False)]
    # (urllib3 retries a connection at once, botocore after a backoff)
    assert all(gap >= CONNECT_S - 1e-9 for gap in gaps)
    assert sum(gaps) == pytest.approx((attempts - 1) * CONNECT_S + sum(clock.sleeps))


def _silent(connection: socket.socket) -> None:
    # Takes the request and never answers (in a thread, so the next connection is taken meanwhile).
    def hold() -> None:
        with connection:
            connection.settimeout(5)
            if read_request(connection):
                with contextlib.suppress(OSError):
                    connection.recv(1)  # until the client gives up and closes

    threading.Thread(target=hold, daemon=True).start()


@pytest.mark.parametrize("library", ["requests", "urllib3"])
def test_a_head_that_never_comes_times_out_after_the_read_timeout_not_the_connect_one(
    library: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # urllib3 times the connect by the socket's timeout, then sets the read timeout once the
    # request is sent: `read_timeout` took the connect timeout for the client's read timeout.
    connect_s, read_s = 0.05, 0.3

    def call(base: str) -> str:
        url = base + "/v1/chat/completions"
        try:
            if library == "requests":
                requests.post(url, json=OPENAI, timeout=(connect_s, read_s))
            else:
                timeout = urllib3.Timeout(connect=connect_s, read=read_s)
                with urllib3.PoolManager(retries=False) as pool:
                    pool.request("POST", url, body=json.dumps(OPENAI).encode(), timeout=timeout)
        except Exception as exc:
            return type(exc).__name__
        return ""

    path = tmp_path / "chat.yaml"
    with serve(provider_app()) as base, llmcassette.use_cassette(path, record_mode="once"):
        assert call(base) == ""
    with serve_connections(_silent, join_timeout_s=5) as silent:
        start = time.monotonic()
        live = call(silent)
        live_s = time.monotonic() - start
    forbid_sockets(monkeypatch)
    with VirtualClock() as clock, llmcassette.use_cassette(path, faults=["read_timeout"]):
        assert call(base) == live != ""
    assert clock.elapsed_s == pytest.approx(read_s)
    assert live_s >= read_s


#: What each library raises (outermost first, then what it wraps), live and in replay; a fault
#: that is not listed raises nothing at the library's level (the broken bytes reach the client).
_STATUS = ("rate_limit", "server_error", "overloaded", "unauthorized")
# urllib3 1.26 says why a chunked body broke off in an exception of its own, inside ProtocolError.
_BROKEN_CHUNKS = ("urllib3.ProtocolError",) + (
    ("urllib3.InvalidChunkLength",) if urllib3.__version__.startswith("1.") else ()
)
# aiohttp 3.9 raises ServerTimeoutError for a sock_read timeout; 3.10 gave it a class of its own.
_AIOHTTP_SOCKET_TIMEOUT = (
    "aiohttp.SocketTimeoutError" if hasattr(aiohttp, "SocketTimeoutError") else "aiohttp.ServerTimeoutError"
)
EXPECTED: dict[str, dict[str, tuple[str, ...]]] = {
    "requests": {
        **dict.fromkeys(_STATUS, ("requests.HTTPError",)),  # from raise_for_status()
        "connect_error": ("requests.ConnectionError", "urllib3.MaxRetryError", "urllib3.NewConnectionError"),
        "read_timeout": ("requests.ReadTimeout", "urllib3.ReadTimeoutError"),
        "disconnect": ("requests.ChunkedEncodingError", *_BROKEN_CHUNKS),
        "disconnect_reset": (
            "requests.ChunkedEncodingError",
            "urllib3.ProtocolError",
            "builtins.ConnectionResetError",
        ),
        "stall": ("requests.ConnectionError", "urllib3.ReadTimeoutError"),
    },
    "urllib3": {
        # Statuses are plain responses; its default Retry tries a refused connection 4 times.
        "connect_error": ("urllib3.MaxRetryError", "urllib3.NewConnectionError"),
        "read_timeout": ("urllib3.ReadTimeoutError",),
        "disconnect": _BROKEN_CHUNKS,
        "disconnect_reset": ("urllib3.ProtocolError", "builtins.ConnectionResetError"),
        "stall": ("urllib3.ReadTimeoutError",),
    },
    "urllib.request": {
        **dict.fromkeys(_STATUS, ("urllib.HTTPError",)),
        "connect_error": ("urllib.URLError", "builtins.ConnectionRefusedError"),
        "read_timeout": ("builtins.TimeoutError",),
        "disconnect": ("http.IncompleteRead",),
        "disconnect_reset": ("builtins.ConnectionResetError",),
        "stall": ("builtins.TimeoutError",),
    },
    "aiohttp": {
        **dict.fromkeys(_STATUS, ("aiohttp.ClientResponseError",)),  # from raise_for_status()
        "connect_error": ("aiohttp.ClientConnectorError", "builtins.ConnectionRefusedError"),
        "read_timeout": (_AIOHTTP_SOCKET_TIMEOUT,),
        "disconnect": ("aiohttp.ClientPayloadError",),
        "disconnect_reset": ("aiohttp.ClientPayloadError",),
        "stall": (_AIOHTTP_SOCKET_TIMEOUT,),
    },
    "boto3": {
        # The modelled error of each status, after botocore's retries (standard mode: 3 attempts).
        "rate_limit": ("botocore.ThrottlingException",),
        "server_error": ("botocore.InternalServerException",),
        "overloaded": ("botocore.ServiceUnavailableException",),
        "unauthorized": ("botocore.ClientError",),
        "connect_error": ("botocore.EndpointConnectionError",),
        "read_timeout": ("botocore.ReadTimeoutError",),
        "disconnect_reset": ("botocore.ConnectionClosedError",),
        "stall": ("botocore.ReadTimeoutError",),
    },
}
