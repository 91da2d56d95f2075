"""Options, and option checks, that more than one command uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .._exceptions import ConfigError
from .._modes import parse_pace
from ..proxy._routes import RouteTable, parse_route
from ..proxy._tls import TlsFiles, TlsFilesError, tls_files

__all__ = [
    "check_pace",
    "check_tls",
    "pace_option",
    "port_option",
    "route_table",
    "tls_options",
    "usage_error",
]

_F = TypeVar("_F", bound=Callable[..., Any])


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


def tls_options(function: _F) -> _F:
    """``--tls-cert`` and ``--tls-key`` of the commands that listen; check them with :func:`check_tls`."""
    # Not click.Path(exists=True): check_tls says what is wrong with a file, in llmcassette's words.
    path = click.Path(path_type=Path)
    key = click.option(
        "--tls-key",
        metavar="FILE",
        type=path,
        default=None,
        help="The private key of --tls-cert (PEM).",
    )
    cert = click.option(
        "--tls-cert",
        metavar="FILE",
        type=path,
        default=None,
        help="Listen with TLS (https://, wss://) on this certificate (PEM), for clients that only dial "
        "https or wss. With --tls-key.",
    )
    return cert(key(function))


def check_tls(cert: Path | None, key: Path | None) -> TlsFiles | None:
    """The files of ``--tls-cert`` and ``--tls-key``, or a usage error naming the option at fault."""
    try:
        return tls_files(cert, key, names=("--tls-cert", "--tls-key"))
    except TlsFilesError as exc:
        if exc.option is None:
            raise click.UsageError(str(exc).removeprefix("llmcassette: ")) from None
        raise usage_error(exc, exc.option) from None
