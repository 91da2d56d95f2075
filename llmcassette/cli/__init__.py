"""
The ``llmcassette`` command line: a thin layer over the library, one function per command.

Every failure is reported on stderr as one line that starts with ``llmcassette:`` (a replay miss
adds its list of candidates below it), with a non-zero exit status: 2 for a command used wrongly,
1 for anything else. Tracebacks are for bugs only.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
from collections.abc import Sequence
from typing import Any

import click

from ..__version__ import __version__
from .._exceptions import LlmCassetteError

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


# Each command lives in its own module, imported only when that command runs, so that a quick
# command (`lint` in a pre-commit hook) does not pay for the proxy's server stack.
_COMMANDS = {
    "demo": "._demo",
    "diff": "._diff",
    "drift": "._drift",
    "faults": "._faults",
    "import": "._import",
    "inspect": "._inspect",
    "lint": "._lint",
    "record": "._record",
    "serve": "._serve",
}

# The one line `llmcassette --help` shows for each command, so that the help imports none of them.
# A test holds each line to the first sentence of its command's own help.
_SUMMARIES = {
    "demo": "Record, replay, serve and break an example client, offline.",
    "diff": "Compare the structure of two recordings of the same calls, A and B: two cassettes, or two "
    "folders whose cassettes are paired by relative path (a file on one side only is a change).",
    "drift": "Re-send every recorded request in PATHS (cassettes, or folders of them) to its live "
    "upstream, record the fresh answers, and report how their shape changed.",
    "faults": "List every fault, with its parameters and an example spec.",
    "import": "Convert vcrpy and pytest-recording cassettes to llmcassette's form.",
    "inspect": "Show what each interaction of CASSETTE amounts to.",
    "lint": "Check cassettes for secrets, invalid content and streams cut short.",
    "record": "Record real provider traffic through a local proxy into a cassette.",
    "serve": "Serve cassettes as a fake provider on 127.0.0.1, until stopped.",
}


class _Group(click.Group):
    """
    A group whose errors are one ``llmcassette:`` line, never a usage dump or a traceback, and
    whose commands are loaded on first use.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in _COMMANDS:
            return self.commands.get(cmd_name)
        module = importlib.import_module(_COMMANDS[cmd_name], __name__)
        command: click.Command = module.command
        self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            # A stand-in with the command's line, shortened the way click shortens the real one.
            command = self.commands.get(name) or click.Command(name, help=_SUMMARIES[name])
            rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        _escape_what_utf8_cannot_hold()
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


def _escape_what_utf8_cannot_hold() -> None:
    # Every command prints what cassettes hold (keys, text, inputs), and JSON may escape a UTF-16
    # surrogate alone ("\ud800"), which Python reads as a character no UTF-8 output can encode:
    # printing it raised UnicodeEncodeError mid-output. Written as its escape instead, which in a
    # JSON document (`--json`) reads back as the same text.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            with contextlib.suppress(ValueError, io.UnsupportedOperation):
                stream.reconfigure(errors="backslashreplace")


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


def main() -> None:
    """The ``llmcassette`` console script."""
    cli.main(prog_name="llmcassette")
