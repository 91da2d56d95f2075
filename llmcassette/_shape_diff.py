"""
The structural difference between two recordings of the same calls: what ``llmcassette diff``
reports after a re-recording, so that a CI job notices when a provider changed its wire format.

Interactions are paired in order by method and normalised path (see
:func:`llmcassette._shape.normalise_path`): the first ``POST /v1/chat/completions`` of A with the
first of B, and so on. An interaction left without a partner has vanished (only in A) or appeared
(only in B). Each pair's shapes are then compared, each difference one :class:`ShapeChange`:

- status, media type and body framing;
- response header names and query parameter names that appeared or vanished;
- request and response body key paths that appeared, vanished or changed type;
- stream event types that appeared or vanished; when both streams have the same event types, a
  change in the order they first appear; the event a stream ends with; for each event type in
  both, its key paths; and how the recorded stream ended.

When the status differs the bodies are not compared (one of them is usually an error, so every
field would differ), nor when one body is a stream and the other is not. A key path that appeared
or vanished together with its parent is not listed under it: the parent stands for the whole
object.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._shape import Fields, InteractionShape, type_union

__all__ = ["ShapeChange", "ShapeDiff", "diff_shapes"]

Sign = Literal["+", "-", "~"]


@dataclass(frozen=True)
class ShapeChange:
    """One structural difference between recording A and recording B."""

    #: ``+`` appeared in B, ``-`` vanished from A, ``~`` changed.
    sign: Sign
    #: ``interaction``, ``status``, ``content-type``, ``framing``, ``header``, ``query``,
    #: ``request-field``, ``response-field``, ``event-type``, ``event-field``, ``event-order``,
    #: ``last-event`` or ``stream-end``.
    kind: str
    #: The header, query parameter, key path or event type concerned (empty when the kind says all).
    subject: str
    #: The call: method and normalised path.
    call: str
    a_index: int | None
    b_index: int | None
    before: str | None = None
    after: str | None = None
    #: The event type whose key path this is, for ``event-field``.
    event: str | None = None

    def _where(self) -> str:
        if self.a_index is None or self.b_index is None or self.a_index == self.b_index:
            index = self.a_index if self.a_index is not None else self.b_index
            return f"interaction {index} ({self.call})"
        return f"interaction {self.a_index}, {self.b_index} in B ({self.call})"

    def line(self) -> str:
        """The change as one line of text."""
        verb = {"+": "appeared", "-": "vanished", "~": "changed"}[self.sign]
        if self.kind == "interaction":
            return f"{self.sign} {self._where()} {verb}"
        what = {
            "status": "status",
            "content-type": "content type",
            "framing": "body framing",
            "header": f"header {self.subject}",
            "query": f"query parameter {self.subject}",
            "request-field": f"request field {self.subject or '(top level)'}",
            "response-field": f"response field {self.subject or '(top level)'}",
            "event-type": f"event type {self.subject!r}",
            "event-field": f"field {self.subject or '(top level)'}",
            "event-order": "event order",
            "last-event": "last event",
            "stream-end": "stream end",
        }[self.kind]
        if self.sign == "~":
            typed = " type" if self.kind.endswith("-field") else ""
            detail = f" changed{typed} {self.before} -> {self.after}"
        else:
            types = self.after if self.sign == "+" else self.before
            detail = f" ({types}) {verb}" if self.kind.endswith("-field") else f" {verb}"
        where = self._where() if self.event is None else f"{self.event!r} events of {self._where()}"
        return f"{self.sign} {what}{detail} in {where}"

    def to_dict(self) -> dict[str, Any]:
        """The change as JSON-ready data, with its line of text as ``message``."""
        return {
            "sign": self.sign,
            "kind": self.kind,
            "subject": self.subject,
            "event": self.event,
            "before": self.before,
            "after": self.after,
            "call": self.call,
            "a_index": self.a_index,
            "b_index": self.b_index,
            "message": self.line(),
        }


@dataclass(frozen=True)
class ShapeDiff:
    """Every structural change between two recordings, and how their interactions paired."""

    changes: tuple[ShapeChange, ...]
    paired: int
    only_a: int
    only_b: int

    @property
    def changed(self) -> bool:
        """Whether anything differs in shape."""
        return bool(self.changes)

    def summary(self) -> str:
        """One sentence saying what the comparison found."""
        if not self.changed:
            return f"Same shape: {_plural(self.paired, 'interaction')} paired, no structural change."
        in_pairs = [change for change in self.changes if change.kind != "interaction"]
        parts = []
        if in_pairs:
            touched = len({change.a_index for change in in_pairs})
            paired = "paired interaction" if self.paired == 1 else "paired interactions"
            parts.append(
                f"{_plural(len(in_pairs), 'structural change')} in {touched} of {self.paired} {paired}"
            )
        if self.only_a:
            parts.append(f"{_plural(self.only_a, 'interaction')} only in A")
        if self.only_b:
            parts.append(f"{_plural(self.only_b, 'interaction')} only in B")
        text = "; ".join(parts)
        return text[0].upper() + text[1:] + "."

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-ready data."""
        return {
            "changed": self.changed,
            "paired": self.paired,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "changes": [change.to_dict() for change in self.changes],
        }


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _quoted(name: str | None) -> str:
    return repr(name) if name is not None else "nothing"


