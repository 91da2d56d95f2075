"""
The cassette server, in this process: a CassetteServer on loopback answering httpx clients from
cassettes written here, as any program in any language would reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmcassette import CassetteNotFound, ConfigError, save_cassette
from llmcassette._models import CassetteDocument, Interaction
from llmcassette.proxy import FAULT_HEADER, PROXY_URL_ENV, CassetteServer, RouteTable, _serve, parse_route

OPENAI = "https://api.openai.com/v1/chat/completions"
GROQ = "https://api.groq.com/openai/v1/chat/completions"


def chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": content}], **extra}


def sse(*texts: str) -> list[bytes]:
    """OpenAI-style events carrying ``texts``, then the terminator."""
    events = [
        b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": t}}]}).encode() + b"\n\n"
        for t in texts
    ]
    return [*events, b"data: [DONE]\n\n"]


def interaction(
    uri: str,
    request: Any,
    chunks: list[bytes],
    *,
    status: int = 200,
    content_type: str = "text/event-stream",
    offsets_ms: list[float] | None = None,
) -> Interaction:
    """A recorded exchange whose response arrived in ``chunks``."""
    stream: dict[str, Any] = {"chunks": [len(c) for c in chunks]}
    if offsets_ms is not None:
        stream["offsets_ms"] = offsets_ms
    return Interaction.model_validate(
        {
            "request": {
                "method": "POST",
                "uri": uri,
                "headers": {"content-type": ["application/json"]},
                "body": json.dumps(request),
            },
            "response": {
                "status": {"code": status, "message": ""},
                "headers": {"content-type": [content_type]},
                "body": {"string": b"".join(chunks).decode()},
                "stream": stream,
            },
        }
    )


def cassette(path: Path, *interactions: Interaction) -> Path:
    save_cassette(path, CassetteDocument(interactions=list(interactions)))
    return path


class Served:
    """A running server and its log; a test reads the lines of its own requests."""

    def __init__(self, server: CassetteServer, url: str, log: list[str]) -> None:
        self.server = server
        self.url = url
        self._log = log
        self._seen = len(log)

    def lines(self, count: int, timeout_s: float = 5.0) -> list[str]:
        """The next ``count`` log lines, once the server has written them."""
        # A line is written once the server has ended its exchange, which can be just after the
        # client has its response.
        deadline = time.monotonic() + timeout_s
        while len(self._log) < self._seen + count:
            assert time.monotonic() < deadline, f"expected {count} more log lines: {self._log[self._seen :]}"
            time.sleep(0.005)
        lines = self._log[self._seen : self._seen + count]
        self._seen += count
        return lines


@contextlib.contextmanager
def serving(paths: list[Path], **options: Any) -> Iterator[Served]:
    """A server of its own for ``paths``, with ``options``."""
    log: list[str] = []
    server = CassetteServer(paths, log=log.append, **options)
    with server as url:
        yield Served(server, url, log)


STREAM_BODY = b"".join(sse("Hel", "lo", " wor", "ld"))
# Cut across events, as a network does: one chunk ends inside an event, one holds two.
STREAM_CHUNKS = [STREAM_BODY[:10], STREAM_BODY[10:90], STREAM_BODY[90:]]


def json_reply(request: Any, reply: Any, uri: str = OPENAI, status: int = 200) -> Interaction:
    return interaction(
        uri, request, [json.dumps(reply).encode()], status=status, content_type="application/json"
    )


@pytest.fixture(scope="module")
def shared_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[CassetteServer, str, list[str]]]:
    path = cassette(
        tmp_path_factory.mktemp("serve") / "shared.yaml",
        interaction(OPENAI, chat("stream me", stream=True), STREAM_CHUNKS),
        json_reply(chat("groq"), {"from": "groq"}, uri=GROQ),
        json_reply(chat("openai"), {"from": "openai"}),
        json_reply(chat("hi"), {"ok": True}),
    )
    log: list[str] = []
    server = CassetteServer([path], log=log.append)
    with server as url:
        yield server, url, log


@pytest.fixture
def shared(shared_server: tuple[CassetteServer, str, list[str]]) -> Served:
    """One server for the tests that need no options of their own: each costs time to stop."""
    return Served(*shared_server)


@pytest.mark.parametrize("prefix", ["", "/openai"], ids=["root", "route"])
def test_a_stream_is_served_with_its_recorded_chunks_at_the_root_or_under_a_route(
    shared: Served, prefix: str
) -> None:
    url = f"{shared.url}{prefix}/v1/chat/completions"
    with httpx.Client() as client, client.stream("POST", url, json=chat("stream me", stream=True)) as r:
        received = list(r.iter_raw())
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
    (line,) = shared.lines(1)
    assert received == STREAM_CHUNKS
    assert line.startswith(f"POST {prefix}/v1/chat/completions -> 200, from shared.yaml, 3 chunks in ")


def test_a_path_recorded_with_a_route_like_prefix_is_tried_as_sent_first(shared: Served) -> None:
    # Groq's OpenAI-compatible API lives under /openai/, the server's OpenAI route has the same
    # name: a request to /openai/v1/... may be either, and each finds its own recording.
    with httpx.Client() as client:
        answers = [
            client.post(f"{shared.url}/openai/v1/chat/completions", json=chat(who)).json()
            for who in ("groq", "openai")
        ]
        # Under the Groq route, the Groq path.
        routed = client.post(f"{shared.url}/groq/openai/v1/chat/completions", json=chat("groq")).json()
    shared.lines(3)
    assert answers == [{"from": "groq"}, {"from": "openai"}]
    assert routed == {"from": "groq"}


def test_a_route_given_for_a_local_upstream_maps_its_path_prefix(tmp_path: Path) -> None:
    # Recorded through `record --route gw=http://127.0.0.1:4000/api`: the route's own path is part
    # of the recorded URL, and `serve --route` with the same route finds it.
    recorded = "http://127.0.0.1:4000/api/v1/chat/completions"
    reply = [b'{"ok": true}']
    path = cassette(
        tmp_path / "c.yaml", interaction(recorded, chat("hi"), reply, content_type="application/json")
    )
    routes = RouteTable(routes=[parse_route("gw=http://127.0.0.1:4000/api")])
    with serving([path], routes=routes) as served, httpx.Client() as client:
        routed = client.post(f"{served.url}/gw/v1/chat/completions", json=chat("hi"))
        unrouted = client.post(f"{served.url}/v1/chat/completions", json=chat("hi"))
    assert (routed.status_code, routed.json()) == (200, {"ok": True})
    assert unrouted.status_code == 404


def test_recorded_pace_plays_the_recorded_timing_in_real_time(tmp_path: Path) -> None:
    chunks = sse("a", "b")
    path = cassette(
        tmp_path / "c.yaml", interaction(OPENAI, chat("hi", stream=True), chunks, offsets_ms=[0, 300, 600])
    )
    for pace, expected_s in (("recorded", [0.0, 0.3, 0.6]), ("instant", [0.0, 0.0, 0.0])):
        with serving([path], pace=pace) as served, httpx.Client() as client:
            url = f"{served.url}/v1/chat/completions"
            since_sent, since_head = [], []
            sent = time.monotonic()
            with client.stream("POST", url, json=chat("hi", stream=True)) as r:
                # Early is timed from the request's sending, which the server's clock cannot
                # precede; late from the answer's head, as the time the server takes to find the
                # answer (its first request reads the cassette) on a loaded machine is not part
                # of the pace. (Timed from the head alone, a head that reached this thread late
                # made the next chunk look early.)
                head = time.monotonic()
                for chunk in r.iter_raw():
                    now = time.monotonic()
                    since_sent.append(now - sent)
                    since_head.append(now - head)
                    assert chunk == chunks[len(since_head) - 1]
        assert len(since_head) == 3
        for early, late, want in zip(since_sent, since_head, expected_s, strict=True):
            # Never early; late by less than the recorded gap, so that an instant play fails the
            # recorded pace and a paced play fails the instant one.
            assert early >= want - 0.01, (pace, since_sent)
            assert late < want + 0.25, (pace, since_head)


def test_a_recorded_hang_up_closes_or_resets_the_connection_as_the_upstream_did(tmp_path: Path) -> None:
    def hung_up(content: str, error_type: str, message: str) -> Interaction:
        return Interaction.model_validate(
            {
                "request": {"method": "POST", "uri": OPENAI, "body": json.dumps(chat(content))},
                "response": {"stream": {"end": "error", "error": {"type": error_type, "message": message}}},
            }
        )

    path = cassette(
        tmp_path / "hung-up.yaml",
        hung_up("close", "RemoteProtocolError", "Server disconnected without sending a response."),
        hung_up("reset", "ReadError", "[Errno 104] Connection reset by peer"),
    )
    with serving([path]) as served:
        with pytest.raises(
            httpx.RemoteProtocolError, match="^Server disconnected without sending a response"
        ):
            httpx.post(f"{served.url}/v1/chat/completions", json=chat("close"))
        with pytest.raises(httpx.ReadError, match="Connection reset by peer"):
            httpx.post(f"{served.url}/v1/chat/completions", json=chat("reset"))
        closed, reset = served.lines(2)
    assert "-> no response, closed before the response (RemoteProtocolError)" in closed
    assert "-> no response, reset before the response (ReadError)" in reset


def test_recorded_answers_play_in_order_then_the_last_repeats(tmp_path: Path) -> None:
    limited = interaction(
        OPENAI, chat("hi"), [b'{"error": "slow down"}'], status=429, content_type="application/json"
    )
    answer = interaction(OPENAI, chat("hi"), [b'{"ok": true}'], content_type="application/json")
    path = cassette(tmp_path / "c.yaml", limited, answer)
    with serving([path]) as served, httpx.Client() as client:
        url = f"{served.url}/v1/chat/completions"
        repeating = [client.post(url, json=chat("hi")).status_code for _ in range(4)]
    with serving([path], allow_repeats=False) as served, httpx.Client() as client:
        url = f"{served.url}/v1/chat/completions"
        once = [client.post(url, json=chat("hi")) for _ in range(3)]
    assert repeating == [429, 200, 200, 200]
    assert [r.status_code for r in once] == [429, 200, 404]
    assert "already been played" in once[2].json()["error"]["message"]


def test_a_long_running_server_keeps_only_its_latest_attempts_and_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_serve, "KEEP_ATTEMPTS", 3)
    answer = interaction(OPENAI, chat("hi"), [b'{"ok": true}'], content_type="application/json")
    path = cassette(tmp_path / "c.yaml", answer)
    with serving([path]) as served, httpx.Client() as client:
        url = f"{served.url}/v1/chat/completions"
        statuses = [client.post(url, json=chat("hi")).status_code for _ in range(5)]
        statuses += [client.post(url, json=chat(f"other {n}")).status_code for n in range(4)]
        [kept] = served.server.cassettes
    assert statuses == [200] * 5 + [404] * 4
    # The log goes on counting; it holds the last three of the nine requests, and of the misses.
    assert [a.index for a in kept.attempts] == [6, 7, 8]
    assert [m.url for m in kept.misses] == [url.replace(served.url, "https://api.openai.com")] * 3


def test_cassettes_are_tried_in_order_and_a_later_one_takes_over_what_an_earlier_used_up(
    tmp_path: Path,
) -> None:
    first = cassette(
        tmp_path / "first.yaml",
        interaction(OPENAI, chat("shared"), [b'{"from": "first"}'], content_type="application/json"),
    )
    second = cassette(
        tmp_path / "second.yaml",
        interaction(OPENAI, chat("shared"), [b'{"from": "second"}'], content_type="application/json"),
        interaction(
            OPENAI, chat("only here"), [b'{"from": "second, alone"}'], content_type="application/json"
        ),
    )
    with serving([first, second], allow_repeats=False) as served, httpx.Client() as client:
        url = f"{served.url}/v1/chat/completions"
        both = [client.post(url, json=chat("shared")) for _ in range(3)]
        alone = client.post(url, json=chat("only here")).json()
        lines = served.lines(4)
    assert [r.json().get("from") for r in both[:2]] == ["first", "second"]
    assert both[2].status_code == 404
    assert alone == {"from": "second, alone"}
    assert [line.split(", ")[1] for line in lines[:2]] == ["from first.yaml", "from second.yaml"]


def test_a_request_no_cassette_answers_gets_a_404_naming_the_closest_recordings(tmp_path: Path) -> None:
    path = cassette(
        tmp_path / "c.yaml",
        interaction(OPENAI, chat("a haiku about tape"), [b"{}"], content_type="application/json"),
        interaction(OPENAI, chat("a limerick", model="other"), [b"{}"], content_type="application/json"),
    )
    with serving([path]) as served, httpx.Client() as client:
        url = f"{served.url}/openai/v1/chat/completions"
        response = client.post(url, json=chat("a haiku about vinyl"))
        (line,) = served.lines(1)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "llmcassette_no_match"
    assert error["message"].startswith(
        f"llmcassette: no recorded interaction matches POST {OPENAI} in cassette"
    )
    assert [(c["interaction"], c["differences"]) for c in error["candidates"]] == [
        (0, ['body differs: `messages[0].content` is "a haiku about vinyl", recorded "a haiku about tape"']),
        (
            1,
            [
                'body differs: `messages[0].content` is "a haiku about vinyl", recorded "a limerick"; '
                '`model` is "gpt-test", recorded "other"'
            ],
        ),
    ]
    assert line.startswith("POST /openai/v1/chat/completions -> 404, MISS")


def test_a_miss_across_several_cassettes_names_each(tmp_path: Path) -> None:
    paths = [
        cassette(
            tmp_path / f"{name}.yaml",
            interaction(OPENAI, chat(name), [b"{}"], content_type="application/json"),
        )
        for name in ("one", "two")
    ]
    with serving(paths) as served, httpx.Client() as client:
        error = client.post(f"{served.url}/v1/chat/completions", json=chat("three")).json()["error"]
    lines = error["message"].split("\n")
    assert lines[0] == f"llmcassette: none of the 2 cassettes served answers POST {OPENAI}."
    assert lines[1].startswith(f"- {paths[0]}: no recorded interaction matches")
    assert lines[2].startswith(f"- {paths[1]}: no recorded interaction matches")
    assert [c["cassette"] for c in error["candidates"]] == [str(p) for p in paths]


def test_the_fault_header_applies_to_its_request_counted_per_header_value(shared: Served) -> None:
    with httpx.Client() as client:

        def status(fault: str | None) -> int:
            headers = {FAULT_HEADER: fault} if fault is not None else {}
            reply = client.post(f"{shared.url}/v1/chat/completions", json=chat("hi"), headers=headers)
            return reply.status_code

        # Sent on every attempt of a call, `times=1` gives one 429 and then the recording; another
        # value (here another seed) counts afresh.
        once = [status("rate_limit:times=1"), status("rate_limit:times=1")]
        fresh = status("rate_limit:times=1,seed=2")
        plain = status(None)
        several = status("unauthorized:times=1; rate_limit")
        always = [status("server_error"), status("server_error")]
    shared.lines(7)
    assert once == [429, 200]
    assert fresh == 429
    assert plain == 200
    assert several == 401  # the first replacing fault answers
    assert always == [500, 500]
    # The header is the server's: the engine never sees it, so a recording could not keep it.
    attempts = shared.server.cassettes[0].attempts
    assert attempts and all(FAULT_HEADER not in attempt.headers for attempt in attempts)


def test_server_faults_fire_after_the_requests_own(tmp_path: Path) -> None:
    path = cassette(
        tmp_path / "c.yaml",
        interaction(OPENAI, chat("hi"), [b'{"ok": true}'], content_type="application/json"),
    )
    with serving([path], faults=["unavailable:times=2"]) as served, httpx.Client() as client:
        url = f"{served.url}/v1/chat/completions"
        first = client.post(url, json=chat("hi"), headers={FAULT_HEADER: "not_found"})
        rest = [client.post(url, json=chat("hi")).status_code for _ in range(2)]
        lines = served.lines(3)
    # On call 1 both fire and the header's fault, first in order, answers: the server's fault has
    # used one of its two calls there.
    assert (first.status_code, rest) == (404, [503, 200])
    assert lines[0].endswith("[fault not_found, unavailable:times=2]")
    assert "by fault not_found" in lines[0]


def test_a_bad_fault_header_is_a_400_that_says_why(shared: Served) -> None:
    with httpx.Client() as client:
        response = client.post(
            f"{shared.url}/v1/chat/completions", json=chat("hi"), headers={FAULT_HEADER: "nope"}
        )
    (line,) = shared.lines(1)
    assert line == f"POST /v1/chat/completions -> 400, bad {FAULT_HEADER} header"
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith(
        f"llmcassette: the {FAULT_HEADER} header 'nope' is not valid: unknown fault 'nope'"
    )


def test_a_hundred_concurrent_streams_each_get_their_own_recording(tmp_path: Path) -> None:
    count = 100
    recordings = []
    for n in range(count):
        body = b"".join(sse(*(f"s{n}-t{i} " for i in range(20))))
        # Distinct boundaries too: a client given another's stream would see other chunks.
        step = 17 + n
        recordings.append([body[i : i + step] for i in range(0, len(body), step)])
    interactions = [interaction(OPENAI, chat(f"q{n}", stream=True), recordings[n]) for n in range(count)]
    path = cassette(tmp_path / "many.yaml", *interactions)

    async def one(client: httpx.AsyncClient, url: str, n: int) -> list[bytes]:
        async with client.stream("POST", f"{url}/v1/chat/completions", json=chat(f"q{n}", stream=True)) as r:
            assert r.status_code == 200
            return [chunk async for chunk in r.aiter_raw()]

    async def main(url: str) -> list[list[bytes]]:
        limits = httpx.Limits(max_connections=count)
        async with httpx.AsyncClient(limits=limits, timeout=10) as client:
            return await asyncio.gather(*(one(client, url, n) for n in range(count)))

    with serving([path], allow_repeats=False) as served:
        start = time.monotonic()
        received = asyncio.run(main(served.url))
        elapsed_s = time.monotonic() - start
        lines = served.lines(count)
    assert received == recordings
    assert elapsed_s < 10
    assert sum(" -> 200, from many.yaml, " in line for line in lines) == count


def test_the_environment_points_every_sdk_at_the_server(shared: Served) -> None:
    env = shared.server.environment()
    url = shared.url
    assert env[PROXY_URL_ENV] == url
    assert env["OPENAI_BASE_URL"] == f"{url}/openai/v1"
    assert env["ANTHROPIC_BASE_URL"] == f"{url}/anthropic"
    assert env["OLLAMA_HOST"] == f"{url}/ollama"


def test_a_cassette_that_does_not_exist_or_no_cassette_at_all_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(CassetteNotFound, match=r"^llmcassette: cassette '.*missing.yaml' does not exist; "):
        CassetteServer([missing])
    with pytest.raises(ConfigError, match="^llmcassette: serve needs at least one cassette"):
        CassetteServer([])


def test_credentials_kept_in_a_recorded_url_are_never_served_or_shown(tmp_path: Path) -> None:
    secret = "https://alice:s3cret-pa55word@api.openai.com/v1/chat/completions"
    path = cassette(tmp_path / "old.yaml", json_reply(chat("hi"), {"ok": True}, uri=secret))
    with serving([path]) as served, httpx.Client() as client:
        assert client.post(f"{served.url}/v1/chat/completions", json=chat("hi")).json() == {"ok": True}
        miss = client.post(f"{served.url}/v1/chat/completions", json=chat("ho"))
        lines = served.lines(2)
    assert miss.status_code == 404 and miss.json()["error"]["candidates"][0]["url"] == OPENAI
    assert "s3cret" not in miss.text and "alice" not in miss.text
    assert all("s3cret" not in line for line in lines)
    assert all("s3cret" not in attempt.url for attempt in served.server.cassettes[0].attempts)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("slow:ttfb_ms=1e308", "parameter `ttfb_ms`: Input should be less than or equal to 3600000"),
        ("stall:seconds=1e9", "parameter `seconds`: Input should be less than or equal to 3600"),
        ("; ".join(["slow:gap_ms=1"] * 1000), "1000 faults were given where at most 32 may apply"),
    ],
)
def test_a_fault_header_past_its_limits_is_a_400_at_once(shared: Served, header: str, reason: str) -> None:
    start = time.monotonic()
    with httpx.Client(timeout=5) as client:
        response = client.post(
            f"{shared.url}/v1/chat/completions", json=chat("hi"), headers={FAULT_HEADER: header}
        )
    assert time.monotonic() - start < 2
    (line,) = shared.lines(1)
    assert response.status_code == 400 and line.endswith(f"400, bad {FAULT_HEADER} header")
    error = response.json()["error"]
    assert error["type"] == "llmcassette_bad_fault"
    assert error["message"].startswith(f"llmcassette: the {FAULT_HEADER} header ")
    assert reason in error["message"] and len(error["message"]) < 500


def _raw_exchange(url: str, head: bytes, body: bytes = b"") -> bytes:
    """What the server answers to ``head`` and ``body`` sent as they are, until it closes."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_body_over_the_limit_is_a_413_in_json_and_the_default_limit_is_32_mib(tmp_path: Path) -> None:
    path = cassette(tmp_path / "c.yaml", json_reply(chat("hi"), {"ok": True}))
    assert _serve.DEFAULT_MAX_BODY_BYTES == 32 * 1024 * 1024
    with serving([path]) as served:
        # Announced too large: refused before a byte of it is read.
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 33554433\r\n\r\n"
        )
        start = time.monotonic()
        answer = _raw_exchange(served.url, head)
        assert time.monotonic() - start < 2
        status, _, rest = answer.partition(b"\r\n")
        assert status == b"HTTP/1.1 413 Request Entity Too Large"
        assert b"connection: close" in rest.lower()
        error = json.loads(rest.partition(b"\r\n\r\n")[2])["error"]
        assert error["type"] == "llmcassette_body_too_large"
        assert error["message"] == (
            "llmcassette: the request body is larger than the 33554432 bytes this server reads; send a "
            "smaller one, or start `llmcassette serve` with a larger --max-body-bytes."
        )
        (line,) = served.lines(1)
        assert line == "POST /v1/chat/completions -> 413, body over 33554432 bytes"
    with serving([path], max_body_bytes=1000) as served, httpx.Client() as client:
        # Sent in chunks with no length: refused once it passes the limit.
        response = client.post(
            f"{served.url}/v1/chat/completions", content=iter([b'{"a": "', b"x" * 2000, b'"}'])
        )
        assert (
            response.status_code == 413 and response.json()["error"]["type"] == "llmcassette_body_too_large"
        )
        assert client.post(f"{served.url}/v1/chat/completions", json=chat("hi")).json() == {"ok": True}


