"""A saved plan runs only if it is exactly what planning now gives: `apply PLAN` plans again
from the workspace and the recorded state and refuses (exit 3) an edit of any field, naming
it; the digest, which anyone can recompute, is not the guard (the real CLI, the example on
the embedded Redis and SQLite, and real Cedar for the authorization bypass)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from releasectl.clients.redis import Endpoint
from releasectl.models.plan import Plan
from releasectl.planning.planner import plan_digest
from tests.builders import add_failing_redis_migration, make_workspace
from tests.conftest import run_cli
from tests.redis_helpers import same_keyspace, snapshot

REDIS_URL = "redis+embedded://.releasectl/local/redis.db"
Edit = Callable[[dict[str, Any]], None]


def saved(example: Path, tmp_path: Path, *args: str) -> Path:
    path = tmp_path / "plan.json"
    result = run_cli("plan", *args, "--out", path, cwd=example)
    assert result.code == 0, result
    return path


def edit(path: Path, change: Edit, *, redigest: bool = False) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    if redigest:  # what an attacker does: SHA-256 is public
        plan = Plan.model_validate(doc)
        doc["digest"] = plan_digest(
            plan.env, plan.manifest_checksum, plan.release, plan.state, plan.steps
        )
    path.write_text(json.dumps(doc))


def set_step(index: int, key: str, value: Any) -> Edit:
    def change(doc: dict[str, Any]) -> None:
        doc["steps"][index][key] = value

    return change


def state_file(root: Path) -> Path:
    return root / ".releasectl/state/local.json"


EDITS: list[tuple[str, Edit, str]] = [
    (
        "no-backup",
        set_step(0, "backup", False),
        "steps[0].backup: false in the plan file, true when",
    ),
    (
        "not-breaking",
        set_step(2, "breaking", True),
        "steps[2].breaking: true in the plan file, false when",
    ),
    (
        "description",
        set_step(1, "description", "harmless"),
        "steps[1].description: 'harmless' in the plan file",
    ),
    (
        "rollback",
        lambda d: d["rollback"].pop(),
        "rollback: 7 item(s) in the plan file, 8 item(s) when",
    ),
    (
        "rollback-step",
        lambda d: d["rollback"][0].update(to=0),
        "rollback[0].to: 0 in the plan file",
    ),
    (
        "warnings",
        lambda d: d["warnings"].append("all good"),
        "warnings: 1 item(s) in the plan file, 0 item(s)",
    ),
    ("workspace", lambda d: d.update(workspace="other"), "workspace: 'other' in the plan file"),
    ("fewer-steps", lambda d: d["steps"].pop(), "steps: 7 item(s) in the plan file, 8 item(s)"),
    (
        "step-order",
        lambda d: d["steps"].reverse(),
        "steps[0].component: 'auth-service' in the plan file",
    ),
]


@pytest.mark.parametrize("redigest", [False, True], ids=["digest-kept", "digest-recomputed"])
@pytest.mark.parametrize(("name", "change", "message"), EDITS, ids=[e[0] for e in EDITS])
def test_an_edited_field_never_runs(
    example: Path, tmp_path: Path, name: str, change: Edit, message: str, redigest: bool
) -> None:
    path = saved(example, tmp_path)
    edit(path, change, redigest=redigest)
    result = run_cli("apply", path, cwd=example)
    assert result.code == 3, result
    assert "the saved plan is not the plan made now: " + message in result.err, result.err
    assert "an edited plan never runs" in result.err
    assert not state_file(example).exists()


def test_an_untouched_saved_plan_applies(example: Path, tmp_path: Path) -> None:
    path = saved(example, tmp_path)
    result = run_cli("apply", path, cwd=example)
    assert result.code == 0, result
    assert json.loads(state_file(example).read_text())["release"] == "1.1.0"


def test_a_saved_plan_with_its_reports_applies_and_the_reports_decide_nothing(
    example: Path, tmp_path: Path
) -> None:
    """`plan --analyze --rehearse --out` saves what the reviewer saw; apply drops the reports
    (a rehearsal's durations cannot be made again), so editing them changes nothing either."""
    path = tmp_path / "plan.json"
    made = run_cli("plan", "--analyze", "--rehearse", "--out", path, cwd=example)
    assert made.code == 0, made
    doc = json.loads(path.read_text())
    assert doc["analysis"] is not None and doc["rehearsal"] is not None
    doc["rehearsal"]["verdict"] = "failed"  # edited: still a plan, the report now lies
    path.write_text(json.dumps(doc))
    result = run_cli("apply", path, cwd=example)
    assert result.code == 0, result
    assert json.loads(state_file(example).read_text())["release"] == "1.1.0"


def failing_migration(root: Path) -> None:
    add_failing_redis_migration(root)
    release = root / "releases/1.1.0.yaml"
    release.write_text(release.read_text().replace("redis: {version: 2}", "redis: {version: 3}"))


def test_backup_false_cannot_leave_redis_and_the_state_apart(example: Path, tmp_path: Path) -> None:
    # the case: without its backup, a failing step left Redis at the new version and
    # the state at the old one
    assert run_cli("apply", "--release", "1.0.0", "--yes", cwd=example).code == 0
    failing_migration(example)
    path = saved(example, tmp_path)
    doc = json.loads(path.read_text())
    index = next(i for i, s in enumerate(doc["steps"]) if s["migration"] == "0003_broken")
    assert doc["steps"][index]["backup"] is True
    edit(path, set_step(index, "backup", False))
    endpoint = Endpoint(REDIS_URL, example, name="test")
    before = snapshot(endpoint.client())
    endpoint.close()
    state_before = state_file(example).read_text()
    result = run_cli("apply", path, cwd=example)
    assert result.code == 3, result
    assert f"steps[{index}].backup: false in the plan file" in result.err
    endpoint = Endpoint(REDIS_URL, example, name="test")
    assert same_keyspace(before, snapshot(endpoint.client())) == []
    endpoint.close()
    assert state_file(example).read_text() == state_before


def test_breaking_false_cannot_bypass_the_authorization_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_workspace(
        tmp_path / "ws",
        components={"api": {"type": "service"}},
        targets={},
        releases={"1.0.0": {"api": "1.4.0"}, "2.0.0": {"api": "2.0.0"}},
        env={"protected": True},
    )
    doc = json.loads((root / "releasectl.yaml").read_text())
    doc["authorization"] = {"policies": "authz/policies.cedar", "schema": None}
    (root / "releasectl.yaml").write_text(json.dumps(doc))
    (root / "authz").mkdir()
    (root / "authz/policies.cedar").write_text(
        '@id("no-breaking-changes")\npermit (principal, action, resource)\n'
        "when { !context.breaking };\n"
    )
    monkeypatch.setenv("RELEASECTL_BACKUP_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    assert run_cli("apply", "--release", "1.0.0", "--yes", cwd=root).code == 0
    denied = run_cli("apply", "--release", "2.0.0", "--allow-breaking", "--yes", cwd=root)
    assert denied.code == 5, denied  # the policy refuses a breaking change
    path = tmp_path / "plan.json"
    made = run_cli("plan", "--release", "2.0.0", "--allow-breaking", "--out", path, cwd=root)
    assert made.code == 0, made
    edit(path, set_step(0, "breaking", False))
    result = run_cli("apply", path, cwd=root)
    assert result.code == 3, result
    assert "steps[0].breaking: false in the plan file, true when" in result.err
    status = run_cli("status", "--format", "json", cwd=root)
    assert json.loads(status.out)["components"]["api"]["version"] == "1.4.0"
    # untouched, the saved plan is still breaking, and the policy still decides
    path = tmp_path / "plan2.json"
    assert (
        run_cli("plan", "--release", "2.0.0", "--allow-breaking", "--out", path, cwd=root).code == 0
    )
    assert run_cli("apply", path, cwd=root).code == 5


def test_a_saved_plan_is_checked_again(example: Path, tmp_path: Path) -> None:
    # static checks run again on a saved plan: a secret that arrived after planning stops it
    path = saved(example, tmp_path)
    config = example / "releasectl.yaml"
    config.write_text(config.read_text() + "# api_key: Zq8-long-random-value-77\n")
    result = run_cli("apply", path, cwd=example)
    assert result.code == 1, result
    assert "releasectl.yaml:" in result.err and "literal secret" in result.err
    assert "Zq8-long-random-value-77" not in result.err
    assert not state_file(example).exists()


def test_a_forged_component_plan_is_refused(example: Path, tmp_path: Path) -> None:
    path = saved(example, tmp_path)
    edit(path, lambda d: d["release"].update(to=None), redigest=True)
    result = run_cli("apply", path, cwd=example)
    assert result.code == 3, result
    assert "a saved plan must be a release plan" in result.err
