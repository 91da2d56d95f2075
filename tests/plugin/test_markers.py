"""Markers and fixtures: a test records once, then replays offline with its attempt log."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.recordings import Recording

from ._cassettes import CLIENT

pytest_plugins = ["pytester"]

Run = Callable[..., pytest.RunResult]


def test_marker_records_then_replays_at_the_default_path(
    pytester: pytest.Pytester, run: Run, upstream: str
) -> None:
    pytester.makepyfile(
        test_chat=f"""
        import httpx, pytest

        @pytest.mark.llm_cassette
        def test_chat(llm_cassette):
            reply = httpx.post("{upstream}/json", json={{"q": 1}})
            assert reply.json()["echo"] == {{"q": 1}}
            assert len(llm_cassette.attempts) == 1

        class TestChat:
            @pytest.mark.parametrize("q", ["a/b"])
            def test_param(self, llm_cassette, q):  # the fixture alone is enough
                httpx.post("{upstream}/json", json={{"q": q}})
        """
    )
    run("--record-mode=once").assert_outcomes(passed=2)
    folder = pytester.path / "cassettes" / "test_chat"
    assert sorted(p.name for p in folder.iterdir()) == ["TestChat.test_param[a-b].yaml", "test_chat.yaml"]
    run().assert_outcomes(passed=2)


def test_marker_path_and_options(pytester: pytest.Pytester, run: Run, recording: Recording) -> None:
    pytester.makepyfile(
        test_chat=CLIENT
        + """
@pytest.mark.llm_cassette("shared/chat.yaml", allow_playback_repeats=True)
def test_chat(llm_cassette):
    assert chat() == chat() == "Hello there"
    assert llm_cassette.path.parts[-2:] == ("shared", "chat.yaml")
    assert [a.interaction for a in llm_cassette.attempts] == [0, 0]
"""
    )
    recording.copy_to(pytester.path / "shared" / "chat.yaml")
    run().assert_outcomes(passed=1)


def test_faults_marker_and_attempt_log(pytester: pytest.Pytester, run: Run, recording: Recording) -> None:
    pytester.makepyfile(
        test_chat=CLIENT
        + """
from llmcassette import faults

@pytest.mark.llm_faults("rate_limit:times=1", faults.ServerError(nth=2))
def test_chat(llm_cassette):
    assert chat(retries=2) == "Hello there"
    assert [a.status for a in llm_cassette.attempts] == [429, 500, 200]
"""
    )
    recording.copy_to(pytester.path / "cassettes" / "test_chat" / "test_chat.yaml")
    run().assert_outcomes(passed=1)


def test_llm_clock_records_sleeps_without_waiting(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(
        test_clock="""
        import time

        def test_clock(llm_clock):
            start = time.monotonic()
            time.sleep(30)
            assert llm_clock.sleeps == [30]
            assert time.monotonic() - start < 5
        """
    )
    run().assert_outcomes(passed=1)


def test_async_test_replays(pytester: pytest.Pytester, run: Run, recording: Recording) -> None:
    pytester.makepyfile(
        test_chat="""
        import httpx, pytest

        @pytest.mark.anyio
        @pytest.mark.llm_cassette("chat.yaml")
        async def test_chat(llm_cassette):
            async with httpx.AsyncClient() as client:
                reply = await client.post(
                    "https://api.openai.com/v1/chat/completions",
                    json={"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
                )
            assert "Hello" in reply.text

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    recording.copy_to(pytester.path / "chat.yaml")
    run().assert_outcomes(passed=1)


def test_llm_snapshot_writes_normalised_events(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    pytester.makepyfile(
        test_chat=CLIENT
        + """
@pytest.mark.llm_cassette("chat.yaml")
def test_chat(llm_cassette, llm_snapshot):
    chat()
    assert llm_snapshot == llm_cassette.attempts[-1]
"""
    )
    recording.copy_to(pytester.path / "chat.yaml")
    run().assert_outcomes(failed=1)  # no snapshot yet
    run("--snapshot-update").assert_outcomes(passed=1)
    written = pytester.path / "__snapshots__" / "test_chat" / "test_chat.events.jsonl"
    assert '"text": "Hello"' in written.read_text()
    run().assert_outcomes(passed=1)


def test_llm_snapshot_takes_the_response_a_client_returned(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    pytester.makepyfile(
        test_chat=CLIENT
        + """
import httpx2

@pytest.mark.llm_cassette("chat.yaml", allow_playback_repeats=True)
@pytest.mark.parametrize("module", [httpx, httpx2])
def test_chat(llm_snapshot, module):
    body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with module.Client() as client:
        assert llm_snapshot == client.post("https://api.openai.com/v1/chat/completions", json=body)
"""
    )
    recording.copy_to(pytester.path / "chat.yaml")
    run("--snapshot-update").assert_outcomes(passed=2)
    folder = pytester.path / "__snapshots__" / "test_chat"
    written = [path.read_text() for path in sorted(folder.iterdir())]
    assert len(written) == 2 and written[0] == written[1]
    assert written[0].splitlines()[:2] == [
        '{"text": "Hello", "type": "text_delta"}',
        '{"text": " there", "type": "text_delta"}',
    ]
    run().assert_outcomes(passed=2)


def test_faults_on_module_class_and_test_add_up_with_the_option(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    pytester.makepyfile(
        test_chat=CLIENT
        + """
pytestmark = pytest.mark.llm_faults("server_error:nth=1")

@pytest.mark.llm_faults("unavailable:nth=2")
class TestChat:
    @pytest.mark.llm_faults("rate_limit:nth=3")
    def test_chat(self, llm_cassette):
        assert chat(retries=4) == "Hello there"
        specs = [f.spec() for f in llm_cassette.fault_plan.faults]
        assert specs == ["server_error:nth=1", "unavailable:nth=2", "rate_limit:nth=3", "bad_gateway:nth=4"]
        assert [a.status for a in llm_cassette.attempts] == [500, 503, 429, 502, 200]

def test_module_only(llm_cassette):
    assert chat(retries=4) == "Hello there"
    assert [a.status for a in llm_cassette.attempts] == [500, 502, 200]
"""
    )
    folder = pytester.mkdir("cassettes") / "test_chat"
    folder.mkdir()
    recording.copy_to(folder / "TestChat.test_chat.yaml")
    recording.copy_to(folder / "test_module_only.yaml")
    run("--llm-faults=bad_gateway:nth=2", "-k", "module_only").assert_outcomes(passed=1)
    run("--llm-faults=bad_gateway:nth=4", "-k", "TestChat").assert_outcomes(passed=1)
