"""Cassette names: the ones pytest-recording gives, long names and fault matrix cases included."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_recording.plugin import get_default_cassette_name

from llmcassette._pytest_support import cassette_name, default_cassette_path, without_param_id

from ._cassettes import CLIENT
from .conftest import needs_vcrpy_skip_patchers

pytest_plugins = ["pytester"]

Run = Callable[..., pytest.RunResult]


class TestChat:
    pass


@pytest.mark.parametrize(
    ("test_class", "name"),
    [
        (None, "test_chat"),
        (TestChat, "test_chat"),
        (None, 'test_chat[a/b:c*d?"e"|<f>%g\\h]'),
        (TestChat, "test_param[x-y]"),
    ],
)
def test_short_names_are_pytest_recordings(test_class: type | None, name: str) -> None:
    assert cassette_name(test_class, name) == get_default_cassette_name(test_class, name)


def test_the_default_path_is_beside_the_test_module(tmp_path: Path) -> None:
    path = default_cassette_path(tmp_path / "test_api.py", TestChat, "test_chat[a/b]")
    assert path == tmp_path / "cassettes" / "test_api" / "TestChat.test_chat[a-b].yaml"


def test_a_long_name_ends_in_a_hash_and_fits_a_file_name() -> None:
    name = "test_chat[" + "x" * 400 + "]"
    short = cassette_name(None, name)
    assert len(short) + len(".yaml") <= 255
    assert short.startswith("test_chat[xxx") and "..." in short
    assert short != cassette_name(None, name.replace("x]", "y]"))  # the hash tells them apart


@pytest.mark.parametrize(
    ("name", "case_id", "expected"),
    [
        ("test_chat[rate_limit]", "rate_limit", "test_chat"),
        ("test_chat[rate_limit-hi]", "rate_limit", "test_chat[hi]"),
        ("test_chat[hi-rate_limit]", "rate_limit", "test_chat[hi]"),
        ("test_chat[a-rate_limit-b]", "rate_limit", "test_chat[a-b]"),
        ("test_chat", "rate_limit", "test_chat"),
    ],
)
def test_a_matrix_case_shares_the_name_without_its_id(name: str, case_id: str, expected: str) -> None:
    assert without_param_id(name, case_id) == expected


@needs_vcrpy_skip_patchers
def test_a_long_vcr_matrix_case_uses_the_hashed_name_pytest_recording_gives(
    pytester: pytest.Pytester, run: Run
) -> None:
    # pytest-recording hashes a name too long for a file before llmcassette sees it: the case's
    # cassette must still be recognised, and replaced by the test's one shared cassette.
    pytester.makepyfile(
        test_long=CLIENT
        + """
from pathlib import Path
from llmcassette._pytest_support import cassette_name

@pytest.mark.vcr
@pytest.mark.parametrize("q", ["x" * 300], ids=["x" * 300])
@pytest.mark.llm_fault_matrix(["truncate", "rate_limit"])
def test_chat(vcr, llm_cassette, q):
    assert Path(vcr.path).name == cassette_name(None, f"test_chat[{q}]") + ".yaml"
    assert Path(vcr.path) == llm_cassette.path
"""
    )
    run("--llm-unfired=ignore").assert_outcomes(passed=2)
