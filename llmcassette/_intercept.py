"""
In-process interception: the transport methods llmcassette patches while a cassette is active.

The patch is on the transport *classes* (``HTTPTransport.handle_request`` and
``AsyncHTTPTransport.handle_async_request`` of httpx and of httpx2), so it reaches transports that
SDKs build for themselves, before or after the cassette was entered. Other transports, such as
``MockTransport`` or a user's own ``BaseTransport``, are not the network and are left alone.

It is installed when the first cassette activates and removed when the last one deactivates.
The doors of other libraries (:mod:`llmcassette._adapters`) open only on a library that is
imported: at once if it already is, else as soon as it is imported while a cassette is active
(by the importing thread, or by the thread holding the lock then, as it lets go).
Which cassette answers a request: the one activated in the current context (task or thread that
entered it), else the most recently activated one, so that worker threads an SDK starts are
covered too.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import MethodType, ModuleType
from typing import TYPE_CHECKING, Any

from ._flavors import Flavor, available_flavors
from ._post_import import PostImportHook

if TYPE_CHECKING:
    from ._cassette import Cassette

__all__ = [
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
# Set while a door passes a connection on to the network itself (the WebSocket relay's own
# connection to the upstream): no door answers it from the cassette.
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
        # The transport's own method, bound: made on every request, it costs a third of a
        # function closing over `self` (whose cell every call made, sending or not).
        return cassette.handle_request(flavor, request, MethodType(original, self))

    handle_request.__wrapped__ = original  # type: ignore[attr-defined]
    return handle_request


def _async_handler(flavor: Flavor, original: Callable[..., Any]) -> Callable[..., Any]:
    async def handle_async_request(self: Any, request: Any) -> Any:
        __tracebackhide__ = True
        cassette = current_cassette()
        if cassette is None:
            return await original(self, request)
        # The transport's own coroutine method, bound, as in the sync handler (a closure made on
        # every request cost more).
        return await cassette.handle_async_request(flavor, request, MethodType(original, self))

    handle_async_request.__wrapped__ = original  # type: ignore[attr-defined]
    return handle_async_request


#: vcrpy's patchers (its ``skip_patchers`` names) of the libraries llmcassette answers in-process:
#: httpx and httpx2 by their transports, aiohttp (:mod:`llmcassette._adapters.aiohttp`), and
#: through the standard library's connection class (:mod:`llmcassette._adapters.http_client`)
#: ``http.client``, urllib3, requests and boto3. On a test where both are active, vcrpy skips
#: these and keeps the others (httplib2, tornado).
VCRPY_PATCHERS = ("httpx", "httpx2", "aiohttp", "httplib", "urllib3", "requests", "boto3")


# Doors whose library is not imported yet, by the module that defines their classes; the hook
# that opens each one when its module is imported, while a cassette is active.
_pending: dict[str, str] = {}
_hook: PostImportHook | None = None


def _open_door(door: str, module: ModuleType) -> None:
    adapter = importlib.import_module(f"{__package__}._adapters.{door}")
    for owner, attribute, original, replacement in adapter.patches(module):
        setattr(owner, attribute, replacement)
        _patches.append(_Patch(owner, attribute, original, replacement))


# Modules whose import finished while a cassette was active, their doors not opened yet.
_arrived: list[ModuleType] = []


# How long an import waits for `_lock` before it leaves its door to the thread that holds it.
_IMPORT_WAIT_S = 1.0


def _opened_on_import(module: ModuleType) -> None:
    # This runs inside the import of `module`, with the import system's locks on it (and on its
    # packages) held. Waiting here for `_lock` could wait for ever: the thread that holds it may
    # be opening another door, whose adapter imports its library, and wait for one of those very
    # locks. So the module is left for whichever thread holds `_lock` (this one, if it is free),
    # which opens its door before it lets go. It is waited for a little first: a thread that is
    # only entering or leaving a cassette lets go within milliseconds, and the door is then open
    # before this import returns, so a request made right after it is answered by the cassette.
    _arrived.append(module)
    if _lock.acquire(timeout=_IMPORT_WAIT_S):
        _open_arrived_holding_lock()
    _open_arrived()


def _open_arrived() -> None:
    # Tried again after every release of `_lock` (see `_locked`): a module that arrived while
    # another thread held it is opened by that thread on its way out, or by this one.
    while _arrived and _lock.acquire(blocking=False):
        _open_arrived_holding_lock()


def _open_arrived_holding_lock() -> None:
    try:
        while _arrived:
            module = _arrived.pop(0)
            door = _pending.pop(module.__name__, None) if _active else None
            if door is not None:
                _open_door(door, module)
    finally:
        _lock.release()


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    with _lock:
        yield
    _open_arrived()


def _install_adapters() -> None:
    # The doors of libraries other than httpx. A library that is not imported is not imported
    # here (aiohttp alone costs about 100 ms): its door opens when the library is imported, if a
    # cassette is still active then.
    global _hook
    from ._adapters import DOORS

    for module_name, door in DOORS:
        module = sys.modules.get(module_name)
        spec = getattr(module, "__spec__", None)
        if module is None or getattr(spec, "_initializing", False):
            # (a module another thread is importing right now: the hook opens it when it is done)
            _pending[module_name] = door
        else:
            _open_door(door, module)
    if _pending:
        _hook = PostImportHook(_pending, _opened_on_import)
        _hook.install()


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
    # Last: importing httpx above imports http.client, and the doors import httpx themselves, so a
    # door opened by the hook in the middle of httpx's import would find it half made.
    _install_adapters()


def _uninstall() -> None:
    global _hook
    if _hook is not None:
        _hook.remove()
        _hook = None
    _pending.clear()
    _arrived.clear()
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
    with _locked():
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
    with _locked():
        if cassette in _active:
            _active.remove(cassette)
        if not _active:
            _uninstall()
