"""`init` makes a workspace that plans and applies; `state pull` / `state push --force` move
state and history between backends."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import init_repo, run_cli


def test_init_creates_a_working_workspace(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "my_app")
    result = run_cli("init", root)
    assert result.code == 0, result
    assert "created workspace 'my-app'" in result.out
    assert run_cli("validate", cwd=root).code == 0
    applied = run_cli("apply", "--yes", cwd=root)
    assert applied.code == 0, applied
    status = json.loads(run_cli("status", "--format", "json", cwd=root).out)
    assert status["release"] == "0.1.0"
    assert status["components"]["database"]["version"] == 1
    assert "/.releasectl/local/" in (root / ".gitignore").read_text()
    again = run_cli("init", root)
    assert again.code == 1 and "already exists" in again.err


def test_state_moves_between_backends(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert run_cli("init", root).code == 0
    assert run_cli("apply", "--yes", cwd=root).code == 0
    bundle = tmp_path / "bundle.json"
    pulled = run_cli("state", "pull", "--out", bundle, cwd=root)
    assert pulled.code == 0, pulled
    data = json.loads(bundle.read_text())
    assert data["state"]["release"] == "0.1.0" and len(data["history"]) >= 2

    # the team moves `local` to a new state directory (another backend for the same env)
    config = root / "releasectl.yaml"
    config.write_text(
        config.read_text().replace(
            "state: {backend: file}", "state: {backend: file, path: .state2}"
        )
    )
    assert json.loads(run_cli("status", "--format", "json", cwd=root).out)["release"] is None
    refused = run_cli("state", "push", bundle, cwd=root)
    assert refused.code == 64  # --force is required
    pushed = run_cli("state", "push", bundle, "--force", cwd=root)
    assert pushed.code == 0, pushed
    status = json.loads(run_cli("status", "--format", "json", cwd=root).out)
    assert status["release"] == "0.1.0"
    assert status["components"]["database"]["version"] == 1
    assert run_cli("history", "--verify", cwd=root).code == 0
    pushed_state = json.loads((root / ".state2/state/local.json").read_text())
    assert pushed_state["history"]["count"] == len(data["history"])  # the copy is anchored
    assert "No changes" in run_cli("plan", cwd=root).out
