"""The database's own history table (like Flyway's flyway_schema_history).

Every up, down and restore that changes a component's schema version appends one row, in the
same transaction as the change itself, so the table never claims what did not happen. The
database's version of a component is the `schema_version` of its latest row (0 without one).
Several components may share a database and a history table: rows carry the component.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from releasectl.clients.sql import Database, quote_ident
from releasectl.util import timeutil

if TYPE_CHECKING:
    from releasectl.workspace.catalogue import Migration

COLUMNS = (
    "installed_rank",
    "component",
    "version",
    "migration",
    "direction",
    "checksum",
    "schema_version",
    "description",
    "applied_by",
    "applied_at",
    "execution_ms",
)


def create_sql(table: str) -> str:
    # Portable types only: the same DDL works on SQLite and PostgreSQL.
    return f"""CREATE TABLE IF NOT EXISTS {quote_ident(table)} (
    installed_rank INTEGER NOT NULL PRIMARY KEY,
    component      VARCHAR(63) NOT NULL,
    version        INTEGER NOT NULL,
    migration      VARCHAR(255) NOT NULL,
    direction      VARCHAR(8) NOT NULL,
    checksum       VARCHAR(64) NOT NULL,
    schema_version INTEGER NOT NULL,
    description    VARCHAR(500),
    applied_by     VARCHAR(255) NOT NULL,
    applied_at     VARCHAR(32) NOT NULL,
    execution_ms   INTEGER NOT NULL
)"""


@dataclass(frozen=True, slots=True)
class HistoryRow:
    installed_rank: int
    migration: str
    direction: str
    schema_version: int
    applied_at: str

    def describe(self) -> str:
        return f"{self.direction} {self.migration} at {self.applied_at}"


def exists(db: Database, table: str) -> bool:
    if db.dialect == "sqlite":
        name = table.rsplit(".", maxsplit=1)[-1]
        rows = db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return bool(rows)
    rows = db.query(db.sql("SELECT to_regclass(?) IS NOT NULL"), (quote_ident(table),))
    return bool(rows and rows[0][0])


def ensure(db: Database, table: str) -> None:
    if not exists(db, table):  # (IF NOT EXISTS alone would make PostgreSQL emit a notice)
        db.execute(create_sql(table))


def latest(db: Database, table: str, component: str) -> HistoryRow | None:
    if not exists(db, table):
        return None
    rows = db.query(
        db.sql(
            "SELECT installed_rank, migration, direction, schema_version, applied_at "  # noqa: S608
            f"FROM {quote_ident(table)} WHERE component = ? "
            "ORDER BY installed_rank DESC LIMIT 1"
        ),
        (component,),
    )
    if not rows:
        return None
    rank, migration, direction, version, applied_at = rows[0]
    return HistoryRow(int(rank), str(migration), str(direction), int(version), str(applied_at))


def version(db: Database, table: str, component: str) -> int:
    row = latest(db, table, component)
    return 0 if row is None else row.schema_version


def lock(db: Database, table: str) -> None:
    """Inside a transaction: serialise writers of the history (SQLite's BEGIN IMMEDIATE already
    holds the database's write lock)."""
    if db.dialect == "postgresql":
        db.execute(f"LOCK TABLE {quote_ident(table)} IN SHARE ROW EXCLUSIVE MODE")


def append(
    db: Database,
    table: str,
    *,
    component: str,
    version: int,
    migration: str,
    direction: str,
    checksum: str,
    schema_version: int,
    description: str | None,
    applied_by: str,
    execution_ms: int,
) -> None:
    columns = ", ".join(COLUMNS)
    placeholders = ", ".join("?" for _ in COLUMNS[1:])
    db.execute(
        db.sql(
            f"INSERT INTO {quote_ident(table)} ({columns}) "  # noqa: S608 (quoted identifiers)
            f"SELECT COALESCE(MAX(installed_rank), 0) + 1, {placeholders} "
            f"FROM {quote_ident(table)}"
        ),
        (
            component,
            version,
            migration,
            direction,
            checksum,
            schema_version,
            (description or "")[:500] or None,
            applied_by[:255],
            timeutil.iso(),
            execution_ms,
        ),
    )


def stamp(
    db: Database,
    table: str,
    component: str,
    version: int,
    migration: Migration | None,
    applied_by: str,
) -> None:
    """A `baseline` row saying the component is at `version`, nothing run; one transaction."""
    try:
        db.begin()
        ensure(db, table)
        lock(db, table)
        append(
            db,
            table,
            component=component,
            version=version,
            migration=migration.id if migration is not None else "baseline",
            direction="baseline",
            checksum=migration.checksum if migration is not None else "",
            schema_version=version,
            description="baseline: recorded without running",
            applied_by=applied_by,
            execution_ms=0,
        )
        db.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            db.rollback()
        raise
