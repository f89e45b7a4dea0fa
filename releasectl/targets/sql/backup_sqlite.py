"""SQLite backups: scoped tables (definition + rows), or the whole database file.

Scoped: each table's exact DDL from sqlite_master (its CREATE TABLE, indexes and triggers),
its AUTOINCREMENT counter, and its rows (with their rowids) streamed in batches. Restore runs
in one transaction with foreign keys off (so nothing cascades into other tables): every table
the scope names now is dropped (tables created since the backup are thereby removed), the saved
ones are created again from their DDL, reloaded, and get their indexes and triggers back after
the rows (no trigger fires during the reload). SQLite's DDL is exact, so this is exact.

Whole database: a consistent copy through SQLite's online backup API, streamed; restore
copies it back over the live database with the same API.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from releasectl.clients.sql import SqliteDatabase, quote_ident
from releasectl.errors import TargetError
from releasectl.targets.base import BackupInfo
from releasectl.targets.sql.frames import (
    CHUNK,
    ROWS_PER_FRAME,
    BackupFormatError,
    FrameReader,
    FrameWriter,
    decode_rows,
    encode_rows,
    load_json,
    select_tables,
)

_WITHOUT_ROWID = re.compile(r"\)\s*(?:STRICT\s*,\s*)?WITHOUT\s+ROWID\b[^)]*$", re.IGNORECASE)


def user_tables(db: SqliteDatabase) -> list[str]:
    rows = db.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
        "ESCAPE '\\' ORDER BY name"
    )
    return [str(r[0]) for r in rows]


def describe(db: SqliteDatabase, name: str) -> dict[str, Any]:
    rows = db.query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    sql = str(rows[0][0])
    if sql.upper().startswith("CREATE VIRTUAL"):
        raise TargetError(f"table {name}: virtual tables cannot be backed up (scope them out)")
    columns = [str(r[1]) for r in db.query(f"PRAGMA table_info({quote_ident(name)})")]
    rowid = None
    if not _WITHOUT_ROWID.search(sql):
        taken = {c.lower() for c in columns}
        rowid = next((a for a in ("rowid", "_rowid_", "oid") if a not in taken), None)
    extras = db.query(
        "SELECT type, sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL ORDER BY type, name",
        (name,),
    )
    sequence = None
    if _table_exists(db, "sqlite_sequence"):
        seq = db.query("SELECT seq FROM sqlite_sequence WHERE name = ?", (name,))
        sequence = int(seq[0][0]) if seq else None
    return {
        "name": name,
        "sql": sql,
        "columns": columns,
        "rowid": rowid,
        "indexes": [str(s) for t, s in extras if t == "index"],
        "triggers": [str(s) for t, s in extras if t == "trigger"],
        "sequence": sequence,
    }


def _table_exists(db: SqliteDatabase, name: str) -> bool:
    return bool(db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))


def _select(table: dict[str, Any]) -> tuple[str, list[str]]:
    columns: list[str] = list(table["columns"])
    if table["rowid"]:
        columns = [table["rowid"], *columns]
    names = ", ".join(quote_ident(c) for c in columns)
    return names, columns


def backup_tables(
    db: SqliteDatabase, patterns: list[str], exclude: set[str], out: Any, header: dict[str, Any]
) -> BackupInfo:
    """Write the scoped tables; `header` carries the target's fields (scope, version, ...)."""
    db.limit(None)
    db.begin(write=False)  # one read transaction: every table as of the same moment
    try:
        names = select_tables(patterns, user_tables(db), exclude)
        tables = [describe(db, n) for n in names]
        absent = [p for p in patterns if not any(ch in p for ch in "*?[") and p not in names]
        writer = FrameWriter(out)
        writer.json(
            b"H",
            {
                **header,
                "mode": "tables",
                "scope": list(patterns),
                "tables": tables,
                "absent": absent,
            },
        )
        total = 0
        for table in tables:
            columns_sql, columns = _select(table)
            writer.json(b"T", {"table": table["name"], "columns": columns})
            count = 0
            order = f" ORDER BY {quote_ident(table['rowid'])}" if table["rowid"] else ""
            query = f"SELECT {columns_sql} FROM {quote_ident(table['name'])}{order}"  # noqa: S608
            cur = db.conn.execute(query)
            while batch := cur.fetchmany(ROWS_PER_FRAME):
                writer.frame(b"R", encode_rows(batch))
                count += len(batch)
            writer.json(b"E", {"table": table["name"], "rows": count})
            total += count
        writer.json(b"Z", {"tables": len(tables), "rows": total})
    finally:
        db.rollback()
    return BackupInfo(items=total, scope=list(patterns), detail={"tables": names, "absent": absent})


