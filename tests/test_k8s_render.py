"""kubernetes target, `mode: render`: golden files of the example, stable bytes, back to an
older version byte for byte, backup and restore of the directory, Secrets never rendered.

Regenerate the golden files after an intended change of the example or the format with
`RELEASECTL_UPDATE_GOLDEN=1 pytest tests/test_k8s_render.py` and review the diff."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from releasectl.errors import InputError, TargetError
from releasectl.models.workspace import KubernetesTarget as Settings
from releasectl.targets.base import Failure, open_target
from releasectl.targets.kubernetes.target import KubernetesTarget
from releasectl.util.deadline import Deadline
from releasectl.workspace import Workspace
from tests.k8semu.workspace import context, step, write_migrations

GOLDEN = Path(__file__).parent / "golden" / "kubernetes"
DEADLINE = Deadline(None)  # no limit: a module-level deadline would run out in a long suite


def files_of(directory: Path) -> dict[str, bytes]:
    if not directory.exists():
        return {}
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def example_target(ws: Path) -> KubernetesTarget:
    workspace = Workspace.load(ws)
    settings = Settings(mode="render", path="deploy/config")
    target = open_target(context(ws, settings, workspace.catalogue.of("config")))
    assert isinstance(target, KubernetesTarget)
    return target


def run_step(target: KubernetesTarget, to: int, from_: int) -> str:
    s = step(to, from_)
    target.check(s, None)
    output = target.run(s, None, DEADLINE)
    target.verify(s, None, DEADLINE)
    return output


@pytest.mark.parametrize("version", [1, 2])
def test_example_renders_the_golden_files(example: Path, version: int) -> None:
    target = example_target(example)
    for v in range(1, version + 1):
        run_step(target, v, v - 1)
    rendered = files_of(example / "deploy" / "config")
    golden = GOLDEN / f"config-v{version}"
    if os.environ.get("RELEASECTL_UPDATE_GOLDEN"):
        shutil.rmtree(golden, ignore_errors=True)
        golden.mkdir(parents=True)
        for name, data in rendered.items():
            (golden / name).write_bytes(data)
    assert rendered == files_of(golden)
    assert "kustomization.yaml" in rendered


def test_rerender_is_byte_identical_and_down_restores_the_directory(example: Path) -> None:
    target = example_target(example)
    out = example / "deploy" / "config"
    run_step(target, 1, 0)
    v1 = files_of(out)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    output = run_step(target, 1, 0)  # the same version again: nothing rewritten
    assert "0 written" in output
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes

    run_step(target, 2, 1)
    v2 = files_of(out)
    assert set(v2) - set(v1) == {
        "configmap-platform-monitoring.yaml",
        "configmap-platform-pod-security.yaml",
        "externalsecret-auth-service-secrets.yaml",
        "externalsecret-platform-tls.yaml",
        "externalsecret-redis-auth.yaml",
    }
    run_step(target, 1, 2)  # down: snapshot 1 again, files of version 2 only removed
    assert files_of(out) == v1
    run_step(target, 0, 1)  # below 1: nothing rendered
    assert files_of(out) == {}


def test_backup_and_restore_put_the_directory_back_exactly(example: Path) -> None:
    target = example_target(example)
    out = example / "deploy" / "config"
    run_step(target, 1, 0)
    (out / "notes.txt").write_text("kept by hand\n")
    before = files_of(out)

    backup = io.BytesIO()
    s = step(2, 1)
    info = target.backup(s, None, backup)
    assert info.items == len(before)
    target.run(s, None, DEADLINE)
    (out / "configmap-redis-config.yaml").write_text("# tampered\n")
    assert files_of(out) != before
    backup.seek(0)
    said = target.rollback(s, None, backup, Failure("verify", TargetError("boom")))
    assert "restored" in said
    assert files_of(out) == before  # version 2's new files removed, the tampered one back


def test_rollback_into_a_directory_that_did_not_exist_removes_it(example: Path) -> None:
    target = example_target(example)
    backup = io.BytesIO()
    s = step(1, 0)
    target.backup(s, None, backup)
    target.run(s, None, DEADLINE)
    backup.seek(0)
    target.restore(backup)
    assert not (example / "deploy" / "config").exists()


def test_secrets_are_left_out_and_hand_written_files_are_protected(tmp_path: Path) -> None:
    migrations = write_migrations(
        tmp_path,
        [
            {
                "objects.yaml": """
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: app}
                data: {MODE: "on", COUNT: "0755"}
                ---
                apiVersion: v1
                kind: Secret
                metadata: {name: app-token}
                stringData: {TOKEN: "${env:APP_TOKEN}"}
                """
            }
        ],
    )
    settings = Settings(mode="render", path="out", namespace="team-a")
    target = KubernetesTarget(context(tmp_path, settings, migrations))
    output = run_step(target, 1, 0)
    assert "left out Secret/app-token" in output
    rendered = files_of(tmp_path / "out")
    assert set(rendered) == {"configmap-app.yaml", "kustomization.yaml"}
    text = rendered["configmap-app.yaml"].decode()
    # YAML 1.1 readers (kubectl, Argo CD) must still see strings
    assert "MODE: 'on'" in text and "COUNT: '0755'" in text
    assert "namespace: team-a" in text
    assert "APP_TOKEN" not in "".join(d.decode() for d in rendered.values())

    (tmp_path / "out" / "configmap-app.yaml").write_text("# mine\n")
    with pytest.raises(InputError, match="not generated by releasectl"):
        target.run(step(1, 0), None, DEADLINE)
    assert (tmp_path / "out" / "configmap-app.yaml").read_text() == "# mine\n"


def test_verify_notices_a_changed_file(example: Path) -> None:
    target = example_target(example)
    run_step(target, 1, 0)
    path = example / "deploy" / "config" / "configmap-auth-service-config.yaml"
    path.write_bytes(path.read_bytes().replace(b"RUST_LOG", b"RUST_LOG_X"))
    with pytest.raises(TargetError, match=r"configmap-auth-service-config\.yaml differs"):
        target.verify(step(1, 0), None, DEADLINE)


def test_render_needs_a_path(tmp_path: Path) -> None:
    target = KubernetesTarget(context(tmp_path, Settings(mode="render"), None))
    with pytest.raises(InputError, match="needs `path`"):
        target.check(step(1, 0), None)
