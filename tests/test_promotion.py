"""Promotion: an environment with `promote_from` takes a release only after the source
environment applied and verified it; `plan` says why, `apply` refuses with exit 5."""

from __future__ import annotations

import json
from pathlib import Path

from tests.builders import make_workspace
from tests.conftest import run_cli


def workspace(root: Path) -> Path:
    def sqlite(env: str) -> dict[str, dict[str, str]]:
        return {"db": {"url": f"sqlite:///.releasectl/{env}/db.sqlite"}}

    return make_workspace(
        root,
        components={"db": {"type": "sql"}, "app": {"type": "service", "needs": ["db"]}},
        targets=sqlite("local"),
        releases={"1.0.0": {"db": 1, "app": "1.0.0"}},
        migrations={
            "db": {
                "0001_t": {
                    "up.sql": "CREATE TABLE t (id INTEGER);\n",
                    "down.sql": "DROP TABLE t;\n",
                }
            }
        },
        environments={
            "staging": {"state": {"backend": "file"}, "targets": sqlite("staging")},
            "prod": {
                "promote_from": "staging",
                "state": {"backend": "file"},
                "targets": sqlite("prod"),
            },
        },
    )


def test_prod_waits_for_staging(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws")
    plan = run_cli("plan", "--env", "prod", cwd=root)
    assert plan.code == 0
    assert (
        "promotion: release 1.0.0 must be applied and verified in 'staging' before 'prod'"
        in plan.out
    )
    refused = run_cli("apply", "--env", "prod", "--yes", cwd=root)
    assert refused.code == 5, refused
    assert "must be applied and verified in 'staging'" in refused.err
    assert not (root / ".releasectl/state/prod.json").exists()

    assert run_cli("apply", "--env", "staging", "--yes", cwd=root).code == 0
    staging = json.loads((root / ".releasectl/state/staging.json").read_text())
    record = staging["releases"][-1]
    assert record["version"] == "1.0.0" and record["verified"] is True
    assert record["applied_by"] == "tester"

    plan = run_cli("plan", "--env", "prod", cwd=root)
    assert "promotion" not in plan.out
    done = run_cli("apply", "--env", "prod", "--yes", cwd=root)
    assert done.code == 0, done
