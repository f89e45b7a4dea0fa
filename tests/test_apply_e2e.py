"""The whole loop from the CLI on the example workspace: apply, seed data, upgrade, roll back,
and the data is exactly as it was; a step that fails half-way leaves data and state as they
were, with the failure and the rollback in the history."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from releasectl.clients.redis import Endpoint
from tests.builders import add_migration, make_workspace, write_release
from tests.conftest import run_cli
from tests.redis_helpers import same_keyspace, snapshot

REDIS_URL = "redis+embedded://.releasectl/local/redis.db"


@contextmanager
def embedded(root: Path) -> Iterator[redis.Redis]:
    endpoint = Endpoint(REDIS_URL, root, name="test")
    try:
        yield endpoint.client()
    finally:
        endpoint.close()  # saves, so the next releasectl process sees the same data


HISTORY_TABLE = "releasectl_schema_history"  # the database's own audit of migrations


def sql_picture(db: Path) -> dict[str, Any]:
    """Schema (sqlite_master) and every row of every table but the migration history, sorted."""
    conn = sqlite3.connect(db)
    try:
        schema = sorted(
            conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
            ).fetchall()
        )
        rows = {
            name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
            for (kind, name, _, _) in schema
            if kind == "table" and name != HISTORY_TABLE
        }
        return {"schema": schema, "rows": rows}
    finally:
        conn.close()


def files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def status(root: Path) -> dict[str, Any]:
    result = run_cli("status", "--format", "json", cwd=root)
    assert result.code == 0, result
    data: dict[str, Any] = json.loads(result.out)
    return data


def versions(root: Path) -> dict[str, Any]:
    return {n: c["version"] for n, c in status(root)["components"].items()}


def history(root: Path) -> list[dict[str, Any]]:
    result = run_cli("history", "--format", "json", cwd=root)
    assert result.code == 0, result
    data: list[dict[str, Any]] = json.loads(result.out)
    return data


def add_database_v2(root: Path) -> None:
    """A second database migration (so the round trip changes SQL too), pinned by 1.1.0."""
    add_migration(
        root,
        "database",
        "0002_mfa_devices",
        {
            "up.sql": """
            CREATE TABLE mfa_devices (
                id         INTEGER PRIMARY KEY,
                user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                kind       VARCHAR(16) NOT NULL,
                created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
            );
            CREATE INDEX mfa_devices_user_idx ON mfa_devices (user_id);
            INSERT INTO roles (id, name, description) VALUES (4, 'auditor', 'Reads the audit log');
        """,
            "down.sql": """
            DELETE FROM roles WHERE id = 4;
            DROP INDEX mfa_devices_user_idx;
            DROP TABLE mfa_devices;
        """,
        },
    )
    manifest = root / "releases/1.1.0.yaml"
    manifest.write_text(
        manifest.read_text().replace("database: {version: 1}", "database: {version: 2}")
    )


def test_upgrade_then_rollback_restores_data_exactly(example: Path) -> None:
    add_database_v2(example)
    first = run_cli("apply", "--release", "1.0.0", "--yes", cwd=example)
    assert first.code == 0, first
    assert versions(example) == {
        "config": 1,
        "database": 1,
        "policies": 1,
        "policy-service": "1.0.0",
        "redis": 1,
        "auth-service": "1.0.0",
    }
    # seed data the migrations must carry through: sessions in the v1 namespace, users
    with embedded(example) as client:
        for n in range(50):
            client.hset(f"session:v1:{n}", mapping={"user": str(n), "scope": "openid"})
            client.expire(f"session:v1:{n}", 3600)
        client.set("unrelated:key", "kept")
        before_redis = snapshot(client)
    db = example / ".releasectl/local/platform.db"
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO users (id, email, display_name) VALUES (?, ?, ?)",
            [(n, f"user{n}@example.com", f"User {n}") for n in range(1, 21)],
        )
    before_sql = sql_picture(db)
    before_config = files(example / "deploy/local/config")
    before_policies = files(example / "deploy/local/policies")

    upgrade = run_cli("apply", "--yes", cwd=example)
    assert upgrade.code == 0, upgrade
    assert versions(example) == {
        "config": 2,
        "database": 2,
        "policies": 1,
        "policy-service": "1.1.0",
        "redis": 2,
        "auth-service": "1.3.0",
    }
    with embedded(example) as client:
        assert client.exists("session:v1:7") == 0
        assert client.hget("session:v2:7", "user") == b"7"
        assert client.hget("monitoring:thresholds", "failed_logins_per_minute") == b"50"
    assert "mfa_devices" in sql_picture(db)["rows"]
    assert files(example / "deploy/local/config") != before_config

    back = run_cli("plan", "--release", "1.0.0", "--format", "json", cwd=example)
    steps = [(s["component"], s["action"]) for s in json.loads(back.out)["steps"]]
    assert steps == [
        ("auth-service", "deploy"),
        ("redis", "down"),
        ("policy-service", "deploy"),
        ("database", "down"),
        ("config", "down"),
    ]
    down = run_cli("apply", "--release", "1.0.0", "--yes", cwd=example)
    assert down.code == 0, down
    with embedded(example) as client:
        assert same_keyspace(before_redis, snapshot(client)) == []
    assert sql_picture(db) == before_sql
    assert files(example / "deploy/local/config") == before_config
    assert files(example / "deploy/local/policies") == before_policies
    assert status(example)["release"] == "1.0.0"

    again = run_cli("apply", "--release", "1.0.0", "--yes", cwd=example)
    assert again.code == 0 and "No changes" in again.out
    serial = status(example)["serial"]
    assert run_cli("apply", "--release", "1.0.0", "--yes", cwd=example).code == 0
    assert status(example)["serial"] == serial
    verify = run_cli("history", "--verify", cwd=example)
    assert verify.code == 0, verify


def test_saved_plan_applies_once_and_goes_stale(example: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert run_cli("plan", "--release", "1.0.0", "--out", plan, cwd=example).code == 0
    other = tmp_path / "other.json"
    assert run_cli("plan", "--release", "1.0.0", "--out", other, cwd=example).code == 0
    applied = run_cli("apply", plan, "--yes", cwd=example)
    assert applied.code == 0, applied
    again = run_cli("apply", plan, "--yes", cwd=example)
    assert again.code == 3 and "state of 'local' moved on" in again.err
    stale = run_cli("apply", other, "--yes", cwd=example)
    assert stale.code == 3, stale
    doc = json.loads(other.read_text())
    doc["steps"] = doc["steps"][:1]
    other.write_text(json.dumps(doc))
    edited = run_cli("apply", other, "--yes", cwd=example)
    # stale and edited: the state that moved on is named first (tests/test_saved_plans.py
    # covers edits of a fresh plan)
    assert edited.code == 3 and "state of 'local' moved on" in edited.err


def test_plan_goes_stale_when_a_migration_changes(example: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert run_cli("plan", "--out", plan, cwd=example).code == 0
    up = example / "migrations/redis/0001_initial_settings/up.yaml"
    up.write_text(up.read_text() + "  - set: {key: extra, value: '1'}\n")
    result = run_cli("apply", plan, "--yes", cwd=example)
    assert result.code == 3
    assert "migrations/redis/0001_initial_settings changed since it was planned" in result.err
    assert status(example)["serial"] == 0


def _failing_redis_migration(root: Path) -> None:
    add_migration(
        root,
        "redis",
        "0003_broken",
        {
            "up.yaml": """
            ops:
              - set: {key: "feature:flags", value: "on"}
              - hset: {key: "config:auth", fields: {mfa_required: "true"}}
              - hset: {key: "schema:redis:version", fields: {oops: "wrong type"}}
              - set: {key: "never:reached", value: "x"}
        """,
            "down.yaml": """
            ops:
              - del: {keys: ["feature:flags", "never:reached"]}
              - hdel: {key: "config:auth", fields: [mfa_required]}
        """,
        },
    )


def test_failing_redis_step_is_rolled_back(example: Path) -> None:
    assert run_cli("apply", "--yes", cwd=example).code == 0
    _failing_redis_migration(example)
    with embedded(example) as client:
        before = snapshot(client)
    before_status = status(example)
    result = run_cli("migrate", "redis", "3", "--yes", cwd=example)
    assert result.code == 1, result
    assert "step 1 failed during run: redis up 2 -> 3 (0003_broken)" in result.err
    assert "WRONGTYPE" in result.err
    assert "rolled back" in result.err
    with embedded(example) as client:
        assert same_keyspace(before, snapshot(client)) == []
    after_status = status(example)
    assert after_status["components"] == before_status["components"]
    assert after_status["dirty"] is False
    entries = history(example)
    assert [(e["action"], e["result"]) for e in entries[-3:]] == [
        ("backup", "success"),
        ("up", "failed"),
        ("rollback", "success"),
    ]
    assert "WRONGTYPE" in entries[-2]["error"]


def test_failing_sqlite_step_is_rolled_back(example: Path) -> None:
    assert run_cli("apply", "--yes", cwd=example).code == 0
    add_migration(
        example,
        "database",
        "0002_half_way",
        {
            "up.sql": """
            CREATE TABLE api_keys (id INTEGER PRIMARY KEY, owner INTEGER NOT NULL);
            INSERT INTO roles (id, name, description) VALUES (9, 'temp', 'x');
            INSERT INTO roles (id, name, description) VALUES (1, 'duplicate', 'fails');
        """,
            "down.sql": "DROP TABLE api_keys;\nDELETE FROM roles WHERE id = 9;\n",
        },
    )
    db = example / ".releasectl/local/platform.db"
    before = sql_picture(db)
    before_status = status(example)
    result = run_cli("migrate", "database", "2", "--yes", cwd=example)
    assert result.code == 1, result
    assert "UNIQUE constraint failed" in result.err
    assert sql_picture(db) == before
    assert status(example)["components"] == before_status["components"]
    assert history(example)[-2]["result"] == "failed"


def _postgres_workspace(root: Path, url: str) -> Path:
    return make_workspace(
        root,
        components={"db": {"type": "sql"}},
        targets={"db": {"url": url}},
        releases={"1.0.0": {"db": 1}, "1.1.0": {"db": 2}},
        migrations={
            "db": {
                "0001_accounts": {
                    "up.sql": "CREATE TABLE accounts (id SERIAL PRIMARY KEY, name TEXT NOT NULL);\n"
                    "INSERT INTO accounts (name) VALUES ('alice'), ('bob');\n",
                    "down.sql": "DROP TABLE accounts;\n",
                },
                "0002_half_way": {
                    "up.sql": "ALTER TABLE accounts ADD COLUMN email TEXT;\n"
                    "UPDATE accounts SET email = name || '@example.com';\n"
                    "ALTER TABLE accounts ADD CONSTRAINT one_name CHECK (name = 'x');\n",
                    "down.sql": "ALTER TABLE accounts DROP COLUMN email;\n",
                },
            }
        },
    )


def test_failing_postgres_step_is_rolled_back(tmp_path: Path, postgres_url: str) -> None:
    import psycopg

    root = _postgres_workspace(tmp_path / "ws", postgres_url)
    assert run_cli("apply", "--release", "1.0.0", "--yes", cwd=root).code == 0

    def picture() -> Any:
        with psycopg.connect(postgres_url) as conn:
            cols = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'accounts' ORDER BY column_name"
            ).fetchall()
            rows = conn.execute("SELECT * FROM accounts ORDER BY id").fetchall()
            return cols, rows

    before = picture()
    result = run_cli("apply", "--yes", cwd=root)
    assert result.code == 1, result
    assert "one_name" in result.err
    assert picture() == before
    assert versions(root) == {"db": 1}
    assert [e["result"] for e in history(root)[-2:]] == ["failed", "success"]


def test_failing_script_step_restores_scope_and_runs_down(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path / "ws",
        components={"hooks": {"type": "script"}},
        targets={"hooks": {"env": {"GREETING": "hello"}}},
        releases={"1.0.0": {"hooks": 1}},
        migrations={
            "hooks": {
                "0001_half_way": {
                    "migration.yaml": "scope: [data/config.txt]\n",
                    "up.sh": """
                set -e
                echo "$GREETING from $RELEASECTL_COMPONENT" > data/config.txt
                echo "step output"
                exit 7
            """,
                    "down.sh": "echo down-ran > data/down-marker\n",
                }
            }
        },
    )
    (root / "data").mkdir()
    (root / "data/config.txt").write_text("original\n")
    result = run_cli("apply", "--yes", cwd=root)
    assert result.code == 1, result
    assert "exit" in result.err and "7" in result.err
    assert (root / "data/config.txt").read_text() == "original\n"
    assert versions(root) == {"hooks": 0}
    entries = history(root)
    assert entries[-2]["result"] == "failed" and entries[-1]["action"] == "rollback"


def test_encrypted_backups_need_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_workspace(
        tmp_path / "ws",
        components={"cache": {"type": "redis"}},
        targets={"cache": {"url": "redis+embedded://.releasectl/local/cache.db"}},
        releases={"1.0.0": {"cache": 1}},
        migrations={
            "cache": {
                "0001_init": {
                    "up.yaml": "ops:\n  - set: {key: a, value: '1'}\n",
                    "down.yaml": "ops:\n  - del: {keys: [a]}\n",
                }
            }
        },
        env={"backups": {"encrypt": True}},
    )
    refused = run_cli("apply", "--yes", cwd=root)
    assert refused.code == 1 and "set RELEASECTL_BACKUP_KEY" in refused.err
    assert versions(root) == {"cache": 0}
    import base64
    import os

    monkeypatch.setenv("RELEASECTL_BACKUP_KEY", base64.b64encode(os.urandom(32)).decode())
    assert run_cli("apply", "--yes", cwd=root).code == 0
    listing = json.loads(run_cli("backup", "--list", "--format", "json", cwd=root).out)
    assert listing and all(b["encrypted"] for b in listing)


def test_backup_and_restore_commands(example: Path) -> None:
    assert run_cli("apply", "--yes", cwd=example).code == 0
    made = run_cli("backup", "redis", "--format", "json", cwd=example)
    assert made.code == 0, made
    backup_id = json.loads(made.out)["id"]
    with embedded(example) as client:
        before = snapshot(client)
        client.hset("config:auth", "session_ttl_seconds", "1")
        client.delete("rbac:roles")
        client.set("outside:scope", "x")  # no migration names it: not in the backup
    listing = run_cli("backup", "--list", "redis", cwd=example)
    assert backup_id in listing.out and "sha256:" in listing.out
    restored = run_cli("restore", "redis", backup_id, "--yes", cwd=example)
    assert restored.code == 0, restored
    with embedded(example) as client:
        assert client.get("outside:scope") == b"x"
        client.delete("outside:scope")
        assert same_keyspace(before, snapshot(client)) == []
    wrong = run_cli("restore", "database", backup_id, "--yes", cwd=example)
    assert wrong.code == 1 and "belongs to 'redis'" in wrong.err
    assert [e["action"] for e in history(example)[-2:]] == ["backup", "restore"]


def test_service_deploy_renders_image(example: Path) -> None:
    assert run_cli("apply", "--yes", cwd=example).code == 0
    text = (example / "deploy/local/services/deployment-auth-service.yaml").read_text()
    assert "ghcr.io/rust-security/auth-service:1.3.0" in text


def test_release_pin_and_write_release(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path / "ws",
        components={"db": {"type": "sql"}},
        targets={"db": {"url": "sqlite:///.releasectl/local/db.sqlite"}},
        releases={"1.0.0": {"db": 1}},
        migrations={
            "db": {
                "0001_t": {
                    "up.sql": "CREATE TABLE t (id INTEGER);\n",
                    "down.sql": "DROP TABLE t;\n",
                }
            }
        },
        env={"release": "1.0.0"},
    )
    write_release(root, "1.1.0", {"db": 1})
    out = run_cli("plan", "--format", "json", cwd=root)
    assert json.loads(out.out)["release"]["to"] == "1.0.0"


def test_atomic_apply_undoes_completed_steps(example: Path) -> None:
    # the last redis step fails its verify: without --atomic the first six steps stay applied
    verify = example / "migrations/redis/0002_monitoring_performance/verify.yaml"
    verify.write_text(verify.read_text().replace('equals: "50"', 'equals: "51"'))
    result = run_cli("apply", "--yes", "--atomic", cwd=example)
    assert result.code == 1, result
    assert "step 7 failed during verify" in result.err
    assert "--atomic: undid the 6 step(s)" in result.err
    shown = status(example)
    assert shown["dirty"] is False and shown["release"] is None
    assert all(
        c["version"] in (0, None) and c["applied"] == [] for c in shown["components"].values()
    ), shown
    assert sorted(p.name for p in (example / "deploy/local/config").glob("*")) == []
    assert not any((example / "deploy/local/services").glob("*.yaml"))
    with embedded(example) as client:
        assert sorted(client.scan_iter()) == []
    assert list(sql_picture(example / ".releasectl/local/platform.db")["rows"]) == []
    rollbacks = [e for e in history(example) if e["action"] == "rollback"]
    assert len(rollbacks) == 7  # the failed step, then the six completed ones
    assert [e["component"] for e in rollbacks[1:]] == [
        "redis",
        "policy-service",
        "policies",
        "database",
        "config",
        "config",
    ]

    plain = run_cli("apply", "--yes", cwd=example)
    assert plain.code == 1
    assert versions(example)["config"] == 2  # without --atomic the earlier steps stay
