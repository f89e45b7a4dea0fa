"""Before its first step `apply` connects to every target of the plan and compares the version
a target records with the recorded state; drift blocks an apply with nothing to run; a step
refused by its pre-check changes nothing recorded, so a saved plan stays good. Real
PostgreSQL, SQLite, rendered config and scripts."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.builders import make_workspace
from tests.conftest import postgres_base, run_cli

CONFIG = {
    "0001_base": {
        "config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n"
        "data: {LEVEL: info}\n"
    }
}
DATABASE = {
    "0001_users": {
        "up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n",
        "down.sql": "DROP TABLE users;\n",
    }
}


def state_of(root: Path, env: str = "local") -> dict[str, Any] | None:
    path = root / f".releasectl/state/{env}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def serial_of(root: Path) -> int:
    state = state_of(root)
    assert state is not None
    return int(state["serial"])


def config_and_database(root: Path, database_url: str, **more: Any) -> Path:
    return make_workspace(
        root,
        components={"config": {"type": "kubernetes"}, "database": {"type": "sql"}},
        targets={
            "config": {"mode": "render", "path": "deploy/config"},
            "database": {"url": database_url},
        },
        releases={"1.0.0": {"config": 1, "database": 1}},
        migrations={"config": CONFIG, "database": DATABASE},
        **more,
    )


# --- 5. an unreachable target, a target that disagrees ----------------------------------


def test_an_unreachable_database_stops_the_apply_before_the_config_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    head, _, _ = postgres_base().rpartition("/")
    monkeypatch.setenv("DATABASE_URL", f"{head}/no_such_db_{uuid.uuid4().hex[:8]}")
    root = config_and_database(tmp_path / "ws", "${DATABASE_URL}")
    result = run_cli("apply", "--yes", cwd=root)
    assert result.code == 1, result
    assert "database: not reachable" in result.err and "does not exist" in result.err
    assert "nothing was run" in result.err
    assert not (root / "deploy/config").exists()  # the config step never ran
    assert state_of(root) is None


def test_a_target_that_records_another_version_stops_the_apply_first(tmp_path: Path) -> None:
    """Two environments share one SQLite file by mistake: the second apply would apply its
    config, then fail on the database. It refuses before the first step (exit 3)."""
    root = config_and_database(
        tmp_path / "ws",
        "sqlite:///shared.db",
        environments={
            "other": {
                "state": {"backend": "file"},
                "targets": {
                    "config": {"mode": "render", "path": "deploy/other"},
                    "database": {"url": "sqlite:///shared.db"},
                },
            }
        },
    )
    assert run_cli("apply", "--yes", cwd=root).code == 0
    result = run_cli("apply", "--yes", "--env", "other", cwd=root)
    assert result.code == 3, result
    assert "database: the target records version 1, but the plan starts from 0" in result.err
    assert not (root / "deploy/other").exists()
    assert state_of(root, "other") is None


# --- 8. drift with nothing to do --------------------------------------------------------


def test_drift_blocks_an_apply_with_nothing_to_run(example: Path) -> None:
    assert run_cli("apply", "--yes", cwd=example).code == 0
    assert run_cli("apply", "--yes", cwd=example).code == 0  # nothing to do, no drift
    up = example / "migrations/redis/0001_initial_settings/up.yaml"
    up.write_text(up.read_text() + "# edited after it was applied\n")
    assert run_cli("validate", cwd=example).code == 3
    result = run_cli("apply", "--yes", cwd=example)
    assert result.code == 3, result
    assert "0001_initial_settings: changed since it was applied" in result.err


# --- 10. a failed pre-check changes nothing recorded -------------------------------------


def test_a_failed_pre_check_leaves_the_serial_and_the_saved_plan_good(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path / "ws",
        components={"hooks": {"type": "script"}},
        targets={"hooks": {"workdir": "work"}},
        releases={"1.0.0": {"hooks": 1}, "2.0.0": {"hooks": 2}},
        migrations={
            "hooks": {
                "0001_a": {"up.sh": "echo a > a.txt\n", "down.sh": "rm a.txt\n"},
                "0002_b": {"up.sh": "echo b > b.txt\n", "down.sh": "rm b.txt\n"},
            }
        },
    )
    (root / "work").mkdir()
    assert run_cli("apply", "--yes", "--release", "1.0.0", cwd=root).code == 0
    serial = serial_of(root)
    assert run_cli("plan", "--release", "2.0.0", "--out", "plan.json", cwd=root).code == 0
    shutil.rmtree(root / "work")  # the pre-check of step 1 will refuse
    result = run_cli("apply", "plan.json", cwd=root)
    assert result.code == 1, result
    assert "workdir" in result.err and "is not a directory" in result.err
    assert serial_of(root) == serial  # nothing recorded changed: the plan is still fresh
    entries = (root / ".releasectl/history/local.jsonl").read_text().splitlines()
    assert json.loads(entries[-1])["error"].startswith("check: ")  # the refusal is audited
    (root / "work").mkdir()
    (root / "work/a.txt").write_text("a\n")
    retried = run_cli("apply", "plan.json", cwd=root)
    assert retried.code == 0, retried
    assert (root / "work/b.txt").read_text() == "b\n"
