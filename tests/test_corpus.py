"""
Compatibility and fidelity on the real corpus: 55 cassettes that third parties recorded against
the real providers (see ../shared/corpus/README.md). Every test is parametrized by file, with the
file's path relative to the corpus as its id, and skips when the corpus is not beside the checkout.

What is proved, per file:

1. it loads with ``load_cassette``, and what loads agrees with MANIFEST.json (interaction count,
   status codes, body kinds, sha256);
2. it round-trips: written and read back, every request and response has the same bytes, and a
   second write gives the same text; the text is readable (SSE as literal blocks, JSON as
   ``parsed_body``, gzip and eventstream as ``!!binary``), both as loaded and as llmcassette
   itself would have recorded it (with chunk boundaries);
3. every interaction replays byte for byte through httpx and httpx2, sync and async, in recorded
   order, one chunk per event, without reaching the network;
4. every stream an official SDK can request replays to that SDK, which parses it whole, and
   what it makes of it matches what the tests assemble from the recorded bytes themselves.

Which SDK consumes which stream (section 4), and why some do not:

- openai ``chat.completions.create(stream=True)``: the OpenAI chat streams, and the
  OpenAI-compatible ones of Groq (including its in-band ``event: error``), Mistral (whose SDK
  recorded a ``#stream`` fragment in the URI) and OpenRouter (comment keep-alives, then an
  in-band ``error`` chunk, both raised by the SDK as ``openai.APIError``);
- openai ``AzureOpenAI``: the Azure deployment stream (``?api-version=`` in the URL);
- openai ``responses.create(stream=True)`` and ``responses.retrieve(stream=True,
  starting_after=N)``: the Responses streams, including the background-mode resume GET;
- anthropic ``messages.create(stream=True)``, and ``beta.messages.create`` for the
  ``?beta=true`` URLs (anthropic 2.x no longer adds that query itself, so the test passes it);
- google-genai ``generate_content_stream``: the Gemini ``alt=sse`` streams (data-only SSE with
  CRLF), on the Developer API and on Vertex AI (a dummy OAuth token, never refreshed);
- ollama ``chat``/``generate`` with ``stream=True``: the native NDJSON streams.

Not given to an SDK (see ``SDK_SKIPPED``): the Bedrock eventstreams, whose client is boto3, not
httpx (they are checked frame by frame instead), and the two llm-gemini streams, which are
``streamGenerateContent`` *without* ``alt=sse``: google-genai always asks for SSE, so it cannot
make that request (they replay byte for byte with raw httpx clients like every other file).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anthropic
import httpx
import httpx2
import ollama
import openai
import pytest
import yaml
from google import genai
from google.genai import types as genai_types
from google.oauth2.credentials import Credentials

import llmcassette
from llmcassette import CassetteDocument, Framing, Interaction, StreamRecord
from llmcassette._bodies import store_body
from llmcassette._framing import detect_framing, split_events
from llmcassette._storage import dumps_cassette, parse_cassette
from tests.corpus import (
    CORPUS,
    EXPECTED_FILE_COUNT,
    MISSING_REASON,
    body_kind,
    corpus_files,
    corpus_path,
    decoded,
    eventstream_frames,
    expected_replay_chunks,
    header,
    is_gzip,
    manifest,
    manifest_responses,
    ndjson_lines,
    params,
    sha256_of,
    sse_json,
    sse_messages,
)

KEY = "sk-test"
# Building a client loads the CA bundle (about 30 ms); the hundreds built here share one context.
_TLS = ssl.create_default_context()


def _load(rel: str) -> CassetteDocument:
    return llmcassette.load_cassette(corpus_path(rel))


def _is_stream(interaction: Interaction) -> bool:
    ctype = (header(interaction.response.headers, "content-type") or "").lower()
    return any(kind in ctype for kind in ("text/event-stream", "ndjson", "vnd.amazon.eventstream"))


def _content_type(interaction: Interaction) -> str:
    return (header(interaction.response.headers, "content-type") or "").lower()


def _files_where(predicate: Callable[[Interaction], bool]) -> list[str]:
    """Corpus files with an interaction for which ``predicate`` holds (read once, at collection)."""
    return [rel for rel, document in _DOCUMENTS.items() if any(predicate(i) for i in document.interactions)]


# Parsed once for parametrization only; tests load their own copy, so none can leak a change.
_DOCUMENTS = {rel: _load(rel) for rel in corpus_files()}
#: Files with a streamed (SSE, NDJSON or eventstream) response.
STREAM_FILES = _files_where(_is_stream)


# == 1. every file loads, and agrees with the manifest ============================================


def test_corpus_matches_its_manifest() -> None:
    if CORPUS is None:
        pytest.skip(MISSING_REASON)
    files = corpus_files()
    assert len(files) == EXPECTED_FILE_COUNT
    assert sorted(manifest()) == files
    changed = [rel for rel in files if sha256_of(rel) != manifest()[rel]["sha256"]]
    assert changed == [], "corpus files differ from the bytes MANIFEST.json describes"


@pytest.mark.parametrize("rel", params())
def test_loads(rel: str) -> None:
    document = _load(rel)
    entry = manifest()[rel]
    expected = manifest_responses(entry["kinds"])
    got = [
        (i.response.status.code, body_kind(i.response.headers, i.response.content))
        for i in document.interactions
    ]
    assert got == expected
    for interaction in document.interactions:
        request = interaction.request
        assert request.method in ("GET", "POST")
        assert urlsplit(request.uri).scheme in ("http", "https")
        assert urlsplit(request.uri).hostname
        # Header values are text: botocore's bytes values (stored as !!binary) included.
        for headers in (request.headers, interaction.response.headers):
            for values in headers.values():
                assert all(isinstance(v, str) and not v.startswith("b'") for v in values)
    if rel.startswith("openllmetry/bedrock/"):
        assert header(document.interactions[0].request.headers, "content-type") == "application/json"


# == 2. round trip and readability ================================================================


def _mapping(node: yaml.Node) -> dict[str, yaml.Node]:
    assert isinstance(node, yaml.MappingNode)
    return {key.value: value for key, value in node.value}


def _body_nodes(text: str) -> list[dict[str, tuple[str, yaml.Node]]]:
    """Per interaction, the YAML node that holds each side's body and how it is stored."""
    document = yaml.compose(text, Loader=yaml.SafeLoader)
    assert document is not None
    root = _mapping(document)
    result = []
    for item in root["interactions"].value:
        sides = {}
        for side, node in _mapping(item).items():
            if side not in ("request", "response"):
                continue
            fields = _mapping(node)
            if "parsed_body" in fields:
                sides[side] = ("parsed", fields["parsed_body"])
            elif "eventstream" in fields:
                sides[side] = ("frames", fields["eventstream"])
            elif side == "response":
                sides[side] = ("string", _mapping(fields["body"])["string"])
            else:
                sides[side] = ("string", fields["body"])
        result.append(sides)
    return result


