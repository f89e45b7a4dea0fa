"""The commit-back library against real git repositories in tmp dirs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from releasectl.errors import InputError
from releasectl.release.gitops import commit_back, commit_message, dirty_paths, release_tags
from tests.conftest import git, init_repo

DIGEST = "3f2a" + "0" * 60


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "repo")
    (root / ".gitignore").write_text("*.log\n")
    (root / "state").mkdir()
    (root / "state/local.json").write_text("{}\n")
    (root / "README.md").write_text("hello\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "chore: start")
    return root


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def commit(
    root: Path,
    *,
    paths: list[Path] | None = None,
    tags: list[str] | None = None,
    message_extra: str = "",
) -> str:
    return commit_back(
        root,
        env="prod",
        release="1.1.0",
        plan_digest=DIGEST,
        paths=[Path("state/local.json"), Path("CHANGELOG.md")] if paths is None else paths,
        tags=["v1.1.0", "auth-service@1.3.0"] if tags is None else tags,
        message_extra=message_extra,
    )


def test_commits_exactly_the_paths_and_tags(repo: Path) -> None:
    start = head(repo)
    (repo / "state/local.json").write_text('{"serial": 1}\n')
    (repo / "CHANGELOG.md").write_text("# Changelog\n")
    (repo / "debug.log").write_text("ignored\n")
    sha = commit(repo, message_extra="Applied by ci")
    assert sha == head(repo) != start
    changed = git(repo, "show", "--name-only", "--format=", sha).split()
    assert changed == ["CHANGELOG.md", "state/local.json"]
    message = git(repo, "log", "-1", "--format=%B", sha)
    assert message.splitlines()[0] == "release(prod): apply 1.1.0 [plan 3f2a00000000]"
    assert f"Plan: {DIGEST}" in message
    assert "Environment: prod" in message and "Applied by ci" in message
    for tag in ("v1.1.0", "auth-service@1.3.0"):
        assert git(repo, "rev-parse", f"{tag}^{{commit}}").strip() == sha
        assert git(repo, "cat-file", "-t", tag).strip() == "tag"  # annotated
    assert git(repo, "status", "--porcelain").strip() == ""


def test_nothing_to_commit_tags_head_and_is_idempotent(repo: Path) -> None:
    (repo / "state/local.json").write_text('{"serial": 2}\n')
    first = commit(repo)
    second = commit(repo)  # nothing changed since: no new commit, tags already here
    assert first == second == head(repo)
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "2"


def test_refuses_changes_outside_the_paths(repo: Path) -> None:
    (repo / "state/local.json").write_text('{"serial": 1}\n')
    (repo / "README.md").write_text("edited\n")
    (repo / "notes.txt").write_text("untracked\n")
    (repo / "x.log").write_text("ignored is fine\n")
    start = head(repo)
    with pytest.raises(InputError) as err:
        commit(repo)
    assert "README.md" in str(err.value) and "notes.txt" in str(err.value)
    assert "x.log" not in str(err.value)
    assert head(repo) == start
    assert git(repo, "diff", "--cached", "--name-only").strip() == ""  # nothing staged
    assert dirty_paths(repo, [Path("state")]) == ["README.md", "notes.txt"]
    assert dirty_paths(repo, [repo / "state/local.json", repo / "README.md"]) == ["notes.txt"]


def test_refuses_something_staged_outside_the_paths(repo: Path) -> None:
    (repo / "README.md").write_text("staged\n")
    git(repo, "add", "README.md")
    with pytest.raises(InputError, match=r"README\.md"):
        commit(repo)


def test_stages_deletions_and_new_files_inside_a_directory(repo: Path) -> None:
    (repo / "state/local.json").unlink()
    (repo / "state/prod.json").write_text("{}\n")
    sha = commit(repo, paths=[Path("state")], tags=[])
    status = git(repo, "show", "--no-renames", "--name-status", "--format=", sha).split("\n")
    assert sorted(line for line in status if line) == ["A\tstate/prod.json", "D\tstate/local.json"]


def test_tag_elsewhere_is_an_error_before_committing(repo: Path) -> None:
    git(repo, "tag", "-a", "v1.1.0", "-m", "old")
    (repo / "state/local.json").write_text('{"serial": 3}\n')
    start = head(repo)
    with pytest.raises(InputError, match=r"tag v1\.1\.0 already exists"):
        commit(repo)
    assert head(repo) == start
    assert (repo / "state/local.json").read_text() == '{"serial": 3}\n'  # work kept


def test_bad_tag_name(repo: Path) -> None:
    (repo / "state/local.json").write_text("{}\n\n")
    with pytest.raises(InputError, match="not a valid git tag name"):
        commit(repo, tags=["bad tag"])


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not inside a git repository"):
        commit_back(tmp_path, env="e", release=None, plan_digest=DIGEST, paths=[tmp_path], tags=[])


def test_first_commit_of_an_empty_repository(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "empty")
    (root / "state.json").write_text("{}\n")
    sha = commit_back(
        root, env="local", release=None, plan_digest=DIGEST, paths=[Path("state.json")], tags=[]
    )
    assert git(root, "log", "--format=%s", sha).strip() == (
        "release(local): apply component plan [plan 3f2a00000000]"
    )


def test_paths_outside_the_repository(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="outside the repository"):
        dirty_paths(repo, [tmp_path / "elsewhere"])


def test_helpers() -> None:
    assert release_tags("1.1.0", {"redis": 2, "auth-service": "1.3.0"}) == [
        "v1.1.0",
        "auth-service@1.3.0",
        "redis@2",
    ]
    assert release_tags(None) == []
    text = commit_message("staging", "2.0.0", DIGEST)
    assert text.startswith("release(staging): apply 2.0.0 [plan 3f2a00000000]\n\n")


def test_hooks_that_fail_are_reported(repo: Path) -> None:
    hook = repo / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho 'nope from hook' >&2\nexit 1\n")
    hook.chmod(0o755)
    (repo / "state/local.json").write_text('{"serial": 9}\n')
    with pytest.raises(InputError, match="git commit failed"):
        commit(repo, tags=[])
    assert (
        subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=repo, check=False).returncode
        == 1
    )
