"""
Status faults: the client gets an HTTP error in the provider's own shape instead of the recording.

The body, status and base headers come from the provider profile (``profile.error(kind)``), so an
Anthropic client sees an ``overloaded_error`` on a 529 and a Gemini client a ``RESOURCE_EXHAUSTED``
on a 429. On top of that every status fault can say when to retry:

- ``retry_after`` writes ``retry-after`` in seconds, ``retry_after_date`` writes it as an HTTP-date
  that many seconds from now (it takes the same header, so it wins over ``retry_after``), and
  ``retry_after_ms`` writes ``retry-after-ms``, which the Stainless SDKs read first;
- ``should_retry`` writes ``x-should-retry``, which the Stainless SDKs obey before the status code.

``rate_limit`` sends ``retry-after: 1`` and the provider's rate-limit headers unless told otherwise.
"""

from __future__ import annotations

import email.utils
from typing import Any, ClassVar

from pydantic import Field, field_validator

from .._exchange import Playback
from ._base import FaultContext, ReplacingFault

__all__ = [
    "BadGateway",
    "BadRequest",
    "Forbidden",
    "NotFound",
    "Overloaded",
    "RateLimit",
    "ServerError",
    "Status",
    "Unauthorized",
    "Unavailable",
]

# Bounds an HTTP-date can be written for (about thirty years either way), so that formatting never
# overflows; a negative offset is a date in the past, which the SDKs treat as "no server delay".
_MAX_DATE_OFFSET_S = 1e9
_OFF_WORDS = frozenset({"none", "null", "off", "false"})


class _StatusFault(ReplacingFault):
    """Shared fields and response building of the status faults (not registered itself)."""

    #: The profile's error kind (a key of ``ERROR_KINDS``).
    kind: ClassVar[str] = "status"

    message: str | None = Field(default=None, description="error message instead of the provider's")
    should_retry: bool | None = Field(
        default=None, description="send `x-should-retry: true|false` (the Stainless SDKs obey it)"
    )
    retry_after: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="send `retry-after` in seconds (`none`: omit)"
    )
    retry_after_ms: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="send `retry-after-ms` in milliseconds"
    )
    retry_after_date: float | None = Field(
        default=None,
        ge=-_MAX_DATE_OFFSET_S,
        le=_MAX_DATE_OFFSET_S,
        allow_inf_nan=False,
        description="send `retry-after` as an HTTP-date this many seconds from now (wins over retry_after)",
    )

    @field_validator("retry_after", "retry_after_ms", "retry_after_date", mode="before")
    @classmethod
    def _off_word(cls, value: Any) -> Any:
        # Spec strings have no None literal: `retry_after=none` turns a header off (and is what
        # `spec()` writes for None, so specs round-trip).
        if isinstance(value, str) and value.strip().lower() in _OFF_WORDS:
            return None
        return value

    def _status_code(self) -> int | None:
        """The status to ask the profile for; None lets the profile choose its own."""
        return None

    def retry_delay_s(self) -> float | None:
        """
        The delay the retry hints tell the client, in seconds, as the Stainless SDKs read them:
        ``retry-after-ms`` first, then ``retry-after`` (an HTTP-date when ``retry_after_date`` is set).
        """
        if self.retry_after_ms is not None:
            return self.retry_after_ms / 1000.0
        if self.retry_after_date is not None:
            return self.retry_after_date
        return self.retry_after

    def _profile_headers(
        self, headers: tuple[tuple[str, str], ...], context: FaultContext
    ) -> list[tuple[str, str]]:
        """The profile's headers the fault keeps (all of them, unless a subclass says otherwise)."""
        return list(headers)

    def respond(self, context: FaultContext) -> Playback:
        """The provider's error response, with content headers and the configured retry hints."""
        # The delay goes to the profile too, for providers that repeat it in the body (Gemini's RetryInfo).
        error = context.profile.error(
            self.kind,
            status=self._status_code(),
            message=self.message,
            retry_after_s=self.retry_delay_s(),
            now_s=context.now_s,
        )
        # Header names the fault owns: a value replaces the profile's, None removes it.
        owned: dict[str, str | None] = {
            "content-length": str(len(error.body)),
            "retry-after": _number(self.retry_after) if self.retry_after is not None else None,
            "retry-after-ms": _number(self.retry_after_ms) if self.retry_after_ms is not None else None,
            "x-should-retry": None if self.should_retry is None else str(self.should_retry).lower(),
        }
        if self.retry_after_date is not None:
            owned["retry-after"] = email.utils.formatdate(context.now_s + self.retry_after_date, usegmt=True)
        # A name the profile repeats is sent once, with its last value, where it first appeared.
        merged: dict[str, tuple[str, str]] = {}
        for key, value in self._profile_headers(error.headers, context):
            if key.lower() not in owned:
                merged[key.lower()] = (key, value)
        headers = list(merged.values())
        if "content-type" not in merged:
            headers.insert(0, ("content-type", "application/json"))
        headers.extend((key, value) for key, value in owned.items() if value is not None)
        return Playback(status=error.status, headers=tuple(headers), chunks=(error.body,))