def _assert_literal_block(text: str, node: yaml.Node, body: str) -> None:
    """The body is a literal block whose lines are the body's lines, one for one."""
    assert isinstance(node, yaml.ScalarNode)
    assert node.style == "|", f"expected a literal block, got style {node.style!r}"
    lines = body.split("\n")
    if body.endswith("\n"):
        lines.pop()
    file_lines = text.split("\n")[node.start_mark.line + 1 :][: len(lines)]
    indent = file_lines[0][: len(file_lines[0]) - len(file_lines[0].lstrip(" "))]
    assert indent
    assert file_lines == [indent + line if line else "" for line in lines]


def _assert_same_exchanges(before: CassetteDocument, after: CassetteDocument) -> None:
    assert len(after.interactions) == len(before.interactions)
    for old, new in zip(before.interactions, after.interactions, strict=True):
        assert (new.request.method, new.request.uri) == (old.request.method, old.request.uri)
        assert new.request.headers == old.request.headers
        assert new.request.content == old.request.content
        assert new.response.status == old.response.status
        assert new.response.headers == old.response.headers
        assert new.response.content == old.response.content
        assert new.response.stream == old.response.stream
        assert new.response.elapsed_ms == old.response.elapsed_ms


def _assert_readable(text: str, document: CassetteDocument, *, as_loaded: bool = False) -> None:
    """
    SSE/NDJSON as literal blocks unless they hold a lone CR, JSON structured, eventstream frames
    with structured payloads, other binary as !!binary.
    """
    for interaction, nodes in zip(document.interactions, _body_nodes(text), strict=True):
        response = interaction.response
        form, node = nodes["response"]
        content = response.content
        ctype = _content_type(interaction)
        if is_gzip(response.headers):
            assert node.tag == "tag:yaml.org,2002:binary"
        elif "eventstream" in ctype and as_loaded and form == "string":
            # An older llmcassette's or vcrpy's file keeps its bytes until it is recorded again.
            assert node.tag == "tag:yaml.org,2002:binary"
        elif "eventstream" in ctype:
            # Every real Bedrock frame is stored readably: headers, and JSON payloads as data.
            assert form == "frames" and isinstance(node, yaml.SequenceNode)
            for frame in node.value:
                fields = _mapping(frame)
                assert ":event-type" in _mapping(fields["headers"]) or ":exception-type" in _mapping(
                    fields["headers"]
                )
                assert isinstance(fields["payload"], yaml.MappingNode)
        elif "text/event-stream" in ctype or "ndjson" in ctype:
            assert form == "string"
            stored = response.stored_body()
            if stored.line_endings == "crlf":
                # All-CRLF text (Gemini) is written with LF, line by line, and flagged.
                _assert_literal_block(text, node, content.decode("utf-8").replace("\r\n", "\n"))
            elif b"\r" in content:
                assert isinstance(node, yaml.ScalarNode)
                assert node.style == '"'  # a literal block cannot keep a lone CR
            else:
                _assert_literal_block(text, node, content.decode("utf-8"))
        elif form == "parsed":
            assert isinstance(node, yaml.MappingNode | yaml.SequenceNode)


