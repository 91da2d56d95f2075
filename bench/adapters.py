"""
Replay through the in-process doors of requests, urllib3, urllib.request, boto3 and aiohttp, each
against the same library answering from a local stub of its own kind, measured side by side in one
run.

    .venv/bin/python bench/adapters.py           # prints a report and writes bench/ADAPTERS_RESULTS.md
    .venv/bin/python bench/adapters.py --quick   # fewer repetitions, no file written

On the path a suite runs: a cassette of N distinct interactions is entered once and each answer is
played once. Two answers: a 1 KB JSON body, and a stream of 200 SSE events recorded one event per
chunk, read chunk by chunk (by lines through urllib.request); for boto3, ``converse`` answers and
``converse_stream`` streams of 54 frames. The stubs serve the same bytes:

- requests: a transport adapter mounted on the session (``requests.adapters.BaseAdapter``) whose
  raw body hands over the answer's chunks as they are: no urllib3, no socket, no HTTP parsing;
- requests over urllib3, and urllib3 itself: a pool (``pool_classes_by_scheme``) whose connection
  class (``ConnectionCls``) connects to a socket that answers from memory, urllib3's own
  extension points; requests keeps its ``HTTPAdapter``. This is the whole library stack with a
  server that costs nothing, so the floor of any door below urllib3's pool;
- urllib.request: an ``OpenerDirector`` with a handler of its own returning a response over the
  body in memory (``urllib.response.addinfourl``), the standard library's way to stub a scheme;
- boto3 ``bedrock-runtime`` ``converse``: ``botocore.stub.Stubber``, botocore's own stub, with the
  answers queued before the clock starts (queueing validates each against the model); and, as
  for requests, botocore's own pool class with connections answering from memory, for
  ``converse`` and for ``converse_stream`` (AWS event-stream frames, one recorded chunk each,
  read as botocore's ``EventStream`` reads them; ``Stubber`` has no stream of frames to give);
  and a handler of botocore's ``before-send`` event answering with an ``AWSResponse`` over the
  same bytes, the HTTP-level hook moto uses: signing, parsing and the retry handler run, no pool,
  connection or ``http.client``, for both calls;
- aiohttp: ``aiohttp.test_utils.TestServer`` on loopback, aiohttp's own way of testing a client.

Every replayed body is checked against the recording, and every stream's chunks (lines through
urllib.request) against the recorded boundaries; and the bytes each stub hands over too, but for
boto3's with urllib3 kept, which answers every request alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.message
import functools
import http.client
import io
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import urllib.response
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import botocore
import requests
import urllib3
from aiohttp import web
from aiohttp.test_utils import TestServer
from botocore.awsrequest import AWSHTTPConnectionPool, AWSResponse
from botocore.stub import Stubber
from urllib3.connectionpool import HTTPConnectionPool

import llmcassette
from llmcassette._eventstream import encode_frame, frames_data, store_frames
from llmcassette._models import CassetteDocument
from llmcassette._storage import save_cassette

HOST = "http://127.0.0.1:9"
EVENTS = [f"data: {json.dumps({'i': i, 'delta': 'word ' * 5})}\n\n".encode() for i in range(200)]
SSE_BODY = b"".join(EVENTS)
JSON_BODY = json.dumps({"answer": "x" * 950}).encode()
#: The lines an SSE reader by lines gets of the stream.
SSE_LINES = SSE_BODY.splitlines(keepends=True)


def _interaction(path: str, body: bytes, *, stream: bool) -> dict[str, Any]:
    content_type = "text/event-stream" if stream else "application/json"
    response: dict[str, Any] = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"content-type": [content_type]},
        "body": {"string": body.decode()},
    }
    if stream:
        response["stream"] = {"chunks": [len(e) for e in EVENTS]}
    return {"request": {"method": "GET", "uri": HOST + path, "headers": {}}, "response": response}


def write_cassette(folder: Path, count: int, *, stream: bool) -> Path:
    body = SSE_BODY if stream else JSON_BODY
    interactions = [_interaction(f"/item/{i}", body, stream=stream) for i in range(count)]
    path = folder / f"{'sse' if stream else 'json'}-{count}.yaml"
    save_cassette(path, CassetteDocument.model_validate({"interactions": interactions}))
    return path


# -- requests ----------------------------------------------------------------------------------


class _StubAdapter(requests.adapters.BaseAdapter):
    def __init__(self, body: bytes, stream: bool) -> None:
        super().__init__()
        self._body, self._stream = body, stream

    def send(self, request: Any, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        content_type = "text/event-stream" if self._stream else "application/json"
        response.headers = requests.structures.CaseInsensitiveDict({"content-type": content_type})
        response.raw = _StubRaw([*EVENTS] if self._stream else [self._body])
        response.url, response.request = request.url, request
        return response

    def close(self) -> None:
        pass


class _StubRaw:
    """The least a mounted adapter's raw body can be: the answer's chunks, handed over as they are."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def stream(self, chunk_size: int | None = None, decode_content: bool = True) -> Any:
        yield from self._chunks

    def read(self, amt: int | None = None, decode_content: bool = True) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def _requests_reads(session: requests.Session, count: int, stream: bool) -> list[list[bytes]]:
    got = []
    for i in range(count):
        with session.get(f"{HOST}/item/{i}", stream=stream) as response:
            got.append(list(response.iter_content(chunk_size=None)) if stream else [response.content])
    return got


