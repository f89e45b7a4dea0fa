"""The `components` part of a changelog: release manifests read as they are at each tag, or from
the work tree for HEAD, in a workspace at the top of a repository or below it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from releasectl.release.changelog import generate
from tests.conftest import git, init_repo, run_cli

WORKSPACE = """apiVersion: releasectl/v1
kind: Workspace
name: tiny
components:
  redis: {type: redis}
  api: {type: service}
  legacy: {type: service}
"""


def manifest(version: str, components: dict[str, Any], date: str | None = None) -> str:
    lines = ["apiVersion: releasectl/v1", "kind: Release", f"version: {version}"]
    if date:
        lines.append(f'date: "{date}"')
    lines.append("components:")
    lines.extend(f"  {name}: {{version: {v}}}" for name, v in components.items())
    return "\n".join(lines) + "\n"


def release(ws: Path, version: str, components: dict[str, Any], date: str | None = None) -> None:
    releases = ws / "releases"
    releases.mkdir(exist_ok=True)
    (releases / f"{version}.yaml").write_text(manifest(version, components, date))


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def tiny(root: Path) -> Path:
    """A workspace with releases 1.0.0 and 1.1.0, tagged v1.0.0 and v1.1.0 (annotated)."""
    init_repo(root)
    (root / "releasectl.yaml").write_text(WORKSPACE)
    release(root, "1.0.0", {"redis": 1, "api": "1.0.0", "legacy": "0.9.0"})
    commit_all(root, "feat: first release")
    git(root, "tag", "v1.0.0")
    release(root, "1.1.0", {"redis": 2, "api": "1.0.0", "legacy": "0.9.1"}, date="2026-11-02")
    commit_all(root, "feat(redis): indexes")
    git(root, "tag", "-a", "v1.1.0", "-m", "1.1.0")
    return root


def components(doc: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    return [(c["name"], c["from"], c["to"]) for c in doc["components"]]


def test_versions_between_two_tags_are_read_at_the_tags(tmp_path: Path) -> None:
    ws = tiny(tmp_path / "ws")
    # An uncommitted edit of 1.1.0 must not leak into the tag..tag changelog
    release(ws, "1.1.0", {"redis": 3, "api": "1.0.0", "legacy": "0.9.1"})
    result = run_cli("changelog", "v1.0.0", "v1.1.0", "--format", "json", cwd=ws)
    assert result.code == 0, result
    doc = json.loads(result.out)
    assert components(doc) == [("legacy", "0.9.0", "0.9.1"), ("redis", 1, 2)]
    elsewhere = run_cli("--workspace", ws, "changelog", "v1.0.0", "v1.1.0", "-f", "json")
    assert json.loads(elsewhere.out) == doc
    result = run_cli("changelog", "v1.0.0", "v1.1.0", cwd=ws)
    assert result.out.splitlines()[0] == "## [1.1.0] - 2026-11-02"  # the manifest's date
    assert "- redis: 1 -> 2" in result.out.splitlines()
    # HEAD (tagged v1.1.0) is read from the work tree, edit included
    doc = json.loads(run_cli("changelog", "--format", "json", cwd=ws).out)
    assert doc["from"] == "v1.0.0"
    assert components(doc) == [("legacy", "0.9.0", "0.9.1"), ("redis", 1, 3)]


def test_commit_back_names_the_release_before_it_is_tagged(tmp_path: Path) -> None:
    ws = tiny(tmp_path / "ws")
    git(ws, "commit", "-q", "--allow-empty", "-m", "fix(api): retry")
    release(ws, "1.2.0", {"redis": 2, "api": "1.1.0", "search": "0.1.0"})  # not committed
    changelog = generate(ws, None, None, version_label="1.2.0")
    assert changelog.from_ == "v1.1.0"
    assert [(c.name, c.from_, c.to) for c in changelog.components] == [
        ("api", "1.0.0", "1.1.0"),
        ("legacy", "0.9.1", None),
        ("search", None, "0.1.0"),
    ]
    assert [(s.title, [c.subject for c in s.commits]) for s in changelog.sections] == [
        ("Bug Fixes", ["retry"])
    ]
    # without a label, HEAD's release is the newest manifest in the work tree
    same = generate(ws, None, None, version_label=None)
    assert same.components == changelog.components


def test_whole_history_lists_every_component_as_added(example: Path) -> None:
    from releasectl.workspace import Workspace

    latest = Workspace.load(example).latest_release()
    assert latest is not None
    changelog = generate(example, None, None, version_label=latest.version)
    assert changelog.from_ is None
    wanted = sorted((n, None, p.version) for n, p in latest.manifest.components.items())
    assert [(c.name, c.from_, c.to) for c in changelog.components] == wanted


def test_workspace_below_the_top_of_the_repository(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "mono")
    ws = repo / "platform"
    ws.mkdir()
    (ws / "releasectl.yaml").write_text(WORKSPACE + "releases: manifests\n")
    (ws / "manifests").mkdir()
    (ws / "manifests" / "1.0.0.yaml").write_text(manifest("1.0.0", {"redis": 1}))
    commit_all(repo, "feat: platform 1.0.0")
    git(repo, "tag", "platform-1.0.0")  # not a version tag: the highest manifest there counts
    (ws / "manifests" / "2.0.0.yaml").write_text(manifest("2.0.0", {"redis": 4}))
    commit_all(repo, "feat!: platform 2.0.0")
    git(repo, "tag", "v2.0.0")
    (ws / "manifests" / "2.0.0.yaml").write_text(manifest("2.0.0", {"redis": 5}))
    result = run_cli("changelog", "platform-1.0.0", "v2.0.0", "--format", "json", cwd=ws)
    assert result.code == 0, result
    assert components(json.loads(result.out)) == [("redis", 1, 4)]
    # outside the workspace directory the repository is a plain one
    result = run_cli("changelog", "platform-1.0.0", "v2.0.0", "--format", "json", cwd=repo)
    assert json.loads(result.out)["components"] == []


def test_a_broken_manifest_at_a_tag_names_the_file_and_field(tmp_path: Path) -> None:
    ws = tiny(tmp_path / "ws")
    (ws / "releases" / "1.2.0.yaml").write_text(manifest("1.2.0", {"redis": "[1, 2]"}))
    commit_all(ws, "fix: bad manifest")
    git(ws, "tag", "v1.2.0")
    result = run_cli("changelog", "v1.1.0", "v1.2.0", cwd=ws)
    assert result.code == 1
    assert "releases/1.2.0.yaml:5: components.redis: version must be" in result.err


def test_commit_back_of_a_release_tagged_already_ends_at_its_tag(tmp_path: Path) -> None:
    """The release reached staging first (tagged there); prod's commit-back writes the same
    section again, not one made of the commits since the tag."""
    from releasectl.release.changelog import render_markdown, write_section

    ws = tiny(tmp_path / "ws")
    git(ws, "commit", "-q", "--allow-empty", "-m", "release(staging): apply 1.1.0 [plan 1234]")
    first = generate(ws, None, None, version_label="1.1.0")
    assert (first.from_, first.to) == ("v1.0.0", "v1.1.0")
    assert [c.subject for s in first.sections for c in s.commits] == ["indexes"]
    path = ws / "CHANGELOG.md"
    assert write_section(path, render_markdown(first, "1.1.0", "2026-11-02"), "1.1.0") == "created"
    git(ws, "commit", "-q", "--allow-empty", "-m", "release(prod): apply 1.1.0 [plan 5678]")
    again = generate(ws, None, None, version_label="1.1.0")
    text = render_markdown(again, "1.1.0", "2026-11-02")
    assert write_section(path, text, "1.1.0") == "unchanged"


def test_path_must_be_a_directory_of_the_work_tree(tmp_path: Path) -> None:
    ws = tiny(tmp_path / "ws")
    result = run_cli("changelog", "--path", "no-such-dir", cwd=ws)
    assert result.code == 1 and "--path no-such-dir: no such directory" in result.err
    outside = tmp_path / "outside"
    outside.mkdir()
    result = run_cli("changelog", "--path", outside, cwd=ws)
    assert result.code == 1 and "not inside the git work tree" in result.err
