"""The `sql` target (`SqlTarget` in `target`): SQLite and PostgreSQL migrations.

- `target`: the Target the engine drives; one transaction per migration with its history row
- `checks`: static checks of `up.sql`/`down.sql`/`verify.sql` (no connection)
- `script`: splitting SQL into statements, headers, statement classes
- `history`: the database's own history table (like Flyway's `flyway_schema_history`)
- `backup`, `backup_sqlite`, `backup_pg`, `catalog_pg`, `frames`: scoped table backups per
  dialect, PostgreSQL table definitions from the catalogue, and the backup stream's frames
Connections (URLs, deadlines, errors) are `releasectl.clients.sql`.
"""