def requests_stub(count: int, stream: bool) -> list[list[bytes]]:
    with requests.Session() as session:
        session.mount(HOST, _StubAdapter(SSE_BODY if stream else JSON_BODY, stream))
        return _requests_reads(session, count, stream)


def requests_replay(path: Path, count: int, stream: bool) -> list[list[bytes]]:
    with llmcassette.use_cassette(path), requests.Session() as session:
        return _requests_reads(session, count, stream)


# -- urllib3, and requests over it -------------------------------------------------------------


def _wire_answer(stream: bool) -> bytes:
    """The answer as a server writes it: one HTTP chunk per recorded chunk."""
    content_type = b"text/event-stream" if stream else b"application/json"
    head = b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunks = EVENTS if stream else [JSON_BODY]
    return head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


@functools.cache
def _idle_descriptor() -> int:
    read_end, _write_end = os.pipe()  # never readable: a pool takes the connection for alive
    return read_end


class _MemorySocket:
    """A connected socket whose server answers every request with the same bytes, from memory."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer

    def sendall(self, data: bytes) -> None:
        pass

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._answer))

    def settimeout(self, timeout_s: float | None) -> None:
        pass

    def fileno(self) -> int:
        return _idle_descriptor()

    def close(self) -> None:
        pass


def _memory_pools(
    answer: bytes, pool: type[HTTPConnectionPool] = HTTPConnectionPool
) -> dict[str, type[HTTPConnectionPool]]:
    """Pool classes of urllib3 (or of a library's own pool class) whose connections answer from memory."""

    class MemoryConnection(pool.ConnectionCls):  # type: ignore[name-defined,misc]
        def connect(self) -> None:
            self.sock = _MemorySocket(answer)

    class MemoryPool(pool):  # type: ignore[valid-type,misc]
        ConnectionCls = MemoryConnection

    return {"http": MemoryPool, "https": MemoryPool}


class _MemoryAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, stream: bool) -> None:
        self._pools = _memory_pools(_wire_answer(stream))
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools


def requests_urllib3_stub(count: int, stream: bool) -> list[list[bytes]]:
    with requests.Session() as session:
        session.mount(HOST, _MemoryAdapter(stream))
        return _requests_reads(session, count, stream)


def _urllib3_reads(pool: urllib3.PoolManager, count: int, stream: bool) -> list[list[bytes]]:
    got = []
    for i in range(count):
        response = pool.request("GET", f"{HOST}/item/{i}", preload_content=not stream)
        got.append(list(response.stream(None)) if stream else [response.data])
        response.release_conn()
    return got


def urllib3_stub(count: int, stream: bool) -> list[list[bytes]]:
    with urllib3.PoolManager() as pool:
        pool.pool_classes_by_scheme = _memory_pools(_wire_answer(stream))
        return _urllib3_reads(pool, count, stream)