@pytest.mark.parametrize("rel", params())
def test_round_trip_as_loaded(rel: str) -> None:
    document = _load(rel)
    path = corpus_path(rel)
    text = dumps_cassette(document)
    again = parse_cassette(text.encode("utf-8"), path=path)
    _assert_same_exchanges(document, again)
    assert dumps_cassette(again) == text  # a second write is a fixed point
    # Each body keeps the form it was stored in: structured stays structured, bytes stay bytes.
    for interaction, nodes in zip(document.interactions, _body_nodes(text), strict=True):
        for side in ("request", "response"):
            model = getattr(interaction, side)
            form, node = nodes[side]
            assert (form == "parsed") == ("parsed_body" in model.model_fields_set)
            if isinstance(model.stored_body().string, bytes):
                assert node.tag == "tag:yaml.org,2002:binary"
    _assert_readable(text, document, as_loaded=True)


def _stored_fields(content: bytes, content_type: str | None) -> dict[str, Any]:
    stored = store_body(content, content_type=content_type)
    if stored.is_parsed:
        fields = {"parsed_body": stored.parsed}
        if stored.json_format:
            fields["json_format"] = stored.json_format
        return fields
    if stored.frames is not None:
        return {"eventstream": stored.frames}
    if stored.line_endings:
        return {"body": {"string": stored.string, "line_endings": stored.line_endings}}
    return {"body": stored.string}


def _halves(chunks: list[bytes]) -> list[bytes]:
    # Boundaries no event splitter would choose, so replay can only give them back from the file.
    pieces = []
    for chunk in chunks:
        middle = len(chunk) // 2
        pieces += [piece for piece in (chunk[:middle], chunk[middle:]) if piece]
    return pieces


def _as_recorded(document: CassetteDocument) -> tuple[CassetteDocument, list[list[bytes] | None]]:
    """
    The document as llmcassette would write it had it recorded these exchanges: bodies in their
    readable stored form, and streamed responses with chunk boundaries and arrival times.
    """
    interactions = []
    pieces_of: list[list[bytes] | None] = []
    for interaction in document.interactions:
        request, response = interaction.request, interaction.response
        content = response.content
        request_fields = {"method": request.method, "uri": request.uri, "headers": request.headers}
        request_fields.update(_stored_fields(request.content, header(request.headers, "content-type")))
        response_fields: dict[str, Any] = {
            "status": response.status.model_dump(),
            "headers": response.headers,
            "elapsed_ms": 41.5,
        }
        body = _stored_fields(content, header(response.headers, "content-type"))
        if "body" in body and not isinstance(body["body"], dict):
            body = {"body": {"string": body["body"]}}
        response_fields.update(body)
        pieces = None
        if _is_stream(interaction) and not is_gzip(response.headers):
            pieces = _halves(expected_replay_chunks(response.headers, content))
            response_fields["stream"] = StreamRecord(
                chunks=[len(p) for p in pieces],
                offsets_ms=[round(50 + 7.5 * i, 1) for i in range(len(pieces))],
            )
        pieces_of.append(pieces)
        interactions.append(
            Interaction.model_validate({"request": request_fields, "response": response_fields})
        )
    return CassetteDocument(interactions=interactions), pieces_of


@pytest.mark.parametrize("rel", params())
def test_round_trip_as_recorded(rel: str, tmp_path: Path) -> None:
    original = _load(rel)
    document, _ = _as_recorded(original)
    target = tmp_path / "cassette.yaml"
    llmcassette.save_cassette(target, document)
    text = target.read_text(encoding="utf-8")
    reloaded = llmcassette.load_cassette(target)
    _assert_same_exchanges(document, reloaded)
    for before, after in zip(original.interactions, reloaded.interactions, strict=True):
        assert after.request.content == before.request.content
        assert after.response.content == before.response.content
    llmcassette.save_cassette(target, reloaded)
    assert target.read_text(encoding="utf-8") == text  # a fixed point
    # Every JSON body that is not compressed is structured data in the file.
    for interaction, nodes in zip(reloaded.interactions, _body_nodes(text), strict=True):
        for side in ("request", "response"):
            model = getattr(interaction, side)
            content = model.content
            if side == "response" and is_gzip(model.headers):
                continue
            try:
                json.loads(content)
            except ValueError:
                continue
            form, node = nodes[side]
            assert form == "parsed", f"{side} JSON body is not stored as parsed_body"
            assert isinstance(node, yaml.MappingNode | yaml.SequenceNode)
    _assert_readable(text, reloaded)


@pytest.mark.parametrize("rel", params(STREAM_FILES))
def test_replay_keeps_stored_chunk_boundaries(rel: str, tmp_path: Path) -> None:
    # Real bodies with recorded boundaries (here: every event cut in two) replay with exactly
    # those boundaries, not re-split by event.
    document, pieces_of = _as_recorded(_load(rel))
    target = tmp_path / "cassette.yaml"
    llmcassette.save_cassette(target, document)
    with llmcassette.use_cassette(target) as cassette, httpx2.Client(verify=_TLS) as client:
        for interaction, pieces in zip(document.interactions, pieces_of, strict=True):
            request = interaction.request
            with client.stream(request.method, request.uri, content=request.content) as response:
                received = list(response.iter_raw())
            if pieces is None:
                assert b"".join(received) == interaction.response.content
            else:
                assert received == pieces
    assert cassette.play_counts == [1] * len(document.interactions)


# == 3. byte-exact replay through httpx and httpx2 ================================================

CLIENT_KINDS = [("httpx", False), ("httpx2", False), ("httpx", True), ("httpx2", True)]


