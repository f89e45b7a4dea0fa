"""`releasectl release validate` and `release show` on small workspaces whose component types
all have their target modules (redis, cedar, service): every problem is listed, located, and
the command exits 1; a sound release prints "ok"."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from releasectl.models.state import AppliedMigration, ComponentState, State
from releasectl.state import open_backend
from releasectl.workspace import Workspace
from tests.conftest import REPO, run_cli

WORKSPACE = """\
apiVersion: releasectl/v1
kind: Workspace
name: small
components:
  cache: {type: redis}
  api: {type: service, needs: [cache]}
  web: {type: service, needs: [api]}
environments:
  local:
    targets:
      cache: {url: "redis+embedded://.releasectl/local/redis.db"}
"""

R1 = """\
apiVersion: releasectl/v1
kind: Release
version: 1.0.0
components:
  cache: {version: 1}
  api: {version: 1.0.0, requires: {cache: ">=1"}}
  web: {version: 1.0.0}
"""

R2 = """\
apiVersion: releasectl/v1
kind: Release
version: 1.1.0
description: Second
components:
  cache: {version: 2}
  api: {version: 1.1.0, requires: {cache: ">=2"}}
  web: {version: 1.1.0, requires: {api: ">=1.1.0"}}
upgrades_from: ">=1.0.0,<1.1.0"
"""

UP = 'ops:\n  - set: {key: "k%d", value: "v"}\n'
DOWN = 'ops:\n  - del: {keys: ["k%d"]}\n'


@pytest.fixture
def small(tmp_path: Path) -> Path:
    ws = tmp_path / "small"
    (ws / "releases").mkdir(parents=True)
    (ws / "releasectl.yaml").write_text(WORKSPACE)
    (ws / "releases/1.0.0.yaml").write_text(R1)
    (ws / "releases/1.1.0.yaml").write_text(R2)
    for n in (1, 2):
        mig = ws / f"migrations/cache/{n:04d}_step{n}"
        mig.mkdir(parents=True)
        (mig / "up.yaml").write_text(UP % n)
        (mig / "down.yaml").write_text(DOWN % n)
    return ws


def validate(ws: Path, version: str, *extra: str) -> tuple[int, list[str], str]:
    result = run_cli("release", "validate", version, *extra, cwd=ws)
    errors = [
        line.removeprefix("error: ")
        for line in result.err.splitlines()
        if line.startswith("error: ")
    ]
    return result.code, errors, result.out


def test_sound_release_is_ok(small: Path) -> None:
    assert validate(small, "1.1.0") == (0, [], "ok: release 1.1.0\n")
    assert validate(small, "1.0.0") == (0, [], "ok: release 1.0.0\n")


def test_unsatisfied_requires_is_located(small: Path) -> None:
    path = small / "releases/1.1.0.yaml"
    path.write_text(
        R2.replace(
            'web: {version: 1.1.0, requires: {api: ">=1.1.0"}}',
            'web: {version: 1.1.0, requires: {api: ">=2.0.0"}}',
        )
    )
    code, errors, _ = validate(small, "1.1.0")
    assert code == 1
    assert errors == [
        "releases/1.1.0.yaml:8: components.web.requires: web 1.1.0 requires api >=2.0.0 but api "
        "is at 1.1.0"
    ]


def test_schema_problems_are_all_listed(small: Path) -> None:
    text = R2.replace("  web: {version: 1.1.0", "  web: {versio: 1.1.0")
    (small / "releases/1.1.0.yaml").write_text(
        text.replace('requires: {cache: ">=2"}', 'requires: {cache: "=>2"}')
    )
    code, errors, _ = validate(small, "1.1.0")
    assert code == 1
    assert sorted(errors) == sorted(
        [
            "releases/1.1.0.yaml:7: components.api.requires.cache: '=>2' is not a version "
            "constraint clause",
            "releases/1.1.0.yaml:8: components.web.version: required field is missing",
            "releases/1.1.0.yaml:8: components.web.versio: unknown field",
        ]
    )


def test_bad_semver_is_located(small: Path) -> None:
    (small / "releases/1.1.0.yaml").write_text(
        R2.replace("api: {version: 1.1.0", "api: {version: 1.1")
    )
    code, errors, _ = validate(small, "1.1.0")
    assert code == 1
    assert errors[0] == (
        "releases/1.1.0.yaml:7: components.api.version: '1.1' is not a semantic version (X.Y.Z)"
    )


def test_missing_migration_and_missing_down(small: Path) -> None:
    (small / "migrations/cache/0001_step1/down.yaml").unlink()
    path = small / "releases/1.1.0.yaml"
    path.write_text(R2.replace("cache: {version: 2}", "cache: {version: 3}"))
    code, errors, _ = validate(small, "1.1.0")
    assert code == 1
    assert (
        "releases/1.1.0.yaml:6: components.cache.version: version 3 has no migration: "
        "migrations/cache/ goes up to 2" in errors
    )
    assert any(
        e.startswith(
            "migrations/cache/0001_step1: no down part (down.yaml or migration.py with def down)"
        )
        for e in errors
    ), errors


def test_no_upgrade_path_from_the_previous_release(small: Path) -> None:
    path = small / "releases/1.1.0.yaml"
    path.write_text(
        R2.replace('upgrades_from: ">=1.0.0,<1.1.0"', 'upgrades_from: ">=1.0.5,<1.1.0"')
    )
    code, errors, _ = validate(small, "1.1.0")
    assert code == 1
    assert errors[0].startswith(
        "releases/1.1.0.yaml:9: upgrades_from: no upgrade path from the previous release 1.0.0: "
        "release 1.1.0 does not upgrade from the recorded release 1.0.0"
    ), errors


def test_intermediate_incompatibility_is_found_by_planning(small: Path) -> None:
    # 1.0.0's web pins api at exactly 1.0.0; upgrading api first breaks web before web moves.
    r1 = small / "releases/1.0.0.yaml"
    r1.write_text(
        R1.replace("web: {version: 1.0.0}", 'web: {version: 1.0.0, requires: {api: "==1.0.0"}}')
    )
    code, errors, _ = validate(small, "1.1.0")
    assert code == 1
    assert len(errors) == 2, errors
    upgrade, rollback = errors
    assert upgrade.startswith(
        "releases/1.1.0.yaml:9: upgrades_from: no upgrade path from the previous release 1.0.0: "
        "step 2 (api 1.0.0 -> 1.1.0) would pass through an incompatible state"
    ), upgrade
    assert "no rollback path to the previous release 1.0.0" in rollback


def test_static_checks_of_needed_migrations(small: Path) -> None:
    (small / "migrations/cache/0002_step2/up.yaml").write_text(
        'ops:\n  - set: {key: "url", value: "redis://admin:hunter2secret@db.internal:6379"}\n'
    )
    code, errors, _ = validate(small, "1.1.0")
    assert code == 1
    assert any(
        e.startswith("migrations/cache/0002_step2/up.yaml:2: literal secret (password in a URL)")
        for e in errors
    ), errors
    # 1.0.0 does not need migration 2: its checks stay clean
    assert validate(small, "1.0.0")[0] == 0


def test_drift_against_a_committed_file_state(small: Path) -> None:
    workspace = Workspace.load(small)
    migration = workspace.catalogue.components["cache"].migrations[0]
    applied = AppliedMigration(
        id=migration.id, version=1, checksum="f" * 64, applied_at="2026-01-01T00:00:00Z"
    )
    state = State(
        env="local",
        lineage="x",
        serial=1,
        components={"cache": ComponentState(version=1, applied=(applied,))},
    )
    open_backend(workspace, "local").write(state, None)
    code, errors, _ = validate(small, "1.0.0")
    assert code == 1
    assert errors == [
        f"migrations/cache/0001_step1: changed since it was applied to local (checksum "
        f"ffffffffffff recorded, {migration.checksum[:12]} now)"
    ]


def test_cedar_policies_are_checked(tmp_path: Path) -> None:
    ws = tmp_path / "cedar"
    (ws / "releases").mkdir(parents=True)
    (ws / "releasectl.yaml").write_text(
        "apiVersion: releasectl/v1\nkind: Workspace\nname: cedar\ncomponents:\n"
        "  policies: {type: cedar}\nenvironments:\n  local:\n"
        "    targets:\n      policies: {store: dir, path: deploy/policies}\n"
    )
    (ws / "releases/1.0.0.yaml").write_text(
        "apiVersion: releasectl/v1\nkind: Release\nversion: 1.0.0\n"
        "components:\n  policies: {version: 1}\n"
    )
    source = REPO / "migrations/policies"
    first = sorted(p for p in source.iterdir() if p.is_dir())[0]
    target = ws / "migrations/policies" / first.name
    shutil.copytree(first, target)
    assert validate(ws, "1.0.0")[0] == 0
    policy = sorted(target.glob("*.cedar"))[0]
    policy.write_text(policy.read_text() + "\npermit(principal, action, resource) when { ;\n")
    code, errors, _ = validate(ws, "1.0.0")
    assert code == 1
    assert any(policy.name in e for e in errors), errors


def test_unknown_release(small: Path) -> None:
    code, errors, _ = validate(small, "9.0.0")
    assert code == 1
    assert errors[0].startswith("release 9.0.0 not found")


# --- show ------------------------------------------------------------------------------------


def test_show_json(small: Path) -> None:
    result = run_cli("release", "show", "1.1.0", "--format", "json", cwd=small)
    assert result.code == 0, result
    data = json.loads(result.out)
    assert data["version"] == "1.1.0"
    assert data["previous"] == "1.0.0"
    assert list(data["components"]) == ["cache", "api", "web"]
    assert data["components"]["api"] == {
        "type": "service",
        "version": "1.1.0",
        "requires": {"cache": ">=2"},
    }
    assert data["changes"] == [
        {"name": "cache", "from": 1, "to": 2, "change": "upgraded"},
        {"name": "api", "from": "1.0.0", "to": "1.1.0", "change": "upgraded"},
        {"name": "web", "from": "1.0.0", "to": "1.1.0", "change": "upgraded"},
    ]
    assert data["upgrades_from"] == ">=1.0.0,<1.1.0"
    assert data["upgrades_from_previous"] is True


def test_show_text(small: Path) -> None:
    result = run_cli("release", "show", "1.1.0", cwd=small)
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[0] == "release 1.1.0: Second"
    assert "  api    service     1.1.0       requires cache >=2" in lines
    assert "changes since 1.0.0:" in lines
    assert "  cache  1 -> 2  (upgraded)" in lines
    assert "upgrades_from: >=1.0.0,<1.1.0 (admits 1.0.0)" in lines
    first = run_cli("release", "show", "1.0.0", cwd=small)
    assert "changes: first release" in first.out


# --- a component added after the first releases -------------------------------------------

R3 = """\
apiVersion: releasectl/v1
kind: Release
version: 1.2.0
components:
  cache: {version: 2}
  api: {version: 1.1.0, requires: {cache: ">=2"}}
  web: {version: 1.1.0, requires: {api: ">=1.1.0"}}
  hooks: {version: 1}
