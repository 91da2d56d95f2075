"""The fault matrix: one case per fault, readable ids, one shared recording."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llmcassette._matrix import STANDARD_FAULTS
from tests.recordings import Recording

from ._cassettes import CLIENT

pytest_plugins = ["pytester"]

Run = Callable[..., pytest.RunResult]


def _cassette(pytester: pytest.Pytester, recording: Recording) -> None:
    recording.copy_to(pytester.path / "cassettes" / "test_chat" / "test_chat.yaml")


def test_matrix_runs_once_per_fault_with_readable_ids(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    pytester.makepyfile(
        test_chat=CLIENT
        + """
SEEN = []

@pytest.mark.llm_fault_matrix(["rate_limit:times=1", "server_error:times=1", "rechunk:size=1,mode=fixed"])
def test_chat(llm_fault, llm_cassette):
    SEEN.append(llm_fault.name)
    assert chat(retries=1) == "Hello there"
    assert llm_cassette.path.name == "test_chat.yaml"
    assert llm_fault.spec() in llm_cassette.attempts[0].faults

def test_seen():
    assert SEEN == ["rate_limit", "server_error", "rechunk"]
"""
    )
    _cassette(pytester, recording)
    result = run("-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*test_chat[[]rate_limit] PASSED*",
            "*test_chat[[]server_error] PASSED*",
            "*test_chat[[]rechunk] PASSED*",
        ]
    )


def test_standard_set_and_parametrize_together(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    pytester.makepyfile(
        test_chat=CLIENT
        + """
@pytest.mark.parametrize("question", ["hi"])
@pytest.mark.llm_fault_matrix("standard")
def test_chat(question, request):  # the fixture is not requested: the fault still applies
    try:
        chat(question, retries=1)
    except Exception:
        pass
"""
    )
    _cassette(pytester, recording)
    # Every case must replay `test_chat[hi].yaml`, without the fault's id in the name.
    folder = pytester.path / "cassettes" / "test_chat"
    (folder / "test_chat[hi].yaml").write_text((folder / "test_chat.yaml").read_text())
    result = run("--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert len(ids) == len(STANDARD_FAULTS)
    assert "test_chat.py::test_chat[rate_limit-hi]" in ids or "test_chat.py::test_chat[hi-rate_limit]" in ids
    outcome = run("-k", "rate_limit or unauthorized or rechunk_1_byte", "--llm-unfired=fail")
    outcome.assert_outcomes(passed=3)


_PATIENT_CLIENT = """
import time
import httpx, json, pytest

def chat(retries=2):
    # A client with a long read timeout that backs off 10 s between attempts: for real, one
    # `stall` case alone would take 40 s.
    body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(10)
        try:
            with httpx.stream(
                "POST", "https://api.openai.com/v1/chat/completions", json=body,
                timeout=httpx.Timeout(5.0, read=30.0),
            ) as response:
                if response.status_code >= 500 or response.status_code == 429:
                    continue
                response.raise_for_status()
                text = ""
                for line in response.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        text += json.loads(line[6:])["choices"][0]["delta"].get("content", "")
                return text
        except httpx.TransportError:
            continue
    raise RuntimeError("gave up")
"""


def test_standard_matrix_runs_on_the_virtual_clock_without_asking(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    pytester.makepyfile(
        test_chat=_PATIENT_CLIENT
        + """
from llmcassette._clock import current_clock

@pytest.mark.llm_fault_matrix("standard")
def test_chat(llm_fault):
    clock = current_clock()
    assert clock is not None  # the case did not ask for `llm_clock`, and has it
    started = time.monotonic()  # real time: the clock leaves `time.monotonic` alone
    try:
        chat()
    except Exception:
        pass
    # No wait of the client's happened in real time: its shortest (a 10 s backoff) would
    # take as long as this case took, however busy the machine.
    real_s = time.monotonic() - started
    assert real_s < 10, f"{llm_fault.name}: {real_s:.1f} s in real time, {clock.sleeps} virtual"
    if llm_fault.name == "stall":
        # The stall lasted the client's read timeout, then the client backed off: virtually.
        assert clock.elapsed_s >= 40 and clock.sleeps == [10.0]

@pytest.mark.llm_fault_matrix(["stall:after=1,times=1"])
def test_asks(llm_clock, llm_cassette):
    assert chat() == "Hello there"
    assert llm_clock.sleeps == [10.0]
    assert llm_cassette.attempts[0].error == "ReadTimeout: The read operation timed out"
"""
    )
    _cassette(pytester, recording)
    recording.copy_to(pytester.path / "cassettes" / "test_chat" / "test_asks.yaml")
    result = run("-v")
    # Each case checks itself that no wait was real (instead of the run's total time, which a
    # busy machine stretches by itself).
    result.assert_outcomes(passed=len(STANDARD_FAULTS) + 1)
    result.stdout.fnmatch_lines(["*test_chat[[]stall] PASSED*", "*test_asks[[]stall] PASSED*"])
