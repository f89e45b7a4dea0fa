from __future__ import annotations

import click

from releasectl.cli.complete import releases
from releasectl.cli.context import env_option, examples, format_option, options
from releasectl.cli.observe import publish_options
from releasectl.observe.publish import Destinations


@click.command(
    epilog=examples(
        "releasectl apply                       # plan now, show it, ask on a terminal",
        "releasectl apply --yes --env staging   # CI: no question",
        "releasectl apply plan.json --commit    # the saved plan is the approval",
        "releasectl apply --release 1.0.0 --yes --atomic",
    ),
)
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False))
@env_option
@click.option(
    "--release",
    "-r",
    "release",
    shell_complete=releases,
    help="Release to apply (without PLAN).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--commit",
    is_flag=True,
    help="Commit state, history, changelog and package checksums; tag the release.",
)
@click.option("--lock-timeout", type=float, help="Seconds to wait for a held lock.")
@click.option(
    "--atomic",
    is_flag=True,
    help="If a step fails, also undo the steps this apply completed (newest first).",
)
@click.option("--allow-breaking", is_flag=True, help="Permit major bumps and breaking migrations.")
@format_option("text", "json")
@publish_options
def apply(
    plan_file: str | None,
    env: str | None,
    release: str | None,
    yes: bool,
    commit: bool,
    lock_timeout: float | None,
    allow_breaking: bool,
    atomic: bool,
    fmt: str | None,
    publish: Destinations,
) -> int:
    """Apply a saved PLAN, or plan and apply the environment's release now.

    A fresh plan asks for confirmation on a terminal; --yes skips the question, and without a
    terminal to ask on (CI, `apply | tee log`) it is refused unless --yes is given. A saved
    PLAN is the approval: it applies without a question. Exit 3 if the plan is stale or an
    applied migration drifted, 4 if the environment is locked, 5 if denied by policy or
    promotion, 1 if a step failed (it was rolled back).
    """
    from releasectl.cli.runner import load_plan, run_plan
    from releasectl.planning.build import release_plan

    opts = options()
    fmt = opts.output_format(fmt, ("text", "json"))
    workspace = opts.load_workspace()
    if plan_file:
        plan = load_plan(plan_file)
        if env and env != plan.env:
            raise click.UsageError(f"the plan is for environment {plan.env!r}, not {env!r}")
        if release:
            raise click.UsageError("--release cannot be combined with a saved PLAN")
    else:
        env_name = opts.env_name(env)
        state = opts.backend(env_name).read()
        plan = release_plan(
            workspace, env_name, state, release=release, allow_breaking=allow_breaking
        )
    if commit:
        from releasectl.engine.commitback import precheck

        precheck(workspace, plan)
    code, result = run_plan(
        opts,
        plan,
        yes=yes or bool(plan_file),  # a saved plan is the approval: it never asks
        fmt=fmt,
        lock_timeout=lock_timeout,
        prechecked=not plan_file,
        atomic=atomic,
        publish=publish,
    )
    if commit:
        from releasectl.cli.context import emit
        from releasectl.engine.commitback import commit_release, pending

        if result is not None and result.changed:
            sha = commit_release(workspace, plan, result)
            if fmt == "text":
                emit(f"Committed {sha[:12]}.")
        else:
            state = opts.backend(plan.env).read()
            if pending(workspace, plan, state):
                sha = commit_release(workspace, plan, None, state)
                if fmt == "text":
                    emit(
                        f"Committed {sha[:12]}: what an earlier apply recorded but did not "
                        "commit or tag."
                    )
    return code
