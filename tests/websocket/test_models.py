"""
The WebSocket session format: every message comes back as it crossed (JSON text byte for byte),
the file stays readable, and a value that could not be replayed is refused at load with the file,
the interaction and the field named.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llmcassette import CassetteFormatError
from llmcassette._lazy import load_lazy
from llmcassette._models import CassetteDocument, Interaction, RecordedRequest, RecordedResponse, Status
from llmcassette._storage import dumps_cassette, load_cassette, save_cassette
from llmcassette._websocket._models import WebSocketClose, WebSocketMessage, WebSocketSession

URL = "wss://api.openai.com/v1/realtime?model=gpt-realtime"


def session_file(*, messages: str, close: str = "", status: str = "101", schema: str = "2") -> str:
    return (
        f"version: 1\nllmcassette_schema: {schema}\ninteractions:\n"
        f"- request: {{method: GET, uri: '{URL}', headers: {{}}}}\n"
        "  response:\n"
        f"    status: {{code: {status}, message: Switching Protocols}}\n"
        "    headers: {}\n"
        "  websocket:\n"
        "    subprotocol: null\n"
        f"    messages:{messages}"
        f"{close}"
        "...\n"
    )


def interaction(session: WebSocketSession) -> Interaction:
    return Interaction(
        request=RecordedRequest(method="GET", uri=URL, headers={"Authorization": ["Bearer REDACTED"]}),
        response=RecordedResponse(status=Status(code=101, message="Switching Protocols"), elapsed_ms=84.0),
        websocket=session,
    )


TEXTS = [
    pytest.param('{"type":"session.update","session":{"voice":"alloy"}}', id="compact-json"),
    pytest.param('{"type": "session.created", "event_id": "ev_1"}', id="spaced-json"),
    pytest.param('{\n  "type": "x",\n  "n": [1, 2.5, null]\n}\n', id="indented-json-with-newline"),
    pytest.param('{"text":"caf\\u00e9"}', id="ascii-escaped-json"),
    pytest.param('{"text":"café ☕"}', id="unicode-json"),
    pytest.param('{"a":1, "b":2}', id="mixed-separators-json-kept-as-text"),
    pytest.param("[1,2,3]", id="json-list"),
    pytest.param("not JSON at all", id="plain-text"),
    pytest.param("{broken", id="broken-json"),
    pytest.param("", id="empty-text"),
]


@pytest.mark.parametrize("text", TEXTS)
def test_a_text_message_round_trips_through_the_file_exactly(tmp_path: Path, text: str) -> None:
    message = WebSocketMessage.capture("server", 12.345, text)
    path = tmp_path / "session.yaml"
    save_cassette(path, CassetteDocument(interactions=[interaction(WebSocketSession(messages=[message]))]))
    loaded = load_cassette(path).interactions[0].websocket
    assert loaded is not None
    (back,) = loaded.messages
    assert back.data == text and not back.is_binary
    assert (back.sender, back.offset_ms) == ("server", 12.3)


def test_json_is_stored_structured_and_compact_json_needs_no_format_key(tmp_path: Path) -> None:
    messages = [
        WebSocketMessage.capture("client", 1.0, '{"type":"response.create"}'),
        WebSocketMessage.capture("server", 2.0, '{"type": "response.done"}'),
    ]
    text = dumps_cassette(CassetteDocument(interactions=[interaction(WebSocketSession(messages=messages))]))
    assert "json: {type: response.create}\n" in text
    assert "json: {type: response.done}\n      json_format: spaced\n" in text
    assert text.count("json_format") == 1


def test_binary_messages_and_the_close_round_trip(tmp_path: Path) -> None:
    audio = bytes(range(256)) * 4
    session = WebSocketSession(
        subprotocol="realtime",
        messages=[
            WebSocketMessage.capture("client", 0.5, audio),
            WebSocketMessage.capture("server", 0.5, b""),
        ],
        close=WebSocketClose(code=4000, reason="bye", by="server", offset_ms=9.0),
    )
    path = tmp_path / "session.yaml"
    save_cassette(path, CassetteDocument(interactions=[interaction(session)]))
    loaded = load_cassette(path).interactions[0].websocket
    assert loaded is not None
    assert [m.data for m in loaded.messages] == [audio, b""]
    assert all(m.is_binary for m in loaded.messages)
    assert loaded.subprotocol == "realtime"
    assert loaded.close == session.close
    # Stored once, as base64 (4 bytes of text per 3 of payload), never re-encoded twice.
    assert len(path.read_bytes()) < len(audio) * 4 / 3 + 1500


@pytest.mark.parametrize("data", [pytest.param(t.values[0], id=t.id) for t in TEXTS])
def test_json_in_a_binary_frame_is_stored_as_json_and_sent_back_as_the_same_bytes(
    tmp_path: Path, data: str
) -> None:
    # Gemini Live sends its JSON in binary frames: stored as readable as a text frame's JSON, and
    # played back as a binary frame of the same bytes.
    raw = data.encode("utf-8")
    message = WebSocketMessage.capture("server", 1.0, raw)
    session = WebSocketSession(subprotocol=None, messages=[message])
    path = tmp_path / "live.yaml"
    save_cassette(path, CassetteDocument(interactions=[interaction(session)]))
    loaded = load_cassette(path).interactions[0].websocket
    assert loaded is not None
    (back,) = loaded.messages
    assert back.data == raw and back.is_binary
    stored = path.read_text()
    if back.frame is not None:
        assert "frame: binary" in stored and "!!binary" not in stored
        assert back.json_value == WebSocketMessage.capture("server", 1.0, data).json_value
    else:  # not JSON that rebuilds exactly: kept as the bytes they are
        assert WebSocketMessage.capture("server", 1.0, data).json_value is None


def test_a_frame_key_belongs_to_a_json_message_only() -> None:
    with pytest.raises(ValueError, match="`frame` belongs to a `json` message only"):
        WebSocketMessage.model_validate({"from": "server", "offset_ms": 0, "text": "x", "frame": "binary"})


def test_a_base64_string_inside_json_stays_the_string_it_was(tmp_path: Path) -> None:
    delta = "AAEC" * 2000
    text = f'{{"type":"response.output_audio.delta","delta":"{delta}"}}'
    message = WebSocketMessage.capture("server", 3.0, text)
    assert message.json_value == {"type": "response.output_audio.delta", "delta": delta}
    path = tmp_path / "session.yaml"
    save_cassette(path, CassetteDocument(interactions=[interaction(WebSocketSession(messages=[message]))]))
    assert path.read_text().count(delta) == 1
    assert len(path.read_bytes()) < len(delta) + 1000


def test_a_session_still_open_at_save_has_no_close_and_loads_so() -> None:
    text = dumps_cassette(CassetteDocument(interactions=[interaction(WebSocketSession())]))
    assert "close:" not in text


def test_a_file_with_sessions_is_schema_2_and_one_without_stays_schema_1() -> None:
    with_session = dumps_cassette(CassetteDocument(interactions=[interaction(WebSocketSession())]))
    assert with_session.startswith("version: 1\nllmcassette_schema: 2\n")
    http = Interaction(
        request=RecordedRequest(method="GET", uri="https://example.com/"),
        response=RecordedResponse(status=Status(code=200)),
    )
    text = dumps_cassette(CassetteDocument(interactions=[http]))
    assert text.startswith("version: 1\nllmcassette_schema: 1\n")


def test_the_replay_loader_reads_the_session_too(tmp_path: Path) -> None:
    path = tmp_path / "session.yaml"
    path.write_text(
        session_file(
            messages="\n    - {from: client, offset_ms: 1.0, json: {type: a}}\n",
            close="    close: {code: null, reason: null, by: none, offset_ms: 3.0}\n",
        )
    )
    lazy = load_lazy(path)
    session = lazy.interaction(0).websocket
    assert session is not None and session.close is not None and session.close.by == "none"


BAD = [
    pytest.param(
        "\n    - {from: client, offset_ms: 1.0, json: {a: 1}, text: a}\n",
        "",
        "101",
        "websocket.messages.0",
        "exactly one of `json`, `text` and `binary`, and this one has `json`, `text`",
        id="two-payloads",
    ),
    pytest.param(
        "\n    - {from: client, offset_ms: 1.0}\n",
        "",
        "101",
        "websocket.messages.0",
        "this one has none of them",
        id="no-payload",
    ),
    pytest.param(
        "\n    - {from: browser, offset_ms: 1.0, text: a}\n",
        "",
        "101",
        "websocket.messages.0.from",
        "'client' or 'server'",
        id="unknown-sender",
    ),
    pytest.param(
        "\n    - {from: client, offset_ms: -1.0, text: a}\n",
        "",
        "101",
        "websocket.messages.0.offset_ms",
        "-1.0 is not a time",
        id="negative-offset",
    ),
    pytest.param(
        "\n    - {from: client, offset_ms: 5.0, text: a}\n    - {from: server, offset_ms: 4.0, text: b}\n",
        "",
        "101",
        "websocket",
        "message 1 has offset_ms 4.0, earlier than the message before it",
        id="out-of-order",
    ),
    pytest.param(
        "\n    - {from: client, offset_ms: 1.0, text: 12}\n",
        "",
        "101",
        "websocket.messages.0.text",
        "valid string",
        id="text-not-a-string",
    ),
    pytest.param(
        "\n    - {from: client, offset_ms: 1.0, binary: AAEC}\n",
        "",
        "101",
        "websocket.messages.0.binary",
        "valid bytes",
        id="binary-not-binary",
    ),
    pytest.param(
        "\n    - {from: client, offset_ms: 1.0, json: {a: 1}, json_format: pretty}\n",
        "",
        "101",
        "websocket.messages.0.json_format",
        "'pretty' is not a JSON format llmcassette knows",
        id="unknown-json-format",
    ),
    pytest.param(
        "\n    - {from: client, offset_ms: 1.0, text: a, json_format: compact}\n",
        "",
        "101",
        "websocket.messages.0",
        "`json_format` belongs to a `json` message only",
        id="format-on-text",
    ),
    pytest.param(
        " []\n",
        "    close: {code: 1006, reason: '', by: server, offset_ms: 1.0}\n",
        "101",
        "websocket.close",
        "1006 is not a close code a close frame can carry",
        id="reserved-close-code",
    ),
    pytest.param(
        " []\n",
        "    close: {code: 1000, reason: '', by: none, offset_ms: 1.0}\n",
        "101",
        "websocket.close",
        "`by: none` is a connection that ended without a close frame",
        id="code-without-close-frame",
    ),
    pytest.param(
        " []\n",
        "    close: {code: 1000, reason: '', by: nobody, offset_ms: 1.0}\n",
        "101",
        "websocket.close.by",
        "'client', 'server' or 'none'",
        id="unknown-closer",
    ),
    pytest.param(
        " []\n",
        "",
        "200",
        "(top level)",
        "its response has status 101",
        id="session-without-101",
    ),
]


@pytest.mark.parametrize(("messages", "close", "status", "field", "fragment"), BAD)
@pytest.mark.parametrize("loader", ["whole", "replay"])
def test_a_session_llmcassette_cannot_replay_is_refused_naming_file_interaction_and_field(
    tmp_path: Path, messages: str, close: str, status: str, field: str, fragment: str, loader: str
) -> None:
    path = tmp_path / "session.yaml"
    path.write_text(session_file(messages=messages, close=close, status=status))
    with pytest.raises(CassetteFormatError) as info:
        if loader == "whole":
            load_cassette(path)
        else:
            load_lazy(path).interaction(0)
    error = info.value
    assert str(error).startswith(f"llmcassette: cassette {str(path)!r} is not valid: interaction 0, ")
    assert fragment in str(error)
    assert (error.path, error.interaction, error.field) == (path, 0, field)
