"""
The fault model: a fault is a pydantic model registered by name, with a schedule.

One vocabulary serves Python (``RateLimit(retry_after_ms=250, times=2)``), spec strings
(``"rate_limit:retry_after_ms=250,times=2"``, used by markers, CLI flags and request headers) and
cassette files. Two kinds of fault, by what they do with the recording:

- *replacing* faults answer instead of the recording (status and connection faults); they never
  consume a recorded interaction, so "429 twice, then the recording" is one fault with ``times=2``;
- *stream* faults transform the recorded response as it is played;
- *session* faults (:mod:`llmcassette.faults.websocket`) change a recorded WebSocket session as it
  is played; replacing faults answer a WebSocket handshake as they answer any request.

Each fault also names its *family* (``FAMILIES``: status, connection, stream or websocket), what
the client gets from it; the base class of each family sets it, and listings group the faults by it.
What a fault can act on (``acts_on``) keeps a plan's counts honest: an HTTP request never counts
for a WebSocket fault, nor a WebSocket session for a stream fault.

Schedules count the calls that pass a fault's filter, from 1: ``times=N`` fires on the first N,
``nth=K`` only on the K-th, ``every=K`` on every K-th, and ``probability=P`` with ``seed`` fires
on a deterministic pseudo-random subset. They combine: all given conditions must hold.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._exceptions import ConfigError
from .._exchange import Playback, RequestInfo

if TYPE_CHECKING:
    from ..providers import Profile

__all__ = [
    "FAMILIES",
    "MAX_COUNT",
    "MAX_DURATION_MS",
    "MAX_DURATION_S",
    "MAX_FAULTS",
    "MAX_RETRY_AFTER_MS",
    "MAX_RETRY_AFTER_S",
    "MAX_SIZE_BYTES",
    "MAX_TEXT_CHARS",
    "ConnectionFailure",
    "Fault",
    "FaultContext",
    "FaultFamily",
    "ReplacingFault",
    "StreamFault",
    "fault_names",
    "fault_types",
    "parse_fault",
]

#: A fault's family: what the client gets from it (see ``FAMILIES``).
FaultFamily = Literal["status", "connection", "stream", "websocket"]

#: The fault families, in listing order, each with what the client gets from its faults.
FAMILIES: dict[FaultFamily, str] = {
    "status": "the client gets an HTTP error in the provider's own shape instead of the recording",
    "connection": "the client gets no response, only the transport error of a network failure",
    "stream": "the recorded response, changed as it is played",
    "websocket": "the recorded WebSocket session, changed as it is played (closed, dropped, an event added)",
}

#: What a fault acts on: any request or WebSocket handshake, an HTTP response, or a WebSocket session.
ActsOn = Literal["request", "http", "websocket"]

_REGISTRY: dict[str, type[Fault]] = {}

# Every fault parameter has a range: a fault spec can come from a request header on `serve`, and
# a wait of 1e308 ms, a count past any real test or a megabyte of text would hold or bloat the
# server rather than test a client.

#: The longest wait or silence a fault may ask for: one hour, in milliseconds and in seconds.
MAX_DURATION_MS = 3_600_000.0
MAX_DURATION_S = 3_600.0
#: The largest Retry-After a status fault may send: one day, in seconds and in milliseconds. A
#: header value holds no connection, and tests of how a client treats a huge one need it.
MAX_RETRY_AFTER_S = 86_400.0
MAX_RETRY_AFTER_MS = 86_400_000.0
#: The largest call number, event number or call count a schedule or a fault may name.
MAX_COUNT = 1_000_000
#: The largest chunk size ``rechunk`` may ask for, in bytes (64 MiB).
MAX_SIZE_BYTES = 64 * 1024 * 1024
#: The longest text parameter (a message, a glob, a provider name), in characters.
MAX_TEXT_CHARS = 1_000
#: The most faults one plan may hold, and so the most that may fire on one request from one
#: source (a cassette's faults, ``--fault``, an ``x-llmcassette-fault`` header).
MAX_FAULTS = 32


@dataclass(frozen=True)
class FaultContext:
    """What a fault knows when it fires."""

    request: RequestInfo
    profile: Profile
    #: Which matching call this is for the fault, from 1.
    call: int
    #: Whether the request asked for a streamed response.
    streaming: bool
    #: Seconds since the epoch, from the virtual clock when one is active (for HTTP-date headers).
    now_s: float
    #: The client's read timeout for this request in seconds, when it set one.
    read_timeout_s: float | None = None
    #: The client's connect timeout for this request in seconds, when it set one.
    connect_timeout_s: float | None = None


@dataclass(frozen=True)
class ConnectionFailure:
    """A replacing fault's answer when there is no response at all: the client gets this error."""

    #: Name of the httpx/httpx2 exception class (``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``).
    error_type: str
    message: str
    #: How long the failure takes to show, in milliseconds (a timeout waits for the client's limit).
    delay_ms: float = 0.0
    #: ``delay_ms`` is the client's read timeout as the request was sent: a door whose library
    #: sets the read timeout only after it has sent the request (urllib3 over ``http.client``,
    #: which times the connect by the socket's timeout, then the read) waits the one set then.
    waits_for_read_timeout: bool = False


