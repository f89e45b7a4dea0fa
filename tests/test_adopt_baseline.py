"""`baseline COMPONENT VERSION` on the example's embedded environment (SQLite, embedded Redis,
rendered Kubernetes config, a Cedar directory), on PostgreSQL and on a protected environment;
`Target.recorded_version` of the Kubernetes target in `mode: apply` against the emulator."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from releasectl.errors import TargetError
from tests.builders import make_workspace
from tests.conftest import REPO, run_cli
from tests.k8semu import KubeEmulator

DB = ".releasectl/local/platform.db"


def state(ws: Path, env: str = "local") -> dict[str, Any]:
    path = ws / f".releasectl/state/{env}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def history(ws: Path) -> list[dict[str, Any]]:
    result = run_cli("history", "--format", "json", cwd=ws)
    assert result.code == 0, result
    data: list[dict[str, Any]] = json.loads(result.out)
    return data


def schema_rows(ws: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ws / DB) as conn:
        rows = conn.execute(
            "SELECT component, migration, direction, schema_version "
            "FROM releasectl_schema_history ORDER BY installed_rank"
        ).fetchall()
    conn.close()
    return rows


def legacy_database(ws: Path) -> None:
    """The example's first migration, applied by another tool: tables, no history table."""
    (ws / DB).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(ws / DB) as conn:
        conn.executescript((ws / "migrations/database/0001_initial_schema/up.sql").read_text())
    conn.close()


def test_baseline_of_a_database_another_tool_migrated(example: Path) -> None:
    legacy_database(example)
    result = run_cli("baseline", "database", "1", cwd=example)
    assert result.code == 0, result
    assert "Nothing was run" in result.out and "records no version" in result.out
    recorded = state(example)["components"]["database"]
    assert recorded["version"] == 1
    assert [a["id"] for a in recorded["applied"]] == ["0001_initial_schema"]
    assert schema_rows(example) == [("database", "0001_initial_schema", "baseline", 1)]
    last = history(example)[-1]
    assert (last["action"], last["component"], last.get("from"), last["to"]) == (
        "baseline",
        "database",
        None,
        1,
    )
    assert last["details"] == {"target": "no record"}
    # the release runs everything but the database, whose migration is recorded, not run
    plan = json.loads(run_cli("plan", "--format", "json", cwd=example).out)
    assert "database" not in {s["component"] for s in plan["steps"]}
    applied = run_cli("apply", "--yes", cwd=example)
    assert applied.code == 0, applied
    assert not [e for e in history(example) if e["action"] == "up" and e["component"] == "database"]
    assert run_cli("history", "--verify", cwd=example).code == 0


def test_a_database_that_says_otherwise_refuses_unless_forced(example: Path) -> None:
    assert run_cli("migrate", "database", "1", "--yes", cwd=example).code == 0
    serial = state(example)["serial"]
    refused = run_cli("baseline", "database", "0", cwd=example)
    assert refused.code == 3, refused
    assert "database: the target records version 1, not 0" in refused.err
    assert state(example)["serial"] == serial
    assert state(example)["components"]["database"]["version"] == 1
    assert history(example)[-1]["result"] == "failed"
    forced = run_cli("baseline", "database", "0", "--force", "--format", "json", cwd=example)
    assert forced.code == 0, forced
    report = json.loads(forced.out)
    assert (report["from"], report["to"], report["target"], report["forced"]) == (1, 0, 1, True)
    assert report["stamped"] is True
    assert schema_rows(example)[-1] == ("database", "baseline", "baseline", 0)
    assert state(example)["components"]["database"] == {
        "version": 0,
        "applied": [],
        "updated_at": state(example)["components"]["database"]["updated_at"],
    }
    assert history(example)[-1]["details"] == {"target": "1", "forced": "true"}
    # the database's history and the state agree again: the pre-check lets the step run, and
    # up.sql meets the tables the forced baseline pretended away
    again = run_cli("migrate", "database", "1", "--yes", cwd=example)
    assert again.code == 1
    assert "already exists" in again.err and "the database says version" not in again.err


