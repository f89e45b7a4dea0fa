"""`releasectl release create`: a new manifest from the newest one, comments kept, dated,
upgrading from the release it was made from; refusals exit 1 and write nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasectl.release.manifests import create_release, today_utc
from releasectl.workspace import Workspace
from tests.conftest import run_cli


def test_create_copies_the_newest_manifest_with_its_comments(example: Path) -> None:
    created = create_release(
        Workspace.load(example), "1.2.0", message="Faster sessions", today="2027-01-02"
    )
    assert created.source == "1.1.0"
    assert created.upgrades_from == ">=1.1.0,<1.2.0"
    source = (example / "releases/1.1.0.yaml").read_text()
    expected = (
        source.replace("version: 1.1.0\n", "version: 1.2.0\n")
        .replace(
            "description: Enhanced security and monitoring\n", "description: Faster sessions\n"
        )
        .replace('date: "2026-11-02"\n', 'date: "2027-01-02"\n')
        .replace('upgrades_from: ">=1.0.0,<1.1.0"', 'upgrades_from: ">=1.1.0,<1.2.0"')
    )
    assert (example / "releases/1.2.0.yaml").read_text() == expected
    assert "# monitoring, performance settings and indexes" in expected  # comments came along


def test_create_via_cli_dates_today_and_validates(example: Path) -> None:
    before = today_utc()
    result = run_cli("release", "create", "1.2.0", "-m", "Next: things", cwd=example)
    assert result.code == 0, result
    assert "created release 1.2.0 (releases/1.2.0.yaml) from 1.1.0" in result.out
    manifest = Workspace.load(example).release("1.2.0").manifest
    assert manifest.description == "Next: things"
    assert manifest.date in {before, today_utc()}
    assert manifest.version == "1.2.0"


def test_create_inserts_missing_fields_and_drops_stale_text(example: Path) -> None:
    (example / "releases/1.1.0.yaml").unlink()
    old = example / "releases/1.0.0.yaml"
    old.write_text(old.read_text() + "notes: |\n  only true for 1.0.0\n")
    create_release(Workspace.load(example), "1.0.1", today="2027-03-04")
    text = (example / "releases/1.0.1.yaml").read_text()
    source = old.read_text()
    expected = (
        source.replace(
            "version: 1.0.0\ndescription: Initial production release\n", "version: 1.0.1\n"
        )
        .replace('date: "2026-09-01"\n', 'date: "2027-03-04"\n')
        .replace("notes: |\n  only true for 1.0.0\n", "")
        + 'upgrades_from: ">=1.0.0,<1.0.1"\n'
    )
    assert text == expected


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("1.1.0", "release 1.1.0 already exists: releases/1.1.0.yaml"),
        ("1.0.5", "release 1.0.5 is not greater than the newest release 1.1.0"),
        ("1.1.0+build.1", "is not greater than the newest release 1.1.0"),
        ("1.1.0-rc.1", "is not greater than the newest release 1.1.0"),
        ("1.2", "'1.2' is not a semantic version"),
    ],
)
def test_create_refuses(example: Path, version: str, message: str) -> None:
    before = sorted(p.name for p in (example / "releases").iterdir())
    result = run_cli("release", "create", version, cwd=example)
    assert result.code == 1, result
    assert message in result.err
    assert sorted(p.name for p in (example / "releases").iterdir()) == before


def test_create_without_any_manifest(example: Path) -> None:
    for path in (example / "releases").iterdir():
        path.unlink()
    result = run_cli("release", "create", "1.0.0", cwd=example)
    assert result.code == 1
    assert "no release manifest in releases/ to start from" in result.err
