"""
The engine against a real local server, for httpx and httpx2, sync and async: record modes,
replay order, matching (scrubbed secrets, ignored fields, what a miss says), decoded gzip,
invalid cassettes, and writes that are atomic and happen only when the mode says so.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import given, strategies as st

import llmcassette
from llmcassette import CassetteFormatError, ConfigError, NoMatchingInteraction, RecordMode
from llmcassette._lazy import LazyCassette, RecordedAnswer
from tests.servers import Client, serve, sse_events, stream_app


def chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


class FileState:
    """A file's bytes and identity: a rewrite, even with the same bytes, changes its inode or mtime."""

    def __init__(self, path: Path) -> None:
        stat = path.stat()
        self.data = path.read_bytes()
        self.key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def unchanged(self, path: Path) -> bool:
        stat = path.stat()
        return path.read_bytes() == self.data and (stat.st_ino, stat.st_mtime_ns, stat.st_size) == self.key


def stored_requests(path: Path) -> list[tuple[str, str, Any]]:
    """(method, uri, body) of each stored interaction, in file order."""
    document = llmcassette.load_cassette(path)
    return [(i.request.method, i.request.uri, i.request.parsed_body) for i in document.interactions]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def record(client: Client, path: Path, *requests: tuple[str, str, Any]) -> None:
    with llmcassette.use_cassette(path, record_mode="once") as cassette:
        for method, url, body in requests:
            await client.send(method, url, json=body)
    assert len(cassette.new_interactions) == len(requests)


# -- record modes ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_mode_none_without_file_misses_and_writes_nothing(
    client: Client, upstream: str, tmp_path: Path
) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(NoMatchingInteraction) as info:
        with llmcassette.use_cassette(path) as cassette:
            await client.send("POST", f"{upstream}/json", json=chat("hi"))
    message = str(info.value)
    assert message == (
        f"llmcassette: cassette file {str(path)!r} does not exist, and record mode 'none' does not "
        f"record, so POST {upstream}/json cannot be answered. Record it by running once with "
        "record_mode='once' (pytest: --record-mode=once)."
    )
    assert (info.value.method, info.value.url) == ("POST", f"{upstream}/json")
    assert cassette.existed is False and cassette.record_mode is RecordMode.NONE
    assert cassette.misses == [info.value]
    assert cassette.attempts[0].error == "no matching interaction"
    assert files_in(tmp_path) == []