@dataclass
class Received:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    raw_chunks: list[bytes]
    content: bytes = b""
    text: str | None = None


async def _exchange(client: Any, is_async: bool, interaction: Interaction, *, raw: bool) -> Received:
    """Send the recorded request; read the body raw (``iter_raw``) or decoded (``.content``)."""
    request = interaction.request
    args = (request.method, request.uri)
    kwargs = {"content": request.content}

    def received(response: Any, chunks: list[bytes]) -> Received:
        return Received(
            response.status_code, response.reason_phrase, list(response.headers.multi_items()), chunks
        )

    if is_async:
        if raw:
            async with client.stream(*args, **kwargs) as response:
                return received(response, [chunk async for chunk in response.aiter_raw()])
        response = await client.request(*args, **kwargs)
    else:
        if raw:
            with client.stream(*args, **kwargs) as response:
                return received(response, list(response.iter_raw()))
        response = client.request(*args, **kwargs)
    result = received(response, [])
    result.content = response.content
    text_body = "eventstream" not in _content_type(interaction)
    result.text = response.text if text_body else None
    return result


@pytest.mark.parametrize("kind", CLIENT_KINDS, ids=lambda k: f"{k[0]}-{'async' if k[1] else 'sync'}")
@pytest.mark.parametrize("rel", params())
def test_replay_is_byte_exact(rel: str, kind: tuple[str, bool]) -> None:
    library, is_async = kind
    path = corpus_path(rel)
    interactions = _load(rel).interactions

    lib = importlib.import_module(library)

    async def replay_all(raw: bool) -> None:
        async with contextlib.AsyncExitStack() as stack:
            # One client per pass, as an application would hold one; it must not matter to replay.
            if is_async:
                client = await stack.enter_async_context(lib.AsyncClient(verify=_TLS))
            else:
                client = stack.enter_context(lib.Client(verify=_TLS))
            cassette = stack.enter_context(llmcassette.use_cassette(path))
            for index, interaction in enumerate(interactions):
                got = await _exchange(client, is_async, interaction, raw=raw)
                recorded = interaction.response
                body = recorded.content
                assert got.status == recorded.status.code
                if recorded.status.message:
                    assert got.reason == recorded.status.message
                # Requests that repeat (retries, 3x 429) get the recorded responses in order.
                attempt = cassette.attempts[-1]
                assert (attempt.interaction, attempt.recorded, attempt.status) == (index, False, got.status)
                if raw:
                    # Raw bytes exactly as recorded (gzip stays gzip), one chunk per event.
                    assert b"".join(got.raw_chunks) == body
                    assert got.raw_chunks == expected_replay_chunks(recorded.headers, body)
                    assert attempt.chunks == got.raw_chunks
                    lengths = [v for k, v in got.headers if k.lower() == "content-length"]
                    assert lengths in ([], [str(len(body))])
                else:
                    assert got.content == decoded(recorded.headers, body)
                    if got.text is not None:
                        assert got.text == decoded(recorded.headers, body).decode("utf-8")
            assert cassette.play_counts == [1] * len(interactions)
            assert not cassette.misses

    asyncio.run(replay_all(raw=True))
    asyncio.run(replay_all(raw=False))


def _replay_raw(path: Path, interactions: list[Interaction]) -> list[list[bytes]]:
    """Replay every interaction of ``path`` in order with an httpx2 client; the raw chunks of each."""
    received = []
    with llmcassette.use_cassette(path) as cassette, httpx2.Client(verify=_TLS) as client:
        for interaction in interactions:
            request = interaction.request
            with client.stream(request.method, request.uri, content=request.content) as response:
                received.append(list(response.iter_raw()))
    assert cassette.play_counts == [1] * len(interactions)
    return received


@pytest.mark.parametrize("rel", params())
def test_saved_copy_replays_byte_exact(rel: str, tmp_path: Path) -> None:
    # What llmcassette writes back for an imported cassette (record_mode="new_episodes" on a vcrpy
    # file, say) replays the same bytes as the original: llmcassette's own layout puts a text body
    # last in its interaction, as a literal block that keeps its trailing blank lines.
    document = _load(rel)
    target = tmp_path / "copy.yaml"
    llmcassette.save_cassette(target, document)
    received = _replay_raw(target, document.interactions)
    for interaction, chunks in zip(document.interactions, received, strict=True):
        assert b"".join(chunks) == interaction.response.content


_RATE_LIMITED = "pydantic-ai/openrouter/test_openrouter_errors_raised.yaml"


@pytest.mark.parametrize("rel", params([_RATE_LIMITED]))
def test_identical_requests_replay_in_order_each_once(rel: str) -> None:
    # Three identical requests answered by three 429s: only the attempt log can tell them apart.
    interactions = _load(rel).interactions
    assert len({i.request.content for i in interactions}) == 1
    request = interactions[0].request
    with pytest.raises(llmcassette.NoMatchingInteraction, match="already been played"):
        with llmcassette.use_cassette(corpus_path(rel)) as cassette, httpx.Client(verify=_TLS) as client:
            statuses = [client.post(request.uri, content=request.content).status_code for _ in range(3)]
            assert statuses == [429, 429, 429]
            assert [a.interaction for a in cassette.attempts] == [0, 1, 2]
            client.post(request.uri, content=request.content)  # a fourth has nothing left to play


