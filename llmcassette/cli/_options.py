"""Option checks that more than one command uses."""

from __future__ import annotations

import click

from .._exceptions import ConfigError
from .._modes import parse_pace

__all__ = ["check_pace", "port_option"]


def check_pace(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Reject a ``--pace`` that :func:`llmcassette.use_cassette` would refuse, as a usage error."""
    try:
        parse_pace(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("llmcassette: ")) from None
    return value


#: ``--port`` of the commands that listen on loopback.
port_option = click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port on 127.0.0.1 to listen on; 0 picks a free one.",
)