@pytest.mark.anyio
async def test_mode_once_records_then_replays_without_the_network(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "once.yaml"
    with serve(stream_app()) as base:
        with llmcassette.use_cassette(path, record_mode="once") as recording:
            live_json = await client.send("POST", f"{base}/json", json=chat("hi"))
            live_sse = await client.stream("GET", f"{base}/sse?n=2&gap_ms=10")
    assert recording.existed is False
    assert [a.recorded for a in recording.attempts] == [True, True]
    assert files_in(tmp_path) == ["once.yaml"]  # no temporary file left behind

    # The server is gone: anything that reached the network now would fail.
    with pytest.raises(client.lib.ConnectError):
        await client.send("GET", f"{base}/json")
    before = FileState(path)
    with llmcassette.use_cassette(path, record_mode="once") as replaying:
        replayed_json = await client.send("POST", f"{base}/json", json=chat("hi"))
        replayed_sse = await client.stream("GET", f"{base}/sse?n=2&gap_ms=10")
    assert replayed_json.body == live_json.body
    assert replayed_sse.chunks == live_sse.chunks == sse_events(2)
    assert replaying.existed is True
    assert [(a.interaction, a.recorded) for a in replaying.attempts] == [(0, False), (1, False)]
    assert replaying.play_counts == [1, 1] and replaying.all_played
    assert before.unchanged(path)


@pytest.mark.anyio
async def test_mode_once_never_rewrites_an_existing_file(
    client: Client, upstream: str, tmp_path: Path
) -> None:
    path = tmp_path / "once.yaml"
    await record(client, path, ("POST", f"{upstream}/json", chat("hi")))
    before = FileState(path)
    with pytest.raises(NoMatchingInteraction) as info:
        with llmcassette.use_cassette(path, record_mode="once") as cassette:
            replayed = await client.send("POST", f"{upstream}/json", json=chat("hi"))
            assert replayed.status == 200
            await client.send("POST", f"{upstream}/json", json=chat("something new"))
    assert str(info.value).startswith(
        f"llmcassette: no recorded interaction matches POST {upstream}/json in cassette "
        f"{str(path)!r} (record mode 'once')."
    )
    assert [a.recorded for a in cassette.attempts] == [False, False]
    assert before.unchanged(path)
    assert files_in(tmp_path) == ["once.yaml"]


@pytest.mark.anyio
async def test_mode_new_episodes_replays_matches_and_appends_the_rest(
    client: Client, upstream: str, tmp_path: Path
) -> None:
    path = tmp_path / "episodes.yaml"
    await record(client, path, ("POST", f"{upstream}/json", chat("old")))
    with llmcassette.use_cassette(path, record_mode="new_episodes") as cassette:
        await client.send("POST", f"{upstream}/json", json=chat("old"))
        await client.send("POST", f"{upstream}/json", json=chat("new"))
    assert [(a.interaction, a.recorded) for a in cassette.attempts] == [(0, False), (None, True)]
    assert len(cassette.new_interactions) == 1 and len(cassette.interactions) == 2
    assert stored_requests(path) == [
        ("POST", f"{upstream}/json", chat("old")),
        ("POST", f"{upstream}/json", chat("new")),
    ]
    assert files_in(tmp_path) == ["episodes.yaml"]
    with llmcassette.use_cassette(path) as cassette:
        await client.send("POST", f"{upstream}/json", json=chat("new"))
        await client.send("POST", f"{upstream}/json", json=chat("old"))
    assert [a.interaction for a in cassette.attempts] == [1, 0]


@pytest.mark.anyio
async def test_requests_recorded_in_a_session_are_not_replayed_in_it(
    client: Client, upstream: str, tmp_path: Path
) -> None:
    # A retry while recording reaches the upstream, as it would without llmcassette.
    path = tmp_path / "retry.yaml"
    url = f"{upstream}/flaky?counter=episodes-{client}&fail=1"
    with llmcassette.use_cassette(path, record_mode="new_episodes") as cassette:
        first = await client.send("GET", url)
        second = await client.send("GET", url)
    assert (first.status, second.status) == (429, 200)
    assert [a.recorded for a in cassette.attempts] == [True, True]
    assert [i.response.status.code for i in llmcassette.load_cassette(path).interactions] == [429, 200]


@pytest.mark.anyio
async def test_mode_all_records_everything_and_keeps_old_interactions(
    client: Client, upstream: str, tmp_path: Path
) -> None:
    path = tmp_path / "all.yaml"
    await record(client, path, ("POST", f"{upstream}/json", chat("old")))
    with llmcassette.use_cassette(path, record_mode="all") as cassette:
        await client.send("POST", f"{upstream}/json", json=chat("old"))
        await client.send("POST", f"{upstream}/json", json=chat("new"))
    assert [a.recorded for a in cassette.attempts] == [True, True]
    assert cassette.play_counts == [0]
    assert [body for _, _, body in stored_requests(path)] == [chat("old"), chat("old"), chat("new")]
    assert files_in(tmp_path) == ["all.yaml"]


@pytest.mark.anyio
async def test_mode_rewrite_discards_old_interactions(client: Client, upstream: str, tmp_path: Path) -> None:
    path = tmp_path / "rewrite.yaml"
    await record(
        client, path, ("POST", f"{upstream}/json", chat("a")), ("POST", f"{upstream}/json", chat("b"))
    )
    with llmcassette.use_cassette(path, record_mode="rewrite") as cassette:
        await client.send("POST", f"{upstream}/json", json=chat("a"))
    assert cassette.existed is True
    assert [a.recorded for a in cassette.attempts] == [True]
    assert [body for _, _, body in stored_requests(path)] == [chat("a")]
    assert files_in(tmp_path) == ["rewrite.yaml"]


@pytest.mark.anyio
async def test_mode_none_never_writes(client: Client, upstream: str, tmp_path: Path) -> None:
    path = tmp_path / "none.yaml"
    await record(client, path, ("POST", f"{upstream}/json", chat("hi")))
    before = FileState(path)
    with pytest.raises(NoMatchingInteraction):
        with llmcassette.use_cassette(path) as cassette:
            await client.send("POST", f"{upstream}/json", json=chat("hi"))
            try:
                await client.send("POST", f"{upstream}/json", json=chat("missing"))
            except NoMatchingInteraction:
                pass
    assert not cassette.writes
    assert before.unchanged(path)
    assert files_in(tmp_path) == ["none.yaml"]


# -- replay order -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_identical_requests_replay_in_recorded_order_each_once(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "retry.yaml"
    with serve(stream_app()) as base:
        url = f"{base}/flaky?counter=k&fail=1"
        with llmcassette.use_cassette(path, record_mode="once"):
            recorded = [(await client.send("GET", url)).status for _ in range(2)]
    assert recorded == [429, 200]

    with pytest.raises(NoMatchingInteraction) as info:
        with llmcassette.use_cassette(path) as cassette:
            first = await client.send("GET", url)
            second = await client.send("GET", url)
            assert (first.status, second.status) == (429, 200)
            assert (first.reason, second.reason) == ("Too Many Requests", "OK")
            assert first.body.startswith(b'{"error":{"type":"rate_limit_error"')
            await client.send("GET", url)
    assert cassette.play_counts == [1, 1]
    assert str(info.value) == (
        f"llmcassette: GET {url} matches recorded interaction #0, #1 in cassette {str(path)!r} "
        "(record mode 'none'), but they have already been played: each recorded response plays "
        "once, in order. Record the repeated request with record_mode='new_episodes' (pytest: "
        "--record-mode=new_episodes), or pass allow_playback_repeats=True to replay the last one again."
    )

    with llmcassette.use_cassette(path, allow_playback_repeats=True) as cassette:
        statuses = [(await client.send("GET", url)).status for _ in range(4)]
    assert statuses == [429, 200, 200, 200]
    assert cassette.play_counts == [1, 3]
    assert [a.interaction for a in cassette.attempts] == [0, 1, 1, 1]


@pytest.mark.anyio
async def test_concurrent_streams_record_and_replay_separately(
    client: Client, upstream: str, tmp_path: Path
) -> None:
    path = tmp_path / "concurrent.yaml"
    urls = [f"{upstream}/sse?n=3&gap_ms=15", f"{upstream}/ndjson?n=3&gap_ms=15"]
    with llmcassette.use_cassette(path, record_mode="once") as cassette:
        live = await asyncio.gather(*(client.stream("GET", url) for url in urls))
    assert sorted(i.request.uri for i in cassette.new_interactions) == sorted(urls)
    with llmcassette.use_cassette(path):
        replayed = await asyncio.gather(*(client.stream("GET", url) for url in reversed(urls)))
    assert [r.chunks for r in reversed(replayed)] == [r.chunks for r in live]


# -- matching ---------------------------------------------------------------------------------------

OPENAI_KEY = "sk-proj-" + "A1b2C3d4" * 5
OTHER_OPENAI_KEY = "sk-proj-" + "Z9y8X7w6" * 5
GOOGLE_KEY = "AIza" + "S" * 35


@pytest.mark.anyio
async def test_scrubbed_secrets_are_not_stored_and_still_match(
    client: Client, upstream: str, tmp_path: Path
) -> None:
    path = tmp_path / "secret.yaml"

    def request(key: str, google_key: str) -> Any:
        return client.send(
            "POST",
            f"{upstream}/json?key={google_key}&alt=sse",
            json=chat("hi", api_key=key),
            headers={"Authorization": f"Bearer {key}"},
        )

    with llmcassette.use_cassette(path, record_mode="once") as recording:
        live = await request(OPENAI_KEY, GOOGLE_KEY)
    text = path.read_text()
    assert OPENAI_KEY not in text and GOOGLE_KEY not in text
    assert "Authorization: [Bearer REDACTED]" in text
    assert "key=REDACTED" in text
    # In the request body and in the echoed response.
    assert text.count('"api_key": "REDACTED-openai-key"') == 2
    assert OPENAI_KEY.encode() in live.body  # the client itself saw the real response
    assert "key=REDACTED" in recording.attempts[0].url

    for key, google_key in [(OPENAI_KEY, GOOGLE_KEY), (OTHER_OPENAI_KEY, "AIza" + "T" * 35)]:
        with llmcassette.use_cassette(path) as replaying:
            replayed = await request(key, google_key)
        assert replayed.status == 200
        assert b'"api_key":"REDACTED-openai-key"' in replayed.body
        assert replaying.attempts[0].interaction == 0


@pytest.mark.anyio
async def test_unscrubbed_cassette_keeps_what_was_sent(client: Client, upstream: str, tmp_path: Path) -> None:
    path = tmp_path / "raw.yaml"
    with llmcassette.use_cassette(path, record_mode="once", scrub=False):
        await client.send("POST", f"{upstream}/json", json=chat("hi", api_key=OPENAI_KEY))
    assert OPENAI_KEY in path.read_text()
    with llmcassette.use_cassette(path, scrub=False) as cassette:
        await client.send("POST", f"{upstream}/json", json=chat("hi", api_key=OPENAI_KEY))
    assert cassette.attempts[0].interaction == 0


@pytest.mark.anyio
async def test_ignored_body_fields_do_not_take_part_in_matching(
    client: Client, upstream: str, tmp_path: Path
) -> None:
    path = tmp_path / "ignored.yaml"
    url = f"{upstream}/json"
    recorded = chat("hi", request_id="r-1", metadata={"trace": "t-1", "tier": "a"}, user="u-1")
    recorded["messages"][0]["name"] = "n-1"
    await record(client, path, ("POST", url, recorded))

    # By default, volatile ids such as `user` are left out.
    with llmcassette.use_cassette(path) as cassette:
        await client.send("POST", url, json={**recorded, "user": "u-2"})
    assert cassette.attempts[0].interaction == 0

    changed = chat("hi", request_id="r-2", metadata={"trace": "t-2", "tier": "a"}, user="u-1")
    changed["messages"][0]["name"] = "n-2"
    ignored = ("request_id", "metadata.trace", "messages.*.name")
    with llmcassette.use_cassette(path, ignored_body_fields=ignored) as cassette:
        await client.send("POST", url, json=changed)
    assert cassette.attempts[0].interaction == 0

    with pytest.raises(NoMatchingInteraction) as info:
        with llmcassette.use_cassette(path, ignored_body_fields=ignored):
            await client.send("POST", url, json={**changed, "metadata": {"trace": "t-1", "tier": "b"}})
    assert f'- #0 POST {url}: body differs: `metadata.tier` is "b", recorded "a"' in str(info.value)


@pytest.mark.anyio
async def test_match_on_a_subset_of_the_request(client: Client, upstream: str, tmp_path: Path) -> None:
    path = tmp_path / "subset.yaml"
    await record(client, path, ("POST", f"{upstream}/json?page=1", chat("hi")))
    with llmcassette.use_cassette(path, match_on=("method", "path")) as cassette:
        await client.send("POST", f"{upstream}/json?page=2", json=chat("bye"))
    assert cassette.attempts[0].interaction == 0
    with pytest.raises(NoMatchingInteraction, match="URL differs"):
        with llmcassette.use_cassette(path, match_on=("method", "url")):
            await client.send("POST", f"{upstream}/json?page=2", json=chat("hi"))


@pytest.mark.anyio
async def test_miss_message_lists_closest_candidates_and_the_fix(
    client: Client, upstream: str, tmp_path: Path
) -> None:
    path = tmp_path / "candidates.yaml"
    url = f"{upstream}/json"
    sse_url = f"{upstream}/sse?n=1&gap_ms=0"
    await record(
        client,
        path,
        ("POST", url, {"model": "a", "messages": [{"role": "user", "content": "hi"}]}),
        ("POST", url, {"model": "b", "messages": [{"role": "user", "content": "hi"}]}),
        ("GET", sse_url, None),
    )
    sent = {"model": "a", "messages": [{"role": "user", "content": "bye"}]}
    with pytest.raises(NoMatchingInteraction) as info:
        with llmcassette.use_cassette(path):
            await client.send("POST", url, json=sent)
    lines = str(info.value).splitlines()
    assert lines[:4] == [
        f"llmcassette: no recorded interaction matches POST {url} in cassette {str(path)!r} "
        "(record mode 'none').",
        "Closest recorded candidates:",
        f'- #0 POST {url}: body differs: `messages[0].content` is "bye", recorded "hi"',
        f'- #1 POST {url}: body differs: `messages[0].content` is "bye", recorded "hi"; '
        '`model` is "a", recorded "b"',
    ]
    assert lines[4].startswith(
        f"- #2 GET {sse_url}: method differs: recorded GET; URL differs: recorded {sse_url!r}; body differs"
    )
    assert lines[5:] == [
        "To record it, run with record_mode='new_episodes' (pytest: --record-mode=new_episodes); "
        "to match on fewer request parts, set match_on or ignored_body_fields."
    ]


@pytest.mark.anyio
async def test_miss_in_an_empty_cassette_says_so(client: Client, upstream: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("version: 1\ninteractions: []\n")
    with pytest.raises(NoMatchingInteraction) as info:
        with llmcassette.use_cassette(path):
            await client.send("GET", f"{upstream}/json")
    assert "\nThe cassette holds no interactions.\n" in str(info.value)


# -- stored form ------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("decode", [True, False], ids=["decoded", "kept-compressed"])
async def test_gzip_responses(client: Client, upstream: str, tmp_path: Path, decode: bool) -> None:
    path = tmp_path / "gzip.yaml"
    with llmcassette.use_cassette(path, record_mode="once", decode_compressed=decode):
        live = await client.send("GET", f"{upstream}/gzip")
    assert live.header("content-encoding") == "gzip"
    stored = llmcassette.load_cassette(path).interactions[0].response
    headers = {name.lower(): values for name, values in stored.headers.items()}
    if decode:
        assert "content-encoding" not in headers
        assert stored.parsed_body == {"compressed": True, "words": ["tok"] * 50}
        assert headers["content-length"] == [str(len(live.body))]
    else:
        assert headers["content-encoding"] == ["gzip"]
        assert isinstance(stored.body.string, bytes)  # type: ignore[union-attr]

    with llmcassette.use_cassette(path, decode_compressed=decode):
        replayed = await client.send("GET", f"{upstream}/gzip")
    assert replayed.body == live.body
    assert (replayed.header("content-encoding") == "gzip") is not decode


@pytest.mark.anyio
async def test_replay_keeps_the_recorded_reason_phrase(client: Client, tmp_path: Path) -> None:
    # Anthropic's 529 has no standard phrase; the recorded one is all the client can show.
    path = tmp_path / "overloaded.yaml"
    path.write_text(
        "version: 1\n"
        "interactions:\n"
        "- request: {method: GET, uri: 'http://127.0.0.1:9/v1/messages', body: ''}\n"
        "  response:\n"
        "    status: {code: 529, message: Overloaded}\n"
        "    headers: {content-type: [application/json]}\n"
        '    body: {string: \'{"type":"error"}\'}\n'
    )
    with llmcassette.use_cassette(path):
        replayed = await client.send("GET", "http://127.0.0.1:9/v1/messages")
    assert (replayed.status, replayed.body) == (529, b'{"type":"error"}')
    assert replayed.reason == "Overloaded"


# -- invalid cassettes ----------------------------------------------------------------------------


def _edit(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, explicit_end=True))


@pytest.fixture
def two_interactions(tmp_path: Path) -> Path:
    """A valid cassette of two interactions, written by llmcassette itself."""
    path = tmp_path / "valid.yaml"

    def interaction(text: str) -> llmcassette.Interaction:
        return llmcassette.Interaction.model_validate(
            {
                "request": {"method": "POST", "uri": "http://127.0.0.1:9/v1/chat", "parsed_body": chat(text)},
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {"content-type": ["text/event-stream"]},
                    "body": {"string": "data: 1\n\ndata: 2\n\n"},
                    "stream": {"chunks": [9, 9], "offsets_ms": [1.0, 2.0]},
                },
            }
        )

    document = llmcassette.CassetteDocument(interactions=[interaction("a"), interaction("b")])
    llmcassette.save_cassette(path, document)
    return path


