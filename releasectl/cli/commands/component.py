"""`migrate` and `rollback`: the old framework's per-component verbs, as one-component plans
run by the same engine as `apply`."""

from __future__ import annotations

import click

from releasectl.cli.complete import components
from releasectl.cli.context import env_option, examples, format_option, options
from releasectl.cli.observe import publish_options
from releasectl.observe.publish import Destinations


def _version(text: str | None) -> int | str | None:
    if text is None or text == "latest":
        return None
    return int(text) if text.isdigit() else text


@click.command(
    epilog=examples(
        "releasectl migrate redis               # up to its latest migration",
        "releasectl migrate database 3 --env staging --yes",
        "releasectl migrate redis 2 --force --yes  # re-run 0002",
    ),
)
@click.argument("component", shell_complete=components)
@click.argument("version", required=False)
@env_option
@click.option(
    "--force",
    is_flag=True,
    help="Re-run the migration at VERSION even if recorded "
    "(its down, then its up; records its current checksum).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--allow-breaking", is_flag=True, help="Permit breaking migrations and major bumps.")
@click.option("--lock-timeout", type=float, help="Seconds to wait for a held lock.")
@format_option("text", "json")
@publish_options
def migrate(
    component: str,
    version: str | None,
    env: str | None,
    force: bool,
    yes: bool,
    allow_breaking: bool,
    lock_timeout: float | None,
    fmt: str | None,
    publish: Destinations,
) -> int:
    """Move COMPONENT to VERSION (default: its latest migration; a service needs VERSION)."""
    return _run(
        component,
        version,
        env,
        yes=yes,
        fmt=fmt,
        lock_timeout=lock_timeout,
        verb="migrate",
        force=force,
        allow_breaking=allow_breaking,
        publish=publish,
    )


@click.command(
    epilog=examples(
        "releasectl rollback redis 1",
        "releasectl rollback database 0 --env staging --yes",
    ),
)
@click.argument("component", shell_complete=components)
@click.argument("version")
@env_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--lock-timeout", type=float, help="Seconds to wait for a held lock.")
@format_option("text", "json")
@publish_options
def rollback(
    component: str,
    version: str,
    env: str | None,
    yes: bool,
    lock_timeout: float | None,
    fmt: str | None,
    publish: Destinations,
) -> int:
    """Move COMPONENT down to VERSION, running each migration's down part (newest first)."""
    return _run(
        component,
        version,
        env,
        yes=yes,
        fmt=fmt,
        lock_timeout=lock_timeout,
        verb="rollback",
        allow_breaking=True,
        publish=publish,
    )


def _run(
    component: str,
    version: str | None,
    env: str | None,
    *,
    yes: bool,
    fmt: str | None,
    lock_timeout: float | None,
    verb: str,
    force: bool = False,
    allow_breaking: bool = False,
    publish: Destinations | None = None,
) -> int:
    """A one-component plan, run through the same engine as `apply`."""
    from releasectl.cli.runner import run_plan
    from releasectl.errors import InputError
    from releasectl.planning.build import component_plan
    from releasectl.planning.kinds import is_downgrade

    opts = options()
    fmt = opts.output_format(fmt, ("text", "json"))
    workspace = opts.load_workspace()
    env_name = opts.env_name(env)
    state = opts.backend(env_name).read()
    plan = component_plan(
        workspace,
        env_name,
        state,
        component,
        _version(version),
        force=force,
        allow_breaking=allow_breaking,
    )
    if verb == "rollback" and not all(s.action == "down" or is_downgrade(s) for s in plan.steps):
        raise InputError(
            f"rollback goes down: {component!r} is below {version}; "
            f"use `releasectl migrate {component} {version}`"
        )
    return run_plan(
        opts, plan, yes=yes, fmt=fmt, lock_timeout=lock_timeout, verb=verb, publish=publish
    )[0]
