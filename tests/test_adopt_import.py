"""`import-legacy`: the old framework's tree (tests/legacy_tree.py) round-tripped against the
embedded Redis and SQLite it ran on: import, status, the next release's plan and apply, the
way back, the history CSV, and the inputs it must refuse without changing anything."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from releasectl.adopt.plan import plan_import
from releasectl.clients.redis import Endpoint
from tests.builders import add_migration, write_release
from tests.conftest import run_cli
from tests.legacy_tree import HISTORY, build_tree, run_old_framework

WORKSPACE = """\
# The platform, moving in from migration-framework.sh (this comment must survive the import)
apiVersion: releasectl/v1
kind: Workspace
name: moving-in
components:
  redis: {type: redis}
  database: {type: sql}
environments:
  local:
    state: {backend: file}
    targets:
      redis: {url: "redis+embedded://.releasectl/local/redis.db"}
      database: {url: "sqlite:///.releasectl/local/platform.db"}
"""
REDIS_URL = "redis+embedded://.releasectl/local/redis.db"
DB = ".releasectl/local/platform.db"
HISTORY_ROWS = HISTORY.splitlines()[1:]


@pytest.fixture
def moving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A workspace whose local Redis and SQLite the old framework brought to version 2, and
    the old tree beside it (../legacy)."""
    build_tree(tmp_path / "legacy")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "releasectl.yaml").write_text(WORKSPACE)
    with redis_client(ws) as client:
        run_old_framework(client, ws / DB)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "rbac.cedar").write_text("permit(principal, action, resource);\n")
    (policies / "guard.cedar").write_text("forbid(principal, action, resource);\n")
    monkeypatch.setenv("POLICY_DIR", str(policies))
    yield ws


@contextlib.contextmanager
def redis_client(ws: Path) -> Iterator[redis.Redis]:
    endpoint = Endpoint(REDIS_URL, ws, name="test")
    try:
        yield endpoint.client(decode=True)
    finally:
        endpoint.close()


def tables(ws: Path) -> dict[str, list[str]]:
    with sqlite3.connect(ws / DB) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out = {n: [c[1] for c in conn.execute(f"PRAGMA table_info({n})")] for n in names}
    conn.close()
    return out


_RUNTIME = (".releasectl/local/", ".releasectl/locks/", ".releasectl/cache/")


def tree_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).as_posix().startswith(_RUNTIME)
    }


def imported(ws: Path, *args: str) -> None:
    result = run_cli("import-legacy", "../legacy", *args, cwd=ws)
    assert result.code == 0, result


def test_dry_run_says_everything_and_changes_nothing(moving: Path) -> None:
    before = tree_files(moving)
    result = run_cli("import-legacy", "../legacy", "--dry-run", "--format", "json", cwd=moving)
    assert result.code == 0, result
    report = json.loads(result.out)
    assert tree_files(moving) == before
    assert not (moving / ".releasectl/state").exists()
    assert report["dry_run"] is True and report["release"] == "1.0.0"
    assert {
        n: (c["type"], c["version"], c["migrations"]) for n, c in report["components"].items()
    } == {
        "config": ("script", 1, ["0001_base_config"]),
        "database": ("sql", 2, ["0001_initial_schema", "0002_user_locale"]),
        "policies": ("script", 2, ["0001_rbac", "0002_guardrails"]),
        "redis": ("redis", 2, ["0001_initial_settings", "0002_monitoring"]),
    }
    assert report["history_rows"] == 16
    noted = {n["path"].removeprefix("../legacy/"): n["message"] for n in report["notes"]}
    assert noted["scripts/migrations/migrations/config/manifests/base.yaml"].endswith("not mapped")
    assert "backup file(s)" in noted["scripts/migrations/backups"]
    assert "kubectl-apply" in noted["scripts/migrations/migrations/config"]
    assert "POLICY_DIR" in noted["migrations/policies"]


