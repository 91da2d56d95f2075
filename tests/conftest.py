"""Fixtures shared by the suite: the async backend, every client kind, a local upstream."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# litellm fetches its model cost map from the internet when imported, unless told to use the copy it
# ships with: every test stays on loopback, whichever imports litellm first.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.recordings import Recording, recording_path
from tests.servers import CLIENT_KINDS, Client, serve, stream_app

# No deadline for a property test's examples: it is wall time, which a loaded machine (two
# pytest workers on two cores, beside the servers they start) stretches past hypothesis's 200 ms
# for code that takes a few, and the test then fails for the machine, not for the code.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")


@pytest.fixture(autouse=True)
def _inner_runs_without_pytest_asyncio(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest-asyncio is installed for the suites the plugin tests replay, which load it with
    # `-p asyncio`; every other inner pytest run goes without it, as the suite itself does.
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")  # which clears PYTEST_ADDOPTS when it is set up
        monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:asyncio")


@pytest.fixture
def recording(request: pytest.FixtureRequest) -> Recording:
    """This test's recording in the top-level ``cassettes/`` folder (see tests/recordings.py)."""
    return Recording(recording_path(request.node))


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, as the SDKs' async clients do."""
    return "asyncio"


@pytest.fixture(params=CLIENT_KINDS, ids=lambda kind: f"{kind[0]}-{'async' if kind[1] else 'sync'}")
def client(request: pytest.FixtureRequest) -> Client:
    """One test body for httpx and httpx2, sync and async."""
    return Client(*request.param)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    """The controlled-chunking upstream on loopback, for the module."""
    with serve(stream_app()) as base:
        yield base
