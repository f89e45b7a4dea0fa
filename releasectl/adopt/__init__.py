"""Moving in: adopting an environment that the old shell framework ran.

- `baseline`: record that a component is already at a version without running anything
  (Flyway's `baseline`, Alembic's `stamp`), after asking the target what it records.
- `legacy`: read the old framework's tree (scripts, rollback scripts, `*_version` files,
  `migration_history.csv`, backups) into data, with a note for every file it does not map.
- `shell` and `convert`: a migration script's header and logical lines; the scripts that are
  plainly `redis-cli` commands or SQL fed to `sqlite3`/`psql`, as native migrations.
- `csvmap`: the history CSV, its columns mapped by name, as history entries.
- `wsfile`: the additions to `releasectl.yaml` and the release manifest the import writes.
- `plan` and `run`: the import as a plan (files to write, state, history, notes), then its run.

Nothing here prints or exits; the CLI (`releasectl.cli.commands.adopt`) renders the results.
"""
