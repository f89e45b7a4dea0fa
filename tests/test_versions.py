"""`releasectl version list | set | bump`: through the CLI, against the example workspace in a
git repo; every edit is checked byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from releasectl.errors import InputError
from releasectl.models.state import AppliedMigration, ComponentState, State
from releasectl.release.versions import Part, next_version
from releasectl.state import open_backend
from releasectl.workspace import Workspace
from tests.conftest import git, run_cli

MANIFEST = "releases/1.1.0.yaml"


def read(ws: Path, rel: str = MANIFEST) -> bytes:
    return (ws / rel).read_bytes()


def swap(before: bytes, old: bytes, new: bytes) -> bytes:
    assert before.count(old) == 1, old
    return before.replace(old, new)


def record_state(ws: Path, versions: dict[str, int | str], release: str | None) -> None:
    workspace = Workspace.load(ws)
    components = {
        name: ComponentState(
            version=v,
            applied=tuple(
                AppliedMigration(id=f"{n:04d}_x", version=n, checksum="0" * 64, applied_at="t")
                for n in range(1, v + 1)
            )
            if isinstance(v, int)
            else (),
        )
        for name, v in versions.items()
    }
    state = State(env="local", lineage="l1", serial=1, release=release, components=components)
    open_backend(workspace, "local").write(state, None)


# --- list ----------------------------------------------------------------------------------


def test_list_shows_the_newest_manifest(example: Path) -> None:
    result = run_cli("version", "list", cwd=example)
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[0] == "release 1.1.0 (releases/1.1.0.yaml)"
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert rows["redis"] == ["redis", "2"]
    assert rows["auth-service"] == ["service", "1.3.0"]
    assert rows["policy-service"] == ["service", "1.1.0"]
    assert len(rows) == 6


def test_list_with_env_marks_differences(example: Path) -> None:
    record_state(example, {"redis": 2, "config": 1, "auth-service": "1.3.0"}, "1.0.0")
    result = run_cli("version", "list", "--env", "local", "--format", "json", cwd=example)
    assert result.code == 0, result
    data = json.loads(result.out)
    assert data["release"] == "1.1.0"
    assert data["env"] == "local"
    assert data["recorded_release"] == "1.0.0"
    comps = data["components"]
    assert comps["redis"] == {"type": "redis", "version": 2, "recorded": 2, "differs": False}
    assert comps["config"] == {"type": "kubernetes", "version": 2, "recorded": 1, "differs": True}
    assert comps["database"]["recorded"] == 0  # nothing applied: schema version 0
    assert comps["policy-service"]["recorded"] is None
    assert comps["auth-service"]["differs"] is False

    text = run_cli("version", "list", "--env", "local", cwd=example)
    marked = {line.split()[0] for line in text.out.splitlines() if line.endswith("*")}
    assert marked == {"config", "database", "policies", "policy-service"}
    assert "4 component(s) differ" in text.out


def test_list_without_state_is_all_different(example: Path) -> None:
    data = json.loads(run_cli("version", "list", "-e", "local", "-f", "json", cwd=example).out)
    assert all(c["differs"] for c in data["components"].values())


# --- set -----------------------------------------------------------------------------------


def test_set_service_changes_exactly_the_scalar(example: Path) -> None:
    before = read(example)
    result = run_cli("version", "set", "auth-service", "1.4.0", cwd=example)
    assert result.code == 0, result
    assert result.out == "auth-service: 1.3.0 -> 1.4.0 in releases/1.1.0.yaml\n"
    assert read(example) == swap(before, b"    version: 1.3.0\n", b"    version: 1.4.0\n")
    diff = git(example, "diff", "--numstat")
    assert diff.split() == ["1", "1", MANIFEST]


def test_set_migrated_in_flow_mapping_keeps_comment_alignment(example: Path) -> None:
    before = read(example, "releases/1.0.0.yaml")
    newest = read(example)
    assert run_cli("version", "set", "redis", "2", "--release", "1.0.0", cwd=example).code == 0
    assert read(example, "releases/1.0.0.yaml") == swap(
        before, b"  redis: {version: 1}\n", b"  redis: {version: 2}\n"
    )
    assert read(example) == newest


def test_set_same_version_writes_nothing(example: Path) -> None:
    path = example / MANIFEST
    mtime = path.stat().st_mtime_ns
    result = run_cli("version", "set", "redis", "2", cwd=example)
    assert result.code == 0, result
    assert "already 2" in result.out
    assert path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("component", "value", "message"),
    [
        ("redis", "3", "redis has no migration 0003: migrations/redis/ goes up to 0002"),
        ("redis", "1.0.0", "'1.0.0' is not a migration number"),
        ("auth-service", "1.4", "'1.4' is not a semantic version"),
        ("auth-service", "2", "'2' is not a semantic version"),
        ("nope", "1", "unknown component 'nope'"),
    ],
)
def test_set_refuses_bad_versions(example: Path, component: str, value: str, message: str) -> None:
    before = read(example)
    result = run_cli("version", "set", component, value, cwd=example)
    assert result.code == 1, result
    assert message in result.err
    assert read(example) == before


def test_set_unknown_release(example: Path) -> None:
    result = run_cli("version", "set", "redis", "1", "--release", "9.9.9", cwd=example)
    assert result.code == 1
    assert "release 9.9.9 not found" in result.err


def test_set_warns_when_requires_break(example: Path) -> None:
    result = run_cli("version", "set", "policy-service", "2.0.0", cwd=example)
    assert result.code == 0, result
    assert (
        "warning: auth-service 1.3.0 requires policy-service >=1.1.0,<2.0.0 but policy-service "
        "is at 2.0.0" in result.err
    )


def test_set_adds_a_missing_pin_in_the_siblings_style(example: Path) -> None:
    path = example / MANIFEST
    text = path.read_text()
    path.write_text(text.replace("  database: {version: 1}\n", ""))
    before = path.read_bytes()
    result = run_cli("version", "set", "database", "1", cwd=example)
    assert result.code == 0, result
    assert result.out == "database: - -> 1 in releases/1.1.0.yaml\n"
    anchor = b'database: ">=1"}\n'
    assert path.read_bytes() == swap(before, anchor, anchor + b"  database: {version: 1}\n")


def test_set_keeps_crlf_and_four_space_indent(example: Path) -> None:
    path = example / "releases/1.2.0.yaml"
    lines = [
        "# four spaces, CRLF",
        "apiVersion: releasectl/v1",
        "kind: Release",
        "version: 1.2.0",
        "components:",
        "    redis:",
        "        version: 2",
        "    config: {version: 2}",
        "    policies: {version: 1}",
        "    database: {version: 1}",
        "    policy-service: {version: 1.1.0}",
        "    auth-service:",
        "        version: '1.3.0'",
        "",
    ]
    path.write_bytes("\r\n".join(lines).encode())
    before = path.read_bytes()
    assert run_cli("version", "set", "auth-service", "1.3.1", cwd=example).code == 0
    assert run_cli("version", "set", "redis", "1", cwd=example).code == 0
    after = swap(before, b"'1.3.0'\r\n", b"'1.3.1'\r\n")
    assert path.read_bytes() == swap(after, b"version: 2\r\n", b"version: 1\r\n")


# --- bump ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "part", "pre", "build", "expected"),
    [
        ("1.3.0", "major", None, None, "2.0.0"),
        ("1.3.0", "minor", None, None, "1.4.0"),
        ("1.3.0", "patch", None, None, "1.3.1"),
        ("1.3.0", "prerelease", None, None, "1.3.1-rc.1"),
        ("1.3.1-rc.1", "prerelease", None, None, "1.3.1-rc.2"),
        ("1.3.1-alpha.2", "prerelease", "beta", None, "1.3.1-beta.1"),
        ("1.3.0", "minor", "rc", None, "1.4.0-rc.1"),
        ("1.4.0-rc.1", "minor", None, None, "1.4.0"),  # finishes the pre-release
        ("2.0.0-rc.1", "major", "rc", None, "2.0.0-rc.2"),
        ("1.3.0", "patch", None, "build.7", "1.3.1+build.7"),
    ],
)
def test_next_version(
    current: str, part: Part, pre: str | None, build: str | None, expected: str
) -> None:
    assert next_version(current, part, pre=pre, build=build) == expected


def test_next_version_refuses_bad_metadata() -> None:
    with pytest.raises(InputError):
        next_version("1.0.0", "patch", build="not valid!")


def test_bump_service(example: Path) -> None:
    before = read(example)
    result = run_cli("version", "bump", "policy-service", "minor", "--pre", "rc", cwd=example)
    assert result.code == 0, result
    assert result.out == "policy-service: 1.1.0 -> 1.2.0-rc.1 in releases/1.1.0.yaml\n"
    assert read(example) == swap(before, b"{version: 1.1.0, ", b"{version: 1.2.0-rc.1, ")
    assert run_cli("version", "bump", "policy-service", "prerelease", cwd=example).code == 0
    assert run_cli("version", "bump", "policy-service", "patch", cwd=example).code == 0
    assert read(example) == swap(before, b"{version: 1.1.0, ", b"{version: 1.2.0, ")


def test_bump_migrated_component_is_refused(example: Path) -> None:
    result = run_cli("version", "bump", "redis", "major", cwd=example)
    assert result.code == 1
    assert "use `releasectl version set redis N`" in result.err


def test_bump_bad_part_is_a_usage_error(example: Path) -> None:
    assert run_cli("version", "bump", "redis", "huge", cwd=example).code == 64


def test_bump_platform_creates_the_next_release(example: Path) -> None:
    result = run_cli("version", "bump", "platform", "minor", "-m", "Next", cwd=example)
    assert result.code == 0, result
    assert result.out.startswith("created release 1.2.0 (releases/1.2.0.yaml) from 1.1.0")
    workspace = Workspace.load(example)
    created = workspace.release("1.2.0").manifest
    assert created.description == "Next"
    assert created.upgrades_from == ">=1.1.0,<1.2.0"
    assert {n: p.version for n, p in created.components.items()} == {
        n: p.version for n, p in workspace.release("1.1.0").manifest.components.items()
    }
    again = run_cli("version", "bump", "platform", "patch", "--pre", "rc", cwd=example)
    assert again.code == 0, again
    assert (example / "releases/1.2.1-rc.1.yaml").is_file()
