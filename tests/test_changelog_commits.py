"""Reading commit messages: breaking-change footers and their text, the subject is the first
line only, spacing after the colon, and the type of commits without a section of their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasectl.release.changelog.commits import breaking_note
from tests.changelog_repo import Repo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "repo")
    r.commit("chore: init")
    r.tag("v1.0.0")
    return r


def commits(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    sections = doc["sections"]
    assert isinstance(sections, list)
    return {c["subject"]: c for s in sections for c in s["commits"]}


def test_breaking_footer_text_is_kept_and_shown(repo: Repo) -> None:
    repo.commit(
        "feat(node)!: drop node 20\n\nWhy we do it.\n\n"
        "BREAKING CHANGE: a minimum of node v22.14\nis now required\nRefs: #99"
    )
    repo.commit("fix: empty footer\n\nBREAKING CHANGE:\n\nThe text comes in the next paragraph.")
    repo.commit("refactor!: bang only")
    repo.commit("fix: not breaking\n\nThis mentions a BREAKING CHANGE: in the middle of a line")
    doc = repo.json()
    found = commits(doc)
    assert found["drop node 20"]["breaking_description"] == (
        "a minimum of node v22.14 is now required"
    )
    assert found["empty footer"]["breaking"] is True
    assert found["empty footer"]["breaking_description"] == (
        "The text comes in the next paragraph."
    )
    assert found["bang only"]["breaking"] is True
    assert found["bang only"]["breaking_description"] is None
    assert found["not breaking"]["breaking"] is False
    assert [s["title"] for s in doc["sections"]] == ["Breaking Changes", "Bug Fixes"]
    lines = repo.markdown("--no-links").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("- **node:** drop node 20"))
    assert lines[at + 1] == "  - a minimum of node v22.14 is now required"


@pytest.mark.parametrize(
    ("body", "note"),
    [
        ("BREAKING CHANGE: text", "text"),
        ("BREAKING-CHANGE: text\nmore text\n\nother paragraph", "text more text"),
        (
            "Body.\n\nBREAKING CHANGE:\n\nnext paragraph\ncontinues\n\nnot this",
            "next paragraph continues",
        ),
        ("BREAKING CHANGE: a\nReviewed-by: Z", "a"),
        ("BREAKING CHANGE:", ""),
        ("not a BREAKING CHANGE: here", None),
        ("breaking change: lower case is not a footer", None),
    ],
)
def test_breaking_note(body: str, note: str | None) -> None:
    assert breaking_note(body) == note


def test_the_subject_is_the_first_line_only(repo: Repo) -> None:
    repo.commit("feat: a subject that\nruns over two lines\n\nand a body")
    repo.commit("Plain subject\nwith a second line")
    found = commits(repo.json())
    assert "a subject that" in found
    assert "Plain subject" in found
    assert all("runs over" not in s and "second line" not in s for s in found)


def test_spacing_and_case_after_the_colon(repo: Repo) -> None:
    repo.commit("fix:  resolve the double space")
    repo.commit("Feat(UI): Shout")
    repo.commit("fix:no space is not conventional")
    found = commits(repo.json())
    assert found["resolve the double space"]["type"] == "fix"
    assert (found["Shout"]["type"], found["Shout"]["scope"]) == ("feat", "UI")
    assert found["fix:no space is not conventional"]["type"] is None


def test_types_without_a_section_keep_their_type_in_markdown(repo: Repo) -> None:
    repo.commit("release: v8.2.2")
    repo.commit("wip(parser): half a thought")
    repo.commit("Update README.md")
    doc = repo.json()
    assert [s["title"] for s in doc["sections"]] == ["Other"]
    lines = repo.markdown("--no-links").splitlines()
    assert any(line.startswith("- release: v8.2.2 (`") for line in lines)
    assert any(line.startswith("- wip(parser): half a thought (`") for line in lines)
    assert any(line.startswith("- Update README.md (`") for line in lines)