def backup_file(db: SqliteDatabase, out: Any, header: dict[str, Any]) -> BackupInfo:
    db.limit(None)
    with tempfile.TemporaryDirectory(prefix="releasectl-sqlite-") as tmp:
        copy = Path(tmp) / "backup.db"
        target = sqlite3.connect(copy)
        try:
            db.conn.backup(target)
            tables = target.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()[0]
        finally:
            target.close()
        size = copy.stat().st_size
        digest = hashlib.sha256()
        writer = FrameWriter(out)
        writer.json(b"H", {**header, "mode": "file", "bytes": size})
        with copy.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                writer.frame(b"F", chunk)
        writer.json(b"Z", {"bytes": size, "sha256": digest.hexdigest()})
    return BackupInfo(items=int(tables), scope=["*"], detail={"bytes": size, "mode": "file"})


def restore_file(db: SqliteDatabase, reader: FrameReader) -> BackupInfo:
    db.limit(None)
    with tempfile.TemporaryDirectory(prefix="releasectl-sqlite-") as tmp:
        copy = Path(tmp) / "restore.db"
        digest = hashlib.sha256()
        size = 0
        trailer: dict[str, Any] | None = None
        with copy.open("wb") as fh:
            for kind, payload in reader:
                if kind == b"F":
                    fh.write(payload)
                    digest.update(payload)
                    size += len(payload)
                elif kind == b"Z":
                    trailer = load_json(payload)
                    break
                else:
                    raise BackupFormatError(f"corrupt backup: frame {kind!r} in a file backup")
        if trailer is None:
            raise BackupFormatError("the backup is truncated (no trailer)")
        if trailer.get("sha256") != digest.hexdigest() or trailer.get("bytes") != size:
            raise BackupFormatError("the backup is corrupt (checksum of the database file)")
        source = sqlite3.connect(copy)
        try:
            source.backup(db.conn)
            tables = source.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()[0]
        finally:
            source.close()
    return BackupInfo(items=int(tables), scope=["*"], detail={"bytes": size, "mode": "file"})


def restore_tables(
    db: SqliteDatabase,
    reader: FrameReader,
    header: dict[str, Any],
    exclude: set[str],
    before_commit: Callable[[], None],
) -> BackupInfo:
    db.limit(None)
    saved: list[dict[str, Any]] = header["tables"]
    by_name = {t["name"]: t for t in saved}
    previous = db.foreign_keys(False)  # no cascades, no checks while tables are swapped
    try:
        db.begin()
        try:
            now = select_tables(header["scope"], user_tables(db), exclude)
            dropped = sorted(set(now) | (set(by_name) & set(user_tables(db))))
            for name in dropped:
                db.execute(f"DROP TABLE {quote_ident(name)}")
            for table in saved:
                db.execute(table["sql"])
            rows = _reload(db, reader, by_name)
            for table in saved:
                for sql in (*table["indexes"], *table["triggers"]):
                    db.execute(sql)
                if table["sequence"] is not None:
                    db.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table["name"],))
                    db.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
                        (table["name"], table["sequence"]),
                    )
            before_commit()
            violations = len(db.query("PRAGMA foreign_key_check"))
            db.commit()
        except BaseException:
            db.rollback()
            raise
    finally:
        db.foreign_keys(previous)
    created = sorted(set(dropped) - set(by_name))
    detail: dict[str, Any] = {"tables": sorted(by_name), "dropped_new": created}
    if violations:
        detail["foreign_key_violations"] = violations
    return BackupInfo(items=rows, scope=list(header["scope"]), detail=detail)


def _reload(db: SqliteDatabase, reader: FrameReader, tables: dict[str, dict[str, Any]]) -> int:
    total = 0
    insert = ""
    current: str | None = None
    for kind, payload in reader:
        if kind == b"T":
            info = load_json(payload)
            current = info["table"]
            if current not in tables:
                raise BackupFormatError(f"corrupt backup: rows for unknown table {current}")
            columns = info["columns"]
            marks = ", ".join("?" for _ in columns)
            names = ", ".join(quote_ident(c) for c in columns)
            insert = f"INSERT INTO {quote_ident(current)} ({names}) VALUES ({marks})"  # noqa: S608
        elif kind == b"R":
            if current is None:
                raise BackupFormatError("corrupt backup: rows outside a table")
            batch = decode_rows(payload)
            db.conn.executemany(insert, batch)
            total += len(batch)
        elif kind == b"E":
            current = None
        elif kind == b"Z":
            trailer = load_json(payload)
            if trailer.get("rows") != total:
                raise BackupFormatError(
                    f"the backup is corrupt: {total} rows read, {trailer.get('rows')} written"
                )
            return total
        else:
            raise BackupFormatError(f"corrupt backup: unexpected frame {kind!r}")
    raise BackupFormatError("the backup is truncated (no trailer): nothing was restored")
