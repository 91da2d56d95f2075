"""
`llmcassette demo`: the bundled cassette replays to the example client, offline, in-process and
as a subprocess, and what it prints is what the cassette holds.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from llmcassette import load_cassette
from llmcassette._demo import CASSETTE
from llmcassette._demo.make_cassette import make_cassette
from llmcassette._matrix import STANDARD_FAULTS
from llmcassette.cli import cli

# Replay must not open any socket, loopback included: the cassette was recorded from a server on
# 127.0.0.1, which the suite-wide guard would let through.
_NO_SOCKETS = """
import socket

def _refuse(*args, **kwargs):
    raise OSError("the demo opened a socket")

socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.getaddrinfo = _refuse
"""


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("the demo opened a socket")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def expected(path: Path = CASSETTE) -> dict[str, Any]:
    """What the client must have got, read from the cassette itself (not from the client's code)."""
    first, second = load_cassette(path).interactions
    text, arguments, usage, finish = [], [], None, None
    call_id = name = None
    for line in first.response.content.decode().splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[len("data: ") :])
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            delta = choice["delta"]
            text.append(delta.get("content") or "")
            for call in delta.get("tool_calls", []):
                call_id = call.get("id", call_id)
                name = call.get("function", {}).get("name", name)
                arguments.append(call["function"].get("arguments", ""))
            finish = choice["finish_reason"] or finish
    reply = second.response.parsed_body
    return {
        "text": "".join(text),
        "call": f"{name}({''.join(arguments)})  id {call_id}",
        "usage": usage,
        "finish": finish,
        "chunks": first.response.stream.chunks,
        "offsets_ms": first.response.stream.offsets_ms,
        "reply": reply["choices"][0]["message"]["content"],
        "reply_usage": reply["usage"],
        "reply_finish": reply["choices"][0]["finish_reason"],
    }


def assert_report(output: str, want: dict[str, Any]) -> None:
    lines = [line.strip() for line in output.splitlines()]
    usage, reply_usage = want["usage"], want["reply_usage"]
    assert f"text       {want['text']}" in lines
    assert f"tool call  {want['call']}" in lines
    assert f"finish     {want['finish']}" in lines
    assert (
        f"usage      {usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion"
        f" = {usage['total_tokens']} tokens"
    ) in lines
    assert (
        f"chunks     {len(want['chunks'])}, as recorded (bytes): {' '.join(map(str, want['chunks']))}"
        in lines
    )
    assert f"text       {want['reply']}" in lines
    assert f"finish     {want['reply_finish']}" in lines
    assert f"usage      {reply_usage['prompt_tokens']} prompt" in output
    assert "2 requests, 2 answered from the cassette, 0 sent to the network." in lines


