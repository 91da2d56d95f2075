"""
The drift report: each original interaction paired with its fresh recording, the structural diff
of the pair, and the same findings written for people (Markdown), for CI test views (JUnit XML)
and for programs (JSON).
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from .._shape import interaction_shape
from .._shape_diff import ShapeChange, diff_shapes
from ._plan import Planned
from ._send import Fresh

__all__ = ["DriftReport", "Outcome", "Result", "compare", "exit_code"]


class Outcome(enum.StrEnum):
    """What became of one recorded interaction in a drift run."""

    SAME = "same"
    CHANGED = "changed"
    SKIPPED = "skipped"
    #: Sending failed after every try: trouble, not drift.
    FAILED = "failed"
    #: A dry run: it would be sent.
    PLANNED = "planned"


@dataclass
class Result:
    """One interaction's line in the report."""

    planned: Planned
    outcome: Outcome
    changes: tuple[ShapeChange, ...] = ()
    reason: str | None = None
    attempts: int = 0
    waits_s: tuple[float, ...] = ()

    @property
    def name(self) -> str:
        return f"#{self.planned.index} {self.planned.call}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cassette": str(self.planned.cassette),
            "index": self.planned.index,
            "call": self.planned.call,
            "url": self.planned.url,
            "provider": self.planned.provider,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "credential_env": self.planned.credential_env,
            "capped": {k: {"recorded": a, "sent": b} for k, (a, b) in self.planned.capped.items()},
            "attempts": self.attempts,
            "waits_s": list(self.waits_s),
            "changes": [change.to_dict() | {"line": change.line()} for change in self.changes],
        }


def compare(fresh: Fresh) -> Result:
    """Pair one original interaction with its fresh recording and diff their shapes."""
    planned = fresh.planned
    if fresh.interaction is None:
        return Result(
            planned, Outcome.FAILED, reason=fresh.error, attempts=fresh.attempts, waits_s=fresh.waits_s
        )
    before = interaction_shape(planned.interaction, index=planned.index, path=planned.cassette)
    after = interaction_shape(fresh.interaction, index=planned.index, path=planned.cassette)
    changes = diff_shapes([before], [after]).changes
    outcome = Outcome.CHANGED if changes else Outcome.SAME
    return Result(planned, outcome, changes, attempts=fresh.attempts, waits_s=fresh.waits_s)


