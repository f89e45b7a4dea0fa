"""The SQL copy: a copy of the SQLite file, or a temporary PostgreSQL database made from a
schema-and-data dump of the scope.

SQLite: the database file is opened read-only (`mode=ro`) and copied with SQLite's online
backup API into the rehearsal's directory: a consistent copy, the real file never written.

PostgreSQL: the scope is the tables the steps' migrations declare (`scope:`), the tables
their parts name that exist, the tables those reference by foreign key, and the history
table (the target checks its version there). The sql target's own table backup dumps them in
one REPEATABLE READ, READ ONLY transaction (definitions from the catalogue, rows through COPY
BINARY) and its restore loads them into a database created for the rehearsal (on
`rehearsal.postgres_url`, default the target's server) and dropped afterwards.

The copy's state is each table's definition and its rows (as a multiset), the history table
left out: a step and its rollback add rows to it by design, and the target verifies the
version it records.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from releasectl.clients.sql import Database, PostgresDatabase, connect, parse_url, quote_ident
from releasectl.errors import TargetError
from releasectl.models.analysis import DataChange
from releasectl.models.rehearsal import CopyInfo, Difference
from releasectl.models.workspace import SqlTarget as SqlSettings
from releasectl.rehearsal.base import NotRehearsed, Observed, Request, spooled
from releasectl.targets.base import TargetContext

if TYPE_CHECKING:
    from releasectl.models.plan import Step
    from releasectl.workspace.catalogue import Migration

Table = str  # "table" (SQLite) or "schema.table" (PostgreSQL)


class State:
    def __init__(
        self,
        schema: dict[Table, Any],
        columns: dict[Table, list[str]],
        rows: dict[Table, list[tuple[Any, ...]]],
    ) -> None:
        self.schema = schema
        self.columns = columns
        self.rows = rows


class SqlCopy:
    def __init__(self, ctx: TargetContext, info: CopyInfo, db: Database, history: str) -> None:
        self.ctx = ctx
        self.info = info
        self.db = db  # the rehearsal's own connection to the copy
        self.history = history
        self._drop: Any = None  # PostgreSQL: drops the temporary database

    # --- state ----------------------------------------------------------------------------

    def state(self) -> State:
        db = self.db
        schema: dict[Table, Any] = {}
        columns: dict[Table, list[str]] = {}
        rows: dict[Table, list[tuple[Any, ...]]] = {}
        for table, definition, names, select in _tables(db, self.history):
            schema[table] = definition
            columns[table] = names
            rows[table] = [tuple(r) for r in db.query(select)]
        db.rollback()
        return State(schema, columns, rows)

    def compare(self, before: State, after: State) -> list[Difference]:
        found: list[Difference] = []
        for table in sorted(set(before.schema) | set(after.schema)):
            if table not in after.schema:
                found.append(Difference(what=f"table {table}", detail="missing after the rollback"))
                continue
            if table not in before.schema:
                found.append(
                    Difference(what=f"table {table}", detail="left behind by the rollback")
                )
                continue
            if before.schema[table] != after.schema[table]:
                found.append(
                    Difference(
                        what=f"table {table}",
                        detail="its definition differs: "
                        + _definition_change(before.schema[table], after.schema[table]),
                    )
                )
            lost = Counter(map(repr, before.rows[table])) - Counter(map(repr, after.rows[table]))
            extra = Counter(map(repr, after.rows[table])) - Counter(map(repr, before.rows[table]))
            if lost or extra:
                found.append(
                    Difference(
                        what=f"rows of {table}",
                        detail=f"{sum(lost.values())} missing, {sum(extra.values())} not there "
                        "before",
                    )
                )
        return found

    def watch(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def observe(
        self, step: Step, migration: Migration | None, before: State, after: State, watched: Any
    ) -> Observed:
        changes: list[DataChange] = []
        for table in sorted(before.schema):
            had = len(before.rows[table])
            if table not in after.schema:
                changes.append(DataChange(table=table, change="table dropped", rows=had))
                continue
            for position, column in enumerate(before.columns[table]):
                if column not in after.columns[table]:
                    held = sum(1 for r in before.rows[table] if r[position] is not None)
                    changes.append(
                        DataChange(table=table, change="column dropped", column=column, rows=held)
                    )
            lost = had - len(after.rows[table])
            if lost > 0:
                changes.append(DataChange(table=table, change="rows deleted", rows=lost))
        return Observed(data=changes)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.db.close()
        if self._drop is not None:
            self._drop()


def open_copy(request: Request) -> SqlCopy:
    real = request.real
    settings = real.settings
    if not isinstance(settings, SqlSettings):
        raise NotRehearsed("no sql target settings")
    dialect, _, path = parse_url(settings.url, real.root)
    if dialect == "sqlite":
        assert path is not None
        return _sqlite_copy(request, settings, path)
    return _postgres_copy(request, settings)


def _context(real: TargetContext, settings: SqlSettings) -> TargetContext:
    return TargetContext(
        root=real.root,
        env=real.env,
        component=real.component,
        type=real.type,
        settings=settings,
        migrations=real.migrations,
        protected=real.protected,
        environ=real.environ,
        log=real.log,
        default_timeout=real.default_timeout,
    )


# --- SQLite -------------------------------------------------------------------------------


def _sqlite_copy(request: Request, settings: SqlSettings, path: Path) -> SqlCopy:
    started = time.monotonic()
    limits = request.limits
    target = request.workdir / "copy.db"
    size = 0
    if path.exists():
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise NotRehearsed(
                f"the database file is {size:,} bytes, more than rehearsal.max_bytes "
                f"({limits.max_bytes:,})"
            )
        source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            dest = sqlite3.connect(target)
            try:
                source.backup(dest)
            finally:
                dest.close()
        except sqlite3.Error as exc:
            raise NotRehearsed(f"the database file could not be read: {exc}") from exc
        finally:
            source.close()
    ctx = _context(request.real, settings.model_copy(update={"url": f"sqlite:///{target}"}))
    history = settings.history_table.rsplit(".", maxsplit=1)[-1]
    db = connect(f"sqlite:///{target}", request.real.root)
    copy = SqlCopy(ctx, CopyInfo(component=ctx.component, type=ctx.type, made=True), db, history)
    rows = sum(len(r) for r in copy.state().rows.values())
    if rows > limits.max_rows:
        copy.close()
        raise NotRehearsed(
            f"the database holds {rows:,} rows, more than rehearsal.max_rows ({limits.max_rows:,})"
        )
    copy.info = copy.info.model_copy(
        update={
            "kind": "SQLite copy",
            "scope": ["the whole database file"],
            "items": rows,
            "bytes": size,
            "seconds": round(time.monotonic() - started, 3),
        }
    )
    return copy


# --- PostgreSQL ---------------------------------------------------------------------------


def _postgres_copy(request: Request, settings: SqlSettings) -> SqlCopy:
    from releasectl.targets.sql import backup_pg
    from releasectl.targets.sql.catalog_pg import display, locate
    from releasectl.targets.sql.frames import FORMAT, FrameReader

    started = time.monotonic()
    real = request.real
    limits = request.limits
    source = connect(settings.url, real.root)
    try:
        assert isinstance(source, PostgresDatabase)
        history = locate(source, settings.history_table)
        keys = _scope(source, request)
        if history is not None and history not in keys:
            keys.append(history)
        header = {
            "format": FORMAT,
            "version": 1,
            "dialect": "postgresql",
            "component": real.component,
            "history_table": settings.history_table,
            "schema_version": None,
            "migration": None,
            "step": None,
        }
        server = request.resolve(limits.postgres_url) if limits.postgres_url else settings.url
        name = f"releasectl_rehearsal_{uuid.uuid4().hex[:12]}"
        url = _with_database(server, name)
        drop = _create_database(server, name)
        try:
            with spooled(request.workdir, limits.max_bytes, "the PostgreSQL scope") as spool:
                patterns = [_escape(display(k)) for k in keys]
                info = (
                    backup_pg.backup_tables(source, patterns, set(), spool.writer, header)
                    if patterns
                    else None
                )
                items = info.items if info is not None else 0
                if items > limits.max_rows:
                    raise NotRehearsed(
                        f"the scope holds {items:,} rows, more than rehearsal.max_rows "
                        f"({limits.max_rows:,})"
                    )
                copy_db = connect(url, real.root)
                assert isinstance(copy_db, PostgresDatabase)
                try:
                    if info is not None:
                        reader = FrameReader(spool.reader())
                        saved = reader.header()
                        for schema in sorted({t["schema"] for t in saved["tables"]}):
                            copy_db.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
                        backup_pg.restore_tables(copy_db, reader, saved, set(), lambda: None)
                except BaseException:
                    copy_db.close()
                    raise
                size = spool.size
        except BaseException:
            drop()
            raise
    finally:
        source.close()
    ctx = _context(real, settings.model_copy(update={"url": url}))
    history_name = display(history) if history is not None else settings.history_table
    copy = SqlCopy(
        ctx,
        CopyInfo(
            component=real.component,
            type=real.type,
            kind=f"temporary PostgreSQL database {name}",
            made=True,
            scope=[display(k) for k in keys],
            items=items,
            bytes=size,
            seconds=round(time.monotonic() - started, 3),
        ),
        copy_db,
        history_name,
    )
    copy._drop = drop
    return copy


def _scope(db: PostgresDatabase, request: Request) -> list[tuple[str, str]]:
    """The tables to copy: declared scopes, tables the parts name, their foreign-key parents."""
    from releasectl.targets.sql.catalog_pg import locate, select

    declared: list[str] = []
    named: list[str] = []
    for _, migration in request.steps:
        if migration is None:
            continue
        declared.extend(migration.meta.scope or ())
        named.extend(_named_tables(migration))
    keys = list(select(db, declared, set())) if declared else []
    for name in named:
        with contextlib.suppress(Exception):
            found = locate(db, name)
            if found is not None and found not in keys:
                keys.append(found)
    db.rollback()
    todo = list(keys)
    while todo:
        for parent in _parents(db, todo.pop()):
            if parent not in keys:
                keys.append(parent)
                todo.append(parent)
    return keys


def _named_tables(migration: Migration) -> list[str]:
    """Tables named in a migration's parts (sqlglot; a statement it cannot parse names none)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    from releasectl.targets.sql.checks import read_part
    from releasectl.targets.sql.script import SqlSyntaxError, parse

    found: list[str] = []
    for part in ("up.sql", "down.sql", "verify.sql"):
        if part not in migration.files:
            continue
        try:
            script = parse(read_part(migration.file(part)), "postgresql")
        except (OSError, UnicodeDecodeError, SqlSyntaxError):
            continue
        for statement in script.statements:
            try:
                trees = sqlglot.parse(statement.text, read="postgres")
            except SqlglotError:
                continue
            for tree in trees:
                if tree is None:
                    continue
                for table in tree.find_all(exp.Table):
                    name = f"{table.db}.{table.name}" if table.db else table.name
                    if name and name not in found:
                        found.append(name)
    return found


