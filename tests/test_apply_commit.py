"""`apply --commit` on a real git repository: state, history, changelog and package checksums
committed with a message naming the environment, release and plan digest; tags created."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO, git, run_cli


def test_apply_commit_records_everything(example: Path) -> None:
    """On the example as shipped: its own .gitignore, nothing rewritten first."""
    assert (example / ".gitignore").read_text() == (REPO / ".gitignore").read_text()
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


def test_apply_commit_again_changes_nothing(example: Path) -> None:
    assert run_cli("apply", "--yes", "--commit", cwd=example).code == 0
    head = git(example, "rev-parse", "HEAD")
    again = run_cli("apply", "--yes", "--commit", cwd=example)
    assert again.code == 0, again
    assert "No changes" in again.out and "Committed" not in again.out
    assert git(example, "rev-parse", "HEAD") == head
    assert git(example, "status", "--porcelain").strip() == ""


def test_an_ignored_state_file_is_refused_before_anything_runs(example: Path) -> None:
    with (example / ".gitignore").open("a") as fh:
        fh.write("# keep the laptop's state out of git\n/.releasectl/state/local.json\n")
    git(example, "commit", "-q", "-am", "chore: ignore local state")
    rule_line = len((example / ".gitignore").read_text().splitlines())
    result = run_cli("apply", "--yes", "--commit", cwd=example)
    assert result.code == 1, result
    assert "git ignores them; nothing was run" in result.err
    assert (
        f".releasectl/state/local.json: ignored by .gitignore:{rule_line} "
        "(/.releasectl/state/local.json)"
    ) in result.err
    assert not (example / ".releasectl/state/local.json").exists()
    assert git(example, "status", "--porcelain").strip() == ""  # nothing written or staged
    as_json = run_cli("apply", "--yes", "--commit", "--format", "json", cwd=example)
    error = json.loads(as_json.out)["error"]
    assert (error["file"], error["line"]) == (".gitignore", rule_line)


def test_an_apply_left_uncommitted_is_committed_by_the_next_apply_commit(example: Path) -> None:
    assert run_cli("apply", "--yes", cwd=example).code == 0  # applied, not committed
    result = run_cli("apply", "--yes", "--commit", cwd=example)
    assert result.code == 0, result
    assert "what an earlier apply recorded but did not commit or tag" in result.out
    changed = set(git(example, "show", "--name-only", "--format=", "HEAD").split())
    assert ".releasectl/state/local.json" in changed and "CHANGELOG.md" in changed
    tags = set(git(example, "tag", "--points-at", "HEAD").split())
    assert tags == {"v1.1.0", "auth-service@1.3.0", "policy-service@1.1.0"}
    head = git(example, "rev-parse", "HEAD")
    assert run_cli("apply", "--yes", "--commit", cwd=example).code == 0
    assert git(example, "rev-parse", "HEAD") == head


def test_a_shallow_clone_is_refused_before_anything_runs(example: Path, tmp_path: Path) -> None:
    """The changelog cannot be made from a shallow clone (actions/checkout's default depth 1):
    commit-back finds out before the first step, not after the apply has run."""
    git(example, "commit", "-q", "--allow-empty", "-m", "feat(auth): token introspection")
    git(example, "commit", "-q", "--allow-empty", "-m", "fix(redis): session keys")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{example}", str(shallow))
    assert (shallow / ".git/shallow").exists()
    result = run_cli("apply", "--yes", "--commit", cwd=shallow)
    assert result.code == 1, result
    assert "shallow clone" in result.err and "fetch-depth: 0" in result.err
    assert not (shallow / ".releasectl/state/local.json").exists()
    assert git(shallow, "status", "--porcelain").strip() == ""
