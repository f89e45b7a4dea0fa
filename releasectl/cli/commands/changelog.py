from __future__ import annotations

import sys
from pathlib import Path

import click

from releasectl.cli.context import emit, examples, format_option, options


@click.command(
    epilog=examples(
        "releasectl changelog                    # last tag..HEAD",
        "releasectl changelog v1.0.0 v1.1.0",
        "releasectl changelog v1.0.0..HEAD --format json",
        "releasectl changelog --write",
    ),
)
@click.argument("from_ref", metavar="[FROM]", required=False)
@click.argument("to_ref", metavar="[TO]", required=False)
@format_option("markdown", "json")
@click.option(
    "--write",
    is_flag=True,
    help="Put the section into CHANGELOG.md (replacing the same version's section).",
)
@click.option(
    "--from-root",
    is_flag=True,
    help="Start at the first commit instead of the previous tag; a single argument is TO.",
)
def changelog(
    from_ref: str | None, to_ref: str | None, fmt: str | None, write: bool, from_root: bool
) -> int:
    """Changelog of the conventional commits in FROM..TO (default: the previous tag before
    TO, and TO defaults to HEAD; no tag: the whole history).

    Works in any git repository; in a releasectl workspace it adds the component versions that
    changed between the two releases' manifests. Markdown is a Keep-a-Changelog section.
    """
    from releasectl.release import changelog as core

    opts = options()
    fmt = opts.output_format(fmt, ("markdown", "json"))
    if from_root:
        if to_ref is not None:
            raise click.UsageError("--from-root takes at most one revision (TO)")
        from_ref, to_ref = None, from_ref
    repo = Path(opts.workspace) if opts.workspace else Path.cwd()
    report = core.build(repo, from_ref, to_ref, from_root=from_root)
    if write:
        path = report.root / core.CHANGELOG_FILE
        what = core.write_section(path, core.report_markdown(report), report.version)
        label = report.version or "Unreleased"
        message = f"{what} section [{label}] in {path}"
        if fmt != "json":
            emit(message)
            return 0
        emit(message, err=True)
    # Straight to stdout: click.echo would scan megabytes of JSON for ANSI codes.
    text = core.report_json(report) if fmt == "json" else core.report_markdown(report)
    sys.stdout.write(text)
    return 0
