"""`releasectl changelog` against real git repositories made with the git CLI: grouping,
breaking markers, merges, ranges, the JSON document and its schema, and the errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from releasectl.release.changelog import generate, render_markdown
from tests.conftest import REPO, git, init_repo, run_cli


def commit(repo: Path, message: str) -> str:
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def rows(doc: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        s["title"]: [(c["type"], c["scope"], c["subject"], c["breaking"]) for c in s["commits"]]
        for s in doc["sections"]
    }


def as_json(*args: str | Path, cwd: Path) -> dict[str, Any]:
    result = run_cli("changelog", *args, "--format", "json", cwd=cwd)
    assert result.code == 0, result
    data: dict[str, Any] = json.loads(result.out)
    return data


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """v1.0.0, then a release's worth of commits of every kind and one merged topic branch."""
    repo = init_repo(tmp_path / "repo")
    commit(repo, "chore: initial layout")
    commit(repo, "feat: first feature")
    git(repo, "tag", "v1.0.0")
    commit(repo, "feat(auth): add OIDC login")
    commit(repo, "fix: crash on an empty token")
    commit(repo, "perf(redis): pipeline session writes")
    commit(repo, "docs: explain the changelog")
    commit(repo, "refactor!: drop the old config loader")
    commit(repo, "feat(api)!: remove the v1 endpoints")
    commit(repo, "fix(db): widen the id column\n\nLonger ids.\n\nBREAKING CHANGE: ids are text")
    commit(repo, "chore(deps): bump redis\n\nBREAKING-CHANGE: needs Redis 7")
    commit(repo, "fix: typo\n\nThis is not a BREAKING CHANGE: the footer must start a line")
    commit(repo, "Update README.md")
    commit(repo, "wip: half a thought")
    commit(repo, "Feat(UI): Shout")
    git(repo, "checkout", "-q", "-b", "topic")
    commit(repo, "test(auth): cover token refresh")
    git(repo, "checkout", "-q", "main")
    commit(repo, "ci: cache the venv")
    git(repo, "merge", "-q", "--no-ff", "topic", "-m", "feat: merge topic (a merge commit)")
    return repo


EXPECTED = {
    "Breaking Changes": [
        ("chore", "deps", "bump redis", True),
        ("fix", "db", "widen the id column", True),
        ("feat", "api", "remove the v1 endpoints", True),
        ("refactor", None, "drop the old config loader", True),
    ],
    "Features": [("feat", "UI", "Shout", False), ("feat", "auth", "add OIDC login", False)],
    "Bug Fixes": [
        ("fix", None, "typo", False),
        ("fix", None, "crash on an empty token", False),
    ],
    "Performance": [("perf", "redis", "pipeline session writes", False)],
    "Documentation": [("docs", None, "explain the changelog", False)],
    "CI": [("ci", None, "cache the venv", False)],
    "Tests": [("test", "auth", "cover token refresh", False)],
    "Other": [("wip", None, "half a thought", False), (None, None, "Update README.md", False)],
}


def test_groups_in_order_with_scopes_breaking_markers_and_no_merges(history: Path) -> None:
    doc = as_json(cwd=history)
    assert doc["from"] == "v1.0.0"  # default: the previous tag .. HEAD
    assert doc["to"] == "HEAD"
    assert [s["title"] for s in doc["sections"]] == list(EXPECTED)
    assert rows(doc) == EXPECTED
    shas = [c["sha"] for s in doc["sections"] for c in s["commits"]]
    assert len(shas) == len(set(shas)) == 14  # each commit once, the merge left out
    assert doc["components"] == []  # not a workspace


def test_json_matches_the_model_and_the_schema(history: Path) -> None:
    import jsonschema

    doc = as_json(cwd=history)
    schema = json.loads((REPO / "schemas" / "changelog.schema.json").read_text())
    jsonschema.validate(doc, schema)
    model = generate(history, None, None)
    assert model.model_dump(mode="json", by_alias=True) == doc
    head = git(history, "rev-parse", "HEAD~1").strip()  # the commit before the merge
    assert doc["sections"][5]["commits"][0]["sha"] == head  # ci: cache the venv


