"""`llmcassette diff`: the structural difference between two recordings of the same calls."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .._exceptions import LlmCassetteError

__all__ = ["command"]


class _Trouble(click.ClickException):
    """A file that cannot be compared: exit 2, as diff(1) does, so that 1 always means a change."""

    exit_code = 2


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
    vanished from A, `~` changed. As with diff(1), the exit status is 0 when the shape is the
    same, 1 when it changed, and 2 on trouble: a file that cannot be read or is not a valid
    cassette, or the command used wrongly.

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
    try:
        documents = load_cassette(a), load_cassette(b)
    except LlmCassetteError as exc:
        raise _Trouble(str(exc)) from None
    except OSError as exc:
        raise _Trouble(f"{exc}.") from None
    result = diff_shapes(
        document_shapes(documents[0], path=a, ignore_headers=ignore),
        document_shapes(documents[1], path=b, ignore_headers=ignore),
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