def _parent(path: str) -> str | None:
    if not path:
        return None
    if path.endswith("[]"):
        return path[:-2]
    dot = path.rfind(".")
    bracket = path.rfind("[]")
    cut = max(dot, bracket + 1 if bracket >= 0 else -1)
    return path[:cut] if cut > 0 else ""


def _field_changes(a: Fields, b: Fields) -> Iterable[tuple[Sign, str, str | None, str | None]]:
    for path in sorted(a.keys() | b.keys()):
        parent = _parent(path)
        if path not in b:
            if parent is None or parent in b:  # else the parent vanished and stands for it
                yield "-", path, type_union(a[path]), None
        elif path not in a:
            if parent is None or parent in a:
                yield "+", path, None, type_union(b[path])
        elif a[path] != b[path]:
            yield "~", path, type_union(a[path]), type_union(b[path])


def _status(status: int | None) -> str:
    # No status: the connection failed before any response.
    return str(status) if status is not None else "none"


def _set_changes(a: Iterable[str], b: Iterable[str]) -> Iterable[tuple[Sign, str]]:
    before, after = set(a), set(b)
    for name in sorted(before | after):
        if name not in after:
            yield "-", name
        elif name not in before:
            yield "+", name


def _compare(a: InteractionShape, b: InteractionShape) -> list[ShapeChange]:
    changes: list[ShapeChange] = []

    def add(
        sign: Sign, kind: str, subject: str = "", before: Any = None, after: Any = None, event: Any = None
    ) -> None:
        changes.append(ShapeChange(sign, kind, subject, a.label, a.index, b.index, before, after, event))

    for sign, name in _set_changes(a.query, b.query):
        add(sign, "query", name)
    for sign, path, before, after in _field_changes(a.request_fields, b.request_fields):
        add(sign, "request-field", path, before, after)
    if a.status != b.status:
        add("~", "status", "", _status(a.status), _status(b.status))
    if a.media_type != b.media_type:
        add("~", "content-type", "", a.media_type or "none", b.media_type or "none")
    for sign, name in _set_changes(a.headers, b.headers):
        add(sign, "header", name)
    if a.framing != b.framing:
        add("~", "framing", "", a.framing, b.framing)
    if a.status != b.status or a.framing != b.framing:
        return changes  # the bodies are not the same kind of thing: comparing fields says nothing
    for sign, path, before, after in _field_changes(a.body_fields, b.body_fields):
        add(sign, "response-field", path, before, after)
    for sign, name in _set_changes(a.event_types, b.event_types):
        add(sign, "event-type", name)
    if set(a.event_types) == set(b.event_types) and a.event_types != b.event_types:
        add("~", "event-order", "", ", ".join(a.event_types), ", ".join(b.event_types))
    if a.last_event != b.last_event:
        add("~", "last-event", "", _quoted(a.last_event), _quoted(b.last_event))
    for name in a.event_types:
        if name in b.event_fields and name in a.event_fields:
            for sign, path, before, after in _field_changes(a.event_fields[name], b.event_fields[name]):
                add(sign, "event-field", path, before, after, name)
    if a.stream_end != b.stream_end:
        add("~", "stream-end", "", a.stream_end, b.stream_end)
    return changes


def diff_shapes(a: Sequence[InteractionShape], b: Sequence[InteractionShape]) -> ShapeDiff:
    """Pair the interactions of two recordings and list every structural change (module docstring)."""
    waiting: dict[tuple[str, str], deque[InteractionShape]] = {}
    for shape in b:
        waiting.setdefault(shape.key, deque()).append(shape)
    changes: list[ShapeChange] = []
    paired = only_a = 0
    for shape in a:
        partners = waiting.get(shape.key)
        if partners:
            paired += 1
            changes += _compare(shape, partners.popleft())
        else:
            only_a += 1
            changes.append(ShapeChange("-", "interaction", "", shape.label, shape.index, None))
    left = sorted((s for queue in waiting.values() for s in queue), key=lambda s: s.index)
    changes += [ShapeChange("+", "interaction", "", s.label, None, s.index) for s in left]
    return ShapeDiff(tuple(changes), paired, only_a, len(left))
