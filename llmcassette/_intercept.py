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

import contextlib
import contextvars
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._flavors import Flavor, available_flavors, get_flavor

if TYPE_CHECKING:
    from ._cassette import Cassette

__all__ = [
    "EXTRA_TRANSPORTS",
    "SDK_SWITCHES",
    "VCRPY_PATCHERS",
    "activate",
    "current_cassette",
    "deactivate",
    "is_installed",
    "passing",
]

_lock = threading.RLock()
_active: list[Cassette] = []
_current: contextvars.ContextVar[Cassette | None] = contextvars.ContextVar(
    "llmcassette_current", default=None
)
# Set while a request answered at one door goes on to the network through another library (a
# transport built on aiohttp): the inner door lets it pass, so it is recorded once.
_passing: contextvars.ContextVar[bool] = contextvars.ContextVar("llmcassette_passing", default=False)


@dataclass(frozen=True)
class _Patch:
    owner: type
    attribute: str
    original: Any
    replacement: Any


_patches: list[_Patch] = []


@contextlib.contextmanager
def passing() -> Iterator[None]:
    """Within the block, connections go to the network untouched (a door passing one on)."""
    token = _passing.set(True)
    try:
        yield
    finally:
        _passing.reset(token)


def current_cassette() -> Cassette | None:
    """The cassette that answers a request made now, if any."""
    if _passing.get():
        return None
    cassette = _current.get()
    if cassette is not None and cassette in _active:
        return cassette
    return _active[-1] if _active else None


def _sync_handler(flavor: Flavor, original: Callable[..., Any]) -> Callable[..., Any]:
    def handle_request(self: Any, request: Any) -> Any:
        __tracebackhide__ = True
        cassette = current_cassette()
        if cassette is None:
            return original(self, request)

        def send(req: Any) -> Any:
            token = _passing.set(True)
            try:
                return original(self, req)
            finally:
                _passing.reset(token)

        return cassette.handle_request(flavor, request, send)

    handle_request.__wrapped__ = original  # type: ignore[attr-defined]
    return handle_request


def _async_handler(flavor: Flavor, original: Callable[..., Any]) -> Callable[..., Any]:
    async def handle_async_request(self: Any, request: Any) -> Any:
        __tracebackhide__ = True
        cassette = current_cassette()
        if cassette is None:
            return await original(self, request)

        async def send(req: Any) -> Any:
            token = _passing.set(True)
            try:
                return await original(self, req)
            finally:
                _passing.reset(token)

        return await cassette.handle_async_request(flavor, request, send)

    handle_async_request.__wrapped__ = original  # type: ignore[attr-defined]
    return handle_async_request


#: vcrpy's patchers (its ``skip_patchers`` names) of the libraries llmcassette answers in-process:
#: httpx and httpx2 by their transports, aiohttp (:mod:`llmcassette._adapters.aiohttp`), and
#: through the standard library's connection class (:mod:`llmcassette._adapters.http_client`)
#: ``http.client``, urllib3, requests and boto3. On a test where both are active, vcrpy skips
#: these and keeps the others (httplib2, tornado).
VCRPY_PATCHERS = ("httpx", "httpx2", "aiohttp", "httplib", "urllib3", "requests", "boto3")

# Transports that are not the standard ones but still reach the network, patched when their module
# is already imported (importing them here would cost seconds): (module, class, method, library).
# litellm hands the openai SDK an httpx client whose transport is its own aiohttp-based one.
EXTRA_TRANSPORTS: list[tuple[str, str, str, str]] = [
    ("litellm.llms.custom_httpx.aiohttp_transport", "AiohttpTransport", "handle_async_request", "httpx"),
    (
        "litellm.llms.custom_httpx.aiohttp_transport",
        "LiteLLMAiohttpTransport",
        "handle_async_request",
        "httpx",
    ),
]


def _never(self: Any) -> bool:
    return False


# SDK switches that would take traffic off httpx, turned while a cassette is active:
# (module, class, method, replacement). google-genai's async client prefers aiohttp whenever
# aiohttp is installed (litellm brings it); answering "no" makes it use its httpx2 client.
SDK_SWITCHES: list[tuple[str, str, str, Callable[..., Any]]] = [
    ("google.genai._api_client", "BaseApiClient", "_use_aiohttp", _never),
]


def _install_switches() -> None:
    for module_name, class_name, attribute, replacement in SDK_SWITCHES:
        module = sys.modules.get(module_name)
        owner = getattr(module, class_name, None) if module is not None else None
        if owner is None or attribute not in owner.__dict__:
            continue
        _patches.append(_Patch(owner, attribute, owner.__dict__[attribute], replacement))
        setattr(owner, attribute, replacement)


def _install_extras() -> None:
    for module_name, class_name, attribute, flavor_name in EXTRA_TRANSPORTS:
        module = sys.modules.get(module_name)
        flavor = get_flavor(flavor_name)
        owner = getattr(module, class_name, None) if module is not None else None
        if owner is None or flavor is None or attribute not in owner.__dict__:
            continue
        original = owner.__dict__[attribute]
        factory = _async_handler if attribute == "handle_async_request" else _sync_handler
        replacement = factory(flavor, original)
        setattr(owner, attribute, replacement)
        _patches.append(_Patch(owner, attribute, original, replacement))


def _apply(patch: tuple[Any, str, Any, Any]) -> None:
    owner, attribute, original, replacement = patch
    with _lock:
        setattr(owner, attribute, replacement)
        _patches.append(_Patch(owner, attribute, original, replacement))


def _install_adapters() -> None:
    # The doors of libraries other than httpx: each lists the methods it wraps. The websockets
    # door also patches its modules when they are imported while a cassette is active.
    from ._adapters import aiohttp, http_client, websockets

    for patch in [*http_client.patches(), *aiohttp.patches(), *websockets.patches()]:
        _apply(patch)
    websockets.watch(_apply)


def _install() -> None:
    _install_switches()
    _install_extras()
    _install_adapters()
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
    from ._adapters import websockets

    websockets.unwatch()
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
