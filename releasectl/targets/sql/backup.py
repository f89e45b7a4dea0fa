"""The sql target's backups, whatever the dialect: which kind of backup a step or a component
gets, and the dispatch of a restore to the dialect that wrote it (see docs/sql.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from releasectl.clients.sql import Database, PostgresDatabase, SqliteDatabase
from releasectl.errors import TargetError
from releasectl.targets.base import BackupInfo
from releasectl.targets.sql import backup_pg as sqlbackup_pg
from releasectl.targets.sql import backup_sqlite as sqlbackup_sqlite
from releasectl.targets.sql.catalog_pg import Key, locate
from releasectl.targets.sql.frames import FrameReader, FrameWriter


def _pg_exclude(db: PostgresDatabase, history_table: str) -> set[Key]:
    found = locate(db, history_table)
    return {found} if found else set()


def _sqlite_exclude(history_table: str) -> set[str]:
    return {history_table.rsplit(".", maxsplit=1)[-1]}


def backup(
    db: Database,
    header: dict[str, Any],
    scope: list[str] | None,
    history_table: str,
    out: IO[bytes],
) -> BackupInfo:
    """`scope` None: the whole database (history table included); [] : a "no scope" record;
    else the scoped tables (never the history table)."""
    if scope is None:
        if isinstance(db, SqliteDatabase):
            return sqlbackup_sqlite.backup_file(db, out, header)
        assert isinstance(db, PostgresDatabase)
        info = sqlbackup_pg.backup_tables(db, ["*.*"], set(), out, {**header, "whole": True})
        info.scope = ["*"]
        return info
    if not scope:
        writer = FrameWriter(out)
        writer.json(b"H", {**header, "mode": "none"})
        writer.json(b"Z", {"rows": 0})
        return BackupInfo(
            items=0, detail={"mode": "none", "note": "no scope: the transaction and down.sql undo"}
        )
    if isinstance(db, SqliteDatabase):
        return sqlbackup_sqlite.backup_tables(
            db, scope, _sqlite_exclude(history_table), out, header
        )
    assert isinstance(db, PostgresDatabase)
    return sqlbackup_pg.backup_tables(db, scope, _pg_exclude(db, history_table), out, header)


def restore(
    db: Database,
    reader: FrameReader,
    header: dict[str, Any],
    history_table: str,
    before_commit: Callable[[], None],
) -> BackupInfo:
    """Restore what `backup` wrote; `before_commit` runs inside a table restore's transaction."""
    if header.get("dialect") != db.dialect:
        raise TargetError(
            f"the backup is of a {header.get('dialect')} database, this target is {db.dialect}"
        )
    mode = header.get("mode")
    if mode == "none":
        return BackupInfo(items=0, detail={"mode": "none", "note": "the backup had no scope"})
    if mode == "file" and isinstance(db, SqliteDatabase):
        return sqlbackup_sqlite.restore_file(db, reader)
    if mode != "tables":
        raise TargetError(f"unknown backup mode {mode!r}")
    if isinstance(db, SqliteDatabase):
        exclude = _sqlite_exclude(history_table)
        return sqlbackup_sqlite.restore_tables(db, reader, header, exclude, before_commit)
    assert isinstance(db, PostgresDatabase)
    exclude_pg = set() if header.get("whole") else _pg_exclude(db, history_table)
    return sqlbackup_pg.restore_tables(db, reader, header, exclude_pg, before_commit)