def test_explicit_ranges_tags_and_shas(history: Path) -> None:
    git(history, "tag", "v1.1.0", "HEAD~2")  # after "Feat(UI): Shout"
    doc = as_json("v1.0.0", "v1.1.0", cwd=history)
    assert (doc["from"], doc["to"]) == ("v1.0.0", "v1.1.0")
    subjects = [c["subject"] for s in doc["sections"] for c in s["commits"]]
    assert len(subjects) == 12 and "cache the venv" not in subjects
    first = git(history, "rev-list", "--max-parents=0", "HEAD").strip()
    doc = as_json(first, "v1.0.0", cwd=history)
    assert rows(doc) == {"Features": [("feat", None, "first feature", False)]}
    # HEAD carries no tag and v1.1.0 is the nearest: the default range starts there
    doc = as_json(cwd=history)
    assert doc["from"] == "v1.1.0"
    assert rows(doc) == {
        "CI": [("ci", None, "cache the venv", False)],
        "Tests": [("test", "auth", "cover token refresh", False)],
    }


def test_from_root_and_a_repository_without_tags(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "plain")
    commit(repo, "Initial commit")
    commit(repo, "feat: one")
    doc = as_json(cwd=repo)
    assert doc["from"] is None
    assert rows(doc) == {
        "Features": [("feat", None, "one", False)],
        "Other": [(None, None, "Initial commit", False)],
    }
    git(repo, "tag", "v0.1.0")
    commit(repo, "fix: two")
    assert len(as_json("--from-root", cwd=repo)["sections"]) == 3
    assert len(as_json("--from-root", "v0.1.0", cwd=repo)["sections"]) == 2
    result = run_cli("changelog", "--from-root", "v0.1.0", "HEAD", cwd=repo)
    assert result.code == 64, result


def test_markdown_of_a_tagged_head_is_that_release(history: Path) -> None:
    git(history, "tag", "-a", "v1.1.0", "-m", "release 1.1.0")
    result = run_cli("changelog", cwd=history)
    assert result.code == 0, result
    date = git(history, "log", "-1", "--format=%cs").strip()
    lines = result.out.splitlines()
    assert lines[0] == f"## [1.1.0] - {date}"
    short = git(history, "rev-parse", "--short=7", "HEAD~1").strip()
    assert "### Breaking Changes" in lines
    assert lines.index("### Breaking Changes") < lines.index("### Features")
    assert lines.index("### Features") < lines.index("### Bug Fixes") < lines.index("### Other")
    assert "- **api:** remove the v1 endpoints (`" in result.out
    assert f"- cache the venv (`{short}`)" in lines
    assert "merge topic" not in result.out


def test_render_markdown_unreleased_and_empty() -> None:
    from releasectl.models.changelog import Changelog

    empty = Changelog.model_validate({"from": "v1", "to": "HEAD", "sections": []})
    assert render_markdown(empty, None, None) == "## [Unreleased]\n\nNo changes.\n"
    text = render_markdown(empty, "2.0.0", "2026-01-02")
    assert text.startswith("## [2.0.0] - 2026-01-02\n")


def test_unknown_ref_and_not_a_repository(history: Path, tmp_path: Path) -> None:
    result = run_cli("changelog", "v9.9.9", cwd=history)
    assert result.code == 1
    assert "unknown git revision 'v9.9.9'" in result.err
    result = run_cli("changelog", "v1.0.0", "no-such-branch", cwd=history)
    assert result.code == 1
    assert "unknown git revision 'no-such-branch'" in result.err
    result = run_cli("changelog", "--", "-x", cwd=history)
    assert result.code == 1 and "invalid git revision '-x'" in result.err
    bare = tmp_path / "not-git"
    bare.mkdir()
    result = run_cli("changelog", cwd=bare)
    assert result.code == 1
    assert "is not in a git repository" in result.err
    empty = init_repo(tmp_path / "empty")
    result = run_cli("changelog", cwd=empty)
    assert result.code == 1 and result.err.startswith("error: ")


def test_cli_path_builds_no_pydantic_model(history: Path) -> None:
    # The command stays light: git, regexes and tuples; pydantic is never imported.
    code = (
        "import sys\n"
        "from releasectl.cli.app import main\n"
        "rc = main(['changelog', '--format', 'json'])\n"
        "assert rc == 0, rc\n"
        "assert 'pydantic' not in sys.modules, 'pydantic imported'\n"
        "assert 'git' not in sys.modules, 'GitPython imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=history,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["from"] == "v1.0.0"