@pytest.mark.parametrize("rel", params([_RATE_LIMITED]))
def test_sdk_retries_through_recorded_rate_limits(rel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The openai SDK's own retry loop meets the three real 429s in order, then gives up.
    sleeps: list[float] = []
    # The SDK sleeps with time.sleep between attempts; recording the waits keeps the test instant.
    monkeypatch.setattr(time, "sleep", sleeps.append)
    with llmcassette.use_cassette(corpus_path(rel), match_on=("method", "url")) as cassette:
        client = openai.OpenAI(api_key=KEY, base_url="https://openrouter.ai/api/v1", max_retries=2)
        with client, pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
    recorded = json.loads(_load(rel).interactions[-1].response.content)
    assert caught.value.status_code == 429
    assert caught.value.body == recorded["error"]
    assert [(a.interaction, a.status) for a in cassette.attempts] == [(0, 429), (1, 429), (2, 429)]
    assert len(sleeps) == 2  # backed off between attempts, without waiting for real


def test_network_guard_is_active() -> None:
    # The replays above never reach the network: this guard would have failed them.
    with pytest.raises(httpx.ConnectError, match="loopback"):
        httpx.get("https://api.openai.com/v1/models")


@pytest.mark.parametrize("rel", params(STREAM_FILES))
def test_replay_without_headers_still_splits_events(rel: str, tmp_path: Path) -> None:
    # Some cassettes in the wild keep no headers at all: the framing is sniffed from the body.
    document = _load(rel)
    bare = document.model_copy(deep=True)
    for interaction in bare.interactions:
        interaction.response.headers = {}
    target = tmp_path / "bare.yaml"
    llmcassette.save_cassette(target, bare)
    received = _replay_raw(target, document.interactions)
    for interaction, chunks in zip(document.interactions, received, strict=True):
        assert chunks == expected_replay_chunks(interaction.response.headers, interaction.response.content)


@pytest.mark.parametrize("rel", params(_files_where(lambda i: "eventstream" in _content_type(i))))
def test_bedrock_eventstream_frames(rel: str) -> None:
    # boto3 is not an httpx client, so Bedrock streams get no SDK test: their frames are checked
    # instead (CRCs included), against the library's splitting.
    (interaction,) = _load(rel).interactions
    body = interaction.response.content
    frames = eventstream_frames(body)
    events = split_events(body, Framing.EVENTSTREAM)
    assert events == [frame.raw for frame in frames]
    assert [len(e) for e in events] == [int.from_bytes(e[:4], "big") for e in events]
    assert detect_framing(_content_type(interaction), body) is Framing.EVENTSTREAM
    assert detect_framing(None, body) is Framing.EVENTSTREAM  # sniffed when headers are gone
    types = [frame.headers[":event-type"] for frame in frames]
    assert all(frame.headers[":message-type"] == "event" for frame in frames)
    if interaction.request.uri.endswith("/converse-stream"):
        assert types[0] == "messageStart"
        assert types[-1] == "metadata"
        assert "contentBlockDelta" in types
    else:  # invoke-with-response-stream: each chunk carries one base64 Anthropic stream event
        assert set(types) == {"chunk"}
        inner = [json.loads(base64.b64decode(json.loads(f.payload)["bytes"]))["type"] for f in frames]
        assert inner[0] == "message_start"
        assert inner[-1] == "message_stop"


# == 4. SDK parse ================================================================================


def _split(uri: str) -> tuple[str, str, dict[str, list[str]]]:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}", parts.path, parse_qs(parts.query)


# -- OpenAI chat completions (OpenAI, Azure, Groq, Mistral, OpenRouter) --------------------------


def _chat_summary() -> dict[str, Any]:
    return {"chunks": 0, "text": {}, "tool_calls": {}, "finish": [], "total_tokens": None, "error": None}


def _chat_add(summary: dict[str, Any], chunk: dict[str, Any]) -> None:
    summary["chunks"] += 1
    for choice in chunk.get("choices") or []:
        index = choice["index"]
        delta = choice.get("delta") or {}
        if isinstance(delta.get("content"), str):
            summary["text"][index] = summary["text"].get(index, "") + delta["content"]
        for call in delta.get("tool_calls") or []:
            entry = summary["tool_calls"].setdefault(f"{index}.{call['index']}", ["", ""])
            function = call.get("function") or {}
            entry[0] += function.get("name") or ""
            entry[1] += function.get("arguments") or ""
        if choice.get("finish_reason"):
            summary["finish"].append((index, choice["finish_reason"]))
    if chunk.get("usage"):
        summary["total_tokens"] = chunk["usage"]["total_tokens"]


def _chat_expected(interaction: Interaction) -> dict[str, Any]:
    summary = _chat_summary()
    for _, data in sse_json(interaction.response.content):
        if data.get("error"):  # the SDK raises at an in-band error, before yielding that chunk
            summary["error"] = data["error"]["message"]
            break
        _chat_add(summary, data)
    return summary


