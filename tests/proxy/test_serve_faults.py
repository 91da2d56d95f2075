"""
Network faults through the cassette server are real socket behaviour: a reset, an early close, or
silence. Real clients (httpx, httpx2 and the openai SDK) see them as they see a broken network,
with the same exception types the in-process path raises.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest

import llmcassette
from llmcassette import save_cassette
from llmcassette._models import CassetteDocument, Interaction
from llmcassette.proxy import FAULT_HEADER, CassetteServer
from tests.proxy.test_serve import Served, serving
from tests.servers import Client

CHAT: dict[str, Any] = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
EVENTS = [
    b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": f"t{i} "}}]}).encode() + b"\n\n"
    for i in range(5)
] + [b"data: [DONE]\n\n"]
JSON_REPLY = json.dumps({"choices": [{"index": 0, "message": {"content": "whole"}}]}).encode()
# Short, so that the tests that wait for a timeout stay quick.
CLIENT_TIMEOUT_S = 0.2


def _interaction(request: Any, chunks: list[bytes], headers: dict[str, list[str]]) -> Interaction:
    return Interaction.model_validate(
        {
            "request": {
                "method": "POST",
                "uri": "https://api.openai.com/v1/chat/completions",
                "body": json.dumps(request),
            },
            "response": {
                "status": {"code": 200, "message": "OK"},
                "headers": headers,
                "body": {"string": b"".join(chunks).decode()},
                "stream": {"chunks": [len(c) for c in chunks]},
            },
        }
    )


@pytest.fixture(scope="module")
def cassette(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One streamed answer (a chunk per event) and one JSON answer that announces its length."""
    path = tmp_path_factory.mktemp("serve-faults") / "c.yaml"
    streamed = _interaction({**CHAT, "stream": True}, EVENTS, {"content-type": ["text/event-stream"]})
    whole = _interaction(
        CHAT,
        [JSON_REPLY],
        {"content-type": ["application/json"], "content-length": [str(len(JSON_REPLY))]},
    )
    save_cassette(path, CassetteDocument(interactions=[streamed, whole]))
    return path


@pytest.fixture(scope="module")
def module_server(cassette: Path) -> Iterator[tuple[CassetteServer, str, list[str]]]:
    log: list[str] = []
    server = CassetteServer([cassette], log=log.append)
    with server as url:
        yield server, url, log


@pytest.fixture
def served(module_server: tuple[CassetteServer, str, list[str]]) -> Served:
    """The module's server (one for all tests: stopping one costs time)."""
    return Served(*module_server)


def fault(spec: str) -> dict[str, str]:
    return {FAULT_HEADER: spec}


# -- httpx and httpx2, sync and async ------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("reset", "ReadError", "Connection reset by peer"),
        ("fin", "RemoteProtocolError", "incomplete chunked read"),
    ],
)
async def test_a_disconnect_mid_stream_delivers_what_came_before_then_breaks_the_connection(
    client: Client, served: Served, mode: str, error: str, message: str
) -> None:
    received = await client.stream(
        "POST",
        f"{served.url}/v1/chat/completions",
        json={**CHAT, "stream": True},
        headers=fault(f"disconnect:after=2,mode={mode}"),
    )
    (line,) = served.lines(1)
    assert received.status == 200
    assert received.chunks == EVENTS[:2]
    assert type(received.error) is getattr(client.lib, error)
    if mode == "fin" or not client.is_async:
        # The async clients (anyio) report a reset with no message.
        assert message in str(received.error)
    action = "reset" if mode == "reset" else "closed"
    assert f" -> 200, from c.yaml, {action} after 2 chunks ({error}) in " in line


def test_an_early_close_under_a_content_length_is_a_short_body(served: Served) -> None:
    # The recorded Content-Length is kept, so the client knows the body stopped short.
    with httpx.Client() as client, pytest.raises(httpx.RemoteProtocolError) as caught:
        client.post(f"{served.url}/v1/chat/completions", json=CHAT, headers=fault("disconnect"))
    served.lines(1)
    half = len(JSON_REPLY) // 2
    assert f"(received {half} bytes, expected {len(JSON_REPLY)})" in str(caught.value)


def test_a_stall_is_silence_until_the_clients_read_timeout(served: Served) -> None:
    got: list[bytes] = []
    with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
        start = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            with client.stream(
                "POST",
                f"{served.url}/v1/chat/completions",
                json={**CHAT, "stream": True},
                headers=fault("stall:after=2"),
            ) as response:
                got.extend(response.iter_raw())
        waited_s = time.monotonic() - start
    (line,) = served.lines(1)
    assert got == EVENTS[:2]
    assert CLIENT_TIMEOUT_S <= waited_s < CLIENT_TIMEOUT_S + 1.0
    assert "silence until the client left after 2 chunks (ReadTimeout)" in line