@pytest.mark.usefixtures("no_sockets")
def test_demo_prints_what_the_cassette_holds() -> None:
    result = CliRunner().invoke(cli, ["demo", "--replay"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert_report(result.stdout, expected())
    assert "pace 'instant'" in result.stdout
    assert "recorded   head at" not in result.stdout


@pytest.mark.usefixtures("no_sockets")
def test_demo_at_a_pace_shows_the_recorded_timing() -> None:
    want = expected()
    # Eight times the recorded speed: the timing is still real, the test stays quick.
    result = CliRunner().invoke(cli, ["demo", "--replay", "--pace", "8"])
    assert result.exit_code == 0, result.output
    offsets = " ".join(f"{offset:.0f}" for offset in want["offsets_ms"])
    assert f"chunks at {offsets} ms" in result.stdout
    assert "at pace '8x'" in result.stdout


def test_demo_runs_as_a_module_without_sockets(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(_NO_SOCKETS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "llmcassette", "demo", "--replay"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert_report(done.stdout, expected())


def _edited(tmp_path: Path, edit: Any) -> Path:
    data = yaml.safe_load(CASSETTE.read_text())
    edit(data["interactions"])
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, explicit_end=True))
    return path


def test_an_edited_cassette_changes_what_the_client_gets(tmp_path: Path) -> None:
    def edit(interactions: list[Any]) -> None:
        message = interactions[1]["response"]["parsed_body"]["choices"][0]["message"]
        message["content"] = "Sunny and 25 degrees, says the edited cassette."

    path = _edited(tmp_path, edit)
    result = CliRunner().invoke(cli, ["demo", "--cassette", str(path)])
    assert result.exit_code == 0, result.output
    assert_report(result.stdout, expected(path))
    assert "Sunny and 25 degrees, says the edited cassette." in result.stdout


def test_an_edited_stream_without_boundaries_replays_one_chunk_per_event(tmp_path: Path) -> None:
    # The streamed text goes back to the server in the next request, so edit the usage instead.
    def edit(interactions: list[Any]) -> None:
        response = interactions[0]["response"]
        response["body"]["string"] = response["body"]["string"].replace(
            '"prompt_tokens":87', '"prompt_tokens":870'
        )
        del response["stream"]

    path = _edited(tmp_path, edit)
    result = CliRunner().invoke(cli, ["demo", "--cassette", str(path)])
    assert result.exit_code == 0, result.output
    assert "usage      870 prompt + 28 completion" in result.stdout
    assert "chunks     15, one per event (the cassette kept no boundaries)" in result.stdout


def test_make_cassette_reproduces_the_bundled_cassette(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "chat.yaml"
    make_cassette(path, base_url=f"http://127.0.0.1:{port}/v1")
    fresh, bundled = load_cassette(path).interactions, load_cassette(CASSETTE).interactions
    assert len(fresh) == len(bundled) == 2
    for new, old in zip(fresh, bundled, strict=True):
        assert new.request.content == old.request.content
        assert new.response.content == old.response.content
        assert new.response.status == old.response.status
    # Chunking depends on socket timing; the bytes and their total must not.
    stream = fresh[0].response.stream
    assert stream is not None and stream.chunks is not None
    assert sum(stream.chunks) == len(fresh[0].response.content)


def _fault_lines(output: str) -> dict[str, str]:
    lines = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[0] in ("ok", "BUG") and parts[1] in STANDARD_FAULTS:
            lines[parts[1]] = line
    return lines


def test_the_full_loop_records_replays_serves_and_breaks_the_client(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--keep", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    upstream = re.search(r"upstream   (http://127\.0\.0\.1:\d+)", out)
    proxy = re.search(r"proxy      (http://127\.0\.0\.1:\d+)", out)
    assert upstream is not None and proxy is not None
    # Recorded through the proxy, stored with the upstream's URL and the key scrubbed.
    interactions = load_cassette(tmp_path / "chat.yaml").interactions
    assert [i.request.uri for i in interactions] == [f"{upstream[1]}/v1/chat/completions"] * 2
    assert all(i.request.headers["authorization"] == ["Bearer REDACTED"] for i in interactions)
    stream = interactions[0].response.stream
    assert stream is not None and stream.chunks is not None and len(stream.chunks) > 1
    # The same answers in-process and through serve, which logged one line per request.
    assert out.count("result     the same answers as the live run") == 1
    assert out.count("replies, the same answers as the live run") == 1
    assert out.count("log        POST /v1/chat/completions -> 200") == 2
    assert_report(out, expected(tmp_path / "chat.yaml"))
    # One line per standard fault, and the summary counts them.
    faults = _fault_lines(out)
    assert sorted(faults) == sorted(STANDARD_FAULTS)
    handled = sum(1 for line in faults.values() if line.split()[0] == "ok")
    assert f"{handled} of {len(STANDARD_FAULTS)} faults handled well." in out
    # What the client did follows from its code: a 401 fails it (rightly), re-chunking does not,
    # and it has no retry, so a 429 fails it too.
    assert faults["unauthorized"].split()[:3] == ["ok", "unauthorized", "failed"]
    assert "server returned 401" in faults["unauthorized"]
    assert faults["rechunk_1_byte"].split()[:3] == ["ok", "rechunk_1_byte", "survived;"]
    assert faults["rate_limit"].split()[:3] == ["BUG", "rate_limit", "failed"]
    assert "server returned 429" in faults["rate_limit"]


def test_the_demo_runs_as_the_readme_says() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmcassette", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "4. The standard fault set" in done.stdout
    assert len(_fault_lines(done.stdout)) == len(STANDARD_FAULTS)
