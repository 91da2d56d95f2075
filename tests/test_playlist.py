"""
The playlist: which recorded interaction answers a request, the same whether the cassette was read
afresh or entered again from the replay cache, which keeps the groups of requests that share a
slot and unpacks the match keys only for a request not sent exactly as recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

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


def test_requests_sent_exactly_as_recorded_never_unpack_the_keys(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _cassette(tmp_path / "c.yaml", RECORDED)
    _play(path, RECORDED)
    unpacked: list[int] = []
    real = _playlist._unpack_keys

    def counted(packed: bytes, count: int) -> Any:
        unpacked.append(count)
        return real(packed, count)

    monkeypatch.setattr(_playlist, "_unpack_keys", counted)
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
    _play(path, RECORDED)
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
