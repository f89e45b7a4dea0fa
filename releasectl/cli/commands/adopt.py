"""`baseline` and `import-legacy`: moving in from the old shell framework (docs/migrating.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from releasectl.cli.context import (
    emit,
    emit_json,
    env_option,
    examples,
    format_option,
    options,
)

if TYPE_CHECKING:
    from releasectl.adopt.run import ImportResult


@click.command(
    epilog=examples(
        "releasectl baseline database 3 --env staging",
        "releasectl baseline auth-service 1.3.0 --env prod",
        "releasectl baseline redis 2 --force    # record 2 though the target says otherwise",
    ),
)
@click.argument("component")
@click.argument("version")
@env_option
@click.option("--force", is_flag=True, help="Record VERSION even where the target disagrees.")
@click.option("--lock-timeout", type=float, help="Seconds to wait for a held lock.")
@format_option("text", "json")
def baseline(
    component: str,
    version: str,
    env: str | None,
    force: bool,
    lock_timeout: float | None,
    fmt: str | None,
) -> int:
    """Record that COMPONENT is already at VERSION, running nothing (after asking the target
    what it records: exit 3 where it disagrees, unless --force)."""
    from releasectl.adopt.baseline import baseline as run_baseline
    from releasectl.cli.progress import CliReporter
    from releasectl.engine.session import Session

    opts = options()
    fmt = opts.output_format(fmt, ("text", "json"))
    workspace = opts.load_workspace()
    env_name = opts.env_name(env)
    session = Session(workspace, env_name, reporter=CliReporter(verbosity=opts.verbosity))
    result = run_baseline(session, component, version, force=force, lock_timeout=lock_timeout)
    if fmt == "json":
        emit_json(
            {
                "env": env_name,
                "component": result.component,
                "from": result.previous,
                "to": result.version,
                "target": result.target,
                "forced": result.forced,
                "stamped": result.stamped,
                "state": {"serial": result.serial},
            }
        )
        return 0
    said = "records no version" if result.target is None else f"records {result.target}"
    if result.forced:
        said += " (recorded anyway: --force)"
    emit(
        f"Baseline: {component} recorded at {result.version} on {env_name} "
        f"(was {'-' if result.previous is None else result.previous}); the target {said}"
        f"{'; wrote a baseline row into its history table' if result.stamped else ''}. "
        f"Nothing was run (state serial {result.serial})."
    )
    return 0


@click.command(
    "import-legacy",
    epilog=examples(
        "releasectl import-legacy ../platform --dry-run",
        "releasectl import-legacy ../platform --env staging --type redis=redis --type database=sql",
    ),
)
@click.argument("directory", type=click.Path(file_okay=False))
@env_option
@click.option("--dry-run", is_flag=True, help="Say what it would do; change nothing.")
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="COMPONENT=TYPE",
    help="Import COMPONENT as redis or sql (its scripts must be plainly that); default script.",
)
@click.option("--release", help="Version of the release manifest to write (default 1.0.0).")
@click.option("--force", is_flag=True, help="Import even where a target disagrees.")
@click.option("--lock-timeout", type=float, help="Seconds to wait for a held lock.")
@format_option("text", "json")
def import_legacy(
    directory: str,
    env: str | None,
    dry_run: bool,
    types: tuple[str, ...],
    release: str | None,
    force: bool,
    lock_timeout: float | None,
    fmt: str | None,
) -> int:
    """Adopt an environment run by migration-framework.sh: its scripts, rollback scripts,
    *_version files and migration_history.csv become migrations, state and history."""
    from releasectl.adopt.plan import plan_import
    from releasectl.adopt.run import run_import
    from releasectl.errors import InputError, UsageError
    from releasectl.workspace import find_root

    opts = options()
    fmt = opts.output_format(fmt, ("text", "json"))
    start = Path(opts.workspace) if opts.workspace else Path.cwd()
    try:
        root = find_root(start) if opts.workspace is None else start.resolve()
    except InputError:
        root = start.resolve()  # no workspace yet: the import writes releasectl.yaml here
    chosen: dict[str, str] = {}
    for item in types:
        name, sep, ctype = item.partition("=")
        if not sep or not name or ctype not in ("script", "redis", "sql"):
            raise UsageError(f"--type {item!r}: expected COMPONENT=script|redis|sql")
        chosen[name] = ctype
    source = Path(directory)
    if not source.is_dir():
        raise InputError(f"{directory}: not a directory")
    env_name = opts.env_name(env)
    plan = plan_import(root, source, directory, env_name, types=chosen, release=release)
    result = run_import(plan, dry_run=dry_run, force=force, lock_timeout=lock_timeout)
    if fmt == "json":
        emit_json(_json(result))
    else:
        emit(_text(result))
    return 0


def _json(result: ImportResult) -> dict[str, Any]:
    plan = result.plan
    return {
        "env": plan.env,
        "dry_run": result.dry_run,
        "source": plan.source,
        "release": plan.release,
        "components": {
            c.name: {
                "type": c.type,
                "version": c.version,
                "migrations": [m.id for m in c.migrations],
                "offer": c.offer,
                "target": result.targets.get(c.name),
            }
            for c in plan.components.values()
        },
        "files": [{"path": p, "status": s} for p, s in plan.files()],
        "history_rows": len(plan.rows),
        "stamped": result.stamped,
        "notes": [{"path": n.path, "line": n.line, "message": n.message} for n in plan.notes],
        "state": None if result.serial is None else {"serial": result.serial},
    }


def _text(result: ImportResult) -> str:
    plan = result.plan
    verb = "would import" if result.dry_run else "imported"
    lines = [f"import-legacy: {plan.source} -> environment {plan.env}, release {plan.release}"]
    lines.append("")
    for c in plan.components.values():
        said = ""
        if c.name in result.targets:
            got = result.targets[c.name]
            said = "; target records no version" if got is None else f"; target records {got}"
        lines.append(
            f"  {c.name:<16} {c.type:<7} version {c.version:<3} {len(c.migrations)} migration(s)"
            f"{said}"
        )
    files = plan.files()
    written = [p for p, s in files if s != "unchanged"]
    lines.append("")
    lines.append(
        f"{len(written)} file(s) {'to write' if result.dry_run else 'written'}, "
        f"{len(files) - len(written)} unchanged; {len(plan.rows)} history row(s) {verb}"
    )
    for path, status in files:
        if status != "unchanged":
            lines.append(f"  {status:<7} {path}")
    if plan.notes:
        lines.append("")
        lines.append(f"Not mapped or worth a look ({len(plan.notes)}):")
        lines.extend(f"  {note}" for note in plan.notes)
    lines.append("")
    if result.dry_run:
        lines.append("Dry run: nothing was written; targets were not contacted.")
    else:
        lines.append(
            f"Done: state serial {result.serial}; next: `releasectl status --env {plan.env}`, "
            f"`releasectl validate`, then plan the next release."
        )
    return "\n".join(lines)
