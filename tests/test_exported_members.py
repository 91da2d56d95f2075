"""The public surface is what ``__all__`` says, and nothing else."""

from __future__ import annotations

import types

import llmcassette
import llmcassette.faults
import llmcassette.providers


def _public(module: types.ModuleType) -> set[str]:
    # dir(), not vars(): the package imports its names on first use, and lists them all in dir().
    return {
        name
        for name, value in ((name, getattr(module, name)) for name in dir(module))
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        or name in ("faults", "providers")
    } - {"annotations"}


def test_all_lists_every_public_name() -> None:
    exported = set(llmcassette.__all__)
    assert exported == _public(llmcassette) | {"__version__"}
    assert llmcassette.__all__ == sorted(llmcassette.__all__, key=str.casefold)


def test_every_exported_name_exists() -> None:
    for module in (llmcassette, llmcassette.faults, llmcassette.providers):
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == [], module.__name__


def test_every_registered_fault_is_exported_as_a_class() -> None:
    exported = {getattr(llmcassette.faults, name) for name in llmcassette.faults.__all__}
    for name, cls in llmcassette.faults.fault_types().items():
        assert cls in exported, name
