"""`llmcassette diff`: the structural difference between two recordings of the same calls."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["command"]


@click.command("diff")
@click.argument("a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(dir_okay=False, path_type=Path))
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
    Compare the structure of two recordings of the same calls, A and B.

    Run it after recording again to learn whether a provider changed its wire format. It
    compares structure, not content: status, content type, response header names, request and
    response JSON key paths with the types of their values, stream event types, their order,
    fields and last event, and how a stream ended. Ids, timestamps, text, token counts and
    header values are ignored. Interactions are paired in order by method and path (ids and
    model names in the path do not count). Each change is one line: `+` appeared in B, `-`
    vanished from A, `~` changed. The exit status is 0 when the shape is the same, 1 when it
    changed (or a file cannot be read), 2 when the command is used wrongly.

    \b
    Examples:
      llmcassette diff old/chat.yaml tests/cassettes/chat.yaml
      llmcassette diff --ignore-header x-envoy-upstream-service-time a.yaml b.yaml
      llmcassette diff --json a.yaml b.yaml > shape-changes.json
    """
    from .._shape import document_shapes
    from .._shape_diff import diff_shapes
    from .._storage import load_cassette

    ignore = frozenset(name.lower() for name in ignored_headers)
    result = diff_shapes(
        document_shapes(load_cassette(a), path=a, ignore_headers=ignore),
        document_shapes(load_cassette(b), path=b, ignore_headers=ignore),
    )
    if as_json:
        document = {"a": str(a), "b": str(b), **result.to_dict(), "summary": result.summary()}
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        for change in result.changes:
            click.echo(change.line())
        click.echo(result.summary())
    if result.changed:
        ctx.exit(1)