def test_invalid_request_is_reported_on_entry(two_interactions: Path) -> None:
    path = two_interactions
    _edit(path, lambda data: data["interactions"][1]["request"].pop("uri"))
    with pytest.raises(CassetteFormatError) as info:
        with llmcassette.use_cassette(path):
            pass
    assert str(info.value).startswith(
        f"llmcassette: cassette {str(path)!r} is not valid: interaction 1, field `request.uri`: "
        "Field required."
    )
    assert (info.value.path, info.value.interaction, info.value.field) == (path, 1, "request.uri")


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        pytest.param("http://[::1/v1/chat", "Invalid IPv6 URL", id="unclosed-ipv6-bracket"),
        pytest.param("http://127.0.0.1:99999999/v1/chat", "Port out of range 0-65535", id="port-too-big"),
        pytest.param("http://127.0.0.1:nine/v1/chat", "Port could not be cast", id="port-not-a-number"),
    ],
)
def test_an_unparsable_recorded_url_is_reported_on_entry(
    two_interactions: Path, uri: str, reason: str
) -> None:
    # Matching splits every recorded URL: a bad one is the file's error, named when the file loads,
    # before any request, not a ValueError from inside matching.
    path = two_interactions
    _edit(path, lambda data: data["interactions"][1]["request"].update(uri=uri))
    with pytest.raises(CassetteFormatError) as info:
        llmcassette.use_cassette(path).__enter__()
    message = str(info.value)
    assert message.startswith(
        f"llmcassette: cassette {str(path)!r} is not valid: interaction 1, field `request.uri`: "
        f"is not a URL: {reason}"
    )
    assert message.endswith("Fix the file by hand, or delete it and record the cassette again.")
    assert "\n" not in message
    assert (info.value.path, info.value.interaction, info.value.field) == (path, 1, "request.uri")


