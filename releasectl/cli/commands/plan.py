from __future__ import annotations

from pathlib import Path

import click

from releasectl.cli.context import emit, env_option, format_option, options


@click.command()
@env_option
@click.option(
    "--release",
    "-r",
    "release",
    help="Release to plan (default: the environment's pin, else the newest manifest).",
)
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(dir_okay=False),
    help="Save the plan as JSON for `releasectl apply PLAN`.",
)
@format_option("text", "json", "markdown")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when the plan has changes, 0 when it has none.",
)
@click.option("--allow-breaking", is_flag=True, help="Permit major bumps and breaking migrations.")
def plan(
    env: str | None,
    release: str | None,
    out: str | None,
    fmt: str | None,
    detailed_exitcode: bool,
    allow_breaking: bool,
) -> int:
    """Show the ordered steps from the environment's recorded state to a release."""
    from releasectl.cli import render
    from releasectl.engine.promotion import with_promotion_warning
    from releasectl.planning.build import release_plan
    from releasectl.planning.planner import has_changes
    from releasectl.util.fsutil import atomic_write

    opts = options()
    fmt = opts.output_format(fmt, ("text", "json", "markdown"))
    workspace = opts.load_workspace()
    env_name = opts.env_name(env)
    backend = opts.backend(env_name)
    state = backend.read()
    the_plan = release_plan(
        workspace, env_name, state, release=release, allow_breaking=allow_breaking
    )
    the_plan = with_promotion_warning(workspace, env_name, the_plan)
    # pydantic-core writes the JSON: 100,000 steps in 0.3 s where dumping them to dicts and
    # through json.dump takes seconds (docs/performance.md)
    as_json = the_plan.model_dump_json(by_alias=True, indent=2) if out or fmt == "json" else ""
    if out:
        atomic_write(Path(out), as_json + "\n")
    if fmt == "json":
        emit(as_json)
    elif fmt == "markdown":
        emit(render.plan_markdown(the_plan))
    else:
        emit(render.plan_text(the_plan))
        if out:
            emit(f"Saved the plan to {out}; apply it with `releasectl apply {out}`.")
    return 2 if detailed_exitcode and has_changes(the_plan) else 0