def test_round_trip_import_status_plan_apply_and_back(moving: Path) -> None:
    imported(moving)
    # the workspace: its comment kept, the script components and their targets added
    text = (moving / "releasectl.yaml").read_text()
    assert text.startswith("# The platform, moving in")
    assert "  config: {type: script}" in text and "      policies: {}" in text
    up = (moving / "migrations/database/0002_user_locale/up.sql").read_text()
    assert "ALTER TABLE users ADD COLUMN locale" in up and "BEGIN" not in up
    meta = (moving / "migrations/redis/0001_initial_settings/migration.yaml").read_text()
    assert "description: Initial settings" in meta
    old_up = moving.parent / "legacy/scripts/migrations/migrations/policies/v1_rbac.sh"
    assert (moving / "migrations/policies/0001_rbac/up.sh").read_bytes() == old_up.read_bytes()
    assert run_cli("validate", cwd=moving).code == 0

    # status shows the old versions, every old migration applied
    status = json.loads(run_cli("status", "--format", "json", cwd=moving).out)
    assert status["release"] == "1.0.0"
    assert {n: (c["version"], c["applied"]) for n, c in status["components"].items()} == {
        "config": (1, ["0001_base_config"]),
        "database": (2, ["0001_initial_schema", "0002_user_locale"]),
        "policies": (2, ["0001_rbac", "0002_guardrails"]),
        "redis": (2, ["0001_initial_settings", "0002_monitoring"]),
    }
    # the history: the old rows give back the old file; the chain starts with them
    csv = run_cli("history", "--format", "csv", cwd=moving)
    assert csv.out.splitlines() == HISTORY_ROWS
    entries = json.loads(run_cli("history", "--format", "json", cwd=moving).out)
    assert [e["seq"] for e in entries] == list(range(1, 22))
    assert all(e["imported"] for e in entries[:16])
    assert entries[7]["action"] == "up" and entries[7]["result"] == "failed"
    assert entries[9]["details"] == {"event": "rollback_completed"}
    assert (entries[9]["from"], entries[9]["to"]) == (2, 1)
    assert entries[0]["source"].endswith("state/migration_history.csv:2")
    assert [(e["action"], e.get("component")) for e in entries[16:]] == [
        ("baseline", "config"),
        ("baseline", "database"),
        ("baseline", "policies"),
        ("baseline", "redis"),
        ("import", None),
    ]
    assert entries[19]["details"] == {"target": "2"}  # Redis' schema key agreed
    assert run_cli("history", "--verify", cwd=moving).code == 0
    # the database's own history table now says 2: a baseline row
    with sqlite3.connect(moving / DB) as conn:
        rows = conn.execute(
            "SELECT component, direction, schema_version FROM releasectl_schema_history"
        ).fetchall()
    conn.close()
    assert rows == [("database", "baseline", 2)]

    # the next release: native migrations on top of the imported ones
    add_migration(
        moving,
        "redis",
        "0003_rate_limits",
        {
            "up.yaml": 'ops:\n  - hset: {key: "ratelimit:tiers", fields: {user: "100"}}\n'
            '  - set: {key: "schema:redis:version", value: "3"}\n',
            "down.yaml": 'ops:\n  - del: {keys: ["ratelimit:tiers"]}\n'
            '  - set: {key: "schema:redis:version", value: "2"}\n',
        },
    )
    add_migration(
        moving,
        "database",
        "0003_audit",
        {
            "up.sql": "CREATE TABLE audit (id INTEGER PRIMARY KEY);\n",
            "down.sql": "DROP TABLE audit;\n",
        },
    )
    write_release(
        moving,
        "1.1.0",
        {"config": 1, "database": 3, "policies": 2, "redis": 3},
        upgrades_from=">=1.0.0,<1.1.0",
    )
    plan = json.loads(run_cli("plan", "--format", "json", cwd=moving).out)
    assert [
        (s["component"], s["action"], s["from"], s["to"], s["migration"]) for s in plan["steps"]
    ] == [
        ("database", "up", 2, 3, "0003_audit"),
        ("redis", "up", 2, 3, "0003_rate_limits"),
    ]
    result = run_cli("apply", "--yes", cwd=moving)
    assert result.code == 0, result
    assert "audit" in tables(moving)
    with redis_client(moving) as client:
        assert client.hgetall("ratelimit:tiers") == {"user": "100"}
        assert client.get("schema:redis:version") == "3"

    # and back: the release, then into the imported migrations (their converted rollbacks)
    result = run_cli("apply", "--release", "1.0.0", "--yes", cwd=moving)
    assert result.code == 0, result
    assert "audit" not in tables(moving)
    for component in ("database", "redis", "policies"):
        result = run_cli("rollback", component, "1", "--yes", cwd=moving)
        assert result.code == 0, result
    assert tables(moving)["users"] == ["id", "email"]
    with redis_client(moving) as client:
        assert client.exists("monitoring:thresholds") == 0
        assert client.get("schema:redis:version") == "1"
        assert client.smembers("rbac:roles") == {"admin", "operator", "viewer"}
    policies = moving.parent / "policies"
    assert sorted(p.name for p in policies.iterdir()) == ["rbac.cedar"]
    status = json.loads(run_cli("status", "--format", "json", cwd=moving).out)
    assert {n: c["version"] for n, c in status["components"].items()} == {
        "config": 1,
        "database": 1,
        "policies": 1,
        "redis": 1,
    }
    assert run_cli("history", "--verify", cwd=moving).code == 0
    assert run_cli("history", "--format", "csv", cwd=moving).out.splitlines()[:16] == HISTORY_ROWS


