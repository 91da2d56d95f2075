"""`llmcassette record`: a recording proxy on loopback, around a command or until stopped."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click

from .._exceptions import ConfigError
from .._modes import RecordMode
from ..proxy._command import SignalWatch, child_environment, exit_status, run_command
from ..proxy._log import interactions_text
from ..proxy._record import Recorder
from ._options import check_tls, port_option, route_table, tls_options

__all__ = ["command"]

_RECORD_MODES = ("new_episodes", "all", "once", "rewrite")


def _say(line: str) -> None:
    click.echo(line, err=True)


def _banner(recorder: Recorder, output: Path, record_mode: str) -> None:
    _say(f"llmcassette record: recording to {output} through {recorder.url} (record mode '{record_mode}').")
    for line in recorder.routes.describe():
        _say(f"  {line}")
    _say("Point clients at the proxy with these variables; stop with Ctrl-C to save the cassette.")
    # On stdout, alone: a script can read the proxy's address there, or eval the lines.
    for name, value in recorder.environment().items():
        click.echo(f"export {name}={shlex.quote(value)}")


def _summary(recorder: Recorder, output: Path) -> str:
    count = recorder.recorded
    recovered = recorder.recovery.recovered if recorder.recovery is not None else 0
    if count and recovered and recorder.cassette.record_mode is RecordMode.REWRITE:
        # The first line said the recovered ones are in the file: this one says they went.
        return (
            f"llmcassette record: recorded {interactions_text(count)} to {output}, which replaces "
            f"all it held (record mode 'rewrite'), the {interactions_text(recovered)} recovered "
            "from the journal included."
        )
    if count:
        return f"llmcassette record: recorded {interactions_text(count)} to {output}."
    if recovered:
        # The file was written, by the recovery that the first line reported.
        return (
            f"llmcassette record: nothing new was recorded; {output} keeps the "
            f"{interactions_text(recovered)} recovered from the journal."
        )
    return f"llmcassette record: nothing was recorded; {output} was not written."


@click.command("record", context_settings={"allow_interspersed_args": False})
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The cassette to write (YAML; JSON when it ends in .json).",
)
@port_option
@tls_options
@click.option(
    "--upstream",
    metavar="URL",
    default=None,
    help="Send every path to this URL (a gateway, vLLM, LiteLLM) instead of per-provider routes.",
)
@click.option(
    "--route",
    "routes",
    metavar="NAME=URL",
    multiple=True,
    help="Serve /NAME/... from URL: replaces a provider's upstream, or adds a route. Repeatable.",
)
@click.option(
    "--record-mode",
    type=click.Choice(_RECORD_MODES),
    default="new_episodes",
    show_default=True,
    help="new_episodes replays what the cassette has and records the rest; all records everything "
    "and keeps the old; rewrite replaces the file; once records only if the file does not exist.",
)
@click.option(
    "--no-scrub", is_flag=True, help="Store keys, cookies and auth headers as sent (never commit that)."
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Print a line on stderr for each request, once it has ended."
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def command(
    output: Path,
    port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    upstream: str | None,
    routes: tuple[str, ...],
    record_mode: str,
    no_scrub: bool,
    verbose: bool,
    command: tuple[str, ...],
) -> int:
    """
    Record real provider traffic through a local proxy into a cassette.

    The proxy listens on 127.0.0.1 and forwards /openai/..., /anthropic/..., /gemini/...,
    /ollama/... (and groq, mistral, openrouter) to the real providers, or every path to
    --upstream. Streams pass through as they arrive and are recorded chunk by chunk; secrets are
    scrubbed. WebSocket upgrades (OpenAI Realtime, Gemini Live) go to the same upstream as ws://
    or wss://, and each session is recorded message by message. The cassette stores the
    upstream's URLs, so it replays in-process (use_cassette) and through `llmcassette serve`
    alike.

    With a COMMAND, it runs the command with OPENAI_BASE_URL, ANTHROPIC_BASE_URL,
    GOOGLE_GEMINI_BASE_URL, OLLAMA_HOST and LLMCASSETTE_PROXY_URL pointing at the proxy, saves
    when the command ends, and exits with its status. Without one, it prints those variables
    and records until Ctrl-C. A stop signal (Ctrl-C, SIGTERM, SIGHUP) is passed on to the
    command, and the cassette is saved, atomically, in every case (if its folder cannot take it
    by then, in the temporary folder, which stderr names).

    \b
    Examples:
      llmcassette record -o cassettes/chat.yaml -- python my_agent.py
      llmcassette record -o cassettes/suite.yaml -- pytest tests/e2e
      llmcassette record -o cassettes/node.yaml -- node client.mjs
      llmcassette record -o cassettes/gw.yaml --upstream http://127.0.0.1:4000 -- ./run.sh
      llmcassette record -o cassettes/manual.yaml --port 8765 --verbose
    """
    table = route_table(upstream, routes)
    tls = check_tls(tls_cert, tls_key)
    try:
        recorder = Recorder(
            output,
            routes=table,
            record_mode=record_mode,
            scrub=not no_scrub,
            port=port,
            tls_cert=tls.cert if tls is not None else None,
            tls_key=tls.key if tls is not None else None,
            log=_say if verbose else None,
            warn=_say,
        )
    except ConfigError as exc:  # the one option click cannot check: a folder that takes no files
        raise _CannotRecord(str(exc)) from None
    if recorder.recovery is not None:
        _say(recorder.recovery.describe(output))
    status = 0
    with SignalWatch() as signals:
        recorder.start()
        try:
            if not command:
                _banner(recorder, output, record_mode)
                signals.wait()
            elif early := signals.take():
                # Stopped while starting: the command is not started at all.
                status = exit_status(-early[0])
            else:
                _say(f"llmcassette record: recording to {output} through {recorder.url}.")
                env = child_environment(os.environ, recorder.environment())
                status = _run(command, env, signals)
        finally:
            recorder.stop()
    _say(_summary(recorder, output))
    misses = recorder.cassette.misses
    if misses and status == 0:
        # As in-process: a request the cassette could not answer fails the run, even when the
        # client coped with the error.
        raise misses[0]
    if misses:
        _say(str(misses[0]))
    return status


class _CannotRecord(click.ClickException):
    exit_code = 2  # an option used wrongly: nothing was started


class _NotFound(click.ClickException):
    exit_code = 127  # what a shell reports for a command it cannot find


class _NotExecutable(click.ClickException):
    exit_code = 126  # what a shell reports for a file it cannot execute


def _run(argv: tuple[str, ...], env: dict[str, str], signals: SignalWatch) -> int:
    try:
        return run_command(argv, env=env, signals=signals)
    except FileNotFoundError:
        raise _NotFound(f"cannot run {argv[0]!r}: no such file or command.") from None
    except PermissionError:
        raise _NotExecutable(f"cannot run {argv[0]!r}: permission denied.") from None