def urllib3_replay(path: Path, count: int, stream: bool) -> list[list[bytes]]:
    with llmcassette.use_cassette(path), urllib3.PoolManager() as pool:
        return _urllib3_reads(pool, count, stream)


# -- urllib.request ----------------------------------------------------------------------------


def _urllib_reads(opener: urllib.request.OpenerDirector, count: int, stream: bool) -> list[list[bytes]]:
    got = []
    for i in range(count):
        with opener.open(f"{HOST}/item/{i}") as response:
            got.append(list(response) if stream else [response.read()])
    return got


class _MemoryHandler(urllib.request.BaseHandler):
    def __init__(self, stream: bool) -> None:
        self._body = SSE_BODY if stream else JSON_BODY
        self._content_type = "text/event-stream" if stream else "application/json"

    def http_open(self, request: urllib.request.Request) -> urllib.response.addinfourl:
        headers = email.message.Message()
        headers["content-type"] = self._content_type
        response = urllib.response.addinfourl(io.BytesIO(self._body), headers, request.full_url, 200)
        response.msg = "OK"  # as urllib.request's own HTTP handler sets it (the reason phrase)
        return response


def urllib_stub(count: int, stream: bool) -> list[list[bytes]]:
    opener = urllib.request.OpenerDirector()
    for handler in (_MemoryHandler(stream), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return _urllib_reads(opener, count, stream)


def urllib_http_client_stub(count: int, stream: bool) -> list[list[bytes]]:
    answer = _wire_answer(stream)

    class MemoryConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = _MemorySocket(answer)

    class MemoryHTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, request: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(MemoryConnection, request)  # type: ignore[arg-type]

    return _urllib_reads(urllib.request.build_opener(MemoryHTTPHandler), count, stream)


def urllib_replay(path: Path, count: int, stream: bool) -> list[list[bytes]]:
    with llmcassette.use_cassette(path):
        return _urllib_reads(urllib.request.build_opener(), count, stream)


# -- boto3 bedrock-runtime converse ------------------------------------------------------------

MODEL = "bench-model"


def _converse_answer(i: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": f"answer {i} " + "x" * 800}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 3, "outputTokens": 200, "totalTokens": 203},
        "metrics": {"latencyMs": 9},
    }


def _converse_messages(i: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": f"question {i}"}]}]


def _write_bedrock_cassette(path: Path, operation: str, answers: list[tuple[str, dict[str, Any]]]) -> Path:
    # One recorded call of `operation` per answer: its content type and the rest of its response.
    interactions = [
        {
            "request": {
                "method": "POST",
                "uri": f"{HOST}/model/{MODEL}/{operation}",
                "parsed_body": {"messages": _converse_messages(i)},
            },
            "response": {
                "status": {"code": 200, "message": "OK"},
                "headers": {"content-type": [content_type]},
                **rest,
            },
        }
        for i, (content_type, rest) in enumerate(answers)
    ]
    save_cassette(path, CassetteDocument.model_validate({"interactions": interactions}))
    return path


def write_converse_cassette(folder: Path, count: int) -> Path:
    answers = [("application/json", {"parsed_body": _converse_answer(i)}) for i in range(count)]
    return _write_bedrock_cassette(folder / f"converse-{count}.yaml", "converse", answers)


def _bedrock() -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=HOST,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )


def _converse_reads(client: Any, count: int) -> list[list[bytes]]:
    got = []
    for i in range(count):
        answer = client.converse(modelId=MODEL, messages=_converse_messages(i))
        got.append([answer["output"]["message"]["content"][0]["text"].encode()])
    return got


def converse_stub(clock: _Clock, client: Any, count: int) -> list[list[bytes]]:
    with Stubber(client) as stubber:
        for i in range(count):
            stubber.add_response("converse", _converse_answer(i))
        with clock.running():
            got = _converse_reads(client, count)
        stubber.assert_no_pending_responses()
    return got


class _Body:
    """What botocore reads an answer from: the raw body of an ``AWSResponse``, in its chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def stream(self, amt: int | None = None, decode_content: bool = True) -> Iterator[bytes]:
        yield from self._chunks


def _before_send(client: Any, event: str, content_type: str, bodies: Iterator[list[bytes]]) -> None:
    # botocore's own hook for answering at the HTTP layer (the one moto registers): a handler of
    # `before-send` that returns a response stops the request there, after signing, before any
    # pool or connection; the answer is then parsed, and retried, as one read off the wire.
    def answer(request: Any, **kwargs: Any) -> AWSResponse:
        return AWSResponse(request.url, 200, {"content-type": content_type}, _Body(next(bodies)))

    client.meta.events.register(f"before-send.bedrock-runtime.{event}", answer)


def converse_before_send_stub(clock: _Clock, count: int) -> list[list[bytes]]:
    client = _bedrock()
    _before_send(
        client,
        "Converse",
        "application/json",
        ([json.dumps(_converse_answer(i)).encode()] for i in range(count)),
    )
    with clock.running():
        return _converse_reads(client, count)


def converse_urllib3_stub(clock: _Clock, count: int) -> list[list[bytes]]:
    client = _bedrock()
    body = json.dumps(_converse_answer(count)).encode()
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
    session = client._endpoint.http_session
    session._manager.pool_classes_by_scheme = _memory_pools(answer % (len(body), body), AWSHTTPConnectionPool)
    with clock.running():
        return _converse_reads(client, count)


#: The deltas of a ConverseStream answer: 50 events of text between its start and its end.
DELTAS = [f"word{i} " for i in range(50)]


def _stream_frames() -> list[bytes]:
    def frame(kind: str, payload: dict[str, Any]) -> bytes:
        headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
        return encode_frame(headers, json.dumps({**payload, "p": "abcd"}, separators=(",", ":")).encode())

    return [
        frame("messageStart", {"role": "assistant"}),
        *(frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": d}}) for d in DELTAS),
        frame("contentBlockStop", {"contentBlockIndex": 0}),
        frame("messageStop", {"stopReason": "end_turn"}),
        frame(
            "metadata",
            {"usage": {"inputTokens": 3, "outputTokens": 50, "totalTokens": 53}, "metrics": {"latencyMs": 9}},
        ),
    ]


def write_converse_stream_cassette(folder: Path, count: int) -> Path:
    frames = _stream_frames()
    stored = store_frames(b"".join(frames))
    assert stored is not None
    rest = {"eventstream": frames_data(stored), "stream": {"chunks": [len(f) for f in frames]}}
    answers = [("application/vnd.amazon.eventstream", rest)] * count
    return _write_bedrock_cassette(folder / f"converse-stream-{count}.yaml", "converse-stream", answers)


def _converse_stream_reads(client: Any, count: int) -> list[list[bytes]]:
    got = []
    for i in range(count):
        answer = client.converse_stream(modelId=MODEL, messages=_converse_messages(i))
        deltas = [
            e["contentBlockDelta"]["delta"]["text"] for e in answer["stream"] if "contentBlockDelta" in e
        ]
        got.append([d.encode() for d in deltas])
    return got


def converse_stream_urllib3_stub(clock: _Clock, count: int) -> list[list[bytes]]:
    client = _bedrock()
    frames = _stream_frames()
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = head + b"".join(b"%x\r\n%b\r\n" % (len(f), f) for f in frames) + b"0\r\n\r\n"
    client._endpoint.http_session._manager.pool_classes_by_scheme = _memory_pools(
        answer, AWSHTTPConnectionPool
    )
    with clock.running():
        return _converse_stream_reads(client, count)


def converse_stream_before_send_stub(clock: _Clock, count: int) -> list[list[bytes]]:
    client = _bedrock()
    frames = _stream_frames()
    _before_send(
        client, "ConverseStream", "application/vnd.amazon.eventstream", (frames for _ in range(count))
    )
    with clock.running():
        return _converse_stream_reads(client, count)


def converse_stream_replay(clock: _Clock, path: Path, client: Any, count: int) -> list[list[bytes]]:
    with clock.running(), llmcassette.use_cassette(path):
        return _converse_stream_reads(client, count)


def converse_replay(clock: _Clock, path: Path, client: Any, count: int) -> list[list[bytes]]:
    with clock.running(), llmcassette.use_cassette(path):
        return _converse_reads(client, count)


# -- aiohttp -----------------------------------------------------------------------------------


async def _aiohttp_reads(base: str, count: int, stream: bool) -> list[list[bytes]]:
    got = []
    async with aiohttp.ClientSession() as session:
        for i in range(count):
            async with session.get(f"{base}/item/{i}") as response:
                if stream:
                    got.append([chunk async for chunk in response.content.iter_any()])
                else:
                    got.append([await response.read()])
    return got


async def _aiohttp_stub(count: int, stream: bool) -> list[list[bytes]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        if not stream:
            return web.Response(body=JSON_BODY, content_type="application/json")
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in EVENTS:
            await response.write(event)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/item/{i}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        return await _aiohttp_reads(str(server.make_url("")).rstrip("/"), count, stream)
    finally:
        await server.close()


def aiohttp_stub(count: int, stream: bool) -> list[list[bytes]]:
    return asyncio.run(_aiohttp_stub(count, stream))


def aiohttp_replay(path: Path, count: int, stream: bool) -> list[list[bytes]]:
    with llmcassette.use_cassette(path):
        return asyncio.run(_aiohttp_reads(HOST, count, stream))


# -- measuring ---------------------------------------------------------------------------------


class _Clock:
    """Wall and CPU time of this process (which a busy machine does not inflate) over what it runs."""

    def __init__(self) -> None:
        self.wall_s = self.cpu_s = 0.0

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        cpu_start, start = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            self.wall_s += time.perf_counter() - start
            self.cpu_s += time.process_time() - cpu_start


Run = Callable[[_Clock], list[list[bytes]]]


def _whole(function: Callable[..., list[list[bytes]]], *args: Any) -> Run:
    def run(clock: _Clock) -> list[list[bytes]]:
        with clock.running():
            return function(*args)

    return run


def _check(got: list[list[bytes]], expected: list[list[bytes]], *, chunks: bool, what: str) -> None:
    assert len(got) == len(expected), f"{what} answered a different number of requests"
    for pieces, recorded in zip(got, expected, strict=True):
        if chunks:
            assert pieces == recorded, f"{what} lost the recorded chunk boundaries"
        else:
            assert b"".join(pieces) == b"".join(recorded), f"{what} handed over other bytes"


def _scenarios(folder: Path) -> Iterator[tuple[str, str, Run, Run, list[list[bytes]]]]:
    """(library, scenario, stub, replay, what the replay must hand over) for every row."""
    for stream, count in ((False, 400), (True, 50)):
        path = write_cassette(folder, count, stream=stream)
        label = f"{count} {'SSE streams of 200 events' if stream else '1 KB JSON answers'}"
        expected = [EVENTS if stream else [JSON_BODY]] * count
        replay_requests = _whole(requests_replay, path, count, stream)
        yield "requests", label, _whole(requests_stub, count, stream), replay_requests, expected
        stub = _whole(requests_urllib3_stub, count, stream)
        yield "requests, urllib3 kept", label, stub, replay_requests, expected
        stub, replay = _whole(urllib3_stub, count, stream), _whole(urllib3_replay, path, count, stream)
        yield "urllib3", label, stub, replay, expected
        stub, replay = _whole(urllib_stub, count, stream), _whole(urllib_replay, path, count, stream)
        lines = [SSE_LINES if stream else [JSON_BODY]] * count
        by_lines = label.replace("200 events", "200 events, by lines")
        yield "urllib.request", by_lines, stub, replay, lines
        stub = _whole(urllib_http_client_stub, count, stream)
        yield "urllib.request, http.client kept", by_lines, stub, replay, lines
        stub, replay = _whole(aiohttp_stub, count, stream), _whole(aiohttp_replay, path, count, stream)
        yield "aiohttp", label, stub, replay, expected
        if not stream:
            count = 200
            path = write_converse_cassette(folder, count)
            client = _bedrock()
            answers = [
                [_converse_answer(i)["output"]["message"]["content"][0]["text"].encode()]
                for i in range(count)
            ]
            stub = functools.partial(converse_stub, client=client, count=count)
            replay = functools.partial(converse_replay, path=path, client=client, count=count)
            yield "boto3 `converse`", f"{count} answers of 1 KB", stub, replay, answers
            stub = functools.partial(converse_before_send_stub, count=count)
            yield "boto3 `converse`, `before-send`", f"{count} answers of 1 KB", stub, replay, answers
            # (its connections answer every request with the same answer, so it is not checked)
            stub = functools.partial(converse_urllib3_stub, count=count)
            yield "boto3 `converse`, urllib3 kept", f"{count} answers of 1 KB", stub, replay, answers
        else:
            count = 50
            path = write_converse_stream_cassette(folder, count)
            client = _bedrock()
            deltas = [[d.encode() for d in DELTAS]] * count
            stub = functools.partial(converse_stream_urllib3_stub, count=count)
            replay = functools.partial(converse_stream_replay, path=path, client=client, count=count)
            label = f"{count} event streams of {len(DELTAS) + 4} frames"
            yield "boto3 `converse_stream`, urllib3 kept", label, stub, replay, deltas
            stub = functools.partial(converse_stream_before_send_stub, count=count)
            yield "boto3 `converse_stream`, `before-send`", label, stub, replay, deltas


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions; no results file")
    parser.add_argument("--only", help="only the libraries whose name contains this")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for library, label, stub, replay, expected in _scenarios(Path(folder)):
            if args.only and args.only not in library:
                continue
            count = len(expected)
            _check(replay(_Clock()), expected, chunks="JSON" not in label, what="a replay")
            if library != "boto3 `converse`, urllib3 kept":
                # The same bytes (aiohttp's test server, over loopback, may merge its writes).
                _check(stub(_Clock()), expected, chunks=False, what="a stub")
            # In turn, so that a machine slowing down for a while slows both alike.
            stubs, replays = [], []
            for _ in range(repeats):
                for run, times in ((stub, stubs), (replay, replays)):
                    clock = _Clock()
                    run(clock)
                    times.append((clock.wall_s, clock.cpu_s))
            stub_s = [statistics.median(t[i] for t in stubs) / count for i in (0, 1)]
            replay_s = [statistics.median(t[i] for t in replays) / count for i in (0, 1)]
            rows.append((library, label, stub_s, replay_s))
    lines = [
        "| library | scenario | own stub, per answer (wall / CPU) | llmcassette replay, per answer (wall / CPU) "
        "| ratio, wall | ratio, CPU |",
        "|---|---|---|---|---|---|",
    ]
    for library, label, stub_time, replay_time in rows:
        lines.append(
            f"| {library} | {label} | {stub_time[0] * 1e6:.0f} µs / {stub_time[1] * 1e6:.0f} µs "
            f"| {replay_time[0] * 1e6:.0f} µs / {replay_time[1] * 1e6:.0f} µs "
            f"| {replay_time[0] / stub_time[0]:.2f}× | {replay_time[1] / stub_time[1]:.2f}× |"
        )
    report = "\n".join(lines)
    print(report)
    if not args.quick and not args.only:
        out = Path(__file__).with_name("ADAPTERS_RESULTS.md")
        header = (
            "# Replay through the in-process doors, beside each library's own stub\n\n"
            f"Produced by `python bench/adapters.py` on Python {sys.version.split()[0]}, requests "
            f"{requests.__version__}, urllib3 {urllib3.__version__}, botocore {botocore.__version__}, "
            f"aiohttp {aiohttp.__version__}, {os.cpu_count()} CPUs (load average "
            f"{os.getloadavg()[0]:.1f} at the end): medians of {repeats} runs of each, stub and replay in "
            "turn. CPU time is this process's (the aiohttp stub's test server runs in it too). The "
            "stubs are described in the module docstring of `bench/adapters.py`.\n\n"
        )
        out.write_text(header + report + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
