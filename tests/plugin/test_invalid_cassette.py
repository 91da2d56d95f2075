"""A test whose cassette has a recorded URL that does not split fails with the file's error."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.recordings import Recording

from ._cassettes import CHAT_URL, CLIENT

pytest_plugins = ["pytester"]

Run = Callable[..., pytest.RunResult]


def test_an_unparsable_recorded_url_fails_the_test_with_one_clear_line(
    pytester: pytest.Pytester, run: Run, recording: Recording
) -> None:
    pytester.makepyfile(test_chat=CLIENT + "\n@pytest.mark.llm_cassette\ndef test_chat():\n    chat('hi')\n")
    path = recording.copy_to(pytester.path / "cassettes" / "test_chat" / "test_chat.yaml")
    broken = recording.text().replace(CHAT_URL, "https://api.openai.com:123456/v1/chat/completions")
    assert broken != recording.text()
    path.write_text(broken)
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "E   *CassetteFormatError: llmcassette: cassette '*test_chat.yaml' is not valid: interaction 0, "
            "field `request.uri`: is not a URL: Port out of range 0-65535. Fix the file by hand, or delete "
            "it and record the cassette again."
        ]
    )
    assert "ValueError" not in result.stdout.str()
