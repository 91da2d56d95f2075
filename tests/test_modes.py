"""Record modes and replay pace: the accepted spellings, and errors that say what would work."""

from __future__ import annotations

from typing import Any

import pytest

from llmcassette._exceptions import ConfigError
from llmcassette._modes import RecordMode, parse_pace, parse_record_mode


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("none", RecordMode.NONE, id="none"),
        pytest.param("once", RecordMode.ONCE, id="once"),
        pytest.param("new_episodes", RecordMode.NEW_EPISODES, id="new-episodes"),
        pytest.param("all", RecordMode.ALL, id="all"),
        pytest.param("rewrite", RecordMode.REWRITE, id="rewrite"),
        pytest.param(RecordMode.ONCE, RecordMode.ONCE, id="enum-member"),
    ],
)
def test_record_modes(value: str | RecordMode, expected: RecordMode) -> None:
    assert parse_record_mode(value) is expected


def test_record_modes_are_pytest_recordings() -> None:
    # The same names as pytest-recording's --record-mode, so one option drives both.
    assert {m.value for m in RecordMode} == {"none", "once", "new_episodes", "all", "rewrite"}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("ONCE", id="upper-case"),
        pytest.param("new-episodes", id="dash"),
        pytest.param("", id="empty"),
        pytest.param("replay", id="unknown"),
    ],
)
def test_unknown_record_mode(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_record_mode(value)
    message = str(info.value)
    assert message.startswith(f"llmcassette: unknown record mode {value!r}; use one of ")
    assert "'new_episodes'" in message and "'rewrite'" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("instant", None, id="instant"),
        pytest.param(" Instant ", None, id="instant-any-case-and-spaces"),
        pytest.param("recorded", 1.0, id="recorded"),
        pytest.param("RECORDED", 1.0, id="recorded-upper"),
        pytest.param(2.0, 2.0, id="float"),
        pytest.param(3, 3.0, id="int"),
        pytest.param(0.25, 0.25, id="slower"),
        pytest.param("2x", 2.0, id="2x"),
        pytest.param("0.5X", 0.5, id="half-speed-upper-x"),
        pytest.param("1.5", 1.5, id="number-as-text"),
        pytest.param("1e3", 1000.0, id="exponent"),
    ],
)
def test_pace(value: Any, expected: float | None) -> None:
    result = parse_pace(value)
    assert result == expected
    assert result is None or isinstance(result, float)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1.0, id="negative"),
        pytest.param("0x", id="zero-x"),
        pytest.param("fast", id="word"),
        pytest.param("", id="empty"),
        pytest.param("x", id="only-x"),
        pytest.param("2xx", id="double-x"),
        pytest.param(float("inf"), id="infinite"),
        pytest.param("inf", id="infinite-text"),
        pytest.param(float("nan"), id="nan"),
        pytest.param("nan", id="nan-text"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="none"),
        pytest.param([2], id="list"),
    ],
)
def test_invalid_pace(value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        parse_pace(value)
    message = str(info.value)
    assert message.startswith(f"llmcassette: pace {value!r} is not valid; ")
    assert "'instant'" in message and "'recorded'" in message and "2.0" in message
    assert isinstance(info.value, ValueError)
