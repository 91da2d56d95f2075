"""
YAML reading and writing, with libyaml's C loader and emitter.

Writing aims at a file that reads well in a pull request: multi-line text (SSE, NDJSON) as a
literal block, one line per line; short lists of scalars in flow style; keys in a fixed, logical
order. Reading is the safe loader: no YAML tag can construct anything but plain data.
"""

from __future__ import annotations

import enum
from typing import Any

import yaml

__all__ = ["YAMLError", "dump_yaml", "load_yaml"]

YAMLError = yaml.YAMLError

# NOTE: libyaml is what makes loading fast (about 70x the pure-Python loader on large cassettes);
# PyYAML wheels ship it, but a source build may not.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Loader(_BaseLoader):  # type: ignore[misc]
    pass


def _construct_python_str(loader: Any, node: Any) -> str:
    # Cassettes written by vcrpy under Python 2 tag text as python/unicode or python/str.
    return str(loader.construct_scalar(node))


_Loader.add_constructor("tag:yaml.org,2002:python/unicode", _construct_python_str)
_Loader.add_constructor("tag:yaml.org,2002:python/str", _construct_python_str)


class _Dumper(_BaseDumper):  # type: ignore[misc]
    pass


# Characters YAML treats as line breaks or strips; a literal block would not give them back.
_NOT_IN_BLOCK = ("\r", "\x85", "\u2028", "\u2029", "\ufeff")


def _represent_str(dumper: Any, data: str) -> Any:
    if "\n" in data and not any(ch in data for ch in _NOT_IN_BLOCK):
        # The emitter falls back to a quoted style by itself when a block cannot hold the text
        # exactly (for example a line with trailing spaces).
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


def _represent_enum(dumper: Any, data: enum.Enum) -> Any:
    return dumper.represent_data(data.value)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_multi_representer(enum.Enum, _represent_enum)


def load_yaml(text: str | bytes) -> Any:
    """Parse YAML text into plain Python data."""
    return yaml.load(text, Loader=_Loader)


def dump_yaml(data: Any) -> str:
    """Write plain Python data as readable YAML."""
    text: str = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=None,
        width=120,
    )
    return text
