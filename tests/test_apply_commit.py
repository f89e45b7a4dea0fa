"""`apply --commit` on a real git repository: state, history, changelog and package checksums
committed with a message naming the environment, release and plan digest; tags created."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git, run_cli


def test_apply_commit_records_everything(example: Path) -> None:
    (example / ".gitignore").write_text(
        "/.releasectl/local/\n/.releasectl/locks/\n/.releasectl/backups/\n/.releasectl/cache/\n"
        "/deploy/\n/dist/\n"
    )
    git(example, "add", ".gitignore")
    git(example, "commit", "-q", "-m", "chore: ignore runtime data")
    git(example, "tag", "v1.0.0")
    git(example, "commit", "-q", "--allow-empty", "-m", "feat(auth): token introspection")
    git(example, "commit", "-q", "--allow-empty", "-m", "fix(redis)!: session keys move to v2")
    plan = json.loads(run_cli("plan", "--format", "json", cwd=example).out)

    result = run_cli("apply", "--yes", "--commit", cwd=example)
    assert result.code == 0, result
    message = git(example, "log", "-1", "--format=%B")
    assert "local" in message and "1.1.0" in message and plan["digest"][:12] in message
    changed = set(git(example, "show", "--name-only", "--format=", "HEAD").split())
    assert changed == {
        ".releasectl/state/local.json",
        ".releasectl/history/local.jsonl",
        "CHANGELOG.md",
        ".releasectl/packages/rust-security-platform-1.1.0.sha256",
    }
    tags = set(git(example, "tag", "--points-at", "HEAD").split())
    assert tags == {"v1.1.0", "auth-service@1.3.0", "policy-service@1.1.0"}
    changelog = (example / "CHANGELOG.md").read_text()
    assert "## [1.1.0]" in changelog and "token introspection" in changelog
    assert "session keys move to v2" in changelog.split("### Features")[0]  # breaking first
    sums = (example / ".releasectl/packages/rust-security-platform-1.1.0.sha256").read_text()
    assert "rust-security-platform-1.1.0.tar.gz" in sums.splitlines()[0]
    assert git(example, "status", "--porcelain").strip() == ""


def test_apply_commit_refuses_a_dirty_tree_before_running(example: Path) -> None:
    (example / "notes.txt").write_text("wip\n")
    result = run_cli("apply", "--yes", "--commit", cwd=example)
    assert result.code == 1
    assert "needs a clean work tree" in result.err and "notes.txt" in result.err
    assert not (example / ".releasectl/state/local.json").exists()
