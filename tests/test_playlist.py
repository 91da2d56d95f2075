"""
The playlist: which recorded interaction answers a request, the same whether the cassette was read
afresh or entered again from the replay cache, which keeps the groups of requests that share a
slot and unpacks the match keys only for a request not sent exactly as recorded.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import llmcassette
from llmcassette import _cache, _playlist
from llmcassette._models import CassetteDocument

URL = "https://api.test/v1/chat"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(_cache.CACHE_DIR_ENV, str(folder))
    return folder


def _cassette(path: Path, bodies: list[str]) -> Path:
    # One interaction per request body (kept as the exact text), answered with its position.
    interactions = [
        {
            "request": {"method": "POST", "uri": URL, "body": body},
            "response": {"status": {"code": 200, "message": "OK"}, "body": {"string": f"#{i}"}},
        }
        for i, body in enumerate(bodies)
    ]
    llmcassette.save_cassette(path, CassetteDocument.model_validate({"interactions": interactions}))
    return path


def _play(path: Path, bodies: list[str], **options: Any) -> list[str]:
    answers = []
    with llmcassette.use_cassette(path, **options), httpx.Client() as client:
        for body in bodies:
            answers.append(client.post(URL, content=body.encode()).text)
    return answers


# Two recordings of the same request (the same key, bytes spaced differently), then another.
RECORDED = ['{"q": 1}', '{"q":1}', '{"q": 2}']


@pytest.mark.parametrize(
    ("sent", "answers"),
    [
        # Exact bytes and a key match share one slot: recorded order, whichever bytes come first.
        pytest.param(['{"q":1}', '{"q": 1}', '{"q": 2}'], ["#0", "#1", "#2"], id="exact-bytes"),
        pytest.param(['{ "q" : 1 }', '{ "q" : 1 }', '{"q":2}'], ["#0", "#1", "#2"], id="by-key"),
        pytest.param(['{ "q" : 2 }', '{"q":1}', '{ "q" : 1 }'], ["#2", "#0", "#1"], id="mixed"),
    ],
)
def test_a_cassette_entered_again_plays_what_it_played_read_afresh(
    tmp_path: Path, cache: Path, sent: list[str], answers: list[str]
) -> None:
    path = _cassette(tmp_path / "c.yaml", RECORDED)
    assert _play(path, sent) == answers  # read afresh, the entry written on leaving
    assert len(list(cache.glob("*.entry"))) == 1
    assert _play(path, sent) == answers  # from the entry
    assert _play(path, sent) == answers


# The recorded requests, sent exactly as recorded but not in recorded order: the slots are made.
OUT_OF_ORDER = ['{"q": 2}', '{"q": 1}', '{"q":1}']


def test_requests_sent_exactly_as_recorded_never_unpack_the_keys(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _cassette(tmp_path / "c.yaml", RECORDED)
    assert _play(path, OUT_OF_ORDER) == ["#2", "#0", "#1"]  # the keys made, and kept
    unpacked: list[int] = []
    real = _playlist._unpack_keys

    def counted(packed: bytes, count: int) -> Any:
        unpacked.append(count)
        return real(packed, count)

    monkeypatch.setattr(_playlist, "_unpack_keys", counted)
    assert _play(path, OUT_OF_ORDER) == ["#2", "#0", "#1"]
    assert _play(path, RECORDED) == ["#0", "#1", "#2"]
    assert unpacked == []
    assert _play(path, ['{ "q" : 2 }']) == ["#2"]
    assert unpacked == [3]


def test_a_miss_in_a_cassette_entered_again_names_the_closest_candidates(tmp_path: Path, cache: Path) -> None:
    path = _cassette(tmp_path / "c.yaml", RECORDED)
    _play(path, RECORDED)
    messages = []
    for _ in range(2):  # read afresh (the entry was written by the run above), then from it
        with pytest.raises(llmcassette.NoMatchingInteraction) as missed:
            _play(path, ['{"q": 3}'])
        messages.append(str(missed.value))
    assert messages[0] == messages[1]
    assert "Closest recorded candidates:\n- #0 POST" in messages[0]


def test_kept_groups_that_do_not_hold_are_made_again_from_the_keys(tmp_path: Path, cache: Path) -> None:
    path = _cassette(tmp_path / "c.yaml", RECORDED)
    _play(path, OUT_OF_ORDER)
    (entry,) = cache.glob("*.entry")
    key = entry.stem
    raw = path.read_bytes()
    *columns, playlists = _cache.read_entry(key, raw)  # type: ignore[misc]
    ((signature, (groups, packed)),) = playlists.items()
    assert groups == [0, 0, 2]
    # (groups that say something else whole, such as [0, 1, 2], are no damage the checksum lets by)
    for damaged in ([1, 0, 2], [0, 0], [0, 0, 7], [0, -1, -5]):
        playlists = {signature: (damaged, packed)}
        assert _cache.write_entry(key, (*columns, playlists), raw)
        assert _play(path, ['{"q": 1}', '{ "q" : 1 }', '{"q": 2}']) == ["#0", "#1", "#2"]


def test_repeats_and_wildcards_keep_their_order_from_the_cache(tmp_path: Path, cache: Path) -> None:
    asked = {"method": "POST", "uri": URL, "body": '{"q": 1}'}
    interactions = [
        {"request": asked, "response": {"status": {"code": 429}}},
        {"request": asked, "response": {"status": {"code": 200}}},
        {"request": {"method": "*", "uri": "*"}, "response": {"status": {"code": 201}}},
    ]
    path = tmp_path / "c.yaml"
    llmcassette.save_cassette(path, CassetteDocument.model_validate({"interactions": interactions}))
    for _ in range(3):
        with llmcassette.use_cassette(path, allow_playback_repeats=True), httpx.Client() as client:
            codes = [client.post(URL, content=b'{"q": 1}').status_code for _ in range(3)]
            codes.append(client.post(URL, content=json.dumps({"other": True}).encode()).status_code)
        assert codes == [429, 200, 200, 201]


# Recordings for the playlist's differential test: two requests with one key written apart
# (bytes spaced differently), the same bytes twice, another key, and one answering any request.
_SHARED = ['{"q": 1}', '{"q":1}', '{"q": 2}', '{"q": 1}', '{"q": 2}']
# What is sent: each recorded text, another text of the first key, and one matching nothing.
_SENT = [*dict.fromkeys(_SHARED), '{ "q" : 1 }', '{"q": 3}']


def _shared_cassette(path: Path, wildcard: bool) -> Path:
    interactions: list[dict[str, Any]] = [
        {
            "request": {"method": "POST", "uri": URL, "body": body},
            "response": {"status": {"code": 200, "message": "OK"}, "body": {"string": f"#{i}"}},
        }
        for i, body in enumerate(_SHARED)
    ]
    if wildcard:
        interactions.insert(
            2,
            {
                "request": {"method": "*", "uri": "*"},
                "response": {"status": {"code": 200}, "body": {"string": "*"}},
            },
        )
    llmcassette.save_cassette(path, CassetteDocument.model_validate({"interactions": interactions}))
    return path


def _answers(path: Path, sent: list[str], *, through: str, repeats: bool) -> list[str]:
    # Each request's answer, or "miss"; through httpx (the exact path) or urllib.request (the
    # doors' `replay_plain`).
    answers: list[str] = []
    with contextlib.suppress(llmcassette.NoMatchingInteraction):  # (raised again on leaving)
        with llmcassette.use_cassette(path, allow_playback_repeats=repeats), httpx.Client() as client:
            for body in sent:
                try:
                    if through == "httpx":
                        answers.append(client.post(URL, content=body.encode()).text)
                    else:
                        request = urllib.request.Request(URL, data=body.encode(), method="POST")
                        with urllib.request.urlopen(request) as response:
                            answers.append(response.read().decode())
                except llmcassette.NoMatchingInteraction:
                    answers.append("miss")
    return answers


@pytest.mark.parametrize("through", ["httpx", "urllib"])
@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sent=st.lists(st.sampled_from(_SENT), max_size=8),
    repeats=st.booleans(),
    wildcard=st.booleans(),
    warm=st.booleans(),
)
def test_requests_in_recorded_order_get_what_the_slots_give(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    through: str,
    sent: list[str],
    repeats: bool,
    wildcard: bool,
    warm: bool,
) -> None:
    # While no slot is made, a request sent exactly as the next recorded one takes it without a
    # key: the answers are those of the slots made up front, in every order, repeats allowed or
    # not, from the keys or from the groups a run before kept (`warm`).
    with tempfile.TemporaryDirectory(dir=tmp_path) as name:
        folder = Path(name)
        monkeypatch.setenv(_cache.CACHE_DIR_ENV, str(folder / "cache"))
        path = _shared_cassette(folder / "c.yaml", wildcard)
        if warm:
            _answers(path, [_SENT[-2]], through="httpx", repeats=False)  # the keys made, and kept
        played = _answers(path, sent, through=through, repeats=repeats)
        with monkeypatch.context() as patch:
            patch.setattr(_playlist.Playlist, "in_order", lambda *_: None)
            expected = _answers(path, sent, through=through, repeats=repeats)
    assert played == expected
