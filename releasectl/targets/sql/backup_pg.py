"""PostgreSQL backups of tables: definitions from the catalogue, rows through COPY BINARY.

Backup runs in one REPEATABLE READ, READ ONLY transaction (every table as of one snapshot) and
streams each table's `COPY .. TO STDOUT (FORMAT binary)` in chunks: memory stays flat however
large the table.

Restore runs in one transaction and puts back exactly the tables of the backup:
1. tables the scope names now that the backup does not have (created since) are dropped;
2. a saved table that is missing, or whose definition (columns, constraints, indexes,
   triggers) differs, is dropped and recreated from its saved definition; one that is
   unchanged is emptied with TRUNCATE (its privileges and owner stay as they are);
3. while the rows are reloaded, foreign keys that point at these tables from elsewhere are
   dropped (so nothing cascades and load order does not matter) and added back afterwards,
   which validates them: a restore that would leave a dangling reference fails and rolls
   back instead;
4. user triggers do not fire during the reload; their enabled/disabled state, the owned
   sequences' values, indexes and grants are restored.
Dropping never cascades: if a view depends on a table that must be recreated, the restore
fails with PostgreSQL's message and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from releasectl.clients.sql import Database, PostgresDatabase, quote_ident
from releasectl.errors import TargetError
from releasectl.targets.base import BackupInfo
from releasectl.targets.sql.catalog_pg import (
    Key,
    copy_columns,
    create_statements,
    describe,
    display,
    has_constraint,
    incoming,
    oids,
    qualified,
    select,
    shape,
    trigger_state,
)
from releasectl.targets.sql.frames import (
    CHUNK,
    BackupFormatError,
    FrameReader,
    FrameWriter,
    load_json,
)


def backup_tables(
    db: PostgresDatabase,
    patterns: list[str],
    exclude: set[Key],
    out: IO[bytes],
    header: dict[str, Any],
) -> BackupInfo:
    db.limit(None)
    db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        keys = select(db, patterns, exclude)
        tables = [d for d in (describe(db, k) for k in keys) if d is not None]
        absent = [p for p in patterns if not any(ch in p for ch in "*?[") and not _named(p, keys)]
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
        for defn in tables:
            columns = copy_columns(defn)
            writer.json(b"T", {"table": [defn["schema"], defn["name"]], "columns": columns})
            rows = _copy_out(db, defn, columns, writer) if columns else 0
            writer.json(b"E", {"rows": rows})
            total += rows
        writer.json(b"Z", {"tables": len(tables), "rows": total})
    finally:
        db.rollback()
    return BackupInfo(
        items=total,
        scope=list(patterns),
        detail={"tables": [display(k) for k in keys], "absent": absent},
    )


def _named(pattern: str, keys: list[Key]) -> bool:
    return any(pattern in (k[1], display(k)) for k in keys)


def _copy_out(
    db: PostgresDatabase, defn: dict[str, Any], columns: list[str], writer: FrameWriter
) -> int:
    names = ", ".join(quote_ident(c) for c in columns)
    table = qualified(defn["schema"], defn["name"])
    buf = bytearray()
    with db.conn.cursor() as cur:
        with cur.copy(f"COPY {table} ({names}) TO STDOUT (FORMAT binary)") as copy:
            for data in copy:
                buf += data
                if len(buf) >= CHUNK:
                    writer.frame(b"R", bytes(buf))
                    buf.clear()
        if buf:
            writer.frame(b"R", bytes(buf))
        return max(cur.rowcount, 0)


def restore_tables(
    db: PostgresDatabase,
    reader: FrameReader,
    header: dict[str, Any],
    exclude: set[Key],
    before_commit: Callable[[], None],
) -> BackupInfo:
    db.limit(None)
    saved = {(d["schema"], d["name"]): d for d in header["tables"]}
    db.begin()
    try:
        now = select(db, header["scope"], exclude)
        current = {k: describe(db, k) for k in saved}
        created = [k for k in now if k not in saved]
        unchanged = [k for k, d in current.items() if d is not None and shape(d) == shape(saved[k])]
        changed = [k for k, d in current.items() if d is not None and k not in unchanged]
        recreate = [k for k in saved if k not in unchanged]
        dropping = set(created) | set(changed)
        _drop_incoming(db, [*saved, *created], dropping)
        if dropping:
            _run(db, f"DROP TABLE {', '.join(qualified(*k) for k in sorted(dropping))}", "drop")
        for key in recreate:
            for sql in create_statements(saved[key]):
                _run(db, sql, f"recreate {display(key)}")
        for key in unchanged:
            if saved[key]["triggers"]:
                db.execute(f"ALTER TABLE {qualified(*key)} DISABLE TRIGGER USER")
        if unchanged:
            db.execute(f"TRUNCATE {', '.join(qualified(*k) for k in unchanged)}")
        rows = _reload(db, reader, saved)
        for key in recreate:
            for sql in saved[key]["indexes"]:
                _run(db, sql, f"index of {display(key)}")
            for trigger in saved[key]["triggers"]:
                _run(db, trigger["def"], f"trigger of {display(key)}")
        for defn in saved.values():
            for sql in trigger_state(defn):
                db.execute(sql)
            for seq in defn["sequences"]:
                db.execute(
                    "SELECT setval(%s::regclass, %s, %s)",
                    (qualified(seq["schema"], seq["name"]), seq["last_value"], seq["is_called"]),
                )
        readded = _add_foreign_keys(db, saved, recreate)
        before_commit()
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return BackupInfo(
        items=rows,
        scope=list(header["scope"]),
        detail={
            "tables": [display(k) for k in saved],
            "recreated": [display(k) for k in recreate],
            "dropped_new": [display(k) for k in created],
            "foreign_keys_checked": readded,
        },
    )


def _run(db: Database, sql: str, what: str) -> None:
    try:
        db.execute(sql)
    except Exception as exc:
        if db.is_error(exc):
            raise TargetError(f"restore: {what}: {db.describe(exc)}") from exc
        raise


def _drop_incoming(db: Database, keys: list[Key], dropping: set[Key]) -> None:
    """Drop the foreign keys that point at `keys` from tables that stay."""
    for fk in incoming(db, oids(db, keys)):
        child = (fk["schema"], fk["table"])
        if child in dropping:
            continue
        db.execute(f"ALTER TABLE {qualified(*child)} DROP CONSTRAINT {quote_ident(fk['name'])}")


def _add_foreign_keys(db: Database, saved: dict[Key, dict[str, Any]], recreated: list[Key]) -> int:
    wanted: dict[tuple[str, str, str], str] = {}
    for defn in saved.values():
        for fk in defn["incoming"]:
            wanted[(fk["schema"], fk["table"], fk["name"])] = fk["def"]
    for key in recreated:
        for con in saved[key]["constraints"]:
            if con["type"] == "f":
                wanted[(key[0], key[1], con["name"])] = con["def"]
    added = 0
    for (schema, table, name), definition in sorted(wanted.items()):
        child = (schema, table)
        if not oids(db, [child]) or has_constraint(db, child, name):
            continue
        _run(
            db,
            f"ALTER TABLE {qualified(*child)} ADD CONSTRAINT {quote_ident(name)} {definition}",
            f"foreign key {name} of {display(child)}",
        )
        added += 1
    return added


def _reload(db: PostgresDatabase, reader: FrameReader, saved: dict[Key, dict[str, Any]]) -> int:
    total = 0
    frames = iter(reader)
    for kind, payload in frames:
        if kind == b"Z":
            trailer = load_json(payload)
            if trailer.get("rows") != total:
                raise BackupFormatError(
                    f"the backup is corrupt: {total} rows read, {trailer.get('rows')} written"
                )
            return total
        if kind != b"T":
            raise BackupFormatError(f"corrupt backup: unexpected frame {kind!r}")
        info = load_json(payload)
        key = (str(info["table"][0]), str(info["table"][1]))
        if key not in saved:
            raise BackupFormatError(f"corrupt backup: rows for unknown table {display(key)}")
        columns = ", ".join(quote_ident(c) for c in info["columns"])
        rows = 0
        with db.conn.cursor() as cur:
            with cur.copy(f"COPY {qualified(*key)} ({columns}) FROM STDIN (FORMAT binary)") as cp:
                for kind2, chunk in frames:
                    if kind2 == b"R":
                        cp.write(chunk)
                        continue
                    if kind2 != b"E":
                        raise BackupFormatError(f"corrupt backup: unexpected frame {kind2!r}")
                    rows = int(load_json(chunk)["rows"])
                    break
                else:
                    raise BackupFormatError("the backup is truncated: nothing was restored")
            if cur.rowcount >= 0 and info["columns"] and cur.rowcount != rows:
                raise BackupFormatError(f"{display(key)}: {cur.rowcount} rows loaded, {rows} saved")
        total += rows
    raise BackupFormatError("the backup is truncated (no trailer): nothing was restored")
