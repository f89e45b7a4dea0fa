"""On a fresh clone (no scan cache, as in CI) `plan` still catches a broken part of any migrated
type among hundreds of good ones, before anything runs, with file and line; and a second run
(the cache now filled) reports it again. Enough migrations that the checks are shared with
forked helpers and the script parts are parsed in batches. Real git, bash, cedarpy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, init_repo, run_proc

COUNT = 450  # above planning.checks.CHECKS_IN_HELPERS: the checks run in forked helpers too
BROKEN = 401  # in a helper's share

GOOD: dict[str, dict[str, str]] = {
    "script": {
        "up.sh": 'set -eu\necho up {n} >> "$RELEASECTL_WORKSPACE/log"\n',
        "down.sh": "echo down {n}\n",
    },
    "sql": {
        "up.sql": "CREATE TABLE t{n} (id INTEGER PRIMARY KEY, name TEXT);\n",
        "down.sql": "DROP TABLE t{n};\n",
    },
    "redis": {"up.yaml": 'ops:\n  - set: {key: "app:step", value: "{n}"}\n'},
    "redis-python": {
        "migration.py": (
            'def up(r):\n    r.set("app:step", "{n}")\n\n\ndef down(r):\n    r.delete("app:step")\n'
        ),
        "migration.yaml": 'scope: ["app:*"]\n',
    },
    "cedar": {
        "schema.cedarschema": (
            "entity User;\nentity Doc;\naction view appliesTo { principal: User, resource: Doc };\n"
        ),
        "policies.cedar": (
            '@id("p{n}")\npermit (principal == User::"u{n}", action == Action::"view", resource);\n'
        ),
    },
    "kubernetes": {
        "configmap.yaml": (
            'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  step: "{n}"\n'
        ),
    },
}
# type -> (file, its broken text, the line the error names, words the message holds)
BAD: dict[str, tuple[str, str, int, str]] = {
    "script": ("up.sh", "echo one\nif true; then\n  echo two\n", 4, "unexpected end of file"),
    "sql": (
        "up.sql",
        "CREATE TABLE t (id INTEGER);\nINSERT INTO t VALUES ('x);\n",
        2,
        "unterminated",
    ),
    "redis": (
        "up.yaml",
        "ops:\n  - set: {key: a, value: b}\n  - frobnicate: {key: a}\n",
        3,
        "frobnicate",
    ),
    "redis-python": ("migration.py", "def up(r):\n    r.set(\n\ndef down(r):\n", 2, "never closed"),
    "cedar": (
        "policies.cedar",
        '@id("p")\npermit (principal, action, resource\n',
        2,
        "syntax error",
    ),
    "kubernetes": ("configmap.yaml", "kind: ConfigMap\nmetadata: [\n", 3, "invalid YAML"),
}
GOOD["sql-postgres"] = GOOD["sql"]  # the same files, the environment on PostgreSQL
BAD["sql-postgres"] = BAD["sql"]
COMPONENT_TYPE = {"redis-python": "redis", "sql-postgres": "sql"}
TARGET = {
    "script": {"shell": "bash"},
    "sql": {"url": "sqlite:///.releasectl/local/app.db"},
    "sql-postgres": {"url": "postgresql://postgres@127.0.0.1:5432/test"},
    "redis": {"url": "redis+embedded://.releasectl/local/redis.db"},
    "redis-python": {"url": "redis+embedded://.releasectl/local/redis.db"},
    "cedar": {"store": "dir", "path": "deploy/policies"},
    "kubernetes": {"mode": "render", "path": "deploy/config"},
}


def make_repo(root: Path, kind: str) -> Path:
    init_repo(root)
    doc = {
        "apiVersion": "releasectl/v1",
        "kind": "Workspace",
        "name": f"cold-{kind}",
        "components": {"app": {"type": COMPONENT_TYPE.get(kind, kind)}},
        "environments": {"local": {"state": {"backend": "file"}, "targets": {"app": TARGET[kind]}}},
    }
    (root / "releasectl.yaml").write_text(json.dumps(doc, indent=2) + "\n")
    release = {"apiVersion": "releasectl/v1", "kind": "Release", "version": "1.0.0"}
    release["components"] = {"app": {"version": COUNT}}  # type: ignore[assignment]
    (root / "releases").mkdir()
    (root / "releases" / "1.0.0.yaml").write_text(json.dumps(release) + "\n")
    bad_file, bad_text, _, _ = BAD[kind]
    for n in range(1, COUNT + 1):
        directory = root / "migrations" / "app" / f"{n:04d}_step"
        directory.mkdir(parents=True)
        for name, text in GOOD[kind].items():
            (directory / name).write_text(text.replace("{n}", str(n)))
        if n == BROKEN:
            (directory / bad_file).write_text(bad_text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "chore: workspace")
    return root


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_fresh_clone_catches_the_broken_part(tmp_path: Path, kind: str) -> None:
    origin = make_repo(tmp_path / "origin", kind)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    assert not (clone / ".releasectl" / "cache").exists()
    bad_file, _, line, words = BAD[kind]
    where = f"migrations/app/{BROKEN:04d}_step/{bad_file}:{line}"
    for run in ("cold", "warm"):
        result = run_proc("plan", cwd=clone)
        assert result.code == 1, f"{run}: {result}"
        errors = [e for e in result.err.splitlines() if e.startswith("error:")]
        assert len(errors) == 1, f"{run}: {result}"
        assert "Traceback" not in result.err  # forked helpers end quietly (util.forkpool)
        assert where in errors[0], f"{run}: {result}"
        assert words in errors[0]
        assert (clone / ".releasectl" / "cache").is_dir()
    assert not (clone / ".releasectl" / "local").exists()  # nothing ran, no state recorded