class Fault(BaseModel):
    """
    Base class of every fault. Subclasses set ``name`` (the registry key, as in specs) and
    ``summary`` (one line for ``llmcassette faults``), and implement the method of their kind
    (:class:`ReplacingFault` or :class:`StreamFault`). A named fault must have a ``family`` (one
    of ``FAMILIES``), which its family's base class gives it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str] = ""
    #: What the client gets from this fault (a key of ``FAMILIES``); no default, so that a fault
    #: cannot be registered without saying.
    family: ClassVar[FaultFamily]
    summary: ClassVar[str] = ""
    #: An example spec string, shown in listings and error messages.
    example: ClassVar[str] = ""
    #: What the fault acts on: the calls it counts are of that kind only (see ``applies_to``).
    acts_on: ClassVar[ActsOn] = "request"

    times: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="fire on the first N matching calls"
    )
    nth: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="fire only on the N-th matching call"
    )
    every: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="fire on every N-th matching call"
    )
    probability: float | None = Field(default=None, ge=0, le=1, description="fire with this probability")
    seed: int = Field(
        default=0,
        ge=-(2**63),
        le=2**63 - 1,
        description="seed of the probability draw (same seed, same calls)",
    )
    path: str | None = Field(
        default=None, max_length=MAX_TEXT_CHARS, description="only requests whose URL path matches this glob"
    )
    provider: str | None = Field(
        default=None, max_length=MAX_TEXT_CHARS, description="only requests of this provider profile"
    )
    stream: bool | None = Field(
        default=None, description="only streaming (true) or non-streaming (false) requests"
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if not name:
            return
        if name in _REGISTRY:
            raise TypeError(
                f"llmcassette: fault name {name!r} is already used by {_REGISTRY[name].__name__}."
            )
        family = getattr(cls, "family", None)
        if family not in FAMILIES:
            said = "has no family" if family is None else f"has family {family!r}, which is not one"
            raise TypeError(
                f"llmcassette: fault {name!r} ({cls.__name__}) {said}; set its `family` class attribute "
                f"to one of {', '.join(FAMILIES)}, or derive it from that family's base class."
            )
        _REGISTRY[name] = cls

    # -- schedule ----------------------------------------------------------------------------

    def applies_to(
        self, request: RequestInfo, *, provider: str, streaming: bool, websocket: bool = False
    ) -> bool:
        """
        Whether ``request`` passes this fault's filter (counted calls are the ones that do).
        ``websocket`` says the request is a WebSocket handshake: a fault that acts on HTTP
        responses does not count it, and one that acts on sessions counts nothing else.
        """
        if self.acts_on != "request" and (self.acts_on == "websocket") != websocket:
            return False
        if self.path is not None and not fnmatch.fnmatchcase(request.path, self.path):
            return False
        if self.provider is not None and self.provider != provider:
            return False
        return self.stream is None or self.stream == streaming

    def fires_on(self, call: int) -> bool:
        """Whether the fault fires on the ``call``-th matching call (from 1)."""
        if self.times is not None and call > self.times:
            return False
        if self.nth is not None and call != self.nth:
            return False
        if self.every is not None and call % self.every:
            return False
        if self.probability is not None:
            digest = hashlib.sha256(f"{self.seed}:{self.name}:{call}".encode()).digest()
            draw = int.from_bytes(digest[:8], "big") / 2**64
            if draw >= self.probability:
                return False
        return True

    # -- description -------------------------------------------------------------------------

    def spec(self) -> str:
        """This fault as a spec string that parses back to an equal fault."""
        fields = self.model_dump(exclude_defaults=True)
        if not fields:
            return self.name
        return self.name + ":" + ",".join(f"{key}={_spec_value(value)}" for key, value in fields.items())

    def __str__(self) -> str:
        return self.spec()


class ReplacingFault(Fault):
    """
    A fault that answers in place of the recording (a status, or a connection failure). It has
    no family of its own: the base classes of the status and the connection faults set theirs.
    """

    def respond(self, context: FaultContext) -> Playback | ConnectionFailure:
        """The response, or failure, the client gets instead of the recording."""
        raise NotImplementedError("The 'respond' method must be implemented.")  # pragma: no cover


class StreamFault(Fault):
    """
    A fault that transforms the recorded response as it is played.

    A fault that breaks the response (cuts it, corrupts it, errors it) leaves the recorded
    interaction unplayed, so the client's retry gets the recording: "an empty stream once, then
    the real one" is ``empty_stream:times=1``. One that delivers the same content differently
    (``rechunk``, ``slow``) sets ``consumes_recording`` and plays it as usual.
    """

    family = "stream"
    acts_on = "http"
    #: Whether the recorded interaction counts as played when this fault changes it.
    consumes_recording: ClassVar[bool] = False

    def apply(self, playback: Playback, context: FaultContext) -> Playback:
        """The playback with this fault applied."""
        raise NotImplementedError("The 'apply' method must be implemented.")  # pragma: no cover


def _spec_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fault_types() -> Mapping[str, type[Fault]]:
    """Every registered fault class by name."""
    return dict(_REGISTRY)


def fault_names() -> list[str]:
    """Every registered fault name, sorted."""
    return sorted(_REGISTRY)


def parse_fault(spec: str | Fault | Mapping[str, Any]) -> Fault:
    """
    A fault from a spec string (``name`` or ``name:key=value,...``), a mapping with a ``name``
    key, or a fault (returned as it is). Errors list the valid names or keys.
    """
    if isinstance(spec, Fault):
        return spec
    if isinstance(spec, Mapping):
        fields = dict(spec)
        name = str(fields.pop("name", ""))
    else:
        text = spec.strip()
        name, _, rest = text.partition(":")
        fields = {}
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(
                    f"llmcassette: fault spec {_shown(spec)} has {_shown(item)} where `key=value` belongs; "
                    f"write it as `{name}:key=value,...`."
                )
            fields[key.strip()] = value.strip()
    cls = _REGISTRY.get(name.strip())
    if cls is None:
        raise ConfigError(
            f"llmcassette: unknown fault {_shown(name)} in {_shown(spec)}; known faults: "
            f"{', '.join(fault_names())}."
        )
    unknown = [key for key in fields if key not in cls.model_fields]
    if unknown:
        raise ConfigError(
            f"llmcassette: fault {name!r} has no parameter {unknown[0]!r}; "
            f"its parameters: {', '.join(sorted(cls.model_fields))}."
        )
    try:
        return cls.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(
            f"llmcassette: fault spec {_shown(spec)}: parameter `{where}`: {first['msg']}."
        ) from None


def _shown(text: object) -> str:
    # A spec may come from a request header: an error quotes enough of it to find it, not all.
    shown = repr(text)
    return shown if len(shown) <= 120 else shown[:100] + f"... ({len(shown)} characters)"
