"""
Status faults: the client gets an HTTP error in the provider's own shape instead of the recording.

The body, status and base headers come from the provider profile (``profile.error(kind)``), so an
Anthropic client sees an ``overloaded_error`` on a 529 and a Gemini client a ``RESOURCE_EXHAUSTED``
on a 429. On top of that every status fault can say when to retry:

- ``retry_after`` writes ``retry-after`` in seconds, ``retry_after_date`` writes it as an HTTP-date
  that many seconds from now (it takes the same header, so it wins over ``retry_after``), and
  ``retry_after_ms`` writes ``retry-after-ms``, which the Stainless SDKs read first;
- ``should_retry`` writes ``x-should-retry``, which the Stainless SDKs obey before the status code.

A status fault also refuses a WebSocket handshake (``apply_session``): the client gets that HTTP
answer instead of ``101 Switching Protocols``.

``rate_limit`` sends ``retry-after: 1`` and the provider's rate-limit headers unless told otherwise.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import replace
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator

from .._exchange import Playback, RequestInfo
from ..providers import ERROR_KINDS
from ._base import MAX_RETRY_AFTER_MS, MAX_RETRY_AFTER_S, MAX_TEXT_CHARS, FaultContext, ReplacingFault

if TYPE_CHECKING:
    from .._websocket._script import SessionContext, SessionScript

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
    """
    Shared fields and response building of the status faults (not registered itself).

    A status fault is declared by its error kind, which is also its registered name, in the class
    statement: ``class Forbidden(_StatusFault, kind="forbidden", example="forbidden:nth=1")``.
    Its summary is the kind's usual status (``403 Forbidden in the provider's shape``) unless the
    statement gives one (``summary=...``).
    """

    family = "status"
    #: The profile's error kind (a key of ``ERROR_KINDS``).
    kind: ClassVar[str] = "status"

    message: str | None = Field(
        default=None, max_length=MAX_TEXT_CHARS, description="error message instead of the provider's"
    )
    should_retry: bool | None = Field(
        default=None, description="send `x-should-retry: true|false` (the Stainless SDKs obey it)"
    )
    retry_after: float | None = Field(
        default=None,
        ge=0,
        le=MAX_RETRY_AFTER_S,
        allow_inf_nan=False,
        description="send `retry-after` in seconds (`none`: omit)",
    )
    retry_after_ms: float | None = Field(
        default=None,
        ge=0,
        le=MAX_RETRY_AFTER_MS,
        allow_inf_nan=False,
        description="send `retry-after-ms` in milliseconds",
    )
    retry_after_date: float | None = Field(
        default=None,
        ge=-_MAX_DATE_OFFSET_S,
        le=_MAX_DATE_OFFSET_S,
        allow_inf_nan=False,
        description="send `retry-after` as an HTTP-date this many seconds from now (wins over retry_after)",
    )

    def __init_subclass__(
        cls, *, kind: str = "", summary: str = "", example: str = "", **kwargs: Any
    ) -> None:
        if kind:
            if kind not in ERROR_KINDS:
                raise TypeError(
                    f"llmcassette: status fault {cls.__name__} has kind {kind!r}, which the provider "
                    f"profiles do not answer; use one of {', '.join(ERROR_KINDS)}."
                )
            cls.name = cls.kind = kind
            cls.summary = summary or _usual_summary(ERROR_KINDS[kind])
            cls.example = example
        elif summary or example:
            raise TypeError(
                f"llmcassette: status fault {cls.__name__} gives a summary or example without a kind; "
                "add `kind=...` to its class statement."
            )
        # Last, because the base class registers the fault by the name just set.
        super().__init_subclass__(**kwargs)

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

    def apply_session(self, script: SessionScript, context: SessionContext) -> SessionScript:
        """A WebSocket handshake refused with this status and the provider's error body."""
        from .._clock import current_clock
        from .._websocket._script import Refusal
        from ..providers import get_profile

        clock = current_clock()
        answer = self.respond(
            FaultContext(
                request=RequestInfo("GET", context.url, dict(context.headers)),
                profile=get_profile(context.provider),
                call=context.call,
                streaming=False,
                now_s=clock.time() if clock is not None else time.time(),
            )
        )
        refusal = Refusal(answer.status, answer.reason, answer.headers, answer.body)
        return replace(script, steps=(), refusal=refusal)

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


def _usual_summary(status: int) -> str:
    """The summary of a status fault that only sends its kind's error (``401 Unauthorized in ...``)."""
    return f"{status} {HTTPStatus(status).phrase} in the provider's shape"


def _number(value: float) -> str:
    """A delay as header text, to a thousandth of a unit and without trailing zeros (`2`, `2.5`)."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


class RateLimit(
    _StatusFault,
    kind="rate_limit",
    summary="429 Too Many Requests with Retry-After and the provider's rate-limit headers",
    example="rate_limit:retry_after_ms=250,times=2",
):
    """HTTP 429 with Retry-After (seconds, milliseconds or HTTP-date) and rate-limit headers."""

    retry_after: float | None = Field(
        default=1,
        ge=0,
        le=MAX_RETRY_AFTER_S,
        allow_inf_nan=False,
        description="send `retry-after` in seconds (`none`: omit)",
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


# The plain status faults: the kind's error and nothing more; the summary says the usual status.


class Unauthorized(_StatusFault, kind="unauthorized", example="unauthorized:nth=1"):
    """HTTP 401: the credentials were refused."""


class Forbidden(
    _StatusFault, kind="forbidden", example="forbidden:message=Project has no access to this model"
):
    """HTTP 403: the credentials may not use this resource."""


class NotFound(_StatusFault, kind="not_found", example="not_found:path=/v1/models/*"):
    """HTTP 404: no such model or endpoint."""


class BadRequest(_StatusFault, kind="bad_request", example="bad_request:should_retry=true,times=1"):
    """HTTP 400: the provider rejects the request."""


class ServerError(_StatusFault, kind="server_error", example="server_error:times=2"):
    """HTTP 500: the provider failed internally."""


class BadGateway(_StatusFault, kind="bad_gateway", example="bad_gateway:every=3"):
    """HTTP 502: a gateway in front of the provider failed."""


class Unavailable(_StatusFault, kind="unavailable", example="unavailable:retry_after=2,times=1"):
    """HTTP 503: the service is unavailable for now."""


class Overloaded(
    _StatusFault,
    kind="overloaded",
    summary="the provider's overloaded error (Anthropic 529 overloaded_error, Gemini 503 UNAVAILABLE)",
    example="overloaded:times=3",
):
    """The provider's overloaded error: Anthropic's 529, the others' own status and shape."""


class Status(
    _StatusFault,
    kind="status",
    summary="any HTTP status code with the provider's error body",
    example="status:code=504,message=Gateway timeout",
):
    """Any HTTP status, with the provider's error body for it."""

    code: int = Field(ge=100, le=599, description="the HTTP status code")

    def _status_code(self) -> int | None:
        return self.code
