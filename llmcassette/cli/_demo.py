"""`llmcassette demo`: the bundled cassette replayed to an example client, offline."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from ._options import pace_option

__all__ = ["command"]


@click.command("demo")
@pace_option
@click.option(
    "--replay",
    is_flag=True,
    help="Only replay the bundled cassette (or --cassette) to the client: no socket is opened.",
)
@click.option(
    "--cassette",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Replay this cassette instead of the bundled one (say, a copy you edited); implies --replay.",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the cassette the demo records into this folder, and keep it.",
)
def command(pace: str, replay: bool, cassette: Path | None, keep: Path | None) -> None:
    """
    Record, replay, serve and break an example client, offline.

    The example client (llmcassette/_demo/client.py) streams a chat completion with a tool call
    from an OpenAI-compatible server, then sends the tool's answer back. The demo records it
    through the recording proxy from a bundled upstream on 127.0.0.1, replays the cassette
    in-process and through `serve` with the upstream gone, then injects each fault of the
    standard set and prints what the client did. No network beyond loopback, no API key.

    With --replay it only replays the bundled cassette, showing the chunks and timing it
    delivered. Try it on a copy of the cassette that you edited.

    \b
    Examples:
      llmcassette demo
      llmcassette demo --keep demo-cassettes
      llmcassette demo --replay --pace recorded
      llmcassette demo --cassette my-copy.yaml
    """
    from .._demo import CASSETTE
    from .._demo.client import ChatError

    try:
        if replay or cassette is not None:
            from .._demo.replay import run_demo

            for line in run_demo(cassette or CASSETTE, pace=pace):
                click.echo(line)
            return
        from .._demo.loop import run_loop

        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            run_loop(keep, pace=pace, say=click.echo)
            return
        with tempfile.TemporaryDirectory(prefix="llmcassette-demo-") as workdir:
            run_loop(Path(workdir), pace=pace, say=click.echo)
    except ChatError as exc:
        raise click.ClickException(f"the example client failed: {exc}") from None
