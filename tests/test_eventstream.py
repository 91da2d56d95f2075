"""
AWS eventstream bodies stored as readable frames: every body comes back byte for byte (lengths
and checksums recomputed and equal to the recorded ones), or stays bytes.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings, strategies as st

import llmcassette
from llmcassette import CassetteFormatError
from llmcassette._bodies import load_body, store_body
from llmcassette._eventstream import encode_frame, frames_data, read_frames, scrub_frames, store_frames
from llmcassette._scrub import Scrubber
from llmcassette._storage import dumps_cassette, parse_cassette

EVENTSTREAM = "application/vnd.amazon.eventstream"
JSON_EVENT = {
    ":event-type": "contentBlockDelta",
    ":content-type": "application/json",
    ":message-type": "event",
}


def _delta(text: str) -> bytes:
    payload = {"contentBlockIndex": 0, "delta": {"text": text}, "p": "abcdefghij"}
    return encode_frame(JSON_EVENT, json.dumps(payload, separators=(",", ":")).encode())


def _chunk(event: dict[str, Any], *, padding: str | None = "abcd") -> bytes:
    inner = base64.b64encode(json.dumps(event, separators=(",", ":")).encode()).decode()
    payload = {"bytes": inner} if padding is None else {"bytes": inner, "p": padding}
    headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    return encode_frame(headers, json.dumps(payload, separators=(",", ":")).encode())


def _exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return encode_frame(headers, json.dumps({"message": message}).encode())


def _through_file(body: bytes, tmp_path: Path) -> tuple[str, bytes]:
    document = llmcassette.CassetteDocument.model_validate(
        {
            "interactions": [
                {
                    "request": {"method": "POST", "uri": "https://bedrock-runtime.us-east-1.amazonaws.com/x"},
                    "response": {
                        "status": {"code": 200},
                        "headers": {"content-type": [EVENTSTREAM]},
                        **_fields(body),
                    },
                }
            ]
        }
    )
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, document)
    return path.read_text(), llmcassette.load_cassette(path).interactions[0].response.content


def _fields(body: bytes) -> dict[str, Any]:
    stored = store_body(body, content_type=EVENTSTREAM)
    if stored.frames is not None:
        return {"eventstream": frames_data(stored.frames)}
    return {"body": {"string": stored.string}}


def test_converse_frames_are_stored_as_headers_and_json(tmp_path: Path) -> None:
    body = _delta("Hi") + _delta(" there.")
    frames = store_frames(body)
    assert frames is not None
    assert frames_data(frames)[0] == {
        "headers": JSON_EVENT,
        "payload": {"contentBlockIndex": 0, "delta": {"text": "Hi"}, "p": "abcdefghij"},
    }
    text, back = _through_file(body, tmp_path)
    assert back == body
    assert "llmcassette_schema: 2" in text and "!!binary" not in text
    assert "':event-type': contentBlockDelta" in text and "delta: {text: Hi}" in text


def test_a_chunk_shows_the_json_its_base64_carries(tmp_path: Path) -> None:
    event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hé"}}
    body = _chunk(event) + _chunk({"type": "message_stop"}, padding=None)
    frames = store_frames(body)
    assert frames is not None
    assert frames_data(frames)[0]["payload"] == {"bytes": event, "p": "abcd"}
    assert frames_data(frames)[0]["bytes_format"] == "compact-ascii"  # json.dumps escapes é
    text, back = _through_file(body, tmp_path)
    assert back == body
    assert "type: text_delta" in text


def test_base64_that_is_not_canonical_stays_as_sent() -> None:
    # Base64 without its padding decodes nowhere here; one with a line break in it does not
    # encode back the same: both keep their string.
    inner = base64.b64encode(b'{"type":"pings"}').decode()  # padded: 16 bytes
    for odd in (inner.rstrip("="), inner[:8] + "\n" + inner[8:]):
        payload = json.dumps({"bytes": odd}, separators=(",", ":")).encode()
        body = encode_frame({":event-type": "chunk"}, payload)
        frames = store_frames(body)
        assert frames is not None
        assert frames_data(frames)[0]["payload"] == {"bytes": odd}
        assert load_body(store_body(body, content_type=EVENTSTREAM)) == body


def test_payloads_that_are_not_compact_json(tmp_path: Path) -> None:
    body = (
        _exception("throttlingException", "Too many requests, please wait.")  # json.dumps defaults
        + encode_frame({":event-type": "note"}, b"plain text, not JSON")
        + encode_frame({":event-type": "blob"}, b"\x00\xff\x01")
        + encode_frame({":event-type": "empty"}, b"")
    )
    frames = frames_data(store_frames(body) or [])
    assert frames[0]["json_format"] == "spaced"
    assert frames[1] == {"headers": {":event-type": "note"}, "text": "plain text, not JSON"}
    assert frames[2] == {"headers": {":event-type": "blob"}, "binary": b"\x00\xff\x01"}
    assert frames[3] == {"headers": {":event-type": "empty"}}
    assert _through_file(body, tmp_path)[1] == body


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:-1], id="cut-short"),
        pytest.param(lambda b: b[:-1] + bytes([b[-1] ^ 1]), id="bad-message-crc"),
        pytest.param(lambda b: b[:8] + bytes([b[8] ^ 1]) + b[9:], id="bad-prelude-crc"),
        pytest.param(lambda b: b + b"\x00\x00", id="trailing-bytes"),
    ],
)
def test_a_body_that_is_not_whole_valid_frames_stays_bytes(damage: Any, tmp_path: Path) -> None:
    body = damage(_delta("Hi") + _delta("!"))
    assert store_frames(body) is None
    stored = store_body(body, content_type=EVENTSTREAM)
    assert stored.frames is None and stored.string == body
    text, back = _through_file(body, tmp_path)
    assert "!!binary" in text and "llmcassette_schema: 1" in text
    assert back == body


def test_headers_other_than_strings_keep_the_body_as_bytes() -> None:
    # A header of type 4 (int32): readable frames hold string headers only.
    head = b"\x05count\x04" + struct.pack(">i", 7)
    prelude = struct.pack(">II", 16 + len(head), len(head))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + head
    body = message + struct.pack(">I", zlib.crc32(message))
    assert read_frames(body) is None and store_frames(body) is None


def test_a_header_name_twice_keeps_the_body_as_bytes() -> None:
    body = encode_frame([(":event-type", "a"), (":event-type", "b")], b"{}")
    assert store_frames(body) is None


_HEADER_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_PAYLOADS = st.one_of(
    st.binary(max_size=40),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ).map(lambda v: json.dumps(v, separators=(",", ":")).encode()),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3).map(
        lambda v: json.dumps({"bytes": base64.b64encode(json.dumps(v).encode()).decode()}).encode()
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(
        st.tuples(
            st.dictionaries(
                _HEADER_TEXT.filter(lambda n: 0 < len(n.encode()) <= 255), _HEADER_TEXT, max_size=3
            ),
            _PAYLOADS,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_frames_come_back_byte_for_byte(frames: list[tuple[dict[str, str], bytes]]) -> None:
    body = b"".join(encode_frame(headers, payload) for headers, payload in frames)
    # botocore reads what we encode, and what we store gives the same bytes back.
    buffer = EventStreamBuffer()
    buffer.add_data(body)
    assert [message.payload for message in buffer] == [payload for _, payload in frames]
    stored = store_frames(body)
    assert stored is not None
    text = dumps_cassette(
        llmcassette.CassetteDocument.model_validate(
            {
                "interactions": [
                    {
                        "request": {"method": "POST", "uri": "http://h/x"},
                        "response": {"status": {"code": 200}, "eventstream": frames_data(stored)},
                    }
                ]
            }
        )
    )
    back = parse_cassette(text.encode(), path=Path("c.yaml"))
    assert back.interactions[0].response.content == body


def _load_frames(tmp_path: Path, frames: Any, **response: Any) -> Exception:
    path = tmp_path / "bad.yaml"
    path.write_text(
        dumps_cassette(
            llmcassette.CassetteDocument.model_validate(
                {
                    "interactions": [
                        {
                            "request": {"method": "POST", "uri": "http://h/x"},
                            "response": {"status": {"code": 200}},
                        }
                    ]
                }
            )
        )
    )
    from llmcassette._yaml import dump_yaml, load_yaml

    data = load_yaml(path.read_bytes())
    data["interactions"][0]["response"].update({"eventstream": frames, **response})
    path.write_text(dump_yaml(data) + "...\n")
    with pytest.raises(CassetteFormatError) as info:
        llmcassette.load_cassette(path)
    return info.value


@pytest.mark.parametrize(
    ("frames", "extra", "field", "words"),
    [
        ([{"headers": {":event-type": 7}}], {}, "eventstream.0.headers.:event-type", "valid string"),
        ([{"headers": {"x" * 256: "v"}}], {}, "eventstream.0.headers", "1 to 255 bytes"),
        ([{"headers": {"n": "v" * 65_536}}], {}, "eventstream.0.headers", "at most 65535 bytes"),
        ([{"payload": {}, "text": "x"}], {}, "eventstream.0", "`payload` and `text`"),
        ([{"payload": {"a": 1}, "json_format": "pretty"}], {}, "eventstream.0.json_format", "'pretty'"),
        ([{"payload": {"a": 1}, "bytes_format": "compact"}], {}, "eventstream.0", "no `bytes` key"),
        ([{"headers": {}}], {"body": {"string": "x"}}, "", "both `eventstream` and `body`"),
        ("frames", {}, "eventstream", "valid list"),
    ],
)
def test_bad_frames_are_refused_naming_the_field(
    tmp_path: Path, frames: Any, extra: dict[str, Any], field: str, words: str
) -> None:
    error = _load_frames(tmp_path, frames, **extra)
    assert str(error).startswith("llmcassette: cassette ")
    assert "interaction 0" in str(error) and words in str(error)
    assert getattr(error, "field", None) == ("response." + field).rstrip(".")


def test_a_newer_schema_is_refused_and_schema_1_files_with_binary_still_load(tmp_path: Path) -> None:
    body = _delta("Hi")
    old = tmp_path / "old.yaml"
    old.write_text(
        "interactions:\n- request: {method: POST, uri: 'http://h/x'}\n  response:\n"
        "    status: {code: 200}\n    headers: {content-type: [application/vnd.amazon.eventstream]}\n"
        f"    body: {{string: !!binary '{base64.b64encode(body).decode()}'}}\nversion: 1\n"
    )
    assert llmcassette.load_cassette(old).interactions[0].response.content == body
    newer = tmp_path / "newer.yaml"
    newer.write_text("version: 1\nllmcassette_schema: 3\ninteractions: []\n...\n")
    with pytest.raises(CassetteFormatError, match="schema 3 was written by a newer llmcassette"):
        llmcassette.load_cassette(newer)


def test_scrubbing_rebuilds_the_frames_it_changes() -> None:
    key = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0" * 2
    body = _delta("Hi") + _delta(key) + _chunk({"type": "content_block_delta", "text": key}) + _delta("!")
    result = scrub_frames(body, Scrubber().scrub_body)
    assert result is not None
    scrubbed, spans = result
    frames = read_frames(scrubbed)
    assert frames is not None and len(frames) == 4  # every checksum right
    assert key.encode() not in scrubbed and b"REDACTED-openai-key" in frames[1][1]
    inner = base64.b64decode(json.loads(frames[2][1])["bytes"])
    assert json.loads(inner) == {"type": "content_block_delta", "text": "REDACTED-openai-key"}
    first = len(_delta("Hi"))
    assert [span[:2] for span in spans] == [
        (first, first + len(_delta(key))),
        (first + len(_delta(key)), len(body) - len(_delta("!"))),
    ]
    assert scrubbed.endswith(_delta("!")) and scrubbed.startswith(_delta("Hi"))
    assert scrub_frames(body[:-1], Scrubber().scrub_body) is None  # not whole frames: scrubbed as bytes
