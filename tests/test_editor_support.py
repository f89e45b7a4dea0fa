"""Editors: manifests written by `init`, `release create` and the example name their JSON
Schema (`# yaml-language-server: $schema=...`); the schemas describe every field, check
versions and constraints with patterns, and tell target settings apart by `type`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from releasectl.models.constraints import SCHEMA_PATTERN, check_syntax
from releasectl.workspace import yamlio
from tests.conftest import REPO, run_cli

DIRECTIVE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


def schema_of(path: Path) -> dict[str, Any]:
    """The schema a file's first line points at, resolved relative to the file."""
    match = DIRECTIVE.match(path.read_text().splitlines()[0])
    assert match, f"{path} does not start with a yaml-language-server line"
    target = (path.parent / match[1]).resolve()
    assert target.is_file(), f"{path} points at {target}, which does not exist"
    loaded: dict[str, Any] = json.loads(target.read_text())
    return loaded


def data_of(path: Path) -> Any:
    return yamlio.loads(path.read_text(), path.name).data


def manifests(root: Path) -> list[Path]:
    return [root / "releasectl.yaml", *sorted((root / "releases").glob("*.yaml"))]


def test_the_example_names_its_schemas_and_matches_them() -> None:
    for path in manifests(REPO):
        schema = schema_of(path)
        jsonschema.validate(data_of(path), schema)
    assert schema_of(REPO / "releasectl.yaml")["$id"].endswith("/workspace.schema.json")
    assert schema_of(REPO / "releases/1.1.0.yaml")["$id"].endswith("/release.schema.json")


def test_init_writes_the_schemas_its_files_name(tmp_path: Path) -> None:
    root = tmp_path / "app"
    assert run_cli("init", root).code == 0
    for path in manifests(root):
        jsonschema.validate(data_of(path), schema_of(path))
    assert (root / "schemas/plan.schema.json").is_file()
    assert run_cli("schema", "export", "--check", cwd=root).code == 0  # the current schemas


def test_release_create_keeps_or_adds_the_line(example: Path) -> None:
    assert run_cli("release", "create", "1.2.0", cwd=example).code == 0
    created = (example / "releases/1.2.0.yaml").read_text()
    assert created.count("yaml-language-server") == 1
    jsonschema.validate(
        data_of(example / "releases/1.2.0.yaml"), schema_of(example / "releases/1.2.0.yaml")
    )

    for path in (example / "releases").glob("*.yaml"):  # a workspace without the lines
        path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))
    assert run_cli("release", "create", "1.3.0", cwd=example).code == 0
    added = example / "releases/1.3.0.yaml"
    assert added.read_text().splitlines()[0] == (
        "# yaml-language-server: $schema=../schemas/release.schema.json"
    )
    jsonschema.validate(data_of(added), schema_of(added))


def test_every_field_of_every_schema_has_a_description() -> None:
    missing = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, prop in (node.get("properties") or {}).items():
                if "description" not in prop:
                    missing.append(f"{where}.{name}")
            for key, value in node.items():
                if key != "if":  # a condition, not fields
                    walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    files = sorted((REPO / "schemas").glob("*.schema.json"))
    assert len(files) >= 9
    for path in files:
        walk(json.loads(path.read_text()), path.name)
    assert missing == []


@pytest.mark.parametrize(
    "text",
    [
        ">=2",
        ">=1.1.0,<2.0.0",
        "^1.2",
        "~1.2.3",
        "==1.0.0",
        "*",
        "1.2.3-rc.1",
        " >= 1 , < 3 ",
        "!=4",
        "=1.0.0+build.5",
        ">=1.2.3.4",
        "abc",
        ">=",
        "1.2,",
        ",1",
        ">>1",
        "~x",
        "1..2",
        "",
    ],
)
def test_the_constraint_pattern_agrees_with_the_parser(text: str) -> None:
    try:
        check_syntax(text)
        parses = True
    except ValueError:
        parses = False
    assert bool(re.match(SCHEMA_PATTERN, text)) == parses


def _release(**components: Any) -> dict[str, Any]:
    return {
        "apiVersion": "releasectl/v1",
        "kind": "Release",
        "version": "1.0.0",
        "components": components,
    }


def test_versions_and_constraints_are_checked_by_the_schema() -> None:
    schema = json.loads((REPO / "schemas/release.schema.json").read_text())
    jsonschema.validate(
        _release(redis={"version": 2}, app={"version": "1.3.0", "requires": {"redis": ">=2"}}),
        schema,
    )
    for bad in (
        _release(app={"version": "1.3"}),
        _release(app={"version": 1.3}),
        _release(app={"version": "1.0.0", "requires": {"redis": ">=2,<"}}),
        {**_release(), "version": "v1.0.0"},
        {**_release(), "upgrades_from": ">=1.0.0,,"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def _workspace(target: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "releasectl/v1",
        "kind": "Workspace",
        "name": "w",
        "components": {"redis": {"type": "redis"}},
        "environments": {"local": {"targets": {"redis": target}}},
    }


def test_target_settings_are_told_apart_by_type(example: Path) -> None:
    schema = json.loads((REPO / "schemas/workspace.schema.json").read_text())
    assert schema["$defs"]["TargetSettings"]["discriminator"]["propertyName"] == "type"
    jsonschema.validate(_workspace({"url": "redis://x"}), schema)  # without type: any kind
    jsonschema.validate(_workspace({"type": "redis", "url": "redis://x"}), schema)
    jsonschema.validate(_workspace({"mode": "render", "path": "out"}), schema)  # a kubernetes one
    with pytest.raises(jsonschema.ValidationError):  # typed: only that kind's fields
        jsonschema.validate(_workspace({"type": "redis", "mode": "render", "path": "out"}), schema)

    config = example / "releasectl.yaml"
    text = config.read_text()
    config.write_text(
        text.replace(
            'redis: {url: "redis+embedded://.releasectl/local/redis.db"}',
            'redis: {type: redis, url: "redis+embedded://.releasectl/local/redis.db"}',
        )
    )
    assert run_cli("validate", cwd=example).code == 0
    config.write_text(
        text.replace(
            'redis: {url: "redis+embedded://.releasectl/local/redis.db"}',
            'redis: {type: sql, url: "redis+embedded://.releasectl/local/redis.db"}',
        )
    )
    wrong = run_cli("validate", "--format", "json", cwd=example)
    assert wrong.code == 1
    error = json.loads(wrong.out)["error"]
    assert error["file"] == "releasectl.yaml"
    assert error["field"] == "environments.local.targets.redis.type"