def test_into_a_directory_without_a_workspace(tmp_path: Path) -> None:
    build_tree(tmp_path / "legacy")
    ws = tmp_path / "platform"
    ws.mkdir()
    result = run_cli("import-legacy", "../legacy", cwd=ws)
    assert result.code == 0, result
    text = (ws / "releasectl.yaml").read_text()
    assert "name: platform" in text
    assert "  redis: {type: script}" in text
    assert "`--type redis=redis` imports the component as type redis" in result.out
    assert "`--type database=sql` imports the component as type sql" in result.out
    assert run_cli("validate", cwd=ws).code == 0
    status = json.loads(run_cli("status", "-f", "json", cwd=ws).out)
    assert status["release"] == "1.0.0"
    assert status["components"]["database"]["version"] == 2


def test_the_connection_of_native_scripts_becomes_the_target(tmp_path: Path) -> None:
    build_tree(tmp_path / "legacy")
    ws = tmp_path / "platform"
    ws.mkdir()
    result = run_cli(
        "import-legacy",
        "../legacy",
        "--type",
        "redis=redis",
        "--type",
        "database=sql",
        "--dry-run",
        cwd=ws,
    )
    assert result.code == 0, result
    assert list(ws.iterdir()) == []
    types = {"redis": "redis", "database": "sql"}
    plan = plan_import(ws, tmp_path / "legacy", "../legacy", "local", types=types)
    assert plan.components["redis"].target == {
        "url": "redis://${REDIS_HOST:-127.0.0.1}:${REDIS_PORT:-6379}"
    }
    assert plan.components["database"].target == {"url": "sqlite:///${DB_PATH}"}
    assert plan.workspace_text is not None
    assert "redis: {url: 'redis://${REDIS_HOST:-127.0.0.1}:${REDIS_PORT:-6379}'}" in (
        plan.workspace_text
    )


def test_a_target_that_contradicts_the_state_files_refuses_and_leaves_nothing(
    moving: Path,
) -> None:
    with redis_client(moving) as client:
        client.set("schema:redis:version", "1")  # Redis says 1, redis_version says 2
    before = tree_files(moving)
    result = run_cli("import-legacy", "../legacy", cwd=moving)
    assert result.code == 3, result
    assert "redis: the target records version 1, the old state file" in result.err
    assert tree_files(moving) == before
    assert not (moving / ".releasectl/state/local.json").exists()
    assert not (moving / ".releasectl/history/local.jsonl").exists()
    forced = run_cli("import-legacy", "../legacy", "--force", cwd=moving)
    assert forced.code == 0, forced
    entries = json.loads(run_cli("history", "-f", "json", cwd=moving).out)
    redis = next(e for e in entries if e["action"] == "baseline" and e["component"] == "redis")
    assert redis["details"] == {"target": "1", "forced": "true"}


def test_an_environment_with_state_is_not_imported_twice(moving: Path) -> None:
    imported(moving)
    again = run_cli("import-legacy", "../legacy", cwd=moving)
    assert again.code == 1
    assert "already has recorded state or history" in again.err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("state/migration_history.csv", HISTORY.replace("2025-02-03 14:00:03", "yesterday")),
            "state/migration_history.csv:9: timestamp: 'yesterday' is not a time",
        ),
        (
            ("state/migration_history.csv", HISTORY.replace("migration_failed", "exploded")),
            "state/migration_history.csv:9: event: unknown event 'exploded'",
        ),
        (
            ("state/database_version", "two\n"),
            "state/database_version:1: 'two' is not a version (an integer)",
        ),
        (
            ("state/redis_version", "5\n"),
            "state/redis_version:1: version 5, but migrations/redis/ has scripts up to 2",
        ),
        (
            ("migrations/redis/002_monitoring_again.sh", "echo\n"),
            "migrations/redis/v2_monitoring.sh: a second script for version 2",
        ),
        (
            ("migrations/redis/v2_monitoring.sh", "for k in a b; do redis-cli DEL $k; done\n"),
            "migrations/redis/v2_monitoring.sh:1: not plainly redis: `;` makes it more than",
        ),
    ],
)
def test_bad_input_is_located_and_changes_nothing(
    moving: Path, edit: tuple[str, str], message: str
) -> None:
    rel, text = edit
    (moving.parent / "legacy/scripts/migrations" / rel).write_text(text)
    before = tree_files(moving)
    result = run_cli("import-legacy", "../legacy", cwd=moving)
    assert result.code == 1, result
    assert f"../legacy/scripts/migrations/{message}" in result.err, result.err
    assert tree_files(moving) == before
    assert not (moving / ".releasectl/state").exists()


