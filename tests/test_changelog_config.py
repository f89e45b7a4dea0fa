"""The `changelog:` configuration: sections and their order, type, author and subject filters,
release tags and links; in releasectl.yaml, in .releasectl.yaml or pyproject.toml for a plain
repository; and the errors a bad block gives (file, line, field; exit 1)."""

from __future__ import annotations

from pathlib import Path

from tests.changelog_repo import Repo, subjects

WORKSPACE = """apiVersion: releasectl/v1
kind: Workspace
name: tiny
components:
  api: {type: service}
"""
CONFIG = """changelog:
  sections:
    - {title: "Heads up", breaking: true}
    - {title: New, types: [feat]}
    - {title: Fixed, types: [fix, perf]}
  exclude_authors: ["dependabot[bot]", "*@bots.example.com"]
  exclude_subjects: ['^chore\\(release\\)']
  exclude_types: [docs]
"""


def history(r: Repo) -> Repo:
    r.commit("chore: init")
    r.tag("v1.0.0")
    r.commit("feat: shiny")
    r.commit("perf: faster")
    r.commit("fix!: breaking fix")
    r.commit("docs: words")
    r.commit("chore(release): 1.1.0")
    r.commit(
        "chore(deps): bump x",
        author="dependabot[bot] <49699333+dependabot[bot]@users.noreply.github.com>",
    )
    r.commit("fix(deps): bump y", author="Renovate <renovate@bots.example.com>")
    r.commit("fix: by dependabotXbot", author="dependabotXbot <x@example.com>")
    r.commit("refactor: no section for this")
    r.commit("Not conventional")
    return r


def test_workspace_sections_order_and_filters(tmp_path: Path) -> None:
    r = Repo(tmp_path / "ws")
    (r.path / "releasectl.yaml").write_text(WORKSPACE + CONFIG)
    history(r)
    doc = r.json()
    assert [s["title"] for s in doc["sections"]] == ["Heads up", "New", "Fixed"]
    assert subjects(doc) == ["breaking fix", "shiny", "by dependabotXbot", "faster"]
    # `[bot]` is literal: "dependabotXbot" is not excluded; refactor and plain subjects have no
    # section (no `other: true`), docs are excluded by type
    text = r.markdown("--no-links")
    assert text.index("### Heads up") < text.index("### New") < text.index("### Fixed")


def test_defaults_stay_without_a_block(tmp_path: Path) -> None:
    r = history(Repo(tmp_path / "plain"))
    doc = r.json()
    assert [s["title"] for s in doc["sections"]] == [
        "Breaking Changes",
        "Features",
        "Bug Fixes",
        "Performance",
        "Documentation",
        "Refactoring",
        "Chores",
        "Other",
    ]
    assert len(subjects(doc)) == 10


def test_plain_repository_pyproject_and_dot_releasectl_yaml(tmp_path: Path) -> None:
    r = history(Repo(tmp_path / "plain"))
    (r.path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.releasectl.changelog]\n'
        'exclude_types = ["docs", "chore", "refactor"]\n'
        "sections = [\n"
        '  {title = "Features", types = ["feat"]},\n'
        '  {title = "Everything else", other = true},\n'
        "]\n"
    )
    doc = r.json()
    assert [(s["title"], len(s["commits"])) for s in doc["sections"]] == [
        ("Features", 1),
        ("Everything else", 5),  # fix, perf, the breaking fix, not conventional
    ]
    # .releasectl.yaml wins in the same directory
    (r.path / ".releasectl.yaml").write_text("changelog:\n  exclude_types: [feat]\n")
    assert "shiny" not in subjects(r.json())
    # and a package's own file wins below it (with --path)
    (r.path / "pkg").mkdir()
    (r.path / "pkg" / ".releasectl.yaml").write_text("changelog:\n  tag_pattern: 'pkg@*'\n")
    assert r.json("--path", "pkg")["from"] is None  # no pkg@ tag: the whole history


def test_tag_pattern_links_and_merges_from_the_configuration(tmp_path: Path) -> None:
    r = Repo(tmp_path / "plain")
    r.commit("chore: init")
    r.tag("api@1.0.0")
    r.commit("feat: one")
    r.tag("v9.0.0")
    r.git("checkout", "-q", "-b", "topic")
    r.commit("fix: on topic")
    r.git("checkout", "-q", "main")
    r.merge("topic", "Merge branch 'topic'")
    r.git("remote", "add", "origin", "git@github.com:o/r.git")
    (r.path / ".releasectl.yaml").write_text(
        "changelog:\n  tag_pattern: 'api@*'\n  links: false\n  include_merges: true\n"
    )
    doc = r.json()
    assert doc["from"] == "api@1.0.0"
    assert doc["repository"] is None
    assert "Merge branch 'topic'" in subjects(doc)
    (r.path / ".releasectl.yaml").write_text(
        "changelog:\n  forge: gitea\n  repository_url: https://code.example.com/team/r\n"
    )
    assert r.json()["repository"] == {"forge": "gitea", "url": "https://code.example.com/team/r"}


def test_bad_blocks_name_the_file_line_and_field(tmp_path: Path) -> None:
    r = Repo(tmp_path / "ws")
    r.commit("chore: init")
    cases = [
        (
            "releasectl.yaml",
            WORKSPACE + "changelog:\n  sections:\n    - {title: New, types: [feat], other: true}\n",
            "releasectl.yaml:8: changelog.sections[0]: a section needs exactly one of",
        ),
        (
            "releasectl.yaml",
            WORKSPACE + "changelog:\n  exclude_subjects: ['(unclosed']\n",
            "releasectl.yaml:7: changelog.exclude_subjects: '(unclosed' is not a regular",
        ),
        (
            "releasectl.yaml",
            WORKSPACE + "changelog:\n  colour: blue\n",
            "releasectl.yaml:7: changelog.colour: unknown field",
        ),
        (
            "releasectl.yaml",
            WORKSPACE + "changelog:\n  sections:\n    - {title: A, types: [feat]}\n"
            "    - {title: B, types: [Feat]}\n",
            "type 'feat' is in two sections ('A', 'B')",
        ),
    ]
    for name, text, message in cases:
        (r.path / name).write_text(text)
        result = r.cli()
        assert result.code == 1, (text, result)
        assert message in result.err, (message, result.err)
    (r.path / "releasectl.yaml").unlink()
    (r.path / "pyproject.toml").write_text(
        "[tool.releasectl.changelog]\nlinks = true\nforge = 'sourcehut'\n"
    )
    result = r.cli()
    assert result.code == 1
    assert "pyproject.toml:3: tool.releasectl.changelog.forge: input should be 'github'" in (
        result.err
    )
    assert "got 'sourcehut'" in result.err
    (r.path / "pyproject.toml").write_text("[tool.releasectl.changelog\n")
    result = r.cli()
    assert result.code == 1 and "pyproject.toml: not valid TOML" in result.err


def test_validate_checks_the_block_too(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    r = Repo(tmp_path / "ws")
    (r.path / "releasectl.yaml").write_text(WORKSPACE + "changelog:\n  links: maybe\n")
    r.commit(
        "chore: init",
        {
            "releases/1.0.0.yaml": "apiVersion: releasectl/v1\nkind: Release\nversion: 1.0.0\n"
            "components:\n  api: {version: 1.0.0}\n"
        },
    )
    result = run_cli("validate", cwd=r.path)
    assert result.code == 1
    assert "releasectl.yaml:7: changelog.links" in result.err