@dataclass
class DriftReport:
    """Every result of a run, and the files that could not be read."""

    results: list[Result]
    #: Files that could not be read as cassettes, with the reason.
    troubles: list[tuple[Path, str]] = field(default_factory=list)
    dry_run: bool = False
    max_output_tokens: int | None = None

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results if result.outcome is outcome)

    def by_provider(self) -> dict[str, Counter[str]]:
        table: dict[str, Counter[str]] = {}
        for result in self.results:
            table.setdefault(result.planned.provider, Counter())[result.outcome.value] += 1
        return dict(sorted(table.items()))

    def by_kind(self) -> Counter[str]:
        return Counter(change.kind for result in self.results for change in result.changes)

    def summary(self) -> str:
        """One sentence: what the run did and found."""
        if self.dry_run:
            text = (
                f"Dry run: {_plural(self.count(Outcome.PLANNED), 'request')} would be sent, "
                f"{self.count(Outcome.SKIPPED)} skipped."
            )
        else:
            changed, same = self.count(Outcome.CHANGED), self.count(Outcome.SAME)
            text = (
                f"{_plural(changed + same, 'interaction')} re-recorded: {changed} changed shape, "
                f"{same} kept it; {self.count(Outcome.SKIPPED)} skipped, {self.count(Outcome.FAILED)} failed."
            )
        if self.troubles:
            text += f" {_plural(len(self.troubles), 'file')} could not be read."
        return text

    def exit_code(self) -> int:
        return exit_code(self)

    # -- writers -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "dry_run": self.dry_run,
            "max_output_tokens": self.max_output_tokens,
            "counts": {outcome.value: self.count(outcome) for outcome in Outcome},
            "by_provider": {name: dict(counts) for name, counts in self.by_provider().items()},
            "by_change_kind": dict(sorted(self.by_kind().items())),
            "troubles": [{"file": str(path), "reason": reason} for path, reason in self.troubles],
            "interactions": [result.to_dict() for result in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def to_markdown(self) -> str:
        lines = ["# llmcassette drift report", "", self.summary(), ""]
        providers = self.by_provider()
        if providers:
            columns = [o.value for o in Outcome if any(c[o.value] for c in providers.values())]
            lines += ["| provider | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
            for name, counts in providers.items():
                lines.append(f"| {name} | " + " | ".join(str(counts[c]) for c in columns) + " |")
            lines.append("")
        kinds = self.by_kind()
        if kinds:
            lines += ["| change kind | count |", "|---|---|"]
            lines += [f"| {kind} | {count} |" for kind, count in sorted(kinds.items())]
            lines.append("")
        changed = [r for r in self.results if r.outcome is Outcome.CHANGED]
        if changed:
            lines += ["## Changed shape", ""]
            for result in changed:
                lines.append(f"- `{result.planned.cassette}` {result.name} ({result.planned.provider})")
                lines += [f"  - `{change.line()}`" for change in result.changes]
            lines.append("")
        for title, outcome in (("Failed", Outcome.FAILED), ("Skipped", Outcome.SKIPPED)):
            rows = [r for r in self.results if r.outcome is outcome]
            if rows:
                lines += [f"## {title}", ""]
                lines += [f"- `{r.planned.cassette}` {r.name}: {r.reason}" for r in rows]
                lines.append("")
        capped = [r for r in self.results if r.planned.capped and r.outcome is not Outcome.SKIPPED]
        if capped:
            lines += ["## Output tokens capped", ""]
            for result in capped:
                fields = ", ".join(f"`{k}` {a} -> {b}" for k, (a, b) in result.planned.capped.items())
                lines.append(f"- `{result.planned.cassette}` {result.name}: {fields}")
            lines.append("")
        if self.troubles:
            lines += ["## Unreadable files", ""]
            lines += [f"- `{path}`: {reason}" for path, reason in self.troubles]
            lines.append("")
        return "\n".join(lines)

    def to_junit(self) -> str:
        """One test case per interaction; a changed shape fails it, a failed send is an error."""
        suites = ElementTree.Element("testsuites", name="llmcassette drift")
        by_file: dict[str, list[Result]] = {}
        for result in self.results:
            by_file.setdefault(str(result.planned.cassette), []).append(result)
        for path, _ in self.troubles:
            by_file.setdefault(str(path), [])
        for file, results in by_file.items():
            suite = ElementTree.SubElement(suites, "testsuite", name=file)
            counts = Counter(r.outcome for r in results)
            trouble = [reason for path, reason in self.troubles if str(path) == file]
            suite.set("tests", str(len(results) + len(trouble)))
            suite.set("failures", str(counts[Outcome.CHANGED]))
            suite.set("errors", str(counts[Outcome.FAILED] + len(trouble)))
            suite.set("skipped", str(counts[Outcome.SKIPPED] + counts[Outcome.PLANNED]))
            for result in results:
                case = ElementTree.SubElement(suite, "testcase", classname=file, name=result.name)
                if result.outcome is Outcome.CHANGED:
                    lines = [change.line() for change in result.changes]
                    failure = ElementTree.SubElement(
                        case, "failure", message=f"{len(lines)} structural change(s)", type="shape-changed"
                    )
                    failure.text = "\n".join(lines)
                elif result.outcome is Outcome.FAILED:
                    ElementTree.SubElement(case, "error", message=result.reason or "", type="send-failed")
                elif result.outcome is Outcome.SKIPPED:
                    ElementTree.SubElement(case, "skipped", message=result.reason or "")
                elif result.outcome is Outcome.PLANNED:
                    ElementTree.SubElement(case, "skipped", message="dry run")
            for reason in trouble:
                case = ElementTree.SubElement(suite, "testcase", classname=file, name="(load)")
                ElementTree.SubElement(case, "error", message=reason, type="unreadable")
        ElementTree.indent(suites)
        return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def exit_code(report: DriftReport) -> int:
    """As diff(1): 2 on trouble (an unreadable file, a request with no answer), 1 changed, 0 same."""
    if report.troubles or report.count(Outcome.FAILED):
        return 2
    return 1 if report.count(Outcome.CHANGED) else 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def results_for_skips(plans: Sequence[Planned]) -> list[Result]:
    """The report lines of planned interactions that were not sent."""
    return [Result(p, Outcome.SKIPPED, reason=p.skip) for p in plans if p.skip is not None]