def test_a_recorded_path_alone_answers_when_matching_leaves_out_scheme_and_host(tmp_path: Path) -> None:
    # A hand-written interaction may give its URL as a path: it is no URL a client sends, but
    # matching on the method and path alone takes it, so the file loads rather than being refused.
    path = tmp_path / "paths.yaml"
    path.write_text(
        "interactions:\n- request:\n    method: GET\n    uri: /v1/models\n"
        "  response:\n    status: {code: 200}\n    body: {string: listed}\nversion: 1\n"
    )
    with llmcassette.use_cassette(path, record_mode="none", match_on=("method", "path")):
        assert httpx.get("http://gateway.test/v1/models").text == "listed"
    with llmcassette.use_cassette(path, record_mode="none") as cassette:
        with cassette.expect_miss(), pytest.raises(NoMatchingInteraction) as info:
            httpx.get("http://gateway.test/v1/models")
    assert "recorded '/v1/models'" in str(info.value)  # (a miss on the URL names the path)


@pytest.mark.parametrize("record_mode", ["none", "all"])
def test_a_request_url_that_does_not_split_is_refused_in_words(
    two_interactions: Path, record_mode: str
) -> None:
    # httpx sends a port past 65535; matching, scrubbing and the file would each trip on it.
    # Each time: the URLs the engine remembers are those it let through.
    for _ in range(2):
        with llmcassette.use_cassette(two_interactions, record_mode=record_mode), httpx.Client() as client:
            with pytest.raises(ConfigError) as info:
                client.get("http://127.0.0.1:99999999/v1/chat?key=sk-secret")
        assert str(info.value) == (
            "llmcassette: cannot match or record a request to 'http://127.0.0.1:99999999/v1/chat': its URL "
            "does not parse (Port out of range 0-65535). Fix the base URL the client is given."
        )


