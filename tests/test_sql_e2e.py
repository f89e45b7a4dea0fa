"""`releasectl apply` end to end with a SQLite `sql` component and a `script` component: the
engine drives the targets, and a failed verify is rolled back without touching the state."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

from tests.conftest import git, init_repo, run_cli

WORKSPACE = """
apiVersion: releasectl/v1
kind: Workspace
name: mini
components:
  database: {type: sql}
  hooks: {type: script, needs: [database]}
environments:
  local:
    state: {backend: file}
    targets:
      database: {url: "sqlite:///.releasectl/local/app.db"}
      hooks: {env: {GREETING: hello}}
"""


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))


def release(root: Path, version: str, database: int, hooks: int) -> None:
    write(
        root,
        f"releases/{version}.yaml",
        f"""
        apiVersion: releasectl/v1
        kind: Release
        version: {version}
        components:
          database: {{version: {database}}}
          hooks: {{version: {hooks}}}
        """,
    )


def history(root: Path) -> list[tuple[str, str, int]]:
    conn = sqlite3.connect(root / ".releasectl/local/app.db")
    try:
        return conn.execute(
            "SELECT migration, direction, schema_version FROM releasectl_schema_history "
            "ORDER BY installed_rank"
        ).fetchall()
    finally:
        conn.close()


def test_apply_sql_and_script_then_a_failing_verify(tmp_path: Path) -> None:
    ws = init_repo(tmp_path / "ws")
    write(ws, "releasectl.yaml", WORKSPACE)
    write(
        ws,
        "migrations/database/0001_users/up.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);\n",
    )
    write(ws, "migrations/database/0001_users/down.sql", "DROP TABLE users;\n")
    write(ws, "migrations/database/0001_users/verify.sql", "SELECT COUNT(*) = 0 FROM users\n")
    write(ws, "migrations/hooks/0001_seed/migration.yaml", "scope: [generated]\n")
    write(
        ws,
        "migrations/hooks/0001_seed/up.sh",
        'mkdir -p generated && echo "$GREETING from $RELEASECTL_MIGRATION" > generated/seed.txt\n'
        'echo "seeded"\n',
    )
    write(ws, "migrations/hooks/0001_seed/down.sh", "rm -rf generated\n")
    release(ws, "1.0.0", 1, 1)
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "feat: v1")

    result = run_cli("apply", "--yes", cwd=ws)
    assert result.code == 0, result
    assert (ws / "generated/seed.txt").read_text() == "hello from 0001_seed\n"
    assert history(ws) == [("0001_users", "up", 1)]
    status = run_cli("status", "--format", "json", cwd=ws)
    assert json.loads(status.out)["components"]["database"]["version"] == 1

    # 1.1.0: a migration whose verify.sql fails after up.sql committed
    write(
        ws,
        "migrations/database/0002_locale/up.sql",
        "ALTER TABLE users ADD COLUMN locale TEXT DEFAULT 'en';\n"
        "INSERT INTO users (id, email) VALUES (1, 'a@example.com');\n",
    )
    write(
        ws,
        "migrations/database/0002_locale/down.sql",
        "DELETE FROM users WHERE id = 1;\nALTER TABLE users DROP COLUMN locale;\n",
    )
    write(ws, "migrations/database/0002_locale/verify.sql", "SELECT COUNT(*) = 2 FROM users\n")
    release(ws, "1.1.0", 2, 1)
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "feat: locale")
    state_before = (ws / ".releasectl/state/local.json").read_text()

    result = run_cli("apply", "--yes", cwd=ws)
    assert result.code == 1, result
    assert (
        "0002_locale/verify.sql:1: verify.sql: the first column of the first row is" in result.err
    )
    assert "rolled back: ran down.sql; recorded state is unchanged" in result.err
    assert history(ws) == [
        ("0001_users", "up", 1),
        ("0002_locale", "up", 2),
        ("0002_locale", "down", 1),
    ]
    state = json.loads((ws / ".releasectl/state/local.json").read_text())
    assert state["components"] == json.loads(state_before)["components"]
    assert state["journal"] is None
    conn = sqlite3.connect(ws / ".releasectl/local/app.db")
    try:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(users)").fetchall()]
    finally:
        conn.close()
    assert columns == ["id", "email"]
