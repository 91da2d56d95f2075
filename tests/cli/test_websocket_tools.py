"""
`inspect`, `diff` and `lint` on cassettes that hold a WebSocket session: a timeline with payloads
summarised, event types and shapes compared, sessions checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from llmcassette import _lint
from llmcassette.cli import cli
from tests.sessions import AUDIO, realtime_session, write_session


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_inspect_shows_a_session_as_a_timeline_with_payloads_summarised(tmp_path: Path) -> None:
    path = write_session(tmp_path / "rt.yaml", realtime_session(deltas=5))
    result = run("inspect", str(path))
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "12 messages (3 from client, 9 from server), 32.7 kB, closed by client: 1000" in text
    lines = text.splitlines()
    first = next(line for line in lines if "session.created" in line)
    assert first.split()[:4] == ["timeline", "80.0", "ms", "server"]
    assert any(line.split()[:4] == ["81.5", "ms", "client", "session.update"] for line in lines)
    # Audio is summarised, never dumped; a run of deltas is cut short, saying how to see it all.
    assert AUDIO[:40] not in text
    assert text.count('"delta": "<base64: 4.8 kB>"') == 2
    assert "… 3 more response.output_audio.delta (19.4 kB) until 134.0 ms; --full shows them" in text
    assert "(text)" in text and "not JSON" in text
    assert "(binary)" in text and "<binary: 4 B>" in text
    assert lines[-1].split() == ["260.0", "ms", "client", "closed", "by", "client:", "1000"]
    full = run("inspect", "--full", str(path)).stdout
    assert full.count("<base64: 4.8 kB>") == 5 and AUDIO[:40] not in full


def test_inspect_json_has_every_message_and_the_close(tmp_path: Path) -> None:
    path = write_session(tmp_path / "rt.yaml", realtime_session(deltas=2))
    document = json.loads(run("inspect", "--json", str(path)).stdout)
    session = document["interactions"][0]["websocket"]
    assert (session["client_messages"], session["server_messages"]) == (3, 6)
    assert [m["event"] for m in session["messages"]][:3] == [
        "session.created",
        "session.update",
        "response.create",
    ]
    audio = session["messages"][4]
    assert (audio["from"], audio["kind"], audio["offset_ms"]) == ("server", "json", 130.0)
    sent = {"type": "response.output_audio.delta", "event_id": "event_a0", "delta": AUDIO}
    assert audio["size"] == len(json.dumps(sent, separators=(",", ":")))
    assert AUDIO not in json.dumps(document)
    assert session["close"] == {"by": "client", "code": 1000, "reason": "", "offset_ms": 260.0}


def test_inspect_says_a_session_was_dropped_or_left_open(tmp_path: Path) -> None:
    dropped = realtime_session(close={"code": None, "reason": None, "by": "none", "offset_ms": 255.0})
    assert (
        "dropped without a close frame"
        in run("inspect", str(write_session(tmp_path / "a.yaml", dropped))).stdout
    )
    session = realtime_session()
    session["close"] = None
    assert "still open when saved" in run("inspect", str(write_session(tmp_path / "b.yaml", session))).stdout


def test_diff_of_two_recordings_of_a_session_compares_event_types_and_shapes(tmp_path: Path) -> None:
    a = write_session(tmp_path / "a.yaml", realtime_session(deltas=5))
    same = write_session(tmp_path / "same.yaml", realtime_session(deltas=9))  # more deltas: same shape
    assert run("diff", str(a), str(same)).exit_code == 0
    changed = realtime_session(
        extra_field=True, close={"code": None, "reason": None, "by": "none", "offset_ms": 255.0}
    )
    changed["messages"] = [
        m for m in changed["messages"] if m.get("json", {}).get("type") != "response.output_text.delta"
    ]
    b = write_session(tmp_path / "b.yaml", changed)
    result = run("diff", str(a), str(b))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert (
        "- event type 'server response.output_text.delta' vanished in interaction 0 (GET /v1/realtime)"
        in lines
    )
    where = "interaction 0 (GET /v1/realtime)"
    assert f"+ field response.usage (object) appeared in 'server response.done' events of {where}" in lines
    assert f"~ stream end changed closed by client: 1000 -> dropped without a close frame in {where}" in lines


def test_lint_finds_an_unclosed_session_a_late_message_a_key_and_a_huge_payload(tmp_path: Path) -> None:
    session = realtime_session()
    session["close"] = None
    huge = "A" * (1024 * 1024 + 8)
    session["messages"].append(
        {"from": "client", "offset_ms": 300.0, "json": {"type": "input_audio_buffer.append", "audio": huge}}
    )
    session["messages"].append(
        {
            "from": "client",
            "offset_ms": 301.0,
            "json": {"type": "session.update", "key": "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"},
        }
    )
    headers = {
        "Upgrade": ["websocket"],
        "Sec-WebSocket-Protocol": [
            "realtime, openai-insecure-api-key.sk-proj-abcdefghijklmnopqrstuvwxyz0123"
        ],
    }
    path = write_session(tmp_path / "rt.yaml", session, headers=headers)
    result = run("lint", "--json", str(path))
    assert result.exit_code == 1, result.output
    found = {(f["rule"], f["field"]) for f in json.loads(result.stdout)["findings"]}
    assert found == {
        ("unclosed-session", "websocket.close"),
        ("large-payload", "websocket.messages[12]"),
        ("secret", "websocket.messages[13].json"),
        ("secret", "request.headers.Sec-WebSocket-Protocol"),
    }


def test_lint_finds_a_close_before_the_last_message_and_a_session_too_large_in_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limit scaled down (it is 16 MiB): each message is below the per-message limit.
    monkeypatch.setattr(_lint, "MAX_SESSION_BYTES", 30_000)
    session = realtime_session(close={"code": 1000, "reason": "", "by": "server", "offset_ms": 100.0})
    path = write_session(tmp_path / "rt.yaml", session)
    findings = json.loads(run("lint", "--json", str(path)).stdout)["findings"]
    assert {(f["rule"], f["field"]) for f in findings} == {
        ("session-order", "websocket.close.offset_ms"),
        ("large-payload", "websocket.messages"),
    }
    clean = write_session(tmp_path / "clean.yaml", realtime_session(deltas=2))
    assert run("lint", str(clean)).exit_code == 0