def _chat_sdk(interaction: Interaction) -> dict[str, Any]:
    origin, path, query = _split(interaction.request.uri)
    client: openai.OpenAI
    if origin.endswith(".openai.azure.com"):
        model = path.split("/deployments/")[1].split("/")[0]
        client = openai.AzureOpenAI(
            api_key=KEY, azure_endpoint=origin, api_version=query["api-version"][0], max_retries=0
        )
    else:
        model = "test-model"
        client = openai.OpenAI(
            api_key=KEY, base_url=origin + path.removesuffix("/chat/completions"), max_retries=0
        )
    summary = _chat_summary()
    with client:
        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        try:
            for chunk in stream:
                # Read through the SDK's types, then put in the reference shape.
                choices = []
                for choice in chunk.choices:
                    calls = [
                        {
                            "index": call.index,
                            "function": {
                                "name": call.function.name if call.function else None,
                                "arguments": call.function.arguments if call.function else None,
                            },
                        }
                        for call in choice.delta.tool_calls or []
                    ]
                    choices.append(
                        {
                            "index": choice.index,
                            "delta": {"content": choice.delta.content, "tool_calls": calls},
                            "finish_reason": choice.finish_reason,
                        }
                    )
                usage = {"total_tokens": chunk.usage.total_tokens} if chunk.usage else None
                _chat_add(summary, {"choices": choices, "usage": usage})
        except openai.APIError as exc:
            if type(exc) is not openai.APIError:  # a connection error (a miss) is a failure
                raise
            summary["error"] = exc.message
    return summary


# -- OpenAI Responses -----------------------------------------------------------------------------


def _responses_summary() -> dict[str, Any]:
    return {"types": [], "text": "", "arguments": "", "sequence": [], "status": None, "total_tokens": None}


def _responses_add(summary: dict[str, Any], kind: str, data: dict[str, Any]) -> None:
    summary["types"].append(kind)
    summary["sequence"].append(data.get("sequence_number"))
    if kind == "response.output_text.delta":
        summary["text"] += data["delta"]
    elif kind == "response.function_call_arguments.delta":
        summary["arguments"] += data["delta"]
    elif kind in ("response.completed", "response.incomplete", "response.failed"):
        summary["status"] = data["response"]["status"]
        summary["total_tokens"] = (data["response"].get("usage") or {}).get("total_tokens")


def _responses_expected(interaction: Interaction) -> dict[str, Any]:
    summary = _responses_summary()
    for event, data in sse_json(interaction.response.content):
        assert event is not None
        assert event == data["type"]  # the recorded `event:` line names the JSON's type
        _responses_add(summary, event, data)
    return summary


def _responses_sdk(interaction: Interaction) -> dict[str, Any]:
    origin, path, query = _split(interaction.request.uri)
    summary = _responses_summary()
    with openai.OpenAI(api_key=KEY, base_url=origin + "/v1", max_retries=0) as client:
        if interaction.request.method == "GET":  # background mode: resume the stream by id
            response_id = path.rsplit("/", 1)[1]
            stream = client.responses.retrieve(
                response_id, stream=True, starting_after=int(query["starting_after"][0])
            )
        else:
            stream = client.responses.create(model="test-model", input="hi", stream=True)
        for event in stream:
            data: dict[str, Any] = {"sequence_number": event.sequence_number}
            if event.type in ("response.output_text.delta", "response.function_call_arguments.delta"):
                data["delta"] = event.delta
            if event.type in ("response.completed", "response.incomplete", "response.failed"):
                response = event.response
                usage = {"total_tokens": response.usage.total_tokens} if response.usage else None
                data["response"] = {"status": response.status, "usage": usage}
            _responses_add(summary, event.type, data)
    return summary


# -- Anthropic ------------------------------------------------------------------------------------


def _anthropic_summary() -> dict[str, Any]:
    return {
        "types": [],
        "text": "",
        "thinking": "",
        "json": "",
        "input_tokens": None,
        "stop_reason": None,
        "output_tokens": None,
    }


def _anthropic_add(summary: dict[str, Any], data: dict[str, Any]) -> None:
    summary["types"].append(data["type"])
    if data["type"] == "message_start":
        summary["input_tokens"] = data["message"]["usage"]["input_tokens"]
    elif data["type"] == "content_block_delta":
        delta = data["delta"]
        field = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}
        if delta["type"] in field:
            key = "json" if delta["type"] == "input_json_delta" else field[delta["type"]]
            summary[key] += delta[field[delta["type"]]]
    elif data["type"] == "message_delta":
        summary["stop_reason"] = data["delta"]["stop_reason"]
        summary["output_tokens"] = data["usage"]["output_tokens"]


def _anthropic_expected(interaction: Interaction) -> dict[str, Any]:
    summary = _anthropic_summary()
    for message in sse_messages(interaction.response.content):
        if message.event == "ping" or message.data is None:
            continue  # the SDK drops keep-alive pings
        data = json.loads(message.data)
        assert message.event == data["type"]
        _anthropic_add(summary, data)
    return summary


