"""Helpers of the SQL target tests: migrations in a tmp workspace, steps run the way the engine
runs them, and snapshots of a real database (schema + rows) to compare before and after."""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path
from typing import Any, Literal

import pytest

from releasectl.models.plan import Step
from releasectl.models.workspace import SqlTarget as SqlSettings
from releasectl.targets.base import Failure, TargetContext
from releasectl.targets.sql.target import SqlTarget
from releasectl.util.deadline import Deadline
from releasectl.workspace.catalogue import Migration, scan_component
from tests.builders import add_migration

REPO = Path(__file__).resolve().parent.parent
COMPONENT = "db"
HISTORY = "releasectl_schema_history"


def write_migration(root: Path, number: int, slug: str, files: dict[str, str]) -> Path:
    return add_migration(root, COMPONENT, f"{number:04d}_{slug}", files)


def copy_example(root: Path) -> None:
    """The repository's example database migrations as migrations/db/."""
    shutil.copytree(REPO / "migrations" / "database", root / "migrations" / COMPONENT)


def open_target(root: Path, url: str, **settings: Any) -> SqlTarget:
    found, errors = scan_component(root, COMPONENT, "sql", f"migrations/{COMPONENT}")
    assert not errors, errors
    ctx = TargetContext(
        root=root,
        env="test",
        component=COMPONENT,
        type="sql",
        settings=SqlSettings(url=url, **settings),
        migrations=found,
        environ={"RELEASECTL_ACTOR": "tester"},
    )
    return SqlTarget(ctx)


def migration(target: SqlTarget, number: int) -> Migration:
    assert target.ctx.migrations is not None
    found = target.ctx.migrations.get(number)
    assert found is not None
    return found


Action = Literal["up", "down"]


class StepFailed(Exception):
    """A step failed and was rolled back: the error and what the rollback said."""

    def __init__(self, error: Exception, rollback: str) -> None:
        super().__init__(f"{error} (rollback: {rollback})")
        self.error = error
        self.rollback = rollback


def step(action: Action, number: int, target: SqlTarget) -> Step:
    m = migration(target, number)
    from_, to = (number - 1, number) if action == "up" else (number, number - 1)
    return Step(
        component=COMPONENT,
        type="sql",
        action=action,
        **{"from": from_},
        to=to,
        migration=m.id,
        checksum=m.checksum,
        backup=bool(m.meta.scope),
    )


def apply(target: SqlTarget, action: Action, number: int, timeout: float = 30) -> str:
    """One step the way the engine runs it: check, backup, run, verify; on failure the
    target's rollback with the backup, then StepFailed."""
    s = step(action, number, target)
    m = migration(target, number)
    target.check(s, m)
    buf = io.BytesIO()
    target.backup(s, m, buf)
    phase = "run"
    try:
        output = target.run(s, m, Deadline.after(timeout))
        phase = "verify"
        target.verify(s, m, Deadline.after(timeout))
    except Exception as exc:
        buf.seek(0)
        raise StepFailed(exc, target.rollback(s, m, buf, Failure(phase, exc))) from exc
    return output


# --- snapshots ---------------------------------------------------------------------------


def snapshot(url: str, root: Path, *, history: bool = True) -> dict[str, Any]:
    """Schema and rows of every table, in a stable order."""
    if url.startswith("sqlite"):
        return _sqlite_snapshot(_sqlite_path(url, root), history)
    return _pg_snapshot(url, history)


def _sqlite_path(url: str, root: Path) -> Path:
    rest = url[len("sqlite:///") :]
    return Path(rest) if rest.startswith("/") else root / rest


def _sqlite_snapshot(path: Path, history: bool) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        schema = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_autoindex%' ORDER BY type, name"
        ).fetchall()
        out: dict[str, Any] = {"schema": [r for r in schema if history or r[2] != HISTORY]}
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall():
            if name == HISTORY and not history:
                continue
            count = len(conn.execute(f'SELECT * FROM "{name}" LIMIT 0').description)
            order = ", ".join(str(i) for i in range(1, count + 1))
            without_rowid = conn.execute(
                "SELECT wr FROM pragma_table_list WHERE name = ?", (name,)
            ).fetchone()[0]
            rowid = "" if without_rowid or name == "sqlite_sequence" else "rowid, "
            rows = conn.execute(f'SELECT {rowid}* FROM "{name}" ORDER BY {order}').fetchall()
            out[f"rows:{name}"] = rows
        return out
    finally:
        conn.close()


def _pg_snapshot(url: str, history: bool) -> dict[str, Any]:
    import psycopg

    out: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            ).fetchall()
            if history or r[0] != HISTORY
        ]
        out["tables"] = tables
        out["columns"] = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default, "
            "ordinal_position FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = ANY(%s) ORDER BY 1, 2",
            (tables,),
        ).fetchall()
        out["constraints"] = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
            "AND conrelid::regclass::text = ANY(%s) ORDER BY 1, 2",
            (tables,),
        ).fetchall()
        out["indexes"] = conn.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = ANY(%s) ORDER BY 1, 2",
            (tables,),
        ).fetchall()
        out["triggers"] = conn.execute(
            "SELECT tgrelid::regclass::text, tgname, tgenabled FROM pg_trigger "
            "WHERE NOT tgisinternal ORDER BY 1, 2"
        ).fetchall()
        for table in tables:
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            out[f"rows:{table}"] = sorted(rows, key=repr)
    return out


def sql(url: str, root: Path, *statements: str) -> list[Any]:
    """Run statements on a separate connection (autocommit); the last one's rows."""
    rows: list[Any] = []
    if url.startswith("sqlite"):
        conn = sqlite3.connect(_sqlite_path(url, root), isolation_level=None)
        try:
            for text in statements:
                cur = conn.execute(text)
                rows = cur.fetchall()
        finally:
            conn.close()
        return rows
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        for text in statements:
            result = pg.execute(text)
            rows = result.fetchall() if result.description else []
    return rows


def history_rows(url: str, root: Path) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in sql(
            url,
            root,
            f"SELECT installed_rank, version, direction, schema_version FROM {HISTORY} "
            "ORDER BY installed_rank",
        )
    ]


def pick_db_url(request: pytest.FixtureRequest) -> str:
    """For a fixture parametrized with "sqlite" / "postgresql": the URL of an empty database,
    a SQLite file (relative to the workspace) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return "sqlite:///data/app.db"
    url: str = request.getfixturevalue("postgres_url")
    return url
