"""Options, and option checks, that more than one command uses."""

from __future__ import annotations

import click

from .._exceptions import ConfigError
from .._modes import parse_pace
from ..proxy._routes import RouteTable, parse_route

__all__ = ["check_pace", "pace_option", "port_option", "route_table", "usage_error"]


def usage_error(exc: ConfigError, option: str | None = None) -> click.BadParameter:
    """``exc`` as click's usage error for ``option`` (the one being checked when not given)."""
    message = str(exc).removeprefix("llmcassette: ")  # click adds its own prefix
    return click.BadParameter(message, param_hint=f"'{option}'" if option is not None else None)


def check_pace(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Reject a ``--pace`` that :func:`llmcassette.use_cassette` would refuse, as a usage error."""
    try:
        parse_pace(value)
    except ConfigError as exc:
        raise usage_error(exc) from None
    return value


def route_table(upstream: str | None, routes: tuple[str, ...]) -> RouteTable:
    """The routes of ``--upstream`` and ``--route``; a bad one is a usage error naming its option."""
    try:
        parsed = [parse_route(spec) for spec in routes]
    except ConfigError as exc:
        raise usage_error(exc, "--route") from None
    try:
        return RouteTable(upstream=upstream, routes=parsed)
    except ConfigError as exc:
        raise usage_error(exc, "--upstream") from None


#: ``--pace`` of the commands that replay.
pace_option = click.option(
    "--pace",
    default="instant",
    show_default=True,
    metavar="PACE",
    callback=check_pace,
    help="'instant', 'recorded' (the recorded timing), or a speed factor such as 2 (twice as fast).",
)


#: ``--port`` of the commands that listen on loopback.
port_option = click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port on 127.0.0.1 to listen on; 0 picks a free one.",
)
