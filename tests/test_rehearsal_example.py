"""`plan --rehearse` on the example workspace, 1.0.0 applied, planned to 1.1.0: every step is
rehearsed on a copy and rolled back exactly, planted destructive changes are called out in the
PR comment, and the real targets (embedded Redis file, SQLite file, rendered config and the
policy store) are byte for byte what they were."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests.builders import add_migration
from tests.conftest import run_cli
from tests.test_apply_e2e import embedded

# what the real targets of `local` are made of, and what must never change
REAL_TARGETS = (".releasectl/local", "deploy", ".releasectl/state", ".releasectl/history")


def real_targets(root: Path) -> dict[str, str]:
    """sha256 of every file of the real targets, state and history (the scan cache aside)."""
    out: dict[str, str] = {}
    for part in REAL_TARGETS:
        base = root / part
        for path in sorted(base.rglob("*")) if base.exists() else []:
            if path.is_file() and not path.is_symlink():
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_symlink():
                out[str(path.relative_to(root))] = "-> " + str(path.readlink())
    return out


def applied_1_0_0(root: Path) -> None:
    result = run_cli("apply", "--release", "1.0.0", "--yes", cwd=root)
    assert result.code == 0, result
    with embedded(root) as client:  # data the steps act on
        client.set("session:v1:alice", "token-a")
        client.set("cache:tiers", "x")
        client.set("cache:roles", "y", ex=600)
    import sqlite3

    conn = sqlite3.connect(root / ".releasectl/local/platform.db")
    conn.execute(
        "INSERT INTO users (id, email, display_name, password_hash) VALUES "
        "(1, 'alice@example.com', 'Alice', 'h1'), (2, 'bob@example.com', 'Bob', NULL)"
    )
    conn.commit()
    conn.close()


def plan_json(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("plan", "--rehearse", "--format", "json", *args, cwd=root)
    assert result.code in (0, 1), result
    data: dict[str, Any] = json.loads(result.out)
    return result.code, data


def test_example_rehearses_every_step_and_rolls_back_exactly(example: Path) -> None:
    applied_1_0_0(example)
    before = real_targets(example)
    result = run_cli("plan", "--rehearse", "--format", "markdown", cwd=example)
    assert result.code == 0, result
    assert real_targets(example) == before
    comment = result.out
    assert "<details open><summary>What this changes</summary>" in comment
    assert comment.index("<summary>What this changes</summary>") < comment.index(
        "<summary>Steps (4)</summary>"
    )
    assert "every step ran, verified and rolled back exactly on a copy" in comment
    for name in ("config", "policy-service", "redis", "auth-service"):
        assert f"`{name}`" in comment
    assert comment.count("rollback exact") == 4
    assert len(comment) < 65_536

    code, doc = plan_json(example)
    assert code == 0
    rehearsal = doc["rehearsal"]
    assert rehearsal["verdict"] == "ok"
    assert [(s["index"], s["status"], s["rollback"]) for s in rehearsal["steps"]] == [
        (1, "ok", "exact"),
        (2, "ok", "exact"),
        (3, "ok", "exact"),
        (4, "ok", "exact"),
    ]
    # redis 0002 renames the session keys on the copy: seen, counted by its scope pattern
    redis_step = next(s for s in doc["analysis"]["steps"] if s["component"] == "redis")
    assert redis_step["redis"]["renamed"] == [{"pattern": "session:v1:*", "count": 1}]
    copies = {c["component"]: c for c in rehearsal["copies"]}
    # config:auth, config:policy, schema:redis:version and the session: its scope, no more
    assert copies["redis"]["kind"] == "embedded Redis" and copies["redis"]["items"] == 4
    assert real_targets(example) == before
    with embedded(example) as client:  # the real data still has the old session key
        assert client.get("session:v1:alice") == b"token-a"
        assert client.exists("session:v2:alice") == 0


def plant_destructive_changes(root: Path) -> None:
    """A DROP COLUMN, a Redis migration deleting keys outside its declared scope, and a Cedar
    change that gives viewers the right to apply, all pinned by 1.1.0."""
    add_migration(
        root,
        "database",
        "0002_drop_password",
        {
            "up.sql": """
            -- Passwords move to the identity provider.
            ALTER TABLE users DROP COLUMN password_hash;
            """,
            "down.sql": "ALTER TABLE users ADD COLUMN password_hash VARCHAR(255);\n",
        },
    )
    add_migration(
        root,
        "redis",
        "0003_prune_caches",
        {
            "migration.yaml": 'description: Drop stale caches\nscope: ["cache:*"]\n',
            "migration.py": """
            def up(r):
                for key in r.scan_iter("cache:*"):
                    r.delete(key)
                r.delete("config:policy")


            def down(r):
                pass
            """,
        },
    )
    source = root / "migrations/policies/0001_rbac_framework"
    files = {
        str(p.relative_to(source)): p.read_text() for p in sorted(source.rglob("*")) if p.is_file()
    }
    files["schema.cedarschema"] += (
        '\naction "apply" in ["write"] appliesTo {\n  principal: [User, ServiceAccount],\n'
        "  resource: [Service],\n  context: RequestContext,\n};\n"
    )
    files["roles.cedar"] += (
        '\n@id("viewer-apply")\npermit (principal in Role::"viewer", action == '
        'Action::"apply", resource);\n'
    )
    directory = root / "migrations/policies/0002_viewer_apply"
    for rel, text in files.items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_text(text)
    manifest = root / "releases/1.1.0.yaml"
    manifest.write_text(
        manifest.read_text()
        .replace("database: {version: 1}", "database: {version: 2}")
        .replace("redis: {version: 2}", "redis: {version: 3}")
        .replace("policies: {version: 1}", "policies: {version: 2}")
    )


def test_planted_destructive_changes_are_called_out(example: Path) -> None:
    applied_1_0_0(example)
    plant_destructive_changes(example)
    before = real_targets(example)
    result = run_cli("plan", "--rehearse", "--format", "markdown", cwd=example)
    assert result.code == 1, result  # the rehearsal found rollbacks that lose data
    assert "the rehearsal failed" in result.err
    comment = result.out
    assert real_targets(example) == before
    section = comment[
        comment.index("<summary>What this changes</summary>") : comment.index("<summary>Steps (")
    ]
    # the DROP COLUMN, with its file and line, and the values it loses on the copy
    assert (
        "`migrations/database/0002_drop_password/up.sql:2` **ban-drop-column**: drops column "
        "users.password_hash" in section
    )
    assert "column `users.password_hash` dropped: 1 row(s) held a value" in section
    # the Redis migration's delete outside its scope, seen on the copy, with the real key count
    assert (
        "writes `config:policy` (`DEL`) outside its scope `cache:*` (seen in the rehearsal); "
        "1 real key(s) match it, not in the backup" in section
    )
    assert "2 key(s) deleted matching `cache:*`" in section
    # who gains apply
    assert (
        '`User::"vera"` gains `Action::"apply"` on `Service::"prod/auth-service"`, '
        '`Service::"staging/auth-service"`' in section
    )
    assert '`User::"alice"` gains' not in section  # admins could already do everything
    assert ":x: a step, its verify or its rollback failed or differed on a copy" in section
    assert len(comment) < 65_536

    code, doc = plan_json(example)
    assert code == 1
    steps = {s["migration"]: s for s in doc["rehearsal"]["steps"]}
    dropped = steps["0002_drop_password"]
    assert dropped["status"] == "failed" and dropped["rollback"] == "differs"
    assert {d["what"] for d in dropped["differences"]} == {"table users", "rows of users"}
    pruned = steps["0003_prune_caches"]
    assert pruned["rollback"] == "differs"
    assert {"what": "key config:policy", "detail": "missing after the rollback"} in pruned[
        "differences"
    ]
    # the steps whose own rollback is sound stay exact
    assert steps["0002_viewer_apply"]["rollback"] == "exact"
    assert steps["0002_security_monitoring"]["rollback"] == "exact"
    summary = doc["analysis"]["summary"]
    assert summary["destructive"] == 1
    assert summary["access_gained"] == 4  # vera and ines (viewers) x two services
    assert summary["access_lost"] == 0
    assert real_targets(example) == before
    with embedded(example) as client:
        assert client.exists("config:policy", "cache:tiers", "cache:roles") == 3


def test_analysis_is_on_by_default_in_the_comment_only(example: Path) -> None:
    applied_1_0_0(example)
    plant_destructive_changes(example)
    comment = run_cli("plan", "--format", "markdown", cwd=example)
    assert comment.code == 0, comment
    assert "**ban-drop-column**" in comment.out and "Rehearsal" not in comment.out
    assert '`User::"vera"` gains `Action::"apply"`' in comment.out
    # without the rehearsal, the migration.py is said to be unknown, not called safe
    plain = run_cli("plan", "--format", "json", cwd=example)
    doc = json.loads(plain.out)
    assert "analysis" not in doc and "rehearsal" not in doc  # DESIGN.md's keys, no more
    analyzed = json.loads(run_cli("plan", "--analyze", "--format", "json", cwd=example).out)
    redis = next(s for s in analyzed["analysis"]["steps"] if s["migration"] == "0003_prune_caches")
    assert any("known only by running it" in n for n in redis["notes"])
    none = run_cli("plan", "--no-analyze", "--format", "markdown", cwd=example)
    assert "What this changes" not in none.out


def test_a_saved_rehearsed_plan_still_applies(example: Path, tmp_path: Path) -> None:
    applied_1_0_0(example)
    saved = tmp_path / "plan.json"
    result = run_cli("plan", "--rehearse", "--out", saved, cwd=example)
    assert result.code == 0, result
    assert "Rehearsal verdict: every step ran, verified and rolled back exactly" in result.out
    assert json.loads(saved.read_text())["rehearsal"]["verdict"] == "ok"
    applied = run_cli("apply", saved, cwd=example)
    assert applied.code == 0, applied
    with embedded(example) as client:
        assert client.get("session:v2:alice") == b"token-a"
