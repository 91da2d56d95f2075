"""
The fault catalogue: each registered fault described for people (``llmcassette faults``).

The registry knows fault classes; this module reads from them what a user needs to write a spec:
the family (its ``family`` attribute), the one-line summary, each parameter's type, default and
meaning, an example spec that parses back to the fault, and the named fault sets (``standard`` and
the others) the fault is part of. Nothing here is hand-maintained per fault, so a new fault is
listed as soon as it is registered.
"""

from __future__ import annotations

import difflib
import inspect
import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from ._exceptions import ConfigError
from ._matrix import FAULT_SETS
from .faults import Fault, FaultFamily, fault_types, parse_fault
from .faults._base import FAMILIES

__all__ = ["FAMILIES", "FaultInfo", "ParamInfo", "catalog", "fault_info"]

# The schedule and filter every fault inherits from the base class.
_COMMON = frozenset(Fault.model_fields)


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a fault, as a spec string gives it (``name=value``)."""

    name: str
    #: The value's type: ``int``, ``float``, ``bool``, ``str``, or the choices (``fin|reset``).
    type: str
    #: The default as spec text (``1``, ``true``), None when the default is "not set".
    default: str | None
    required: bool
    description: str
    #: True for the schedule and filter parameters that every fault takes.
    common: bool

    def signature(self) -> str:
        """``name: type``, with `` = default`` when there is one (``retry_after: float = 1``)."""
        text = f"{self.name}: {self.type}"
        if self.required:
            return text + " (required)"
        return text if self.default is None else f"{text} = {self.default}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "required": self.required,
            "description": self.description,
            "common": self.common,
        }


@dataclass(frozen=True)
class FaultInfo:
    """A registered fault, described."""

    name: str
    #: A key of ``FAMILIES``.
    family: FaultFamily
    summary: str
    #: The fault class's docstring: exactly what the client sees.
    doc: str
    #: Every parameter: the fault's own first, then the schedule and filter (``common``).
    params: tuple[ParamInfo, ...]
    #: A spec string that parses back to this fault.
    example: str
    #: ``(set name, case id, spec)`` for each case of a named fault set that uses this fault.
    sets: tuple[tuple[str, str, str], ...]

    @property
    def own_params(self) -> tuple[ParamInfo, ...]:
        """The parameters of this fault besides the schedule and filter."""
        return tuple(param for param in self.params if not param.common)

    @property
    def standard(self) -> bool:
        """Whether the ``standard`` fault set (what every client should survive) uses this fault."""
        return any(set_name == "standard" for set_name, _, _ in self.sets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "summary": self.summary,
            "example": self.example,
            "standard": self.standard,
            "sets": [{"set": s, "id": case, "spec": spec} for s, case, spec in self.sets],
            "params": [param.to_dict() for param in self.params],
            "doc": self.doc,
        }


def _type_text(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return "|".join(str(choice) for choice in get_args(annotation))
    if origin is Union or origin is types.UnionType:
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        return " | ".join(_type_text(arg) for arg in members)
    return getattr(annotation, "__name__", str(annotation))


def _value_text(value: Any) -> str:
    # As a spec string writes it, and as people read it: `true`, `1` rather than `1.0`.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _param(name: str, info: FieldInfo) -> ParamInfo:
    required = info.is_required()
    default = None if required or info.default is None else _value_text(info.default)
    return ParamInfo(
        name=name,
        type=_type_text(info.annotation),
        default=default,
        required=required,
        description=info.description or "",
        common=name in _COMMON,
    )


def _example(cls: type[Fault]) -> str:
    if cls.example:
        return cls.example
    # A fault without an example of its own: its name, when all its parameters have defaults.
    return cls().spec()


def _describe(name: str, cls: type[Fault]) -> FaultInfo:
    fields = cls.model_fields
    # A required parameter (`status:code=...`) comes first: a spec cannot do without it.
    own = sorted((n for n in fields if n not in _COMMON), key=lambda n: not fields[n].is_required())
    ordered = own + [n for n in fields if n in _COMMON]
    sets = tuple(
        (set_name, case, spec)
        for set_name, cases in FAULT_SETS.items()
        for case, spec in cases.items()
        if parse_fault(spec).name == name
    )
    return FaultInfo(
        name=name,
        family=cls.family,
        summary=cls.summary,
        doc=inspect.getdoc(cls) or "",
        params=tuple(_param(n, fields[n]) for n in ordered),
        example=_example(cls),
        sets=sets,
    )


def catalog() -> list[FaultInfo]:
    """Every registered fault, by family (status, connection, stream), each family in registry order."""
    infos = [_describe(name, cls) for name, cls in fault_types().items()]
    order = list(FAMILIES)
    return sorted(infos, key=lambda info: order.index(info.family))


def fault_info(name: str) -> FaultInfo:
    """The fault called ``name``; an unknown name is a ``ConfigError`` that suggests close ones."""
    types_by_name = fault_types()
    cls = types_by_name.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, list(types_by_name), n=3, cutoff=0.6)
        suggestion = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ConfigError(
            f"llmcassette: unknown fault {name!r}; {suggestion}`llmcassette faults` lists all "
            f"{len(types_by_name)} of them."
        )
    return _describe(name, cls)
