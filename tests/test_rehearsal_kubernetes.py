"""`plan --rehearse` on an environment that lives in a cluster (the loopback emulator): config
in `mode: apply` is not rehearsed (a cluster is not copied) but analysed field by field with
Secret values never shown; Cedar policies in a ConfigMap store are rehearsed on a directory
copy; the cluster receives no write at all."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.k8semu import KubeEmulator

TOKEN = "api-token-value-9f2e"
WORKSPACE = """
apiVersion: releasectl/v1
kind: Workspace
name: k8s-rehearsal
components:
  config: {type: kubernetes}
  policies: {type: cedar}
environments:
  cluster:
    state: {backend: file}
    targets:
      config: {mode: apply, namespace: platform, context: emulator,
               kubeconfig: "${KUBECONFIG_PATH}"}
      policies: {store: configmap, namespace: platform, name: cedar-policies, context: emulator,
                 kubeconfig: "${KUBECONFIG_PATH}"}
"""
CONFIG_V1 = """
apiVersion: v1
kind: ConfigMap
metadata: {name: api-config}
data: {LOG_LEVEL: "info", TLS_ONLY: "false", OLD: "x"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: api-legacy}
data: {A: "1"}
"""
CONFIG_V2 = """
apiVersion: v1
kind: ConfigMap
metadata: {name: api-config}
data: {LOG_LEVEL: "info", TLS_ONLY: "true"}
---
apiVersion: v1
kind: Secret
metadata: {name: api-token}
stringData: {TOKEN: "${env:API_TOKEN}"}
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


@pytest.fixture
def ws(tmp_path: Path, kube: KubeEmulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    write(root / "releasectl.yaml", WORKSPACE)
    write(root / "migrations/config/0001_base/config.yaml", CONFIG_V1)
    write(root / "migrations/config/0002_hardening/config.yaml", CONFIG_V2)
    rbac = REPO / "migrations/policies/0001_rbac_framework"
    shutil.copytree(rbac, root / "migrations/policies/0001_rbac")
    shutil.copytree(rbac, root / "migrations/policies/0002_auditors_deploy")
    roles = root / "migrations/policies/0002_auditors_deploy/roles.cedar"
    roles.write_text(
        roles.read_text()
        + '\n@id("auditor-deploy")\npermit (principal in Role::"auditor", action == '
        'Action::"deploy", resource);\n'
    )
    for version, pins in (
        ("1.0.0", "{config: {version: 1}, policies: {version: 1}}"),
        ("1.1.0", "{config: {version: 2}, policies: {version: 2}}"),
    ):
        write(
            root / f"releases/{version}.yaml",
            f"apiVersion: releasectl/v1\nkind: Release\nversion: {version}\ncomponents: {pins}\n",
        )
    monkeypatch.setenv("KUBECONFIG_PATH", str(kube.kubeconfig))
    monkeypatch.setenv("API_TOKEN", TOKEN)
    result = run_cli("apply", "--env", "cluster", "--release", "1.0.0", "--yes", cwd=root)
    assert result.code == 0, result
    return root


def test_the_cluster_is_analysed_not_written(ws: Path, kube: KubeEmulator) -> None:
    writes = len(kube.writes())
    store = kube.get("ConfigMap", "cedar-policies", "platform")
    result = run_cli("plan", "--env", "cluster", "--rehearse", "--format", "json", cwd=ws)
    assert result.code == 0, result
    assert len(kube.writes()) == writes  # not one write reached the cluster
    assert kube.get("ConfigMap", "cedar-policies", "platform") == store
    assert TOKEN not in result.out
    doc = json.loads(result.out)
    steps = {s["component"]: s for s in doc["rehearsal"]["steps"]}
    assert steps["config"]["status"] == "not-rehearsed"
    assert steps["config"]["reason"].startswith("mode: apply talks to a cluster")
    assert (steps["policies"]["status"], steps["policies"]["rollback"]) == ("ok", "exact")
    copies = {c["component"]: c for c in doc["rehearsal"]["copies"]}
    assert copies["policies"]["kind"] == "directory (policy store)"
    assert doc["rehearsal"]["verdict"] == "incomplete"
    analysis = {s["component"]: s for s in doc["analysis"]["steps"]}
    objects = {(o["change"], o["kind"], o["name"]): o for o in analysis["config"]["kubernetes"]}
    assert set(objects) == {
        ("changed", "ConfigMap", "api-config"),
        ("pruned", "ConfigMap", "api-legacy"),
        ("created", "Secret", "api-token"),
    }
    fields = [
        (f["path"], f["old"], f["new"])
        for f in objects[("changed", "ConfigMap", "api-config")]["fields"]
    ]
    assert fields == [("data.OLD", "x", None), ("data.TLS_ONLY", "false", "true")]
    gained = [(g["principal"], g["action"]) for g in analysis["policies"]["cedar"]["gained"]]
    assert set(gained) == {('User::"aude"', 'Action::"deploy"')}
    comment = run_cli("plan", "--env", "cluster", "--rehearse", "--format", "markdown", cwd=ws)
    assert "- :wastebasket: `ConfigMap/api-legacy` pruned" in comment.out
    assert TOKEN not in comment.out
    assert len(kube.writes()) == writes