def test_a_large_body_matches_a_scrubbed_recording_and_its_miss_names_no_secret(tmp_path: Path) -> None:
    key = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
    document = "d" * 2_000_000  # prepared in a child process: over the server's 1 MiB threshold
    recorded = chat(f"REDACTED-openai-key {document}")
    path = cassette(tmp_path / "c.yaml", json_reply(recorded, {"ok": True}))
    with serving([path]) as served, httpx.Client() as client:
        url = f"{served.url}/v1/chat/completions"
        assert client.post(url, json=chat(f"{key} {document}")).json() == {"ok": True}
        miss = client.post(url, json=chat(f"{key} {document}!"))
    assert miss.status_code == 404 and key not in miss.text
    (candidate,) = miss.json()["error"]["candidates"]
    shown = '"REDACTED-openai-key ' + "d" * 36 + "..."
    assert candidate["differences"] == [f"body differs: `messages[0].content` is {shown}, recorded {shown}"]
    # Where no recording holds anything scrubbed, the large body is not scanned, and still matches.
    plain = cassette(tmp_path / "plain.yaml", json_reply(chat(document), {"plain": True}))
    with serving([plain]) as served, httpx.Client() as client:
        assert served.server.cassettes[0].body_scrubber() is None
        url = f"{served.url}/v1/chat/completions"
        assert client.post(url, json=chat(document)).json() == {"plain": True}
        miss = client.post(url, json=chat(f"{key} {document}"))
    assert miss.status_code == 404 and key not in miss.text and "REDACTED-openai-key" in miss.text


