from __future__ import annotations

import click

from releasectl.cli.context import emit, env_option, examples, options
from releasectl.cli.observe import observed, publish_options
from releasectl.observe.publish import Destinations


@click.command(
    epilog=examples(
        "releasectl status                      # shows the interrupted step",
        "releasectl recover",
        "releasectl recover --rollback --env staging",
    ),
)
@env_option
@click.option(
    "--rollback",
    "force_back",
    is_flag=True,
    help="Roll back even a step that had verified (default: roll it forward).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Recover although the step's holder may still act (alive on this host, or its "
    "script's deadline not past); recorded in the history.",
)
@click.option("--lock-timeout", type=float, help="Seconds to wait for a held lock.")
@publish_options
def recover(
    env: str | None,
    force_back: bool,
    force: bool,
    lock_timeout: float | None,
    publish: Destinations,
) -> int:
    """Finish what a crash interrupted: roll the journaled step back (restore its backup or run
    its down part), or forward when it had already run and verified. Refuses (exit 4) while
    the process that ran the step is alive on this host; ends the step's leftover script."""
    from releasectl.cli.progress import CliReporter
    from releasectl.engine.journal import recover as run_recover
    from releasectl.engine.session import Session

    opts = options()
    workspace = opts.load_workspace()
    env_name = opts.env_name(env)
    reporter = CliReporter(verbosity=opts.verbosity, log_format=opts.log_format)
    with observed(workspace, env_name, "recover", publish) as obs:
        session = Session(workspace, env_name, reporter=reporter, events=obs.events)
        obs.backend = session.state_backend
        session.authorize("rollback")
        done = run_recover(session, force_back=force_back, force=force)
    emit(done)
    return 0
