"""`llmcassette drift`: re-record cassettes against the live provider and report what changed shape."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from .._drift import DriftReport

__all__ = ["command"]


class _Trouble(click.ClickException):
    """Nothing to compare, or a report that cannot be written: exit 2, as diff(1) does."""

    exit_code = 2


@click.command("drift")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    default="llmcassette-drift",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the fresh recordings (same relative paths) and the reports.",
)
@click.option("--upstream", metavar="URL", help="Send every request here instead of its recorded host.")
@click.option(
    "--bearer-env",
    metavar="NAME",
    help="Environment variable holding the bearer token of an OpenAI-compatible gateway.",
)
@click.option(
    "--dry-run", is_flag=True, help="List what would be sent, and what is skipped and why; send nothing."
)
@click.option(
    "--max-requests",
    default=100,
    show_default=True,
    type=click.IntRange(1),
    help="Send at most this many requests (retries not counted); the rest are reported as skipped.",
)
@click.option(
    "--concurrency",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Requests in flight at once.",
)
@click.option(
    "--max-output-tokens",
    default=256,
    show_default=True,
    type=click.IntRange(0),
    help="Lower max_tokens / max_output_tokens (and their kin) above this; 0 leaves them as recorded.",
)
@click.option(
    "--retries",
    default=3,
    show_default=True,
    type=click.IntRange(0, 10),
    help="Tries again after a 429, 5xx or no answer.",
)
@click.option(
    "--max-wait-s",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="The longest wait before a retry; an upstream asking for more keeps its busy answer.",
)
@click.option(
    "--timeout-s",
    default=120.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Per-request timeout.",
)
@click.option(
    "--update",
    type=click.Choice(["changed", "all"]),
    is_flag=False,
    flag_value="changed",
    default=None,
    help="Write fresh recordings over the originals: of interactions whose shape changed (the "
    "default), or all.",
)
@click.option(
    "--markdown", type=click.Path(dir_okay=False, path_type=Path), help="Markdown report [OUT/report.md]."
)
@click.option(
    "--junit", type=click.Path(dir_okay=False, path_type=Path), help="JUnit XML report [OUT/junit.xml]."
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON report [OUT/report.json].",
)
@click.pass_context
def command(
    ctx: click.Context,
    paths: tuple[Path, ...],
    out_dir: Path,
    upstream: str | None,
    bearer_env: str | None,
    dry_run: bool,
    max_requests: int,
    concurrency: int,
    max_output_tokens: int,
    retries: int,
    max_wait_s: float,
    timeout_s: float,
    update: str | None,
    markdown: Path | None,
    junit: Path | None,
    json_path: Path | None,
) -> None:
    """
    Re-send every recorded request in PATHS (cassettes, or folders of them) to its live upstream,
    record the fresh answers, and report how their shape changed.

    Credentials come from the environment, by provider: OPENAI_API_KEY, ANTHROPIC_API_KEY,
    GEMINI_API_KEY or GOOGLE_API_KEY, AZURE_OPENAI_API_KEY (and AZURE_OPENAI_ENDPOINT),
    GROQ_API_KEY, MISTRAL_API_KEY, OPENROUTER_API_KEY; a gateway's token through --bearer-env.
    They are scrubbed from everything written. An interaction that cannot be re-sent (no
    credential, state the cassette does not hold, over --max-requests) is reported as skipped.

    The fresh recordings go to OUT under the same relative paths; the originals change only with
    --update. The report is printed and written as Markdown, JUnit XML (one test case per
    interaction, failing on a changed shape) and JSON. As with diff(1), the exit status is 0 when
    every shape is the same, 1 when one changed, 2 on trouble (an unreadable file, a request with
    no answer after its retries, a report that cannot be written).

    \b
    Examples:
      llmcassette drift --dry-run tests/cassettes
      llmcassette drift tests/cassettes --markdown "$GITHUB_STEP_SUMMARY"
      llmcassette drift tests/cassettes --update
    """
    from .._drift import DriftOptions, SendOptions, run_drift
    from ._options import route_table

    if upstream is not None:
        route_table(upstream, ())  # the same check as `record --upstream`
    options = DriftOptions(
        out_dir=out_dir,
        upstream=upstream,
        bearer_env=bearer_env,
        max_requests=max_requests,
        max_output_tokens=max_output_tokens or None,
        dry_run=dry_run,
        update="all" if update == "all" else "changed" if update else None,
        send=SendOptions(
            concurrency=concurrency, retries=retries, max_wait_s=max_wait_s, timeout_s=timeout_s
        ),
    )
    report, updated = run_drift(list(paths), options)
    _print(report)
    if not dry_run:
        targets = {
            markdown or out_dir / "report.md": report.to_markdown(),
            junit or out_dir / "junit.xml": report.to_junit(),
            json_path or out_dir / "report.json": report.to_json(),
        }
        for target, text in targets.items():
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise _Trouble(f"cannot write the report {str(target)!r}: {exc.strerror or exc}.") from None
        click.echo(f"Fresh recordings and reports are in {out_dir}/.")
        for path in updated:
            click.echo(f"Updated {path} with its fresh recordings.")
    ctx.exit(report.exit_code())


def _print(report: DriftReport) -> None:
    from .._drift import Outcome

    for result in report.results:
        where = f"{result.planned.cassette} {result.name}"
        if result.outcome is Outcome.PLANNED:
            extra = f" with {result.planned.credential_env}" if result.planned.credential_env else ""
            capped = ", ".join(f"{k} {a}->{b}" for k, (a, b) in result.planned.capped.items())
            click.echo(
                f"send  {where} -> {result.planned.url}{extra}" + (f" (capped: {capped})" if capped else "")
            )
        elif result.outcome is Outcome.SKIPPED:
            click.echo(f"skip  {where}: {result.reason}")
        elif result.outcome is Outcome.FAILED:
            click.echo(f"fail  {where}: {result.reason}")
        elif result.outcome is Outcome.CHANGED:
            click.echo(f"diff  {where}")
            for change in result.changes:
                click.echo(f"      {change.line()}")
        else:
            click.echo(f"same  {where}")
    for path, reason in report.troubles:
        click.echo(f"llmcassette: cannot read {path}: {reason}", err=True)
    for provider, counts in report.by_provider().items():
        click.echo(
            f"{provider}: " + ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
        )
    kinds = report.by_kind()
    if kinds:
        click.echo(
            "changes by kind: " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
        )
    click.echo(report.summary())
