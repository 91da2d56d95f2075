"""
The two HTTP libraries llmcassette intercepts: httpx and httpx2.

They are separate packages with the same API and separate classes, so a response, a stream or an
exception made for one is foreign to the other. A :class:`Flavor` holds one library's module and
the stream classes llmcassette builds on it; everything that creates library objects goes through
the flavor of the transport that received the request.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

__all__ = [
    "FLAVOR_NAMES",
    "REFUSED",
    "RESET",
    "TIMED_OUT",
    "Flavor",
    "available_flavors",
    "get_flavor",
    "network_text",
]

#: The libraries llmcassette knows, in the order they are patched.
FLAVOR_NAMES = ("httpx", "httpx2")

# What a network failure's exception says when the socket layer gave the text: the texts of the
# sync transports on plain HTTP on Linux, from which `network_text` finds the others. Faults and
# the engine raise with these; a library's own words for a failure are left as they are.
REFUSED = "[Errno 111] Connection refused"
RESET = "[Errno 104] Connection reset by peer"
TIMED_OUT = "timed out"
# The async transports run httpcore on anyio, whose exceptions carry no text (its TimeoutError,
# BrokenResourceError), but for a refused connection: the last of its attempts, in a group.
_ASYNC_TEXTS = {REFUSED: "All connection attempts failed", RESET: "", TIMED_OUT: ""}
# On TLS a read that times out is the ssl module's, which says so in its own words.
_TLS_READ_TIMEOUT = "The read operation timed out"


def network_text(error_type: str, text: str, *, is_async: bool, url: str) -> str:
    """
    What ``error_type`` (``ReadTimeout``, ...) says live, from a sync or async transport, for a
    request to ``url``, where the sync transport on plain HTTP says ``text``: the same, but for
    the async transports' and TLS's own words (measured against real sockets: a refused port, a
    silent server, a reset, over http and https).
    """
    if is_async:
        return _ASYNC_TEXTS.get(text, text)
    if text == TIMED_OUT and error_type == "ReadTimeout" and url.startswith("https:"):
        return _TLS_READ_TIMEOUT
    return text


# One flavor per library (see `get_flavor`), so identity is equality: hashing one, as the caches
# keyed by it do on every request, costs nothing.
@dataclass(frozen=True, eq=False)
class Flavor:
    """One HTTP library: its module, and the llmcassette stream classes that fit it."""

    name: str
    module: ModuleType
    #: A stream that is both a ``SyncByteStream`` and an ``AsyncByteStream`` of this library.
    stream_base: tuple[type, ...]
    #: The name under which objects of this library made from plain data are kept beside it
    #: (a replayed response's headers, see :mod:`llmcassette._playback`).
    derived_key: str = ""

    def exception(self, name: str) -> type[Exception]:
        """The library's exception class called ``name``, or its ``ReadError`` when it has none."""
        found = getattr(self.module, name, None)
        if isinstance(found, type) and issubclass(found, Exception):
            return found
        fallback: type[Exception] = self.module.ReadError
        return fallback

    def failure(self, error_type: str, text: str, *, is_async: bool, url: str) -> Exception:
        """The exception ``error_type``, saying what it says live from a sync or async transport
        for ``url`` where the sync transport on plain HTTP says ``text`` (see :func:`network_text`)."""
        return self.exception(error_type)(network_text(error_type, text, is_async=is_async, url=url))

    def response(
        self, status_code: int, *, headers: list[tuple[bytes, bytes]], stream: Any, extensions: Any
    ) -> Any:
        """A response object of this library."""
        return self.module.Response(status_code, headers=headers, stream=stream, extensions=extensions)


@cache
def get_flavor(name: str) -> Flavor | None:
    """The flavor called ``name``, or None when that library is not installed."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return Flavor(
        name=name,
        module=module,
        stream_base=(module.SyncByteStream, module.AsyncByteStream),
        derived_key=f"_{name}_derived",
    )


def available_flavors() -> list[Flavor]:
    """Every installed library llmcassette can intercept."""
    return [flavor for name in FLAVOR_NAMES if (flavor := get_flavor(name)) is not None]
