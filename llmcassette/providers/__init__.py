"""
Provider profiles, detected from each request (see :mod:`llmcassette.providers._base`).

Profiles are tried in ``PROFILES`` order, most specific first; the generic profile takes the rest.
"""

from __future__ import annotations

from .._exceptions import ConfigError
from .._exchange import RequestInfo
from ._base import ERROR_KINDS, ErrorResponse, Profile, Summary, ToolCall

__all__ = [
    "ERROR_KINDS",
    "GENERIC",
    "PROFILES",
    "ErrorResponse",
    "Profile",
    "Summary",
    "ToolCall",
    "detect_profile",
    "get_profile",
]

#: The fallback for upstreams no profile recognises.
GENERIC = Profile()

#: Every known profile, in detection order.
PROFILES: list[Profile] = []


def get_profile(name: str) -> Profile:
    """The profile called ``name``, or a clear error listing the known ones."""
    for profile in [*PROFILES, GENERIC]:
        if profile.name == name:
            return profile
    known = ", ".join(p.name for p in [*PROFILES, GENERIC])
    raise ConfigError(f"llmcassette: unknown provider profile {name!r}; known profiles: {known}.")


def detect_profile(request: RequestInfo, *, override: str | None = None) -> Profile:
    """The profile of ``request``: ``override`` when given, else the first that recognises it."""
    if override is not None:
        return get_profile(override)
    for profile in PROFILES:
        if profile.matches(request):
            return profile
    return GENERIC
