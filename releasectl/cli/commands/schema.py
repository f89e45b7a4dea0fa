from __future__ import annotations

from pathlib import Path

import click

from releasectl.cli.context import emit, examples, options


@click.group(
    epilog=examples(
        "releasectl schema export",
        "releasectl schema export --check",
    ),
)
def schema() -> None:
    """JSON Schemas of releasectl's files and documents."""


@schema.command(
    "export",
    epilog=examples(
        "releasectl schema export",
        "releasectl schema export --check   # CI: exit 1 if out of date",
    ),
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    help="Output directory (default: schemas/ in the workspace).",
)
@click.option("--check", is_flag=True, help="Exit 1 if the files differ instead of writing.")
def export(directory: str | None, check: bool) -> int:
    """Write <name>.schema.json for the workspace, release, migration, plan, state, status,
    history-entry and changelog documents."""
    from releasectl.models import schemas
    from releasectl.util.fsutil import atomic_write

    out = Path(directory) if directory else options().load_workspace().root / "schemas"
    stale = []
    for name in schemas.all_names():
        path = out / f"{name}.schema.json"
        text = schemas.render(name)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not check:
            atomic_write(path, text)
    if check and stale:
        for path in stale:
            emit(f"out of date: {path}", err=True)
        return 1
    emit(
        f"{'checked' if check else 'wrote'} {len(schemas.all_names())} schemas in {out}"
        + (f" ({len(stale)} updated)" if stale and not check else "")
    )
    return 0