def _anthropic_sdk(interaction: Interaction) -> dict[str, Any]:
    origin, _, query = _split(interaction.request.uri)
    summary = _anthropic_summary()
    with anthropic.Anthropic(api_key=KEY, base_url=origin, max_retries=0) as client:
        kwargs: dict[str, Any] = {
            "model": "test-model",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
        }
        if query.get("beta") == ["true"]:
            stream: Any = client.beta.messages.create(**kwargs, extra_query={"beta": "true"})
        else:
            stream = client.messages.create(**kwargs)
        for event in stream:
            data: dict[str, Any] = {"type": event.type}
            if event.type == "message_start":
                data["message"] = {"usage": {"input_tokens": event.message.usage.input_tokens}}
            elif event.type == "content_block_delta":
                delta = event.delta
                fields = ("text", "thinking", "partial_json")
                data["delta"] = {"type": delta.type, **{k: getattr(delta, k, None) for k in fields}}
            elif event.type == "message_delta":
                data["delta"] = {"stop_reason": event.delta.stop_reason}
                data["usage"] = {"output_tokens": event.usage.output_tokens}
            _anthropic_add(summary, data)
    return summary


# -- Gemini (google-genai, alt=sse) ---------------------------------------------------------------


def _gemini_summary() -> dict[str, Any]:
    return {"responses": 0, "text": "", "thoughts": "", "calls": [], "finish": None, "total_tokens": None}


def _gemini_add(summary: dict[str, Any], data: dict[str, Any]) -> None:
    summary["responses"] += 1
    for candidate in data.get("candidates") or []:
        for part in (candidate.get("content") or {}).get("parts") or []:
            if part.get("text") is not None:
                summary["thoughts" if part.get("thought") else "text"] += part["text"]
            if part.get("functionCall"):
                summary["calls"].append((part["functionCall"]["name"], part["functionCall"].get("args")))
        if candidate.get("finishReason"):
            summary["finish"] = candidate["finishReason"]
    if (data.get("usageMetadata") or {}).get("totalTokenCount") is not None:
        summary["total_tokens"] = data["usageMetadata"]["totalTokenCount"]


def _gemini_expected(interaction: Interaction) -> dict[str, Any]:
    summary = _gemini_summary()
    for event, data in sse_json(interaction.response.content):
        assert event is None  # google-genai cannot read `event:` lines; the corpus has none
        _gemini_add(summary, data)
    return summary


def _gemini_sdk(interaction: Interaction) -> dict[str, Any]:
    origin, path, _ = _split(interaction.request.uri)
    model = path.split("/models/")[1].split(":")[0]
    if urlsplit(origin).hostname == "aiplatform.googleapis.com":
        segments = path.split("/")
        project = segments[segments.index("projects") + 1]
        location = segments[segments.index("locations") + 1]
        # A token that is valid and never expires: google-auth has nothing to refresh.
        client = genai.Client(
            vertexai=True, project=project, location=location, credentials=Credentials(token="test-token")
        )
    else:
        options = genai_types.HttpOptions(base_url=origin + "/", api_version=path.split("/")[1])
        client = genai.Client(api_key=KEY, http_options=options)
    summary = _gemini_summary()
    with client:
        for response in client.models.generate_content_stream(model=model, contents="hi"):
            candidates = []
            for candidate in response.candidates or []:
                parts = []
                for part in (candidate.content.parts if candidate.content else None) or []:
                    call = part.function_call
                    parts.append(
                        {
                            "text": part.text,
                            "thought": part.thought,
                            "functionCall": {"name": call.name, "args": call.args} if call else None,
                        }
                    )
                finish = candidate.finish_reason.value if candidate.finish_reason else None
                candidates.append({"content": {"parts": parts}, "finishReason": finish})
            usage = response.usage_metadata
            total = usage.total_token_count if usage else None
            _gemini_add(summary, {"candidates": candidates, "usageMetadata": {"totalTokenCount": total}})
    return summary


# -- Ollama (native NDJSON) -----------------------------------------------------------------------


def _ollama_summary() -> dict[str, Any]:
    return {"parts": 0, "text": "", "done": [], "done_reason": None, "eval_count": None}


def _ollama_add(summary: dict[str, Any], text: str, done: bool, reason: Any, eval_count: Any) -> None:
    summary["parts"] += 1
    summary["text"] += text
    summary["done"].append(done)
    if done:
        summary["done_reason"] = reason
        summary["eval_count"] = eval_count


def _ollama_expected(interaction: Interaction) -> dict[str, Any]:
    summary = _ollama_summary()
    for line in ndjson_lines(interaction.response.content):
        data = json.loads(line)
        text = data["message"]["content"] if "message" in data else data["response"]
        _ollama_add(summary, text, data["done"], data.get("done_reason"), data.get("eval_count"))
    return summary


def _ollama_sdk(interaction: Interaction) -> dict[str, Any]:
    origin, path, _ = _split(interaction.request.uri)
    client = ollama.Client(host=origin)
    summary = _ollama_summary()
    if path == "/api/chat":
        for part in client.chat(model="llama3", messages=[{"role": "user", "content": "hi"}], stream=True):
            _ollama_add(
                summary, part.message.content or "", part.done or False, part.done_reason, part.eval_count
            )
    else:
        for generated in client.generate(model="llama3", prompt="hi", stream=True):
            _ollama_add(
                summary,
                generated.response or "",
                generated.done or False,
                generated.done_reason,
                generated.eval_count,
            )
    return summary


# -- which stream goes to which SDK ---------------------------------------------------------------


@dataclass(frozen=True)
class Sdk:
    """How one SDK replays a recorded stream, and what the recorded bytes say it must make of it."""

    run: Callable[[Interaction], dict[str, Any]]
    expected: Callable[[Interaction], dict[str, Any]]


