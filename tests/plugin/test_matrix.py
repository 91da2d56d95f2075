"""The fault matrix: one case per fault, readable ids, one shared recording."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llmcassette._matrix import STANDARD_FAULTS

from ._cassettes import CLIENT, chat_cassette

pytest_plugins = ["pytester"]

Run = Callable[..., pytest.RunResult]


def _cassette(pytester: pytest.Pytester) -> None:
    (pytester.mkdir("cassettes") / "test_chat").mkdir()
    (pytester.path / "cassettes" / "test_chat" / "test_chat.yaml").write_text(chat_cassette())


def test_matrix_runs_once_per_fault_with_readable_ids(pytester: pytest.Pytester, run: Run) -> None:
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
    _cassette(pytester)
    result = run("-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*test_chat[[]rate_limit] PASSED*",
            "*test_chat[[]server_error] PASSED*",
            "*test_chat[[]rechunk] PASSED*",
        ]
    )


def test_standard_set_and_parametrize_together(pytester: pytest.Pytester, run: Run) -> None:
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
    _cassette(pytester)
    # Every case must replay `test_chat[hi].yaml`, without the fault's id in the name.
    folder = pytester.path / "cassettes" / "test_chat"
    (folder / "test_chat[hi].yaml").write_text((folder / "test_chat.yaml").read_text())
    result = run("--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert len(ids) == len(STANDARD_FAULTS)
    assert "test_chat.py::test_chat[rate_limit-hi]" in ids or "test_chat.py::test_chat[hi-rate_limit]" in ids
    outcome = run("-k", "rate_limit or unauthorized or rechunk_1_byte", "--llm-unfired=fail")
    outcome.assert_outcomes(passed=3)
