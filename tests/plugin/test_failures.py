"""The text a user sees when something goes wrong, checked line by line."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.recordings import Recording

from ._cassettes import CLIENT
from .conftest import SUBPROCESS_ARGS

pytest_plugins = ["pytester"]

Run = Callable[..., pytest.RunResult]


def _module(pytester: pytest.Pytester, body: str, recording: Recording | None) -> None:
    """The inner module ``test_chat`` with ``body``, replaying ``recording`` at its default path."""
    pytester.makepyfile(test_chat=CLIENT + body)
    if recording is not None:
        recording.copy_to(pytester.path / "cassettes" / "test_chat" / "test_chat.yaml")


def test_no_matching_interaction_shows_candidates_and_the_fix(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    _module(pytester, "\n@pytest.mark.llm_cassette\ndef test_chat():\n    chat('bye')\n", recording)
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       *NoMatchingInteraction: llmcassette: no recorded interaction matches POST "
            "https://api.openai.com/v1/chat/completions in cassette '*test_chat.yaml' (record mode 'none').",
            "E *Closest recorded candidates:",
            "E *- #0 POST https://api.openai.com/v1/chat/completions: body differs: "
            '`messages[[]0]*content` is "bye", recorded "hi"',
            "E *To record it, run with record_mode='new_episodes' (pytest: --record-mode=new_episodes); *",
        ],
        consecutive=True,
    )


def test_a_miss_the_client_swallowed_still_fails_the_test(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    body = """
@pytest.mark.llm_cassette
def test_chat():
    try:
        chat('bye')
    except Exception:
        pass  # a client that retries or falls back hides the miss
"""
    _module(pytester, body, recording)
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       *NoMatchingInteraction: llmcassette: no recorded interaction matches POST *",
            "E *Closest*",
        ]
    )


def test_missing_cassette_in_none_mode_says_how_to_record(pytester: pytest.Pytester, run: Run) -> None:
    _module(pytester, "\n@pytest.mark.llm_cassette\ndef test_chat():\n    chat()\n", None)
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       *NoMatchingInteraction: llmcassette: cassette file "
            "'*cassettes/test_chat/test_chat.yaml' does not exist, "
            "and record mode 'none' does not record, so POST "
            "https://api.openai.com/v1/chat/completions cannot be answered. Record it by running once "
            "with record_mode='once' (pytest: --record-mode=once).",
        ]
    )


def test_unknown_fault_in_a_marker_is_a_setup_error_listing_valid_names(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    _module(pytester, "\n@pytest.mark.llm_faults('rate_limt')\ndef test_chat():\n    chat()\n", recording)
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_chat*",
            "llmcassette: unknown fault 'rate_limt' in 'rate_limt'; known faults: bad_crc, bad_gateway, "
            "bad_request, *, rate_limit, *",
        ]
    )
    result.stdout.no_fnmatch_line("*During handling*")  # said once, not once per exception


def test_unknown_fault_in_a_matrix_is_a_collection_error(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    _module(
        pytester,
        "\n@pytest.mark.llm_fault_matrix(['rate_limit', 'disconect'])\ndef test_chat():\n    chat()\n",
        recording,
    )
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting test_chat.py*",
            "llmcassette: unknown fault 'disconect' in 'disconect'; known faults: *",
        ]
    )


def test_unknown_fault_on_the_command_line_is_a_usage_error(pytester: pytest.Pytester, run: Run) -> None:
    _module(pytester, "\ndef test_chat():\n    pass\n", None)
    result = run("--llm-faults=ratelimit")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: llmcassette: unknown fault 'ratelimit' in 'ratelimit'; known faults: *"]
    )


def test_unknown_marker_argument_is_a_setup_error(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    _module(
        pytester, "\n@pytest.mark.llm_cassette(recordmode='once')\ndef test_chat():\n    chat()\n", recording
    )
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "llmcassette: `llm_cassette` got unknown argument(s) recordmode; "
            "it accepts path, record_mode, pace, *"
        ]
    )


_UNFIRED = """
# The fault only hits requests to /v1/embeddings: this test never makes one.
@pytest.mark.llm_faults('rate_limit:path=/v1/embeddings')
def test_chat():
    assert chat() == 'Hello there'
