"""
The journal of a record session: what is recorded is written down at once, and a session killed
before it saves (SIGKILL) leaves nothing behind that the next one does not recover.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import llmcassette
from llmcassette import CassetteFormatError, load_cassette
from llmcassette._eventstream import encode_frame
from llmcassette._models import CassetteDocument, Interaction
from llmcassette._storage import save_cassette
from llmcassette.proxy import Recorder, RouteTable, _journal
from llmcassette.proxy._journal import Journal, journal_path, recover
from tests.servers import serve, stream_app


@pytest.fixture(scope="module")
def upstream() -> str:
    with serve(stream_app()) as base:
        yield base  # type: ignore[misc]


def record_some(path: Path, upstream: str) -> list[bytes]:
    """Record a JSON answer, an SSE stream and a binary body through a Recorder; their bodies."""
    logged: list[str] = []
    with Recorder(path, routes=RouteTable(upstream=upstream), log=logged.append) as url:
        with httpx.Client(base_url=url) as client:
            bodies = [
                client.post("/json", json={"q": 1}).content,
                client.get("/sse", params={"n": 3}).content,
                client.get("/gzip").content,
            ]
    return bodies


@pytest.fixture(scope="module")
def recorded(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> list[Interaction]:
    """A JSON answer, an SSE stream and a (gzip-decoded) body, as a Recorder stored them."""
    path = tmp_path_factory.mktemp("journal") / "source.yaml"
    record_some(path, upstream)
    return load_cassette(path).interactions


def test_each_interaction_is_journaled_as_it_is_recorded_and_the_journal_goes_on_a_clean_stop(
    tmp_path: Path, upstream: str
) -> None:
    path = tmp_path / "run.yaml"
    recorder = Recorder(path, routes=RouteTable(upstream=upstream))
    url = recorder.start()
    try:
        with httpx.Client(base_url=url) as client:
            client.post("/json", json={"q": 1})
            client.get("/sse", params={"n": 3})
        deadline = time.monotonic() + 5
        while len(journal_path(path).read_bytes().splitlines()) < 2:
            assert time.monotonic() < deadline, "the journal did not get both interactions"
            time.sleep(0.01)
        assert not path.exists()  # saved only when the session stops
    finally:
        recorder.stop()
    assert len(load_cassette(path).interactions) == 2
    assert not journal_path(path).exists()


def test_a_journal_recovers_every_interaction_as_recorded(
    tmp_path: Path, recorded: list[Interaction]
) -> None:
    expected = recorded
    # The same interactions, journaled by a session that never saved.
    lost = tmp_path / "lost.yaml"
    journal = Journal(lost)
    for interaction in expected:
        journal.append(interaction)
    journal.close()
    recovery = recover(lost)
    assert recovery is not None and recovery.recovered == 3 and not recovery.cut_off
    assert [i.model_dump() for i in load_cassette(lost).interactions] == [i.model_dump() for i in expected]
    assert not journal_path(lost).exists()
    assert recover(lost) is None  # nothing left to recover


def test_a_journal_recovers_a_connection_that_failed_before_any_answer(tmp_path: Path) -> None:
    hung_up = Interaction.model_validate(
        {
            "request": {"method": "POST", "uri": "http://127.0.0.1:9/v1/chat/completions", "body": "{}"},
            "response": {"stream": {"end": "error", "error": {"type": "ReadError", "message": "reset"}}},
        }
    )
    lost = tmp_path / "lost.yaml"
    journal = Journal(lost)
    journal.append(hung_up)
    journal.close()
    recovery = recover(lost)
    assert recovery is not None and recovery.recovered == 1
    (loaded,) = load_cassette(lost).interactions
    assert loaded.model_dump() == hung_up.model_dump()


def test_recovered_interactions_come_after_those_the_cassette_holds(tmp_path: Path, upstream: str) -> None:
    path = tmp_path / "run.yaml"
    record_some(path, upstream)
    held = load_cassette(path).interactions
    journal = Journal(path)
    journal.append(held[0])
    journal.close()
    recovery = recover(path)
    assert recovery is not None and recovery.recovered == 1
    assert [i.request.uri for i in load_cassette(path).interactions] == [
        *(i.request.uri for i in held),
        held[0].request.uri,
    ]


def test_an_entry_cut_off_by_the_kill_is_dropped_and_said_so(
    tmp_path: Path, recorded: list[Interaction]
) -> None:
    path = tmp_path / "run.yaml"
    source = recorded
    journal = Journal(path)
    journal.append(source[0])
    journal.append(source[1])
    journal.close()
    whole = journal_path(path).read_bytes()
    journal_path(path).write_bytes(whole[: len(whole) - 40])  # the second line, half written
    recovery = recover(path)
    assert recovery is not None and (recovery.recovered, recovery.cut_off) == (1, True)
    assert "its last one was being written when the session was killed, and is lost" in recovery.describe(
        path
    )
    assert [i.model_dump() for i in load_cassette(path).interactions] == [source[0].model_dump()]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        pytest.param('{"interactions": [{"request": 5', "Expecting ", id="broken-json"),
        pytest.param('{"interactions": [{"request": 5}]}', "field `request`: ", id="not-a-request"),
        pytest.param('{"request": 1}', "it is JSON, but not a journal entry", id="json-not-an-entry"),
        pytest.param('{"interactions": []}', "it is JSON, but not a journal entry", id="no-interaction"),
        pytest.param("[1, 2]", "it is JSON, but not a journal entry", id="a-list"),
        pytest.param("null", "it is JSON, but not a journal entry", id="null"),
    ],
)
def test_a_damaged_journal_is_a_clear_error_and_changes_nothing(
    tmp_path: Path, recorded: list[Interaction], line: str, problem: str
) -> None:
    path = tmp_path / "run.yaml"
    save_cassette(path, CassetteDocument())
    before = path.read_bytes()
    journal = Journal(path)
    journal.append(recorded[0])
    journal.close()
    with journal_path(path).open("a") as handle:
        handle.write(line + "\n")
    journaled = journal_path(path).read_bytes()
    with pytest.raises(CassetteFormatError) as caught:
        recover(path)
    message = str(caught.value)
    assert message.startswith(f"llmcassette: the journal {str(journal_path(path))!r} of an unfinished record")
    assert f"at line 2: {problem}" in message, message
    assert "delete the journal to discard what it holds" in message
    assert path.read_bytes() == before and journal_path(path).read_bytes() == journaled


def test_a_record_session_killed_outright_loses_nothing(tmp_path: Path, upstream: str) -> None:
    path = tmp_path / "run.yaml"
    command = [sys.executable, "-m", "llmcassette", "record", "-o", str(path), "--upstream", upstream]
    process = subprocess.Popen(
        [*command, "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        url = line[line.index("http://") :].split()[0]
        with httpx.Client(base_url=url, timeout=10) as client:
            answers = [client.post("/json", json={"q": 1}).json(), client.get("/sse", params={"n": 2}).text]
        deadline = time.monotonic() + 5
        while not journal_path(path).exists() or len(journal_path(path).read_bytes().splitlines()) < 2:
            assert time.monotonic() < deadline, "the journal did not get both interactions"
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
    assert not path.exists()  # killed: it never saved
    # The next session on the cassette picks the journal up first, and says so.
    result = subprocess.run(
        [*command, "--port", "0", "--", sys.executable, "-c", "pass"], stderr=subprocess.PIPE, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"llmcassette: an earlier record session on {str(path)!r} ended without saving; 2 interactions "
        f"from its journal {str(journal_path(path))!r} are now in the cassette.\n"
    ) in result.stderr
    # One story: the file holds them, and the stop line does not say otherwise.
    assert result.stderr.endswith(
        f"llmcassette record: nothing new was recorded; {path} keeps the 2 interactions recovered "
        "from the journal.\n"
    ), result.stderr
    assert not journal_path(path).exists()
    # And the cassette replays what the killed session recorded.
    with llmcassette.use_cassette(path), httpx.Client(base_url=upstream) as client:
        assert client.post("/json", json={"q": 1}).json() == answers[0]
        assert client.get("/sse", params={"n": 2}).text == answers[1]


def test_a_live_sessions_journal_is_left_alone(tmp_path: Path, recorded: list[Interaction]) -> None:
    interaction = recorded[0]
    path = tmp_path / "run.yaml"
    live = Journal(path)
    live.append(interaction)
    try:
        # Another session starting on the cassette must not take a journal still being written.
        assert recover(path) is None
        assert journal_path(path).exists() and not path.exists()
        # Nor may it write into it, nor delete it when it stops.
        other = Journal(path)
        with pytest.raises(OSError, match="another record session on the same cassette is writing it"):
            other.append(interaction)
        other.append(interaction)  # said once; after that, kept out quietly
        other.discard()
        assert journal_path(path).exists()
        assert len(journal_path(path).read_bytes().splitlines()) == 1
    finally:
        live.close()
    recovery = recover(path)
    assert recovery is not None and recovery.recovered == 1


def test_nothing_is_journaled_after_the_session_saved(tmp_path: Path, recorded: list[Interaction]) -> None:
    interaction = recorded[0]
    path = tmp_path / "run.yaml"
    journal = Journal(path)
    journal.append(interaction)
    journal.discard()
    journal.append(interaction)  # a stream the save already closed and kept
    assert not journal_path(path).exists()


def test_a_journal_write_that_fails_is_reported_once_at_once_and_recording_goes_on(
    tmp_path: Path, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.yaml"
    real_write = _journal._write
    writes: list[int] = []

    def disk_fills_up(fd: int, data: bytes) -> None:
        writes.append(len(data))
        if len(writes) == 1:
            real_write(fd, data)
            return
        real_write(fd, data[: len(data) // 2])  # the disk takes half a line, then refuses the rest
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_journal, "_write", disk_fills_up)
    warned: list[str] = []
    recorder = Recorder(path, routes=RouteTable(upstream=upstream), warn=warned.append)
    url = recorder.start()
    try:
        with httpx.Client(base_url=url) as client:
            assert client.post("/json", json={"q": 1}).status_code == 200
            assert client.post("/json", json={"q": 2}).status_code == 200
            deadline = time.monotonic() + 5
            while not warned:  # said while the session runs, not when it stops
                assert time.monotonic() < deadline, "the failed write was not reported"
                time.sleep(0.01)
            assert client.post("/json", json={"q": 3}).status_code == 200
            assert client.get("/sse", params={"n": 3}).status_code == 200
        # The journal holds the entry written whole, and not the half of the next one.
        (line,) = journal_path(path).read_bytes().splitlines(keepends=True)
        assert line.endswith(b"\n") and len(json.loads(line)["interactions"]) == 1
    finally:
        recorder.stop()
    assert warned == [
        f"llmcassette: cannot write the journal {str(journal_path(path))!r} (No space left on device). "
        "Recording goes on: what is recorded is kept in memory and saved when record stops, but a "
        "session killed before then loses what the journal does not hold."
    ]
    assert len(writes) == 2  # after the failure, the journal takes nothing more
    assert len(load_cassette(path).interactions) == 4
    assert not journal_path(path).exists()


def test_a_cassette_in_a_folder_still_to_be_made_is_journaled_from_the_first_interaction(
    tmp_path: Path, upstream: str
) -> None:
    path = tmp_path / "new" / "deeper" / "run.yaml"
    warned: list[str] = []
    recorder = Recorder(path, routes=RouteTable(upstream=upstream), warn=warned.append)
    url = recorder.start()
    try:
        with httpx.Client(base_url=url) as client:
            assert client.post("/json", json={"q": 1}).status_code == 200
        deadline = time.monotonic() + 5
        while not journal_path(path).exists() or not journal_path(path).read_bytes().endswith(b"\n"):
            assert time.monotonic() < deadline and not warned, warned
            time.sleep(0.01)
    finally:
        recorder.stop()
    assert warned == []
    assert len(load_cassette(path).interactions) == 1


def test_a_journal_recovers_an_eventstream_stored_as_frames(tmp_path: Path) -> None:
    frames = [encode_frame({":event-type": "messageStart"}, b'{"role":"assistant"}'), b"\x00\x01"]
    bedrock = Interaction.model_validate(
        {
            "request": {
                "method": "POST",
                "uri": "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse-stream",
            },
            "response": {
                "status": {"code": 200},
                "headers": {"content-type": ["application/vnd.amazon.eventstream"]},
                "eventstream": [
                    {"headers": {":event-type": "messageStart"}, "payload": {"role": "assistant"}},
                    {"headers": {":event-type": "blob"}, "binary": frames[1]},
                ],
            },
        }
    )
    lost = tmp_path / "lost.yaml"
    journal = Journal(lost)
    journal.append(bedrock)
    journal.close()
    recovery = recover(lost)
    assert recovery is not None and recovery.recovered == 1
    assert "llmcassette_schema: 2" in lost.read_text()
    (loaded,) = load_cassette(lost).interactions
    assert loaded.model_dump() == bedrock.model_dump()
    assert loaded.response.content.startswith(frames[0])
