from __future__ import annotations

import click

from releasectl.cli.context import emit, env_option, examples, options


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
@click.option("--lock-timeout", type=float, help="Seconds to wait for a held lock.")
def recover(env: str | None, force_back: bool, lock_timeout: float | None) -> int:
    """Finish what a crash interrupted: roll the journaled step back (restore its backup or run
    its down part), or forward when it had already run and verified."""
    from releasectl.cli.progress import CliReporter
    from releasectl.engine.journal import recover as run_recover
    from releasectl.engine.session import Session

    opts = options()
    workspace = opts.load_workspace()
    env_name = opts.env_name(env)
    session = Session(workspace, env_name, reporter=CliReporter(verbosity=opts.verbosity))
    session.authorize("rollback")
    emit(run_recover(session, force_back=force_back))
    return 0
