"""
Importing cassettes (``llmcassette._convert``): vcrpy files rewritten readable and scrubbed, with
the bytes a client gets unchanged, on hand-made cassettes and on every file of the real corpus.

The keys below are made up in each provider's shape; none is real.
"""

from __future__ import annotations

import gzip
import json
import ssl
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import given, settings, strategies as st

import llmcassette
from llmcassette import CassetteDocument, CassetteError, CassetteFormatError
from llmcassette._convert import (
    convert_document,
    decompress,
    find_cassettes,
    import_cassettes,
    looks_like_cassette,
)
from llmcassette._eventstream import encode_frame
from llmcassette._framing import detect_framing, split_events
from llmcassette._lint import lint_paths
from llmcassette._scrub import Scrubber
from llmcassette._storage import dumps_cassette, parse_cassette
from tests.corpus import corpus_path, decoded, header, is_gzip, params

OPENAI_KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
GOOGLE_KEY = "AIza" + "SyD" + "k7Hq2Lm9Zp4Rt8Vw1Xy5Bn3Cd6Fg0Jh"
CHAT_URL = "https://api.openai.com/v1/chat/completions"
SSE = (
    b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: {"choices":[{"delta":{}}]}\n\ndata: [DONE]\n\n'
)
# Building a client loads the CA bundle (about 30 ms): the replays here share one context.
_TLS = ssl.create_default_context()
ANSWER = {"id": "chatcmpl-1", "choices": [{"message": {"role": "assistant", "content": "Hello"}}]}


def vcrpy_interaction(
    *,
    uri: str = CHAT_URL,
    request_body: Any = '{"model": "gpt-4o-mini", "stream": true}',
    request_headers: dict[str, list[str]] | None = None,
    body: str | bytes,
    headers: dict[str, list[str]],
    status: int = 200,
) -> dict[str, Any]:
    """One interaction as vcrpy writes it (bytes become `!!binary`)."""
    return {
        "request": {
            "body": request_body,
            "headers": request_headers or {"Content-Type": ["application/json"]},
            "method": "POST",
            "uri": uri,
        },
        "response": {
            "body": {"string": body},
            "headers": headers,
            "status": {"code": status, "message": "OK"},
        },
    }


def write_vcrpy(path: Path, *interactions: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"interactions": list(interactions), "version": 1}))
    return path


def replay(path: Path, document: CassetteDocument) -> list[tuple[int, dict[str, str], list[bytes], bytes]]:
    """
    Send each recorded request of ``document`` to the cassette at ``path`` through httpx, in order:
    status, headers, the raw chunks, and the body once its content encoding is undone.
    """
    received = []
    with llmcassette.use_cassette(path) as cassette, httpx.Client(verify=_TLS) as client:
        for interaction in document.interactions:
            request = interaction.request
            with client.stream(request.method, request.uri, content=request.content) as response:
                raw = list(response.iter_raw())
                headers = {key.lower(): value for key, value in response.headers.multi_items()}
            body = b"".join(raw)
            plain = decoded({key: [value] for key, value in headers.items()}, body)
            received.append((response.status_code, headers, raw, plain))
    assert not cassette.misses
    assert cassette.play_counts == [1] * len(document.interactions)
    return received


# -- bodies ---------------------------------------------------------------------------------------


def test_gzip_json_becomes_structure_and_replays_the_same_json(tmp_path: Path) -> None:
    text = json.dumps(ANSWER).encode()
    source = write_vcrpy(
        tmp_path / "vcr.yaml",
        vcrpy_interaction(
            request_body=None,
            body=gzip.compress(text),
            headers={
                "Content-Type": ["application/json"],
                "Content-Encoding": ["gzip"],
                "Content-Length": ["999"],
            },
        ),
    )
    document = llmcassette.load_cassette(source)
    converted, changes = convert_document(document, path=source)
    response = converted.interactions[0].response
    assert (changes.decompressed, changes.as_text) == (1, 1)
    assert response.parsed_body == ANSWER
    assert header(response.headers, "content-encoding") is None
    assert header(response.headers, "content-length") == str(len(text))
    # vcrpy's `body: null` for a request without one is kept as it was.
    assert converted.interactions[0].request.body is None
    target = tmp_path / "ours.yaml"
    llmcassette.save_cassette(target, converted)
    assert "!!binary" in source.read_text() and "!!binary" not in target.read_text()
    [(status, headers, raw, plain)] = replay(target, document)
    [(_, old_headers, old_raw, old_plain)] = replay(source, document)
    assert (status, plain, b"".join(raw)) == (200, text, text)
    assert old_headers["content-encoding"] == "gzip" and "content-encoding" not in headers
    assert old_plain == plain


