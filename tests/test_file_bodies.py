"""
Large bodies played from the cassette file: the recorded bytes and chunks, none of it held whole,
a file changed under the replay refused in words, every body fault as on a body in memory.

The thresholds are lowered for these tests (a file is "large" from 0 bytes, a body from 1000, a
read takes 256 bytes) so that small files exercise the same path as a 200 MB one.
"""

from __future__ import annotations

import os
import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import llmcassette
from llmcassette import _file_bodies
from llmcassette._bodies import store_body
from llmcassette._exchange import Playback
from llmcassette._file_bodies import FileChunks
from llmcassette._lazy import LazyCassette, load_lazy
from llmcassette._models import CassetteDocument
from llmcassette.proxy import CassetteServer

URL = "https://api.example-llm.test/v1/chat/completions"


@pytest.fixture
def from_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file read piece by piece, every body from 1000 bytes played from it, in small reads."""
    monkeypatch.setattr("llmcassette._lazy.MAX_CACHED_FILE_BYTES", 0)
    monkeypatch.setattr("llmcassette._file_bodies.FILE_BODY_MIN_BYTES", 1000)
    monkeypatch.setattr("llmcassette._file_bodies._BLOCK_BYTES", 256)


def sse_body(count: int, *, salt: str = "", crlf: bool = False) -> bytes:
    end = "\r\n" if crlf else "\n"
    events = [f'data: {{"n":{n},"text":"tök {salt} {n} ✓"}}{end}{end}' for n in range(count)]
    return "".join(events).encode()


def cut(body: bytes, seed: int) -> list[bytes]:
    """``body`` in chunks of random lengths, across events and inside UTF-8 characters."""
    rng = random.Random(seed)
    chunks, at = [], 0
    while at < len(body):
        step = rng.randint(1, 700)
        chunks.append(body[at : at + step])
        at += step
    return chunks


def write(path: Path, exchanges: list[tuple[str, list[bytes], str]]) -> Path:
    """A cassette of POST requests (``input`` tells them apart) answered with these chunks."""
    interactions = []
    for name, chunks, content_type in exchanges:
        stored = store_body(b"".join(chunks), content_type=content_type)
        response: dict[str, Any] = {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-type": [content_type], "content-length": ["1"]},
            "stream": {
                "chunks": [len(c) for c in chunks],
                "offsets_ms": [0.1 * n for n in range(len(chunks))],
            },
        }
        if stored.is_parsed:
            response["parsed_body"] = stored.parsed
            if stored.json_format:
                response["json_format"] = stored.json_format
        else:
            response["body"] = {"string": stored.string}
            if stored.line_endings:
                response["body"]["line_endings"] = stored.line_endings
        interactions.append(
            {
                "request": {"method": "POST", "uri": URL, "parsed_body": {"input": name}},
                "response": response,
            }
        )
    llmcassette.save_cassette(path, CassetteDocument.model_validate({"interactions": interactions}))
    return path


def played(tape: LazyCassette, index: int) -> Playback:
    """What interaction ``index`` of ``tape`` plays."""
    playback = tape.compiled(index).playback
    assert playback is not None
    return playback


def play(client: httpx.Client, name: str) -> list[bytes]:
    with client.stream("POST", URL, json={"input": name}) as response:
        assert response.status_code == 200
        return list(response.iter_raw())


# Each form a body can take in the file, and the text that shows the writer chose it.
FORMS: dict[str, tuple[bytes, str, str]] = {
    "sse, |+": (sse_body(60), "text/event-stream", "string: |+\n"),
    "crlf sse": (sse_body(60, crlf=True), "text/event-stream", "line_endings: crlf"),
    "ndjson, |": (
        b"".join(b'{"n": %d, "t": "x y"}\n' % n for n in range(120)),
        "application/x-ndjson",
        "string: |\n",
    ),
    "text, |-": (b"\n".join(b"line %d of it" % n for n in range(150)), "text/plain", "string: |-\n"),
    "leading space, digit": (b"  indented first\n" + sse_body(50), "text/event-stream", "string: |2+\n"),
    "blank lines inside": (b"a\n\n\n" + sse_body(50) + b"\n\n\n", "text/event-stream", "string: |+\n"),
    "binary": (random.Random(3).randbytes(6000), "audio/mpeg", "!!binary |"),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_a_large_body_plays_its_recorded_bytes_and_chunks_from_the_file(
    tmp_path: Path, from_file: None, form: str
) -> None:
    body, content_type, shown = FORMS[form]
    chunks = cut(body, seed=len(body))
    path = write(tmp_path / "big.yaml", [("big", chunks, content_type), ("small", [b"tiny"], "text/plain")])
    assert shown in path.read_text()
    with llmcassette.use_cassette(path, allow_playback_repeats=True) as cassette, httpx.Client() as client:
        assert play(client, "big") == chunks
        assert play(client, "small") == [b"tiny"]
        # The second play reads the file again, and gets the same.
        assert play(client, "big") == chunks
        first = cassette.attempts[0]
        assert first.chunks == chunks
        tape = cassette._tape
        assert isinstance(played(tape, 0).chunks, FileChunks)
        assert not isinstance(played(tape, 1).chunks, FileChunks)
        # Content-Length is the body's, as for a body held in memory.
        assert ("content-length", str(len(body))) in played(tape, 0).headers


def test_a_body_is_not_held_whole_while_it_plays(tmp_path: Path, from_file: None) -> None:
    body = sse_body(20000)  # about 900 KB, read 256 bytes at a time, in 100 chunks
    chunks = [body[at : at + 9000] for at in range(0, len(body), 9000)]
    path = write(tmp_path / "big.yaml", [("big", chunks, "text/event-stream")])
    with llmcassette.use_cassette(path), httpx.Client() as client:
        tracemalloc.start()
        try:
            received = 0
            with client.stream("POST", URL, json={"input": "big"}) as response:
                for chunk in response.iter_raw():
                    received += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert received == len(body)
    # Held whole, the body alone would be 900 KB (and its chunks as many again).
    assert peak < len(body) / 8, peak


def _change_in_place(path: Path, *, keep_size_and_time: bool) -> None:
    info = path.stat()
    data = bytearray(path.read_bytes())
    at = data.index(b"data: ", len(data) // 2)
    data[at : at + 4] = b"DATA"  # still a valid cassette, another body
    if not keep_size_and_time:
        data += b"# edited\n"
    with path.open("r+b") as handle:
        handle.write(bytes(data))
    if keep_size_and_time:
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


@pytest.mark.parametrize("keep_size_and_time", [False, True], ids=["edited", "same size and time"])
def test_a_file_changed_under_a_playing_body_is_refused_in_words(
    tmp_path: Path, from_file: None, keep_size_and_time: bool
) -> None:
    chunks = cut(sse_body(200), seed=2)
    path = write(tmp_path / "big.yaml", [("big", chunks, "text/event-stream")])
    with llmcassette.use_cassette(path), httpx.Client() as client:
        with client.stream("POST", URL, json={"input": "big"}) as response:
            stream = response.iter_raw()
            assert next(stream) == chunks[0]
            _change_in_place(path, keep_size_and_time=keep_size_and_time)
            with pytest.raises(llmcassette.CassetteError) as caught:
                list(stream)
    message = str(caught.value)
    assert message.startswith(
        f"llmcassette: cassette {str(path)!r} changed on disk while the body of interaction 0"
    )
    assert "enter the cassette again" in message


def test_a_file_changed_between_plays_is_refused_before_any_byte(tmp_path: Path, from_file: None) -> None:
    chunks = cut(sse_body(200), seed=2)
    path = write(tmp_path / "big.yaml", [("big", chunks, "text/event-stream")])
    with llmcassette.use_cassette(path, allow_playback_repeats=True), httpx.Client() as client:
        assert play(client, "big") == chunks
        _change_in_place(path, keep_size_and_time=False)
        with pytest.raises(
            llmcassette.CassetteError, match="changed on disk while the body of interaction 0"
        ):
            play(client, "big")


STREAM_FAULTS = [
    "truncate:after=3",
    "disconnect:after=3",
    "malformed_chunk",
    "rechunk:size=7",
    "rechunk:mode=random",
    "error_event",
    "empty_stream",
    "stall",
    "slow:gap_ms=0.001",
]


def _faulted(path: Path, fault: str) -> tuple[list[bytes], str | None]:
    received: list[bytes] = []
    error = None
    timeout = httpx.Timeout(5.0, read=None)  # a stall for ever then ends at once
    with llmcassette.use_cassette(path, faults=[fault]), httpx.Client(timeout=timeout) as client:
        try:
            with client.stream("POST", URL, json={"input": "big"}) as response:
                received.extend(response.iter_raw())
        except httpx.HTTPError as exc:
            error = type(exc).__name__
    return received, error


@pytest.mark.parametrize("fault", STREAM_FAULTS)
def test_each_body_fault_acts_on_a_body_in_the_file_as_on_one_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    chunks = cut(sse_body(80) + b"data: [DONE]\n\n", seed=5)
    path = write(tmp_path / "big.yaml", [("big", chunks, "text/event-stream")])
    in_memory = _faulted(path, fault)
    monkeypatch.setattr("llmcassette._lazy.MAX_CACHED_FILE_BYTES", 0)
    monkeypatch.setattr("llmcassette._file_bodies.FILE_BODY_MIN_BYTES", 1000)
    monkeypatch.setattr("llmcassette._file_bodies._BLOCK_BYTES", 256)
    tape = load_lazy(path)
    assert isinstance(played(tape, 0).chunks, FileChunks)
    tape.close()
    from_file = _faulted(path, fault)
    assert from_file == in_memory
    assert from_file[0] != chunks or from_file[1] is not None or fault.startswith("slow")


def test_paced_and_async_replays_read_the_body_from_the_file(tmp_path: Path, from_file: None) -> None:
    chunks = cut(sse_body(100), seed=6)
    path = write(tmp_path / "big.yaml", [("big", chunks, "text/event-stream")])
    with llmcassette.use_cassette(path, pace=1000.0), httpx.Client() as client:
        assert play(client, "big") == chunks

    async def replay() -> list[bytes]:
        async with (
            httpx.AsyncClient() as client,
            client.stream("POST", URL, json={"input": "big"}) as response,
        ):
            return [chunk async for chunk in response.aiter_raw()]

    import asyncio

    with llmcassette.use_cassette(path):
        assert asyncio.run(replay()) == chunks


def test_forms_that_cannot_stream_are_held_whole_and_play_the_same(tmp_path: Path, from_file: None) -> None:
    records = {"data": [{"id": n, "text": "lorem ipsum " * 4} for n in range(200)]}
    json_body = httpx.Response(200, json=records).content
    lone_cr = b"one\rtwo " * 400  # YAML reads a lone CR as a line break: a quoted string keeps it
    path = write(
        tmp_path / "big.yaml",
        [("json", cut(json_body, seed=7), "application/json"), ("cr", cut(lone_cr, seed=8), "text/plain")],
    )
    with llmcassette.use_cassette(path) as cassette, httpx.Client() as client:
        assert b"".join(play(client, "json")) == json_body
        assert play(client, "cr") == cut(lone_cr, seed=8)
        tape = cassette._tape
        assert type(played(tape, 0).chunks) is tuple
        assert type(played(tape, 1).chunks) is tuple


def test_serve_plays_a_large_body_from_the_file(tmp_path: Path, from_file: None) -> None:
    chunks = cut(sse_body(150), seed=9)
    path = write(tmp_path / "big.yaml", [("big", chunks, "text/event-stream")])
    log: list[str] = []
    server = CassetteServer([path], log=log.append)
    with server as url, httpx.Client() as client:
        with client.stream("POST", f"{url}/v1/chat/completions", json={"input": "big"}) as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == str(len(b"".join(chunks)))
            received = b"".join(response.iter_raw())
        (cassette,) = server.cassettes
        assert isinstance(played(cassette._tape, 0).chunks, FileChunks)
        deadline = time.monotonic() + 5
        while not log and time.monotonic() < deadline:
            time.sleep(0.005)  # the line is written once the exchange has ended
    # A socket may join chunks on the way; the server wrote each as recorded.
    assert received == b"".join(chunks)
    assert f"-> 200, from big.yaml, {len(chunks)} chunks in " in log[0]


def test_chunk_views_read_what_they_name(tmp_path: Path, from_file: None) -> None:
    body = sse_body(40)
    chunks = [body[at : at + 50] for at in range(0, len(body), 50)]
    path = write(tmp_path / "big.yaml", [("big", chunks, "text/event-stream")])
    tape = load_lazy(path)
    view = played(tape, 0).chunks
    assert isinstance(view, FileChunks)
    assert len(view) == len(chunks)
    assert list(view[3:9]) == chunks[3:9]
    assert view[-1] == chunks[-1] and view[5] == chunks[5] and view[6] == chunks[6]
    assert view[2:5][1] == chunks[3]
    assert list(view[::2]) == chunks[::2]
    assert b"".join(view) == b"".join(chunks)
    with pytest.raises(IndexError):
        view[len(chunks)]
    tape.close()


def test_the_threshold_keeps_small_bodies_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llmcassette._lazy.MAX_CACHED_FILE_BYTES", 0)
    chunks = cut(sse_body(60), seed=11)
    path = write(tmp_path / "big.yaml", [("big", chunks, "text/event-stream")])
    assert len(b"".join(chunks)) < _file_bodies.FILE_BODY_MIN_BYTES
    tape = load_lazy(path)
    assert type(played(tape, 0).chunks) is tuple
    tape.close()


def test_the_cassette_inspect_and_lint_see_a_body_in_the_file_whole(tmp_path: Path, from_file: None) -> None:
    from click.testing import CliRunner

    from llmcassette.cli import cli

    body = sse_body(100) + b"data: [DONE]\n\n"
    chunks = cut(body, seed=12)
    path = write(tmp_path / "big.yaml", [("big", chunks, "text/event-stream")])
    with llmcassette.use_cassette(path) as cassette, httpx.Client() as client:
        assert play(client, "big") == chunks
        (interaction,) = cassette.interactions
        assert interaction.response.content == body
    inspected = CliRunner().invoke(cli, ["inspect", str(path)])
    assert inspected.exit_code == 0, inspected.output
    assert f"in {len(chunks)} chunks" in inspected.output
    linted = CliRunner().invoke(cli, ["lint", str(path)])
    assert linted.exit_code == 0, linted.output


@pytest.mark.parametrize("raw", ["\x07ab", "\x80a", "\x85a"], ids=["c0", "c1", "nel"])
def test_a_literal_block_yaml_would_refuse_or_fold_is_read_by_yaml(
    tmp_path: Path, from_file: None, raw: str
) -> None:
    # Written by hand: a character the writer would have escaped, raw in a literal block, in
    # place of one of as many bytes. Played from the file it would go through unnoticed; YAML
    # refuses it (or reads NEL as a line break), and so does the replay: a file with a NEL is
    # read whole by YAML when it is entered (see `_file_pieces.other_line_breaks`).
    body = sse_body(60)
    path = write(tmp_path / "big.yaml", [("big", cut(body, seed=13), "text/event-stream")])
    text = path.read_text()
    assert len(raw.encode()) == len("✓".encode())
    path.write_text(text.replace("✓", raw, 1))
    tape = None
    try:
        tape = load_lazy(path)
        compiled = tape.compiled(0)
    except llmcassette.CassetteError as exc:
        assert "is not valid" in str(exc)
    else:
        assert compiled.playback is not None and type(compiled.playback.chunks) is tuple
    finally:
        if tape is not None:
            tape.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(
        st.sampled_from(["a", "b", " ", "\n", "\t", "é", "✓", "🙂", ":", "#", "-", "|"]),
        max_size=400,
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=40),
    by_emitter=st.booleans(),
)
def test_a_body_read_from_the_file_is_what_yaml_reads(
    tmp_path_factory: pytest.TempPathFactory, text: str, cuts: list[int], by_emitter: bool
) -> None:
    # Whatever the writer made of it (the emitter, or the literal block written a slice at a
    # time), a body played from the file is the body YAML reads, cut where recorded.
    body = ("x" * 60 + "\n" + text).encode()
    chunks, at = [], 0
    for step in cuts * (len(body) // sum(cuts) + 1):
        if at >= len(body):
            break
        chunks.append(body[at : at + step])
        at += step
    path = tmp_path_factory.mktemp("prop") / "big.yaml"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("llmcassette._file_bodies.FILE_BODY_MIN_BYTES", 10**9 if by_emitter else 50)
        write(path, [("big", chunks, "text/plain")])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("llmcassette._lazy.MAX_CACHED_FILE_BYTES", 0)
        patch.setattr("llmcassette._file_bodies.FILE_BODY_MIN_BYTES", 50)
        patch.setattr("llmcassette._file_bodies._BLOCK_BYTES", 64)
        tape = load_lazy(path)
        try:
            got = list(played(tape, 0).chunks)
        finally:
            tape.close()
    assert llmcassette.load_cassette(path).interactions[0].response.content == body
    assert got == chunks


@pytest.mark.parametrize(
    "group",
    ["AA=C", "AAE", "AA C"],
    ids=["padding inside", "length not a multiple of four", "a space inside"],
)
def test_base64_yaml_would_read_otherwise_is_left_to_yaml(
    tmp_path: Path, from_file: None, group: str
) -> None:
    # Edited by hand: YAML reads such base64 otherwise, or refuses it. The replay leaves it to
    # YAML, which says what is wrong, instead of finding the body "changed" as it plays it.
    body = b"\x00\x01\x02" * 3000  # "AAEC" again and again
    path = write(tmp_path / "big.yaml", [("big", cut(body, seed=14), "application/octet-stream")])
    text = path.read_text()
    assert "!!binary |" in text
    path.write_text(text.replace("AAEC", group, 1))
    tape = load_lazy(path)
    try:
        with pytest.raises(llmcassette.CassetteError) as caught:
            list(played(tape, 0).chunks)
    finally:
        tape.close()
    assert "changed on disk" not in str(caught.value)


def test_a_tab_where_libyaml_looks_for_the_indentation_is_refused_as_libyaml_refuses_it(
    tmp_path: Path, from_file: None
) -> None:
    # A first line that starts with a tab, in a block without its indentation digit (as the
    # writer once saved it): libyaml, the loader of the file, refuses it. Played from the file
    # it went through; the replay refuses it as loading the cassette does.
    body = b"\tfirst\n" + sse_body(60)
    path = write(tmp_path / "big.yaml", [("big", cut(body, seed=15), "text/event-stream")])
    text = path.read_text()
    assert "string: |2+\n" in text
    path.write_text(text.replace("string: |2+\n", "string: |+\n", 1))
    with pytest.raises(llmcassette.CassetteError, match="tab character"):
        llmcassette.load_cassette(path)
    tape = load_lazy(path)
    try:
        with pytest.raises(llmcassette.CassetteError, match="tab character"):
            list(played(tape, 0).chunks)
    finally:
        tape.close()


def test_a_line_break_yaml_reads_where_the_block_ends_is_read_by_yaml(
    tmp_path: Path, from_file: None
) -> None:
    # Edited by hand: a lone CR on the line after the block. YAML reads it as one more line break
    # of the block (kept, `|+`), so the body no longer matches its recorded chunks: the replay
    # says so, as it does for a body held whole, and does not play the block without it.
    body = sse_body(60)
    path = write(tmp_path / "big.yaml", [("big", cut(body, seed=16), "text/event-stream")])
    text = path.read_text()
    assert "string: |+\n" in text
    path.write_bytes(text.replace("\n\n    stream:\n", "\n\n   \r#\n    stream:\n", 1).encode())
    assert llmcassette.load_cassette(path).interactions[0].response.content == body + b"\n"
    tape = load_lazy(path)
    try:
        with pytest.raises(llmcassette.CassetteError, match=f"the body has {len(body) + 1}"):
            list(played(tape, 0).chunks)
    finally:
        tape.close()
