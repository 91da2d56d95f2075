"""`llmcassette diff`: the structural difference between two recordings of the same calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .._exceptions import LlmCassetteError

if TYPE_CHECKING:
    from .._shape_diff import ShapeDiff

__all__ = ["command"]


class _Trouble(click.ClickException):
    """A file that cannot be compared: exit 2, as diff(1) does, so that 1 always means a change."""

    exit_code = 2


@click.command("diff")
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the changes as one JSON document.")
@click.option(
    "--ignore-header",
    "ignored_headers",
    multiple=True,
    metavar="NAME",
    help="Leave this response header out of the comparison (repeat for more).",
)
@click.pass_context
def command(ctx: click.Context, a: Path, b: Path, as_json: bool, ignored_headers: tuple[str, ...]) -> None:
    """
    Compare the structure of two recordings of the same calls, A and B: two cassettes, or two
    folders whose cassettes are paired by relative path (a file on one side only is a change).

    Run it after recording again to learn whether a provider changed its wire format. It
    compares structure, not content: status, content type, response header names, request and
    response JSON key paths with the types of their values, stream event types, their order,
    fields and last event, and how a stream ended. Ids, timestamps, text, token counts and
    header values are ignored. Interactions are paired in order by method and path (ids and
    model names in the path do not count). Each change is one line: `+` appeared in B, `-`
    vanished from A, `~` changed. As with diff(1), the exit status is 0 when the shape is the
    same, 1 when it changed, and 2 on trouble: a file that cannot be read or is not a valid
    cassette, or the command used wrongly.

    \b
    Examples:
      llmcassette diff old/chat.yaml tests/cassettes/chat.yaml
      llmcassette diff --ignore-header x-envoy-upstream-service-time a.yaml b.yaml
      llmcassette diff --json a.yaml b.yaml > shape-changes.json
      llmcassette diff tests/cassettes llmcassette-drift/tests/cassettes
    """
    ignore = frozenset(name.lower() for name in ignored_headers)
    if a.is_dir() != b.is_dir() and a.exists() and b.exists():
        raise _Trouble("A and B must both be files or both be folders.")
    pairs = _folder_pairs(a, b) if a.is_dir() else [(a, b)]
    changed = False
    reports = []
    for file_a, file_b in pairs:
        if file_a is None or file_b is None:
            sign, only = ("+", file_b) if file_a is None else ("-", file_a)
            side = "B" if file_a is None else "A"
            line = f"{sign} file {only} is only in {side}"
            reports.append({"a": _name(file_a), "b": _name(file_b), "changed": True, "line": line})
            if not as_json:
                click.echo(line)
            changed = True
            continue
        result = _compare(file_a, file_b, ignore)
        changed = changed or result.changed
        if as_json:
            reports.append(
                {"a": str(file_a), "b": str(file_b), **result.to_dict(), "summary": result.summary()}
            )
            continue
        if len(pairs) > 1:
            click.echo(f"{file_a} -> {file_b}")
        for change in result.changes:
            click.echo(change.line())
        click.echo(result.summary())
    if as_json:
        click.echo(
            json.dumps(
                reports[0] if not a.is_dir() else {"a": str(a), "b": str(b), "files": reports},
                indent=2,
                ensure_ascii=False,
            )
        )
    elif a.is_dir():
        click.echo(
            f"{len(pairs)} file pair(s) compared; " + ("shapes changed." if changed else "same shape.")
        )
    if changed:
        ctx.exit(1)


def _name(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _compare(a: Path, b: Path, ignore: frozenset[str]) -> ShapeDiff:
    from .._shape import document_shapes
    from .._shape_diff import diff_shapes
    from .._storage import load_cassette

    try:
        documents = load_cassette(a), load_cassette(b)
    except LlmCassetteError as exc:
        raise _Trouble(str(exc)) from None
    except OSError as exc:
        raise _Trouble(f"{exc}.") from None
    return diff_shapes(
        document_shapes(documents[0], path=a, ignore_headers=ignore),
        document_shapes(documents[1], path=b, ignore_headers=ignore),
    )


def _folder_pairs(a: Path, b: Path) -> list[tuple[Path | None, Path | None]]:
    """
    The cassettes of two folders paired by relative path; a file on one side only pairs with
    None. Other YAML and JSON files are left out, as lint, drift and import leave them.
    """
    from .._convert import cassettes_under

    left = {path.relative_to(a): path for path in cassettes_under(a)}
    right = {path.relative_to(b): path for path in cassettes_under(b)}
    return [(left.get(rel), right.get(rel)) for rel in sorted(left.keys() | right.keys())]
