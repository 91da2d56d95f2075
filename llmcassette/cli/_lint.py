"""`llmcassette lint`: check cassette files for secrets, invalid content and cut streams."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .._lint import FIXED_BY_IMPORT, Rule, lint_paths, rule_summary

__all__ = ["command"]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@click.command("lint")
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    metavar="PATH...",
    type=click.Path(exists=True, path_type=Path),
)
@click.option(
    "--ignore",
    "ignored",
    multiple=True,
    metavar="RULE",
    type=click.Choice([rule.value for rule in Rule]),
    help="Do not report this rule (repeat for more): " + ", ".join(rule.value for rule in Rule) + ".",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as one JSON document.")
@click.option(
    "--max-age-days",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Report interactions recorded longer ago than this (rule 'stale'), by their Date header.",
)
@click.pass_context
def command(
    ctx: click.Context,
    paths: tuple[Path, ...],
    ignored: tuple[str, ...],
    as_json: bool,
    max_age_days: float | None,
) -> None:
    """
    Check cassettes for secrets, invalid content and streams cut short.

    PATH is a cassette file, or a folder searched for *.yaml, *.yml and *.json cassettes. Each
    problem is one line, `path:interaction N: field: [rule] message (what to do)`, with
    interactions counted from 0. The exit status is 1 when there are problems, 0 when there
    are none.

    \b
    Rules:
      secret               a credential or key-shaped string (sk-..., AIza..., a JWT)
                           in a URL, header or body
      unscrubbed-header    a cookie or organisation/project id header with its value
      schema               a file that does not load, or a stream record that
                           contradicts its body
      binary-text          a body stored as binary (or gzip) that is text
      unterminated-stream  a stream that ends before its terminator ([DONE],
                           message_stop, a finish reason) and is not marked as cut
      stale                with --max-age-days, an interaction recorded longer
                           ago than that

    \b
    Examples:
      llmcassette lint tests/cassettes
      llmcassette lint --ignore unscrubbed-header tests/cassettes/chat.yaml
      llmcassette lint --json cassettes/ > lint.json
    """
    report = lint_paths(list(paths), ignore=ignored, max_age_days=max_age_days)
    findings = report.findings
    if as_json:
        document = {
            "checked": len(report.checked),
            "skipped": [str(path) for path in report.skipped],
            "problems": len(findings),
            "findings": [finding.to_dict() for finding in findings],
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        for finding in findings:
            click.echo(finding.line())
        checked = _plural(len(report.checked), "cassette")
        skipped = ""
        if report.skipped:
            count = len(report.skipped)
            what = "a cassette" if count == 1 else "cassettes"
            skipped = f"; {_plural(count, 'other file')} skipped as not {what}"
        if findings:
            counts = ", ".join(f"{rule} {count}" for rule, count in rule_summary(findings).items())
            problems = _plural(len(findings), "problem")
            click.echo(f"{problems} ({counts}) in {report.files_with_findings} of {checked}{skipped}.")
            if any(finding.rule in FIXED_BY_IMPORT for finding in findings):
                click.echo(
                    "`llmcassette import FILE -o FILE --force` rewrites a file scrubbed, bodies as text."
                )
        else:
            click.echo(f"{checked} checked: no problems{skipped}.")
    if findings:
        ctx.exit(1)
