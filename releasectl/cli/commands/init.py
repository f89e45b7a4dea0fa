from __future__ import annotations

from pathlib import Path

import click

from releasectl.cli.context import emit, examples

WORKSPACE = """\
# yaml-language-server: $schema=schemas/workspace.schema.json
apiVersion: releasectl/v1
kind: Workspace
name: {name}
components:
  database:
    type: sql
  app:
    type: service
    needs: [database]
environments:
  local:
    state: {{backend: file}}
    targets:
      # `type:` is optional; it lets an editor offer the fields of that kind of target
      database: {{type: sql, url: "sqlite:///.releasectl/local/app.db"}}
"""
RELEASE = """\
# yaml-language-server: $schema=../schemas/release.schema.json
apiVersion: releasectl/v1
kind: Release
version: 0.1.0
description: First release
components:
  database: {version: 1}
  app: {version: 0.1.0, requires: {database: ">=1"}}
"""
UP = """\
CREATE TABLE items (
    id   INTEGER PRIMARY KEY,
    name VARCHAR(200) NOT NULL
);
"""
DOWN = "DROP TABLE items;\n"
GITIGNORE = """\
# releasectl: local runtime data (state/ and history/ may be committed)
/.releasectl/local/
/.releasectl/locks/
/.releasectl/backups/
/.releasectl/cache/
/dist/
"""


@click.command(
    epilog=examples(
        "releasectl init",
        "releasectl init my-platform --name my-platform",
    ),
)
@click.argument("directory", required=False, default=".", type=click.Path(file_okay=False))
@click.option("--name", help="Workspace name (default: the directory's name).")
def init(directory: str, name: str | None) -> int:
    """Create a workspace in DIRECTORY: releasectl.yaml, a first release and migration, and
    schemas/ (the files name their schema, so an editor completes and checks them)."""
    from releasectl.errors import InputError
    from releasectl.models.base import NAME_RE
    from releasectl.util.fsutil import atomic_write

    root = Path(directory).resolve()
    if (root / "releasectl.yaml").exists():
        raise InputError(f"{root / 'releasectl.yaml'} already exists")
    name = name or root.name.lower().replace("_", "-").replace(" ", "-")
    if not NAME_RE.match(name):
        raise InputError(f"{name!r} is not a valid workspace name; pass --name")
    files = {
        "releasectl.yaml": WORKSPACE.format(name=name),
        "releases/0.1.0.yaml": RELEASE,
        "migrations/database/0001_initial/up.sql": UP,
        "migrations/database/0001_initial/down.sql": DOWN,
    }
    from releasectl.models import schemas

    for schema_name in schemas.all_names():  # what the files' $schema lines point at
        files[f"schemas/{schema_name}.schema.json"] = schemas.render(schema_name)
    for rel, text in files.items():
        atomic_write(root / rel, text)
    gitignore = root / ".gitignore"
    existing = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    if "/.releasectl/local/" not in existing:
        atomic_write(
            gitignore,
            existing + ("\n" if existing and not existing.endswith("\n") else "") + GITIGNORE,
        )
    emit(f"created workspace {name!r} in {root}; next: `releasectl plan`")
    return 0