@pytest.mark.anyio
async def test_invalid_response_is_reported_when_played(client: Client, two_interactions: Path) -> None:
    # Responses are parsed on first play: the broken one fails then, naming file, interaction, field.
    path = two_interactions
    _edit(path, lambda data: data["interactions"][1]["response"].pop("status"))
    with llmcassette.use_cassette(path):
        replayed = await client.stream("POST", "http://127.0.0.1:9/v1/chat", json=chat("a"))
    assert replayed.body == b"data: 1\n\ndata: 2\n\n"
    with pytest.raises(CassetteFormatError) as info:
        with llmcassette.use_cassette(path):
            await client.stream("POST", "http://127.0.0.1:9/v1/chat", json=chat("b"))
    assert str(info.value).startswith(
        f"llmcassette: cassette {str(path)!r} is not valid: interaction 1, field `response.status`: "
        "Field required."
    )
    assert (info.value.path, info.value.interaction, info.value.field) == (path, 1, "response.status")


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("version: 1\ninteractions:\n- request: {method: GET\n")
    with pytest.raises(CassetteFormatError) as info:
        with llmcassette.use_cassette(path):
            pass
    assert str(info.value).startswith(f"llmcassette: cassette {str(path)!r} is not valid YAML at line ")


def test_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(CassetteFormatError, match="its top level is a list, not a mapping"):
        llmcassette.use_cassette(path).__enter__()


@pytest.mark.anyio
async def test_chunk_lengths_that_do_not_fit_the_body_are_reported_on_replay(
    client: Client, two_interactions: Path
) -> None:
    path = two_interactions

    def corrupt(data: dict[str, Any]) -> None:
        data["interactions"][0]["response"]["stream"]["chunks"] = [9, 10]

    _edit(path, corrupt)
    with pytest.raises(CassetteFormatError) as info:
        with llmcassette.use_cassette(path):
            await client.stream("POST", "http://127.0.0.1:9/v1/chat", json=chat("a"))
    assert str(info.value).startswith(
        f"llmcassette: cassette {str(path)!r} is not valid: interaction 0, field "
        "`response.stream.chunks`: the chunk lengths add up to 19 bytes but the body has 18."
    )
    assert (info.value.interaction, info.value.field) == (0, "response.stream.chunks")
    # The other interaction is intact and replays.
    with llmcassette.use_cassette(path):
        replayed = await client.stream("POST", "http://127.0.0.1:9/v1/chat", json=chat("b"))
    assert replayed.chunks == [b"data: 1\n\n", b"data: 2\n\n"]


