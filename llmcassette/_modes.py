"""Record modes and replay pace: the two options that decide what a cassette does."""

from __future__ import annotations

import enum

from ._exceptions import ConfigError

__all__ = ["Pace", "RecordMode", "parse_pace", "parse_record_mode"]


class RecordMode(enum.StrEnum):
    """When a cassette replays and when it records, with pytest-recording's meanings."""

    #: Replay only; a request with no recorded response is an error. Never writes the file.
    NONE = "none"
    #: Record everything when the file does not exist yet; otherwise behave like ``none``.
    ONCE = "once"
    #: Replay what is recorded and record what is not, appending to the file.
    NEW_EPISODES = "new_episodes"
    #: Record every request, never replay; recorded interactions are kept and new ones appended.
    ALL = "all"
    #: Discard the file's interactions and record every request afresh.
    REWRITE = "rewrite"


#: A replay pace: ``"instant"``, ``"recorded"``, or a speed factor (2.0 plays twice as fast).
Pace = str | float


def parse_record_mode(value: str | RecordMode) -> RecordMode:
    """A record mode from its name, or a clear error."""
    try:
        return RecordMode(value)
    except ValueError:
        names = ", ".join(repr(m.value) for m in RecordMode)
        raise ConfigError(f"llmcassette: unknown record mode {value!r}; use one of {names}.") from None


def parse_pace(value: Pace) -> float | None:
    """The speed factor a pace stands for, or None for instant replay."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "instant":
            return None
        if text == "recorded":
            return 1.0
        try:
            speed = float(text.removesuffix("x"))
        except ValueError:
            speed = -1.0
    elif isinstance(value, int | float) and not isinstance(value, bool):
        speed = float(value)
    else:
        speed = -1.0
    if not speed > 0 or speed == float("inf"):
        raise ConfigError(
            f"llmcassette: pace {value!r} is not valid; use 'instant', 'recorded', or a speed factor "
            "above 0 such as 2.0 (twice as fast as recorded)."
        )
    return speed
