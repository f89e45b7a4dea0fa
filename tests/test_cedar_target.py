"""The `cedar` target with the directory store: snapshots up and down, backups restored byte for
byte, failing steps that change nothing, verify against what was stored, crash safety."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from releasectl.cedarlib.snapshot import migration_problems
from releasectl.errors import InputError, ReleasectlError, TargetError
from releasectl.models.workspace import CedarTarget as CedarSettings
from releasectl.targets.base import Failure
from releasectl.targets.cedar import CedarTarget
from releasectl.util.deadline import Deadline
from tests.cedar_helpers import (
    SCHEMA_V1,
    SCHEMA_V2,
    UNLOCK,
    V1,
    V2,
    run_step,
    step,
    stored,
    target,
    write_migration,
)
from tests.conftest import run_cli


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    write_migration(tmp_path, "0001_base", V1)
    write_migration(tmp_path, "0002_unlock", V2)
    return tmp_path


def test_up_down_round_trip(ws: Path) -> None:
    t = target(ws)
    assert t.store.read() is None
    run_step(t, step(0, 1))
    v1 = stored(ws)
    assert sorted(v1) == ["manifest.json", "policies.cedar", "schema.cedarschema"]
    manifest = json.loads(v1["manifest.json"])
    assert manifest["version"] == 1 and manifest["migration"] == "0001_base"
    assert manifest["policies"] == ["admins", "everyone-views"]
    text = v1["policies.cedar"].decode()
    assert text.index("// --- roles.cedar ---") < text.index("// --- view.cedar ---")
    assert v1["schema.cedarschema"].decode() == SCHEMA_V1

    run_step(t, step(1, 2))
    assert json.loads(stored(ws)["manifest.json"])["version"] == 2
    assert "no-unlock" in stored(ws)["policies.cedar"].decode()

    run_step(t, step(2, 1))  # down: snapshot 1 again, byte for byte
    assert stored(ws) == v1

    run_step(t, step(1, 0))
    assert t.store.read() is None
    assert not (ws / "deploy" / "policies").exists()


def test_rendering_is_deterministic(ws: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    run_step(target(ws), step(0, 1))
    run_step(target(ws, "other"), step(0, 1))
    assert stored(ws) == stored(ws, "other")


def test_rollback_restores_the_previous_set_byte_for_byte(ws: Path) -> None:
    t = target(ws)
    run_step(t, step(0, 1))
    before = stored(ws)
    s = step(1, 2)
    backup = run_step(t, s)
    assert stored(ws) != before
    done = t.rollback(s, None, io.BytesIO(backup), Failure("verify", RuntimeError("x")))
    assert "restored the backup (3 keys)" in done
    assert stored(ws) == before


def test_rollback_to_absent_removes_the_set(ws: Path) -> None:
    t = target(ws)
    s = step(0, 1)
    backup = run_step(t, s)
    assert json.loads(backup)["present"] is False
    t.rollback(s, None, io.BytesIO(backup), Failure("verify", RuntimeError("x")))
    assert t.store.read() is None


def test_rollback_without_backup_stores_the_previous_version(ws: Path) -> None:
    t = target(ws)
    run_step(t, step(0, 1))
    before = stored(ws)
    run_step(t, step(1, 2))
    t.rollback(step(1, 2), None, None, Failure("verify", RuntimeError("x")))
    assert stored(ws) == before


def test_restore_keeps_even_a_hand_edited_set_exactly(ws: Path) -> None:
    t = target(ws)
    run_step(t, step(0, 1))
    live = ws / "deploy" / "policies" / "policies.cedar"
    edited = live.read_bytes() + b"// edited by hand\r\n"
    live.unlink()
    live.write_bytes(edited)  # a regular file now, outside the versioned layout
    buf = io.BytesIO()
    t.backup(None, None, buf)
    t.store.write({"policies.cedar": b"x", "schema.cedarschema": b"y", "manifest.json": b"{}"})
    t.restore(io.BytesIO(buf.getvalue()))
    assert live.read_bytes() == edited


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (
            {"unlock.cedar": UNLOCK.replace(";", "")},
            "migrations/policies/0002_unlock/unlock.cedar:2: syntax error: unexpected end of input",
        ),
        (
            {"schema.cedarschema": SCHEMA_V2.replace("entity Environment;", "")},
            "migrations/policies/0002_unlock/schema.cedarschema:4: invalid schema: failed to "
            "resolve types: Environment",
        ),
        (
            {"unlock.cedar": UNLOCK.replace("forbid", "permit")},
            'migrations/policies/0002_unlock/tests/basic.yaml:12: test "nobody unlocks": expected '
            'deny, got allow: permitted by permit policy "admins"',
        ),
    ],
    ids=["syntax", "schema", "test"],
)
def test_a_failing_step_changes_nothing(ws: Path, broken: dict[str, str], expected: str) -> None:
    t = target(ws)
    run_step(t, step(0, 1))
    before = stored(ws)
    versions = sorted(p.name for p in (ws / "deploy" / "policies").iterdir())
    write_migration(ws, "0002_unlock", broken)
    t = target(ws)  # rescan: new checksums
    assert t.ctx.migrations is not None
    migration = t.ctx.migrations.get(2)
    assert migration is not None
    problems = [str(e) for e in migration_problems(migration)]
    assert any(p.startswith(expected) for p in problems), problems
    with pytest.raises(ReleasectlError) as info:
        t.check(step(1, 2), None)
    assert expected in str(info.value)
    with pytest.raises(ReleasectlError):
        t.run(step(1, 2), None, Deadline(None))
    assert stored(ws) == before
    assert sorted(p.name for p in (ws / "deploy" / "policies").iterdir()) == versions


def test_verify_detects_a_changed_store(ws: Path) -> None:
    t = target(ws)
    run_step(t, step(0, 1))
    live = ws / "deploy" / "policies" / "policies.cedar"
    data = live.read_bytes()
    os.chmod(live.resolve(), 0o644)
    live.resolve().write_bytes(data + b"\nforbid (principal, action, resource);\n")
    with pytest.raises(TargetError, match=r"policies\.cedar: checksum mismatch"):
        t.verify(step(0, 1), None, Deadline(None))
    with pytest.raises(TargetError, match="checksum mismatch"):
        t.check(step(1, 2), None)


def test_verify_runs_the_tests_against_what_was_stored(ws: Path) -> None:
    # A stored set that is internally consistent (manifest and checksums agree) but denies
    # everything: verify must fail on the snapshot's tests, not trust the checksums.
    from releasectl.cedarlib.snapshot import Snapshot

    t = target(ws)
    run_step(t, step(0, 1))
    snap = Snapshot.from_dir(ws / "migrations/policies/0002_unlock", "x", version=1)
    write_migration(ws, "0009_other", {**V1, "roles.cedar": UNLOCK.replace("unlock", "apply")})
    other = Snapshot.from_dir(ws / "migrations/policies/0009_other", "y", version=1)
    compiled = other.compile(with_tests=False)
    t.store.write(other.render(compiled))
    assert snap.version == 1
    with pytest.raises(TargetError, match='test "admin applies": expected allow, got deny'):
        t.verify(step(0, 1), None, Deadline(None))


def test_check_refuses_a_store_at_an_unexpected_version(ws: Path) -> None:
    t = target(ws)
    run_step(t, step(0, 1))
    run_step(t, step(1, 2))
    with pytest.raises(
        TargetError, match="holds version 2 of the policies, but the step moves 0 -> 1"
    ):
        t.check(step(0, 1), None)


def test_a_restore_refuses_other_backups(ws: Path) -> None:
    with pytest.raises(TargetError, match="not a Cedar policy backup"):
        target(ws).restore(io.BytesIO(b'{"format": "something-else"}'))


def test_store_settings_are_required(ws: Path) -> None:
    ctx = target(ws).ctx
    ctx.settings = CedarSettings(store="dir")
    with pytest.raises(InputError, match="store: dir needs a path"):
        _ = CedarTarget(ctx).store
    ctx.settings = CedarSettings(store="configmap", name="x")
    with pytest.raises(InputError, match="needs a namespace and a name"):
        _ = CedarTarget(ctx).store


CRASH = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from releasectl.cedarlib.stores import DirStore
    DirStore(Path(sys.argv[1]), "deploy/policies").write(
        {"policies.cedar": b"new", "schema.cedarschema": b"new", "manifest.json": b"new"}
    )
    """
)


