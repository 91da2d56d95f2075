"""With a vcrpy older than 9.4, a `vcr` test that uses llmcassette fails in words; others work."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.recordings import Recording

from ._cassettes import CLIENT
from .conftest import needs_vcrpy_skip_patchers

pytest_plugins = ["pytester"]

Run = Callable[..., pytest.RunResult]


@pytest.mark.skipif(
    not needs_vcrpy_skip_patchers.args[0], reason="vcrpy 9.4 or newer: test_vcr_interop.py runs instead"
)
def test_a_vcr_test_with_llmcassette_names_the_vcrpy_it_needs(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    pytester.makepyfile(
        test_vcr=CLIENT
        + """
@pytest.mark.vcr
@pytest.mark.llm_faults("rate_limit:times=1")
def test_chat():
    chat(retries=1)

@pytest.mark.llm_cassette("cassettes/own.yaml")
def test_own():
    assert chat() == "Hello there"
"""
    )
    recording.copy_to(pytester.path / "cassettes" / "own.yaml")
    result = run("-rA")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "llmcassette: test_vcr.py::test_chat: a `vcr` test's httpx and httpx2 traffic can go to "
            "llmcassette only with vcrpy 9.4 or newer, whose `skip_patchers` keeps vcrpy's own httpx "
            "patches out of its way; vcrpy * is installed. Upgrade vcrpy, or use llmcassette on tests "
            "without the `vcr` marker."
        ]
    )