upgrades_from: ">=1.1.0,<1.2.0"
"""


@pytest.fixture
def grown(small: Path) -> Path:
    """`small` with a `hooks` component that only release 1.2.0 names."""
    text = (small / "releasectl.yaml").read_text()
    text = text.replace(
        "  web: {type: service, needs: [api]}\n",
        "  web: {type: service, needs: [api]}\n  hooks: {type: script, needs: [api]}\n",
    )
    (small / "releasectl.yaml").write_text(text + "      hooks: {}\n")
    mig = small / "migrations/hooks/0001_register"
    mig.mkdir(parents=True)
    (mig / "up.sh").write_text("echo registered\n")
    (mig / "down.sh").write_text("echo unregistered\n")
    (small / "releases/1.2.0.yaml").write_text(R3)
    return small


def test_older_releases_need_not_name_a_component_added_later(grown: Path) -> None:
    result = run_cli("validate", cwd=grown)
    assert result.code == 0, result
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        assert validate(grown, version) == (0, [], f"ok: release {version}\n")


def test_a_release_after_one_that_names_a_component_must_name_it(grown: Path) -> None:
    r4 = R3.replace("version: 1.2.0", "version: 1.3.0").replace("  hooks: {version: 1}\n", "")
    (grown / "releases/1.3.0.yaml").write_text(r4)
    code, errors, _ = validate(grown, "1.3.0")
    assert code == 1
    assert errors == [
        "releases/1.3.0.yaml:4: components: no version for component 'hooks' (release 1.2.0 "
        "deploys it; a release omits only components added after it)"
    ]
    result = run_cli("validate", cwd=grown)
    assert result.code == 1
    assert "releases/1.3.0.yaml:4: components: no version for component 'hooks'" in result.err


def test_going_back_before_a_component_existed_needs_its_down_parts(grown: Path) -> None:
    (grown / "migrations/hooks/0001_register/down.sh").unlink()
    code, errors, _ = validate(grown, "1.2.0")
    assert code == 1
    assert any(
        "no rollback path to the previous release 1.1.0: component 'hooks': cannot go down "
        "from 1 to 0: no down part in 0001_register" in e
        for e in errors
    ), errors
