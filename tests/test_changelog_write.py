"""`changelog --write` and `write_section`: CHANGELOG.md is created with the Keep-a-Changelog
header, a new release goes on top, the same release is replaced, older bytes stay as they were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from releasectl.release.changelog import HEADER, Item, write_section, write_sections
from tests.changelog_repo import Repo
from tests.conftest import git, init_repo, run_cli

OLDER = (
    "## [1.0.0] - 2026-09-01\n"
    "\n"
    "### Features\n"
    "\n"
    "- hand-written   line with  odd spacing\t\n"
    "*   a different bullet\n"
    "\n"
    "## [0.9.0]\n"
    "Written by a person.\n"
    "\n"
    "[1.0.0]: https://example.com/compare/v0.9.0...v1.0.0\n"
    "[0.9.0]: https://example.com/releases/v0.9.0\n"
)


def section(version: str, line: str) -> str:
    return f"## [{version}] - 2026-11-02\n\n### Features\n\n- {line}\n"


def test_create_add_and_replace_keep_older_sections_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "CHANGELOG.md"
    assert write_section(path, section("1.0.0", "first"), "1.0.0") == "created"
    assert path.read_text() == HEADER + "\n" + section("1.0.0", "first")

    path.write_text(HEADER + "\n" + OLDER)
    assert write_section(path, section("1.1.0", "one"), "1.1.0") == "added"
    assert path.read_text() == HEADER + "\n" + section("1.1.0", "one") + "\n" + OLDER

    assert write_section(path, section("1.1.0", "two"), "1.1.0") == "replaced"
    text = path.read_text()
    assert text == HEADER + "\n" + section("1.1.0", "two") + "\n" + OLDER
    assert text.count("## [1.1.0]") == 1

    # replacing the last section stops at the link references below it
    assert write_section(path, "## [0.9.0]\nRegenerated.\n", "0.9.0") == "replaced"
    assert path.read_text().endswith(
        "## [0.9.0]\nRegenerated.\n\n[1.0.0]: https://example.com/compare/v0.9.0...v1.0.0\n[0.9.0]: https://example.com/releases/v0.9.0\n"
    )


def test_a_release_takes_the_place_of_unreleased(tmp_path: Path) -> None:
    path = tmp_path / "CHANGELOG.md"
    write_section(path, "## [Unreleased]\n\n- pending\n", None)
    path.write_text(path.read_text() + "\n" + OLDER)
    assert write_section(path, "## [Unreleased]\n\n- more pending\n", None) == "replaced"
    assert "- more pending\n\n## [1.0.0]" in path.read_text()
    assert write_section(path, section("1.1.0", "released"), "1.1.0") == "replaced"
    text = path.read_text()
    assert "Unreleased" not in text and "pending" not in text
    assert text == HEADER + "\n" + section("1.1.0", "released") + "\n" + OLDER


def test_crlf_files_stay_crlf_and_a_file_without_sections(tmp_path: Path) -> None:
    path = tmp_path / "CHANGELOG.md"
    path.write_bytes(b"# Changelog\r\n\r\n## [1.0.0]\r\n\r\n- old\r\n")
    write_section(path, section("1.1.0", "new"), "1.1.0")
    data = path.read_bytes()
    assert data.endswith(b"\r\n\r\n## [1.0.0]\r\n\r\n- old\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    bare = tmp_path / "BARE.md"
    bare.write_text("# Notes\nno newline at the end")
    write_section(bare, section("2.0.0", "x"), "2.0.0")
    assert bare.read_text() == "# Notes\nno newline at the end\n\n" + section("2.0.0", "x")


def test_cli_write_prepends_then_replaces(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    git(repo, "commit", "-q", "--allow-empty", "-m", "feat: one")
    git(repo, "tag", "v1.0.0")
    result = run_cli("changelog", "--from-root", "--write", cwd=repo)
    assert result.code == 0, result
    path = repo / "CHANGELOG.md"
    assert result.out == f"created section [1.0.0] in {path}\n"
    first = path.read_text()
    assert first.startswith(HEADER + "\n## [1.0.0] - ")
    assert "- one (`" in first

    git(repo, "commit", "-q", "--allow-empty", "-m", "fix: two")
    result = run_cli("changelog", "--write", "--format", "json", cwd=repo)
    assert result.code == 0, result
    assert json.loads(result.out)["from"] == "v1.0.0"  # JSON still goes to stdout
    assert result.err == f"added section [Unreleased] in {path}\n"
    result = run_cli("changelog", "--write", cwd=repo)
    assert result.out == f"unchanged section [Unreleased] in {path}\n"
    text = path.read_text()
    assert text.count("## [Unreleased]") == 1
    assert text.endswith(first.removeprefix(HEADER + "\n"))


# --- heading styles, idempotency, order ---------------------------------------------------

GIT_CLIFF_STYLE = (
    "# Changelog\n"
    "\n"
    "## [2.13.1](https://github.com/o/r/compare/v2.13.0..v2.13.1) - 2024-05-01\n"
    "\n"
    "### Bug Fixes\n"
    "\n"
    "- hand-written fix\n"
    "\n"
    "## [2.13.0](https://github.com/o/r/compare/v2.12.0..v2.13.0) - 2024-04-01\n"
    "\n"
    "- older\n"
)
CONVENTIONAL_STYLE = (
    "## <small>[8.2.2](https://github.com/o/r/compare/v8.2.1...v8.2.2) (2025-01-02)</small>\n"
    "\n"
    "* fix: something ([abc1234](https://github.com/o/r/commit/abc1234))\n"
    "\n"
    "# [8.2.0](https://github.com/o/r/compare/v8.1.0...v8.2.0) (2024-12-01)\n"
    "\n"
    "### Features\n"
    "\n"
    "* a feature\n"
)


@pytest.mark.parametrize(
    ("original", "version", "kept"),
    [
        (GIT_CLIFF_STYLE, "2.13.1", "## [2.13.0](https://github.com/o/r/compare/v2.12.0..v2.13.0)"),
        (CONVENTIONAL_STYLE, "8.2.2", "# [8.2.0](https://github.com/o/r/compare/v8.1.0...v8.2.0)"),
        (CONVENTIONAL_STYLE, "8.2.0", "## <small>[8.2.2]"),
        ("## v3.0.0\n\n- old\n", "3.0.0", None),
        ("## pkg@1.2.3 (2024-01-01)\n\n- old\n", "1.2.3", None),
    ],
)
def test_linked_and_prefixed_headings_are_replaced_not_duplicated(
    tmp_path: Path, original: str, version: str, kept: str | None
) -> None:
    path = tmp_path / "CHANGELOG.md"
    path.write_text(original)
    assert write_section(path, section(version, "regenerated"), version) == "replaced"
    text = path.read_text()
    assert text.count(f"[{version}]") == 1 and "regenerated" in text
    if kept is not None:
        assert kept in text
    again = text
    assert write_section(path, section(version, "regenerated"), version) == "unchanged"
    assert path.read_text() == again


def test_a_section_with_content_is_never_replaced_by_no_changes(tmp_path: Path) -> None:
    path = tmp_path / "CHANGELOG.md"
    path.write_text(HEADER + "\n" + OLDER)
    before = path.read_bytes()
    empty = "## [1.0.0] - 2026-09-01\n\nNo changes.\n"
    outcome = write_sections(path, [Item("1.0.0", empty, empty=True)])
    assert outcome == [("1.0.0", "kept")]
    assert path.read_bytes() == before
    # an empty section that does not exist yet is written
    assert write_sections(path, [Item("1.1.0", "## [1.1.0]\n\nNo changes.\n", True)]) == [
        ("1.1.0", "added")
    ]


def test_the_file_keeps_its_trailing_newline_or_its_absence(tmp_path: Path) -> None:
    path = tmp_path / "CHANGELOG.md"
    path.write_text("# Changelog\n\n## [1.0.0]\n\n- old")
    write_section(path, section("1.0.0", "new"), "1.0.0")
    assert path.read_text() == "# Changelog\n\n" + section("1.0.0", "new").rstrip("\n")
    path.write_text("# Changelog\n\n## [1.0.0]\n\n- old\n\n\n")
    write_section(path, section("1.0.0", "new"), "1.0.0")
    assert path.read_text() == "# Changelog\n\n" + section("1.0.0", "new") + "\n\n"


def test_sections_go_where_their_version_sorts(tmp_path: Path) -> None:
    path = tmp_path / "CHANGELOG.md"
    path.write_text(HEADER + "\n## [Unreleased]\n\n- pending\n\n" + OLDER)
    write_sections(path, [Item("0.9.5", section("0.9.5", "between"))])
    write_sections(path, [Item("0.8.0", section("0.8.0", "oldest"))])
    text = path.read_text()
    order = [line for line in text.splitlines() if line.startswith("## ")]
    assert order == [
        "## [Unreleased]",
        "## [1.0.0] - 2026-09-01",
        "## [0.9.5] - 2026-11-02",
        "## [0.9.0]",
        "## [0.8.0] - 2026-11-02",
    ]
    assert text.endswith("[0.9.0]: https://example.com/releases/v0.9.0\n")  # refs stay last
    assert "- pending" in text  # an older release does not take Unreleased's place


def test_headings_in_code_blocks_are_text(tmp_path: Path) -> None:
    path = tmp_path / "CHANGELOG.md"
    path.write_text("## [1.0.0]\n\n```sh\n## 1.1.0\n```\n")
    assert write_section(path, section("1.1.0", "real"), "1.1.0") == "added"
    assert path.read_text().startswith(section("1.1.0", "real") + "\n## [1.0.0]")


def release_history(root: Path) -> Repo:
    r = Repo(root)
    r.commit("chore: init")
    r.tag("v1.0.0")
    r.commit("feat: one")
    r.tag("v1.1.0")
    r.commit("fix: two")
    r.tag("v1.2.0")
    r.commit("docs: three")
    return r


def test_writing_a_range_twice_changes_nothing(tmp_path: Path) -> None:
    r = release_history(tmp_path / "repo")
    path = r.path / "CHANGELOG.md"
    path.write_text(HEADER + "\n" + CONVENTIONAL_STYLE)
    result = r.cli("v1.0.0..HEAD", "--write")
    assert result.code == 0, result
    assert result.out.splitlines() == [
        f"added section [Unreleased] in {path}",
        f"added section [1.2.0] in {path}",
        f"added section [1.1.0] in {path}",
    ]
    first = path.read_bytes()
    headings = [line for line in first.decode().splitlines() if line.startswith(("## ", "# ["))]
    assert [h.split("]")[0] for h in headings] == [
        "## [Unreleased",
        "## <small>[8.2.2",
        "# [8.2.0",
        "## [1.2.0",
        "## [1.1.0",
    ]  # Unreleased on top; released versions where they sort, whatever the heading style
    again = r.cli("v1.0.0", "HEAD", "--write")
    assert again.out.count("unchanged section") == 3
    assert path.read_bytes() == first


def test_write_in_a_subdirectory_or_with_path(tmp_path: Path) -> None:
    r = release_history(tmp_path / "repo")
    r.commit("feat(pkg): in the package", {"packages/pkg/index.js": "1\n"})
    r.commit("fix(root): at the top", {"top.txt": "1\n"})
    sub = r.path / "packages" / "pkg"
    result = r.cli("--write", cwd=sub)  # git-cliff's rule: the directory's commits
    assert result.code == 0, result
    assert (sub / "CHANGELOG.md").is_file() and not (r.path / "CHANGELOG.md").exists()
    assert "in the package" in (sub / "CHANGELOG.md").read_text()
    assert "at the top" not in (sub / "CHANGELOG.md").read_text()
    assert "note: only commits that touch packages/pkg/" in result.err
    result = r.cli("--path", "packages/pkg", "--write", "--format", "json")
    assert result.code == 0, result
    assert "unchanged section [Unreleased]" in result.err
    # --path pointing at the top from inside the package: the whole repository
    doc = r.json("--path", "../..", cwd=sub)
    assert {"in the package", "at the top"} <= {
        c["subject"] for s in doc["sections"] for c in s["commits"]
    }
    assert doc["notes"] == []