# -- atomic writes ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_failed_write_keeps_the_previous_file(
    client: Client, upstream: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keep.yaml"
    await record(client, path, ("POST", f"{upstream}/json", chat("old")))
    before = FileState(path)

    def refuse(source: Any, target: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(llmcassette.CassetteWriteError, match="disk full"):
        with llmcassette.use_cassette(path, record_mode="new_episodes"):
            await client.send("POST", f"{upstream}/json", json=chat("new"))
    monkeypatch.undo()
    assert before.unchanged(path)
    assert files_in(tmp_path) == ["keep.yaml"]


@pytest.mark.anyio
async def test_written_cassettes_get_ordinary_file_permissions(
    client: Client, upstream: str, tmp_path: Path
) -> None:
    # A new cassette is created like any file (umask applies); one written again keeps its mode.
    path = tmp_path / "deep" / "folder" / "mode.yaml"
    umask = os.umask(0o022)
    try:
        await record(client, path, ("POST", f"{upstream}/json", chat("a")))
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        path.chmod(0o640)
        with llmcassette.use_cassette(path, record_mode="new_episodes"):
            await client.send("POST", f"{upstream}/json", json=chat("b"))
    finally:
        os.umask(umask)
    assert len(stored_requests(path)) == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert files_in(path.parent) == ["mode.yaml"]


@pytest.mark.anyio
async def test_connection_failure_while_recording_stores_nothing(client: Client, tmp_path: Path) -> None:
    with serve(stream_app()) as base:
        pass  # a port that was just closed
    path = tmp_path / "refused.yaml"
    with pytest.raises(client.lib.ConnectError):
        with llmcassette.use_cassette(path, record_mode="once") as cassette:
            await client.send("GET", f"{base}/json")
    assert cassette.attempts[0].recorded is False
    assert (cassette.attempts[0].error or "").startswith("ConnectError: ")
    assert files_in(tmp_path) == []


@pytest.mark.anyio
async def test_a_response_only_file_answers_any_request(client: Client, tmp_path: Path) -> None:
    # A fixture saved without its request (`{status, headers, body}`) answers whatever is asked,
    # once, and only when nothing recorded with a request matches.
    path = tmp_path / "response.json"
    path.write_text(
        '{"status": 200, "headers": {"content-type": "text/event-stream"}, "body": "data: 1\\n\\n"}'
    )
    with pytest.raises(NoMatchingInteraction, match="already been played"):
        with llmcassette.use_cassette(path) as cassette:
            reply = await client.send("POST", "https://api.example.test/v1/anything", json={"q": 1})
            assert (reply.status, reply.body) == (200, b"data: 1\n\n")
            await client.send("GET", "https://api.example.test/other")
    assert [a.interaction for a in cassette.attempts] == [0, None]


def test_concurrent_writers_of_one_cassette_keep_each_others_interactions(tmp_path: Path) -> None:
    # Two workers (pytest-xdist) recording into the same new cassette: both load it empty, both
    # save; the second must add to what the first wrote, not replace it.
    path = tmp_path / "shared.yaml"
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(base: str, name: str) -> None:
        try:
            with llmcassette.use_cassette(path, record_mode="new_episodes"), httpx.Client() as client:
                client.post(f"{base}/json", json={"worker": name}).read()
                barrier.wait(timeout=10)  # both have loaded and recorded before either saves
        except BaseException as exc:  # noqa: B036 - reported by the assertion below
            errors.append(exc)

    with serve(stream_app()) as base:
        threads = [threading.Thread(target=worker, args=(base, name)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
    assert errors == []
    bodies = sorted(i.request.parsed_body["worker"] for i in llmcassette.load_cassette(path).interactions)
    assert bodies == ["a", "b"]
    assert [p.name for p in tmp_path.iterdir()] == ["shared.yaml"]  # no temporary or lock files left


def test_faults_given_with_a_request_fire_on_it_alone_and_before_the_cassettes_own(tmp_path: Path) -> None:
    # The server path selects faults per request (from a header) and hands them to the engine;
    # the cassette's own plan still counts its calls and fires after them.
    from llmcassette._flavors import get_flavor
    from llmcassette.faults import parse_fault

    path = tmp_path / "c.yaml"
    path.write_text(
        '{"interactions": [{"request": {"method": "POST", "uri": "https://api.openai.com/v1/chat/completions",'
        ' "body": "{}"}, "response": {"status": {"code": 200}, "body": {"string": "{\\"ok\\": true}"}}}]}'
    )
    flavor = get_flavor("httpx")
    assert flavor is not None
    cassette = llmcassette.Cassette(path, faults=["server_error:nth=2"], allow_playback_repeats=True)
    rate_limit = parse_fault("rate_limit")

    def request() -> httpx.Request:
        return httpx.Request("POST", "https://api.openai.com/v1/chat/completions", content=b"{}")

    async def unreachable(request: httpx.Request) -> httpx.Response:
        raise AssertionError("replay must not reach the upstream")

    async def async_calls() -> list[int]:
        first = await cassette.handle_async_request(flavor, request(), unreachable, faults=[(rate_limit, 1)])
        second = await cassette.handle_async_request(flavor, request(), unreachable)
        return [first.status_code, second.status_code]

    statuses = asyncio.run(async_calls())
    statuses.append(cassette.handle_request(flavor, request(), unreachable).status_code)
    faulted = cassette.handle_request(flavor, request(), unreachable, faults=[(rate_limit, 7)])
    statuses.append(faulted.status_code)
    # The request's rate_limit answers first call 1 (the plan's server_error counts call 1, which
    # does not fire); call 2 gets the plan's server_error; then the recording; then rate_limit again.
    assert statuses == [429, 500, 200, 429]
    faults = [a.faults for a in cassette.attempts]
    assert faults == [["rate_limit"], ["server_error:nth=2"], [], ["rate_limit"]]
    assert [a.interaction for a in cassette.attempts] == [None, None, 0, None]


PASSWORD = "s3cret-pa55word"


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
@pytest.mark.parametrize("scrub", [True, False])
def test_credentials_in_a_url_never_reach_the_cassette_the_log_or_a_miss(
    tmp_path: Path, library: str, scrub: bool
) -> None:
    http = __import__(library)
    path = tmp_path / "userinfo.yaml"
    with serve(stream_app()) as base:
        secret_base = base.replace("http://", f"http://alice:{PASSWORD}@")
        with llmcassette.use_cassette(path, record_mode="once", scrub=scrub) as cassette:
            with http.Client() as client:
                assert client.post(f"{secret_base}/json", json=chat("hi")).status_code == 200
        assert cassette.attempts[0].url == f"{base}/json"
    stored = path.read_text()
    assert PASSWORD not in stored and "alice" not in stored
    assert yaml.safe_load(stored)["interactions"][0]["request"]["uri"] == f"{base}/json"
    # Replayed offline: the same request, credentials and all, matches the recording without them.
    with pytest.raises(NoMatchingInteraction) as miss:
        with llmcassette.use_cassette(path, scrub=scrub) as replay, http.Client() as client:
            assert client.post(f"{secret_base}/json", json=chat("hi")).json()["echo"] == chat("hi")
            client.post(f"{secret_base}/json", json=chat("other"))
    assert [attempt.url for attempt in replay.attempts] == [f"{base}/json"] * 2
    assert PASSWORD not in str(miss.value) and "alice" not in str(miss.value)
    assert miss.value.url == f"{base}/json"
    assert all(PASSWORD not in attempt.summary() for attempt in replay.attempts)


@pytest.mark.anyio
async def test_credentials_in_a_url_are_left_out_by_the_async_clients_too(tmp_path: Path) -> None:
    import httpx2

    path = tmp_path / "userinfo.yaml"
    with serve(stream_app()) as base:
        secret = base.replace("http://", f"http://{PASSWORD}@")  # a token as the user name
        with llmcassette.use_cassette(path, record_mode="once") as cassette:
            async with httpx.AsyncClient() as one, httpx2.AsyncClient() as two:
                await one.post(f"{secret}/json", json=chat("one"))
                await two.post(f"{secret}/json", json=chat("two"))
    assert [attempt.url for attempt in cassette.attempts] == [f"{base}/json"] * 2
    assert PASSWORD not in path.read_text()


def test_a_recorded_url_that_kept_its_credentials_matches_and_is_not_shown(tmp_path: Path) -> None:
    # A file written by another tool, before llmcassette stripped credentials.
    path = tmp_path / "old.yaml"
    uri = f"http://alice:{PASSWORD}@127.0.0.1:9/v1/chat"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "interactions": [
                    {
                        "request": {"method": "POST", "uri": uri, "body": '{"q": 1}'},
                        "response": {"status": {"code": 200}, "body": {"string": "{}"}},
                    }
                ],
            }
        )
    )
    with pytest.raises(NoMatchingInteraction) as miss:
        with llmcassette.use_cassette(path) as cassette, httpx.Client() as client:
            assert client.post("http://127.0.0.1:9/v1/chat", json={"q": 1}).status_code == 200
            client.post("http://127.0.0.1:9/v1/chat", json={"q": 2})
    assert "#0 POST http://127.0.0.1:9/v1/chat" in str(miss.value)
    assert PASSWORD not in str(miss.value) and cassette.attempts[0].interaction == 0


