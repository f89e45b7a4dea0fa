"""`plan --rehearse` on a real PostgreSQL database (RELEASECTL_TEST_POSTGRES_URL): the copy is
a temporary database loaded from a schema-and-data dump of the scope, dropped afterwards; a
reversible migration rolls back exactly, a DROP COLUMN does not and says what it lost; the
PostgreSQL-only locking rules apply; the real database is exactly what it was."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.builders import make_workspace
from tests.conftest import POSTGRES_ENV, REPO, run_cli

pytestmark = pytest.mark.postgres

INITIAL = REPO / "migrations/database/0001_initial_schema"
MFA_UP = """
CREATE TABLE mfa_devices (
    id      INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind    VARCHAR(16) NOT NULL
);
INSERT INTO roles (id, name, description) VALUES (4, 'auditor', 'Reads the audit log');
UPDATE users SET display_name = 'Alice A.' WHERE id = 1;
"""
MFA_DOWN = """
UPDATE users SET display_name = 'Alice' WHERE id = 1;
DELETE FROM roles WHERE id = 4;
DROP TABLE mfa_devices;
"""
DROP_UP = """ALTER TABLE users DROP COLUMN password_hash;
CREATE INDEX users_display_idx ON users (display_name);
"""
DROP_DOWN = """DROP INDEX users_display_idx;
ALTER TABLE users ADD COLUMN password_hash VARCHAR(255);
"""


def workspace(root: Path, url: str, up: str, down: str) -> Path:
    initial = {p.name: p.read_text() for p in INITIAL.iterdir()}
    return make_workspace(
        root,
        components={"database": {"type": "sql"}},
        targets={"database": {"url": url}},
        releases={"1.0.0": {"database": 1}, "1.1.0": {"database": 2}},
        migrations={
            "database": {
                "0001_initial_schema": initial,
                "0002_change": {"up.sql": up, "down.sql": down},
            }
        },
    )


def seeded(root: Path, url: str) -> None:
    result = run_cli("apply", "--release", "1.0.0", "--yes", cwd=root)
    assert result.code == 0, result
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (id, email, display_name, password_hash) VALUES "
            "(1, 'alice@example.com', 'Alice', 'h1'), (2, 'bob@example.com', 'Bob', NULL)"
        )
        conn.execute(
            "INSERT INTO sessions (id, user_id, expires_at) VALUES ('s1', 1, '2030-01-01')"
        )


def picture(url: str) -> dict[str, Any]:
    """Columns, constraints, indexes and every row of every table, history included."""
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                "ORDER BY 1"
            )
        ]
        out: dict[str, Any] = {
            "columns": conn.execute(
                "SELECT table_name, column_name, ordinal_position, data_type, is_nullable "
                "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 3"
            ).fetchall(),
            "indexes": conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
            ).fetchall(),
        }
        for table in tables:
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            out[table] = sorted(map(repr, rows))
        return out


def temporary_database(doc: dict[str, Any]) -> str:
    (copy,) = doc["rehearsal"]["copies"]
    kind, _, name = copy["kind"].rpartition(" ")
    assert kind == "temporary PostgreSQL database" and name.startswith("releasectl_rehearsal_")
    return str(name)


def rehearsal_databases() -> list[str]:
    with psycopg.connect(os.environ[POSTGRES_ENV]) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'releasectl_rehearsal_%'"
            )
        ]


def rehearsed(root: Path) -> tuple[int, dict[str, Any]]:
    result = run_cli("plan", "--rehearse", "--format", "json", cwd=root)
    assert result.out, result
    data: dict[str, Any] = json.loads(result.out)
    return result.code, data


def test_a_reversible_migration_rolls_back_exactly(tmp_path: Path, postgres_url: str) -> None:
    root = workspace(tmp_path / "ws", postgres_url, MFA_UP, MFA_DOWN)
    seeded(root, postgres_url)
    before = picture(postgres_url)
    code, doc = rehearsed(root)
    assert code == 0, doc
    assert picture(postgres_url) == before
    assert temporary_database(doc) not in rehearsal_databases()  # dropped afterwards
    (step,) = doc["rehearsal"]["steps"]
    assert (step["status"], step["run"], step["verify"], step["rollback"]) == (
        "ok",
        "ok",
        "ok",
        "exact",
    )
    (copy,) = doc["rehearsal"]["copies"]
    # the tables the parts name, and the history table the target checks its version in
    assert sorted(copy["scope"]) == [
        "public.releasectl_schema_history",
        "public.roles",
        "public.users",
    ]
    assert copy["items"] == 2 + 3 + 1  # users, roles, the history row


def test_a_drop_column_is_called_out_and_its_loss_shown(tmp_path: Path, postgres_url: str) -> None:
    root = workspace(tmp_path / "ws", postgres_url, DROP_UP, DROP_DOWN)
    seeded(root, postgres_url)
    before = picture(postgres_url)
    code, doc = rehearsed(root)
    assert code == 1
    assert picture(postgres_url) == before
    assert temporary_database(doc) not in rehearsal_databases()
    (step,) = doc["rehearsal"]["steps"]
    assert (step["run"], step["verify"], step["rollback"]) == ("ok", "ok", "differs")
    assert {d["what"] for d in step["differences"]} == {
        "table public.users",
        "rows of public.users",
    }
    (analysis,) = doc["analysis"]["steps"]
    assert [(f["rule"], f["severity"], f["file"], f["line"]) for f in analysis["sql"]] == [
        ("ban-drop-column", "destructive", "migrations/database/0002_change/up.sql", 1),
        (
            "require-concurrent-index-creation",
            "locking",
            "migrations/database/0002_change/up.sql",
            2,
        ),
    ]
    assert analysis["data"] == [
        {"table": "public.users", "change": "column dropped", "column": "password_hash", "rows": 1}
    ]
    comment = run_cli("plan", "--rehearse", "--format", "markdown", cwd=root)
    assert "column `public.users.password_hash` dropped: 1 row(s) held a value" in comment.out
    assert (
        ":lock: `migrations/database/0002_change/up.sql:2` **require-concurrent-index-creation**"
        in comment.out
    )
    assert picture(postgres_url) == before


def test_a_server_refusing_the_temporary_database_is_not_rehearsed(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = workspace(tmp_path / "ws", postgres_url, MFA_UP, MFA_DOWN)
    doc_path = root / "releasectl.yaml"
    data = json.loads(doc_path.read_text())
    data["environments"]["local"]["rehearsal"] = {"postgres_url": "${REHEARSAL_PG}"}
    doc_path.write_text(json.dumps(data))
    seeded(root, postgres_url)
    monkeypatch.setenv("REHEARSAL_PG", "postgresql://nobody@127.0.0.1:1/none")
    code, doc = rehearsed(root)
    assert code == 0
    (step,) = doc["rehearsal"]["steps"]
    assert step["status"] == "not-rehearsed"
    assert (
        # the URL's user is masked by the redaction seam like any credential
        "cannot create the rehearsal's temporary database on postgresql://***@127.0.0.1:1/none"
        in step["reason"]
    )
