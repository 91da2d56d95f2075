"""A test whose cassette holds a value llmcassette cannot replay fails with the file's error, in one line."""

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


SENT = '{"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param("!!binary AAEC", "it holds `!!binary` bytes at `messages`", id="binary"),
        pytest.param("!!set {a}", "it holds a `!!set` at `messages`", id="set"),
    ],
)
@pytest.mark.parametrize("side", ["request", "response"])
def test_a_parsed_body_json_cannot_hold_fails_the_test_with_one_clear_line(
    pytester: pytest.Pytester, run: Run, value: str, fragment: str, side: str
) -> None:
    # Before: the test failed with a bare `TypeError: Object of type bytes is not JSON serializable`.
    pytester.makepyfile(test_chat=CLIENT + "\n@pytest.mark.llm_cassette\ndef test_chat():\n    chat('hi')\n")
    folder = pytester.path / "cassettes" / "test_chat"
    folder.mkdir(parents=True)
    bad = f"parsed_body: {{model: gpt-4o, messages: {value}}}"
    request = bad if side == "request" else f"body: '{SENT}'"
    (folder / "test_chat.yaml").write_text(
        "interactions:\n"
        f"- request: {{method: POST, uri: '{CHAT_URL}', headers: {{}}, {request}}}\n"
        "  response:\n"
        "    status: {code: 200, message: OK}\n"
        "    headers: {content-type: [application/json]}\n"
        f"    {bad if side == 'response' else 'parsed_body: {}'}\n"
        "version: 1\n"
    )
    result = run()
    # A request is read when the cassette is entered (the test's set-up), a response when played.
    result.assert_outcomes(**({"errors": 1} if side == "request" else {"failed": 1}))
    result.stdout.fnmatch_lines(
        [
            "E   *CassetteFormatError: llmcassette: cassette '*test_chat.yaml' is not valid: interaction 0, "
            f"field `{side}.parsed_body`: {fragment}, which JSON cannot hold. *"
        ]
    )
    assert "TypeError" not in result.stdout.str()