def _many_recordings(path: Path, count: int) -> Path:
    interactions = [
        {
            "request": {
                "method": "POST",
                "uri": "http://127.0.0.1:9/v1/chat",
                "body": json.dumps(chat(f"q{i}")),
            },
            "response": {"status": {"code": 200}, "body": {"string": "{}"}},
        }
        for i in range(count)
    ]
    path.write_text(yaml.safe_dump({"version": 1, "interactions": interactions}))
    return path


def test_a_large_miss_is_explained_reading_its_body_once(tmp_path: Path) -> None:
    # A 4 MB body against 100 recordings took 5.7 s when each was compared by re-serialising it.
    path = _many_recordings(tmp_path / "many.yaml", 100)
    text = " ".join(f"word{i % 997}" for i in range(500_000))[:4_000_000]
    with llmcassette.use_cassette(path) as cassette, httpx.Client() as client:
        client.post("http://127.0.0.1:9/v1/chat", json=chat("q7"))  # builds the index
        start = time.monotonic()
        with pytest.raises(NoMatchingInteraction) as miss:
            client.post("http://127.0.0.1:9/v1/chat", json=chat(text))
        elapsed_s = time.monotonic() - start
        cassette.misses.clear()
    assert elapsed_s < 1.0
    lines = str(miss.value).split("\n")
    assert lines[1:3] == [
        "Closest recorded candidates:",
        "- #0 POST http://127.0.0.1:9/v1/chat: body differs: "
        f'`messages[0].content` is "{text[:56]}..., recorded "q0"',
    ]
    assert [c.interaction for c in miss.value.candidates] == [0, 1, 2]


def test_json_nested_too_deep_is_recorded_and_replayed_as_bytes(upstream: str, tmp_path: Path) -> None:
    # Before: recording stored it as text, but matching raised RecursionError on replay.
    path = tmp_path / "deep.yaml"
    deep = b'{"a": ' * 20_000 + b"1" + b"}" * 20_000
    headers = {"content-type": "application/json"}
    with llmcassette.use_cassette(path, record_mode="once"):
        recorded = httpx.post(f"{upstream}/sse?n=2", content=deep, headers=headers)
    with llmcassette.use_cassette(path) as replaying:
        replayed = httpx.post(f"{upstream}/sse?n=2", content=deep, headers=headers)
    assert replayed.content == recorded.content
    assert replaying.attempts[0].interaction == 0
    miss = r"body differs \(140001 bytes recorded, 140002 bytes sent\)"
    with pytest.raises(NoMatchingInteraction, match=miss), llmcassette.use_cassette(path):
        httpx.post(f"{upstream}/sse?n=2", content=deep + b" ", headers=headers)


