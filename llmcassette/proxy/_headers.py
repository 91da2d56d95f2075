"""Which headers the proxy and ``serve`` pass on: never those of one connection."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["HOP_BY_HOP", "message_headers"]

#: Headers that describe one connection, not the message: never passed on, in either direction.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_CONNECTION = frozenset({b"connection", b"proxy-connection"})


Headers = list[tuple[bytes, bytes]]


def message_headers(raw: Iterable[tuple[bytes, bytes]], dropped: frozenset[bytes]) -> Headers:
    """
    ``raw`` without the headers in ``dropped`` (lower-case names, ``HOP_BY_HOP`` and more) and
    without those a ``Connection`` header names (``Connection: close, x-trace``).
    """
    pairs = list(raw)
    named = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() in _CONNECTION
        for token in value.split(b",")
    }
    unwanted = dropped | named
    return [(name, value) for name, value in pairs if name.lower() not in unwanted]
