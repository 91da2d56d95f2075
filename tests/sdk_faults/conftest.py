"""The recordings the fault tests replay, made once per session, and the sync/async axis."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.sdk_faults._replay import MODES, Tape, refuses_connections
from tests.servers import serve
from tests.upstreams import provider_app


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Every test runs the SDK's sync client and its async one."""
    return str(request.param)


@pytest.fixture(scope="session")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tape]:
    """The four SDKs' exchanges, JSON and streamed, recorded once per session."""
    with serve(provider_app()) as base_url:
        tape = Tape(base_url, tmp_path_factory.mktemp("sdk-faults"))
        for stream in (False, True):
            # No retries while recording: a failure must show, not be retried away.
            tape.record("openai", stream, {"max_retries": 0})
            tape.record("anthropic", stream, {"max_retries": 0})
            tape.record("genai", stream)
            tape.record("ollama", stream)
    # From here on, whatever a client gets comes from the cassettes.
    assert refuses_connections(base_url)
    yield tape


@pytest.fixture(scope="session")
def litellm_tape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tape]:
    """litellm's exchange (through its OpenAI provider), recorded once with the sync client."""
    # tests/conftest.py has told litellm to use its bundled model cost map: no fetch on import.
    assert os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP") == "True"
    # Imported before recording, as a suite that imports litellm at its top has it.
    import litellm.llms.custom_httpx.aiohttp_transport  # noqa: F401

    with serve(provider_app()) as base_url:
        tape = Tape(base_url, tmp_path_factory.mktemp("sdk-faults-litellm"))
        for stream in (False, True):
            tape.record("litellm", stream, {"num_retries": 0})
    assert refuses_connections(base_url)
    yield tape