def test_a_large_body_is_given_the_faults_its_header_names(tmp_path: Path) -> None:
    document = "d" * 2_000_000  # over the 1 MiB a body is prepared in a child process from
    request = chat(document, stream=True)
    path = cassette(tmp_path / "c.yaml", interaction(OPENAI, request, STREAM_CHUNKS))
    with serving([path]) as served, httpx.Client() as client:
        url = f"{served.url}/v1/chat/completions"
        limited = client.post(url, json=request, headers={FAULT_HEADER: "rate_limit:times=1"})
        assert limited.status_code == 429
        # `stream=true` in the large body is read from its prepared form: the stream fault fires.
        only = client.post(url, json=request, headers={FAULT_HEADER: "empty_stream:stream=true"})
        assert only.status_code == 200 and b"Hel" not in only.content
        assert client.post(url, json=request).content == STREAM_BODY


def test_json_nested_too_deep_is_matched_as_bytes_not_a_500(tmp_path: Path) -> None:
    # Before: a RecursionError inside matching, answered as a 500 with a traceback.
    deep = b"[" * 50_000 + b"]" * 50_000
    recorded = Interaction.model_validate(
        {
            "request": {"method": "POST", "uri": OPENAI, "body": deep.decode()},
            "response": {"status": {"code": 200}, "body": {"string": '{"deep": true}'}},
        }
    )
    with serving([cassette(tmp_path / "deep.yaml", recorded)]) as served, httpx.Client() as client:
        url = f"{served.url}/v1/chat/completions"
        same = client.post(url, content=deep, headers={"content-type": "application/json"})
        other = client.post(url, content=b"[" + deep + b"]", headers={"content-type": "application/json"})
    assert (same.status_code, same.json()) == (200, {"deep": True})
    assert other.status_code == 404
    assert "Traceback" not in other.text
    assert "body differs (100000 bytes recorded, 100002 bytes sent)" in other.text
