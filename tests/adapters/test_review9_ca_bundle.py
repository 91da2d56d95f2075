"""h-review9: the requests door's memo of whether a CA bundle is a directory, held to requests."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from requests.adapters import HTTPAdapter

import llmcassette
from llmcassette._models import CassetteDocument
from llmcassette._storage import save_cassette
from tests.adapters.test_http_client import forbid_sockets

_URL = "https://c.example/x"


def _cassette(path: Path) -> None:
    interaction = {
        "request": {"method": "GET", "uri": _URL, "headers": {}, "body": ""},
        "response": {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": "{}"}},
    }
    save_cassette(path, CassetteDocument.model_validate({"interactions": [interaction]}))


def _pools(session: requests.Session) -> list[Any]:
    adapter = cast(HTTPAdapter, session.get_adapter(_URL))
    return sorted(
        (k.key_scheme, str(k.key_ca_certs), str(k.key_ca_cert_dir)) for k in adapter.poolmanager.pools.keys()
    )


def _run(path: Path, bundle: Path, door: bool, *, across_cassettes: bool) -> list[Any]:
    # An https request with the bundle a file, then the same path turned into a folder of
    # certificates and asked again: requests takes `ca_certs` the first time, `ca_cert_dir` the
    # second (a new pool).
    if bundle.is_dir():
        bundle.rmdir()
    bundle.write_text("(never read: no handshake on replay)\n")
    seen: list[Any] = []

    @contextlib.contextmanager
    def active() -> Any:
        with (
            llmcassette.use_cassette(path, allow_playback_repeats=True),
            pytest.MonkeyPatch.context() as patch,
        ):
            if not door:
                patch.setattr(HTTPAdapter, "send", HTTPAdapter.send.__wrapped__)  # type: ignore[attr-defined]
            yield

    with requests.Session() as session:
        with active():
            seen.append(session.get(_URL, verify=str(bundle)).content)
            seen.append(_pools(session))
            if across_cassettes:
                bundle.unlink()
                bundle.mkdir()
            if not across_cassettes:
                bundle.unlink()
                bundle.mkdir()
                seen.append(session.get(_URL, verify=str(bundle)).content)
                seen.append(_pools(session))
                return seen
        with active():
            seen.append(session.get(_URL, verify=str(bundle)).content)
            seen.append(_pools(session))
    return seen


@pytest.mark.parametrize(
    "across_cassettes",
    [
        pytest.param(False, id="within-a-cassette"),
        pytest.param(True, id="across-cassettes"),
    ],
)
def test_a_bundle_turned_into_a_folder_is_taken_as_requests_takes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, across_cassettes: bool
) -> None:
    path = tmp_path / "bundle.yaml"
    _cassette(path)
    forbid_sockets(monkeypatch)
    bundle = tmp_path / "ca"
    through = _run(path, bundle, door=True, across_cassettes=across_cassettes)
    below = _run(path, bundle, door=False, across_cassettes=across_cassettes)
    assert len(below[3]) == 2  # (requests makes a pool with `ca_cert_dir` for the folder)
    assert through == below