def test_binary_text_becomes_text_and_streams_one_event_per_chunk(tmp_path: Path) -> None:
    source = write_vcrpy(
        tmp_path / "vcr.yaml",
        vcrpy_interaction(body=SSE, headers={"Content-Type": ["text/event-stream"]}),
    )
    document = llmcassette.load_cassette(source)
    assert isinstance(document.interactions[0].response.body.string, bytes)  # type: ignore[union-attr]
    converted, changes = convert_document(document, path=source)
    assert (changes.decompressed, changes.as_text) == (0, 1)
    assert converted.interactions[0].response.body.string == SSE.decode()  # type: ignore[union-attr]
    target = tmp_path / "ours.yaml"
    llmcassette.save_cassette(target, converted)
    [(_, _, raw, plain)] = replay(target, document)
    assert plain == SSE
    assert raw == split_events(SSE, detect_framing("text/event-stream", SSE))
    assert len(raw) == 3


def test_deflate_and_unknown_encodings() -> None:
    text = b'{"ok": true}'
    packer = zlib.compressobj()
    deflated = packer.compress(text) + packer.flush()
    assert decompress([deflated], "deflate") == [text]
    assert decompress([gzip.compress(text)], " GZIP ") == [text]
    # Encodings llmcassette cannot undo, and bytes that are not what the header says, stay as they are.
    assert decompress([text], "br") is None
    assert decompress([text], "gzip") is None
    assert decompress([text], None) is None


