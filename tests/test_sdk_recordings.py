"""
The official SDKs replayed offline from recordings committed to the project's top-level
``cassettes/`` folder, laid out as pytest-recording users lay theirs out:
``cassettes/<test module>/<test name>.yaml``.

They were recorded with llmcassette's own pytest plugin against the fake providers of
``tests/upstreams.py`` on a fixed loopback port, the way a user records against a real provider.
To record them again (the port must be free)::

    .venv/bin/python -m pytest tests/test_sdk_recordings.py --record-mode=rewrite

Without ``--record-mode`` nothing listens on that port: every answer comes from the files.

google-genai's recordings were made by its sync client, on httpx2; its async client, which sends
through aiohttp, replays them too: aiohttp sends the same method, URL and body (its headers come
in another order, without ``Connection: keep-alive``, which matching does not look at).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmcassette import load_cassette
from tests.servers import serve
from tests.test_sdks import SDKS, Outcome, Sdk
from tests.upstreams import EXPECTED, provider_app

ROOT = Path(__file__).resolve().parents[1]
#: Where this module's recordings live: ``cassettes/<test module>/``.
CASSETTES = ROOT / "cassettes" / Path(__file__).stem
#: The fake providers' address while recording; the recorded URLs name it.
BASE_URL = "http://127.0.0.1:48151"


def recorded(test_name: str) -> pytest.MarkDecorator:
    """The llm_cassette marker for ``cassettes/<this module>/<test_name>.yaml``."""
    return pytest.mark.llm_cassette(CASSETTES / f"{test_name}.yaml")


@pytest.fixture(autouse=True)
def providers(request: pytest.FixtureRequest) -> Iterator[None]:
    """The fake providers, on the recorded address, only while recording."""
    if request.config.getoption("--record-mode", default=None) in (None, "none"):
        yield
        return
    with serve(provider_app(), port=int(BASE_URL.rsplit(":", 1)[1])):
        yield


def sdk(name: str) -> Sdk:
    return next(s for s in SDKS if s.name == name)


def check(name: str, *, stream: bool, mode: str = "sync") -> None:
    client = sdk(name)
    if mode == "sync":
        results = client.call_sync(BASE_URL, stream)
    else:
        results = asyncio.run(client.call_async(BASE_URL, stream))
    assert client.outcome(results) == Outcome(
        text=EXPECTED.text,
        tool_calls=[(EXPECTED.tool_name, EXPECTED.tool_args)],
        input_tokens=EXPECTED.input_tokens,
        output_tokens=EXPECTED.output_tokens,
        finish=client.finish,
    )


@recorded("test_openai_json")
def test_openai_json() -> None:
    check("openai", stream=False)


@recorded("test_openai_stream")
def test_openai_stream() -> None:
    check("openai", stream=True)


@recorded("test_anthropic_json")
def test_anthropic_json() -> None:
    check("anthropic", stream=False)


@recorded("test_anthropic_stream")
def test_anthropic_stream() -> None:
    check("anthropic", stream=True)


def _replaying(mode: str, request: pytest.FixtureRequest) -> None:
    if mode == "async" and request.config.getoption("--record-mode", default=None) not in (None, "none"):
        pytest.skip("the recording is made by the sync client; the async one only replays it")


@pytest.mark.parametrize("mode", ["sync", "async"])
@recorded("test_genai_json")
def test_genai_json(mode: str, request: pytest.FixtureRequest) -> None:
    _replaying(mode, request)
    check("genai", stream=False, mode=mode)


@pytest.mark.parametrize("mode", ["sync", "async"])
@recorded("test_genai_stream")
def test_genai_stream(mode: str, request: pytest.FixtureRequest) -> None:
    _replaying(mode, request)
    check("genai", stream=True, mode=mode)


@recorded("test_ollama_json")
def test_ollama_json() -> None:
    check("ollama", stream=False)


@recorded("test_ollama_stream")
def test_ollama_stream() -> None:
    check("ollama", stream=True)


def test_every_recording_is_named_after_the_test_that_replays_it() -> None:
    # The layout is pytest-recording's: a folder per test module, a file per test. A file that no
    # test replays or a test whose file is elsewhere breaks it (tests/test_own_cassettes.py checks
    # the whole folder).
    marked = {
        name: mark.args[0]
        for name, function in globals().items()
        if name.startswith("test_")
        for mark in getattr(function, "pytestmark", [])
        if mark.name == "llm_cassette"
    }
    assert len(marked) == 8
    assert all(path == CASSETTES / f"{name}.yaml" for name, path in marked.items())
    assert sorted(p.name for p in CASSETTES.iterdir()) == sorted(f"{name}.yaml" for name in marked)


def test_every_recording_was_made_against_the_fake_providers_with_real_chunks() -> None:
    for path in sorted(CASSETTES.glob("*.yaml")):
        (interaction,) = load_cassette(path).interactions
        assert interaction.request.uri.startswith(BASE_URL), path.name
        if path.stem.endswith("_stream"):
            stream = interaction.response.stream
            assert stream is not None and stream.chunks is not None and len(stream.chunks) > 1, path.name
