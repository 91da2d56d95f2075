"""`llmcassette faults`: every fault, with its parameters and an example spec."""

from __future__ import annotations

import json
import textwrap

import click

from .._exceptions import ConfigError
from .._fault_catalog import FAMILIES, FaultInfo, catalog, fault_info

__all__ = ["command"]

_NAME_WIDTH = 18
# A fixed width: the listing reads the same in a terminal, a pipe and a CI log.
_WIDTH = 100


_NBSP = "\u00a0"


def _unbroken(text: str) -> str:
    """``text`` that wrapping keeps on one line (a parameter's ``name: type = default``)."""
    return text.replace(" ", _NBSP)


def _wrap(text: str, indent: str, first: str | None = None) -> list[str]:
    lines = textwrap.wrap(
        text,
        width=_WIDTH,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_on_hyphens=False,
        break_long_words=False,
    )
    return [line.replace(_NBSP, " ") for line in lines]


def _listing(infos: list[FaultInfo]) -> list[str]:
    lines = [
        f"{len(infos)} faults. Give one as a spec, NAME or NAME:key=value,... (use_cassette(faults=...),",
        "the llm_faults marker, --llm-faults). * marks the faults of the `standard` set.",
    ]
    pad = " " * (_NAME_WIDTH + 2)
    for family, meaning in FAMILIES.items():
        members = [info for info in infos if info.family == family]
        if not members:
            continue
        lines += ["", f"{family.capitalize()} faults: {meaning}."]
        for info in members:
            name = info.name + (" *" if info.standard else "")
            lines += _wrap(info.summary, pad, first=f"  {name:<{_NAME_WIDTH}}")
            params = ", ".join(_unbroken(param.signature()) for param in info.own_params)
            if params:
                lines += _wrap(f"parameters: {params}", pad + "  ", first=pad)
            lines.append(f"{pad}example: {info.example}")
    common = next(iter(infos)).params if infos else ()
    schedule = ", ".join(_unbroken(param.signature()) for param in common if param.common)
    lines.append("")
    lines += _wrap(f"Every fault also takes a schedule and a filter: {schedule}.", "")
    lines += _wrap(
        "* marks the faults of the `standard` set, what every LLM client should survive "
        '(@pytest.mark.llm_fault_matrix("standard")). `llmcassette faults NAME` shows one fault in full.',
        "",
    )
    return lines


def _detail(info: FaultInfo) -> list[str]:
    lines = [f"{info.name}: {info.summary}", f"family: {info.family} ({FAMILIES[info.family]})"]
    if info.sets:
        cases = ", ".join(f"{set_name} as {spec}" for set_name, _, spec in info.sets)
        lines += _wrap(f"in fault sets: {cases}", "  ", first="")
    lines += ["", *info.doc.splitlines(), ""]
    for title, params in (
        ("Parameters:", [p for p in info.params if not p.common]),
        ("Schedule and filter (every fault):", [p for p in info.params if p.common]),
    ):
        if not params:
            continue
        lines.append(title)
        width = max(len(p.signature()) for p in params) + 2
        for param in params:
            lines += _wrap(param.description, " " * (width + 2), first=f"  {param.signature():<{width}}")
        lines.append("")
    lines += ["Example:", f"  {info.example}"]
    return lines


@click.command("faults")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the faults as one JSON document.")
def command(name: str | None, as_json: bool) -> None:
    """
    List every fault, with its parameters and an example spec.

    With NAME, show that fault in full: what the client sees, every parameter with its type,
    default and meaning, and the fault sets that use it. * marks the faults of the `standard`
    set, what every LLM client should survive.

    \b
    Examples:
      llmcassette faults
      llmcassette faults rate_limit
      llmcassette faults --json
    """
    try:
        infos = [fault_info(name)] if name is not None else catalog()
    except ConfigError as exc:
        raise click.UsageError(str(exc).removeprefix("llmcassette: ")) from None
    if as_json:
        data = [info.to_dict() for info in infos]
        click.echo(json.dumps(data[0] if name is not None else data, indent=2, ensure_ascii=False))
        return
    for line in _detail(infos[0]) if name is not None else _listing(infos):
        click.echo(line.rstrip())
