"""
In-process interception: the transport methods llmcassette patches while a cassette is active.

The patch is on the transport *classes* (``HTTPTransport.handle_request`` and
``AsyncHTTPTransport.handle_async_request`` of httpx and of httpx2), so it reaches transports that
SDKs build for themselves, before or after the cassette was entered. Other transports, such as
``MockTransport`` or a user's own ``BaseTransport``, are not the network and are left alone.

It is installed when the first cassette activates and removed when the last one deactivates.
Which cassette answers a request: the one activated in the current context (task or thread that
entered it), else the most recently activated one, so that worker threads an SDK starts are
covered too.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._flavors import Flavor, available_flavors

if TYPE_CHECKING:
    from ._cassette import Cassette

__all__ = ["activate", "current_cassette", "deactivate", "is_installed"]

_lock = threading.RLock()
_active: list[Cassette] = []
_current: contextvars.ContextVar[Cassette | None] = contextvars.ContextVar(
    "llmcassette_current", default=None
)


@dataclass(frozen=True)
class _Patch:
    owner: type
    attribute: str
    original: Any
    replacement: Any


_patches: list[_Patch] = []


def current_cassette() -> Cassette | None:
    """The cassette that answers a request made now, if any."""
    cassette = _current.get()
    if cassette is not None and cassette in _active:
        return cassette
    return _active[-1] if _active else None


def _sync_handler(flavor: Flavor, original: Callable[..., Any]) -> Callable[..., Any]:
    def handle_request(self: Any, request: Any) -> Any:
        cassette = current_cassette()
        if cassette is None:
            return original(self, request)
        return cassette.handle_request(flavor, request, lambda req: original(self, req))

    handle_request.__wrapped__ = original  # type: ignore[attr-defined]
    return handle_request


def _async_handler(flavor: Flavor, original: Callable[..., Any]) -> Callable[..., Any]:
    async def handle_async_request(self: Any, request: Any) -> Any:
        cassette = current_cassette()
        if cassette is None:
            return await original(self, request)
        return await cassette.handle_async_request(flavor, request, lambda req: original(self, req))

    handle_async_request.__wrapped__ = original  # type: ignore[attr-defined]
    return handle_async_request


def _install() -> None:
    for flavor in available_flavors():
        module = flavor.module
        targets = (
            (module.HTTPTransport, "handle_request", _sync_handler),
            (module.AsyncHTTPTransport, "handle_async_request", _async_handler),
        )
        for owner, attribute, factory in targets:
            original = owner.__dict__[attribute]
            replacement = factory(flavor, original)
            setattr(owner, attribute, replacement)
            _patches.append(_Patch(owner, attribute, original, replacement))


def _uninstall() -> None:
    while _patches:
        patch = _patches.pop()
        # Someone patched on top of us (vcrpy, a mock): leave theirs in place. Ours then passes
        # every request straight through, since no cassette is active.
        if patch.owner.__dict__.get(patch.attribute) is patch.replacement:
            setattr(patch.owner, patch.attribute, patch.original)


def is_installed() -> bool:
    """True while llmcassette's transport patches are in place."""
    return bool(_patches)


def activate(cassette: Cassette) -> contextvars.Token[Cassette | None]:
    """Make ``cassette`` answer requests; install the patches if it is the first."""
    with _lock:
        _active.append(cassette)
        if len(_active) == 1:
            _install()
    return _current.set(cassette)


def deactivate(cassette: Cassette, token: contextvars.Token[Cassette | None] | None) -> None:
    """Stop ``cassette`` answering; remove the patches when no cassette is left."""
    if token is not None:
        try:
            _current.reset(token)
        except ValueError:
            # Exited in another context than it was entered in (a decorator around a generator,
            # a fixture torn down elsewhere); the stack below still forgets it.
            pass
    with _lock:
        if cassette in _active:
            _active.remove(cassette)
        if not _active:
            _uninstall()