def test_a_stall_the_client_never_gives_up_on_ends_after_stall_max(cassette: Path) -> None:
    got: list[bytes] = []
    with serving([cassette], stall_max_s=0.2) as served, httpx.Client(timeout=None) as client:
        start = time.monotonic()
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            with client.stream(
                "POST",
                f"{served.url}/v1/chat/completions",
                json={**CHAT, "stream": True},
                headers=fault("stall:after=1"),
            ) as response:
                got.extend(response.iter_raw())
        waited_s = time.monotonic() - start
        (line,) = served.lines(1)
    assert got == EVENTS[:1]
    assert 0.2 <= waited_s < 2.0
    assert "silence for 0.2 s, then closed after 1 chunk" in line


def test_stopping_the_server_cuts_a_stalled_exchange_at_once(cassette: Path) -> None:
    errors: list[BaseException] = []
    got: list[bytes] = []
    log: list[str] = []
    server = CassetteServer([cassette], log=log.append)
    url = server.start()

    def stalled_client() -> None:
        try:
            with (
                httpx.Client(timeout=None) as client,
                client.stream(
                    "POST",
                    f"{url}/v1/chat/completions",
                    json={**CHAT, "stream": True},
                    headers=fault("stall:after=2"),
                ) as response,
            ):
                got.extend(response.iter_raw())
        except httpx.TransportError as exc:
            errors.append(exc)

    thread = threading.Thread(target=stalled_client)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while len(got) < 2:  # the client is in the silence
            assert time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        start = time.monotonic()
        server.stop()
        stopped_s = time.monotonic() - start
        thread.join(5)
    # Without a timeout the client would wait for ever; the stop ends it, and does not wait.
    assert stopped_s < 1.0
    assert [type(e) for e in errors] == [httpx.RemoteProtocolError]
    assert log[-1].startswith("POST /v1/chat/completions -> 200, cut after 2 chunks: the server stopped in ")


@pytest.mark.parametrize(
    ("spec", "error", "action"),
    [
        ("connect_error", httpx.ReadError, "reset"),
        ("read_timeout", httpx.ReadTimeout, "silence until the client left"),
        ("connect_timeout", httpx.ReadTimeout, "silence until the client left"),
    ],
)
def test_connection_faults_leave_the_client_without_a_response(
    served: Served, spec: str, error: type[Exception], action: str
) -> None:
    with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
        with pytest.raises(httpx.TransportError) as caught:
            client.post(f"{served.url}/v1/chat/completions", json=CHAT, headers=fault(spec))
        (line,) = served.lines(1)
        # The server is unharmed: the next request gets its recording.
        assert client.post(f"{served.url}/v1/chat/completions", json=CHAT).content == JSON_REPLY
        served.lines(1)
    # A connection the server already accepted cannot be refused: a refusal is shown as a reset,
    # a connect timeout as a silence that the client's read timeout ends.
    assert type(caught.value) is error
    assert f" -> no response, {action} before the response " in line


# -- the openai SDK --------------------------------------------------------------------------------


def _openai(served: Served, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test-serve", base_url=f"{served.url}/openai/v1", **options)


@pytest.mark.parametrize(
    ("mode", "cause"), [("reset", httpx2.ReadError), ("fin", httpx2.RemoteProtocolError)]
)
def test_openai_sees_a_disconnect_mid_stream_as_a_connection_error(
    served: Served, mode: str, cause: type
) -> None:
    texts: list[str] = []
    with _openai(served, max_retries=2) as client, pytest.raises(openai.APIConnectionError) as caught:
        stream = client.chat.completions.create(
            **CHAT, stream=True, extra_headers=fault(f"disconnect:after=3,mode={mode}")
        )
        texts.extend(chunk.choices[0].delta.content or "" for chunk in stream)
    # Past the response head the SDK does not retry: one request.
    served.lines(1)
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert isinstance(caught.value.__cause__, cause)
    assert texts == ["t0 ", "t1 ", "t2 "]


def test_openai_retries_a_reset_and_raises_a_connection_error_when_it_persists(served: Served) -> None:
    with _openai(served, max_retries=2) as client:
        with llmcassette.VirtualClock() as clock, pytest.raises(openai.APIConnectionError) as caught:
            client.chat.completions.create(**CHAT, extra_headers=fault("connect_error"))
        # Sent on every attempt, `times=2` resets two of them: the third gets the recording.
        with llmcassette.VirtualClock():
            reply = client.chat.completions.create(**CHAT, extra_headers=fault("connect_error:times=2"))
    lines = served.lines(6)
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert isinstance(caught.value.__cause__, httpx2.ReadError)
    assert len(clock.sleeps) == 2  # three attempts, two backoffs
    assert reply.choices[0].message.content == "whole"
    assert [" reset before the response " in line for line in lines] == [True] * 5 + [False]
    assert " -> 200, from c.yaml, " in lines[5]


def test_openai_times_out_on_a_stall(served: Served) -> None:
    texts: list[str] = []
    with _openai(served, max_retries=0, timeout=CLIENT_TIMEOUT_S) as client:
        with pytest.raises(openai.APITimeoutError):
            stream = client.chat.completions.create(**CHAT, stream=True, extra_headers=fault("stall:after=2"))
            texts.extend(chunk.choices[0].delta.content or "" for chunk in stream)
    served.lines(1)
    assert texts == ["t0 ", "t1 "]
