from __future__ import annotations

import click

from releasectl.cli.complete import backup_ids, components
from releasectl.cli.context import emit, emit_json, env_option, examples, format_option, options
from releasectl.cli.observe import observed, publish_options
from releasectl.observe.publish import Destinations


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@click.command(
    epilog=examples(
        "releasectl backup redis",
        "releasectl backup --list",
        "releasectl backup --list redis --env staging --format json",
    ),
)
@click.argument("component", required=False, shell_complete=components)
@env_option
@click.option("--list", "list_", is_flag=True, help="List backups (of COMPONENT, or all).")
@click.option("--lock-timeout", type=float, help="Seconds to wait for a held lock.")
@format_option("text", "json")
@publish_options
def backup(
    component: str | None,
    env: str | None,
    list_: bool,
    lock_timeout: float | None,
    fmt: str | None,
    publish: Destinations,
) -> int:
    """Back up everything COMPONENT's migrations touch, or list backups with --list."""
    from releasectl.cli.progress import CliReporter
    from releasectl.engine.operations import backup_component
    from releasectl.engine.session import Session

    opts = options()
    fmt = opts.output_format(fmt, ("text", "json"))
    workspace = opts.load_workspace()
    env_name = opts.env_name(env)
    reporter = CliReporter(verbosity=opts.verbosity, log_format=opts.log_format)
    session = Session(workspace, env_name, reporter=reporter)
    if list_:
        if component:
            workspace.component(component)
        backups = session.backups.all(component)
        if fmt == "json":
            emit_json([b.as_dict() for b in backups])
            return 0
        if not backups:
            emit(f"no backups in environment {env_name}")
            return 0
        for b in backups:
            lock = " encrypted" if b.encrypted else ""
            emit(
                f"{b.id}  {b.component:<16} {b.created}  {_size(b.size):>10}  "
                f"sha256:{b.sha256[:16]}  {b.items} items  {b.kind}{lock}"
            )
        return 0
    if not component:
        raise click.UsageError("give a COMPONENT to back up (or --list)")
    with observed(workspace, env_name, "backup", publish) as obs:
        session.events, obs.backend = obs.events, session.state_backend
        meta = backup_component(session, component, lock_timeout=lock_timeout)
    if fmt == "json":
        emit_json(meta.as_dict())
    else:
        emit(
            f"backup {meta.id}: {meta.items} items, {_size(meta.size)}, sha256:{meta.sha256}"
            + (" (encrypted)" if meta.encrypted else "")
        )
    return 0


@click.command(
    epilog=examples(
        "releasectl backup --list redis              # find the id",
        "releasectl restore redis 20261102T101500Z-redis-3f2a9c --yes",
    ),
)
@click.argument("component", shell_complete=components)
@click.argument("backup_id", shell_complete=backup_ids)
@env_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--lock-timeout", type=float, help="Seconds to wait for a held lock.")
@publish_options
def restore(
    component: str,
    backup_id: str,
    env: str | None,
    yes: bool,
    lock_timeout: float | None,
    publish: Destinations,
) -> int:
    """Restore COMPONENT from BACKUP_ID (its checksum is checked first)."""
    from releasectl.cli.context import confirm
    from releasectl.cli.progress import CliReporter
    from releasectl.engine.operations import restore_component
    from releasectl.engine.session import Session

    opts = options()
    workspace = opts.load_workspace()
    env_name = opts.env_name(env)
    workspace.component(component)
    confirm(f"Restore {component} in {env_name!r} from {backup_id}?", yes=yes, verb="restore")
    reporter = CliReporter(verbosity=opts.verbosity, log_format=opts.log_format)
    with observed(workspace, env_name, "restore", publish) as obs:
        session = Session(workspace, env_name, reporter=reporter, events=obs.events)
        obs.backend = session.state_backend
        meta, info = restore_component(session, component, backup_id, lock_timeout=lock_timeout)
    emit(f"restored {component} from {meta.id}: {info.items} items")
    return 0