def test_a_history_with_named_columns_keeps_actor_result_and_details(moving: Path) -> None:
    (moving.parent / "legacy/scripts/migrations/state/migration_history.csv").write_text(
        "Date,Component,From,To,Status,User,Ticket\n"
        "2025-01-10T08:00:00Z,database,0,1,success,alice,OPS-1\n"
        "2025-01-11 08:00:00,database,1,2,FAILED,bob,\n"
        "2025-01-11 08:01:00,database,1,2,rolled back,bob,OPS-2\n"
        "2025-01-12 08:00:00,database,1,2,success,alice,OPS-3\n"
    )
    imported(moving)
    entries = json.loads(run_cli("history", "-f", "json", cwd=moving).out)[:4]
    assert [(e["actor"], e["from"], e["to"], e["result"], e.get("details")) for e in entries] == [
        ("alice", 0, 1, "success", {"Ticket": "OPS-1"}),
        ("bob", 1, 2, "failed", None),
        ("bob", 1, 2, "rolled_back", {"Ticket": "OPS-2"}),
        ("alice", 1, 2, "success", {"Ticket": "OPS-3"}),
    ]
    assert entries[0]["time"] == "2025-01-10T08:00:00.000Z"
    assert run_cli("history", "--format", "csv", cwd=moving).out.splitlines()[:4] == [
        "2025-01-10 08:00:00,database,1,migration_completed",
        "2025-01-11 08:00:00,database,2,migration_failed",
        "2025-01-11 08:01:00,database,2,migration_failed",
        "2025-01-12 08:00:00,database,2,migration_completed",
    ]


def test_a_workspace_migration_that_differs_is_not_overwritten(moving: Path) -> None:
    mine = add_migration(
        moving,
        "redis",
        "0001_initial_settings",
        {"up.yaml": 'ops:\n  - set: {key: "mine", value: "1"}\n'},
    )
    before = tree_files(moving)
    result = run_cli("import-legacy", "../legacy", cwd=moving)
    assert result.code == 1, result
    assert (
        "migrations/redis/0001_initial_settings: exists and differs from what the import of "
        "../legacy/scripts/migrations/migrations/redis/v1_initial_settings.sh would write"
    ) in result.err
    assert tree_files(moving) == before
    assert (mine / "up.yaml").read_text() == 'ops:\n  - set: {key: "mine", value: "1"}\n'


def test_a_second_environment_reuses_the_migrations_and_the_release(moving: Path) -> None:
    imported(moving)
    text = (moving / "releasectl.yaml").read_text()
    (moving / "releasectl.yaml").write_text(
        text
        + "  staging:\n    state: {backend: file}\n    targets:\n"
        + '      redis: {url: "redis+embedded://.releasectl/staging/redis.db"}\n'
        + '      database: {url: "sqlite:///.releasectl/staging/platform.db"}\n'
    )
    result = run_cli(
        "import-legacy", "../legacy", "--env", "staging", "--format", "json", cwd=moving
    )
    assert result.code == 0, result
    report = json.loads(result.out)
    changed = [f["path"] for f in report["files"] if f["status"] != "unchanged"]
    assert changed == ["releasectl.yaml"]  # the staging targets of config and policies
    assert report["release"] == "1.0.0"
    staging = json.loads(run_cli("status", "-e", "staging", "-f", "json", cwd=moving).out)
    assert staging["release"] == "1.0.0" and staging["components"]["redis"]["version"] == 2


def test_the_release_written_next_to_existing_ones(moving: Path) -> None:
    text = (moving / "releasectl.yaml").read_text()
    (moving / "releasectl.yaml").write_text(
        text.replace(
            "  database: {type: sql}\n", "  database: {type: sql}\n  api: {type: service}\n"
        )
    )
    write_release(moving, "0.9.0", {"api": "2.1.0"})
    refused = run_cli("import-legacy", "../legacy", cwd=moving)
    assert refused.code == 1
    assert "no release in releases/ pins the old state files' versions (config 1, database 2" in (
        refused.err
    )
    assert "give --release X.Y.Z" in refused.err
    result = run_cli("import-legacy", "../legacy", "--release", "1.0.0", cwd=moving)
    assert result.code == 0, result
    manifest = (moving / "releases/1.0.0.yaml").read_text()
    assert '  api: {version: "2.1.0"}' in manifest and "  redis: {version: 2}" in manifest
    assert run_cli("release", "validate", "1.0.0", cwd=moving).code == 0


def test_imported_rows_are_not_counted_as_runs_of_releasectl(moving: Path) -> None:
    """The old framework's failure and rollback stay in the history, but the metrics count
    what releasectl ran: an import must not look like a failed migration to an alert."""
    imported(moving)
    history = run_cli("history", "--format", "json", cwd=moving)
    entries = json.loads(history.out)
    assert any(e.get("imported") and e.get("result") == "failed" for e in entries)
    text = run_cli("metrics", cwd=moving).out
    assert 'releasectl_step_failures_total{component="database",env="local"} 0.0' in text
    assert 'releasectl_rollbacks_total{component="database",env="local"} 0.0' in text
    assert "releasectl_step_duration_seconds_count" not in text
