"""Small workspaces written into tmp dirs for engine tests (YAML is a superset of JSON, so the
files are written as JSON: no YAML emitter between the test and what releasectl reads)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any


def make_workspace(
    root: Path,
    *,
    components: dict[str, dict[str, Any]],
    targets: dict[str, dict[str, Any]],
    releases: dict[str, dict[str, Any]] | None = None,
    migrations: dict[str, dict[str, dict[str, str]]] | None = None,
    env: dict[str, Any] | None = None,
    environments: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Write releasectl.yaml (environment `local`, file state), releases and migrations."""
    root.mkdir(parents=True, exist_ok=True)
    local = {"state": {"backend": "file"}, "targets": targets, **(env or {})}
    doc = {
        "apiVersion": "releasectl/v1",
        "kind": "Workspace",
        "name": "test-platform",
        "components": components,
        "environments": {"local": local, **(environments or {})},
    }
    (root / "releasectl.yaml").write_text(json.dumps(doc, indent=2) + "\n")
    for version, pins in (releases or {}).items():
        write_release(root, version, pins)
    for component, by_id in (migrations or {}).items():
        for mid, files in by_id.items():
            add_migration(root, component, mid, files)
    return root


def write_release(
    root: Path, version: str, pins: dict[str, Any], upgrades_from: str | None = None
) -> None:
    manifest: dict[str, Any] = {
        "apiVersion": "releasectl/v1",
        "kind": "Release",
        "version": version,
        "components": {n: p if isinstance(p, dict) else {"version": p} for n, p in pins.items()},
    }
    if upgrades_from:
        manifest["upgrades_from"] = upgrades_from
    path = root / "releases" / f"{version}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def add_migration(root: Path, component: str, mid: str, files: dict[str, str]) -> Path:
    directory = root / "migrations" / component / mid
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        if name.endswith(".sh"):
            path.chmod(0o755)
    return directory


def slow_script_workspace(root: Path, *, up: str, down: str, timeout: int) -> Path:
    """One script component `hooks` at 1.0.0 with one migration (`0001_slow`, scope `data/`,
    `data/value.txt` holding "original"), for tests that stop an apply while `up` runs: `up`
    touches `$RELEASECTL_WORKSPACE/started` once it has begun."""
    make_workspace(
        root,
        components={"hooks": {"type": "script"}},
        targets={"hooks": {}},
        releases={"1.0.0": {"hooks": 1}},
        migrations={
            "hooks": {
                "0001_slow": {
                    "migration.yaml": f"scope: [data]\ntimeout: {timeout}\n",
                    "up.sh": up,
                    "down.sh": down,
                }
            }
        },
    )
    (root / "data").mkdir()
    (root / "data/value.txt").write_text("original\n")
    return root


def add_failing_redis_migration(root: Path) -> None:
    """Redis 0003: its third op hits a hash with a string command, so the step fails in run
    and is rolled back from its backup."""
    add_migration(
        root,
        "redis",
        "0003_broken",
        {
            "up.yaml": """
            ops:
              - set: {key: "feature:flags", value: "on"}
              - hset: {key: "schema:redis:version", fields: {oops: "wrong type"}}
        """,
            "down.yaml": """
            ops:
              - del: {keys: ["feature:flags"]}
        """,
        },
    )
