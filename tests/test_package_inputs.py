"""One release, one package: its bytes depend on the release's inputs only, not on whatever
was committed to the repository since (staging and prod build it at different times)."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasectl.release.package import build_package
from releasectl.workspace import Workspace
from tests.conftest import git


def test_a_later_unrelated_commit_leaves_the_package_unchanged(
    example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    manifest_time = int(git(example, "log", "-1", "--format=%ct", "--", "releases/1.1.0.yaml"))
    staging = build_package(Workspace.load(example), "1.1.0", tmp_path / "staging")
    (example / "NOTES.md").write_text("unrelated work\n")
    git(example, "add", "NOTES.md")
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"{manifest_time + 86400} +0000")
    git(example, "commit", "-q", "-m", "docs: notes")
    assert int(git(example, "log", "-1", "--format=%ct")) == manifest_time + 86400
    prod = build_package(Workspace.load(example), "1.1.0", tmp_path / "prod")
    assert prod.mtime == staging.mtime == manifest_time
    assert prod.path.read_bytes() == staging.path.read_bytes()


def test_source_date_epoch_still_decides(
    example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    assert build_package(Workspace.load(example), "1.1.0", tmp_path / "a").mtime == 1600000000