CHAT = Sdk(_chat_sdk, _chat_expected)
RESPONSES = Sdk(_responses_sdk, _responses_expected)
ANTHROPIC = Sdk(_anthropic_sdk, _anthropic_expected)
GEMINI = Sdk(_gemini_sdk, _gemini_expected)
OLLAMA = Sdk(_ollama_sdk, _ollama_expected)

SDK_STREAMS: dict[str, Sdk] = {
    "pydantic-ai/openai/test_run_stream_sync_streams_real_model.yaml": CHAT,
    "openllmetry/openai/test_open_ai_function_calls_tools_streaming_parallel.yaml": CHAT,
    "openllmetry/azure/test_chat_streaming.yaml": CHAT,
    "pydantic-ai/groq/test_tool_use_failed_error_streaming.yaml": CHAT,
    "openllmetry/groq/test_chat_streaming_legacy.yaml": CHAT,
    "pydantic-ai/mistral/test_mistral_model_thinking_part_iter.yaml": CHAT,
    "openllmetry/mistral/test_mistralai_streaming_chat_legacy.yaml": CHAT,
    "pydantic-ai/openrouter/test_openrouter_stream_error.yaml": CHAT,
    "pydantic-ai/openai-responses/test_openai_responses_stream.yaml": RESPONSES,
    "pydantic-ai/openai-responses/test_openai_responses_streaming_usage.yaml": RESPONSES,
    "pydantic-ai/openai-responses/test_background_mode_streaming_starting_after_vcr.yaml": RESPONSES,
    "openllmetry/openai-responses/test_responses_streaming.yaml": RESPONSES,
    "pydantic-ai/anthropic/test_anthropic_model_thinking_part_stream.yaml": ANTHROPIC,
    "pydantic-ai/anthropic/test_anthropic_code_execution_tool_stream.yaml": ANTHROPIC,
    "openllmetry/anthropic/test_anthropic_tools_streaming_legacy.yaml": ANTHROPIC,
    "openllmetry/anthropic/test_anthropic_prompt_caching_stream_legacy.yaml": ANTHROPIC,
    "pydantic-ai/google/test_google_model_stream.yaml": GEMINI,
    "pydantic-ai/google/test_google_streaming_tool_call_thought_signature.yaml": GEMINI,
    "pydantic-ai/google/test_google_model_iter_stream.yaml": GEMINI,
    "pydantic-ai/google/test_google_vertex_service_tier_flex_stream.yaml": GEMINI,
    "openllmetry/ollama/test_ollama_streaming_chat_legacy.yaml": OLLAMA,
    "openllmetry/ollama/test_ollama_streaming_generation_legacy.yaml": OLLAMA,
}

_BEDROCK = "AWS eventstream for boto3, which does not use httpx; checked frame by frame instead"
_GEMINI_ARRAY = "Gemini JSON-array stream (no alt=sse): google-genai always requests alt=sse"
SDK_SKIPPED: dict[str, str] = {
    "pydantic-ai/bedrock/test_bedrock_model_stream.yaml": _BEDROCK,
    "pydantic-ai/bedrock/test_bedrock_model_thinking_part_stream.yaml": _BEDROCK,
    "openllmetry/bedrock/test_anthropic_converse_stream_with_tool_use.yaml": _BEDROCK,
    "openllmetry/bedrock/test_anthropic_3_completion_streaming.yaml": _BEDROCK,
    "llm-gemini/google/test_tools.yaml": _GEMINI_ARRAY,
    "llm-gemini/google/test_prompt.yaml": _GEMINI_ARRAY,
}


def test_every_corpus_stream_has_an_sdk_or_a_reason() -> None:
    # A stream added to the corpus must be given to its SDK, or skipped here with a reason.
    if CORPUS is None:
        pytest.skip(MISSING_REASON)
    # Streams requested but answered with an error body (a 400 JSON) have nothing to stream.
    answered = _files_where(lambda i: _is_stream(i) or "streamGenerateContent" in i.request.uri)
    streamed = {rel for rel in answered if manifest()[rel]["streaming"]}
    assert streamed == set(SDK_STREAMS) | set(SDK_SKIPPED)
    assert not set(SDK_STREAMS) & set(SDK_SKIPPED)


@pytest.mark.parametrize("rel", params(list(SDK_STREAMS)))
def test_sdk_parses_corpus_stream(rel: str) -> None:
    sdk = SDK_STREAMS[rel]
    interactions = _load(rel).interactions
    expected = [sdk.expected(interaction) for interaction in interactions]
    # The SDK builds its own request body, so only method and URL can match the recorded one.
    with llmcassette.use_cassette(corpus_path(rel), match_on=("method", "url")) as cassette:
        observed = [sdk.run(interaction) for interaction in interactions]
    assert observed == expected
    # One SDK call per recorded interaction, answered in order, none from the network.
    answered = [(attempt.interaction, attempt.recorded) for attempt in cassette.attempts]
    assert answered == [(index, False) for index in range(len(expected))]
    for summary in expected:  # the comparison above is not between two empty results
        assert any(summary.get(key) for key in ("text", "tool_calls", "arguments", "json", "calls", "error"))
