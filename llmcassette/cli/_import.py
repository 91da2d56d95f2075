"""`llmcassette import`: vcrpy and pytest-recording cassettes rewritten in llmcassette's form."""

from __future__ import annotations

from pathlib import Path

import click

from .._convert import Changes, import_cassettes

__all__ = ["command"]


def _plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def _changes(changes: Changes, *, scrub: bool, total: bool = False) -> str:
    """What importing changed; a file's line names only what it has, the total says all."""
    parts = []
    if changes.decompressed:
        parts.append(f"{_plural(changes.decompressed, 'body', 'bodies')} decompressed")
    if changes.as_text:
        parts.append(f"{_plural(changes.as_text, 'binary body', 'binary bodies')} now text")
    if scrub and (changes.scrubbed or total):
        parts.append(f"{_plural(changes.scrubbed, 'value')} scrubbed")
    return ", ".join(parts)


@click.command("import")
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    "dest",
    required=True,
    metavar="DEST",
    type=click.Path(),
    help="The cassette to write, or a folder (a folder SRC is copied to the same places under it).",
)
@click.option("--force", is_flag=True, help="Overwrite destination files that exist (SRC itself too).")
@click.option(
    "--no-scrub",
    "no_scrub",
    is_flag=True,
    help="Keep secrets as they are (auth headers, cookies, key= parameters, key-shaped strings).",
)
@click.option(
    "--vcrpy-compatible",
    is_flag=True,
    help="Keep JSON bodies as text that plain vcrpy replays, instead of structured parsed_body.",
)
def command(src: Path, dest: str, force: bool, no_scrub: bool, vcrpy_compatible: bool) -> None:
    """
    Convert vcrpy and pytest-recording cassettes to llmcassette's form.

    SRC is a cassette file or a folder of them (plain vcrpy YAML or JSON, pytest-recording,
    pydantic-ai's layout). Each one is written to DEST atomically, readable and scrubbed: gzip
    bodies decompressed, !!binary bodies that are text stored as text, JSON bodies as YAML
    structure, secrets replaced as when recording. Replay gives the client the same bytes as
    before (except scrubbed values), streams one event per chunk. Nothing is written if a
    source does not load, or (without --force) a destination exists.

    \b
    Examples:
      llmcassette import tests/cassettes/test_chat.yaml -o cassettes/test_chat.yaml
      llmcassette import tests/cassettes -o tests/llm_cassettes
      llmcassette import tests/cassettes -o tests/cassettes --force   (in place)
    """
    report = import_cassettes(src, dest, scrub=not no_scrub, force=force, vcrpy_compatible=vcrpy_compatible)
    total = Changes()
    for result in report.results:
        total.add(result.changes)
        details = _changes(result.changes, scrub=not no_scrub)
        click.echo(
            f"{result.source} -> {result.dest}: {_plural(result.interactions, 'interaction')}"
            + (f"; {details}" if details else "")
        )
    summary = f"Imported {_plural(len(report.results), 'cassette')}"
    details = _changes(total, scrub=not no_scrub, total=True)
    if details:
        summary += f" ({details})"
    if report.skipped:
        count = len(report.skipped)
        what = "is not a cassette" if count == 1 else "are not cassettes"
        summary += f"; skipped {_plural(count, 'file')} that {what}"
    click.echo(summary + ".")