def _logged(cassette: llmcassette.Cassette) -> list[object]:
    # What a test can read of each attempt (all but the time), and the play counts.
    attempts = [
        (
            a.index,
            a.method,
            a.url,
            a.interaction,
            a.recorded,
            a.faults,
            a.provider,
            a.status,
            list(a.chunks),
            a.error,
            a.headers,
            a.body,
        )
        for a in cassette.attempts
    ]
    return [attempts, list(cassette.play_counts)]


def _received(response: httpx.Response) -> tuple[object, ...]:
    # What a client can read of a response (but the date of one the upstream answered live).
    return (
        response.status_code,
        [(name, value) for name, value in response.headers.multi_items() if name != "date"],
        response.reason_phrase,
        response.http_version,
        response.content,
    )


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="none"),
        pytest.param({"allow_playback_repeats": True}, id="repeats"),
        pytest.param({"record_mode": "new_episodes"}, id="new-episodes"),
        pytest.param({"record_mode": "once"}, id="once"),
    ],
)
def test_a_request_sent_exactly_as_recorded_is_logged_as_the_general_path_logs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any], use_async: bool, warm: bool
) -> None:
    # `_replay_exact` answers the common case on a path of its own; declining it (returning None)
    # leaves every request to `decide` and `answer`. Both must leave the same log behind, and
    # answer the same. Warm: the file was entered before, and its recordings are played from
    # the replay cache's data (`LazyCassette.cached_answer`).
    recorded = tmp_path / "recorded.yaml"
    token = {"Authorization": "Bearer sk-secret-token-1234567890"}
    sends = [
        ("/json?key=sk-secret-in-url", {"a": 1}),
        ("/json?key=sk-secret-in-url", {"a": 1}),
        ("/json", {"a": 2}),
        ("/sse?n=2", {"stream": True}),
    ]

    def run(path: Path) -> list[object]:
        received: list[object] = []

        async def send_async() -> None:
            async with httpx.AsyncClient(headers=token) as client:
                for target, body in sends:
                    try:
                        received.append(_received(await client.post(base + target, json=body)))
                    except NoMatchingInteraction:
                        pass

        def send() -> None:
            with httpx.Client(headers=token) as client:
                for target, body in sends:
                    try:
                        received.append(_received(client.post(base + target, json=body)))
                    except NoMatchingInteraction:
                        pass

        with llmcassette.use_cassette(path, **options) as cassette:
            asyncio.run(send_async()) if use_async else send()
            missed = [str(miss) for miss in cassette._claim_misses(set())]  # (expected here)
        return [*_logged(cassette), missed, received]

    cached_answer = LazyCassette.cached_answer
    from_cache: list[int] = []

    def spy(tape: LazyCassette, index: int) -> RecordedAnswer | None:
        answer = cached_answer(tape, index)
        if answer is not None:
            from_cache.append(index)
        return answer

    monkeypatch.setattr(LazyCassette, "cached_answer", spy)
    with serve(stream_app()) as base:
        with llmcassette.use_cassette(recorded, record_mode="once"), httpx.Client() as client:
            for target, body in sends[1:]:
                client.post(base + target, json=body, headers=token)
        copy = tmp_path / "copy.yaml"  # (one name: the misses' messages name the file)
        copy.write_bytes(recorded.read_bytes())
        if warm:
            run(copy)  # (what it records in mode new_episodes is written: the file is put back)
            copy.write_bytes(recorded.read_bytes())
        from_cache.clear()
        fast = run(copy)
        assert from_cache == ([1, 2] if warm else [])  # (#0: its URL was scrubbed, so not exact)
        copy.write_bytes(recorded.read_bytes())
        monkeypatch.setattr(llmcassette.Cassette, "_replay_exact", lambda *args, **kwargs: None)
        general = run(copy)
    assert fast == general
    assert fast[0][0][3] == 0  # (answered from the recording)


_URL_PARTS = st.fixed_dictionaries(
    {
        "scheme": st.sampled_from(["http://", "https://"]),
        "userinfo": st.sampled_from(["", "user:secret@", "user@"]),
        "host": st.sampled_from(["api.example.test", "other.example.test", "127.0.0.1"]),
        "port": st.sampled_from(["", ":8080"]),
        "path": st.sampled_from(["/v1/chat", "/v1/chat/", "/v1/a%20b", "/"]),
        "query": st.sampled_from(["", "?a=1", "?key=s3cret&b=2", "?a=1#frag"]),
    }
)


@given(urls=st.lists(_URL_PARTS, min_size=1, max_size=12), as_text=st.lists(st.booleans(), min_size=12))
def test_the_engine_url_of_a_request_is_the_same_found_again_or_made(
    urls: list[dict[str, str]], as_text: list[bool]
) -> None:
    # `_checked_url` keeps the URLs it made (the last one apart): each request in a run of the
    # same, alternating or new URLs, by httpx or by a door that gives its URL as text, gets the
    # URL made afresh from it.
    from llmcassette._cassette import _checked_url, _engine_url

    class TextRequest:
        def __init__(self, url: str) -> None:
            self.url = url

    for parts, text in zip(urls, as_text, strict=False):
        url = "".join(parts[key] for key in ("scheme", "userinfo", "host", "port", "path", "query"))
        request: Any = TextRequest(url) if text else httpx.Request("POST", url)
        assert _checked_url(request) == _engine_url(request)
        assert "secret@" not in _checked_url(request)
