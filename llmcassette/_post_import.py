"""
A callback run right after a named module is imported: how a door is opened on a library that
is first imported while a cassette is active (:mod:`llmcassette._intercept`), without importing
the library when the cassette is entered.

The hook is a finder at the front of ``sys.meta_path``. Asked for a watched module, it lets the
other finders find it and wraps the loader they found, so that the module executes as it would
without the hook and the callback runs once it has. The module keeps its own loader.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

__all__ = ["PostImportHook"]


class _Loader:
    """The loader a finder found, which calls back once the module has executed."""

    def __init__(self, loader: Any, callback: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._callback = callback

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        # Whoever asks the module for its loader later (resources, source) gets its own.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._callback(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class PostImportHook:
    """Calls ``callback(module)`` after each of ``names`` is imported, while installed."""

    def __init__(self, names: Collection[str], callback: Callable[[ModuleType], None]) -> None:
        self._names = names
        self._callback = callback

    def install(self) -> None:
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self._names:
            return None
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec: ModuleSpec | None = find_spec(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _Loader(spec.loader, self._callback)  # type: ignore[assignment]
            return spec
        return None
