"""
Value types shared by every part of the cassette format (HTTP interactions and WebSocket
sessions): times in milliseconds, named JSON serialisations and structured JSON values, each
checked when a file loads.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from ._bodies import JSON_FORMATS, MAX_JSON_DEPTH
from ._yaml import MisencodedBinary

__all__ = [
    "MAX_TIME_MS",
    "FormatModel",
    "binary_checked",
    "JsonFormat",
    "JsonValue",
    "TimeMs",
    "json_plain",
    "json_problem",
]

#: The latest time a recording may state (`elapsed_ms`, `offsets_ms`): one day. A longer wait is
#: a damaged file, and `pace="recorded"` would sleep for it.
MAX_TIME_MS = 86_400_000.0


def _known_json_format(value: str | None) -> str | None:
    # Replay rebuilds the body's bytes in this format: an unknown name would fail there, not here.
    if value is not None and value not in JSON_FORMATS:
        raise PydanticCustomError(
            "json_format",
            "{value} is not a JSON format llmcassette knows ({known}); delete `json_format` "
            "(the body is then written as `json.dumps` writes it)",
            {"value": repr(value), "known": ", ".join(sorted(JSON_FORMATS))},
        )
    return value


def _time_ms(value: float) -> float:
    # NaN fails every comparison, so it is refused with the rest.
    if not 0 <= value <= MAX_TIME_MS:
        raise PydanticCustomError(
            "time_ms",
            "{value} is not a time llmcassette can replay; it must be a number of milliseconds "
            "from 0 to {limit} (one day)",
            {"value": repr(value), "limit": f"{MAX_TIME_MS:.0f}"},
        )
    return value


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})
_JSON_TYPES = _JSON_SCALARS | {dict, list}
_TEXT_ONLY = {str}
# What the YAML tags the safe loader accepts make of a value JSON has no room for.
_YAML_KINDS: dict[type, str] = {
    bytes: "`!!binary` bytes",
    MisencodedBinary: "`!!binary` bytes",
    set: "a `!!set`",
    tuple: "a pair of `!!omap` or `!!pairs`",
}


def _where(path: list[str | int]) -> str:
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")
    return f"at `{text}`" if text else "at the top"


def json_plain(value: Any) -> bool:
    """True when ``value`` is JSON the models keep as it is (else see :func:`json_problem`)."""
    # The check every body loaded goes through, so kept lean: level by level (no recursion, so a
    # value nested deeper than Python recurses is no RecursionError), the types of a level and of
    # a mapping's keys taken at C speed, no paths. False for anything `_json_problem` has to look
    # at closely.
    level = [value]
    for _ in range(MAX_JSON_DEPTH + 1):
        kinds = set(map(type, level))
        if kinds <= _JSON_SCALARS:
            return True
        if not kinds <= _JSON_TYPES:
            return False
        below: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is dict:
                if item and set(map(type, item)) != _TEXT_ONLY:
                    return False
                below.extend(item.values())
            elif kind is list:
                below.extend(item)
        level = below
    return False


def _json_problem(value: Any) -> tuple[str | None, bool]:
    # The close look, with paths, for a value `json_plain` did not pass: what is wrong, if anything,
    # and whether a key is a number, null, true or false (YAML reads `1:` so), to be made text.
    stack: list[tuple[Any, int, list[str | int]]] = [(value, 0, [])]
    other_keys = False
    while stack:
        item, depth, path = stack.pop()
        kind = type(item)
        if kind in _JSON_SCALARS:
            continue
        if kind is not dict and kind is not list:
            shown = _YAML_KINDS.get(kind, f"a {kind.__name__}")
            return f"it holds {shown} {_where(path)}, which JSON cannot hold", other_keys
        if depth >= MAX_JSON_DEPTH:
            return f"it is nested deeper than {MAX_JSON_DEPTH} levels ({_where(path)})", other_keys
        if kind is list:
            stack.extend((child, depth + 1, [*path, index]) for index, child in enumerate(item))
            continue
        for key, child in item.items():
            if type(key) is not str:
                if type(key) not in _JSON_SCALARS:
                    return f"the key {key!r} {_where(path)} is not text, which JSON keys are", other_keys
                other_keys = True
            stack.append((child, depth + 1, [*path, key]))
    return None, other_keys


def json_problem(value: Any) -> str | None:
    """
    Why ``value`` (a ``parsed_body``, a WebSocket message's ``json``) is not JSON that replay can
    write back as the bytes it stands for, or None when it is. NaN and the infinities pass: Python's
    ``json`` reads and writes them, so a body that held them was recorded so.
    """
    return None if json_plain(value) else _json_problem(value)[0]


class _KeyClash(ValueError):
    pass


def _with_text_keys(value: Any, path: list[str | int]) -> Any:
    # A key YAML read as a number, null, true or false is the JSON text `json.dumps` makes of it,
    # which is what replay has always sent for it. Depth is bounded by the check before.
    if type(value) is list:
        return [_with_text_keys(child, [*path, index]) for index, child in enumerate(value)]
    if type(value) is not dict:
        return value
    out: dict[str, Any] = {}
    for key, child in value.items():
        text = key if type(key) is str else json.dumps(key)
        if text in out:
            raise _KeyClash(
                f"two keys {_where(path)} are the same JSON key {text!r} (a key written as a number, "
                f"null, true or false is that text); keep one"
            )
        out[text] = _with_text_keys(child, [*path, text])
    return out


def _json_value(value: Any) -> Any:
    # Replay, matching, inspect and lint all serialise this value: one that JSON cannot hold (a
    # YAML tag the safe loader builds) is refused here, once, rather than as a TypeError in each.
    if json_plain(value):
        return value
    problem, other_keys = _json_problem(value)
    if problem is None and other_keys:
        try:
            return _with_text_keys(value, [])
        except _KeyClash as exc:
            problem = str(exc)
    if problem is not None:
        raise PydanticCustomError(
            "json_value",
            "{problem}. Structured JSON holds only mappings with text keys, lists, text, numbers, "
            "true, false and null; write the value so, or keep it as text (`body: {string: ...}` "
            "for a body, `text:` for a WebSocket message)",
            {"problem": problem},
        )
    return value


_V = TypeVar("_V")


def binary_checked(value: _V) -> _V:
    """``value``, unless it is a ``!!binary`` value whose text is not base64: refused, saying why."""
    if isinstance(value, MisencodedBinary):
        raise PydanticCustomError(
            "binary",
            "{problem}; write the bytes' base64 again, or the value as text",
            {"problem": value.problem},
        )
    return value


JsonFormat = Annotated[str | None, AfterValidator(_known_json_format)]
#: A body or message stored structured: JSON's values only (see :func:`json_problem`).
JsonValue = Annotated[Any, AfterValidator(_json_value)]
TimeMs = Annotated[float, AfterValidator(_time_ms)]


class FormatModel(BaseModel):
    """Base of the file's models: unknown keys are kept, so a file loaded and saved loses nothing."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