"""


def test_a_fault_that_never_fired_fails_the_test_by_default(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    _module(pytester, _UNFIRED, recording)
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "llmcassette: fault 'rate_limit:path=/v1/embeddings' never fired in this test "
            "(1 request(s) reached the cassette), so the test proves nothing about it. "
            "Check the fault's schedule and filters "
            "(path=, stream=, provider=), or pass --llm-unfired=warn or ignore.",
        ]
    )


def test_a_fault_that_never_fired_warns_or_is_ignored_on_request(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    _module(pytester, _UNFIRED, recording)
    # (in-process, the outer suite's `filterwarnings = error` would turn the warning into a failure)
    warned = run("--llm-unfired=warn", "-W", "default::UserWarning")
    warned.assert_outcomes(passed=1, warnings=1)
    warned.stdout.fnmatch_lines(
        ["*UnfiredFaultWarning: llmcassette: fault 'rate_limit:path=/v1/embeddings' never*"]
    )
    run("--llm-unfired=ignore").assert_outcomes(passed=1)


def test_suite_wide_faults_are_not_held_to_firing(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    _module(pytester, "\n@pytest.mark.llm_cassette\ndef test_chat():\n    assert chat()\n", recording)
    run("--llm-faults=rate_limit:path=/v1/embeddings").assert_outcomes(passed=1)


def test_recording_under_block_network_fails_clearly(
    pytester: pytest.Pytester, run: Run, upstream: str
) -> None:
    pytester.makepyfile(
        test_rec=f"""
        import httpx, pytest

        @pytest.mark.llm_cassette
        def test_rec():
            httpx.post("{upstream}/json", json={{}})
        """
    )
    # In a subprocess: the refused connection leaves a socket for the garbage collector.
    result = pytester.runpytest_subprocess(*SUBPROCESS_ARGS, "--record-mode=once", "--block-network")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            # (pytest-recording names the host from 0.14.1 on)
            "E       RuntimeError: Network is disabled*",
            "E       llmcassette: record mode 'once' sent POST http://127.0.0.1:*/json upstream "
            "to record it, and network blocking (--block-network) refused the connection. "
            "Record without --block-network, or "
            "allow the host with --allowed-hosts (a regex list, e.g. --allowed-hosts=127.0.0.1).",
        ]
    )
    assert not (pytester.path / "cassettes").exists()
    # Loopback allowed: it records.
    run("--record-mode=once", "--block-network", "--allowed-hosts=127.0.0.1").assert_outcomes(passed=1)
    assert (pytester.path / "cassettes" / "test_rec" / "test_rec.yaml").is_file()
    # Replay never connects, so it passes with the network blocked and nothing allowed.
    run("--block-network").assert_outcomes(passed=1)


def test_a_test_that_expects_a_miss_says_so_with_expect_miss(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    body = """
@pytest.mark.llm_cassette
def test_chat(llm_cassette):
    with llm_cassette.expect_miss() as missed:
        chat('bye')
    assert str(missed.value).startswith("llmcassette: no recorded interaction matches POST")
    assert chat() == "Hello there"

@pytest.mark.llm_cassette
def test_swallowed(llm_cassette):
    with llm_cassette.expect_miss():
        try:
            chat('bye')
        except Exception:
            pass  # a client's fallback

@pytest.mark.llm_cassette
def test_raises_alone():
    with pytest.raises(Exception):
        chat('bye')
"""
    _module(pytester, body, recording)
    folder = pytester.path / "cassettes" / "test_chat"
    for name in ("test_swallowed", "test_raises_alone"):
        recording.copy_to(folder / f"{name}.yaml")
    result = run("-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*::test_raises_alone FAILED*"])
    result.stdout.fnmatch_lines(
        [
            "E       *NoMatchingInteraction: llmcassette: no recorded interaction matches POST *",
            "E *Closest*",
            "*",
            "E *llmcassette: the test went on after this miss (the client or the test caught it). A test "
            "that expects it makes the request inside `with llm_cassette.expect_miss():`.",
        ]
    )
