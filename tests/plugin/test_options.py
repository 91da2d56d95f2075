"""Command-line options: record mode precedence, suite-wide faults, pace."""

from __future__ import annotations

import datetime
import email.utils
import json
from collections.abc import Callable

import pytest

from llmcassette._yaml import load_yaml
from tests.recordings import Recording

from ._cassettes import CLIENT

pytest_plugins = ["pytester"]

Run = Callable[..., pytest.RunResult]


def test_record_mode_cli_beats_marker_beats_default(
    pytester: pytest.Pytester, run: Run, upstream: str
) -> None:
    pytester.makepyfile(
        test_rec=f"""
        import httpx, pytest

        @pytest.mark.llm_cassette(record_mode="once")
        def test_marked():
            httpx.post("{upstream}/json", json={{}})

        @pytest.mark.llm_cassette
        def test_default():
            httpx.post("{upstream}/json", json={{}})
        """
    )
    folder = pytester.path / "cassettes" / "test_rec"
    # The explicit CLI mode wins over the marker: nothing may record.
    run("--record-mode=none").assert_outcomes(failed=2)
    # The marker's mode wins over the default "none".
    run().assert_outcomes(passed=1, failed=1)
    assert [p.name for p in folder.iterdir()] == ["test_marked.yaml"]


def test_rewrite_records_afresh(
    pytester: pytest.Pytester, run: Run, upstream: str, recording: Recording
) -> None:
    pytester.makepyfile(
        test_rec=f"""
        import httpx, pytest

        @pytest.mark.llm_cassette
        def test_rec(llm_cassette):
            httpx.post("{upstream}/json", json={{"v": 2}})
            assert len(llm_cassette.interactions) == 1
        """
    )
    (pytester.mkdir("cassettes") / "test_rec").mkdir()
    stale = pytester.path / "cassettes" / "test_rec" / "test_rec.yaml"
    recording.copy_to(stale)
    run("--record-mode=rewrite").assert_outcomes(passed=1)
    assert "api.openai.com" not in stale.read_text()
    run().assert_outcomes(passed=1)


def test_llm_faults_option_applies_to_every_llm_test_only(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    pytester.makepyfile(
        test_chat=CLIENT
        + """
@pytest.mark.llm_cassette
def test_chat(llm_cassette):
    chat(retries=1)
    assert llm_cassette.attempts[0].status == 503

def test_plain():
    pass
"""
    )
    recording.copy_to(pytester.path / "cassettes" / "test_chat" / "test_chat.yaml")
    run("--llm-faults=unavailable:times=1").assert_outcomes(passed=2)
    run().assert_outcomes(passed=1, failed=1)


def test_bad_pace_is_a_usage_error_and_options_have_help(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    result = run("--llm-pace=fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: llmcassette: pace 'fast' is not valid; *"])
    run("--llm-pace=recorded").assert_outcomes(passed=1)
    help_text = run("--help")
    help_text.stdout.fnmatch_lines(["llmcassette: record/replay of LLM traffic:", "  --llm-pace=LLM_PACE*"])
    markers = run("--markers")
    markers.stdout.fnmatch_lines(
        ["@pytest.mark.llm_cassette(path=None, *", "@pytest.mark.llm_fault_matrix(*"]
    )


def test_vcr_config_record_mode_applies_when_option_and_marker_are_silent(
    pytester: pytest.Pytester, run: Run, upstream: str
) -> None:
    pytester.makepyfile(
        test_rec=f"""
        import httpx, pytest

        @pytest.fixture
        def vcr_config():
            return {{"record_mode": "new_episodes"}}

        @pytest.mark.llm_cassette
        def test_config(llm_cassette):
            httpx.post("{upstream}/json", json={{}})
            assert llm_cassette.record_mode == "new_episodes"

        @pytest.mark.llm_cassette(record_mode="none")
        def test_marker():
            httpx.post("{upstream}/json", json={{}})
        """
    )
    folder = pytester.path / "cassettes" / "test_rec"
    run("--record-mode=none").assert_outcomes(failed=2)  # the option wins: nothing records
    assert not folder.exists()
    run().assert_outcomes(passed=1, failed=1)  # the marker wins over vcr_config
    assert [p.name for p in folder.iterdir()] == ["test_config.yaml"]


def _dated_cassette(recording: Recording, date: str) -> str:
    document = load_yaml(recording.text())
    document["interactions"][0]["response"]["headers"]["date"] = [date]
    return json.dumps(document)


def test_max_age_days_warns_about_a_stale_cassette(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    pytester.makepyfile(
        test_chat=CLIENT
        + """
@pytest.mark.llm_cassette
def test_old(llm_cassette):
    chat()

@pytest.mark.llm_cassette
def test_new(llm_cassette):
    chat()
"""
    )
    folder = pytester.mkdir("cassettes") / "test_chat"
    folder.mkdir()
    (folder / "test_old.yaml").write_text(_dated_cassette(recording, "Mon, 01 Jan 2024 10:00:00 GMT"))
    now = email.utils.format_datetime(datetime.datetime.now(datetime.UTC), usegmt=True)
    (folder / "test_new.yaml").write_text(_dated_cassette(recording, now))
    result = run("--llm-max-age-days=90", "-W", "default::llmcassette.pytest_plugin.StaleCassetteWarning")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*StaleCassetteWarning: llmcassette: test_chat.py::test_old: cassette '*test_old.yaml' has 1 "
            "interaction(s) recorded more than 90 days ago (the oldest * days)*"
        ]
    )
    # The ini setting does the same; an error filter turns the warning into a failure.
    pytester.makeini("[pytest]\nllmcassette_max_age_days = 90\n")
    run("-W", "error::llmcassette.pytest_plugin.StaleCassetteWarning").assert_outcomes(passed=1, errors=1)


def test_max_age_days_ini_must_be_a_number(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_x="import pytest\n@pytest.mark.llm_cassette\ndef test_x(llm_cassette): pass")
    pytester.makeini("[pytest]\nllmcassette_max_age_days = soon\n")
    result = run()
    result.stdout.fnmatch_lines(["*llmcassette: the ini setting llmcassette_max_age_days must be a number*"])


def test_a_bad_max_age_setting_leaves_no_cassette_active(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(
        test_x="""
import pytest
from llmcassette._intercept import current_cassette

@pytest.mark.llm_cassette
def test_x(llm_cassette):
    pass

def test_after():
    assert current_cassette() is None
"""
    )
    pytester.makeini("[pytest]\nllmcassette_max_age_days = soon\n")
    run().assert_outcomes(passed=1, errors=1)