def test_a_crash_before_the_swap_leaves_the_old_set(ws: Path) -> None:
    t = target(ws)
    run_step(t, step(0, 1))
    before = stored(ws)
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, str(ws / "deploy" / "policies")],
        env={**os.environ, "RELEASECTL_FAILPOINT": "cedar-store-before-swap"},
        capture_output=True,
        check=False,
    )
    assert proc.returncode == -9
    assert stored(ws) == before
    t.verify(step(0, 1), None, Deadline(None))
    # the half-done version directory is swept away by the next write
    versions = [p for p in (ws / "deploy" / "policies").iterdir() if p.name.startswith("..v-")]
    assert len(versions) == 2
    run_step(t, step(1, 2))
    versions = [p for p in (ws / "deploy" / "policies").iterdir() if p.name.startswith("..v-")]
    assert len(versions) == 1


# --- end to end through the CLI, on the example workspace --------------------------------


def test_migrate_and_roll_back_the_example_policies(example: Path) -> None:
    result = run_cli("migrate", "policies", "1", "--env", "local", "--yes", cwd=example)
    assert result.code == 0, result
    store = example / "deploy" / "local" / "policies"
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["migration"] == "0001_rbac_framework"
    assert "admin-all" in manifest["policies"]
    result = run_cli("rollback", "policies", "0", "--env", "local", "--yes", cwd=example)
    assert result.code == 0, result
    assert not (store / "policies.cedar").exists()


def test_migrate_refuses_a_broken_snapshot_before_touching_the_store(example: Path) -> None:
    assert run_cli("migrate", "policies", "1", "--env", "local", "--yes", cwd=example).code == 0
    store = example / "deploy" / "local" / "policies"
    before = {p.name: p.read_bytes() for p in store.iterdir() if not p.name.startswith(".")}
    broken = example / "migrations" / "policies" / "0002_broken"
    broken.mkdir()
    src = example / "migrations" / "policies" / "0001_rbac_framework"
    for p in src.glob("*"):
        if p.is_file():
            (broken / p.name).write_text(p.read_text())
    (broken / "guardrails.cedar").write_text("forbid (principal, action, resource)\n")
    result = run_cli("migrate", "policies", "2", "--env", "local", "--yes", cwd=example)
    assert result.code == 1, result
    assert "migrations/policies/0002_broken/guardrails.cedar:1: syntax error" in result.err
    after = {p.name: p.read_bytes() for p in store.iterdir() if not p.name.startswith(".")}
    assert after == before
