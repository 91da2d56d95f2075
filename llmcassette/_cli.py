"""
The ``llmcassette`` command line: a thin layer over the library, one function per command.

Every failure is reported on stderr as one line that starts with ``llmcassette:`` (a replay miss
adds its list of candidates below it), with a non-zero exit status: 2 for a command used wrongly,
1 for anything else. Tracebacks are for bugs only.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .__version__ import __version__
from ._exceptions import ConfigError, LlmCassetteError
from ._modes import parse_pace

__all__ = ["cli", "main"]

_INTERRUPTED = 130  # what a shell reports for Ctrl-C


def _fail(message: str, exit_code: int) -> int:
    click.echo(message if message.startswith("llmcassette:") else f"llmcassette: {message}", err=True)
    return exit_code


def _click_message(exc: click.ClickException) -> str:
    text = exc.format_message().strip()
    # Click writes "No such option"; our messages continue a sentence after "llmcassette: ".
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    if not text.endswith((".", "?", "!")):
        text += "."
    if isinstance(exc, click.UsageError):
        command = exc.ctx.command_path if exc.ctx is not None else "llmcassette"
        text += f" See `{command} --help`."
    return text


class _Group(click.Group):
    """A group whose errors are one ``llmcassette:`` line, never a usage dump or a traceback."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(
                args, prog_name, complete_var, False, windows_expand_args=windows_expand_args, **extra
            )
            exit_code = result if isinstance(result, int) else 0
        except click.exceptions.NoArgsIsHelpError as exc:
            # A bare `llmcassette` asks what there is to do: the help answers, it is no error.
            click.echo(exc.ctx.get_help())
            exit_code = 0
        except click.ClickException as exc:
            exit_code = _fail(_click_message(exc), exc.exit_code)
        except LlmCassetteError as exc:
            exit_code = _fail(str(exc), 1)
        except OSError as exc:
            # A file that cannot be read or written is the user's to fix, not a bug to trace.
            exit_code = _fail(f"{exc}.", 1)
        except click.Abort:
            exit_code = _fail("interrupted.", _INTERRUPTED)
        if not standalone_mode:
            return exit_code
        sys.exit(exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llmcassette")
def cli() -> None:
    """
    Record and replay LLM provider traffic: streamed responses keep their chunk boundaries and
    timing.

    \b
    Examples:
      llmcassette demo                   replay a bundled cassette, offline
      llmcassette demo --pace recorded   the same, at the recorded timing
    """


def _check_pace(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parse_pace(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("llmcassette: ")) from None
    return value


@cli.command()
@click.option(
    "--pace",
    default="instant",
    show_default=True,
    metavar="PACE",
    callback=_check_pace,
    help="'instant', 'recorded' (the recorded timing), or a speed factor such as 2 (twice as fast).",
)
@click.option(
    "--cassette",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Replay this cassette instead of the bundled one (say, a copy you edited).",
)
def demo(pace: str, cassette: Path | None) -> None:
    """
    Replay a bundled cassette to an example client, offline.

    Shows what the client got, and the chunks and timing the cassette replayed. The example
    client (llmcassette/_demo/client.py) streams a chat completion with a tool call from an
    OpenAI-compatible server, then sends the tool's answer back. Here it talks to a cassette:
    no network, no API key. Try it on a copy of the cassette that you edited.

    \b
    Examples:
      llmcassette demo
      llmcassette demo --pace recorded
      llmcassette demo --cassette my-copy.yaml
    """
    from ._demo import CASSETTE
    from ._demo.client import ChatError
    from ._demo.replay import run_demo

    try:
        lines = run_demo(cassette or CASSETTE, pace=pace)
    except ChatError as exc:
        raise click.ClickException(f"the example client failed: {exc}") from None
    for line in lines:
        click.echo(line)


def main() -> None:
    """The ``llmcassette`` console script."""
    cli.main(prog_name="llmcassette")
