"""kubernetes target, `mode: apply`, against the loopback API server with the real client:
server-side apply, pruning of managed objects only, Secrets from the environment, backup and
rollback after a failing write, and the refusals that must come before any change."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest

from releasectl import secrets
from releasectl.clients.kubernetes import KubeError
from releasectl.errors import InputError, TargetError
from releasectl.models.workspace import KubernetesTarget as Settings
from releasectl.targets.base import Failure
from releasectl.targets.kubernetes.target import KubernetesTarget
from releasectl.util.deadline import Deadline
from releasectl.workspace import Workspace
from releasectl.workspace.catalogue import ComponentMigrations
from tests.k8semu import KubeEmulator
from tests.k8semu.workspace import context, step, write_migrations

NS = "team"
DEADLINE = Deadline(None)  # no limit: a module-level deadline would run out in a long suite
V1 = {
    "app.yaml": """
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: app-config, labels: {app.kubernetes.io/name: app}}
    data: {MODE: "one", KEEP: "same", DROPPED_IN_V2: "old"}
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: only-v1}
    data: {A: "1"}
    """,
    "es.yaml": """
    apiVersion: external-secrets.io/v1beta1
    kind: ExternalSecret
    metadata: {name: app-secrets}
    spec:
      secretStoreRef: {kind: ClusterSecretStore, name: vault}
      data:
        - secretKey: DB_PASSWORD
          remoteRef: {key: app/db, property: password}
    """,
    "secret.yaml": """
    apiVersion: v1
    kind: Secret
    metadata: {name: app-token}
    type: Opaque
    stringData:
      TOKEN: ${env:APP_TOKEN}
    """,
}
V2 = {
    "a-new.yaml": """
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: only-v2}
    data: {B: "2"}
    """,
    "app.yaml": """
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: app-config, labels: {app.kubernetes.io/name: app}}
    data: {MODE: "two", KEEP: "same"}
    """,
    "es.yaml": V1["es.yaml"]
    .replace("1h", "2h")
    .replace("vault}", "vault}\n      refreshInterval: 2h"),
    "secret.yaml": V1["secret.yaml"],
}
TOKEN = "tok-3f9a1c7e5b"  # a value the tests look for everywhere


def target_for(
    kube: KubeEmulator,
    root: Path,
    migrations: ComponentMigrations,
    environ: dict[str, str] | None = None,
    *,
    protected: bool = False,
) -> KubernetesTarget:
    settings = Settings(
        mode="apply", namespace=NS, kubeconfig=str(kube.kubeconfig), context=kube.context
    )
    env = {"APP_TOKEN": TOKEN} if environ is None else environ
    return KubernetesTarget(context(root, settings, migrations, environ=env, protected=protected))


def run_step(target: KubernetesTarget, to: int, from_: int) -> str:
    s = step(to, from_)
    target.check(s, None)
    output = target.run(s, None, DEADLINE)
    target.verify(s, None, DEADLINE)
    return output


def world(kube: KubeEmulator) -> dict[str, Any]:
    """Everything in the namespace that a rollback must put back (not resourceVersions)."""
    out: dict[str, Any] = {}
    for kind in ("ConfigMap", "Secret", "ExternalSecret"):
        for obj in kube.objects(kind, NS):
            meta = obj["metadata"]
            out[f"{kind}/{meta['name']}"] = (
                {k: v for k, v in obj.items() if k != "metadata"},
                meta.get("labels"),
                meta.get("annotations"),
                meta["uid"] if kind != "Secret" else None,
                sorted((m["manager"], str(m["fieldsV1"])) for m in meta.get("managedFields", [])),
            )
    return out


@pytest.fixture
def versions(tmp_path: Path) -> ComponentMigrations:
    return write_migrations(tmp_path, [V1, V2])


def test_apply_creates_updates_and_prunes_only_managed_objects(
    kube: KubeEmulator, tmp_path: Path, versions: ComponentMigrations
) -> None:
    labels = {"app.kubernetes.io/managed-by": "releasectl", "releasectl.dev/component": "config"}
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "lookalike", "labels": labels},
        },
        NS,
    )
    kube.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unrelated"}}, NS)
    target = target_for(kube, tmp_path, versions)

    output = run_step(target, 1, 0)
    assert "applied ConfigMap/app-config" in output and "applied Secret/app-token" in output
    app = kube.get("ConfigMap", "app-config", NS)
    assert app is not None
    assert app["metadata"]["labels"] == {"app.kubernetes.io/name": "app", **labels}
    assert app["metadata"]["annotations"] == {"releasectl.dev/version": "1"}
    assert {m["manager"] for m in app["metadata"]["managedFields"]} == {"releasectl"}
    token = kube.get("Secret", "app-token", NS)
    assert token is not None and base64.b64decode(token["data"]["TOKEN"]).decode() == TOKEN
    assert kube.get("ExternalSecret", "app-secrets", NS) is not None

    # someone else adds a label; server-side apply of version 2 keeps it and drops our old key
    kube.put(
        {
            **app,
            "metadata": {
                **app["metadata"],
                "labels": {**app["metadata"]["labels"], "owner": "ops"},
            },
        },
        NS,
    )
    output = run_step(target, 2, 1)
    assert "pruned ConfigMap/only-v1" in output
    app = kube.get("ConfigMap", "app-config", NS)
    assert app is not None
    assert app["data"] == {"MODE": "two", "KEEP": "same"}
    assert app["metadata"]["labels"]["owner"] == "ops"
    names = {o["metadata"]["name"] for o in kube.objects("ConfigMap", NS)}
    assert names == {"app-config", "only-v2", "lookalike", "unrelated"}
    assert run_step(target, 2, 1).count("applied") == 4  # again: same objects, nothing pruned

    run_step(target, 0, 2)  # down below 1: every object we created goes
    assert {o["metadata"]["name"] for o in kube.objects("ConfigMap", NS)} == {
        "lookalike",
        "unrelated",
    }
    assert kube.objects("Secret", NS) == [] and kube.objects("ExternalSecret", NS) == []


def test_failing_write_is_rolled_back_to_the_objects_as_they_were(
    kube: KubeEmulator, tmp_path: Path, versions: ComponentMigrations
) -> None:
    target = target_for(kube, tmp_path, versions)
    run_step(target, 1, 0)
    before = world(kube)

    s = step(2, 1)
    target.check(s, None)
    backup = io.BytesIO()
    info = target.backup(s, None, backup)
    # what version 2 declares, and what it will prune (only-v1)
    assert info.scope == [
        "ConfigMap/app-config",
        "ConfigMap/only-v1",
        "ConfigMap/only-v2",
        "ExternalSecret/app-secrets",
        "Secret/app-token",
    ]
    kube.cluster.fail("patch", kind="ExternalSecret")  # after only-v2 and app-config were written
    with pytest.raises(KubeError, match="injected failure") as failed:
        target.run(s, None, DEADLINE)
    assert kube.get("ConfigMap", "only-v2", NS) is not None  # half-applied
    backup.seek(0)
    said = target.rollback(s, None, backup, Failure("run", failed.value))
    assert "restored" in said
    assert world(kube) == before


def test_rollback_of_a_first_step_gives_a_foreign_object_back_to_its_owner(
    kube: KubeEmulator, tmp_path: Path, versions: ComponentMigrations
) -> None:
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "app-config"},
            "data": {"MODE": "manual"},
        },
        NS,
    )
    before = world(kube)
    target = target_for(kube, tmp_path, versions)
    s = step(1, 0)
    backup = io.BytesIO()
    target.backup(s, None, backup)
    target.run(s, None, DEADLINE)
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "only-v1"},
            "data": {"A": "changed"},
        },
        NS,
    )
    with pytest.raises(
        TargetError,
        match=r"ConfigMap/only-v1: .metadata.labels, .metadata.annotations, .data.A not as",
    ):
        target.verify(s, None, DEADLINE)
    backup.seek(0)
    target.rollback(s, None, backup, Failure("verify", TargetError("x")))
    assert world(kube) == before


def test_rollback_without_a_backup_reapplies_the_previous_version(
    kube: KubeEmulator, tmp_path: Path, versions: ComponentMigrations
) -> None:
    target = target_for(kube, tmp_path, versions)
    run_step(target, 1, 0)
    s = step(2, 1)
    target.run(s, None, DEADLINE)
    said = target.rollback(s, None, None, Failure("verify", TargetError("x")))
    assert said.startswith("re-applied version 1")
    target.verify(step(1, 2), None, DEADLINE)
    assert kube.get("ConfigMap", "only-v2", NS) is None


def test_a_missing_variable_fails_before_anything_changes(
    kube: KubeEmulator, tmp_path: Path, versions: ComponentMigrations
) -> None:
    target = target_for(kube, tmp_path, versions, environ={})
    with pytest.raises(InputError) as exc:
        target.check(step(1, 0), None)
    assert str(exc.value) == (
        "migrations/config/0001_v1/secret.yaml:6: stringData.TOKEN: Secret app-token: "
        "environment variable APP_TOKEN is not set (needed for stringData.TOKEN)"
    )
    with pytest.raises(InputError, match="APP_TOKEN"):
        target.run(step(1, 0), None, DEADLINE)
    assert kube.writes() == []


def test_a_custom_resource_the_cluster_does_not_serve_is_refused_first(
    kube: KubeEmulator, tmp_path: Path, versions: ComponentMigrations
) -> None:
    kube.cluster.remove_resource("ExternalSecret")
    target = target_for(kube, tmp_path, versions)
    with pytest.raises(
        TargetError, match=r"does not serve ExternalSecret \(external-secrets.io/v1beta1\)"
    ):
        target.check(step(1, 0), None)
    assert kube.writes() == []


def test_secret_values_stay_out_of_output_and_unprotected_backups(
    kube: KubeEmulator, tmp_path: Path, versions: ComponentMigrations
) -> None:
    target = target_for(kube, tmp_path, versions)
    output = run_step(target, 1, 0)
    encoded = base64.b64encode(TOKEN.encode()).decode()
    assert secrets.redact(f"token={TOKEN} b64={encoded}") == "token=*** b64=***"
    backup = io.BytesIO()
    target.backup(step(2, 1), None, backup)
    data = backup.getvalue()
    assert TOKEN.encode() not in data and encoded.encode() not in data and TOKEN not in output
    # a rollback finds the value again from the environment (its digest matches)
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "app-token"},
            "data": {"TOKEN": "eA=="},
        },
        NS,
    )
    target.restore(io.BytesIO(data))
    token = kube.get("Secret", "app-token", NS)
    assert token is not None and token["data"] == {"TOKEN": encoded}


def test_a_rotated_secret_is_restored_only_from_a_protected_backup(
    kube: KubeEmulator, tmp_path: Path, versions: ComponentMigrations
) -> None:
    logged: list[str] = []
    old = target_for(kube, tmp_path, versions)
    run_step(old, 1, 0)
    rotated = {"APP_TOKEN": "tok-rotated-77aa"}
    for protected, expected in ((False, "tok-rotated-77aa"), (True, TOKEN)):
        run_step(old, 1, 0)
        target = target_for(kube, tmp_path, versions, rotated, protected=protected)
        target.ctx.log = logged.append
        backup = io.BytesIO()
        target.backup(step(2, 1), None, backup)
        target.run(step(2, 1), None, DEADLINE)
        backup.seek(0)
        target.rollback(step(2, 1), None, backup, Failure("verify", TargetError("x")))
        token = kube.get("Secret", "app-token", NS)
        assert token is not None
        assert base64.b64decode(token["data"]["TOKEN"]).decode() == expected
    assert logged == [
        "not restored (value unknown, backup holds no secret data): Secret/app-token: TOKEN"
    ]


def test_the_example_applies_up_and_down(kube: KubeEmulator, example: Path) -> None:
    workspace = Workspace.load(example)
    target = target_for(
        kube,
        example,
        workspace.catalogue.of("config") or ComponentMigrations("config", "kubernetes", ""),
    )
    run_step(target, 1, 0)
    assert len(kube.objects("ConfigMap", NS)) == 3
    run_step(target, 2, 1)
    assert len(kube.objects("ConfigMap", NS)) == 5
    assert len(kube.objects("ExternalSecret", NS)) == 3
    whole = io.BytesIO()
    assert target.backup(None, None, whole).items == 8
    run_step(target, 1, 2)
    assert len(kube.objects("ConfigMap", NS)) == 3 and kube.objects("ExternalSecret", NS) == []
    target.restore(io.BytesIO(whole.getvalue()))
    assert len(kube.objects("ExternalSecret", NS)) == 3


def test_an_unreachable_cluster_is_a_clear_error(
    kube: KubeEmulator, tmp_path: Path, versions: ComponentMigrations
) -> None:
    target = target_for(kube, tmp_path, versions)
    kube.stop()
    with pytest.raises(KubeError, match=f"cannot reach the Kubernetes API at {kube.url}"):
        target.check(step(1, 0), None)


def test_a_missing_kubeconfig_is_an_input_error(
    tmp_path: Path, versions: ComponentMigrations
) -> None:
    settings = Settings(mode="apply", kubeconfig="nowhere/kubeconfig", context="prod")
    target = KubernetesTarget(context(tmp_path, settings, versions))
    with pytest.raises(
        InputError, match=r"kubeconfig .*nowhere/kubeconfig \(context prod\): file not found"
    ):
        target.check(step(1, 0), None)
