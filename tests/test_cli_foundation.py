"""validate / plan / status / graph / schema from the CLI on the example workspace, and the bad
inputs of issue 2: each gets its own message (file, line, field) and the documented exit code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from releasectl.models.state import AppliedMigration, ComponentState, State
from releasectl.state.file import FileBackend
from releasectl.workspace.catalogue import checksum_dir
from tests.conftest import REPO, run_cli


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_plan_lists_every_step_in_dependency_order(example: Path) -> None:
    result = run_cli("plan", cwd=example)
    assert result.code == 0, result
    steps = re.findall(
        r"^\s+[+~-]\s+\d+\. (\S+)\s+(up|down|deploy)\s+(\S+) -> (\S+)", result.out, re.MULTILINE
    )
    assert steps == [
        ("config", "up", "0", "1"),
        ("config", "up", "1", "2"),
        ("database", "up", "0", "1"),
        ("policies", "up", "0", "1"),
        ("policy-service", "deploy", "-", "1.1.0"),
        ("redis", "up", "0", "1"),
        ("redis", "up", "1", "2"),
        ("auth-service", "deploy", "-", "1.3.0"),
    ]
    assert "Plan: 6 up, 0 down, 2 deploy" in result.out


def test_plan_json_matches_its_schema(example: Path, tmp_path: Path) -> None:
    result = run_cli("plan", "--format", "json", "--out", tmp_path / "plan.json", cwd=example)
    assert result.code == 0, result
    doc = json.loads(result.out)
    schema = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["format_version"] == 1 and doc["env"] == "local"
    assert doc["release"] == {"from": None, "to": "1.1.0"}
    assert doc["state"] == {"lineage": None, "serial": 0}
    assert len(doc["steps"]) == 8 and len(doc["rollback"]) == 8
    assert set(doc["steps"][0]) >= {
        "component",
        "action",
        "from",
        "to",
        "migration",
        "checksum",
        "backup",
    }
    assert json.loads((tmp_path / "plan.json").read_text()) == doc


def test_plan_markdown_for_pull_requests(example: Path) -> None:
    result = run_cli("plan", "--format", "markdown", cwd=example)
    assert result.code == 0, result
    assert result.out.startswith("<!-- releasectl:plan env=local -->\n")
    assert "| 1 | `config` | up | 0 → 1 | `0001_base_config` | yes |" in result.out
    assert "<details><summary>Rollback (8 steps" in result.out  # tests/test_pr_comment.py


def test_detailed_exitcode(example: Path) -> None:
    assert run_cli("plan", "--detailed-exitcode", cwd=example).code == 2
    assert run_cli("plan", "--release", "1.0.0", "--detailed-exitcode", cwd=example).code == 2


def test_validate_ok(example: Path) -> None:
    result = run_cli("validate", cwd=example)
    assert result.code == 0, result
    assert "ok: rust-security-platform: 6 components" in result.out


def test_graph_formats(example: Path) -> None:
    text = run_cli("graph", cwd=example)
    assert text.code == 0
    assert text.out.splitlines()[0] == "  1. config (kubernetes)"
    dot = run_cli("graph", "--format", "dot", cwd=example).out
    assert '"redis" -> "auth-service";' in dot
    mermaid = run_cli("graph", "--format", "mermaid", cwd=example).out
    assert "policies --> policy_service" in mermaid


def test_status_of_an_empty_environment(example: Path) -> None:
    result = run_cli("status", "--format", "json", cwd=example)
    assert result.code == 0, result
    doc = json.loads(result.out)
    assert doc["env"] == "local" and doc["release"] is None and doc["dirty"] is False
    assert doc["components"]["redis"]["version"] == 0
    assert doc["components"]["auth-service"]["version"] is None
    schema = json.loads((REPO / "schemas" / "status.schema.json").read_text())
    jsonschema.validate(doc, schema)


def test_bad_semantic_version_names_file_line_field(example: Path) -> None:
    edit(example / "releases/1.1.0.yaml", "version: 1.3.0", "version: 1.3")
    result = run_cli("plan", cwd=example)
    assert result.code == 1
    line = next(
        n
        for n, text in enumerate(
            (example / "releases/1.1.0.yaml").read_text().splitlines(), start=1
        )
        if "1.3\n" in text + "\n"
    )
    assert (
        f"releases/1.1.0.yaml:{line}: components.auth-service.version: '1.3' is not a "
        "semantic version"
    ) in result.err


def test_cyclic_needs(example: Path) -> None:
    edit(example / "releasectl.yaml", "type: redis\n", "type: redis\n    needs: [auth-service]\n")
    result = run_cli("plan", cwd=example)
    assert result.code == 1
    assert (
        "components form a cycle through `needs`: auth-service -> redis -> auth-service"
        in result.err
    )
    assert "releasectl.yaml:" in result.err


def test_unknown_component_in_manifest(example: Path) -> None:
    edit(
        example / "releases/1.1.0.yaml",
        "  database: {version: 1}",
        "  database: {version: 1}\n  cache: {version: 1}",
    )
    result = run_cli("plan", cwd=example)
    assert result.code == 1
    assert re.search(
        r"releases/1\.1\.0\.yaml:\d+: components\.cache: unknown component "
        r"'cache'",
        result.err,
    ), result.err


def test_violated_requires(example: Path) -> None:
    edit(example / "releases/1.1.0.yaml", "redis: {version: 2}", "redis: {version: 1}")
    result = run_cli("plan", cwd=example)
    assert result.code == 1
    assert "auth-service 1.3.0 requires redis >=2 but redis is at 1" in result.err


def test_missing_down_on_downgrade_path(example: Path) -> None:
    (example / "migrations/redis/0002_monitoring_performance/down.yaml").unlink()
    backend = FileBackend(example / ".releasectl", "local")
    found = {m.id: m for m in _catalogue(example, "redis")}
    state = State(
        env="local",
        lineage="l",
        serial=1,
        components={
            "redis": ComponentState(
                version=2,
                applied=tuple(
                    AppliedMigration(
                        id=i,
                        version=m.number,
                        checksum=m.checksum,
                        applied_at="2026-01-01T00:00:00Z",
                    )
                    for i, m in found.items()
                ),
            )
        },
    )
    backend.write(state, None)
    result = run_cli("migrate", "redis", "0", "--yes", cwd=example)
    assert result.code == 1
    assert (
        "component 'redis': cannot go down from 2 to 0: no down part in 0002_monitoring_performance"
    ) in result.err


def _catalogue(root: Path, component: str) -> list:  # type: ignore[type-arg]
    from releasectl.workspace import Workspace

    found = Workspace.load(root).catalogue.of(component)
    assert found is not None
    return found.migrations


def test_drift_of_an_applied_migration_exits_3(example: Path) -> None:
    mig = example / "migrations/database/0001_initial_schema"
    backend = FileBackend(example / ".releasectl", "local")
    backend.write(
        State(
            env="local",
            lineage="l",
            serial=1,
            components={
                "database": ComponentState(
                    version=1,
                    applied=(
                        AppliedMigration(
                            id="0001_initial_schema",
                            version=1,
                            checksum=checksum_dir(mig),
                            applied_at="2026-01-01T00:00:00Z",
                        ),
                    ),
                )
            },
        ),
        None,
    )
    assert run_cli("validate", cwd=example).code == 0
    edit(mig / "up.sql", "display_name  VARCHAR(200)", "display_name  VARCHAR(300)")
    result = run_cli("validate", cwd=example)
    assert result.code == 3, result
    assert "migrations/database/0001_initial_schema: changed since it was applied" in result.err
    plan = run_cli("plan", cwd=example)
    assert "! migrations/database/0001_initial_schema: changed since it was applied" in plan.out


def test_crlf_checkout_is_not_drift(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d, nl in ((a, "\n"), (b, "\r\n")):
        d.mkdir()
        (d / "up.sql").write_bytes(f"CREATE TABLE t (id INT);{nl}-- x{nl}".encode())
    (b / "up.sql").write_bytes(b"\xef\xbb\xbf" + (b / "up.sql").read_bytes())
    assert checksum_dir(a) == checksum_dir(b)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: [" * 200 + "]" * 200, "nesting deeper than"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, c in zip("abcdefg", "bcdefgh", strict=True)
            ),
            "nodes (alias expansion?)",
        ),
        ("apiVersion: releasectl/v1\napiVersion: releasectl/v1\n", "found duplicate key"),
        ("!!python/object:os.system {}\n", "not allowed"),
        ("key: [unclosed\n", "invalid YAML"),
    ],
)
def test_hostile_yaml_is_refused(example: Path, content: str, message: str) -> None:
    (example / "releases/1.1.0.yaml").write_text(content)
    result = run_cli("plan", "--release", "1.1.0", cwd=example)
    assert result.code == 1, result
    assert message in result.err
    assert result.err.startswith("error: releases/1.1.0.yaml")


def test_oversized_manifest_is_refused(example: Path) -> None:
    (example / "releases/1.1.0.yaml").write_text("# " + "x" * (5 * 1024 * 1024) + "\n")
    result = run_cli("plan", "--release", "1.1.0", cwd=example)
    assert result.code == 1
    assert "releases/1.1.0.yaml: file is larger than" in result.err


def test_unknown_field_and_missing_field(example: Path) -> None:
    edit(example / "releasectl.yaml", "    type: redis\n", "    type: redis\n    colour: red\n")
    result = run_cli("validate", cwd=example)
    assert result.code == 1
    assert re.search(
        r"releasectl\.yaml:\d+: components\.redis\.colour: unknown field", result.err
    ), result.err


def test_catalogue_errors(example: Path) -> None:
    base = example / "migrations/database"
    (base / "0003_gap").mkdir()
    (base / "0003_gap/up.sql").write_text("SELECT 1;")
    (base / "not-a-migration").mkdir()
    (base / "0001_duplicate").mkdir()
    (base / "0001_duplicate/up.sql").write_text("SELECT 1;")
    (base / "0004_empty").mkdir()
    result = run_cli("validate", cwd=example)
    assert result.code == 1
    assert (
        "migrations/database/not-a-migration: migration directory name must be NNNN_slug"
        in result.err
    )
    assert "duplicate migration number 0001" in result.err
    assert "migrations/database/0004_empty: a sql migration needs up.sql" in result.err
    assert "migrations/database: migration numbers have gaps: missing 0002" in result.err


def test_unknown_environment_and_usage_errors(example: Path) -> None:
    result = run_cli("plan", "--env", "qa", cwd=example)
    assert result.code == 1
    assert "unknown environment 'qa' (environments: local, prod, staging)" in result.err
    assert run_cli("frobnicate", cwd=example).code == 64
    assert run_cli("plan", "--no-such-flag", cwd=example).code == 64


def test_schemas_are_up_to_date() -> None:
    result = run_cli("schema", "export", "--check", "--dir", REPO / "schemas", cwd=REPO)
    assert result.code == 0, f"run `releasectl schema export`: {result.err}"


def test_help_lists_every_command() -> None:
    result = run_cli("--help")
    assert result.code == 0
    for name in (
        "plan",
        "apply",
        "migrate",
        "rollback",
        "backup",
        "restore",
        "status",
        "validate",
        "version",
        "release",
        "changelog",
        "history",
        "recover",
    ):
        assert f"\n  {name} " in result.out


def test_rollback_only_goes_down(example: Path) -> None:
    result = run_cli("rollback", "redis", "2", "--yes", cwd=example)
    assert result.code == 1
    assert "rollback goes down: 'redis' is below 2; use `releasectl migrate redis 2`" in result.err
    assert not (example / ".releasectl/state/local.json").exists()
