"""Replaying a recorded response: what the headers say about the stored body."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from hypothesis import given, strategies as st

import llmcassette
from llmcassette import CassetteFormatError
from llmcassette._models import CassetteDocument, RecordedResponse

URL = "http://api.example.invalid/v1/models"
MODELS = {"data": [{"id": "m1"}]}


def _cassette(path: Path, body: dict[str, object]) -> Path:
    interaction = {
        "request": {"method": "GET", "uri": URL, "body": None, "headers": {}},
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-encoding": ["gzip"], "content-type": ["application/json"]},
            "body": body,
        },
    }
    path.write_text(json.dumps({"version": 1, "interactions": [interaction]}))
    return path


@pytest.mark.parametrize(
    "body",
    [
        # vcrpy's recording of requests traffic: the body urllib3 already decoded, the header kept.
        {"string": json.dumps(MODELS)},
        # vcrpy's recording of httpx traffic: the gzip bytes as sent.
        {"string": {"__binary__": True}},
    ],
    ids=["decoded-body-gzip-header", "gzip-body"],
)
def test_a_body_replays_decoded_once_whatever_its_content_encoding_header_says(
    tmp_path: Path, body: dict[str, object]
) -> None:
    if body["string"] == {"__binary__": True}:
        encoded = base64.b64encode(gzip.compress(json.dumps(MODELS).encode())).decode()
        path = tmp_path / "chat.yaml"
        _cassette(path, {"string": "X"})
        text = path.read_text().replace('"X"', f'!!binary "{encoded}"')
        path.write_text(text)
    else:
        path = _cassette(tmp_path / "chat.yaml", body)
    with llmcassette.use_cassette(path, allow_playback_repeats=True):
        assert requests.get(URL, timeout=5).json() == MODELS
        assert httpx.get(URL).json() == MODELS


@pytest.mark.parametrize("plays", [1, 3], ids=["once", "again"])
def test_a_header_that_is_not_ascii_replays_as_the_same_bytes_cold_and_warm(
    tmp_path: Path, plays: int
) -> None:
    # The library's headers take ASCII text; a value that is not is handed over as its latin-1
    # bytes, or UTF-8 where latin-1 cannot hold it, whether the answer is compiled (cold, or
    # played again) or played from the replay cache's data (warm, first play).
    path = tmp_path / "note.yaml"
    interaction = {
        "request": {"method": "GET", "uri": URL, "body": None, "headers": {}},
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"x-note": ["café"], "x-cup": ["☕"], "content-type": ["application/json"]},
            "body": {"string": json.dumps(MODELS)},
        },
    }
    document = CassetteDocument.model_validate({"interactions": [interaction]})
    llmcassette.save_cassette(path, document)  # (in the layout the replay cache keeps)
    for _ in range(2):  # cold, then warm
        with llmcassette.use_cassette(path, allow_playback_repeats=True), httpx.Client() as client:
            for _ in range(plays):
                response = client.get(URL)
                assert response.headers.raw == [
                    (b"x-note", "café".encode("latin-1")),
                    (b"x-cup", "☕".encode()),
                    (b"content-type", b"application/json"),
                ]
                assert response.json() == MODELS


@pytest.mark.parametrize("library", [httpx, pytest.importorskip("httpx2")])
def test_replayed_responses_do_not_share_their_extensions(tmp_path: Path, library: Any) -> None:
    # The extensions of a recorded answer are made once and handed to each response: a client
    # that changes one response's extensions must not change the next one's.
    interaction = {
        "request": {"method": "GET", "uri": URL, "body": None, "headers": {}},
        "response": {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": "{}"}},
    }
    path = tmp_path / "twice.yaml"
    llmcassette.save_cassette(path, CassetteDocument.model_validate({"interactions": [interaction] * 2}))
    # Entered twice: read from the file, then from the replay cache (the first play of a cached
    # answer is made from the cache's data).
    for _ in range(2):
        with llmcassette.use_cassette(path) as cassette, library.Client() as client:
            first = client.get(URL)
            first.extensions["reason_phrase"] = b"changed"
            first.extensions["added"] = True
            second = client.get(URL)
        assert second.extensions["reason_phrase"] == b"OK"
        assert "added" not in second.extensions
    assert cassette._tape._key is not None  # (the second entry found the cache's)


@given(st.lists(st.integers(min_value=0, max_value=40), max_size=30), st.binary(max_size=8))
def test_a_body_is_cut_at_its_recorded_lengths_exactly(lengths: list[int], tail: bytes) -> None:
    from llmcassette._playback import recorded_chunks

    content = bytes(range(256)) * 5
    content = content[: sum(lengths)]
    response = RecordedResponse.model_validate({"status": {"code": 200}, "stream": {"chunks": lengths}})
    chunks = recorded_chunks(response, content, path=Path("c.yaml"), index=0, fix="Fix it.")
    ends = [sum(lengths[: n + 1]) for n in range(len(lengths))]
    assert chunks == [content[end - length : end] for end, length in zip(ends, lengths, strict=True)]
    if tail:  # lengths that do not add up to the body
        with pytest.raises(CassetteFormatError, match="add up to"):
            recorded_chunks(response, content + tail, path=Path("c.yaml"), index=0, fix="Fix it.")


def test_a_negative_chunk_length_is_refused_even_when_the_lengths_add_up() -> None:
    from llmcassette._playback import recorded_chunks

    response = RecordedResponse.model_validate({"status": {"code": 200}, "stream": {"chunks": [6, -2, 4]}})
    with pytest.raises(CassetteFormatError, match=r"interaction 3, field `response.stream.chunks`"):
        recorded_chunks(response, b"abcdefgh", path=Path("c.yaml"), index=3, fix="Fix it.")


def _read_timeout_before(request: Any) -> float | None:
    # `read_timeout` as it was before its shortcut for httpx's own values (a float, or None).
    timeout = request.extensions.get("timeout")
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


class _Extended:
    def __init__(self, extensions: dict[str, Any]) -> None:
        self.extensions = extensions


class _TimeoutDict(dict[str, Any]):
    pass


_TIMEOUT_VALUES = st.one_of(
    st.none(),
    st.floats(allow_nan=False),
    st.integers(),
    st.booleans(),
    st.text(max_size=3),
    st.just(float("inf")),
)


@given(
    value=_TIMEOUT_VALUES,
    shape=st.sampled_from(["dict", "subclass", "missing", "not a dict", "no timeout"]),
)
def test_read_timeout_reads_what_it_read_before_its_shortcut(value: Any, shape: str) -> None:
    from llmcassette._playback import read_timeout

    timeout: Any = {
        "dict": {"connect": 5.0, "read": value},
        "subclass": _TimeoutDict(read=value),
        "missing": {"connect": 5.0},
        "not a dict": [("read", value)],
    }.get(shape)
    request = _Extended({} if shape == "no timeout" else {"timeout": timeout})
    got, expected = read_timeout(request), _read_timeout_before(request)
    assert got == expected and type(got) is type(expected)
    # and on the requests httpx makes itself
    for timeout_s in (None, 0.0, 2.5, value if type(value) in (int, float) else 1):
        made = httpx.Request("GET", URL, extensions={"timeout": httpx.Timeout(timeout_s).as_dict()})
        assert read_timeout(made) == _read_timeout_before(made)


# --- replay as live: a lying Content-Encoding, a hand-emptied body ---------------------------------


async def _lying_gzip(request: Any) -> Any:
    from starlette.responses import Response

    # Says gzip, sends plain JSON: every client fails to decode it.
    return Response(b'{"a": 1}', media_type="application/json", headers={"content-encoding": "gzip"})


async def _sized(request: Any) -> Any:
    from starlette.responses import Response

    body = b"" if request.query_params.get("empty") else b"hello"
    return Response(body, media_type="text/plain")


async def _nothing(request: Any) -> Any:
    from starlette.responses import Response

    return Response(status_code=int(request.query_params.get("status", "204")))


@pytest.fixture(scope="module")
def odd_server() -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Route

    from tests.servers import serve

    routes = [
        Route("/lying-gzip", _lying_gzip),
        Route("/sized", _sized, methods=["GET", "HEAD"]),
        Route("/nothing", _nothing),
    ]
    with serve(Starlette(routes=routes)) as base:
        yield base


def _outcome(call: Any) -> tuple[str, Any]:
    # What the client gave: its answer's parts, or the type of what it raised.
    try:
        return "answered", call()
    except Exception as exc:
        return "raised", f"{type(exc).__module__}.{type(exc).__qualname__}"


def _httpx_async(method: str, url: str) -> Any:
    import asyncio

    async def call() -> Any:
        async with httpx.AsyncClient() as client:
            reply = await client.request(method, url)
            return reply.status_code, reply.headers.get("content-length"), reply.content

    return asyncio.run(call())


def _aiohttp(method: str, url: str) -> Any:
    import asyncio

    import aiohttp

    async def call() -> Any:
        async with aiohttp.ClientSession() as session, session.request(method, url) as reply:
            return reply.status, reply.headers.get("content-length"), await reply.read()

    return asyncio.run(call())


def _urllib3(method: str, url: str) -> Any:
    import urllib3

    # (a pool of its own, not `urllib3.request`, which urllib3 1.26 does not have)
    with urllib3.PoolManager() as pool:
        reply = pool.request(method, url)
    return reply.status, reply.headers.get("content-length"), reply.data


_CLIENTS = {
    "httpx": lambda method, url: (lambda r: (r.status_code, r.headers.get("content-length"), r.content))(
        httpx.request(method, url)
    ),
    "httpx-async": _httpx_async,
    "requests": lambda method, url: (lambda r: (r.status_code, r.headers.get("content-length"), r.content))(
        requests.request(method, url, timeout=5)
    ),
    "urllib3": _urllib3,
    "aiohttp": _aiohttp,
}


@pytest.mark.parametrize("client", list(_CLIENTS))
def test_a_content_encoding_the_body_does_not_have_fails_on_replay_as_it_did_live(
    tmp_path: Path, odd_server: str, client: str
) -> None:
    # The server says gzip and sends plain bytes; llmcassette records them as sent. Replay used to
    # drop the header (as it must for vcrpy's recordings, whose body the library had decoded) and
    # play the plain body, where live the client raised its decoding error.
    call = _CLIENTS[client]
    url = f"{odd_server}/lying-gzip"
    live = _outcome(lambda: call("GET", url))
    assert live[0] == "raised"
    path = tmp_path / "c.yaml"
    with llmcassette.use_cassette(path, record_mode="all"):
        assert _outcome(lambda: call("GET", url)) == live
    with llmcassette.use_cassette(path, record_mode="none"):
        assert _outcome(lambda: call("GET", url)) == live


@pytest.mark.parametrize("client", list(_CLIENTS))
def test_a_hand_emptied_body_replays_with_its_own_length_but_a_head_answer_keeps_its_own(
    tmp_path: Path, odd_server: str, client: str
) -> None:
    # A 200 to a GET whose body was emptied by hand (its `content-length: 5` left): replay plays
    # what a server sending no body sends, a length of 0. A HEAD answer's length tells of the body
    # a GET would get, and is kept.
    call = _CLIENTS[client]
    path = tmp_path / "c.yaml"
    with llmcassette.use_cassette(path, record_mode="all"):
        call("GET", f"{odd_server}/sized")
        call("HEAD", f"{odd_server}/sized")
    data = llmcassette.load_cassette(path).model_dump(mode="json", exclude_unset=True)
    got, head = data["interactions"]
    assert got["response"]["headers"]["content-length"] == ["5"]
    got["response"].pop("parsed_body", None)
    got["response"]["body"] = {"string": ""}
    got["response"].pop("stream", None)
    path.write_text(json.dumps(data))
    live_empty = call("GET", f"{odd_server}/sized?empty=1")
    live_head = call("HEAD", f"{odd_server}/sized")
    assert live_empty[1:] == ("0", b"") and live_head[1:] == ("5", b"")
    with llmcassette.use_cassette(path, record_mode="none"):
        assert call("GET", f"{odd_server}/sized") == live_empty
        assert call("HEAD", f"{odd_server}/sized") == live_head


@pytest.mark.parametrize("client", list(_CLIENTS))
@pytest.mark.parametrize(
    ("method", "route"),
    [("GET", "/nothing"), ("GET", "/nothing?status=304"), ("HEAD", "/sized")],
    ids=["204", "304", "HEAD"],
)
def test_a_body_written_into_an_answer_http_gives_none_is_not_played(
    tmp_path: Path, odd_server: str, client: str, method: str, route: str
) -> None:
    # A body hand-written into a 204, a 304 or a HEAD answer: no client reads one live, and the
    # doors that write the head as bytes played none, but httpx's played it.
    call = _CLIENTS[client]
    url = f"{odd_server}{route}"
    path = tmp_path / "c.yaml"
    with llmcassette.use_cassette(path, record_mode="all"):
        live = call(method, url)
    data = llmcassette.load_cassette(path).model_dump(mode="json", exclude_unset=True)
    data["interactions"][0]["response"]["body"] = {"string": "data: hello\n\n"}
    data["interactions"][0]["response"]["stream"] = {"chunks": [7, 6]}
    path.write_text(json.dumps(data))
    with llmcassette.use_cassette(path, record_mode="none"):
        assert call(method, url) == live


def _surrogate_cassette(path: Path, side: str, form: str) -> Path:
    # Half a UTF-16 pair, as a JSON file can escape it: in a parsed body written without ASCII
    # escapes (`compact`), or in a body's text.
    request: dict[str, Any] = {"method": "POST", "uri": URL, "headers": {}, "body": "{}"}
    response: dict[str, Any] = {
        "status": {"code": 200, "message": "OK"},
        "headers": {},
        "body": {"string": "ok"},
    }
    message = request if side == "request" else response
    message.pop("body")
    if form == "parsed":
        message.update(parsed_body={"a": "\ud800"}, json_format="compact")
    else:
        message["body"] = "\ud800" if side == "request" else {"string": "\ud800"}
    path.write_text(json.dumps({"version": 1, "interactions": [{"request": request, "response": response}]}))
    return path


@pytest.mark.parametrize("form", ["parsed", "text"])
@pytest.mark.parametrize("side", ["request", "response"])
def test_a_body_no_bytes_can_carry_is_the_files_error_in_replay_and_import(
    tmp_path: Path, side: str, form: str
) -> None:
    # Replay (and `llmcassette import`) raised UnicodeEncodeError from deep inside, where inspect
    # and lint named the interaction and field.
    from llmcassette._convert import convert_document

    path = _surrogate_cassette(tmp_path / "c.json", side, form)
    field = f"{side}.body.string" if form == "text" and side == "response" else f"{side}.body"
    with pytest.raises(CassetteFormatError) as raised:
        with llmcassette.use_cassette(path, record_mode="none"):
            httpx.post(URL, content=b"{}")
    assert (raised.value.interaction, raised.value.field) == (0, field)
    assert str(raised.value).startswith(f"llmcassette: cassette {str(path)!r} is not valid: interaction 0")
    if form == "parsed":  # (the text form is refused as the file loads)
        document = CassetteDocument.model_validate(json.loads(path.read_text()))
        with pytest.raises(CassetteFormatError) as raised:
            convert_document(document, path=path)
        assert (raised.value.interaction, raised.value.field) == (0, field)