def test_redis_schema_key_kubernetes_files_and_cedar_store_are_asked(example: Path) -> None:
    for component in ("redis", "config", "policies"):
        assert run_cli("migrate", component, "--yes", cwd=example).code == 0
    cases = {"redis": ("1", 2), "config": ("1", 2), "policies": ("0", 1)}
    for component, (wrong, right) in cases.items():
        result = run_cli("baseline", component, wrong, cwd=example)
        assert result.code == 3, result
        assert f"{component}: the target records version {right}, not {wrong}" in result.err
        agreed = run_cli("baseline", component, str(right), cwd=example)
        assert agreed.code == 0, agreed
        assert f"the target records {right}" in agreed.out
    # rendered files that disagree among themselves are an error, not a guess
    rendered = sorted((example / "deploy/local/config").glob("configmap-*.yaml"))[0]
    text = rendered.read_text()
    rendered.write_text(text.replace("component config, version 2", "component config, version 1"))
    result = run_cli("baseline", "config", "2", cwd=example)
    assert result.code == 1, result
    assert "the objects in deploy/local/config carry different versions" in result.err


def test_service_and_bad_arguments(example: Path) -> None:
    result = run_cli("baseline", "auth-service", "1.3.0", cwd=example)
    assert result.code == 0, result
    assert state(example)["components"]["auth-service"]["version"] == "1.3.0"
    for args, message in [
        (("auth-service", "1.3"), "'1.3' is not a semantic version"),
        (("database", "9"), "version 9 has no migration (migrations/database/ goes up to 1)"),
        (("database", "one"), "'one' is not"),
        (("nothing", "1"), "unknown component 'nothing'"),
    ]:
        bad = run_cli("baseline", *args, cwd=example)
        assert bad.code == 1, bad
        assert message in bad.err, bad.err
    assert state(example)["serial"] == 1


def test_postgresql_history_table(tmp_path: Path, postgres_url: str) -> None:
    ws = make_workspace(
        tmp_path / "ws",
        components={"db": {"type": "sql"}},
        targets={"db": {"url": postgres_url}},
        migrations={
            "db": {
                "0001_one": {"up.sql": "CREATE TABLE one (id INT);", "down.sql": "DROP TABLE one;"},
                "0002_two": {"up.sql": "CREATE TABLE two (id INT);", "down.sql": "DROP TABLE two;"},
            }
        },
    )
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE one (id INT)")  # migration 1, by hand
    assert run_cli("baseline", "db", "1", cwd=ws).code == 0
    assert run_cli("baseline", "db", "2", cwd=ws).code == 3
    assert run_cli("migrate", "db", "2", "--yes", cwd=ws).code == 0
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT direction, schema_version FROM releasectl_schema_history "
            "ORDER BY installed_rank"
        ).fetchall()
    assert rows == [("baseline", 1), ("up", 2)]


def test_protected_environment_authorizes_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(
        tmp_path / "ws",
        components={"app": {"type": "service"}},
        targets={},
        environments={"prod": {"protected": True, "state": {"backend": "file"}, "targets": {}}},
    )
    shutil.copytree(REPO / "authz", ws / "authz")
    monkeypatch.setenv("RELEASECTL_ACTOR", "bob")
    denied = run_cli("baseline", "app", "1.0.0", "--env", "prod", cwd=ws)
    assert denied.code == 5, denied
    assert "baseline-admins-only" in denied.err
    assert state(ws, "prod") == {}
    monkeypatch.setenv("RELEASECTL_ACTOR", "alice")
    allowed = run_cli("baseline", "app", "1.0.0", "--env", "prod", cwd=ws)
    assert allowed.code == 0, allowed
    assert state(ws, "prod")["components"]["app"]["version"] == "1.0.0"


def test_kubernetes_apply_mode_records_the_version_on_its_objects(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    from tests.k8semu.workspace import write_migrations
    from tests.test_k8s_apply import V1, V2, run_step, target_for

    migrations = write_migrations(tmp_path, [V1, V2])
    target = target_for(kube, tmp_path, migrations)
    try:
        assert target.recorded_version() is None
        run_step(target, 1, 0)
        assert target.recorded_version() == 1
        run_step(target, 2, 1)
        assert target.recorded_version() == 2
    finally:
        target.close()
    kube.stop()
    unreachable = target_for(kube, tmp_path, migrations)
    with pytest.raises(TargetError, match="cannot reach the Kubernetes API"):
        unreachable.recorded_version()
    unreachable.close()
