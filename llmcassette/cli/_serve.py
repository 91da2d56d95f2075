"""`llmcassette serve`: cassettes served as a fake provider on loopback, until stopped."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from .._exceptions import ConfigError
from .._matching import Matcher
from ..faults import FaultPlan
from ..proxy._command import SignalWatch
from ..proxy._serve import DEFAULT_MAX_BODY_BYTES, FAULT_HEADER, SERVE_MATCH_ON, CassetteServer
from ..proxy._server import DEFAULT_HEADER_TIMEOUT_S, DEFAULT_IDLE_TIMEOUT_S
from ._options import check_tls, pace_option, port_option, route_table, tls_options, usage_error

__all__ = ["command"]


def _check_faults(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    try:
        FaultPlan(value)  # each spec parses, and there are not too many
    except ConfigError as exc:
        raise usage_error(exc) from None
    return value


def _check_match_on(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in value.split(",") if part.strip())
    try:
        Matcher(parts)
    except ConfigError as exc:
        raise usage_error(exc) from None
    return parts


def _say(line: str) -> None:
    click.echo(line, err=True)


def _banner(server: CassetteServer, pace: str, allow_repeats: bool) -> None:
    names = ", ".join(str(cassette.path) for cassette in server.cassettes)
    repeats = "repeats allowed" if allow_repeats else "each recording plays once"
    _say(f"llmcassette serve: serving {names} on {server.url} (pace '{pace}', {repeats}).")
    # The server forwards nothing: a route only says which recorded URLs its paths stand for.
    for line in server.routes.describe():
        _say(f"  {line.replace(' -> ', ' stands for ')}")
    _say(
        f"Point clients at the server with these variables; choose a fault per request with the "
        f"{FAULT_HEADER} header; stop with Ctrl-C."
    )
    # On stdout, alone: a script can read the server's address there, or eval the lines.
    for name, value in server.environment().items():
        click.echo(f"export {name}={shlex.quote(value)}")


@click.command("serve")
@click.argument(
    "cassettes", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@port_option
@tls_options
@click.option(
    "--upstream",
    metavar="URL",
    default=None,
    help="The upstream the cassettes were recorded from through `record --upstream`, if any.",
)
@click.option(
    "--route",
    "routes",
    metavar="NAME=URL",
    multiple=True,
    help="Take /NAME/... as a route to URL, as `record --route` did. Repeatable.",
)
@click.option(
    "--fault",
    "faults",
    metavar="SPEC",
    multiple=True,
    callback=_check_faults,
    help="Inject a fault into every request it matches (see `llmcassette faults`). Repeatable.",
)
@pace_option
@click.option(
    "--match-on",
    default=",".join(SERVE_MATCH_ON),
    show_default=True,
    metavar="PARTS",
    callback=_check_match_on,
    help="Request parts to match on, comma-separated: method, url, scheme, host, port, path, query, body.",
)
@click.option(
    "--allow-repeats/--no-allow-repeats",
    default=True,
    show_default=True,
    help="Once a request's recorded answers are used up, play the last one again (or answer 404).",
)
@click.option(
    "--stall-max-s",
    default=600.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Longest a timeout fault keeps a connection silent when the client never gives up.",
)
@click.option(
    "--header-timeout-s",
    default=DEFAULT_HEADER_TIMEOUT_S,
    show_default=True,
    type=click.FloatRange(0, 3600, min_open=True),
    help=(
        "Close a connection whose client takes longer than this to send a request's head, "
        "or pauses longer while sending its body."
    ),
)
@click.option(
    "--idle-timeout-s",
    default=DEFAULT_IDLE_TIMEOUT_S,
    show_default=True,
    type=click.FloatRange(0, 3600, min_open=True),
    help="Close a keep-alive connection left idle this long between requests.",
)
@click.option(
    "--max-body-bytes",
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    type=click.IntRange(1),
    help="Answer a request whose body is larger than this with a 413.",
)
def command(
    cassettes: tuple[Path, ...],
    port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    upstream: str | None,
    routes: tuple[str, ...],
    faults: tuple[str, ...],
    pace: str,
    match_on: tuple[str, ...],
    allow_repeats: bool,
    stall_max_s: float,
    header_timeout_s: float,
    idle_timeout_s: float,
    max_body_bytes: int,
) -> None:
    """
    Serve cassettes as a fake provider on 127.0.0.1, until stopped.

    Any client that lets you set a base URL replays from the cassettes, in any language: it
    gets the recorded responses with their recorded chunks (and timing, with --pace). Clients
    may call the server's root (/v1/chat/completions) or a provider route
    (/openai/v1/chat/completions, /anthropic/..., /gemini/..., /ollama/...). Cassettes are
    tried in order; a request none of them answers gets a 404 that lists the closest
    recordings. A WebSocket upgrade is answered by a recorded session, replayed turn by turn.

    Faults come from --fault and, per request, from the x-llmcassette-fault header
    (`rate_limit:retry_after_ms=100`, several separated by `;`). Their schedules count the
    requests that carry the same header value. Network faults are real socket behaviour:
    a reset, an early close, or silence until the client's timeout gives up.

    Prints the variables that point each SDK at the server, logs one line per request on
    stderr, and stops on Ctrl-C or SIGTERM. Nothing is written to the cassettes.

    \b
    Examples:
      llmcassette serve cassettes/chat.yaml
      llmcassette serve cassettes/chat.yaml --port 8765 --pace recorded
      llmcassette serve cassettes/*.yaml --fault rate_limit:times=1
      llmcassette serve cassettes/gw.yaml --upstream http://127.0.0.1:4000
      curl -H 'x-llmcassette-fault: disconnect:after=2' http://127.0.0.1:8765/openai/v1/...
    """
    table = route_table(upstream, routes)
    tls = check_tls(tls_cert, tls_key)
    server = CassetteServer(
        list(cassettes),
        routes=table,
        faults=faults,
        pace=pace,
        match_on=match_on,
        allow_repeats=allow_repeats,
        port=port,
        tls_cert=tls.cert if tls is not None else None,
        tls_key=tls.key if tls is not None else None,
        stall_max_s=stall_max_s,
        header_timeout_s=header_timeout_s,
        idle_timeout_s=idle_timeout_s,
        max_body_bytes=max_body_bytes,
        log=_say,
    )
    with SignalWatch() as signals:
        server.start()
        try:
            _banner(server, pace, allow_repeats)
            signals.wait()
        finally:
            server.stop()
    app = server.app
    _say(f"llmcassette serve: stopped; {app.answered} answered, {app.missed} unmatched.")
