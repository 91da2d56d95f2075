"""
Value types shared by every part of the cassette format (HTTP interactions and WebSocket
sessions): times in milliseconds and named JSON serialisations, each checked when a file loads.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from ._bodies import JSON_FORMATS

__all__ = ["MAX_TIME_MS", "FormatModel", "JsonFormat", "TimeMs"]

#: The latest time a recording may state (`elapsed_ms`, `offsets_ms`): one day. A longer wait is
#: a damaged file, and `pace="recorded"` would sleep for it.
MAX_TIME_MS = 86_400_000.0


def _known_json_format(value: str | None) -> str | None:
    # Replay rebuilds the body's bytes in this format: an unknown name would fail there, not here.
    if value is not None and value not in JSON_FORMATS:
        raise PydanticCustomError(
            "json_format",
            "{value} is not a JSON format llmcassette knows ({known}); delete `json_format` "
            "(the body is then written as `json.dumps` writes it)",
            {"value": repr(value), "known": ", ".join(sorted(JSON_FORMATS))},
        )
    return value


def _time_ms(value: float) -> float:
    # NaN fails every comparison, so it is refused with the rest.
    if not 0 <= value <= MAX_TIME_MS:
        raise PydanticCustomError(
            "time_ms",
            "{value} is not a time llmcassette can replay; it must be a number of milliseconds "
            "from 0 to {limit} (one day)",
            {"value": repr(value), "limit": f"{MAX_TIME_MS:.0f}"},
        )
    return value


JsonFormat = Annotated[str | None, AfterValidator(_known_json_format)]
TimeMs = Annotated[float, AfterValidator(_time_ms)]


class FormatModel(BaseModel):
    """Base of the file's models: unknown keys are kept, so a file loaded and saved loses nothing."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
