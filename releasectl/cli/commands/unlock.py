from __future__ import annotations

import click

from releasectl.cli.context import emit, env_option, examples, options


@click.command(
    epilog=examples(
        "releasectl status --env staging          # shows the lock id",
        "releasectl unlock 6f1c2a9e-5d4b-4c1e-9a7f-2b8e1d3c4a5f --env staging",
    ),
)
@click.argument("lock_id")
@env_option
@click.option(
    "--force",
    is_flag=True,
    help="Remove it even though its holder is alive on this host (recorded in the history).",
)
def unlock(lock_id: str, env: str | None, force: bool) -> int:
    """Remove the environment's lock LOCK_ID (shown by `status` and in the locked error), for a
    holder that died on another machine. Refused (exit 4) while the holder is alive on this
    host, unless --force. Recorded in the history."""
    from releasectl.engine.operations import unlock as do_unlock
    from releasectl.engine.session import Session

    opts = options()
    session = Session(opts.load_workspace(), opts.env_name(env))
    held = do_unlock(session, lock_id, force=force)
    emit(f"unlocked {session.env}: {held.describe()}")
    return 0
