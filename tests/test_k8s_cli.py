"""End to end through the CLI: an environment whose config is applied to a cluster, whose
services are deployed there, and whose state, history and lock live in the same cluster."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from releasectl.state.base import LockInfo
from releasectl.state.kubernetes import KubernetesBackend
from releasectl.workspace import Workspace
from tests.conftest import git, init_repo, run_cli
from tests.k8semu import KubeEmulator

NS = "platform"
WORKSPACE = """
apiVersion: releasectl/v1
kind: Workspace
name: k8s-e2e
components:
  config: {type: kubernetes}
  api: {type: service, needs: [config]}
environments:
  cluster:
    state: {backend: kubernetes, namespace: releasectl, context: emulator,
            kubeconfig: "${KUBECONFIG_PATH}"}
    targets:
      config: {mode: apply, namespace: platform, context: emulator,
               kubeconfig: "${KUBECONFIG_PATH}"}
      api: {mode: apply, image: "registry.example/api:{version}", namespace: platform,
            context: emulator, kubeconfig: "${KUBECONFIG_PATH}"}
"""
CONFIG_V1 = """
apiVersion: v1
kind: ConfigMap
metadata: {name: api-config}
data: {LOG_LEVEL: "info", TLS_ONLY: "false"}
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
    root = init_repo(tmp_path / "ws")
    write(root / "releasectl.yaml", WORKSPACE)
    write(root / "migrations/config/0001_base/config.yaml", CONFIG_V1)
    write(root / "migrations/config/0002_hardening/config.yaml", CONFIG_V2)
    write(
        root / "releases/1.0.0.yaml",
        "apiVersion: releasectl/v1\nkind: Release\nversion: 1.0.0\n"
        "components: {config: {version: 1}, api: {version: 1.0.0}}\n",
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "chore: workspace")
    monkeypatch.setenv("KUBECONFIG_PATH", str(kube.kubeconfig))
    monkeypatch.setenv("API_TOKEN", "api-token-value-9f2e")
    return root


def add_release(root: Path) -> None:
    write(
        root / "releases/1.1.0.yaml",
        "apiVersion: releasectl/v1\nkind: Release\nversion: 1.1.0\n"
        "components: {config: {version: 2}, api: {version: 1.1.0}}\n",
    )


def image(kube: KubeEmulator) -> str:
    live = kube.get("Deployment", "api", NS)
    assert live is not None
    return str(live["spec"]["template"]["spec"]["containers"][0]["image"])


def test_apply_to_a_cluster_with_state_in_the_cluster(ws: Path, kube: KubeEmulator) -> None:
    result = run_cli("apply", "--env", "cluster", "--yes", cwd=ws)
    assert result.code == 0, result
    assert image(kube) == "registry.example/api:1.0.0"
    state = kube.get("ConfigMap", "releasectl-state-cluster", "releasectl")
    assert state is not None and json.loads(state["data"]["state.json"])["release"] == "1.0.0"
    assert kube.get("ConfigMap", "releasectl-state-cluster-history-000001", "releasectl")

    add_release(ws)
    result = run_cli("apply", "--env", "cluster", "--yes", cwd=ws)
    assert result.code == 0, result
    config = kube.get("ConfigMap", "api-config", NS)
    assert config is not None and config["data"]["TLS_ONLY"] == "true"
    assert image(kube) == "registry.example/api:1.1.0"
    assert "api-token-value-9f2e" not in result.out + result.err

    status = run_cli("status", "--env", "cluster", "--format", "json", cwd=ws)
    assert status.code == 0, status
    doc = json.loads(status.out)
    assert doc["release"] == "1.1.0"
    assert doc["components"]["config"]["version"] == 2
    assert run_cli("apply", "--env", "cluster", "--yes", cwd=ws).code == 0  # nothing to do
    history = run_cli("history", "--env", "cluster", "--verify", cwd=ws)
    assert history.code == 0, history


def test_a_failing_step_is_rolled_back_and_state_is_unchanged(ws: Path, kube: KubeEmulator) -> None:
    assert run_cli("apply", "--env", "cluster", "--yes", cwd=ws).code == 0
    before = kube.get("ConfigMap", "api-config", NS)
    state_before = kube.get("ConfigMap", "releasectl-state-cluster", "releasectl")
    add_release(ws)
    kube.cluster.fail("patch", kind="Secret")  # config v2: the ConfigMap is written, then this
    result = run_cli("apply", "--env", "cluster", "--yes", cwd=ws)
    assert result.code == 1, result
    assert "injected failure" in result.out + result.err
    after = kube.get("ConfigMap", "api-config", NS)
    assert after is not None and before is not None
    assert after["data"] == before["data"] == {"LOG_LEVEL": "info", "TLS_ONLY": "false"}
    assert kube.get("Secret", "api-token", NS) is None
    assert image(kube) == "registry.example/api:1.0.0"
    state_after = kube.get("ConfigMap", "releasectl-state-cluster", "releasectl")
    assert state_before is not None and state_after is not None
    assert (
        json.loads(state_after["data"]["state.json"])["components"]
        == json.loads(state_before["data"]["state.json"])["components"]
    )


def test_a_held_lease_stops_apply_with_exit_4(ws: Path, kube: KubeEmulator) -> None:
    workspace = Workspace.load(ws)
    backend = KubernetesBackend(workspace, "cluster", workspace.environment("cluster").state)
    holder = LockInfo.new("cluster", "ci-runner-7", "apply", "2026-01-01T00:00:00.000Z")
    with backend.acquire(holder, ttl=30, timeout=0):
        result = run_cli("apply", "--env", "cluster", "--yes", cwd=ws)
        assert result.code == 4, result
        assert "held by ci-runner-7" in result.err
        shown = run_cli("status", "--env", "cluster", cwd=ws)
        assert "ci-runner-7" in shown.out + shown.err
        refused = run_cli("unlock", holder.id, "--env", "cluster", cwd=ws)
        assert refused.code == 4 and "alive on this host" in refused.err, refused  # it is
        unlocked = run_cli("unlock", holder.id, "--force", "--env", "cluster", cwd=ws)
        assert unlocked.code == 0, unlocked
    assert backend.current_lock() is None
    assert kube.objects("Deployment", NS) == []


def test_atomic_apply_puts_the_cluster_back_when_a_later_step_fails(
    ws: Path, kube: KubeEmulator
) -> None:
    assert run_cli("apply", "--env", "cluster", "--yes", cwd=ws).code == 0
    config_before = kube.get("ConfigMap", "api-config", NS)
    state_before = kube.get("ConfigMap", "releasectl-state-cluster", "releasectl")
    add_release(ws)
    # step 1 (config 1 -> 2) succeeds; step 2 (api deploy) fails writing the Deployment
    kube.cluster.fail("patch", kind="Deployment")
    result = run_cli("apply", "--env", "cluster", "--yes", "--atomic", cwd=ws)
    assert result.code == 1, result
    assert "step 2 failed" in result.err and "--atomic: undid the 1 step(s)" in result.err
    after = kube.get("ConfigMap", "api-config", NS)
    assert after is not None and config_before is not None
    assert after["data"] == config_before["data"]
    assert kube.get("Secret", "api-token", NS) is None
    assert image(kube) == "registry.example/api:1.0.0"
    state_after = kube.get("ConfigMap", "releasectl-state-cluster", "releasectl")
    assert state_before is not None and state_after is not None
    assert (
        json.loads(state_after["data"]["state.json"])["components"]
        == json.loads(state_before["data"]["state.json"])["components"]
    )