def test_gzip_chunks_are_decoded_one_by_one_so_boundaries_stay(tmp_path: Path) -> None:
    # A stream llmcassette recorded with decode_compressed=False: gzip bytes with their chunks.
    text = SSE * 3
    packed = gzip.compress(text)
    cuts = [len(packed) // 3, 2 * len(packed) // 3]
    chunks = [packed[: cuts[0]], packed[cuts[0] : cuts[1]], packed[cuts[1] :]]
    document = CassetteDocument.model_validate(
        {
            "interactions": [
                {
                    "request": {"method": "POST", "uri": CHAT_URL, "body": "{}"},
                    "response": {
                        "status": {"code": 200},
                        "headers": {"content-type": ["text/event-stream"], "content-encoding": ["gzip"]},
                        "body": {"string": packed},
                        "stream": {"chunks": [len(c) for c in chunks], "offsets_ms": [1.0, 2.0, 3.0]},
                    },
                }
            ]
        }
    )
    converted, _ = convert_document(document, path=tmp_path / "x.yaml")
    response = converted.interactions[0].response
    assert response.content == text
    assert response.stream is not None and response.stream.chunks is not None
    assert len(response.stream.chunks) == 3 and sum(response.stream.chunks) == len(text)
    # Each decoded chunk is what its compressed chunk held: decoding the pieces separately agrees.
    expected = decompress(chunks, "gzip")
    assert expected is not None
    assert response.stream.chunks == [len(piece) for piece in expected]
    assert response.stream.offsets_ms == [1.0, 2.0, 3.0]


def test_chunk_lengths_that_do_not_fit_the_body_are_an_error_naming_the_field(tmp_path: Path) -> None:
    document = CassetteDocument.model_validate(
        {
            "interactions": [
                {
                    "request": {"method": "GET", "uri": CHAT_URL},
                    "response": {
                        "status": {"code": 200},
                        "body": {"string": "abc"},
                        "stream": {"chunks": [1, 5]},
                    },
                }
            ]
        }
    )
    with pytest.raises(CassetteFormatError, match=r"interaction 0, field `response.stream.chunks`") as caught:
        convert_document(document, path=tmp_path / "bad.yaml")
    assert caught.value.field == "response.stream.chunks"
    assert str(caught.value).startswith("llmcassette: cassette ")


def test_eventstream_becomes_readable_frames(tmp_path: Path) -> None:
    frames = b"\x00\x00\x00\x10\x00\x00\x00\x00\x05\xc2\x48\xeb\x7d\x98\xc8\xff"  # one empty frame
    frames += encode_frame({":event-type": "messageStart"}, b'{"role":"assistant"}')
    source = write_vcrpy(
        tmp_path / "vcr.yaml",
        vcrpy_interaction(body=frames, headers={"Content-Type": ["application/vnd.amazon.eventstream"]}),
    )
    converted, changes = convert_document(llmcassette.load_cassette(source), path=source)
    response = converted.interactions[0].response
    assert response.body is None and response.eventstream is not None
    assert [(f.headers, f.payload) for f in response.eventstream] == [
        ({}, None),
        ({":event-type": "messageStart"}, {"role": "assistant"}),
    ]
    assert response.content == frames
    assert (changes.decompressed, changes.as_text) == (0, 1)


def test_eventstream_with_a_bad_checksum_stays_binary(tmp_path: Path) -> None:
    frame = bytearray(encode_frame({":event-type": "messageStart"}, b'{"role":"assistant"}'))
    frame[-1] ^= 1
    source = write_vcrpy(
        tmp_path / "vcr.yaml",
        vcrpy_interaction(
            body=bytes(frame), headers={"Content-Type": ["application/vnd.amazon.eventstream"]}
        ),
    )
    converted, changes = convert_document(llmcassette.load_cassette(source), path=source)
    assert converted.interactions[0].response.body.string == bytes(frame)  # type: ignore[union-attr]
    assert (changes.decompressed, changes.as_text) == (0, 0)


# -- secrets --------------------------------------------------------------------------------------


def _secret_cassette(tmp_path: Path) -> Path:
    body = json.dumps({"echo": f"my key is {OPENAI_KEY}"}).encode()
    return write_vcrpy(
        tmp_path / "vcr.yaml",
        vcrpy_interaction(
            uri=f"https://generativelanguage.googleapis.com/v1beta/models/gemini:generateContent?key={GOOGLE_KEY}",
            request_headers={"Authorization": [f"Bearer {OPENAI_KEY}"], "Content-Type": ["application/json"]},
            body=body,
            headers={
                "Content-Type": ["application/json"],
                "Content-Length": [str(len(body))],
                "Set-Cookie": ["__cf_bm=abc123; path=/"],
                "openai-organization": ["acme-corp"],
            },
        ),
    )


def test_secrets_are_scrubbed_by_default(tmp_path: Path) -> None:
    source = _secret_cassette(tmp_path)
    report = import_cassettes(source, tmp_path / "out.yaml")
    [result] = report.results
    text = result.dest.read_text()
    for secret in (OPENAI_KEY, GOOGLE_KEY, "abc123", "acme-corp"):
        assert secret not in text
    interaction = llmcassette.load_cassette(result.dest).interactions[0]
    assert interaction.request.uri.endswith("?key=REDACTED")
    assert interaction.request.headers["Authorization"] == ["Bearer REDACTED"]
    assert interaction.response.headers["Set-Cookie"] == ["__cf_bm=REDACTED; path=/"]
    assert interaction.response.parsed_body == {"echo": "my key is REDACTED-openai-key"}
    # Content-Length follows the shorter body, as when recording.
    assert header(interaction.response.headers, "content-length") == str(len(interaction.response.content))
    # URL, Authorization, Set-Cookie, organisation and the key in the body.
    assert result.changes.scrubbed == 5


def test_no_scrub_keeps_everything(tmp_path: Path) -> None:
    source = _secret_cassette(tmp_path)
    [result] = import_cassettes(source, tmp_path / "out.yaml", scrub=False).results
    original = llmcassette.load_cassette(source).interactions[0]
    imported = llmcassette.load_cassette(result.dest).interactions[0]
    assert result.changes.scrubbed == 0
    assert imported.request.uri == original.request.uri
    assert imported.request.headers == original.request.headers
    assert imported.response.content == original.response.content


def test_a_custom_scrubber_is_used(tmp_path: Path) -> None:
    source = write_vcrpy(
        tmp_path / "vcr.yaml",
        vcrpy_interaction(body="internal token tok-4242", headers={"Content-Type": ["text/plain"]}),
    )
    [result] = import_cassettes(source, tmp_path / "out.yaml", scrub=Scrubber(secrets=("tok-4242",))).results
    assert (
        llmcassette.load_cassette(result.dest).interactions[0].response.content
        == b"internal token REDACTED-secret"
    )


# -- files and folders ----------------------------------------------------------------------------


def test_folder_import_mirrors_the_tree_and_skips_what_is_not_a_cassette(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_vcrpy(src / "a.yaml", vcrpy_interaction(body="x", headers={}))
    write_vcrpy(src / "deep" / "b.yml", vcrpy_interaction(body="y", headers={}))
    (src / "deep" / "c.json").write_text(json.dumps({"status": 200, "body": {"ok": True}}))
    (src / "MANIFEST.json").write_text("[1, 2]")
    (src / "settings.yaml").write_text("name: ci\n")
    (src / ".hidden").mkdir()
    write_vcrpy(src / ".hidden" / "d.yaml", vcrpy_interaction(body="z", headers={}))
    report = import_cassettes(src, tmp_path / "dest")
    assert sorted(r.dest.relative_to(tmp_path / "dest").as_posix() for r in report.results) == [
        "a.yaml",
        "deep/b.yml",
        "deep/c.json",
    ]
    assert sorted(p.name for p in report.skipped) == ["MANIFEST.json", "settings.yaml"]
    # A response saved on its own stays one: it answers any request.
    bare = llmcassette.load_cassette(tmp_path / "dest" / "deep" / "c.json").interactions[0]
    assert (bare.request.method, bare.request.uri, bare.response.parsed_body) == ("*", "*", {"ok": True})


def test_a_file_goes_into_a_folder_destination(tmp_path: Path) -> None:
    source = write_vcrpy(tmp_path / "one.yaml", vcrpy_interaction(body="x", headers={}))
    [result] = import_cassettes(source, f"{tmp_path / 'new'}/").results
    assert result.dest == tmp_path / "new" / "one.yaml"
    (tmp_path / "existing").mkdir()
    [result] = import_cassettes(source, tmp_path / "existing").results
    assert result.dest == tmp_path / "existing" / "one.yaml"


def test_existing_destinations_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_vcrpy(src / "a.yaml", vcrpy_interaction(body="x", headers={}))
    write_vcrpy(src / "b.yaml", vcrpy_interaction(body="y", headers={}))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "b.yaml").write_text("keep me")
    with pytest.raises(CassetteError, match=r"'.*b\.yaml' already exists; overwrite it with --force"):
        import_cassettes(src, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["b.yaml"]
    assert (dest / "b.yaml").read_text() == "keep me"
    import_cassettes(src, dest, force=True)
    assert llmcassette.load_cassette(dest / "b.yaml").interactions[0].response.content == b"y"


def test_in_place_with_force(tmp_path: Path) -> None:
    source = write_vcrpy(tmp_path / "a.yaml", vcrpy_interaction(body=SSE, headers={}))
    import_cassettes(source, source, force=True)
    assert "!!binary" not in source.read_text()
    assert llmcassette.load_cassette(source).interactions[0].response.content == SSE


def test_a_source_that_does_not_load_stops_the_import(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_vcrpy(src / "a.yaml", vcrpy_interaction(body="x", headers={}))
    (src / "b.yaml").write_text("interactions: [1]\n")
    with pytest.raises(CassetteFormatError, match=r"b\.yaml' is not valid: interaction 0"):
        import_cassettes(src, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        pytest.param(lambda tmp: (tmp / "missing.yaml", tmp / "out.yaml"), "does not exist", id="no-source"),
        pytest.param(lambda tmp: (tmp / "empty", tmp / "out"), "no cassette files", id="empty-folder"),
        pytest.param(lambda tmp: (tmp / "empty", tmp / "file.txt"), "is a file", id="folder-into-file"),
        pytest.param(
            lambda tmp: (tmp / "a.yaml", tmp / "file.txt" / "a.yaml"),
            "is a file, not a folder",
            id="unwritable",
        ),
        pytest.param(
            lambda tmp: (tmp / "a.yaml", tmp / "a.json"), "which JSON cannot hold", id="binary-in-json"
        ),
    ],
)
def test_errors_name_the_file(tmp_path: Path, make: Any, match: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("a file")
    frames = b"\x00\x00\x00\x10\x00\x00\x00\x00\x05\xc2\x48\xeb\x7d\x98\xc8\xff"
    write_vcrpy(tmp_path / "a.yaml", vcrpy_interaction(body=frames, headers={}))
    src, dest = make(tmp_path)
    with pytest.raises(CassetteError, match=match) as caught:
        import_cassettes(src, dest)
    message = str(caught.value)
    assert message.startswith("llmcassette: ") and "\n" not in message
    assert str(src if match in ("does not exist", "no cassette files") else dest) in message


def test_find_and_recognise_cassettes(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "c.json", "d.txt", ".e.yaml"):
        (tmp_path / name).write_text("x")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "f.json").write_text("{}")
    assert [p.name for p in find_cassettes(tmp_path)] == ["a.yml", "b.yaml", "c.json"]
    assert looks_like_cassette(b"version: 1\ninteractions:\n- request: {}\n", json_file=False)
    assert looks_like_cassette(b'{"version": 1, "interactions": []}', json_file=True)
    assert looks_like_cassette(b'{"status": 200, "body": ""}', json_file=True)
    # JSON under a .yaml name, and YAML in flow style.
    assert looks_like_cassette(b'{"version": 1, "interactions": []}', json_file=False)
    assert looks_like_cassette(b"{interactions: []}", json_file=False)
    assert not looks_like_cassette(b'[{"interactions": 1}]', json_file=True)
    assert not looks_like_cassette(b"jobs:\n  test:\n    interactions: 2\n", json_file=False)


# -- the real corpus ------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", params())
def test_imported_corpus_file_replays_the_same_bytes(rel: str, tmp_path: Path) -> None:
    source = corpus_path(rel)
    document = llmcassette.load_cassette(source)
    target = tmp_path / "imported.yaml"
    [result] = import_cassettes(source, target).results
    assert result.interactions == len(document.interactions)
    # Nothing is binary any more: every gzip body was decoded, every AWS eventstream body is
    # stored as readable frames.
    text = target.read_text()
    assert "!!binary" not in text
    assert "content-encoding" not in text.lower()
    assert result.changes.decompressed == sum(is_gzip(i.response.headers) for i in document.interactions)
    # Nothing is left for lint to find: no secret, no unscrubbed header, no binary text.
    assert [finding.line() for finding in lint_paths([target]).findings] == []
    before = replay(source, document)
    after = replay(target, document)
    scrubber = Scrubber()
    for interaction, (status, _, old_raw, old_plain), (new_status, headers, raw, plain) in zip(
        document.interactions, before, after, strict=True
    ):
        assert new_status == status
        # What the client reads is the same, but for scrubbed secrets (there are none in these bodies).
        assert plain == scrubber.scrub_body(old_plain) == old_plain
        assert "content-encoding" not in headers
        response = interaction.response
        if is_gzip(response.headers):
            # One opaque gzip chunk before; now the decoded body, one event per chunk.
            assert len(old_raw) == 1
            framing = detect_framing(
                header(response.headers, "content-type"), plain, url=interaction.request.uri
            )
            assert raw == split_events(plain, framing)
        else:
            assert raw == old_raw


@settings(max_examples=150, deadline=None)
@given(
    body=st.one_of(st.binary(max_size=120), st.text(max_size=120).map(str.encode), st.just(SSE)),
    content_type=st.sampled_from(["application/json", "text/event-stream", "text/plain", None]),
    gzip_it=st.booleans(),
    request_body=st.one_of(st.none(), st.binary(max_size=40), st.text(max_size=40)),
)
def test_conversion_keeps_every_body(
    body: bytes, content_type: str | None, gzip_it: bool, request_body: str | bytes | None
) -> None:
    headers = {"Content-Type": [content_type]} if content_type else {}
    if gzip_it:
        headers["Content-Encoding"] = ["gzip"]
    data = vcrpy_interaction(
        request_body=request_body, body=gzip.compress(body) if gzip_it else body, headers=headers
    )
    document = CassetteDocument.model_validate({"interactions": [data]})
    converted, _ = convert_document(document, path=Path("c.yaml"))
    # Through the file and back, as the written cassette would be read.
    [item] = parse_cassette(dumps_cassette(converted).encode(), path=Path("c.yaml")).interactions
    assert item.response.content == body
    assert item.request.content == document.interactions[0].request.content
    assert header(item.response.headers, "content-encoding") is None
