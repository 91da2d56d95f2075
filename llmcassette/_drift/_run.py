"""
A whole drift run: find the cassettes, plan every interaction, send what can be sent, write the
fresh recordings into a scratch copy (and over the originals when asked), and build the report.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from .._convert import cassettes_under
from .._exceptions import LlmCassetteError
from .._models import CassetteDocument, Interaction
from .._scrub import Scrubber
from .._storage import load_cassette, save_cassette
from ._plan import Planned, plan_interaction
from ._report import DriftReport, Outcome, Result, compare, results_for_skips
from ._send import SendOptions, send_all

__all__ = ["DriftOptions", "collect_cassettes", "fresh_path", "run_drift"]

Update = Literal["changed", "all"]


@dataclass(frozen=True)
class DriftOptions:
    """Everything a drift run is told (see ``llmcassette drift --help``)."""

    out_dir: Path = Path("llmcassette-drift")
    upstream: str | None = None
    bearer_env: str | None = None
    max_requests: int = 100
    max_output_tokens: int | None = 256
    dry_run: bool = False
    update: Update | None = None
    send: SendOptions = field(default_factory=SendOptions)
    scrubber: Scrubber = field(default_factory=Scrubber)


def collect_cassettes(paths: Sequence[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The cassette files named or found under folders, and the paths that are neither."""
    found: list[Path] = []
    troubles: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            found.extend(cassettes_under(path))
        elif path.exists():
            found.append(path)
        else:
            troubles.append((path, "no such file or folder"))
    return list(dict.fromkeys(found)), troubles


def fresh_path(out_dir: Path, cassette: Path) -> Path:
    """
    Where the fresh copy of ``cassette`` goes: its path relative to the working folder, under
    ``out_dir``, so ``llmcassette diff tests/cassettes OUT/tests/cassettes`` pairs the two sets.
    """
    absolute = cassette.resolve()
    try:
        relative = absolute.relative_to(Path.cwd().resolve())
    except ValueError:
        relative = absolute.relative_to(absolute.anchor)
    return out_dir / relative


def _plans(
    cassettes: Sequence[Path], options: DriftOptions, environ: Mapping[str, str]
) -> tuple[dict[Path, CassetteDocument], list[Planned], list[tuple[Path, str]]]:
    documents: dict[Path, CassetteDocument] = {}
    plans: list[Planned] = []
    troubles: list[tuple[Path, str]] = []
    for cassette in cassettes:
        try:
            document = load_cassette(cassette)
        except (LlmCassetteError, OSError) as exc:
            troubles.append((cassette, str(exc).removeprefix("llmcassette: ")))
            continue
        documents[cassette] = document
        for index, interaction in enumerate(document.interactions):
            plans.append(
                plan_interaction(
                    cassette,
                    index,
                    interaction,
                    environ=environ,
                    upstream=options.upstream,
                    bearer_env=options.bearer_env,
                    max_output_tokens=options.max_output_tokens,
                )
            )
    sent = 0
    for planned in plans:
        if planned.skip is None:
            sent += 1
            if sent > options.max_requests:
                planned.skip = f"over the run's bound of {options.max_requests} requests (--max-requests)"
    return documents, plans, troubles


def _fresh_by_file(
    results: Sequence[Result], fresh: Mapping[int, Interaction], outcomes: frozenset[Outcome] | None = None
) -> dict[Path, dict[int, Interaction]]:
    # The fresh recordings of each cassette by interaction index (of the given outcomes only).
    by_file: dict[Path, dict[int, Interaction]] = {}
    for result in results:
        interaction = fresh.get(id(result.planned))
        if interaction is not None and (outcomes is None or result.outcome in outcomes):
            by_file.setdefault(result.planned.cassette, {})[result.planned.index] = interaction
    return by_file


def _save_with(target: Path, document: CassetteDocument, replaced: Mapping[int, Interaction]) -> None:
    """``document`` with the interactions in ``replaced`` swapped in, written atomically to ``target``."""
    interactions = [replaced.get(i, old) for i, old in enumerate(document.interactions)]
    copy = document.model_copy(update={"interactions": interactions})
    save_cassette(target, copy, vcrpy_compatible=document.llmcassette_schema is None)


def _write_copies(
    documents: Mapping[Path, CassetteDocument],
    results: Sequence[Result],
    fresh: Mapping[int, Interaction],
    out_dir: Path,
) -> None:
    by_file = _fresh_by_file(results, fresh)
    for cassette, document in documents.items():
        target = fresh_path(out_dir, cassette)
        target.parent.mkdir(parents=True, exist_ok=True)
        _save_with(target, document, by_file.get(cassette, {}))


def _update_originals(
    documents: Mapping[Path, CassetteDocument],
    results: Sequence[Result],
    fresh: Mapping[int, Interaction],
    update: Update,
) -> list[Path]:
    wanted = frozenset({Outcome.CHANGED} if update == "changed" else {Outcome.CHANGED, Outcome.SAME})
    by_file = _fresh_by_file(results, fresh, wanted)
    for cassette, replaced in by_file.items():
        _save_with(cassette, documents[cassette], replaced)
    return list(by_file)


def run_drift(
    paths: Sequence[Path],
    options: DriftOptions,
    *,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[DriftReport, list[Path]]:
    """Run drift over ``paths``; return the report and the original files that were updated."""
    cassettes, troubles = collect_cassettes(paths)
    documents, plans, unreadable = _plans(cassettes, options, os.environ if environ is None else environ)
    troubles += unreadable
    report = DriftReport([], troubles, dry_run=options.dry_run, max_output_tokens=options.max_output_tokens)
    if options.dry_run:
        report.results = [
            Result(p, Outcome.PLANNED) if p.skip is None else Result(p, Outcome.SKIPPED, reason=p.skip)
            for p in plans
        ]
        return report, []
    to_send = [p for p in plans if p.skip is None]
    answers = asyncio.run(
        send_all(to_send, options=options.send, scrubber=options.scrubber, sleep=sleep, transport=transport)
    )
    compared = {id(answer.planned): compare(answer) for answer in answers}
    fresh = {id(a.planned): a.interaction for a in answers if a.interaction is not None}
    skipped = {id(r.planned): r for r in results_for_skips(plans)}
    report.results = [compared.get(id(p)) or skipped[id(p)] for p in plans]
    _write_copies(documents, report.results, fresh, options.out_dir)
    updated = _update_originals(documents, report.results, fresh, options.update) if options.update else []
    return report, updated
