"""FROM and TO as users type them: `A..B`, `A...B`, reversed ranges, release versions (their
tag, else the commit that added their manifest), the example workspace without tags, and
shallow clones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.changelog_repo import Repo, by_release, subjects
from tests.conftest import git, run_cli


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """v1.0.0 <- 2 commits <- v1.1.0 <- 2 commits <- v1.2.0 <- 1 commit (HEAD)."""
    r = Repo(tmp_path / "repo")
    r.commit("chore: initial layout")
    r.tag("v1.0.0")
    r.commit("feat: one")
    r.commit("fix: two")
    r.tag("v1.1.0", annotated=True)
    r.commit("feat: three")
    r.commit("perf: four")
    r.tag("v1.2.0")
    r.commit("docs: five")
    return r


def test_a_dotted_range_equals_two_arguments(repo: Repo) -> None:
    two = repo.json("v1.1.0", "v1.2.0")
    assert repo.json("v1.1.0..v1.2.0") == two
    assert subjects(two) == ["three", "four"]
    assert (two["from"], two["to"]) == ("v1.1.0", "v1.2.0")
    assert repo.markdown("v1.0.0..v1.1.0") == repo.markdown("v1.0.0", "v1.1.0")
    # an empty side is HEAD, as in git
    assert subjects(repo.json("v1.2.0..")) == ["five"]
    # FROM...TO where FROM is an ancestor of TO is the same range
    assert repo.json("v1.1.0...v1.2.0") == two


def test_a_range_with_a_second_argument_is_a_usage_error(repo: Repo) -> None:
    result = repo.cli("v1.0.0..v1.1.0", "v1.2.0")
    assert result.code == 64
    assert "is a range already" in result.err


def test_reversed_ranges_are_errors(repo: Repo) -> None:
    for args in (("v1.2.0", "v1.1.0"), ("v1.2.0..v1.1.0",)):
        result = repo.cli(*args)
        assert result.code == 1, result
        assert "reversed range v1.2.0..v1.1.0" in result.err
        assert "did you mean v1.1.0..v1.2.0?" in result.err
        assert result.out == ""
    result = repo.cli("v1.2.0...v1.1.0")
    assert result.code == 1 and "reversed range v1.2.0...v1.1.0" in result.err
    # the same commit on both sides is not reversed: an empty changelog
    assert repo.markdown("v1.1.0", "v1.1.0").endswith("No changes.\n")


def test_a_symmetric_range_of_diverged_histories_is_refused(repo: Repo) -> None:
    repo.git("checkout", "-q", "-b", "side", "v1.1.0")
    repo.commit("fix: on the side")
    result = repo.cli("main...side")
    assert result.code == 1
    assert "diverged" in result.err and "use main..side" in result.err
    # the two-dot form is fine: what side has and main has not
    assert subjects(repo.json("main..side")) == ["on the side"]


def test_release_versions_name_their_tags(repo: Repo) -> None:
    repo.tag("1.3.0")  # a tag without the v
    doc = repo.json("1.1.0", "1.2.0")
    assert subjects(doc) == ["three", "four"]
    assert doc["from_commit"] == repo.sha("v1.1.0")
    assert doc["to_commit"] == repo.sha("v1.2.0")
    assert "1.1.0: release 1.1.0 is tag v1.1.0" in doc["notes"]
    result = repo.cli("1.1.0", "1.2.0")
    assert "note: 1.2.0: release 1.2.0 is tag v1.2.0" in result.err
    assert result.out.startswith("## [1.2.0] - ")
    assert repo.json("v1.2.0", "v1.3.0")["to_commit"] == repo.sha("1.3.0")  # v-less tag


def test_unknown_version_outside_a_workspace(repo: Repo) -> None:
    result = repo.cli("v9.9.9")
    assert result.code == 1
    assert "unknown git revision 'v9.9.9': no branch, tag or commit of that name" in result.err


def workspace_without_tags(tmp_path: Path) -> Repo:
    """A workspace whose releases were added one commit at a time, never tagged."""
    r = Repo(tmp_path / "ws")
    workspace = (
        "apiVersion: releasectl/v1\nkind: Workspace\nname: tiny\n"
        "components:\n  redis: {type: redis}\n  api: {type: service}\n"
    )

    def manifest(version: str, redis: int, api: str) -> str:
        return (
            f"apiVersion: releasectl/v1\nkind: Release\nversion: {version}\n"
            f"components:\n  redis: {{version: {redis}}}\n  api: {{version: {api}}}\n"
        )

    r.commit(
        "feat: first release",
        {"releasectl.yaml": workspace, "releases/1.0.0.yaml": manifest("1.0.0", 1, "1.0.0")},
    )
    r.commit("feat(api): login")
    r.commit("fix(redis): keys", {"releases/1.1.0.yaml": manifest("1.1.0", 2, "1.0.0")})
    r.commit("feat(api): logout")
    r.commit("chore: prepare 1.2.0", {"releases/1.2.0.yaml": manifest("1.2.0", 2, "1.1.0")})
    r.commit("docs: after 1.2.0")
    return r


def test_release_versions_without_tags_use_the_commit_that_added_the_manifest(
    tmp_path: Path,
) -> None:
    ws = workspace_without_tags(tmp_path)
    doc = ws.json("1.0.0", "1.1.0")
    assert subjects(doc) == ["login", "keys"]  # features before fixes
    assert doc["from_commit"] == ws.sha("HEAD~5")
    assert doc["to_commit"] == ws.sha("HEAD~3")
    assert [(c["name"], c["from"], c["to"]) for c in doc["components"]] == [("redis", 1, 2)]
    assert doc["notes"] == [
        f"1.0.0: no tag for release 1.0.0; using commit {ws.sha('HEAD~5')[:12]}, "
        "which added releases/1.0.0.yaml",
        f"1.1.0: no tag for release 1.1.0; using commit {ws.sha('HEAD~3')[:12]}, "
        "which added releases/1.1.0.yaml",
    ]
    assert by_release(doc) == [("1.1.0", ["login", "keys"])]  # labelled by the version asked
    assert ws.json("v1.0.0..v1.2.0")["to_commit"] == ws.sha("HEAD~1")
    result = ws.cli("v1.1.0", "v1.2.0")
    assert result.code == 0
    assert result.out.startswith("## [1.2.0] - ")
    assert "- api: 1.0.0 -> 1.1.0" in result.out
    assert "note: v1.1.0: no tag for release 1.1.0; using commit" in result.err
    # once tagged, the tag wins over the manifest's commit
    ws.tag("v1.1.0", "HEAD~2")
    assert ws.json("1.1.0", "1.2.0")["from_commit"] == ws.sha("HEAD~2")


def test_a_release_being_prepared_is_head_and_the_work_tree(tmp_path: Path) -> None:
    ws = workspace_without_tags(tmp_path)
    (ws.path / "releases" / "1.3.0.yaml").write_text(
        "apiVersion: releasectl/v1\nkind: Release\nversion: 1.3.0\n"
        "components:\n  redis: {version: 3}\n  api: {version: 1.1.0}\n"
    )
    doc = ws.json("1.2.0", "1.3.0")
    assert doc["to_commit"] == ws.sha("HEAD")
    assert subjects(doc) == ["after 1.2.0"]
    assert [(c["name"], c["from"], c["to"]) for c in doc["components"]] == [("redis", 2, 3)]
    assert (
        "1.3.0: releases/1.3.0.yaml is not committed yet; using HEAD and the work tree"
        in (doc["notes"])
    )
    result = ws.cli("1.3.0", "HEAD")
    assert result.code == 1 and "1.3.0.yaml is not committed yet" in result.err
    result = ws.cli("1.2.0", "1.4.0")
    assert result.code == 1
    assert "unknown git revision '1.4.0'" in result.err
    assert "no release manifest releases/1.4.0.yaml" in result.err


def test_the_shipped_example_without_tags(example: Path) -> None:
    """issue 11: `changelog v1.0.0 v1.1.0` on the example as shipped (no tags)."""
    assert git(example, "tag").strip() == ""
    result = run_cli("changelog", "v1.0.0", "v1.1.0", cwd=example)
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[0] == "## [1.1.0] - 2026-11-02"  # the manifest's date
    assert "- redis: 1 -> 2" in lines and "- auth-service: 1.0.0 -> 1.3.0" in lines
    assert "which added releases/1.0.0.yaml" in result.err
    doc = json.loads(run_cli("changelog", "1.0.0", "1.1.0", "-f", "json", cwd=example).out)
    assert doc["from_commit"] == doc["to_commit"] == git(example, "rev-parse", "HEAD").strip()
    assert any("the same commit" in note for note in doc["notes"])


def shallow_clone(origin: Repo, dest: Path, depth: int) -> Path:
    git(
        dest.parent,
        "clone",
        "-q",
        f"--depth={depth}",
        f"file://{origin.path}",
        dest.name,
    )
    return dest


def test_a_shallow_clone_is_detected_and_says_how_to_fetch(repo: Repo, tmp_path: Path) -> None:
    clone = shallow_clone(repo, tmp_path / "shallow", 1)
    result = run_cli("changelog", cwd=clone)
    assert result.code == 1, result
    assert "shallow clone" in result.err
    assert "git fetch --unshallow --tags" in result.err and "fetch-depth: 0" in result.err
    assert result.out == ""
    result = run_cli("changelog", "v1.0.0", "HEAD", cwd=clone)
    assert result.code == 1
    assert "unknown git revision 'v1.0.0'" in result.err and "shallow clone" in result.err


def test_a_shallow_clone_deep_enough_for_the_range_works(repo: Repo, tmp_path: Path) -> None:
    clone = shallow_clone(repo, tmp_path / "deeper", 3)
    git(clone, "fetch", "-q", "--depth=3", "origin", "refs/tags/v1.2.0:refs/tags/v1.2.0")
    doc = json.loads(run_cli("changelog", "v1.2.0", "HEAD", "-f", "json", cwd=clone).out)
    assert subjects(doc) == ["five"]
    # ... but not for a range that reaches past its start, even when FROM's tag is there
    git(clone, "fetch", "-q", "--depth=1", "origin", "refs/tags/v1.0.0:refs/tags/v1.0.0")
    result = run_cli("changelog", "v1.0.0", "HEAD", cwd=clone)
    assert result.code == 1, result
    assert "reaches past the start of this shallow clone" in result.err