def _parents(db: Database, key: tuple[str, str]) -> list[tuple[str, str]]:
    rows = db.query(
        "SELECT rn.nspname, rc.relname FROM pg_constraint con "
        "JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_class rc ON rc.oid = con.confrelid "
        "JOIN pg_namespace rn ON rn.oid = rc.relnamespace "
        "WHERE con.contype = 'f' AND n.nspname = %s AND c.relname = %s",
        key,
    )
    db.rollback()
    return [(str(s), str(t)) for s, t in rows]


def _escape(text: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in text)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _create_database(server: str, name: str) -> Any:
    import psycopg

    from releasectl.secrets import redact

    try:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    except psycopg.Error as exc:
        raise TargetError(
            f"cannot create the rehearsal's temporary database on {redact(server)}: "
            f"{redact(str(exc).strip())} (set rehearsal.postgres_url to a server where it may)"
        ) from exc

    def drop() -> None:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(server, autocommit=True, connect_timeout=10) as conn,
        ):
            conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")

    return drop


# --- reading a copy -----------------------------------------------------------------------


def _tables(db: Database, history: str) -> list[tuple[Table, Any, list[str], str]]:
    """(name, definition, columns, SELECT of its rows) of every table but the history table."""
    out: list[tuple[Table, Any, list[str], str]] = []
    if db.dialect == "sqlite":
        for name, sql in db.query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
            "'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        ):
            if name == history:
                continue
            extras = db.query(
                "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND type IN "
                "('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name",
                (name,),
            )
            columns = [str(r[1]) for r in db.query(f"PRAGMA table_info({quote_ident(name)})")]
            definition = {"sql": sql, "extras": [tuple(e) for e in extras]}
            out.append((str(name), definition, columns, f"SELECT * FROM {quote_ident(name)}"))  # noqa: S608 (quoted identifier)
        return out
    from releasectl.targets.sql.catalog_pg import describe, display, qualified, shape, user_tables

    for key in user_tables(db):
        if display(key) == history:
            continue
        defn = describe(db, key)
        if defn is None:
            continue
        columns = [c["name"] for c in defn["columns"]]
        out.append((display(key), shape(defn), columns, f"SELECT * FROM {qualified(*key)}"))  # noqa: S608 (quoted identifier)
    return out


def _definition_change(before: Any, after: Any) -> str:
    if isinstance(before, dict) and isinstance(after, dict):
        parts = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
        return ", ".join(parts) or "yes"
    return "yes"
