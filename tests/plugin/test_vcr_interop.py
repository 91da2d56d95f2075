"""pytest-recording suites: `vcr` cassettes replay through llmcassette with faults; others are untouched."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ._cassettes import CLIENT, chat_cassette
from .conftest import NO_PLUGIN_ARGS

pytest_plugins = ["pytester"]

Run = Callable[..., pytest.RunResult]


def _vcr_cassette(pytester: pytest.Pytester, name: str) -> None:
    folder = pytester.path / "cassettes" / "test_vcr"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(chat_cassette())


def test_llm_faults_on_a_vcr_test_replay_its_cassette_with_faults(
    pytester: pytest.Pytester, run: Run
) -> None:
    pytester.makepyfile(
        test_vcr=CLIENT
        + """
@pytest.mark.vcr
@pytest.mark.llm_faults("rate_limit:times=1", "rechunk:mode=fixed,size=1")
def test_chat(vcr, llm_cassette):
    assert chat(retries=1) == "Hello there"
    assert str(llm_cassette.path) == vcr.path
    assert [a.status for a in llm_cassette.attempts] == [429, 200]
    assert len(llm_cassette.attempts[1].chunks) > 50  # one byte per chunk: llmcassette played it
"""
    )
    _vcr_cassette(pytester, "test_chat")
    run().assert_outcomes(passed=1)


_PLAIN = """
import httpx, pytest

def _client():
    return httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, text="mock")))

def test_mock_transport():
    assert _client().get("https://example.invalid/").text == "mock"

@pytest.mark.vcr
def test_vcr_replays():
    reply = httpx.post(
        "https://api.openai.com/v1/chat/completions",
        json={"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert "Hello" in reply.text

@pytest.mark.vcr
def test_vcr_patches_mock_transport():
    # vcrpy intercepts MockTransport too: in mode none, this request is refused.
    _client().get("https://example.invalid/")
"""


def test_tests_that_do_not_use_it_behave_as_without_the_plugin(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_vcr=_PLAIN)
    _vcr_cassette(pytester, "test_vcr_replays")
    outcomes = []
    for result in [run(), pytester.runpytest(*NO_PLUGIN_ARGS)]:
        outcomes.append(result.parseoutcomes())
        result.stdout.fnmatch_lines(["*CannotOverwriteExistingCassetteException*"])
    assert outcomes[0] == outcomes[1] == {"passed": 2, "failed": 1}
