"""
The exceptions llmcassette raises.

    LlmCassetteError
    ├── CassetteError              a cassette file cannot be used
    │   ├── CassetteNotFound       the file does not exist where a replay needs it
    │   ├── CassetteFormatError    the file is not a valid cassette (names file, interaction, field)
    │   ├── CassetteReadError      the file system refused to read the file (a folder, a link loop)
    │   └── CassetteWriteError     the file system refused to save it (full disk, read-only folder)
    ├── ConfigError                an option given to llmcassette is not valid (also a ValueError)
    └── NoMatchingInteraction      a request has no recorded response and may not be recorded

Every message is a full sentence that starts with ``llmcassette:`` and says what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CassetteError",
    "CassetteFormatError",
    "CassetteNotFound",
    "CassetteReadError",
    "CassetteWriteError",
    "ConfigError",
    "LlmCassetteError",
    "MissCandidate",
    "NoMatchingInteraction",
]


class LlmCassetteError(Exception):
    """Base class of every error llmcassette raises on purpose."""


class CassetteError(LlmCassetteError):
    """A cassette file cannot be loaded, validated or saved."""

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None


class CassetteNotFound(CassetteError):
    """The cassette file does not exist and the record mode forbids creating it."""


class CassetteFormatError(CassetteError):
    """The cassette file exists but is not a valid cassette."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        interaction: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, path=path)
        self.interaction = interaction
        self.field = field


class CassetteReadError(CassetteError):
    """The file system would not give the cassette's bytes; ``reason`` is its own words."""

    def __init__(self, message: str, *, path: Path | str, reason: str) -> None:
        super().__init__(message, path=path)
        self.reason = reason


class CassetteWriteError(CassetteError):
    """
    The file system would not save the cassette; ``reason`` is its own words. The file on disk is
    as it was before the save began, and no temporary file is left beside it.
    """

    def __init__(self, message: str, *, path: Path | str, reason: str) -> None:
        super().__init__(message, path=path)
        self.reason = reason


class ConfigError(LlmCassetteError, ValueError):
    """An option passed to llmcassette is not valid."""


@dataclass(frozen=True)
class MissCandidate:
    """A recorded request that a missed one was compared with, and how it differs."""

    cassette: str
    #: Its index in the cassette, from 0.
    interaction: int
    method: str
    url: str
    #: One sentence per differing part; empty for a request that matches but was already played.
    differences: list[str] = field(default_factory=list)


class NoMatchingInteraction(LlmCassetteError):
    """
    A request reached a cassette that has no response for it and may not record one.
    ``candidates`` are the closest recorded requests, as the message lists them.
    """

    def __init__(
        self, message: str, *, method: str, url: str, candidates: Sequence[MissCandidate] = ()
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.candidates = list(candidates)
