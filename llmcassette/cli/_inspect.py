"""`llmcassette inspect`: a readable transcript of every interaction of a cassette."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["command"]


@click.command("inspect")
@click.argument("cassette", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the transcript as one JSON document.")
@click.option("--full", is_flag=True, help="Show long text, inputs and tool arguments whole.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write the transcript as a self-contained HTML page, with a chart of chunk arrivals per stream.",
)
def command(cassette: Path, as_json: bool, full: bool, html_path: Path | None) -> None:
    """
    Show what each interaction of CASSETTE amounts to.

    Per interaction: the request (method, URL as stored, provider, model, whether it asked for a
    stream, its last input), the status, and what the provider's answer says: text, reasoning,
    tool calls, finish reason, token usage, or the error. A streamed response adds its events and
    chunks and how it ended; when the chunk arrival times were recorded, also the time to first
    chunk, the gaps between chunks (min, median, p95, max, in ms) and a one-line chart of when
    the chunks arrived. Interactions are counted from 0. CASSETTE may be an llmcassette, vcrpy,
    pytest-recording or pydantic-ai cassette.

    \b
    Examples:
      llmcassette inspect tests/cassettes/chat.yaml
      llmcassette inspect --full tests/cassettes/chat.yaml | less
      llmcassette inspect --json tests/cassettes/chat.yaml | jq '.interactions[].stream'
      llmcassette inspect --html chat.html tests/cassettes/chat.yaml
    """
    from .._file_errors import cannot_write
    from .._inspect import render_html, render_json, render_text
    from .._storage import load_cassette
    from .._transcript import transcribe

    if as_json and html_path is not None:
        raise click.UsageError("--json and --html write different documents: give one of them.")
    transcripts = transcribe(load_cassette(cassette), path=cassette)
    name = str(cassette)
    if html_path is not None:
        page = render_html(transcripts, cassette=name)
        try:
            # Its folder is created, as `record -o` and `import -o` create a cassette's.
            html_path.parent.mkdir(parents=True, exist_ok=True)
            html_path.write_text(page, encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(cannot_write("the page", html_path, exc)) from None
        click.echo(f"Wrote {html_path} ({len(transcripts)} interactions).")
    elif as_json:
        click.echo(render_json(transcripts, cassette=name))
    else:
        click.echo("\n".join(render_text(transcripts, cassette=name, full=full)))
