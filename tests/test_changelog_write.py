"""`changelog --write` and `write_section`: CHANGELOG.md is created with the Keep-a-Changelog
header, a new release goes on top, the same release is replaced, older bytes stay as they were."""

from __future__ import annotations

import json
from pathlib import Path

from releasectl.release.changelog import HEADER, write_section
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
    (repo / "sub").mkdir()
    result = run_cli("changelog", "--from-root", "--write", cwd=repo / "sub")
    assert result.code == 0, result
    path = repo / "CHANGELOG.md"  # the top of the work tree, not the current directory
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
    assert result.out == f"replaced section [Unreleased] in {path}\n"
    text = path.read_text()
    assert text.count("## [Unreleased]") == 1
    assert text.endswith(first.removeprefix(HEADER + "\n"))
