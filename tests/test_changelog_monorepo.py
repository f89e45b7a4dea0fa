"""Monorepos: commits limited to a package directory, its own release tags, release tags on
commits that do not touch the package, and a workspace below the top of the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.changelog_repo import Repo, by_release, subjects


@pytest.fixture
def mono(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "mono")
    r.commit("chore: init", {"packages/core/a.txt": "0\n", "packages/legacy/b.txt": "0\n"})
    r.tag("v1.0.0")
    r.tag("legacy@1.0.0")
    r.commit("feat(core): core one", {"packages/core/a.txt": "1\n"})
    r.commit("feat(legacy): legacy one", {"packages/legacy/b.txt": "1\n"})
    r.commit("chore(release): legacy@1.1.0")  # touches nothing: the tag sits outside the path
    r.tag("legacy@1.1.0")
    r.git("checkout", "-q", "-b", "topic")
    r.commit("fix(legacy): on a branch", {"packages/legacy/b.txt": "2\n"})
    r.git("checkout", "-q", "main")
    r.commit("fix(core): core two", {"packages/core/a.txt": "2\n"})
    r.tag("v1.1.0")
    r.merge("topic", "Merge branch 'topic'")
    r.commit("perf(legacy): legacy two", {"packages/legacy/b.txt": "3\n"})
    r.tag("legacy@1.2.0")
    r.commit("docs(core): core three", {"packages/core/a.txt": "3\n"})
    return r


def test_path_and_tag_pattern_give_the_package_changelog(mono: Repo) -> None:
    args = ("legacy@1.0.0", "HEAD", "--path", "packages/legacy", "--tag-pattern", "legacy@*")
    doc = mono.json(*args)
    assert by_release(doc) == [
        ("1.2.0", ["on a branch", "legacy two"]),
        ("1.1.0", ["legacy one"]),
    ]
    assert all("core" not in s for s in subjects(doc))
    assert doc["notes"] == []  # asked for, so not a note


def test_running_inside_the_package_limits_to_it(mono: Repo) -> None:
    inside = mono.path / "packages" / "legacy"
    doc = mono.json("--tag-pattern", "legacy@*", cwd=inside)
    assert doc["from"] == "legacy@1.2.0"
    assert doc["sections"] == []
    doc = mono.json("legacy@1.1.0..legacy@1.2.0", "--tag-pattern", "legacy@*", cwd=inside)
    assert subjects(doc) == ["on a branch", "legacy two"]
    assert doc["notes"] == [
        "only commits that touch packages/legacy/ (the current directory; --path chooses "
        "another directory)"
    ]


def test_without_a_pattern_every_tag_splits(mono: Repo) -> None:
    doc = mono.json("v1.0.0", "HEAD", "--path", "packages/core")
    # legacy@1.2.0 holds no commit of packages/core: it gets no section of its own
    assert [r["tag"] for r in doc["releases"]] == [None, "v1.1.0", "legacy@1.1.0"]
    assert "No changes." not in mono.markdown("v1.0.0", "HEAD", "--path", "packages/core")
    assert by_release(doc)[0] == (None, ["core three"])


WORKSPACE = """apiVersion: releasectl/v1
kind: Workspace
name: platform
components:
  redis: {type: redis}
"""


def test_a_workspace_below_the_top_gets_its_directory_and_v_tags(tmp_path: Path) -> None:
    r = Repo(tmp_path / "repo")
    r.commit(
        "chore: init",
        {
            "platform/releasectl.yaml": WORKSPACE,
            "platform/releases/1.0.0.yaml": "apiVersion: releasectl/v1\nkind: Release\n"
            "version: 1.0.0\ncomponents:\n  redis: {version: 1}\n",
        },
    )
    r.tag("v1.0.0")
    r.tag("app@1.0.0")
    r.commit("feat: app only", {"app/x.txt": "1\n"})
    r.tag("app@1.1.0")  # not a release of the workspace (its tags are v*)
    r.commit(
        "feat(redis): indexes",
        {
            "platform/releases/1.1.0.yaml": "apiVersion: releasectl/v1\nkind: Release\n"
            "version: 1.1.0\ncomponents:\n  redis: {version: 2}\n"
        },
    )
    ws = r.path / "platform"
    doc = r.json(cwd=ws)
    assert doc["from"] == "v1.0.0"
    assert subjects(doc) == ["indexes"]
    assert [(c["name"], c["from"], c["to"]) for c in doc["components"]] == [("redis", 1, 2)]
    result = r.cli("--write", cwd=ws)
    assert result.code == 0, result
    assert (ws / "CHANGELOG.md").is_file()
    assert "the workspace" in result.err