def _number(value: float) -> str:
    """A delay as header text, to a thousandth of a unit and without trailing zeros (`2`, `2.5`)."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


class RateLimit(_StatusFault):
    """HTTP 429 with Retry-After (seconds, milliseconds or HTTP-date) and rate-limit headers."""

    name = "rate_limit"
    kind = "rate_limit"
    summary = "429 Too Many Requests with Retry-After and the provider's rate-limit headers"
    example = "rate_limit:retry_after_ms=250,times=2"

    retry_after: float | None = Field(
        default=1, ge=0, allow_inf_nan=False, description="send `retry-after` in seconds (`none`: omit)"
    )
    rate_limit_headers: bool = Field(
        default=True, description="send the provider's rate-limit headers (x-ratelimit-* and the like)"
    )

    def _profile_headers(
        self, headers: tuple[tuple[str, str], ...], context: FaultContext
    ) -> list[tuple[str, str]]:
        limits = context.profile.rate_limit_headers(now_s=context.now_s)
        if self.rate_limit_headers:
            # Profiles add them to a 429 already; adding them again (deduplicated) covers any that do not.
            return [*headers, *limits]
        names = {key.lower() for key, _ in limits}
        return [(key, value) for key, value in headers if key.lower() not in names]


class Unauthorized(_StatusFault):
    """HTTP 401: the credentials were refused."""

    name = "unauthorized"
    kind = "unauthorized"
    summary = "401 Unauthorized in the provider's shape"
    example = "unauthorized:nth=1"


class Forbidden(_StatusFault):
    """HTTP 403: the credentials may not use this resource."""

    name = "forbidden"
    kind = "forbidden"
    summary = "403 Forbidden in the provider's shape"
    example = "forbidden:message=Project has no access to this model"


class NotFound(_StatusFault):
    """HTTP 404: no such model or endpoint."""

    name = "not_found"
    kind = "not_found"
    summary = "404 Not Found in the provider's shape"
    example = "not_found:path=/v1/models/*"


class BadRequest(_StatusFault):
    """HTTP 400: the provider rejects the request."""

    name = "bad_request"
    kind = "bad_request"
    summary = "400 Bad Request in the provider's shape"
    example = "bad_request:should_retry=true,times=1"


class ServerError(_StatusFault):
    """HTTP 500: the provider failed internally."""

    name = "server_error"
    kind = "server_error"
    summary = "500 Internal Server Error in the provider's shape"
    example = "server_error:times=2"


class BadGateway(_StatusFault):
    """HTTP 502: a gateway in front of the provider failed."""

    name = "bad_gateway"
    kind = "bad_gateway"
    summary = "502 Bad Gateway in the provider's shape"
    example = "bad_gateway:every=3"


class Unavailable(_StatusFault):
    """HTTP 503: the service is unavailable for now."""

    name = "unavailable"
    kind = "unavailable"
    summary = "503 Service Unavailable in the provider's shape"
    example = "unavailable:retry_after=2,times=1"


class Overloaded(_StatusFault):
    """The provider's overloaded error: Anthropic's 529, the others' own status and shape."""

    name = "overloaded"
    kind = "overloaded"
    summary = "the provider's overloaded error (Anthropic 529 overloaded_error, Gemini 503 UNAVAILABLE)"
    example = "overloaded:times=3"


class Status(_StatusFault):
    """Any HTTP status, with the provider's error body for it."""

    name = "status"
    kind = "status"
    summary = "any HTTP status code with the provider's error body"
    example = "status:code=504,message=Gateway timeout"

    code: int = Field(ge=100, le=599, description="the HTTP status code")

    def _status_code(self) -> int | None:
        return self.code
