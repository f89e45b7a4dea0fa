"""Backups of the sql target on real SQLite and PostgreSQL: scoped tables (definition + rows),
whole databases, and the rollback that restores them."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from releasectl.errors import TargetError
from releasectl.targets.sql.frames import BackupFormatError
from tests.test_sql_support import (
    StepFailed,
    apply,
    copy_example,
    history_rows,
    migration,
    open_target,
    pick_db_url,
    snapshot,
    sql,
    step,
    write_migration,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return pick_db_url(request)


SEED = (
    "INSERT INTO users (id, email, display_name, mfa_enabled) VALUES "
    "(1, 'alice@example.com', 'Alice', TRUE), (2, 'bob@example.com', 'Bob ''the builder''', FALSE)",
    "INSERT INTO user_roles (user_id, role_id) VALUES (1, 1), (2, 3)",
    "INSERT INTO oauth_clients (client_id, name, redirect_uris) VALUES ('cli', 'CLI', 'http://x')",
    "INSERT INTO sessions (id, user_id, client_id, expires_at) VALUES "
    "('s1', 1, 'cli', '2030-01-01 00:00:00'), ('s2', 2, NULL, '2030-01-02 00:00:00')",
)


def seeded(root: Path, url: str, scope: str) -> None:
    """The example at version 1 with rows, and migration 2 scoped to `scope`."""
    copy_example(root)
    write_migration(
        root,
        2,
        "scoped",
        {
            "migration.yaml": f"description: scoped\nscope: {scope}\n",
            "up.sql": "UPDATE users SET display_name = 'x';\n",
            "down.sql": "SELECT 1;\n",
        },
    )
    target = open_target(root, url)
    apply(target, "up", 1)
    target.close()
    sql(url, root, *SEED)


def take_backup(root: Path, url: str) -> bytes:
    target = open_target(root, url)
    try:
        buf = io.BytesIO()
        info = target.backup(step("up", 2, target), migration(target, 2), buf)
        assert info.items > 0
        return buf.getvalue()
    finally:
        target.close()


def restore(root: Path, url: str, data: bytes) -> dict[str, Any]:
    target = open_target(root, url)
    try:
        return target.restore(io.BytesIO(data)).detail
    finally:
        target.close()


def test_scoped_backup_change_restore(tmp_path: Path, db_url: str) -> None:
    seeded(tmp_path, db_url, '[users, roles, "new_*", missing_table]')
    before = snapshot(db_url, tmp_path)
    data = take_backup(tmp_path, db_url)
    sql(
        db_url,
        tmp_path,
        "UPDATE users SET display_name = 'changed', mfa_enabled = FALSE WHERE id = 1",
        "DELETE FROM roles WHERE id = 2",
        "INSERT INTO users (id, email, display_name) VALUES (3, 'carol@example.com', 'Carol')",
        "INSERT INTO roles (id, name) VALUES (9, 'temp')",
        "ALTER TABLE users ADD COLUMN locale VARCHAR(10) DEFAULT 'en'",
        "CREATE TABLE new_things (id INTEGER PRIMARY KEY, note TEXT)",
        "INSERT INTO new_things VALUES (1, 'made after the backup')",
        "CREATE TABLE missing_table (id INTEGER)",
        "CREATE TABLE unrelated (id INTEGER)",
    )
    detail = restore(tmp_path, db_url, data)
    assert sorted(str(t).split(".")[-1] for t in detail["dropped_new"]) == [
        "missing_table",
        "new_things",
    ]
    after = snapshot(db_url, tmp_path)
    # everything in scope is back exactly; the unscoped table made meanwhile stays
    sql(db_url, tmp_path, "DROP TABLE unrelated")
    assert snapshot(db_url, tmp_path) == before
    assert after != before
    # the unscoped tables referencing users (sessions, user_roles) kept their rows and keys
    fk_on = ("PRAGMA foreign_keys = ON",) if db_url.startswith("sqlite") else ()
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        sql(
            db_url,
            tmp_path,
            *fk_on,
            "INSERT INTO sessions (id, user_id, expires_at) VALUES ('s3', 42, '2030-01-01')",
        )


def test_restore_refuses_dangling_references(tmp_path: Path, db_url: str) -> None:
    seeded(tmp_path, db_url, "[users]")
    data = take_backup(tmp_path, db_url)
    sql(
        db_url,
        tmp_path,
        "INSERT INTO users (id, email, display_name) VALUES (5, 'eve@example.com', 'Eve')",
        "INSERT INTO sessions (id, user_id, expires_at) VALUES ('s5', 5, '2030-01-01 00:00:00')",
    )
    before = snapshot(db_url, tmp_path)
    if db_url.startswith("postgres"):
        # adding sessions' foreign key back validates it: the restore fails, nothing changes
        with pytest.raises(
            TargetError, match=r"foreign key sessions_user_id_fkey of public\.sessions"
        ):
            restore(tmp_path, db_url, data)
        assert snapshot(db_url, tmp_path) == before
    else:
        # SQLite reloads with foreign keys off and reports what no longer matches
        detail = restore(tmp_path, db_url, data)
        assert detail["foreign_key_violations"] == 1
        assert sql(db_url, tmp_path, "SELECT id FROM users ORDER BY id") == [(1,), (2,)]


def test_triggers_do_not_fire_during_restore(tmp_path: Path, db_url: str) -> None:
    seeded(tmp_path, db_url, "[roles]")
    if db_url.startswith("postgres"):
        sql(
            db_url,
            tmp_path,
            "CREATE FUNCTION audit_role() RETURNS trigger AS $$ BEGIN INSERT INTO audit_log "
            "(id, actor, action, resource, decision) SELECT COALESCE(MAX(id), 0) + 1, 'trigger', "
            "'insert', NEW.name, 'allow' FROM audit_log; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER roles_audit AFTER INSERT ON roles FOR EACH ROW "
            "EXECUTE FUNCTION audit_role()",
            "CREATE TRIGGER roles_audit_off AFTER INSERT ON roles FOR EACH ROW "
            "EXECUTE FUNCTION audit_role()",
            "ALTER TABLE roles DISABLE TRIGGER roles_audit_off",
        )
    else:
        sql(
            db_url,
            tmp_path,
            "CREATE TRIGGER roles_audit AFTER INSERT ON roles BEGIN INSERT INTO audit_log "
            "(actor, action, resource, decision) VALUES ('trigger', 'insert', NEW.name, 'allow'); "
            "END",
        )
    before = snapshot(db_url, tmp_path)
    data = take_backup(tmp_path, db_url)
    sql(db_url, tmp_path, "DELETE FROM roles WHERE id = 2")
    restore(tmp_path, db_url, data)
    assert snapshot(db_url, tmp_path) == before  # audit_log untouched, trigger states kept
    sql(db_url, tmp_path, "INSERT INTO roles (id, name) VALUES (8, 'new')")
    assert sql(db_url, tmp_path, "SELECT resource FROM audit_log") == [("new",)]  # one trigger on


def test_failing_verify_without_down_restores_the_backup(tmp_path: Path, db_url: str) -> None:
    copy_example(tmp_path)
    write_migration(
        tmp_path,
        2,
        "rename_roles",
        {
            "migration.yaml": "scope: [roles]\n",
            "up.sql": "UPDATE roles SET name = UPPER(name);\nDELETE FROM roles WHERE id = 3;\n",
            "verify.sql": "SELECT COUNT(*) = 3 FROM roles",
        },
    )
    target = open_target(tmp_path, db_url)
    try:
        apply(target, "up", 1)
        before = snapshot(db_url, tmp_path, history=False)
        with pytest.raises(StepFailed) as caught:
            apply(target, "up", 2)
        assert caught.value.rollback == "restored the backup of its scope (3 rows)"
        assert snapshot(db_url, tmp_path, history=False) == before
        assert history_rows(db_url, tmp_path) == [
            (1, 1, "up", 1),
            (2, 2, "up", 2),
            (3, 2, "restore", 1),
        ]
        target.check(step("up", 2, target), migration(target, 2))  # the database is at 1 again
    finally:
        target.close()


def test_whole_database_backup_and_restore(tmp_path: Path, db_url: str) -> None:
    seeded(tmp_path, db_url, "[users]")
    before = snapshot(db_url, tmp_path)
    target = open_target(tmp_path, db_url)
    try:
        buf = io.BytesIO()
        info = target.backup(None, None, buf)
        assert info.scope == ["*"]
        apply(target, "up", 2)
        sql(
            db_url,
            tmp_path,
            "DROP TABLE user_roles",
            "DELETE FROM sessions",
            "CREATE TABLE later (id INTEGER)",
            "INSERT INTO roles (id, name) VALUES (10, 'later')",
        )
        assert snapshot(db_url, tmp_path) != before
        target.restore(io.BytesIO(buf.getvalue()))
        assert snapshot(db_url, tmp_path) == before  # the history table included
    finally:
        target.close()


def test_truncated_backup_changes_nothing(tmp_path: Path, db_url: str) -> None:
    seeded(tmp_path, db_url, "[users, roles]")
    data = take_backup(tmp_path, db_url)
    sql(db_url, tmp_path, "UPDATE roles SET description = 'edited'")
    before = snapshot(db_url, tmp_path)
    with pytest.raises(BackupFormatError, match=r"truncated|corrupt"):
        restore(tmp_path, db_url, data[: len(data) - 30])
    assert snapshot(db_url, tmp_path) == before
    with pytest.raises(BackupFormatError, match="not a releasectl SQL backup"):
        restore(tmp_path, db_url, b"garbage" * 10)


def test_without_scope_backup_is_a_record(tmp_path: Path) -> None:
    copy_example(tmp_path)
    target = open_target(tmp_path, "sqlite:///a.db")
    try:
        buf = io.BytesIO()
        info = target.backup(step("up", 1, target), migration(target, 1), buf)
        assert info.items == 0
        assert info.detail["mode"] == "none"
        assert len(buf.getvalue()) < 1000
        assert target.restore(io.BytesIO(buf.getvalue())).detail["mode"] == "none"
    finally:
        target.close()


def test_backup_of_another_dialect_is_refused(tmp_path: Path, postgres_url: str) -> None:
    seeded(tmp_path, "sqlite:///a.db", "[roles]")
    data = take_backup(tmp_path, "sqlite:///a.db")
    target = open_target(tmp_path, postgres_url)
    try:
        with pytest.raises(TargetError, match="the backup is of a sqlite database"):
            target.restore(io.BytesIO(data))
    finally:
        target.close()


def test_postgres_recreates_sequences_identity_generated_and_grants(
    tmp_path: Path, postgres_url: str
) -> None:
    write_migration(
        tmp_path,
        1,
        "kinds",
        {
            "migration.yaml": "scope: [items, tagged]\n",
            "up.sql": """
                CREATE TABLE items (
                    id SERIAL PRIMARY KEY,
                    code INTEGER GENERATED BY DEFAULT AS IDENTITY (START WITH 100) UNIQUE,
                    name TEXT COLLATE "C" NOT NULL CHECK (name <> ''),
                    doubled INTEGER GENERATED ALWAYS AS (id * 2) STORED,
                    payload JSONB DEFAULT '{}'::jsonb,
                    tags TEXT[],
                    blob BYTEA,
                    amount NUMERIC(12, 4),
                    at TIMESTAMPTZ DEFAULT now()
                );
                CREATE INDEX items_name_idx ON items (lower(name));
                CREATE UNLOGGED TABLE tagged (item INTEGER REFERENCES items (id), tag TEXT);
                GRANT SELECT ON items TO PUBLIC;
            """,
            "down.sql": "DROP TABLE tagged;\nDROP TABLE items;\n",
        },
    )
    target = open_target(tmp_path, postgres_url)
    try:
        apply(target, "up", 1)
        sql(
            postgres_url,
            tmp_path,
            "INSERT INTO items (name, payload, tags, blob, amount) VALUES "
            "('a', '{\"k\": [1, 2]}', '{x,y}', '\\x00ff10'::bytea, 12.3456), "
            "('b', NULL, NULL, NULL, NULL), ('c', '{}', '{}', '', -1)",
            "DELETE FROM items WHERE name = 'c'",
            "INSERT INTO tagged VALUES (1, 'first')",
        )
        before = snapshot(postgres_url, tmp_path)
        buf = io.BytesIO()
        target.backup(None, None, buf)
        sql(
            postgres_url,
            tmp_path,
            "ALTER TABLE tagged DROP CONSTRAINT tagged_item_fkey",
            "ALTER TABLE items DROP COLUMN tags",
            "DROP TABLE tagged",
            "REVOKE SELECT ON items FROM PUBLIC",
            "INSERT INTO items (name) VALUES ('d')",
        )
        detail = target.restore(io.BytesIO(buf.getvalue())).detail
        assert sorted(detail["recreated"]) == ["public.items", "public.tagged"]
        assert snapshot(postgres_url, tmp_path) == before
        # sequences continue where they were, not where the discarded rows left them
        assert sql(
            postgres_url, tmp_path, "INSERT INTO items (name) VALUES ('e') RETURNING id, code"
        ) == [(4, 103)]
        assert sql(
            postgres_url,
            tmp_path,
            "SELECT has_table_privilege('public', 'items', 'SELECT'), "
            "(SELECT relpersistence FROM pg_class WHERE relname = 'tagged')",
        ) == [(True, "u")]
    finally:
        target.close()


def test_postgres_restore_never_cascades_into_views(tmp_path: Path, postgres_url: str) -> None:
    seeded(tmp_path, postgres_url, "[roles]")
    data = take_backup(tmp_path, postgres_url)
    sql(
        postgres_url,
        tmp_path,
        "ALTER TABLE roles ADD COLUMN extra INTEGER",
        "CREATE VIEW role_names AS SELECT name, extra FROM roles",
    )
    before = snapshot(postgres_url, tmp_path)
    with pytest.raises(
        TargetError, match="restore: drop: cannot drop table roles because other objects depend"
    ):
        restore(tmp_path, postgres_url, data)
    assert snapshot(postgres_url, tmp_path) == before


def test_sqlite_restore_is_exact(tmp_path: Path) -> None:
    url = "sqlite:///exact.db"
    write_migration(
        tmp_path,
        1,
        "kinds",
        {
            "migration.yaml": "scope: [plain, counted, keyed]\n",
            "up.sql": """
                CREATE TABLE plain (name TEXT, data BLOB, n REAL, big INTEGER);
                CREATE TABLE counted (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
                CREATE TABLE keyed (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
                CREATE VIEW plain_names AS SELECT name FROM plain;
                CREATE INDEX plain_name_idx ON plain (name);
            """,
            "down.sql": "DROP VIEW plain_names;\nDROP TABLE plain;\nDROP TABLE counted;\n"
            "DROP TABLE keyed;\n",
        },
    )
    target = open_target(tmp_path, url)
    try:
        apply(target, "up", 1)
        sql(
            url,
            tmp_path,
            "INSERT INTO plain VALUES ('a', x'00ff', 1.5, 9223372036854775807), "
            "('b', NULL, -0.0, -9223372036854775808), (NULL, x'', 1e308, 0), "
            "('d', 'text, not blob', 0.1, 1)",
            "DELETE FROM plain WHERE name = 'b'",  # a rowid gap
            "INSERT INTO counted (v) VALUES ('1'), ('2'), ('3')",
            "DELETE FROM counted WHERE id = 3",  # AUTOINCREMENT remembers 3
            "INSERT INTO keyed VALUES ('x', 'one'), ('y', 'two')",
        )
        before = snapshot(url, tmp_path)
        buf = io.BytesIO()
        target.backup(step("up", 1, target), migration(target, 1), buf)
        sql(
            url,
            tmp_path,
            "DELETE FROM plain",
            "INSERT INTO plain (name) VALUES ('new')",
            "INSERT INTO counted (v) VALUES ('4'), ('5')",
            "DROP TABLE keyed",
        )
        target.restore(io.BytesIO(buf.getvalue()))
        assert snapshot(url, tmp_path) == before  # rowids, sqlite_sequence, view, index
        assert sql(url, tmp_path, "SELECT typeof(data) FROM plain ORDER BY rowid") == [
            ("blob",),
            ("blob",),
            ("text",),
        ]
        assert sql(url, tmp_path, "INSERT INTO counted (v) VALUES ('n') RETURNING id") == [(4,)]
    finally:
        target.close()
