from __future__ import annotations

import sys
from pathlib import Path

import click

from releasectl.cli.context import emit, examples, format_option, options


@click.command(
    epilog=examples(
        "releasectl changelog                      # since the last release",
        "releasectl changelog v1.0.0..v1.1.0       # same as: changelog v1.0.0 v1.1.0",
        "releasectl changelog 1.0.0 1.1.0 -f json  # release versions, tagged or not",
        "releasectl changelog --write              # into CHANGELOG.md, idempotent",
        "releasectl changelog --path packages/api --tag-pattern 'api@*' --write",
    ),
)
@click.argument("from_ref", metavar="[FROM [TO] | FROM..TO]", required=False)
@click.argument("to_ref", metavar=" ", required=False)
@format_option("markdown", "json")
@click.option(
    "--write",
    is_flag=True,
    help="Put the sections into CHANGELOG.md (replacing the same versions' sections).",
)
@click.option(
    "--path",
    "path",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Only commits that touch DIR; --write writes DIR/CHANGELOG.md.",
)
@click.option(
    "--tag-pattern",
    metavar="GLOB",
    help="Tags that mark releases (default: all; v* in a workspace).",
)
@click.option("--no-links", is_flag=True, help="No links to the forge of the origin remote.")
@click.option("--include-merges", is_flag=True, help="List every merge commit.")
@click.option(
    "--from-root",
    is_flag=True,
    help="Start at the first commit instead of the previous tag; a single argument is TO.",
)
def changelog(
    from_ref: str | None,
    to_ref: str | None,
    fmt: str | None,
    write: bool,
    path: Path | None,
    tag_pattern: str | None,
    no_links: bool,
    include_merges: bool,
    from_root: bool,
) -> int:
    """Changelog of the conventional commits in FROM..TO, a section per release tag inside it.

    FROM defaults to the release tag before TO, TO to HEAD; no tag: the whole history. FROM and
    TO may be tags, branches, commits, `A..B`, or release versions (`1.0.0`: its tag, else the
    commit that added its manifest). Works in any git repository; in a releasectl workspace it
    adds the component versions that changed between the releases' manifests.
    """
    from releasectl.release import changelog as core

    opts = options()
    fmt = opts.output_format(fmt, ("markdown", "json"))
    symmetric = False
    if from_ref is not None and ".." in from_ref:
        if to_ref is not None:
            raise click.UsageError(f"{from_ref} is a range already; TO cannot follow it")
        if from_root:
            raise click.UsageError("--from-root takes TO, not a range")
        from_ref, to_ref, symmetric = core.split_range(from_ref)
    if from_root:
        if to_ref is not None:
            raise click.UsageError("--from-root takes at most one revision (TO)")
        from_ref, to_ref = None, from_ref
    from releasectl.util.gcpause import paused_gc

    repo = Path(opts.workspace) if opts.workspace else Path.cwd()
    with paused_gc():  # hundreds of thousands of tuples and strings, no cycles
        report = core.build(
            repo,
            from_ref,
            to_ref,
            from_root=from_root,
            symmetric=symmetric,
            path=path,
            tag_pattern=tag_pattern,
            links=False if no_links else None,
            include_merges=include_merges or None,
        )
        text = ""
        if fmt == "json":
            text = core.report_json(report)
        elif not write:
            text = core.report_markdown(report)
    if opts.verbosity >= 0:
        for note in report.notes:
            emit(f"note: {note}", err=True)
    if write:
        target = report.root / core.CHANGELOG_FILE
        for version, what in core.write_report(report, target):
            message = f"{what} section [{version or 'Unreleased'}] in {target}"
            emit(message, err=fmt == "json")
        if fmt != "json":
            return 0
    # Straight to stdout: click.echo would scan megabytes of JSON for ANSI codes.
    sys.stdout.write(text)
    return 0
